"""Dynamic hypernetworks for sequences: the HyperLSTM (Ha, Dai & Le, 2016, §3.2, App. A.2.2-A.2.3).

A small LSTM, the *hyper cell*, reads the main LSTM's input and previous hidden state and emits,
at every time step, small embeddings z.  Each z is projected to a *weight scaling vector*
d(z) ∈ R^{N_h} that rescales the rows of one of the main LSTM's weight matrices, so the main
cell's weights change with the context while only vectors — never full matrices — are generated:

    x̂_t        = [h_{t-1}; x_t]                                         (hyper cell input)
    ĥ_t, ĉ_t   = LSTM_ĥ(x̂_t, ĥ_{t-1}, ĉ_{t-1})                           (layer-normalised LSTM, N_ĥ units)
    z_h^y      = W_ĥh^y ĥ + b_ĥh^y,  z_x^y = W_ĥx^y ĥ + b_ĥx^y,  z_b^y = W_ĥb^y ĥ      (z ∈ R^{N_z})
    d_h^y      = W_hz^y z_h^y,       d_x^y = W_xz^y z_x^y                (scaling vectors ∈ R^{N_h})
    b^y        = W_bz^y z_b^y + b_0^y                                    (dynamic bias)
    y_t        = LN(d_h^y ⊙ W_h^y h_{t-1} + d_x^y ⊙ W_x^y x_t + b^y)     for y ∈ {i, g, f, o}
    c_t        = σ(f_t + 1)·c_{t-1} + σ(i_t)·dropout(tanh g_t)          (recurrent dropout, forget bias 1)
    h_t        = σ(o_t)·tanh(LN(c_t))

**ĥ_{t-1} or ĥ_t?**  The paper's equations compute z from ĥ_{t-1}; Ha's reference code
(``supercell.py``) first advances the hyper cell with x̂_t and uses the *current* ĥ_t, which has
already seen x_t.  We follow the code by default (``z_from="current"``) because that is the model
whose numbers the paper reports; ``z_from="previous"`` gives the equations as printed.

Initialisation (Ha's code, App. A.2.3): orthogonal weights per gate block for the main and the
hyper cell; zero biases; z_h, z_x projections weight 0 and bias 1; z_b projection weights
N(0, 0.01²) and no bias; W_hz, W_xz constant 0.1/N_z, so every d starts at exactly 0.1;
W_bz = 0 and b_0 = 0.  Layer norm uses ε = 1e-3 and one gain/bias pair per gate.

That initialisation is symmetric in the N_z coordinates of z_h and z_x (equal z entries, equal columns of
W_hz, W_xz) and every gradient step preserves the symmetry, so after any amount of training
d_h^y(t) = s(t)·v^y: one fixed direction per gate, scaled by one number per step — N_z acts like 1 for
d_h and d_x.  ``z_init="random"`` breaks the symmetry (see :class:`HyperLSTMLayer`).

Speed (the time loop is the hot path): every input-side product — W_x x_t of the main cell *and*
of the hyper cell — is computed for the whole sequence in one matmul (a row gather for one-hot
input) before the loop; inside the loop one fused matmul h_{t-1}·[W_h | Ŵ_h] serves both cells,
the 12 z-vectors of a step come from one matmul, and the scaling vectors from one ``bmm``.
Recurrent-dropout masks are drawn for the whole sequence at once.  Two implementations share this
plan: :meth:`HyperLSTMLayer.forward_reference` writes the step for reading and lets autograd
differentiate it; :meth:`HyperLSTMLayer.forward` (the default) runs :mod:`hypernet_lib.hyperlstm_fast`,
which builds no graph inside the loop and differentiates it by hand, computing each weight gradient as
one matmul over all steps.  Tests check that the two agree, values and gradients, for every option.

Shapes: sequences are time-major inside the cells, ``(T, B, ·)``; the language model takes
batch-first ids ``(B, T)``.  Gate order everywhere is (i, g, f, o).

The module also holds a layer-normalised LSTM and an ``nn.LSTM`` baseline with the same interface,
a character-level language model with truncated BPTT, bits-per-character evaluation, sampling, and
the command line ``python -m hypernet_lib.hyperlstm train|generate|eval``.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import hyperlstm_fast
from .utils import (MAX_SEED, TrainingDiverged, atomic_save, check_choice, check_finite, check_float, check_int,
                    check_output_path, settings_diff, tensor_sha256, time_interleaved)

__all__ = [
    "HyperLSTMLayer", "LayerNormLSTMLayer", "TorchLSTMLayer", "CharLM", "Vocab", "CharData",
    "CELLS", "make_char_data", "stream_batches", "evaluate_bpc", "train_char_lm", "generate",
    "scaling_vectors", "save_lm", "load_lm", "CheckpointError", "paper_ptb_config", "speed_rows", "time_fwd_bwd",
    "TrainingDiverged",
]

#: Cells the language model can use.  "ln-*" means layer norm on (main and hyper cell).
CELLS = ("lstm", "ln-lstm", "hyperlstm", "ln-hyperlstm")
GATES = ("i", "g", "f", "o")
LN_EPS = hyperlstm_fast.LN_EPS   # 1e-3, as in Ha's code (one constant for both implementations)
FORGET_BIAS = 1.0      # added inside σ(·) of the forget gate, after the layer norm
CHECKPOINT_FORMAT = "hypernet_lib.hyperlstm/1"


class CheckpointError(ValueError):
    """A file that is not a checkpoint of this module's language model."""


# ---------------------------------------------------------------------------------------------
# Initialisation helpers
# ---------------------------------------------------------------------------------------------
def _orthogonal_blocks_(w: torch.Tensor, n_blocks: int) -> torch.Tensor:
    """Orthogonal init of each of the ``n_blocks`` column blocks of ``w`` (in, n_blocks·n) separately
    (Ha orthogonalises each gate's block on its own)."""
    n = w.shape[1] // n_blocks
    with torch.no_grad():
        for k in range(n_blocks):
            block = torch.empty(w.shape[0], n, dtype=w.dtype)
            nn.init.orthogonal_(block)
            w[:, k * n:(k + 1) * n].copy_(block)
    return w


def _gate_ln(x: torch.Tensor, gain: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Layer norm of each gate on its own: x (..., 4, N) or (4, ..., N), gain/bias broadcastable."""
    return torch.addcmul(bias, F.layer_norm(x, x.shape[-1:], eps=LN_EPS), gain)


def _input_projection(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """W x_t for a whole sequence.  x: (T, B) int ids (one-hot input: a row gather) or (T, B, I)."""
    if x.dtype in (torch.int64, torch.int32):
        return F.embedding(x, w)
    return x @ w


def _check_seq(x: torch.Tensor, input_size: int, name: str) -> None:
    """x: (T, B) int64/int32 ids in [0, input_size) (read on the CPU only: no device sync) or (T, B, I) floats."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name}: x must be a tensor, (T, B) integer ids or (T, B, {input_size}) floats; "
                         f"got {type(x).__name__}")
    if not x.is_floating_point():
        if x.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"{name}: x has dtype {x.dtype}; pass int64 (or int32) ids of shape (T, B), "
                             f"or floats of shape (T, B, {input_size})")
        if x.dim() != 2:
            raise ValueError(f"{name}: integer (one-hot) input must have shape (T, B), got {tuple(x.shape)}")
    elif x.dim() != 3 or x.shape[-1] != input_size:
        raise ValueError(f"{name}: float input must have shape (T, B, {input_size}), got {tuple(x.shape)}; "
                         "pass time-major sequences, or integer ids for one-hot input")
    if x.shape[0] == 0:
        raise ValueError(f"{name}: x has no time steps (shape {tuple(x.shape)}); pass at least one")
    if not x.is_floating_point() and x.device.type == "cpu":
        _check_ids_in_range(x, input_size, f"{name}: the ids in x", f"the one-hot input of input_size={input_size}")


def _check_layer_state(layer, state, batch: int, dtype=None) -> None:
    """The state passed to a layer's forward: None, or what initial_state() / the previous call returns."""
    if state is not None:
        hyperlstm_fast.check_state(state, batch, layer.state_sizes, layer.STATE_NAMES, dtype=dtype)


def _dropout_masks(shape, keep: float, like: torch.Tensor) -> torch.Tensor:
    """Recurrent-dropout masks for a whole sequence, drawn at once, already scaled by 1/keep."""
    return torch.empty(shape, dtype=like.dtype, device=like.device).bernoulli_(keep).div_(keep)


# ---------------------------------------------------------------------------------------------
# The HyperLSTM layer
# ---------------------------------------------------------------------------------------------
class HyperLSTMLayer(nn.Module):
    """One HyperLSTM layer (main LSTM with N_h units driven by a hyper LSTM with N_ĥ units).

    Args:
        input_size: size of x_t (for one-hot input, the vocabulary size; pass integer ids).
        hidden_size: N_h, units of the main cell.
        hyper_num_units: N_ĥ, units of the hyper cell (paper: 128).
        hyper_embedding_size: N_z (paper: 4; "Large Embedding": 16).
        use_layer_norm: layer norm in the main *and* the hyper cell (as in Ha's code).
        use_recurrent_dropout: dropout on tanh(g) of the main cell (Semeniuta et al., 2016); the hyper
            cell has none (the default of Ha's code).
        dropout_keep_prob: keep probability of that dropout (paper: 0.9).
        z_from: ``"current"`` (ĥ_t, Ha's code, default) or ``"previous"`` (ĥ_{t-1}, paper's equation).
        z_init: ``"paper"`` (default): the ĥ -> z_h, z_x weights start at 0, as in the paper and Ha's code.
            That init is symmetric in the N_z coordinates (equal z's, equal columns of W_hz, W_xz), and
            gradient descent (Adam included, being elementwise) keeps it so: every z_h, z_x keeps N_z equal
            entries, each d_h^y(t) stays a fixed vector times one scalar, and N_z acts like 1 for them.
            ``"random"`` draws those weights from N(0, 0.01²) (like z_b's) to break the symmetry; d
            then starts within ~1e-3 of 0.1 instead of exactly at it.

    Parameters (shapes; gate order i, g, f, o; the hyper cell's 4 gates likewise):
        W_in   (I, 4N_h + 4N_ĥ)   = [W_x | Ŵ_x]: input weights of the main and hyper cell, fused
        W_rec  (N_h, 4N_h + 4N_ĥ) = [W_h | Ŵ_h]: weights on h_{t-1} of both cells, fused
        W_hath (N_ĥ, 4N_ĥ)         hyper cell's recurrent weights on ĥ_{t-1}
        b_hat  (4N_ĥ,)             hyper cell bias (only without layer norm; LN's bias replaces it)
        W_z    (N_ĥ, 3·4·N_z)      [W_ĥh | W_ĥx | W_ĥb] for the 4 gates: ĥ -> z_h, z_x, z_b
        b_z    (2·4·N_z,)          biases of z_h and z_x (z_b has none)
        W_d    (3·4, N_z, N_h)     W_hz, W_xz, W_bz for the 4 gates: z -> d_h, d_x, W_bz z_b
        b_0    (4N_h,)             static part of the main bias
        ln_gain, ln_bias (4, N_h); ln_c_gain, ln_c_bias (N_h,); the hyper cell's ln_hat_* likewise.
    """

    def __init__(self, input_size: int, hidden_size: int, hyper_num_units: int = 128,
                 hyper_embedding_size: int = 4, use_layer_norm: bool = True,
                 use_recurrent_dropout: bool = False, dropout_keep_prob: float = 0.9,
                 z_from: str = "current", z_init: str = "paper"):
        super().__init__()
        if z_init not in ("paper", "random"):
            raise ValueError(f"z_init must be 'paper' (zeros, as published) or 'random' (N(0, 0.01²), breaks the "
                             f"symmetry of the N_z coordinates), got {z_init!r}")
        self.z_init = z_init
        check_int(input_size=input_size, hidden_size=hidden_size, hyper_num_units=hyper_num_units,
                  hyper_embedding_size=hyper_embedding_size, lo=1)
        check_float(dropout_keep_prob=dropout_keep_prob, lo=0.0, hi=1.0, lo_open=True)
        if z_from not in ("current", "previous"):
            raise ValueError(f"z_from must be 'current' (ĥ_t, Ha's code) or 'previous' (ĥ_(t-1), paper), "
                             f"got {z_from!r}")
        H, Hh, Nz = hidden_size, hyper_num_units, hyper_embedding_size
        self.input_size, self.hidden_size, self.hyper_num_units, self.n_z = input_size, H, Hh, Nz
        self.use_layer_norm = use_layer_norm
        self.use_recurrent_dropout = use_recurrent_dropout
        self.dropout_keep_prob = dropout_keep_prob
        self.z_from = z_from
        self.fast = True          # forward() runs hyperlstm_fast; False: forward_reference (plain autograd)

        self.W_in = nn.Parameter(torch.empty(input_size, 4 * H + 4 * Hh))
        self.W_rec = nn.Parameter(torch.empty(H, 4 * H + 4 * Hh))
        self.W_hath = nn.Parameter(torch.empty(Hh, 4 * Hh))
        self.b_hat = None if use_layer_norm else nn.Parameter(torch.zeros(4 * Hh))
        self.W_z = nn.Parameter(torch.empty(Hh, 12 * Nz))
        self.b_z = nn.Parameter(torch.empty(8 * Nz))
        self.W_d = nn.Parameter(torch.empty(12, Nz, H))
        self.b_0 = nn.Parameter(torch.zeros(4 * H))
        if use_layer_norm:
            self.ln_gain = nn.Parameter(torch.ones(4, H))
            self.ln_bias = nn.Parameter(torch.zeros(4, H))
            self.ln_c_gain = nn.Parameter(torch.ones(H))
            self.ln_c_bias = nn.Parameter(torch.zeros(H))
            self.ln_hat_gain = nn.Parameter(torch.ones(4, Hh))
            self.ln_hat_bias = nn.Parameter(torch.zeros(4, Hh))
            self.ln_hat_c_gain = nn.Parameter(torch.ones(Hh))
            self.ln_hat_c_bias = nn.Parameter(torch.zeros(Hh))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The paper's / Ha's initialisation (see the module docstring)."""
        H, Hh, Nz = self.hidden_size, self.hyper_num_units, self.n_z
        with torch.no_grad():
            self.W_in[:, :4 * H].copy_(_orthogonal_blocks_(torch.empty(self.input_size, 4 * H), 4))   # W_x
            self.W_in[:, 4 * H:].copy_(_orthogonal_blocks_(torch.empty(self.input_size, 4 * Hh), 4))  # Ŵ_x
            self.W_rec[:, :4 * H].copy_(_orthogonal_blocks_(torch.empty(H, 4 * H), 4))              # W_h
            self.W_rec[:, 4 * H:].copy_(_orthogonal_blocks_(torch.empty(H, 4 * Hh), 4))             # Ŵ_h
            _orthogonal_blocks_(self.W_hath, 4)
            if self.b_hat is not None:
                self.b_hat.zero_()
            W_z = self.W_z.view(Hh, 3, 4, Nz)
            if self.z_init == "paper":
                W_z[:, :2].zero_()                   # z_h, z_x projections: weights 0 ...
            else:
                W_z[:, :2].normal_(0.0, 0.01)        # (symmetry-breaking variant)
            self.b_z.fill_(1.0)                      # ... and bias 1
            W_z[:, 2].normal_(0.0, 0.01)             # z_b projection: N(0, 0.01²), no bias
            self.W_d[:8].fill_(0.1 / Nz)             # W_hz, W_xz = 0.1/N_z  ->  d = 0.1 at init
            self.W_d[8:].zero_()                     # W_bz = 0
            self.b_0.zero_()
            if self.use_layer_norm:
                for n in ("ln_gain", "ln_c_gain", "ln_hat_gain", "ln_hat_c_gain"):
                    getattr(self, n).fill_(1.0)
                for n in ("ln_bias", "ln_c_bias", "ln_hat_bias", "ln_hat_c_bias"):
                    getattr(self, n).zero_()

    STATE_NAMES = ("h", "c", "ĥ", "ĉ")

    @property
    def state_sizes(self) -> Tuple[int, ...]:
        """Units of each state tensor: (N_h, N_h, N_ĥ, N_ĥ)."""
        return (self.hidden_size, self.hidden_size, self.hyper_num_units, self.hyper_num_units)

    def initial_state(self, batch_size: int, device=None, dtype=None):
        """Zero state (h, c, ĥ, ĉ): shapes (B, N_h), (B, N_h), (B, N_ĥ), (B, N_ĥ)."""
        check_int(batch_size=batch_size, lo=0)
        device = device or self.W_rec.device
        dtype = dtype or self.W_rec.dtype
        z = lambda n: torch.zeros(batch_size, n, device=device, dtype=dtype)  # noqa: E731
        return (z(self.hidden_size), z(self.hidden_size), z(self.hyper_num_units), z(self.hyper_num_units))

    def forward(self, x: torch.Tensor, state=None, return_d: bool = False):
        """Run the layer over a sequence: the same equations as :meth:`forward_reference`, run by
        :mod:`hypernet_lib.hyperlstm_fast` (no autograd graph inside the time loop, a hand-written backward,
        weight gradients as one matmul over all steps).  ``self.fast = False`` switches to the reference.
        Arguments and results as in :meth:`forward_reference`."""
        if not self.fast or (return_d and torch.is_grad_enabled()):
            return self.forward_reference(x, state, return_d)
        _check_seq(x, self.input_size, "HyperLSTMLayer")
        T, B, H = x.shape[0], x.shape[1], self.hidden_size
        _check_layer_state(self, state, B, dtype=self.W_rec.dtype)      # the fast path computes in this dtype
        if state is None:
            state = self.initial_state(B, x.device)
        masks = None
        if self.training and self.use_recurrent_dropout and self.dropout_keep_prob < 1.0:
            masks = _dropout_masks((T, B, H), self.dropout_keep_prob, self.W_rec)
        ln = self.use_layer_norm
        params = hyperlstm_fast.Params(
            self.W_in, self.b_hat, self.W_rec, self.W_hath, self.W_z, self.b_z, self.W_d, self.b_0,
            *((self.ln_gain, self.ln_bias, self.ln_c_gain, self.ln_c_bias, self.ln_hat_gain, self.ln_hat_bias,
               self.ln_hat_c_gain, self.ln_hat_c_bias) if ln else ()))
        res = hyperlstm_fast.hyperlstm_sequence(x, tuple(state), params, ln=ln,
                                                z_current=(self.z_from == "current"), masks=masks,
                                                forget_bias=FORGET_BIAS, return_d=return_d, check=False)
        if return_d:
            out, new_state, d = res
            d = d.view(T, 3, 4, B, H).permute(1, 0, 3, 2, 4)                    # (3, T, B, 4, N_h)
            return out, new_state, {"d_h": d[0], "d_x": d[1], "b_z": d[2]}
        return res

    def forward_reference(self, x: torch.Tensor, state=None, return_d: bool = False):
        """Run the layer over a sequence, written step by step for reading; autograd differentiates it.

        Args:
            x: (T, B) integer ids (one-hot input) or (T, B, I) floats.
            state: (h, c, ĥ, ĉ) from the previous chunk, or None for zeros.
            return_d: also return the scaling vectors d_h, d_x and dynamic bias W_bz z_b,
                each (T, B, 4, N_h) (gate order i, g, f, o), for plotting.
        Returns:
            h_seq (T, B, N_h), new state[, dict of d's].
        """
        _check_seq(x, self.input_size, "HyperLSTMLayer")
        T, B = x.shape[0], x.shape[1]
        H, Hh, Nz = self.hidden_size, self.hyper_num_units, self.n_z
        _check_layer_state(self, state, B)
        if state is None:
            state = self.initial_state(B, x.device)
        h, c, hh, hc = state
        ln = self.use_layer_norm

        # Hoisted out of the time loop: W_x x_t (main) and Ŵ_x x_t (hyper cell) for every t, one matmul.
        xin = _input_projection(x, self.W_in)                      # (T, B, 4N_h + 4N_ĥ)
        x_main = xin[..., :4 * H].view(T, B, 4, H).transpose(1, 2)  # (T, 4, B, N_h)  W_x^y x_t
        x_hat = xin[..., 4 * H:]                                   # (T, B, 4N_ĥ)     Ŵ_x x_t
        if self.b_hat is not None:
            x_hat = x_hat + self.b_hat
        b_z = torch.cat([self.b_z, self.b_z.new_zeros(4 * Nz)])    # z_b has no bias
        b_0 = self.b_0.view(4, 1, H)
        if ln:
            g_main, b_main = self.ln_gain.view(4, 1, H), self.ln_bias.view(4, 1, H)
            g_hat, b_hat = self.ln_hat_gain.view(1, 4, Hh), self.ln_hat_bias.view(1, 4, Hh)
        masks = None
        if self.training and self.use_recurrent_dropout and self.dropout_keep_prob < 1.0:
            masks = _dropout_masks((T, B, H), self.dropout_keep_prob, self.W_rec)

        # unbind once: indexing xin[t] inside the loop would make autograd allocate a full-size
        # zero gradient for every step (SelectBackward); UnbindBackward stacks all steps at once.
        x_main_t, x_hat_t = x_main.unbind(0), x_hat.unbind(0)
        masks_t = masks.unbind(0) if masks is not None else None
        outs: List[torch.Tensor] = []
        ds: List[torch.Tensor] = []
        for t in range(T):
            rec_main, rec_hat = (h @ self.W_rec).split((4 * H, 4 * Hh), 1)   # h_{t-1}·[W_h | Ŵ_h], one matmul
            # --- hyper cell: an LSTM on x̂_t = [h_{t-1}; x_t]  (§3.2)
            gh = torch.addmm(x_hat_t[t] + rec_hat, hh, self.W_hath).view(B, 4, Hh)
            if ln:
                gh = _gate_ln(gh, g_hat, b_hat)
            ih, jh, fh, oh = gh.unbind(1)
            hc = torch.sigmoid(fh + FORGET_BIAS) * hc + torch.sigmoid(ih) * torch.tanh(jh)
            hc_out = F.layer_norm(hc, (Hh,), self.ln_hat_c_gain, self.ln_hat_c_bias, LN_EPS) if ln else hc
            z_src = hh if self.z_from == "previous" else None
            hh = torch.sigmoid(oh) * torch.tanh(hc_out)
            if z_src is None:
                z_src = hh                                         # Ha's code: z from ĥ_t
            # --- z_h, z_x, z_b for the 4 gates, one matmul:  z = W_ĥ· ĥ + b_ĥ·
            z = torch.addmm(b_z, z_src, self.W_z)                  # (B, 12 N_z)
            # --- d_h = W_hz z_h, d_x = W_xz z_x, W_bz z_b for the 4 gates, one bmm
            d = torch.bmm(z.view(B, 12, Nz).transpose(0, 1), self.W_d)   # (12, B, N_h)
            d_h, d_x, d_b = d.split(4)                              # each (4, B, N_h)
            # --- y_t = LN(d_h ⊙ W_h h_{t-1} + d_x ⊙ W_x x_t + W_bz z_b + b_0)   (HyperLSTM gate equation)
            pre = torch.addcmul(d_b + b_0, d_h, rec_main.view(B, 4, H).transpose(0, 1))
            pre = pre.addcmul_(d_x, x_main_t[t])
            if ln:
                pre = _gate_ln(pre, g_main, b_main)
            i, g, f, o = pre.unbind(0)
            g = torch.tanh(g)
            if masks_t is not None:
                g = g * masks_t[t]                                 # recurrent dropout on tanh(g)
            c = torch.sigmoid(f + FORGET_BIAS) * c + torch.sigmoid(i) * g      # c_t
            c_out = F.layer_norm(c, (H,), self.ln_c_gain, self.ln_c_bias, LN_EPS) if ln else c
            h = torch.sigmoid(o) * torch.tanh(c_out)               # h_t = σ(o)·tanh(LN(c_t))
            outs.append(h)
            if return_d:
                ds.append(d.detach())
        out = torch.stack(outs)
        new_state = (h, c, hh, hc)
        if return_d:
            d_all = torch.stack(ds).view(T, 3, 4, B, H).permute(1, 0, 3, 2, 4)  # (3, T, B, 4, N_h)
            return out, new_state, {"d_h": d_all[0], "d_x": d_all[1], "b_z": d_all[2]}
        return out, new_state

    # --- the packed parameters under their names (detached views: clone before changing them) ---
    def _split_gates(self, w: torch.Tensor, n: int, offset: int = 0) -> Dict[str, torch.Tensor]:
        return {y: w[..., offset + k * n:offset + (k + 1) * n].detach() for k, y in enumerate(GATES)}

    def gate_weights(self) -> Dict[str, Dict[str, torch.Tensor]]:
        """The main cell's static weights per gate: ``{"W_h": {y: (N_h, N_h)}, "W_x": {y: (I, N_h)},
        "b_0": {y: (N_h,)}}``, stored (inputs, outputs): the paper's W_h^y h is ``h @ W_h[y]``."""
        H = self.hidden_size
        return {"W_h": self._split_gates(self.W_rec, H), "W_x": self._split_gates(self.W_in, H),
                "b_0": self._split_gates(self.b_0, H)}

    def hyper_gate_weights(self) -> Dict[str, Optional[Dict[str, torch.Tensor]]]:
        """The hyper cell's weights per gate: on h_{t-1} ``"W_h"`` (N_h, N_ĥ), on x_t ``"W_x"`` (I, N_ĥ),
        on ĥ_{t-1} ``"W_hhat"`` (N_ĥ, N_ĥ), and its bias ``"b"`` (N_ĥ,), None with layer norm."""
        H, Hh = self.hidden_size, self.hyper_num_units
        return {"W_h": self._split_gates(self.W_rec, Hh, 4 * H), "W_x": self._split_gates(self.W_in, Hh, 4 * H),
                "W_hhat": self._split_gates(self.W_hath, Hh),
                "b": None if self.b_hat is None else self._split_gates(self.b_hat, Hh)}

    def z_maps(self) -> Dict[str, Dict[str, torch.Tensor]]:
        """ĥ -> z weights: ``z_maps()[s][y]`` is the (N_ĥ, N_z) matrix that makes z_s^y, for the source
        s in "h", "x", "b" (the paper's W_ĥh^y, W_ĥx^y, W_ĥb^y) and the gate y in "i", "g", "f", "o"."""
        W = self.W_z.detach().view(self.hyper_num_units, 3, 4, self.n_z)
        return {s: {y: W[:, a, k] for k, y in enumerate(GATES)} for a, s in enumerate("hxb")}

    def z_biases(self) -> Dict[str, Dict[str, torch.Tensor]]:
        """Biases of z_h and z_x: ``z_biases()[s][y]`` (N_z,) for s in "h", "x" (z_b has none)."""
        b = self.b_z.detach().view(2, 4, self.n_z)
        return {s: {y: b[a, k] for k, y in enumerate(GATES)} for a, s in enumerate("hx")}

    def d_maps(self) -> Dict[str, Dict[str, torch.Tensor]]:
        """z -> d weights: ``d_maps()[s][y]`` (N_z, N_h) is W_hz^y, W_xz^y or W_bz^y for s = "h", "x", "b"."""
        W = self.W_d.detach().view(3, 4, self.n_z, self.hidden_size)
        return {s: {y: W[a, k] for k, y in enumerate(GATES)} for a, s in enumerate("hxb")}


# ---------------------------------------------------------------------------------------------
# Baselines with the same interface
# ---------------------------------------------------------------------------------------------
class LayerNormLSTMLayer(nn.Module):
    """Layer-normalised LSTM (Ba et al., 2016) as in Ha's ``LayerNormLSTMCell``:
    y_t = LN_y(W_x^y x_t + W_h^y h_{t-1}) (no separate bias: LN's bias plays that role),
    c_t = σ(f_t + 1)·c_{t-1} + σ(i_t)·dropout(tanh g_t), h_t = σ(o_t)·tanh(LN(c_t)).

    Parameters: W_in (I, 4N_h), W_rec (N_h, 4N_h), ln_gain/ln_bias (4, N_h), ln_c_gain/ln_c_bias (N_h,).
    """

    def __init__(self, input_size: int, hidden_size: int, use_recurrent_dropout: bool = False,
                 dropout_keep_prob: float = 0.9):
        super().__init__()
        check_int(input_size=input_size, hidden_size=hidden_size, lo=1)
        check_float(dropout_keep_prob=dropout_keep_prob, lo=0.0, hi=1.0, lo_open=True)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.use_recurrent_dropout, self.dropout_keep_prob = use_recurrent_dropout, dropout_keep_prob
        H = hidden_size
        self.W_in = nn.Parameter(_orthogonal_blocks_(torch.empty(input_size, 4 * H), 4))
        self.W_rec = nn.Parameter(_orthogonal_blocks_(torch.empty(H, 4 * H), 4))
        self.ln_gain = nn.Parameter(torch.ones(4, H))
        self.ln_bias = nn.Parameter(torch.zeros(4, H))
        self.ln_c_gain = nn.Parameter(torch.ones(H))
        self.ln_c_bias = nn.Parameter(torch.zeros(H))

    STATE_NAMES = ("h", "c")

    @property
    def state_sizes(self) -> Tuple[int, ...]:
        return (self.hidden_size, self.hidden_size)

    def initial_state(self, batch_size: int, device=None, dtype=None):
        check_int(batch_size=batch_size, lo=0)
        device = device or self.W_rec.device
        dtype = dtype or self.W_rec.dtype
        return (torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype),
                torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor, state=None, return_d: bool = False):
        _check_seq(x, self.input_size, "LayerNormLSTMLayer")
        T, B = x.shape[0], x.shape[1]
        H = self.hidden_size
        _check_layer_state(self, state, B)
        if state is None:
            state = self.initial_state(B, x.device)
        h, c = state
        xin = _input_projection(x, self.W_in)                      # hoisted: W_x x_t for all t
        masks = None
        if self.training and self.use_recurrent_dropout and self.dropout_keep_prob < 1.0:
            masks = _dropout_masks((T, B, H), self.dropout_keep_prob, self.W_rec)
        gain, bias = self.ln_gain.view(1, 4, H), self.ln_bias.view(1, 4, H)
        xin_t = xin.unbind(0)                                      # see HyperLSTMLayer.forward
        masks_t = masks.unbind(0) if masks is not None else None
        outs = []
        for t in range(T):
            pre = torch.addmm(xin_t[t], h, self.W_rec).view(B, 4, H)
            i, g, f, o = _gate_ln(pre, gain, bias).unbind(1)
            g = torch.tanh(g)
            if masks_t is not None:
                g = g * masks_t[t]
            c = torch.sigmoid(f + FORGET_BIAS) * c + torch.sigmoid(i) * g
            h = torch.sigmoid(o) * torch.tanh(F.layer_norm(c, (H,), self.ln_c_gain, self.ln_c_bias, LN_EPS))
            outs.append(h)
        return torch.stack(outs), (h, c)


class TorchLSTMLayer(nn.Module):
    """``nn.LSTM`` (cuDNN / MKL kernels) behind the same interface.  Orthogonal per-gate init and the
    forget-gate half of ``bias_hh`` set to 1 (a learnable stand-in for the constant forget bias).
    One-hot input is fed as ``F.one_hot`` floats.  nn.LSTM has two bias vectors (b_ih, b_hh)."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        check_int(input_size=input_size, hidden_size=hidden_size, lo=1)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.lstm = nn.LSTM(input_size, hidden_size)
        H = hidden_size
        with torch.no_grad():
            # nn.LSTM stores (4H, in) with gate order i, f, g, o
            self.lstm.weight_ih_l0.copy_(_orthogonal_blocks_(torch.empty(input_size, 4 * H), 4).t())
            self.lstm.weight_hh_l0.copy_(_orthogonal_blocks_(torch.empty(H, 4 * H), 4).t())
            self.lstm.bias_ih_l0.zero_()
            self.lstm.bias_hh_l0.zero_()
            self.lstm.bias_hh_l0[H:2 * H].fill_(FORGET_BIAS)

    STATE_NAMES = ("h", "c")

    @property
    def state_sizes(self) -> Tuple[int, ...]:
        return (self.hidden_size, self.hidden_size)

    def initial_state(self, batch_size: int, device=None, dtype=None):
        check_int(batch_size=batch_size, lo=0)
        w = self.lstm.weight_hh_l0
        return (torch.zeros(batch_size, self.hidden_size, device=device or w.device, dtype=dtype or w.dtype),) * 2

    def forward(self, x: torch.Tensor, state=None, return_d: bool = False):
        _check_seq(x, self.input_size, "TorchLSTMLayer")
        _check_layer_state(self, state, x.shape[1])
        if not x.is_floating_point():
            x = F.one_hot(x.long(), self.input_size).to(self.lstm.weight_ih_l0.dtype)
        if state is None:
            state = self.initial_state(x.shape[1], x.device)
        out, (h, c) = self.lstm(x, (state[0].unsqueeze(0), state[1].unsqueeze(0)))
        return out, (h[0], c[0])


def speed_rows(vocab_size: int, hidden_size: int, hyper_num_units: int, n_z: int = 4,
               device=None, seed: int = 0) -> Dict[str, Callable[[torch.Tensor], Tuple]]:
    """The layers a speed comparison runs, each as ``fn(ids) -> (out, state)`` on the same one-hot input:
    nn.LSTM (the baseline; fed ``F.one_hot`` floats), our LN-LSTM, HyperLSTM and LN-HyperLSTM as the
    library runs them (the fast path), and the LN-HyperLSTM's ``forward_reference`` (autograd loop)."""
    torch.manual_seed(seed)
    V = vocab_size
    lstm = TorchLSTMLayer(V, hidden_size).to(device)
    ln_lstm = LayerNormLSTMLayer(V, hidden_size).to(device)
    hyper = HyperLSTMLayer(V, hidden_size, hyper_num_units, n_z, use_layer_norm=False).to(device)
    ln_hyper = HyperLSTMLayer(V, hidden_size, hyper_num_units, n_z, use_layer_norm=True).to(device)
    return {"nn.LSTM (baseline)": lambda ids: lstm(F.one_hot(ids, V).float()),
            "LN-LSTM": ln_lstm,
            "HyperLSTM": hyper,
            "LN-HyperLSTM": ln_hyper,
            "LN-HyperLSTM, autograd loop": ln_hyper.forward_reference}


def time_fwd_bwd(rows: Dict[str, Callable[[torch.Tensor], Tuple]], ids: torch.Tensor, repeats: int = 3,
                 warmup: int = 1) -> Dict[str, float]:
    """Seconds per forward+backward pass of each row on ``ids`` (T, B), the rows taking turns
    (:func:`hypernet_lib.utils.time_interleaved`); the backward pass starts from a fixed random
    gradient of the outputs."""
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.is_floating_point() or ids.numel() == 0:
        raise ValueError("ids must be a non-empty (T, B) tensor of integer ids, got "
                         f"{(ids.dtype, tuple(ids.shape)) if isinstance(ids, torch.Tensor) else type(ids).__name__}")
    weights = {name: torch.randn_like(fn(ids)[0]) for name, fn in rows.items()}
    calls = {name: (lambda fn=fn, w=weights[name]: (fn(ids)[0] * w).sum().backward()) for name, fn in rows.items()}
    return time_interleaved(calls, repeats=repeats, warmup=warmup, device=ids.device)


# ---------------------------------------------------------------------------------------------
# Vocabulary and data
# ---------------------------------------------------------------------------------------------
class Vocab:
    """Characters <-> ids.  ``chars`` is the sorted string of distinct characters."""

    def __init__(self, chars: str):
        if not isinstance(chars, str):
            raise ValueError(f"a vocabulary is built from a str of characters, got {type(chars).__name__}")
        if not chars:
            raise ValueError("a vocabulary needs at least one character")
        self.chars = "".join(sorted(set(chars)))
        self.index = {ch: i for i, ch in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> "Vocab":
        if not isinstance(text, str):
            raise ValueError(f"a vocabulary is built from a str of text, got {type(text).__name__}")
        return cls("".join(set(text)))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        """(N,) int64 ids; unknown characters raise ValueError naming them."""
        if isinstance(text, (bytes, bytearray)) or not hasattr(text, "__iter__"):
            hint = "; decode the bytes first, e.g. text.decode('utf-8')" if isinstance(text, (bytes, bytearray)) else ""
            raise ValueError(f"text must be a str, got {type(text).__name__}{hint}")
        unknown = sorted(set(text) - self.index.keys())
        if unknown:
            shown = ", ".join(repr(ch) for ch in unknown[:10])
            raise ValueError(f"text contains {len(unknown)} character(s) not in the model's vocabulary: {shown}"
                             f"{' ...' if len(unknown) > 10 else ''}; the vocabulary has {len(self)} characters "
                             f"({self.chars[:40]!r}{'...' if len(self) > 40 else ''})")
        return torch.tensor([self.index[ch] for ch in text], dtype=torch.long)

    def decode(self, ids) -> str:
        """Characters of ``ids`` (an iterable of integer ids in [0, len(self))); anything else raises ValueError."""
        if isinstance(ids, torch.Tensor):
            if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
                raise ValueError(f"ids must be integers, got a {ids.dtype} tensor")
            ids = ids.reshape(-1).tolist()
        elif isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
            raise ValueError(f"ids must be a sequence of integer ids (a list or a 1-D tensor), got "
                             f"{type(ids).__name__} {ids!r}"[:200])
        out = []
        for i in ids:
            if isinstance(i, torch.Tensor) and i.numel() == 1 and not i.is_floating_point():
                i = int(i)
            if isinstance(i, bool) or not isinstance(i, int) and not hasattr(i, "__index__"):
                raise ValueError(f"ids must be integers, got {i!r}")
            i = int(i.__index__()) if not isinstance(i, int) else i
            if not 0 <= i < len(self.chars):
                raise ValueError(f"id {i} is outside the vocabulary (ids 0..{len(self.chars) - 1})")
            out.append(self.chars[i])
        return "".join(out)


@dataclass
class CharData:
    """Encoded splits (1-D int64 tensors) and their vocabulary."""
    vocab: Vocab
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    name: str = "text"

    def describe(self) -> str:
        n = self.train.numel() + self.valid.numel() + self.test.numel()
        return (f"{self.name}: {n:,} characters, vocabulary {len(self.vocab)}; "
                f"{self.train.numel():,} train / {self.valid.numel():,} valid / {self.test.numel():,} test")


def make_char_data(train: str, valid: str, test: str, name: str = "text", vocab: Optional[Vocab] = None,
                   device=None) -> CharData:
    """Encode three splits with one vocabulary (built from all three unless given)."""
    for split_name, text in (("train", train), ("valid", valid), ("test", test)):
        if not isinstance(text, str):
            raise ValueError(f"{split_name} must be a str of text, got {type(text).__name__}")
    if vocab is not None and not isinstance(vocab, Vocab):
        raise ValueError(f"vocab must be a Vocab, got {type(vocab).__name__}")
    vocab = vocab or Vocab.from_text(train + valid + test)
    enc = lambda s: vocab.encode(s).to(device)  # noqa: E731
    return CharData(vocab, enc(train), enc(valid), enc(test), name)


def stream_batches(ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut a 1-D id tensor into ``batch_size`` contiguous streams: (B, N // B).  Truncated BPTT walks
    along dim 1 in chunks and carries the state from one chunk to the next."""
    check_int(batch_size=batch_size, lo=1)
    if not isinstance(ids, torch.Tensor) or ids.dim() != 1:
        raise ValueError(f"ids must be a 1-D tensor, got {type(ids).__name__} "
                         f"{tuple(ids.shape) if isinstance(ids, torch.Tensor) else ''}")
    n = ids.numel() // batch_size
    if n < 2:
        raise ValueError(f"{ids.numel()} characters are too few for {batch_size} streams; "
                         "use a smaller batch_size or more text")
    return ids[:n * batch_size].view(batch_size, n)


# ---------------------------------------------------------------------------------------------
# The character-level language model
# ---------------------------------------------------------------------------------------------
class CharLM(nn.Module):
    """Character-level language model: input (one-hot or embedding) -> ``num_layers`` recurrent layers
    -> linear softmax layer over the vocabulary.

    Args:
        vocab_size: V.
        cell: one of :data:`CELLS` ("lstm", "ln-lstm", "hyperlstm", "ln-hyperlstm").
        hidden_size: N_h of every layer.
        num_layers: stacked layers.
        embedding_size: 0 for one-hot input (the paper), else a learned embedding of that size.
        dropout: drop probability on the layer inputs (embedding), between layers and before the
            softmax (the paper's input/output dropout, keep 0.9 -> 0.1).
        hyper_num_units, hyper_embedding_size, use_recurrent_dropout, dropout_keep_prob, z_from, z_init:
            see :class:`HyperLSTMLayer` (recurrent dropout also works for "ln-lstm").
    """

    def __init__(self, vocab_size: int, cell: str = "ln-hyperlstm", hidden_size: int = 256, num_layers: int = 1,
                 embedding_size: int = 0, dropout: float = 0.0, hyper_num_units: int = 128,
                 hyper_embedding_size: int = 4, use_recurrent_dropout: bool = False,
                 dropout_keep_prob: float = 0.9, z_from: str = "current", z_init: str = "paper"):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"unknown cell {cell!r}; choose one of {', '.join(CELLS)}")
        check_int(vocab_size=vocab_size, hidden_size=hidden_size, num_layers=num_layers, hyper_num_units=hyper_num_units,
                  hyper_embedding_size=hyper_embedding_size, lo=1)
        check_int(embedding_size=embedding_size, lo=0)
        check_float(dropout=dropout, lo=0.0, hi=1.0, hi_open=True)
        check_float(dropout_keep_prob=dropout_keep_prob, lo=0.0, hi=1.0, lo_open=True)
        check_choice("z_from", z_from, ("current", "previous"))
        check_choice("z_init", z_init, ("paper", "random"))
        if not isinstance(use_recurrent_dropout, bool):
            raise ValueError(f"use_recurrent_dropout must be True or False, got {use_recurrent_dropout!r}")
        _check_fits_in_memory(_charlm_param_estimate(vocab_size, cell, hidden_size, num_layers, embedding_size,
                                                     hyper_num_units, hyper_embedding_size))
        if cell == "lstm" and use_recurrent_dropout:
            raise ValueError("recurrent dropout needs a cell with a visible time loop: use cell 'ln-lstm' or "
                             "'hyperlstm', or turn use_recurrent_dropout off")
        self.config = dict(vocab_size=vocab_size, cell=cell, hidden_size=hidden_size, num_layers=num_layers,
                           embedding_size=embedding_size, dropout=dropout, hyper_num_units=hyper_num_units,
                           hyper_embedding_size=hyper_embedding_size, use_recurrent_dropout=use_recurrent_dropout,
                           dropout_keep_prob=dropout_keep_prob, z_from=z_from, z_init=z_init)
        self.embedding = nn.Embedding(vocab_size, embedding_size) if embedding_size else None
        layers = []
        for k in range(num_layers):
            n_in = (embedding_size or vocab_size) if k == 0 else hidden_size
            if cell == "lstm":
                layers.append(TorchLSTMLayer(n_in, hidden_size))
            elif cell == "ln-lstm":
                layers.append(LayerNormLSTMLayer(n_in, hidden_size, use_recurrent_dropout, dropout_keep_prob))
            else:
                layers.append(HyperLSTMLayer(n_in, hidden_size, hyper_num_units, hyper_embedding_size,
                                             use_layer_norm=(cell == "ln-hyperlstm"),
                                             use_recurrent_dropout=use_recurrent_dropout,
                                             dropout_keep_prob=dropout_keep_prob, z_from=z_from,
                                             z_init=z_init))
        self.layers = nn.ModuleList(layers)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, vocab_size)

    def forward(self, ids: torch.Tensor, state=None):
        """ids (B, T) int64 -> logits (B, T, V), new state (a list with one tuple per layer)."""
        if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.dtype != torch.long:
            raise ValueError(f"CharLM expects int64 ids of shape (B, T), got "
                             f"{(ids.dtype, tuple(ids.shape)) if isinstance(ids, torch.Tensor) else type(ids).__name__}")
        if ids.numel() == 0:
            raise ValueError(f"CharLM needs at least one id, got ids of shape {tuple(ids.shape)}")
        if ids.device.type == "cpu":          # elsewhere the entry points check once (no host sync per step)
            _check_ids_in_range(ids, self.config["vocab_size"], "ids")
        self._check_state(state, ids.shape[0])
        x = ids.t()                                               # time-major (T, B)
        if self.embedding is not None:
            x = self.drop(self.embedding(x))
        state = state or [None] * len(self.layers)
        new_state = []
        for k, layer in enumerate(self.layers):
            if k > 0:
                x = self.drop(x)
            x, s = layer(x, state[k])
            new_state.append(s)
        logits = self.out(self.drop(x).transpose(0, 1))           # (B, T, V)
        return logits, new_state


def _check_state_impl(model: "CharLM", state, batch: int) -> None:
    if state is None:
        return
    if not isinstance(state, (list, tuple)) or len(state) != len(model.layers):
        raise ValueError(f"state must be a list with one entry per layer ({len(model.layers)}), as returned by "
                         f"the previous call; got {type(state).__name__}"
                         f"{' of length ' + str(len(state)) if isinstance(state, (list, tuple)) else ''}")
    for k, (s, layer) in enumerate(zip(state, model.layers)):
        if s is not None:
            hyperlstm_fast.check_state(s, batch, layer.state_sizes, layer.STATE_NAMES, what=f"state[{k}]")


CharLM._check_state = _check_state_impl


_check_ids_in_range = hyperlstm_fast.check_ids_in_range    # ValueError if an id lies outside [0, vocab_size)


def _charlm_param_estimate(vocab_size, cell, hidden_size, num_layers, embedding_size, hyper_num_units, n_z) -> int:
    """A lower estimate of a CharLM's parameter count, computed before anything is allocated."""
    h, hh = hidden_size, hyper_num_units
    total = vocab_size * embedding_size + h * vocab_size + vocab_size
    for k in range(num_layers):
        n_in = (embedding_size or vocab_size) if k == 0 else h
        total += 4 * h * (n_in + h)
        if "hyper" in cell:
            total += 4 * hh * (n_in + h + hh) + 12 * hh * n_z + 8 * n_z * h
    return total


def _check_fits_in_memory(n_params: int) -> None:
    """Refuse a model whose weights alone (float32) exceed this machine's memory, before allocating them."""
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):      # not POSIX: only an absurd size is refused
        mem = 2 ** 44
    need = 4 * n_params
    if need > mem:
        raise ValueError(f"a model of this size has about {n_params:.3g} parameters ({need / 2**30:,.3g} GiB of "
                         f"float32 weights alone), more than this machine's memory ({mem / 2**30:,.0f} GiB); "
                         "choose a smaller hidden_size, hyper_num_units, embedding_size or num_layers")


def detach_state(state):
    return [tuple(s.detach() for s in layer) for layer in state]


def lstm_hidden_for_params(vocab_size: int, target: int) -> int:
    """N_h of a one-layer ``CharLM(cell="lstm")`` whose parameter count is closest to ``target``
    (the smaller N_h on a tie): the LSTM that a comparison at equal parameters needs.
    With one-hot input over V characters that count is 4N_h(V + N_h) + 8N_h + V(N_h + 1)."""
    check_int(vocab_size=vocab_size, target=target, lo=1)
    count = lambda n: 4 * n * (vocab_size + n) + 8 * n + vocab_size * (n + 1)  # noqa: E731
    n = 1
    while count(n + 1) <= target:
        n += 1
    return n if target - count(n) <= count(n + 1) - target else n + 1


def paper_ptb_config(cell: str, hyper_embedding_size: int = 4) -> CharLM:
    """The paper's character-level PTB configuration (Table 3): 1000 units, one-hot input over
    50 characters, hyper cell 128 units, N_z = 4 (16 for "Large Embedding")."""
    return CharLM(50, cell=cell, hidden_size=1000, hyper_num_units=128,
                  hyper_embedding_size=hyper_embedding_size)


# ---------------------------------------------------------------------------------------------
# Evaluation and training
# ---------------------------------------------------------------------------------------------
LN2 = math.log(2.0)


@torch.no_grad()
def evaluate_bpc(model: CharLM, ids: torch.Tensor, batch_size: int = 32, seq_length: int = 100,
                 max_chars: Optional[int] = None, progress: bool = False) -> float:
    """Bits per character: mean −log₂ p(next char) over ``ids`` (1-D), read as ``batch_size`` streams
    with the state carried from chunk to chunk.  ``max_chars`` evaluates only the first that many."""
    check_int(batch_size=batch_size, seq_length=seq_length, lo=1)
    check_int(max_chars=max_chars, lo=2, optional=True)
    if not isinstance(ids, torch.Tensor) or ids.dim() != 1 or ids.dtype != torch.long:
        raise ValueError("ids must be a 1-D int64 tensor (e.g. data.valid), got "
                         f"{(ids.dtype, tuple(ids.shape)) if isinstance(ids, torch.Tensor) else type(ids).__name__}")
    if ids.numel() < 2:
        raise ValueError(f"bits per character need at least 2 characters, got {ids.numel()}")
    device = _model_device(model)
    _check_ids_in_range(ids if max_chars is None else ids[:max_chars], model.config["vocab_size"], "ids")
    was_training = model.training
    model.eval()
    if max_chars is not None:
        ids = ids[:max_chars]
    streams = stream_batches(ids.to(device), min(batch_size, max(1, ids.numel() // (seq_length + 1))))
    total, count, state = 0.0, 0, None
    starts = range(0, streams.shape[1] - 1, seq_length)
    for s in _maybe_tqdm(starts, progress, "eval"):
        chunk = streams[:, s:s + seq_length + 1]
        logits, state = model(chunk[:, :-1], state)
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), chunk[:, 1:].reshape(-1),
                                 reduction="sum").item()
        count += chunk[:, 1:].numel()
    model.train(was_training)
    return total / count / LN2


def _model_device(model) -> torch.device:
    if not isinstance(model, CharLM):
        raise ValueError(f"model must be a CharLM, got {type(model).__name__}")
    return next(model.parameters()).device


def _check_model_vocab(model, vocab, fix: str = "use") -> torch.device:
    """The model's device, or a ValueError unless ``model`` is a CharLM and ``vocab`` the Vocab of its size."""
    if not isinstance(vocab, Vocab):
        raise ValueError(f"vocab must be a Vocab, got {type(vocab).__name__}")
    device = _model_device(model)
    if len(vocab) != model.config["vocab_size"]:
        raise ValueError(f"the vocabulary has {len(vocab)} characters but the model predicts "
                         f"{model.config['vocab_size']}; {fix} the vocabulary the model was trained with")
    return device


def _maybe_tqdm(it, progress: bool, desc: str, total=None):
    if not progress:
        return it
    from tqdm.auto import tqdm
    return tqdm(it, desc=desc, total=total, leave=False)


@dataclass
class LMHistory:
    """Learning curve of :func:`train_char_lm`, one entry per evaluation."""
    step: List[int] = field(default_factory=list)
    chars: List[int] = field(default_factory=list)
    train_bpc: List[float] = field(default_factory=list)
    val_bpc: List[float] = field(default_factory=list)
    lr: List[float] = field(default_factory=list)
    seconds: List[float] = field(default_factory=list)
    best_val_bpc: float = float("inf")
    best_step: int = 0

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, d: dict) -> "LMHistory":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


TRAIN_STATE_FORMAT = "hypernet_lib.hyperlstm.train_state/1"


def _read_checkpoint(path: str, fmt: str, what: str, fix: str, map_location=None) -> dict:
    """torch.load (weights only) of a file this module wrote in format ``fmt``; a file that cannot be read
    or has another format raises :class:`CheckpointError` naming ``what`` was expected and the ``fix``."""
    if os.path.isdir(path):
        raise CheckpointError(f"{path!r} is a directory, not a {what} file; pass the checkpoint file's path")
    if os.path.exists(path) and not os.path.isfile(path):
        raise CheckpointError(f"{path!r} is not a regular file, so not a {what}{fix}")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise CheckpointError(f"{path!r} is empty (0 bytes), not a {what}{fix}")
    try:
        ck = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is reported the same way
        first = (str(e).strip().splitlines() or ["no details"])[0][:200]
        raise CheckpointError(f"{path!r} is not a readable {what} ({type(e).__name__}: {first}){fix}") from None
    if not isinstance(ck, dict) or ck.get("format") != fmt:
        keys = sorted(map(str, ck))[:8] if isinstance(ck, dict) else type(ck).__name__
        raise CheckpointError(f"{path!r} is not a {what} (expected format {fmt!r}; found {keys}){fix}")
    return ck


def _load_train_state(path: str, run: dict, device) -> dict:
    """Read a training state written by :func:`train_char_lm` and check it belongs to this run."""
    fix = "; pass another checkpoint path or delete the file to start the run over"
    ck = _read_checkpoint(path, TRAIN_STATE_FORMAT, "hyperlstm training state", fix, device)
    missing = [k for k in ("run", "step", "model", "optimizer", "state", "best_state", "bad_evals", "history",
                           "torch_rng") if k not in ck]
    if missing or not isinstance(ck["run"], dict):
        raise CheckpointError(f"{path!r} is a damaged hyperlstm training state (missing {', '.join(missing) or 'run'})"
                              f"{fix}")
    saved = ck["run"]
    diff = settings_diff(saved, {k: v for k, v in run.items() if not k.endswith("_sha256")})
    if diff:
        raise CheckpointError(f"{path!r} holds an interrupted run with other settings ({diff}); "
                              "resume it with its own settings, or delete the file to start over")
    for key, what in (("train_sha256", "training text"), ("valid_sha256", "validation text"),
                      ("vocab_sha256", "vocabulary")):
        # states written before the hashes were recorded have no such key: only sizes are compared for them
        if key in saved and saved[key] != run.get(key):
            raise CheckpointError(
                f"{path!r} holds an interrupted run on another {what} (content hash {str(saved[key])[:12]}... "
                f"there, {str(run.get(key))[:12]}... now; the sizes and settings match); resume it on the "
                "same data, or delete the file to start over")
    return ck


def train_char_lm(model: CharLM, data: CharData, *, batch_size: int = 32, seq_length: int = 100,
                  lr: float = 1e-3, epochs: float = 1.0, max_steps: Optional[int] = None,
                  eval_every: int = 200, val_chars: Optional[int] = None, clip: Optional[float] = 1.0,
                  lr_decay: float = 1.0, patience: int = 0, seed: int = 0, progress: bool = True,
                  keep_best: bool = True, on_eval=None, checkpoint: Optional[str] = None) -> LMHistory:
    """Train with Adam and truncated BPTT.

    The training text is cut into ``batch_size`` streams (:func:`stream_batches`); each step takes the
    next ``seq_length`` characters of every stream, and the final state of one step is the (detached)
    initial state of the next, so the model sees context beyond one chunk.  Every ``eval_every`` steps
    the validation bpc is measured (on the first ``val_chars`` characters if given); if it has not
    improved for ``patience`` evaluations the learning rate is multiplied by ``lr_decay``.  With
    ``keep_best`` the weights of the best validation bpc are restored at the end.

    With ``checkpoint`` (a path) the whole training state (weights, Adam's moments, the carried hidden
    state, the random-number generators, the learning curve, the best weights so far) is written
    atomically after every evaluation.  If the file exists when training starts, the run resumes from it
    and ends with exactly the weights and curve of an uninterrupted run (steps after the last evaluation
    are redone); a file from a run with other settings raises :class:`CheckpointError`.  ``on_eval(hist)``
    runs after the checkpoint is written (raise in it to interrupt).

    Arguments, the data and the checkpoint path are checked before any work (ValueError naming the
    argument); the run state records content hashes of the training and validation text and of the
    vocabulary, and a state of other data is refused.  A NaN or infinite training loss, or non-finite
    weights, raise :class:`~hypernet_lib.utils.TrainingDiverged` at the next evaluation, before anything
    is written: the checkpoint keeps the run as of its last good evaluation.
    """
    check_int(batch_size=batch_size, seq_length=seq_length, eval_every=eval_every, lo=1)
    check_int(max_steps=max_steps, val_chars=val_chars, lo=1, optional=True)
    check_int(patience=patience, lo=0)
    check_int(seed=seed, lo=0, hi=MAX_SEED)
    check_float(lr=lr, lo=0.0)
    check_float(epochs=epochs, lo=0.0, lo_open=True)
    check_float(clip=clip, lo=0.0, optional=True)          # 0 or None: no clipping
    check_float(lr_decay=lr_decay, lo=0.0, hi=1.0, lo_open=True)
    if not isinstance(data, CharData):
        raise ValueError(f"data must be a CharData (see make_char_data), got {type(data).__name__}")
    device = _model_device(model)
    if len(data.vocab) != model.config["vocab_size"]:
        raise ValueError(f"the model's vocab_size is {model.config['vocab_size']} but data.vocab has "
                         f"{len(data.vocab)} characters; build the model with CharLM(len(data.vocab), ...)")
    for split in ("train", "valid"):
        ids = getattr(data, split)
        if not isinstance(ids, torch.Tensor) or ids.dim() != 1 or ids.dtype != torch.long:
            raise ValueError(f"data.{split} must be a 1-D int64 tensor of ids")
        _check_ids_in_range(ids, len(data.vocab), f"data.{split}")
    if data.valid.numel() < 2:
        raise ValueError(f"data.valid has {data.valid.numel()} characters; validation needs at least 2")
    if checkpoint is not None:
        check_output_path(checkpoint, "checkpoint")
    torch.manual_seed(seed)
    streams = stream_batches(data.train.to(device), batch_size)
    steps_per_epoch = (streams.shape[1] - 1) // seq_length
    if steps_per_epoch < 1:
        raise ValueError(f"the training text ({data.train.numel():,} characters) is too short for "
                         f"batch_size={batch_size} × seq_length={seq_length}")
    total_steps = int(math.ceil(epochs * steps_per_epoch))
    if max_steps is not None:
        total_steps = min(total_steps, max_steps)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    hist = LMHistory()
    best_state, bad_evals, state, start = None, 0, None, 0
    # what must agree for a saved state to continue this run
    run = dict(model=dict(getattr(model, "config", {})), batch_size=batch_size, seq_length=seq_length, lr=lr,
               epochs=epochs, max_steps=max_steps, eval_every=eval_every, val_chars=val_chars, clip=clip,
               lr_decay=lr_decay, patience=patience, seed=seed, keep_best=keep_best,
               train_chars=data.train.numel(), valid_chars=data.valid.numel())
    if checkpoint is not None:      # which data the run is on, not only how much (hashing costs a pass over it)
        run.update(train_sha256=tensor_sha256(data.train), valid_sha256=tensor_sha256(data.valid),
                   vocab_sha256=tensor_sha256(torch.tensor([ord(c) for c in data.vocab.chars])))
    if checkpoint is not None and os.path.exists(checkpoint):
        ck = _load_train_state(checkpoint, run, device)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        torch.set_rng_state(ck["torch_rng"].cpu())
        if ck.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([r.cpu() for r in ck["cuda_rng"]])
        hist, best_state, bad_evals, start = LMHistory.from_dict(ck["history"]), ck["best_state"], \
            ck["bad_evals"], ck["step"]
        state = ck["state"]
    run_loss, run_n = torch.zeros((), device=streams.device), 0           # summed on the device
    t0 = time.perf_counter() - (hist.seconds[-1] if hist.seconds else 0.0)
    model.train()
    bar = _maybe_tqdm(range(start, total_steps), progress, "train", total=total_steps)
    if start and hasattr(bar, "update"):
        bar.update(start)
    for step in bar:
        k = step % steps_per_epoch
        if k == 0:
            state = None                                          # a new epoch starts from a zero state
        chunk = streams[:, k * seq_length:(k + 1) * seq_length + 1]
        logits, state = model(chunk[:, :-1], state)
        state = detach_state(state)                               # truncated BPTT: carry, don't backprop
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), chunk[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        run_loss += loss.detach()                                  # no host sync per step
        run_n += 1
        last = step + 1 == total_steps
        if (step + 1) % eval_every == 0 or last:
            good = hist.step[-1] if hist.step else 0
            check_finite(loss=run_loss, model=model, where=f"between steps {good} and {step + 1}",
                         hint=(f"{'the run as of step ' + str(good) + ' stays in ' + repr(checkpoint) + '; ' if checkpoint and good else ''}"
                               f"lower the learning rate (lr={lr:g}) or clip the gradients"))
            val = evaluate_bpc(model, data.valid, batch_size=batch_size, seq_length=seq_length,
                               max_chars=val_chars)
            hist.step.append(step + 1)
            hist.chars.append((step + 1) * batch_size * seq_length)
            hist.train_bpc.append(run_loss.item() / run_n / LN2)
            hist.val_bpc.append(val)
            hist.lr.append(opt.param_groups[0]["lr"])
            hist.seconds.append(time.perf_counter() - t0)
            run_loss, run_n = torch.zeros_like(run_loss), 0
            if val < hist.best_val_bpc:
                hist.best_val_bpc, hist.best_step, bad_evals = val, step + 1, 0
                if keep_best:
                    best_state = {n: p.detach().clone() for n, p in model.state_dict().items()}
            else:
                bad_evals += 1
                if patience and bad_evals >= patience and lr_decay != 1.0:
                    for g in opt.param_groups:
                        g["lr"] *= lr_decay
                    bad_evals = 0
            if progress and hasattr(bar, "set_postfix"):
                bar.set_postfix(train_bpc=f"{hist.train_bpc[-1]:.3f}", val_bpc=f"{val:.3f}")
            if checkpoint is not None:
                atomic_save({"format": TRAIN_STATE_FORMAT, "run": run, "step": step + 1,
                             "model": model.state_dict(), "optimizer": opt.state_dict(),
                             "state": state, "best_state": best_state, "bad_evals": bad_evals,
                             "history": hist.to_dict(), "torch_rng": torch.get_rng_state(),
                             "cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else None},
                            checkpoint)
            if on_eval is not None:
                on_eval(hist)
    if keep_best and best_state is not None:
        model.load_state_dict(best_state)
    return hist


# ---------------------------------------------------------------------------------------------
# Sampling and the scaling vectors
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def generate(model: CharLM, vocab: Vocab, prime_text: str = "\n", length: int = 200, temperature: float = 1.0,
             top_k: Optional[int] = None, generator: Optional[torch.Generator] = None) -> str:
    """Sample ``length`` characters after ``prime_text``.  p ∝ softmax(logits / temperature), restricted
    to the ``top_k`` most likely characters if given.  Deterministic for a seeded CPU ``generator``.
    Returns the prime text followed by the sample."""
    if not isinstance(prime_text, str) or not prime_text:
        raise ValueError("prime_text must be a str of at least one character")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator (e.g. torch.Generator().manual_seed(0)) or None, "
                         f"got {type(generator).__name__}")
    check_float(temperature=temperature, lo=0.0, lo_open=True)
    check_int(length=length, lo=0)
    check_int(top_k=top_k, lo=1, optional=True)
    device = _check_model_vocab(model, vocab)
    ids = vocab.encode(prime_text).to(device).unsqueeze(0)       # (1, P); unknown chars raise
    was_training = model.training
    model.eval()
    logits, state = model(ids)
    logits = logits[0, -1].float().cpu()
    out = []
    for _ in range(length):
        # float64 and max 0: a tiny temperature gives -inf (greedy), not 0/0 = NaN
        scaled = (logits.double() - logits.double().max()) / temperature
        if top_k is not None and top_k < scaled.numel():
            kth = torch.topk(scaled, top_k).values[-1]
            scaled = scaled.masked_fill(scaled < kth, float("-inf"))
        nxt = torch.multinomial(torch.softmax(scaled, -1), 1, generator=generator)
        out.append(int(nxt))
        logits, state = model(nxt.view(1, 1).to(device), state)
        logits = logits[0, -1].float().cpu()
    model.train(was_training)
    return prime_text + vocab.decode(out)


@torch.no_grad()
def scaling_vectors(model: CharLM, vocab: Vocab, text: str, layer: int = 0) -> Dict[str, torch.Tensor]:
    """The HyperLSTM's d_h, d_x and W_bz z_b while reading ``text``: each (T, 4, N_h), gates i, g, f, o."""
    device = _check_model_vocab(model, vocab)
    if not isinstance(text, str) or not text:
        raise ValueError(f"text must be a str of at least one character, got {text!r}"[:200])
    check_int(layer=layer, lo=0, hi=len(model.layers) - 1)
    lay = model.layers[layer]
    if not isinstance(lay, HyperLSTMLayer):
        raise ValueError(f"layer {layer} is a {type(lay).__name__}; scaling vectors exist only for hyperlstm cells")
    x = vocab.encode(text).to(device).view(-1, 1)               # (T, 1); unknown chars raise
    was_training = model.training
    model.eval()
    if model.embedding is not None:
        x = model.embedding(x)
    for k in range(layer):
        x, _ = model.layers[k](x)
    _, _, d = lay(x, return_d=True)
    model.train(was_training)
    return {k: v[:, 0].cpu() for k, v in d.items()}


# ---------------------------------------------------------------------------------------------
# Checkpoints (atomic) carrying the vocabulary
# ---------------------------------------------------------------------------------------------
def save_lm(path: str, model: CharLM, vocab: Vocab, **extra) -> None:
    """Write model config, weights and vocabulary (and ``extra`` picklable-by-weights_only data).
    Weights that are not finite are refused (:class:`~hypernet_lib.utils.TrainingDiverged`)."""
    _check_model_vocab(model, vocab, fix="save")
    check_finite(model=model, where="before saving", hint="nothing was written")
    atomic_save({"format": CHECKPOINT_FORMAT, "config": dict(model.config), "vocab": vocab.chars,
                  "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **extra}, path)


def load_lm(path: str, map_location="cpu") -> Tuple[CharLM, Vocab, dict]:
    """Read a checkpoint written by :func:`save_lm`; anything else raises :class:`CheckpointError`."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist; train one with "
                                "`python -m hypernet_lib.hyperlstm train --save_model PATH`")
    ck = _read_checkpoint(path, CHECKPOINT_FORMAT, "hyperlstm language-model checkpoint",
                          "; it may belong to another model", map_location)
    bad = lambda why: CheckpointError(f"{path!r} is a damaged hyperlstm checkpoint: {why}")  # noqa: E731
    config, chars, weights = ck.get("config"), ck.get("vocab"), ck.get("state_dict")
    if not isinstance(config, dict) or not isinstance(chars, str) or not isinstance(weights, dict):
        raise bad("its config, vocab or state_dict is missing or of the wrong type")
    import inspect
    known = set(inspect.signature(CharLM.__init__).parameters) - {"self"}
    unknown = sorted(map(str, set(config) - known))
    if unknown:
        raise bad(f"unknown config key(s) {', '.join(unknown)} (a newer or another library wrote it?)")
    try:
        model = CharLM(**config)
    except (TypeError, ValueError) as e:
        raise bad(f"its config is invalid ({(str(e).splitlines() or [''])[0]})") from None
    if len(chars) != len(set(chars)) or "".join(sorted(chars)) != chars or not chars:
        raise bad("its vocabulary is not a sorted string of distinct characters")
    if len(chars) != config["vocab_size"]:
        raise bad(f"its vocabulary has {len(chars)} characters but the model predicts {config['vocab_size']}, "
                  "so generated text would be shifted")
    try:
        model.load_state_dict(weights)
    except (RuntimeError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path!r}: weights do not fit the stored config "
                              f"({(str(e).splitlines() or [''])[0]})") from None
    try:
        check_finite(model=model)
    except TrainingDiverged as e:
        raise bad(f"{str(e).split(': ', 1)[1].split(';')[0]} (it was saved from a diverged run); "
                  "retrain with a lower learning rate") from None
    return model, Vocab(chars), ck


if __name__ == "__main__":  # pragma: no cover
    from hypernet_lib.hyperlstm_cli import main
    raise SystemExit(main())

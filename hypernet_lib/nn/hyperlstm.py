"""Dynamic hypernetworks for sequences: the HyperLSTM layer (paper §3.2, Eq. 7-13) and the LSTM baselines.

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
differentiate it; :meth:`HyperLSTMLayer.forward` (the default) runs :mod:`hypernet_lib.nn.hyperlstm_fast`,
which builds no graph inside the loop and differentiates it by hand, computing each weight gradient as
one matmul over all steps.  Tests check that the two agree, values and gradients, for every option.

Shapes: sequences are time-major inside the cells, ``(T, B, ·)``; the language model takes
batch-first ids ``(B, T)``.  Gate order everywhere is (i, g, f, o).

The character-level language model is in :mod:`hypernet_lib.nn.charlm`, its training, sampling and
checkpoints in :mod:`hypernet_lib.training.lm`, and the command line is ``python -m hypernet_lib.cli``.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import check_float, check_ids_in_range, check_int, check_state
from . import hyperlstm_fast
from .hyperlstm_buffers import (
    LN_EPS,  # 1e-3, as in Ha's code: one constant for every implementation
    _z_bias,
)

__all__ = ["CELLS", "GATES", "SOURCES", "FORGET_BIAS", "HyperLSTMLayer", "LayerNormLSTMLayer", "TorchLSTMLayer"]

#: Cells the language model can use ("ln-*": layer norm in main and hyper cell); also paper.PTB's keys.
CELLS = ("lstm", "ln-lstm", "hyperlstm", "ln-hyperlstm")

GATES = ("i", "g", "f", "o")
SOURCES = ("h", "x", "b")      # the embeddings z_h, z_x, z_b scale W_h h, W_x x and make the bias

FORGET_BIAS = 1.0      # added inside σ(·) of the forget gate, after the layer norm


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
        check_ids_in_range(x, input_size, f"{name}: the ids in x", f"the one-hot input of input_size={input_size}")


def _check_layer_state(layer, state, batch: int, dtype=None) -> None:
    """The state passed to a layer's forward: None, or what initial_state() / the previous call returns."""
    if state is not None:
        check_state(state, batch, layer.state_sizes, layer.STATE_NAMES, dtype=dtype)


def _dropout_masks(shape, keep: float, like: torch.Tensor) -> torch.Tensor:
    """Recurrent-dropout masks for a whole sequence, drawn at once, already scaled by 1/keep."""
    return torch.empty(shape, dtype=like.dtype, device=like.device).bernoulli_(keep).div_(keep)


class HyperLSTMLayer(nn.Module):
    """One HyperLSTM layer (main LSTM with N_h units driven by a hyper LSTM with N_ĥ units).

    Args:
        input_size: size of x_t (for one-hot input, the vocabulary size; pass integer ids).
        hidden_size: N_h, units of the main cell.
        hyper_num_units: N_ĥ, units of the hyper cell (paper: 128).
        n_z: N_z, size of each embedding z (paper: 4; "Large Embedding": 16).
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
        W_z    (N_ĥ, 3·4·N_z)      [W_ĥh | W_ĥx | W_ĥb] for the 4 gates: ĥ -> z_h, z_x, z_b (see z_weights)
        b_z    (2·4·N_z,)          biases of z_h and z_x (z_b has none)
        W_d    (3·4, N_z, N_h)     W_hz, W_xz, W_bz for the 4 gates: z -> d_h, d_x, W_bz z_b
        b_0    (4N_h,)             static part of the main bias
        ln_gain, ln_bias (4, N_h); ln_c_gain, ln_c_bias (N_h,); the hyper cell's ln_hat_* likewise.
    """

    def __init__(self, input_size: int, hidden_size: int, hyper_num_units: int = 128,
                 n_z: int = 4, use_layer_norm: bool = True,
                 use_recurrent_dropout: bool = False, dropout_keep_prob: float = 0.9,
                 z_from: str = "current", z_init: str = "paper"):
        super().__init__()
        if z_init not in ("paper", "random"):
            raise ValueError(f"z_init must be 'paper' (zeros, as published) or 'random' (N(0, 0.01²), breaks the "
                             f"symmetry of the N_z coordinates), got {z_init!r}")
        self.z_init = z_init
        check_int(input_size=input_size, hidden_size=hidden_size, hyper_num_units=hyper_num_units, n_z=n_z, lo=1)
        check_float(dropout_keep_prob=dropout_keep_prob, lo=0.0, hi=1.0, lo_open=True)
        if z_from not in ("current", "previous"):
            raise ValueError(f"z_from must be 'current' (ĥ_t, Ha's code) or 'previous' (ĥ_(t-1), paper), "
                             f"got {z_from!r}")
        H, Hh, Nz = hidden_size, hyper_num_units, n_z
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
            W_z = self.z_weights()                   # (N_ĥ, s, y, N_z)
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
        :mod:`hypernet_lib.nn.hyperlstm_fast` (no autograd graph inside the time loop, a hand-written backward,
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
        b_z = _z_bias(self.b_z)                                    # z_b has no bias
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

    def z_weights(self) -> torch.Tensor:
        """W_z as a view with named axes (N_ĥ, s, y, N_z): hyper unit, embedding s in :data:`SOURCES`
        (z_h, z_x, z_b), gate y in :data:`GATES`, coordinate of z.  ``z_weights()[:, s, y]`` is the paper's
        W_ĥs^y (z_s^y = ĥ @ W_ĥs^y + b_ĥs^y).  Shares W_z's storage and gradient: change it under
        ``torch.no_grad()``, ``.detach()`` it to plot; :meth:`z_maps` gives the same matrices by name."""
        return self.W_z.view(self.hyper_num_units, len(SOURCES), len(GATES), self.n_z)

    def z_maps(self) -> Dict[str, Dict[str, torch.Tensor]]:
        """ĥ -> z weights: ``z_maps()[s][y]`` is the (N_ĥ, N_z) matrix that makes z_s^y, for the source
        s in "h", "x", "b" (the paper's W_ĥh^y, W_ĥx^y, W_ĥb^y) and the gate y in "i", "g", "f", "o"."""
        W = self.z_weights().detach()
        return {s: {y: W[:, a, k] for k, y in enumerate(GATES)} for a, s in enumerate(SOURCES)}

    def z_biases(self) -> Dict[str, Dict[str, torch.Tensor]]:
        """Biases of z_h and z_x: ``z_biases()[s][y]`` (N_z,) for s in "h", "x" (z_b has none)."""
        b = self.b_z.detach().view(2, 4, self.n_z)
        return {s: {y: b[a, k] for k, y in enumerate(GATES)} for a, s in enumerate("hx")}

    def d_maps(self) -> Dict[str, Dict[str, torch.Tensor]]:
        """z -> d weights: ``d_maps()[s][y]`` (N_z, N_h) is W_hz^y, W_xz^y or W_bz^y for s = "h", "x", "b"."""
        W = self.W_d.detach().view(3, 4, self.n_z, self.hidden_size)
        return {s: {y: W[a, k] for k, y in enumerate(GATES)} for a, s in enumerate(SOURCES)}


class _LSTMState:
    """The (h, c) state of the two LSTM baselines: names, sizes, and zeros on the device and in the
    dtype of the layer's recurrent weight (``_recurrent_weight()``)."""
    STATE_NAMES = ("h", "c")

    @property
    def state_sizes(self) -> Tuple[int, ...]:
        return (self.hidden_size, self.hidden_size)

    def initial_state(self, batch_size: int, device=None, dtype=None):
        check_int(batch_size=batch_size, lo=0)
        w = self._recurrent_weight()
        return tuple(torch.zeros(batch_size, self.hidden_size, device=device or w.device,
                                 dtype=dtype or w.dtype) for _ in self.STATE_NAMES)


class LayerNormLSTMLayer(_LSTMState, nn.Module):
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

    def _recurrent_weight(self) -> torch.Tensor:
        return self.W_rec

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


class TorchLSTMLayer(_LSTMState, nn.Module):
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

    def _recurrent_weight(self) -> torch.Tensor:
        return self.lstm.weight_hh_l0

    def forward(self, x: torch.Tensor, state=None, return_d: bool = False):
        _check_seq(x, self.input_size, "TorchLSTMLayer")
        _check_layer_state(self, state, x.shape[1])
        if not x.is_floating_point():
            x = F.one_hot(x.long(), self.input_size).to(self.lstm.weight_ih_l0.dtype)
        if state is None:
            state = self.initial_state(x.shape[1], x.device)
        out, (h, c) = self.lstm(x, (state[0].unsqueeze(0), state[1].unsqueeze(0)))
        return out, (h[0], c[0])

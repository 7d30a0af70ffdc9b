"""A HyperLSTM cell written for reading: one time step, gate by gate, as the paper writes it.

:class:`HyperLSTMLayer` in :mod:`hypernet_lib.nn.hyperlstm` packs the weights of all gates (and of
both cells) into a few large matrices so that a step costs a handful of matrix products. This
module keeps every piece under its own name, one per gate y ∈ {i, g, f, o}, and computes one
step the way the equations read. It is slow and meant to be read; ``from_layer`` copies the
weights of a trained (or fresh) ``HyperLSTMLayer`` into it, and ``tests/nn/test_hyperlstm_readable.py``
checks that both give the same outputs and states.

Conventions. A batch of vectors is a batch of *rows*, so the paper's ``W v`` is written
``v @ W`` and every matrix here is stored (inputs, outputs). The numbers in the comments,
(1) to (7), are those of the equations in chapter 5 of the book; each also names the place in the
paper (§3.2 for the scaling vectors, Appendix A.2.2 for the HyperLSTM, A.2.3 for its layer norm).

Not covered here: recurrent dropout (the cell runs as in evaluation) and learned input
embeddings (``x_t`` is any float vector; for characters, a one-hot vector).
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_ids_in_range, check_int, check_shape, check_state
from .hyperlstm import FORGET_BIAS, GATES, LN_EPS, HyperLSTMLayer

__all__ = ["layer_norm", "ReadableHyperLSTMCell"]


def _per_gate(make) -> nn.ParameterDict:
    return nn.ParameterDict({y: nn.Parameter(make()) for y in GATES})


def layer_norm(v: torch.Tensor, gain: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """LN(v) = gain ⊙ (v − mean(v)) / sqrt(var(v) + ε) + bias, over the last dimension."""
    mean = v.mean(-1, keepdim=True)
    var = v.var(-1, unbiased=False, keepdim=True)
    return gain * (v - mean) / torch.sqrt(var + LN_EPS) + bias


class ReadableHyperLSTMCell(nn.Module):
    """One HyperLSTM step, every gate and every weight under its own name.

    Sizes: input N_x, main cell N_h, hyper cell N_ĥ, embeddings N_z. Weights, per gate y:

    ====================  ===============  ==============================================
    name                  shape            role
    ====================  ===============  ==============================================
    ``W_hhat_xhat[y]``    (N_h + N_x, N_ĥ)  hyper cell, on x̂_t = [h_{t-1}; x_t]
    ``W_hhat_hhat[y]``    (N_ĥ, N_ĥ)        hyper cell, on ĥ_{t-1}
    ``b_hhat[y]``         (N_ĥ,)            hyper cell bias (without layer norm)
    ``W_zh[y]``, ``b_zh``  (N_ĥ, N_z)       ĥ → z_h  (the paper's W_ĥh, b_ĥh)
    ``W_zx[y]``, ``b_zx``  (N_ĥ, N_z)       ĥ → z_x  (W_ĥx, b_ĥx)
    ``W_zb[y]``           (N_ĥ, N_z)        ĥ → z_b  (W_ĥb, no bias)
    ``W_hz[y]``           (N_z, N_h)        z_h → d_h
    ``W_xz[y]``           (N_z, N_h)        z_x → d_x
    ``W_bz[y]``, ``b_0``   (N_z, N_h)       z_b → dynamic bias
    ``W_h[y]``            (N_h, N_h)        main cell, on h_{t-1}
    ``W_x[y]``            (N_x, N_h)        main cell, on x_t
    ====================  ===============  ==============================================

    With layer norm, each gate of each cell has its own gain and bias (``ln_*``), and the cell
    states have one pair each (``ln_c_*``, ``ln_hat_c_*``).
    """

    def __init__(self, input_size: int, hidden_size: int, hyper_num_units: int, n_z: int,
                 use_layer_norm: bool = True, z_from: str = "current"):
        super().__init__()
        if z_from not in ("current", "previous"):
            raise ValueError(f"z_from must be 'current' or 'previous', got {z_from!r}")
        check_int(input_size=input_size, hidden_size=hidden_size, hyper_num_units=hyper_num_units, n_z=n_z, lo=1)
        Nx, Nh, Nhh, Nz = input_size, hidden_size, hyper_num_units, n_z
        self.sizes = dict(input_size=Nx, hidden_size=Nh, hyper_num_units=Nhh, n_z=Nz)
        self.use_layer_norm, self.z_from = use_layer_norm, z_from
        zeros = torch.zeros
        # the hyper cell: an LSTM with N_ĥ units on x̂_t = [h_{t-1}; x_t]
        self.W_hhat_xhat = _per_gate(lambda: zeros(Nh + Nx, Nhh))
        self.W_hhat_hhat = _per_gate(lambda: zeros(Nhh, Nhh))
        self.b_hhat = _per_gate(lambda: zeros(Nhh))
        # ĥ -> the embeddings z_h, z_x, z_b (N_z numbers each, per gate)
        self.W_zh, self.b_zh = _per_gate(lambda: zeros(Nhh, Nz)), _per_gate(lambda: zeros(Nz))
        self.W_zx, self.b_zx = _per_gate(lambda: zeros(Nhh, Nz)), _per_gate(lambda: zeros(Nz))
        self.W_zb = _per_gate(lambda: zeros(Nhh, Nz))
        # z -> the weight scaling vectors d_h, d_x and the dynamic bias (N_h numbers each)
        self.W_hz = _per_gate(lambda: zeros(Nz, Nh))
        self.W_xz = _per_gate(lambda: zeros(Nz, Nh))
        self.W_bz, self.b_0 = _per_gate(lambda: zeros(Nz, Nh)), _per_gate(lambda: zeros(Nh))
        # the main cell's ordinary weights, which d_h and d_x rescale row by row
        self.W_h = _per_gate(lambda: zeros(Nh, Nh))
        self.W_x = _per_gate(lambda: zeros(Nx, Nh))
        if use_layer_norm:
            self.ln_gain, self.ln_bias = _per_gate(lambda: torch.ones(Nh)), _per_gate(lambda: zeros(Nh))
            self.ln_hat_gain = _per_gate(lambda: torch.ones(Nhh))
            self.ln_hat_bias = _per_gate(lambda: zeros(Nhh))
            self.ln_c_gain, self.ln_c_bias = nn.Parameter(torch.ones(Nh)), nn.Parameter(zeros(Nh))
            self.ln_hat_c_gain = nn.Parameter(torch.ones(Nhh))
            self.ln_hat_c_bias = nn.Parameter(zeros(Nhh))

    def hyper_step(self, x_hat, h_hat, c_hat):
        """The hyper cell: an ordinary LSTM step on x̂_t (layer norm per gate if on)."""
        gate = {}
        for y in GATES:
            pre = x_hat @ self.W_hhat_xhat[y] + h_hat @ self.W_hhat_hhat[y]
            if self.use_layer_norm:
                gate[y] = layer_norm(pre, self.ln_hat_gain[y], self.ln_hat_bias[y])
            else:
                gate[y] = pre + self.b_hhat[y]
        f, i = torch.sigmoid(gate["f"] + FORGET_BIAS), torch.sigmoid(gate["i"])
        c_hat = f * c_hat + i * torch.tanh(gate["g"])
        c_norm = c_hat
        if self.use_layer_norm:
            c_norm = layer_norm(c_hat, self.ln_hat_c_gain, self.ln_hat_c_bias)
        h_hat = torch.sigmoid(gate["o"]) * torch.tanh(c_norm)
        return h_hat, c_hat

    def forward(self, x: torch.Tensor, state: Tuple[torch.Tensor, ...]):
        """One step. x: (B, N_x); state: (h, c, ĥ, ĉ). Returns h_t, the new state
        and, per gate, the z's and d's of this step (for looking at)."""
        self._check_step(x, state)
        h, c, h_hat, c_hat = state
        x_hat = torch.cat([h, x], dim=-1)                      # (1) [h_{t-1}; x_t]
        h_hat_new, c_hat_new = self.hyper_step(x_hat, h_hat, c_hat)          # (2)
        # Ha's code reads the z's off ĥ_t; the paper's equations off ĥ_{t-1}
        s = h_hat_new if self.z_from == "current" else h_hat

        gate, seen = {}, {}
        for y in GATES:                                        # y = i, g, f, o
            z_h = s @ self.W_zh[y] + self.b_zh[y]              # (3) z_h^y
            z_x = s @ self.W_zx[y] + self.b_zx[y]              # (3) z_x^y
            z_b = s @ self.W_zb[y]                             # (3) z_b^y
            d_h = z_h @ self.W_hz[y]                           # (4) d_h^y = W_hz^y z_h^y
            d_x = z_x @ self.W_xz[y]                           # (4) d_x^y = W_xz^y z_x^y
            b = z_b @ self.W_bz[y] + self.b_0[y]               # (4) b^y
            pre = (d_h * (h @ self.W_h[y])                     # (5) d_h^y ⊙ W_h^y h_{t-1}
                   + d_x * (x @ self.W_x[y])                   # (5)   + d_x^y ⊙ W_x^y x_t
                   + b)                                        # (5)   + b^y
            if self.use_layer_norm:                            # (5) LN(...), per gate
                pre = layer_norm(pre, self.ln_gain[y], self.ln_bias[y])
            gate[y] = pre
            seen[y] = dict(z_h=z_h, z_x=z_x, z_b=z_b, d_h=d_h, d_x=d_x, b=b)

        f, i = torch.sigmoid(gate["f"] + FORGET_BIAS), torch.sigmoid(gate["i"])
        c = f * c + i * torch.tanh(gate["g"])                  # (6) c_t
        c_norm = c
        if self.use_layer_norm:
            c_norm = layer_norm(c, self.ln_c_gain, self.ln_c_bias)
        h = torch.sigmoid(gate["o"]) * torch.tanh(c_norm)      # (7) h_t
        return h, (h, c, h_hat_new, c_hat_new), seen

    def run(self, xs: torch.Tensor, state=None):
        """A whole sequence, one step after the other. xs: (T, B, N_x) floats, or (T, B) integer ids
        (turned into one-hot vectors). Returns h for every step (T, B, N_h) and the final state."""
        n_x = self.sizes["input_size"]
        if isinstance(xs, torch.Tensor) and not xs.is_floating_point():
            check_shape("xs", xs, ("T", "B"), floating=False, fix=f"integer ids, or floats (T, B, {n_x})")
            check_ids_in_range(xs, n_x, "xs", f"the one-hot input of input_size={n_x}")
        else:
            check_shape("xs", xs, ("T", "B", n_x), fix="time-major float inputs, or integer ids (T, B)")
        if xs.shape[0] == 0:
            raise ValueError(f"xs has no time steps (shape {tuple(xs.shape)}); pass at least one")
        if state is not None:
            check_state(state, xs.shape[1], self.state_sizes, self.STATE_NAMES)
        if not xs.is_floating_point():
            xs = F.one_hot(xs.long(), n_x).to(self.W_h["i"].dtype)
        if state is None:
            B, Nh, Nhh = xs.shape[1], self.sizes["hidden_size"], self.sizes["hyper_num_units"]
            zero = lambda n: xs.new_zeros(B, n)  # noqa: E731
            state = (zero(Nh), zero(Nh), zero(Nhh), zero(Nhh))
        outs = []
        for x in xs:
            h, state, _ = self(x, state)
            outs.append(h)
        return torch.stack(outs), state

    STATE_NAMES = ("h", "c", "ĥ", "ĉ")

    @property
    def state_sizes(self) -> Tuple[int, ...]:
        """Units of each state tensor: (N_h, N_h, N_ĥ, N_ĥ), as HyperLSTMLayer.state_sizes."""
        return (self.sizes["hidden_size"],) * 2 + (self.sizes["hyper_num_units"],) * 2

    def _check_step(self, x, state) -> None:
        """A ValueError naming the problem unless x is (B, N_x) floats and state the (h, c, ĥ, ĉ) of batch B."""
        check_shape("x", x, ("B", self.sizes["input_size"]), floating=True,
                    fix="one step of float inputs; run() takes a sequence (T, B, N_x) or integer ids (T, B)")
        check_state(state, x.shape[0], self.state_sizes, self.STATE_NAMES)

    @classmethod
    def from_layer(cls, layer) -> "ReadableHyperLSTMCell":
        """The same cell as a :class:`~hypernet_lib.nn.hyperlstm.HyperLSTMLayer`, its weights unpacked
        into named per-gate pieces (copies: changing one side does not change the other)."""

        if not isinstance(layer, HyperLSTMLayer):
            raise ValueError(f"layer must be a HyperLSTMLayer, got {type(layer).__name__}; only a HyperLSTM "
                             "has a hyper cell to unpack")
        Nh, Nhh = layer.hidden_size, layer.hyper_num_units
        cell = cls(layer.input_size, Nh, Nhh, layer.n_z, layer.use_layer_norm, layer.z_from)
        cell = cell.to(dtype=layer.W_rec.dtype, device=layer.W_rec.device)
        main, hyper = layer.gate_weights(), layer.hyper_gate_weights()
        z_w, z_b, d_w = layer.z_maps(), layer.z_biases(), layer.d_maps()
        with torch.no_grad():
            for y in GATES:
                cell.W_h[y].copy_(main["W_h"][y])
                cell.W_x[y].copy_(main["W_x"][y])
                cell.b_0[y].copy_(main["b_0"][y])
                cell.W_hhat_xhat[y].copy_(torch.cat([hyper["W_h"][y], hyper["W_x"][y]]))
                cell.W_hhat_hhat[y].copy_(hyper["W_hhat"][y])
                if hyper["b"] is not None:
                    cell.b_hhat[y].copy_(hyper["b"][y])
                cell.W_zh[y].copy_(z_w["h"][y]), cell.b_zh[y].copy_(z_b["h"][y])
                cell.W_zx[y].copy_(z_w["x"][y]), cell.b_zx[y].copy_(z_b["x"][y])
                cell.W_zb[y].copy_(z_w["b"][y])
                cell.W_hz[y].copy_(d_w["h"][y])
                cell.W_xz[y].copy_(d_w["x"][y])
                cell.W_bz[y].copy_(d_w["b"][y])
                if layer.use_layer_norm:
                    k = GATES.index(y)
                    cell.ln_gain[y].copy_(layer.ln_gain[k]), cell.ln_bias[y].copy_(layer.ln_bias[k])
                    cell.ln_hat_gain[y].copy_(layer.ln_hat_gain[k])
                    cell.ln_hat_bias[y].copy_(layer.ln_hat_bias[k])
            if layer.use_layer_norm:
                for n in ("ln_c_gain", "ln_c_bias", "ln_hat_c_gain", "ln_hat_c_bias"):
                    getattr(cell, n).copy_(getattr(layer, n))
        return cell

"""What the HyperLSTM's two fast time loops share (:mod:`hypernet_lib.nn.hyperlstm_fast`, the torch loop,
and :mod:`hypernet_lib.nn.hyperlstm_native`, the fused C++ steps): the parameters as one tuple, the
workspace that hands the large per-sequence buffers out again, the input projection of all steps, and the
weight gradients computed after the reverse loop as one matmul or reduction over all T·B rows."""
from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple, Optional

import torch

__all__ = ["LN_EPS", "Params", "release_workspace"]

LN_EPS = 1e-3          # layer-norm ε of Ha's code (hyperlstm.LN_EPS is this constant)


class Params(NamedTuple):
    """The layer's parameters (see :class:`~hypernet_lib.nn.hyperlstm.HyperLSTMLayer`).  ``b_hat`` is None with
    layer norm; the eight layer-norm tensors are None without it."""
    W_in: torch.Tensor         # (I, 4N_h + 4N_ĥ)    [W_x | Ŵ_x]
    b_hat: Optional[torch.Tensor]   # (4N_ĥ,)   hyper cell bias (no layer norm only)
    W_rec: torch.Tensor        # (N_h, 4N_h + 4N_ĥ)  [W_h | Ŵ_h]
    W_hath: torch.Tensor       # (N_ĥ, 4N_ĥ)
    W_z: torch.Tensor          # (N_ĥ, 12 N_z)
    b_z: torch.Tensor          # (8 N_z,)
    W_d: torch.Tensor          # (12, N_z, N_h)
    b_0: torch.Tensor          # (4 N_h,)
    ln_gain: Optional[torch.Tensor] = None        # (4, N_h)
    ln_bias: Optional[torch.Tensor] = None
    ln_c_gain: Optional[torch.Tensor] = None      # (N_h,)
    ln_c_bias: Optional[torch.Tensor] = None
    ln_hat_gain: Optional[torch.Tensor] = None    # (4, N_ĥ)
    ln_hat_bias: Optional[torch.Tensor] = None
    ln_hat_c_gain: Optional[torch.Tensor] = None  # (N_ĥ,)
    ln_hat_c_bias: Optional[torch.Tensor] = None


class _Workspace:
    """Keeps the large per-sequence buffers between calls and hands them out again.

    On a CPU a freshly allocated multi-megabyte tensor is fresh virtual memory: the first write to each
    4 KiB page traps into the kernel, which zeroes it.  The time loop writes tens to hundreds of MiB of
    buffers per call, so without reuse those page faults cost more than the arithmetic.  Buffers are
    keyed by (shape, dtype, device); at most ``per_key`` are kept per key and ``max_keys`` keys (least
    recently used go first).  :func:`release_workspace` empties it."""

    def __init__(self, per_key: int = 4, max_keys: int = 32):
        self.per_key, self.max_keys = per_key, max_keys
        self.free: "OrderedDict[tuple, list]" = OrderedDict()

    def take(self, shape, like: torch.Tensor) -> torch.Tensor:
        key = (tuple(shape), like.dtype, like.device)
        stack = self.free.get(key)
        if stack:
            self.free.move_to_end(key)
            return stack.pop()
        return like.new_empty(shape)

    def give(self, *tensors) -> None:
        for t in tensors:
            if t is None:
                continue
            key = (tuple(t.shape), t.dtype, t.device)
            stack = self.free.setdefault(key, [])
            self.free.move_to_end(key)
            if len(stack) < self.per_key:
                stack.append(t)
        while len(self.free) > self.max_keys:
            self.free.popitem(last=False)

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for stack in self.free.values() for t in stack)


_WORKSPACE = _Workspace()


def release_workspace() -> int:
    """Free the buffers the fast path keeps for reuse; returns the bytes released."""
    n = _WORKSPACE.nbytes()
    _WORKSPACE.free.clear()
    return n


def _z_bias(b_z: torch.Tensor) -> torch.Tensor:
    """(12 N_z,) bias of z = [z_h | z_x | z_b] for the 4 gates: b_z (8 N_z,) for z_h and z_x, zeros for z_b,
    which has no bias (Eq. 11)."""
    return torch.cat([b_z, b_z.new_zeros(b_z.numel() // 2)])


def _forget_vector(like: torch.Tensor, forget_bias: float) -> torch.Tensor:
    """(4,) = (0, 0, forget_bias, 0): the constant forget-gate bias, gate order i, g, f, o."""
    v = torch.zeros(4, dtype=like.dtype, device=like.device)
    v[2] = forget_bias
    return v


def _project(x: torch.Tensor, p: Params, H: int) -> torch.Tensor:
    """xin = [W_x x_t | Ŵ_x x_t + b̂] for the whole sequence, one matmul (a row gather for integer ids),
    into a workspace buffer: (T, B, 4N_h + 4N_ĥ)."""
    T, B = x.shape[:2]
    N = p.W_in.shape[1]
    xin = _WORKSPACE.take((T, B, N), p.W_in)
    if x.is_floating_point():
        torch.mm(x.reshape(T * B, -1), p.W_in, out=xin.view(T * B, N))
    else:
        torch.index_select(p.W_in, 0, x.reshape(-1), out=xin.view(T * B, N))
    if p.b_hat is not None:
        xin[..., 4 * H:] += p.b_hat
    return xin


def _ln_affine_grads(dy, x, mean, rstd, gate_axis=None, products=False):
    """∂gain = Σ dy ⊙ LN(x), ∂bias = Σ dy over all steps and samples, computed in place (x and dy are
    overwritten).  dy, x: (T, B, [4,] N) or with ``gate_axis=1`` (T, 4, B, N); the sums keep the gate axis.
    ``products=True``: x already holds dy ⊙ LN(x) (the C++ kernels write it during the reverse loop).
    Summing dim 0 first keeps every reduction over contiguous rows (a (0, 2) reduction is ~10× slower)."""
    rest = 0 if gate_axis is None else 1            # after summing dim 0: the batch axis of what is left
    db = dy.sum(0).sum(rest)
    if products:
        return x.sum(0).sum(rest), db
    x.sub_(mean).mul_(rstd)                         # LN(x) before the gain
    dg = dy.mul_(x).sum(0).sum(rest)
    return dg, db


def _weight_grads(ctx, x, out, sv, dR_all, dZ_all, dd_all, dxin, dY_all, dcn_all, dgy_all, dhcn_all,
                  products=False):
    """After the reverse loop: every weight gradient as one matmul or reduction over all T·B rows, and the
    input gradient.  Overwrites P_all, C_all, A_all, HC_all, dY_all, dcn_all, dgy_all and dhcn_all.
    ``products=True``: the reverse loop left dy ⊙ LN(x) in P_all, C_all[1:], A_all and HC_all[1:]."""
    p, ln, z_current = ctx.params, ctx.ln, ctx.z_current
    T, B, H = out.shape
    Hh, Nz = p.W_hath.shape[0], p.W_d.shape[1]
    h0, HH_all, Z_all = sv["h0"], sv["HH_all"], sv["Z_all"]
    TB = T * B
    rows = lambda a: a.reshape(-1, a.shape[-1])  # noqa: E731   (steps × batch) rows
    dW_rec = torch.addmm(h0.t() @ dR_all[0], rows(out[:-1]).t(), rows(dR_all[1:]))   # h_0 .. h_{T-1}
    dW_hath = rows(HH_all[:-1]).t() @ rows(dR_all[..., 4 * H:])
    dW_z = rows(HH_all[1:] if z_current else HH_all[:-1]).t() @ rows(dZ_all)
    db_z = dZ_all[..., :8 * Nz].sum((0, 1))
    dW_d = torch.bmm(Z_all.view(TB, 12, Nz).permute(1, 2, 0), dd_all.view(12, TB, H))   # Σ_t zᵀ ∂d
    db_0 = dd_all[8:].sum((1, 2)).reshape(4 * H)
    dxin[..., 4 * H:] = dR_all[..., 4 * H:]
    if x.is_floating_point():                                           # xin = x W_in
        dW_in = rows(x).t() @ rows(dxin)
        dx = (rows(dxin) @ p.W_in.t()).view(x.shape) if ctx.needs_input_grad[2] else None
    else:                                                               # xin = W_in[ids]
        dW_in = torch.zeros_like(p.W_in).index_add_(0, x.reshape(-1), rows(dxin))
        dx = None
    db_hat = dxin[..., 4 * H:].sum((0, 1)) if p.b_hat is not None else None
    ln_grads = (None,) * 8
    if ln:      # in place on buffers no longer needed (a fresh temporary this size costs page faults)
        mA, rA, mhc, rhc, mP, rP, mc, rc = sv["stats"]
        ln_grads = (*_ln_affine_grads(dY_all, sv["P_all"], mP, rP, gate_axis=1, products=products),
                    *_ln_affine_grads(dcn_all, sv["C_all"][1:], mc, rc, products=products),
                    *_ln_affine_grads(dgy_all, sv["A_all"].view(T, B, 4, Hh), mA, rA, products=products),
                    *_ln_affine_grads(dhcn_all, sv["HC_all"][1:], mhc, rhc, products=products))
    return dx, (dW_in, db_hat, dW_rec, dW_hath, dW_z, db_z, dW_d, db_0) + ln_grads

"""The HyperLSTM time loop with a hand-written backward pass (chapter 5's fast path).

:meth:`hypernet_lib.nn.hyperlstm.HyperLSTMLayer.forward_reference` writes the HyperLSTM step as readable
PyTorch and lets autograd differentiate it.  That is correct but slow for a recurrent net: autograd records
~60 small operations per time step, replays them one by one backwards, and computes every weight gradient
with one small matmul *per step*.  This module runs the same equations (Ha et al., 2016, §3.2; see
:mod:`hypernet_lib.nn.hyperlstm` for them) the way cuDNN runs an LSTM:

* **forward**: the input projections [W_x x_t | Ŵ_x x_t] of all steps in one matmul (a row gather for
  one-hot ids), then a loop that builds no autograd graph and writes what the backward pass needs into
  preallocated ``(T, ...)`` buffers (``out=``); layer norm uses ``native_layer_norm``, which returns the
  mean and 1/σ it computed;
* **backward**: one reverse loop that carries only the four state gradients (∂h, ∂c, ∂ĥ, ∂ĉ) and stores
  the per-step gradients of the matmul outputs; every weight gradient is then **one large matmul over all
  T·B rows** after the loop (W_in, W_rec, W_ĥ, W_z, and one bmm for the 12 W_·z), and the layer-norm
  gains and biases one reduction each, in place on spent buffers (:func:`_ln_affine_grads`);
* **memory**: the large buffers go back to a workspace after the backward pass and are handed out again
  on the next call (a fresh multi-megabyte CPU tensor costs a page fault per 4 KiB on first touch);
* **on the CPU, fused steps**: the loops above still make ~25 torch calls per step forward and ~50
  backward, each a few microseconds of dispatch.  :mod:`hypernet_lib.nn.hyperlstm_native` keeps the one
  large matrix product of a step in torch and does everything else in one call of a small C++ kernel
  (``hyperlstm_kernels.cpp``, built on first use): two calls per step each way.  Where the kernels
  cannot be built (no compiler, not Linux) or do not apply (CUDA, other dtypes), the torch loops here run
  instead, silently; ``kernel_status()`` says which.  Both loops share their buffers and the weight
  gradients after the loop (:mod:`hypernet_lib.nn.hyperlstm_buffers`).

The backward equations, per step and gate (σ' = s(1 − s) for the sigmoid gates i, f, o, tanh' = 1 − s² for
g; ⊙ elementwise; LN⁻ᵀ the layer-norm input gradient, ``native_layer_norm_backward``)::

    ∂h_t   += ∂L/∂h_t (from the output)
    ∂o      = ∂h_t ⊙ tanh(LN(c_t)) ⊙ σ'(o)
    ∂c_t   += LN⁻ᵀ(∂h_t ⊙ σ(o) ⊙ (1 − tanh²(LN(c_t))))
    ∂f      = ∂c_t ⊙ c_{t−1} ⊙ σ'(f),  ∂i = ∂c_t ⊙ g̃ ⊙ σ'(i),  ∂g = ∂c_t ⊙ σ(i) ⊙ mask ⊙ tanh'(g)
    ∂P      = LN⁻ᵀ(γ ⊙ ∂y)                      P = d_h ⊙ W_h h_{t−1} + d_x ⊙ W_x x_t + W_bz z_b + b_0
    ∂d_h    = ∂P ⊙ W_h h_{t−1},  ∂d_x = ∂P ⊙ W_x x_t,  ∂(W_bz z_b) = ∂P
    ∂z      = W_·zᵀ ∂d   (one bmm for the 12 vectors);   after the loop ∂W_·z = Σ_t zᵀ ∂d   (one bmm)
    ∂ĥ_t   += W_zᵀ ∂z                               (∂ĥ_{t−1} instead when z comes from ĥ_{t−1})
    ... the same LSTM backward for the hyper cell gives ∂Â (its gate pre-activations), then
    ∂h_{t−1} = [∂(W_h h) | ∂Â] [W_h | Ŵ_h]ᵀ   (one matmul),   ∂ĥ_{t−1} = ∂Â Ŵ_ĥᵀ,
    ∂c_{t−1} = ∂c_t ⊙ σ(f),   ∂ĉ_{t−1} likewise.

Tests check values and gradients of every option (layer norm on/off, z from ĥ_t or ĥ_{t−1}, recurrent
dropout, carried state, float or integer input, one-step sequences, stacked layers), with and without the
kernels, against the autograd reference in float64; ``benchmarks/bench_hyperlstm.py`` measures the speed
against ``nn.LSTM``.
"""
from __future__ import annotations

import contextlib
from typing import Tuple

import torch
from torch.autograd.function import once_differentiable

from . import hyperlstm_native as native
from ..checks import check_ids_in_range, check_shape, check_state
from .hyperlstm_buffers import (LN_EPS, _WORKSPACE, Params, _forget_vector, _project, _weight_grads,  # noqa: F401
                                _z_bias, release_workspace)

__all__ = ["hyperlstm_sequence"]

_ln_backward = torch.ops.aten.native_layer_norm_backward


def _without_autocast(device_type: str):
    """The loop writes into float buffers of the parameters' dtype with ``out=``; autocast would hand
    those ops lower-precision inputs.  So the fast path computes in the parameters' dtype."""
    try:
        on = torch.is_autocast_enabled(device_type)
    except TypeError:                       # older torch: one flag for CUDA
        on = torch.is_autocast_enabled()
    return torch.autocast(device_type, enabled=False) if on else contextlib.nullcontext()


def _run(x, state, p: Params, *, ln: bool, z_current: bool, masks, forget_bias: float, save: bool,
         keep_d: bool):
    """The forward time loop over x: (T, B) integer ids or (T, B, I) floats.
    Returns out (T, B, N_h), final state, saved buffers (or None), d (T, 12, B, N_h) or None."""
    if not keep_d and native.usable(x.device, p.W_in.dtype):
        return native.run(x, state, p, ln=ln, z_current=z_current, masks=masks, forget_bias=forget_bias,
                          save=save)
    T, B = x.shape[:2]
    xin = _project(x, p, state[0].shape[1])
    h0, c0, hh0, hc0 = state
    H, Hh, Nz = h0.shape[1], hh0.shape[1], p.W_d.shape[1]
    new = lambda *shape: _WORKSPACE.take(shape, xin)  # noqa: E731
    out = xin.new_empty(T, B, H)           # h_t for t = 1..T: the output (not a view, so in-place edits are caught)
    C_all = new(T + 1, B, H)               # c_t
    HH_all, HC_all = new(T + 1, B, Hh), new(T + 1, B, Hh)      # ĥ_t, ĉ_t
    C_all[0], HH_all[0], HC_all[0] = c0, hh0, hc0
    R_all = new(T, B, 4 * H + 4 * Hh)      # h_{t-1}[W_h | Ŵ_h]
    A_all = new(T, B, 4 * Hh)              # hyper cell pre-activations Â
    s_all = new(T, B, 4, Hh)               # hyper gate activations σ(î), tanh(ĝ), σ(f̂), σ(ô)
    th_all = new(T, B, Hh)                 # tanh(LN(ĉ_t))
    Z_all = new(T, B, 12 * Nz)             # z = [z_h | z_x | z_b] for the 4 gates
    P_all = new(T, 4, B, H)                # main pre-activations P (before LN), gate-major
    S_all = new(T, 4, B, H)                # main gate activations
    TC_all = new(T, B, H)                  # tanh(LN(c_t))
    D_all = xin.new_empty(T, 12, B, H) if keep_d else None
    stats = [[] for _ in range(8)] if ln else None   # means and 1/σ of the four layer norms, per step

    x_main = xin[..., :4 * H].view(T, B, 4, H).transpose(1, 2)      # (T, 4, B, N_h): W_x^y x_t
    x_hat = xin[..., 4 * H:]                                        # (T, B, 4N_ĥ):   Ŵ_x x_t
    fvec = _forget_vector(xin, forget_bias)
    b_z = _z_bias(p.b_z)                                            # z_b has no bias
    if ln:
        b_main = p.ln_bias.view(4, 1, H) + fvec.view(4, 1, 1)          # LN bias + forget bias
        g_main = p.ln_gain.view(4, 1, H)
        b_hat = p.ln_hat_bias + fvec.view(4, 1)                         # (4, N_ĥ)
        b0 = p.b_0.view(4, 1, H)
    else:
        b0 = p.b_0.view(4, 1, H) + fvec.view(4, 1, 1)                   # no LN: forget bias joins b_0
        fhat = fvec.view(4, 1)
    W_d = p.W_d
    d_buf, y_buf, g_buf = new(8, B, H), new(4, B, H), new(B, H)     # per-step scratch, reused
    b0 = b0.expand(4, B, H)
    for t in range(T):
        h, c, hh, hc = (out[t - 1] if t else h0), C_all[t], HH_all[t], HC_all[t]
        R = torch.mm(h, p.W_rec, out=R_all[t])
        A = torch.addmm(R[:, 4 * H:], hh, p.W_hath, out=A_all[t]).add_(x_hat[t]).view(B, 4, Hh)
        if ln:
            An, m, r = torch.native_layer_norm(A, (Hh,), None, None, LN_EPS)
            gy = torch.addcmul(b_hat, An, p.ln_hat_gain)
            stats[0].append(m), stats[1].append(r)
        else:
            gy = A + fhat
        s = torch.sigmoid(gy, out=s_all[t])
        torch.tanh(gy[:, 1], out=s[:, 1])
        hc = torch.mul(s[:, 2], hc, out=HC_all[t + 1]).addcmul_(s[:, 0], s[:, 1])     # ĉ_t
        if ln:
            hcn, m, r = torch.native_layer_norm(hc, (Hh,), p.ln_hat_c_gain, p.ln_hat_c_bias, LN_EPS)
            stats[2].append(m), stats[3].append(r)
        else:
            hcn = hc
        th = torch.tanh(hcn, out=th_all[t])
        hh_new = torch.mul(s[:, 3], th, out=HH_all[t + 1])                             # ĥ_t
        z = torch.addmm(b_z, hh_new if z_current else hh, p.W_z, out=Z_all[t])       # (B, 12 N_z)
        zg = z.view(B, 12, Nz).transpose(0, 1)                                        # (12, B, N_z)
        d = torch.bmm(zg[:8], W_d[:8], out=d_buf)                                     # d_h, d_x: (8, B, N_h)
        P = torch.baddbmm(b0, zg[8:], W_d[8:], out=P_all[t])                           # W_bz z_b + b_0
        P.addcmul_(d[:4], R[:, :4 * H].view(B, 4, H).transpose(0, 1)).addcmul_(d[4:], x_main[t])
        if keep_d:
            D_all[t, :8] = d
            torch.bmm(zg[8:], W_d[8:], out=D_all[t, 8:])
        if ln:
            Pn, m, r = torch.native_layer_norm(P, (H,), None, None, LN_EPS)
            Y = torch.addcmul(b_main, Pn, g_main, out=y_buf)
            stats[4].append(m), stats[5].append(r)
        else:
            Y = P
        S = torch.sigmoid(Y, out=S_all[t])
        torch.tanh(Y[1], out=S[1])
        g = torch.mul(S[1], masks[t], out=g_buf) if masks is not None else S[1]     # recurrent dropout
        c = torch.mul(S[2], c, out=C_all[t + 1]).addcmul_(S[0], g)                     # c_t
        if ln:
            cn, m, r = torch.native_layer_norm(c, (H,), p.ln_c_gain, p.ln_c_bias, LN_EPS)
            stats[6].append(m), stats[7].append(r)
        else:
            cn = c
        torch.mul(S[3], torch.tanh(cn, out=TC_all[t]), out=out[t])                  # h_t
    final = (out[T - 1].clone(), C_all[T].clone(), HH_all[T].clone(), HC_all[T].clone())
    _WORKSPACE.give(d_buf, y_buf, g_buf)
    pooled = dict(C_all=C_all, HH_all=HH_all, HC_all=HC_all, R_all=R_all, A_all=A_all, s_all=s_all,
                  th_all=th_all, Z_all=Z_all, P_all=P_all, S_all=S_all, TC_all=TC_all)
    if not save:
        _WORKSPACE.give(xin, *pooled.values())
        return out, final, None, D_all
    saved = dict(pooled, xin=xin, h0=h0, stats=[torch.stack(v) for v in stats] if stats else None)
    return out, final, saved, D_all


def _backward(ctx, x, out, g_out, g_state):
    """The reverse loop (equations in the module docstring).  Returns the gradients of x (None for ids),
    the initial state and the parameters."""
    sv, p, ln, z_current, masks = ctx.saved, ctx.params, ctx.ln, ctx.z_current, ctx.masks
    if sv is None:
        raise RuntimeError("backward through the HyperLSTM fast path ran twice on one forward pass (its buffers "
                           "are reused after the first); for retain_graph=True set layer.fast = False")
    ctx.saved = None
    if sv.get("native"):
        return native.backward(ctx, x, out, g_out, g_state, sv)
    T, B, H = g_out.shape
    Hh, Nz = p.W_hath.shape[0], p.W_d.shape[1]
    R_all, A_all, s_all, th_all, Z_all = sv["R_all"], sv["A_all"], sv["s_all"], sv["th_all"], sv["Z_all"]
    P_all, S_all, TC_all = sv["P_all"], sv["S_all"], sv["TC_all"]
    h0, C_all, HH_all, HC_all = sv["h0"], sv["C_all"], sv["HH_all"], sv["HC_all"]
    if ln:
        mA, rA, mhc, rhc, mP, rP, mc, rc = sv["stats"]
    new = lambda *shape: _WORKSPACE.take(shape, g_out)  # noqa: E731
    dR_all = new(T, B, 4 * H + 4 * Hh)     # ∂ of h_{t-1}[W_h | Ŵ_h]   (hyper part = ∂Â)
    dxin = new(T, B, 4 * H + 4 * Hh)
    x_main = sv["xin"][..., :4 * H].view(T, B, 4, H).transpose(1, 2)
    dZ_all = new(T, B, 12 * Nz)
    dY_all = new(T, 4, B, H)               # ∂ of the main gates' inputs y (after LN)
    dd_all = new(12, T, B, H)              # ∂d_h, ∂d_x, ∂(W_bz z_b) of every step: ∂W_d is one bmm at the end
    dcn_all = new(T, B, H)                 # ∂ of LN(c_t)
    dgy_all = new(T, B, 4, Hh)
    dhcn_all = new(T, B, Hh)
    dS, ds, d_buf, SS, deriv, tmp = new(4, B, H), new(B, 4, Hh), new(8, B, H), new(4, B, H), new(4, B, H), new(4, B, H)
    W_dT = p.W_d.transpose(1, 2)
    # [W_h | Ŵ_h]ᵀ copied once: the per-step ∂h_{t-1} matmul is ~30% faster on a contiguous operand
    W_zT, W_hathT, W_recT = p.W_z.t(), p.W_hath.t(), p.W_rec.t().contiguous()
    mask_ln = [True, False, False]
    one = g_out.new_ones(())
    if ln:
        g_main, g_hat = p.ln_gain.view(4, 1, H), p.ln_hat_gain
    # ∂h and ∂c are carried in two buffers each, written in turn (no allocation per step)
    dh_bufs, dc_bufs, u, u2 = (new(B, H), new(B, H)), (new(B, H), new(B, H)), new(B, H), new(B, H)
    dh, dc = dh_bufs[0].copy_(g_state[0]), dc_bufs[0].copy_(g_state[1])
    dhh, dhc = g_state[2].clone(), g_state[3].clone()
    for t in reversed(range(T)):
        S, s = S_all[t], s_all[t]
        nxt = int(t % 2 == (T - 1) % 2)                                 # the buffer this step writes
        # ---- main cell: h_t = σ(o)·tanh(LN(c_t)),  c_t = σ(f)c_{t-1} + σ(i)g̃
        dh.add_(g_out[t])
        tc = TC_all[t]
        torch.mul(dh, tc, out=dS[3])                                     # ∂σ(o)
        torch.mul(dh, S[3], out=u)
        dcn = torch.addcmul(u, torch.mul(u, tc, out=u2), tc, value=-1.0, out=dcn_all[t])   # ∂LN(c_t)
        if ln:
            dc.add_(_ln_backward(dcn, C_all[t + 1], (H,), mc[t], rc[t], p.ln_c_gain, None, mask_ln)[0])
        else:
            dc.add_(dcn)
        gm = torch.mul(S[1], masks[t], out=u) if masks is not None else S[1]
        torch.mul(dc, gm, out=dS[0])                                      # ∂σ(i)
        torch.mul(dc, S[0], out=dS[1])                                    # ∂tanh(g)
        if masks is not None:
            dS[1].mul_(masks[t])
        torch.mul(dc, C_all[t], out=dS[2])                                # ∂σ(f)
        dc_prev = torch.mul(dc, S[2], out=dc_bufs[nxt])
        torch.mul(S, S, out=SS)
        torch.sub(S, SS, out=deriv)                                      # σ' = s − s²
        torch.sub(one, SS[1], out=deriv[1])                             # tanh' = 1 − s²
        dY = torch.mul(dS, deriv, out=dY_all[t])
        dd = dd_all[:, t]                                                # (12, B, N_h)
        if ln:
            dd[8:] = _ln_backward(torch.mul(dY, g_main, out=tmp), P_all[t], (H,), mP[t], rP[t], None, None,
                                  mask_ln)[0]
        else:
            dd[8:] = dY
        dP = dd[8:]                                                      # ∂P = ∂(W_bz z_b) = ∂b_0
        # ---- P = d_h ⊙ W_h h_{t-1} + d_x ⊙ W_x x_t + W_bz z_b + b_0
        z3 = Z_all[t].view(B, 12, Nz)
        d = torch.bmm(z3.transpose(0, 1)[:8], p.W_d[:8], out=d_buf)     # d_h, d_x (8, B, N_h), recomputed
        torch.mul(dP, R_all[t, :, :4 * H].view(B, 4, H).transpose(0, 1), out=dd[:4])    # ∂d_h
        torch.mul(dP, x_main[t], out=dd[4:8])                                       # ∂d_x
        torch.mul(dP, d[:4], out=dR_all[t, :, :4 * H].view(B, 4, H).transpose(0, 1))    # ∂(W_h h_{t-1})
        torch.mul(dP, d[4:], out=dxin[t, :, :4 * H].view(B, 4, H).transpose(0, 1))     # ∂(W_x x_t)
        dz = torch.bmm(dd, W_dT)                                         # (12, B, N_z)
        dZ = dZ_all[t]
        dZ.view(B, 12, Nz).copy_(dz.transpose(0, 1))
        dzsrc = dZ @ W_zT                                                # ∂ of the ĥ that made z
        if z_current:
            dhh = dhh + dzsrc
        # ---- hyper cell: ĥ_t = σ(ô)·tanh(LN(ĉ_t)),  ĉ_t = σ(f̂)ĉ_{t-1} + σ(î)tanh(ĝ)
        th = th_all[t]
        torch.mul(dhh, th, out=ds[:, 3])
        uh = dhh * s[:, 3]
        dhcn = torch.addcmul(uh, uh * th, th, value=-1.0, out=dhcn_all[t])
        if ln:
            dhc.add_(_ln_backward(dhcn, HC_all[t + 1], (Hh,), mhc[t], rhc[t], p.ln_hat_c_gain, None, mask_ln)[0])
        else:
            dhc.add_(dhcn)
        torch.mul(dhc, s[:, 1], out=ds[:, 0])
        torch.mul(dhc, s[:, 0], out=ds[:, 1])
        torch.mul(dhc, HC_all[t], out=ds[:, 2])
        dhc_prev = dhc * s[:, 2]
        ss = s * s
        deriv_hat = s - ss
        torch.sub(one, ss[:, 1], out=deriv_hat[:, 1])
        dgy = torch.mul(ds, deriv_hat, out=dgy_all[t])
        if ln:
            dA = _ln_backward(dgy * g_hat, A_all[t].view(B, 4, Hh), (Hh,), mA[t], rA[t], None, None, mask_ln)[0]
        else:
            dA = dgy
        dR = dR_all[t]
        dR[:, 4 * H:] = dA.view(B, 4 * Hh)
        dhh_prev = dR[:, 4 * H:] @ W_hathT
        if not z_current:
            dhh_prev += dzsrc
        dh = torch.mm(dR, W_recT, out=dh_bufs[nxt])                      # ∂h_{t-1}, one matmul for both cells
        dc, dhh, dhc = dc_prev, dhh_prev, dhc_prev
    dx, dparams = _weight_grads(ctx, x, out, sv, dR_all, dZ_all, dd_all, dxin, dY_all, dcn_all, dgy_all, dhcn_all)
    spare = [b for b in dh_bufs + dc_bufs if b is not dh and b is not dc]   # dh, dc are returned
    _WORKSPACE.give(*(v for k, v in sv.items() if k not in ("h0", "stats")), dxin, u, u2, *spare,
                    dR_all, dZ_all, dY_all, dd_all, dcn_all, dgy_all, dhcn_all, dS, ds, d_buf, SS, deriv, tmp)
    return dx, (dh, dc, dhh, dhc), dparams


class _HyperLSTMFunction(torch.autograd.Function):
    """autograd wrapper: forward = :func:`_run` (saving buffers), backward = :func:`_backward`."""

    @staticmethod
    def forward(ctx, cfg, masks, x, h0, c0, hh0, hc0, *params):
        ln, z_current, forget_bias = cfg
        p = Params(*params)
        with _without_autocast(x.device.type):
            out, final, saved, _ = _run(x, (h0, c0, hh0, hc0), p, ln=ln, z_current=z_current, masks=masks,
                                        forget_bias=forget_bias, save=True, keep_d=False)
        # saving x, the parameters and the output makes autograd check that none was modified in place
        # before backward (backward reads h_t from out)
        ctx.save_for_backward(x, out, *[q for q in params if q is not None])
        ctx.saved, ctx.params, ctx.ln, ctx.z_current, ctx.masks = saved, p, ln, z_current, masks
        return (out,) + final

    @staticmethod
    @once_differentiable
    def backward(ctx, g_out, gh, gc, ghh, ghc):
        x, out = ctx.saved_tensors[:2]                                   # raises if either was modified
        with _without_autocast(x.device.type):
            dx, dstate, dparams = _backward(ctx, x, out, g_out, (gh, gc, ghh, ghc))
        n_params = len(ctx.params)
        dparams = tuple(dparams[k] if ctx.params[k] is not None else None for k in range(n_params))
        return (None, None, dx) + tuple(dstate) + dparams


_LN_FIELDS = ("ln_gain", "ln_bias", "ln_c_gain", "ln_c_bias", "ln_hat_gain", "ln_hat_bias", "ln_hat_c_gain",
              "ln_hat_c_bias")


def _check_sequence_args(x, state, params, ln: bool, masks) -> None:
    if not isinstance(params, Params):
        raise ValueError(f"params must be a hyperlstm_fast.Params, got {type(params).__name__}")
    if ln:
        missing = [f for f in _LN_FIELDS if getattr(params, f) is None]
        if missing:
            raise ValueError(f"ln=True but params has no {', '.join(missing)}; pass the layer-norm parameters "
                             "or ln=False")
    I, H, Hh = params.W_in.shape[0], params.W_rec.shape[0], params.W_hath.shape[0]
    if not isinstance(x, torch.Tensor):
        check_shape("x", x, ("T", "B", I))
    if x.is_floating_point():
        check_shape("x", x, ("T", "B", I), fix="float inputs are time-major, with W_in's input size")
    else:
        check_shape("x", x, ("T", "B"), floating=False, fix=f"integer ids (one-hot input), or floats (T, B, {I})")
        if x.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"x holds ids of dtype {x.dtype}; pass int64 (or int32) ids")
        if x.device.type == "cpu":
            check_ids_in_range(x, I, "x", f"the one-hot input of size {I}")
    T, B = x.shape[:2]
    if T == 0:
        raise ValueError(f"x has no time steps (shape {tuple(x.shape)}); pass at least one")
    check_state(state, B, (H, H, Hh, Hh), ("h", "c", "ĥ", "ĉ"), dtype=params.W_in.dtype)
    if masks is not None:
        check_shape("masks", masks, (T, B, H), floating=True,
                    fix="one recurrent-dropout mask per step, sample and unit, scaled by 1/keep")


def hyperlstm_sequence(x: torch.Tensor, state: Tuple[torch.Tensor, ...], params: Params, *, ln: bool,
                       z_current: bool, masks: Optional[torch.Tensor], forget_bias: float = 1.0,
                       return_d: bool = False, check: bool = True):
    """Run the HyperLSTM over a sequence with the hand-written backward.

    Args:
        x: (T, B) integer ids (one-hot input) or (T, B, I) floats.
        state: (h, c, ĥ, ĉ), shapes (B, N_h), (B, N_h), (B, N_ĥ), (B, N_ĥ).
        params: :class:`Params`.
        ln, z_current: layer norm on; z from ĥ_t (True, Ha's code) or ĥ_{t−1}.
        masks: (T, B, N_h) recurrent-dropout masks already scaled by 1/keep, or None.
        return_d: only without gradients: also return d (T, 12, B, N_h) (rows: d_h, d_x, W_bz z_b per gate).
        check: check the arguments first (shapes, dtypes, id range on the CPU) and raise a ValueError naming
            the bad one; :class:`~hypernet_lib.nn.hyperlstm.HyperLSTMLayer` passes False, having checked its own.
    Returns:
        out (T, B, N_h), (h, c, ĥ, ĉ)[, d].
    """
    if check:
        _check_sequence_args(x, state, params, ln, masks)
    with _without_autocast(x.device.type):
        return _sequence(x, state, params, ln=ln, z_current=z_current, masks=masks, forget_bias=forget_bias,
                         return_d=return_d)


def _sequence(x, state, params, *, ln, z_current, masks, forget_bias, return_d):
    if x.is_floating_point() and x.dtype != params.W_in.dtype:
        x = x.to(params.W_in.dtype)             # e.g. a bf16 activation from an autocast region upstream
    if return_d:
        if torch.is_grad_enabled() and any(q is not None and q.requires_grad for q in (x,) + tuple(params)):
            raise ValueError("return_d is for plotting: call it under torch.no_grad() (or use forward_reference)")
        out, final, _, d = _run(x, state, params, ln=ln, z_current=z_current, masks=masks,
                                forget_bias=forget_bias, save=False, keep_d=True)
        return out, final, d
    needs_grad = torch.is_grad_enabled() and any(
        q is not None and q.requires_grad for q in (x,) + tuple(state) + tuple(params))
    if not needs_grad:
        out, final, _, _ = _run(x, state, params, ln=ln, z_current=z_current, masks=masks,
                                forget_bias=forget_bias, save=False, keep_d=False)
        return out, final
    res = _HyperLSTMFunction.apply((ln, z_current, forget_bias), masks, x, *state, *params)
    return res[0], tuple(res[1:])

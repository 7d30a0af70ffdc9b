"""The HyperLSTM's time loops on the CPU with fused C++ step kernels: building them, and the loops that
call them (chapter 5's fast path on a CPU).

:mod:`hypernet_lib.nn.hyperlstm_fast` runs a step as ~25 torch calls forward and ~50 backward; at a
small size (B = 32, N_h = 256) their dispatch costs more than their arithmetic.  Here the large
matrix product of a step, h_{t−1}[W_h | Ŵ_h] forward and its transpose backward, stays in torch (MKL), and
everything else (the hyper cell with its small products, z, the scaling vectors, the main cell, layer
norms) is one call of a kernel from ``hyperlstm_kernels.cpp``: two calls per step each way, as in
cuDNN's LSTM.  The buffers are those of the torch loop, so the
weight gradients after the reverse loop are shared (:func:`~hypernet_lib.nn.hyperlstm_buffers._weight_grads`).

The kernels are plain C++ over raw pointers: no torch headers, so a build takes a few seconds, not the
minute a torch extension takes.  The built library is cached in ``$HYPERNET_KERNELS`` (default
``~/.cache/hypernet_lib/kernels``), keyed by a hash of the source, the compiler, the flags and the
CPU, and written atomically (compiled in a temporary folder, then renamed), so concurrent processes never
load half a file.  Everything that can go wrong (no compiler, a failed or slow build, a library that does
not load) leaves :func:`build_kernels` returning None and :func:`kernel_status` saying why; the caller then
runs the torch loop, which computes the same thing.  ``HYPERNET_NATIVE=0`` (read once, at the first
build) or ``hyperlstm_native.ENABLED = False`` switches the kernels off.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

import torch

from .hyperlstm_buffers import LN_EPS, _WORKSPACE, Params, _forget_vector, _project, _weight_grads, _z_bias

__all__ = ["kernel_status"]

SOURCE = Path(__file__).with_name("hyperlstm_kernels.cpp")
BUILD_TIMEOUT_S = 60
# -ffast-math lets gcc call glibc's vector exp/tanh (libmvec); it is given to the compile step only, so
# the shared library is not linked with crtfastmath.o, which would flush denormals in the whole process.
_COMPILE = ["-O3", "-march=native", "-mprefer-vector-width=512", "-ffast-math", "-fopenmp", "-fPIC", "-std=c++17", "-c"]
_LINK = ["-shared", "-fopenmp", "-lm"]

_lock = threading.Lock()
_state = {"lib": None, "status": "not tried yet"}


def _cache_dir() -> Path:
    return Path(os.environ.get("HYPERNET_KERNELS")
                or os.path.join(os.path.expanduser("~"), ".cache", "hypernet_lib", "kernels"))


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def _compiler() -> Optional[str]:
    if os.environ.get("CXX"):
        return shutil.which(os.environ["CXX"])
    return shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")


def _build(cxx: str, target: Path) -> None:
    """Compile and link in a temporary folder next to ``target``, then rename: never a partial file under
    the final name.  Both steps together get BUILD_TIMEOUT_S seconds."""
    deadline = time.monotonic() + BUILD_TIMEOUT_S
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        obj, lib = Path(tmp) / "k.o", Path(tmp) / "k.so"
        for cmd in ([cxx, *_COMPILE, str(SOURCE), "-o", str(obj)], [cxx, str(obj), *_LINK, "-o", str(lib)]):
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(cmd, BUILD_TIMEOUT_S)
            subprocess.run(cmd, check=True, capture_output=True, timeout=left)
        os.replace(lib, target)                    # atomic: a reader sees no file or the whole file


def _target(cxx: str) -> Path:
    """Where the library built from this source, with this compiler, these flags, for this CPU lives."""
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=20).stdout
    key = hashlib.sha256("\0".join([SOURCE.read_text(), cxx, version, " ".join(_COMPILE + _LINK),
                                    platform.machine(), _cpu_flags()]).encode()).hexdigest()[:16]
    return _cache_dir() / f"hyperlstm_kernels-{key}.so"


def _load() -> Optional[ctypes.CDLL]:
    if os.environ.get("HYPERNET_NATIVE", "1").strip() == "0":
        _state["status"] = "switched off (HYPERNET_NATIVE=0)"
        return None
    if platform.system() != "Linux":
        _state["status"] = f"not built on {platform.system()} (Linux only)"
        return None
    cxx = _compiler()
    if cxx is None:
        shown = f"CXX={os.environ['CXX']!r} is not a program on PATH" if os.environ.get("CXX") else "none on PATH"
        _state["status"] = f"no C++ compiler found ({shown}); install g++ or set CXX"
        return None
    try:
        target = _target(cxx)
        built = not target.exists()
        if built:
            _build(cxx, target)
        try:
            lib = ctypes.CDLL(str(target))
        except OSError:
            if built:
                raise
            target.unlink(missing_ok=True)         # a damaged file in the cache: build it again, once
            _build(cxx, target)
            built, lib = True, ctypes.CDLL(str(target))
        lib.hyperlstm_step.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                       ctypes.c_int64, ctypes.c_double]
        lib.hyperlstm_step.restype = None
        _state["status"] = f"{'built' if built else 'loaded'} {target}"
        return lib
    except subprocess.TimeoutExpired:
        _state["status"] = f"the build took over {BUILD_TIMEOUT_S} s and was stopped"
    except subprocess.CalledProcessError as e:
        err = [line for line in (e.stderr or b"").decode(errors="replace").splitlines() if line.strip()]
        first = next((line for line in err if "error" in line), err[0] if err else str(e))
        _state["status"] = f"the build failed: {first.strip()}"
    except OSError as e:
        _state["status"] = f"the library could not be built or loaded: {e}"
    return None


def build_kernels() -> Optional[ctypes.CDLL]:
    """The loaded kernel library, built on first use; None where it cannot be had (see :func:`kernel_status`)."""
    if _state["status"] == "not tried yet":
        with _lock:
            if _state["status"] == "not tried yet":
                _state["lib"] = _load()
    return _state["lib"]


def kernel_status() -> str:
    """Why :func:`build_kernels` returns what it does: 'built …', 'loaded …', or the reason it is None."""
    build_kernels()
    return _state["status"]


# ---- the loops -------------------------------------------------------------------------------------------

ENABLED = True          # False: hyperlstm_fast always runs its torch loop (tests compare the two)
# the buffers' addresses, in the order of hyperlstm_kernels.cpp's enum Ptr
PTR_NAMES = ("xin", "A_all", "s_all", "HC_all", "HH_all", "th_all", "mA", "rA", "mhc", "rhc", "g_hat", "b_hat",
             "g_hat_c", "b_hat_c", "Z_all", "W_d", "b0", "R_all", "P_all", "S_all", "C_all", "TC_all", "out",
             "mP", "rP", "mc", "rc", "g_main", "b_main", "g_c", "b_c", "masks", "W_hath", "W_z", "b_z",
             "g_out", "DH", "DC", "DHH", "DHC", "dcn_all", "dY_all", "dd_all", "dR_all", "dxin",
             "dZ_all", "dgy_all", "dhcn_all")
_FORWARD, _BACKWARD = 0, 1


def usable(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether a sequence on this device and dtype runs here: the CPU, float32 or float64, kernels built."""
    if not ENABLED or device.type != "cpu" or dtype not in (torch.float32, torch.float64):
        return False
    lib = build_kernels()
    return lib is not None and lib.hyperlstm_n_ptrs() == len(PTR_NAMES)


class _Table:
    """The int64 arrays the kernels read: sizes and flags, and the buffers' addresses by name (0 for an
    absent one: the masks without recurrent dropout, the layer-norm buffers without layer norm)."""

    def __init__(self, lib, bufs: dict, T, B, H, Hh, Nz, ln, z_current, dtype):
        for name, t in bufs.items():
            if t is not None and not t.is_contiguous():
                raise RuntimeError(f"hyperlstm kernels: buffer {name} is not contiguous")   # a bug, not input
        self.bufs = bufs                    # keeps every tensor alive while the kernels hold its address
        self.dims = torch.tensor([T, B, H, Hh, Nz, int(ln), int(z_current)], dtype=torch.int64)
        self.ptrs = torch.tensor([bufs[n].data_ptr() if bufs.get(n) is not None else 0 for n in PTR_NAMES],
                                 dtype=torch.int64)
        self.step = lib.hyperlstm_step
        self.args = (int(dtype == torch.float64), self.dims.data_ptr(), self.ptrs.data_ptr())

    def __call__(self, which: int, t: int) -> None:
        self.step(which, *self.args, t, LN_EPS)


def run(x, state, p: Params, *, ln, z_current, masks, forget_bias, save):
    """``hyperlstm_fast._run`` with each step as one matmul and one kernel call."""
    T, B = x.shape[:2]
    h0, c0, hh0, hc0 = state
    H, Hh, Nz = h0.shape[1], hh0.shape[1], p.W_d.shape[1]
    xin = _project(x, p, H)
    new = lambda *shape: _WORKSPACE.take(shape, xin)  # noqa: E731
    fvec = _forget_vector(xin, forget_bias).view(4, 1)
    b = dict(xin=xin, out=xin.new_empty(T, B, H), C_all=new(T + 1, B, H), HH_all=new(T + 1, B, Hh),
             HC_all=new(T + 1, B, Hh), R_all=new(T, B, 4 * H + 4 * Hh), A_all=new(T, B, 4 * Hh),
             s_all=new(T, B, 4, Hh), th_all=new(T, B, Hh), Z_all=new(T, B, 12 * Nz), P_all=new(T, 4, B, H),
             S_all=new(T, 4, B, H), TC_all=new(T, B, H), W_d=p.W_d.contiguous(),
             masks=masks.to(xin.dtype).contiguous() if masks is not None else None, W_hath=p.W_hath.contiguous(),
             W_z=p.W_z.contiguous(), b_z=_z_bias(p.b_z))
    b["C_all"][0], b["HH_all"][0], b["HC_all"][0] = c0, hh0, hc0
    if ln:
        b.update(g_hat=p.ln_hat_gain.contiguous(), b_hat=(p.ln_hat_bias + fvec).contiguous(),
                 g_hat_c=p.ln_hat_c_gain.contiguous(), b_hat_c=p.ln_hat_c_bias.contiguous(),
                 b0=p.b_0.view(4, H).contiguous(), g_main=p.ln_gain.contiguous(),
                 b_main=(p.ln_bias.view(4, H) + fvec).contiguous(), g_c=p.ln_c_gain.contiguous(),
                 b_c=p.ln_c_bias.contiguous())
        for name, shape in (("mA", (T, B, 4, 1)), ("mhc", (T, B, 1)), ("mP", (T, 4, B, 1)), ("mc", (T, B, 1))):
            b[name], b["r" + name[1:]] = xin.new_empty(shape), xin.new_empty(shape)
    else:
        b.update(b_hat=fvec.expand(4, Hh).contiguous(), b0=(p.b_0.view(4, H) + fvec).contiguous())
    table = _Table(build_kernels(), b, T, B, H, Hh, Nz, ln, z_current, xin.dtype)
    R, out = b["R_all"].unbind(0), b["out"].unbind(0)
    for t in range(T):
        torch.mm(out[t - 1] if t else h0, p.W_rec, out=R[t])                     # h_{t-1}[W_h | Ŵ_h]
        table(_FORWARD, t)                                                       # ĥ_t, z, d, c_t, h_t
    out = b["out"]
    final = (out[T - 1].clone(), b["C_all"][T].clone(), b["HH_all"][T].clone(), b["HC_all"][T].clone())
    pooled = {k: b[k] for k in ("C_all", "HH_all", "HC_all", "R_all", "A_all", "s_all", "th_all", "Z_all",
                                "P_all", "S_all", "TC_all")}
    if not save:
        _WORKSPACE.give(xin, *pooled.values())
        return out, final, None, None
    stats = [b[k] for k in ("mA", "rA", "mhc", "rhc", "mP", "rP", "mc", "rc")] if ln else None
    saved = dict(pooled, xin=xin, h0=h0, stats=stats, native=table)
    return out, final, saved, None


def backward(ctx, x, out, g_out, g_state, sv):
    """``hyperlstm_fast._backward`` with each step as one kernel call and one matmul."""
    p, table = ctx.params, sv.pop("native")
    T, B, H = g_out.shape
    Hh, Nz = p.W_hath.shape[0], p.W_d.shape[1]
    new = lambda *shape: _WORKSPACE.take(shape, g_out)  # noqa: E731
    g = dict(g_out=g_out.contiguous(), DH=new(2, B, H), DC=new(2, B, H), DHH=new(2, B, Hh), DHC=new(2, B, Hh),
             dcn_all=new(T, B, H), dY_all=new(T, 4, B, H), dd_all=new(12, T, B, H),
             dR_all=new(T, B, 4 * H + 4 * Hh), dxin=new(T, B, 4 * H + 4 * Hh), dZ_all=new(T, B, 12 * Nz),
             dgy_all=new(T, B, 4, Hh), dhcn_all=new(T, B, Hh))
    first = (T - 1) % 2                    # step t reads slot t % 2 of DH, DC, DHH, DHC and writes the other
    for name, grad in zip(("DH", "DC", "DHH", "DHC"), g_state):
        g[name][first] = grad
    table = _Table(build_kernels(), dict(table.bufs, out=out, **g), T, B, H, Hh, Nz, ctx.ln, ctx.z_current,
                   g_out.dtype)
    W_recT = p.W_rec.t().contiguous()          # the per-step matmul is ~30% faster on a contiguous operand
    dR, DH = g["dR_all"].unbind(0), g["DH"]
    for t in reversed(range(T)):
        table(_BACKWARD, t)                    # ∂d, ∂z, ∂Â, ∂c_{t-1}, ∂ĉ_{t-1}, ∂ĥ_{t-1}, ∂(h_{t-1}[W_h | Ŵ_h])
        torch.mm(dR[t], W_recT, out=DH[(t + 1) % 2])                # ∂h_{t-1}, one matmul for both cells
    dstate = tuple(g[name][1].clone() for name in ("DH", "DC", "DHH", "DHC"))   # step 0 wrote slot 1
    dx, dparams = _weight_grads(ctx, x, out, sv, g["dR_all"], g["dZ_all"], g["dd_all"], g["dxin"], g["dY_all"],
                                g["dcn_all"], g["dgy_all"], g["dhcn_all"], products=True)
    _WORKSPACE.give(*(v for k, v in sv.items() if k not in ("h0", "stats")),
                    *(v for k, v in g.items() if k != "g_out"))
    return dx, dstate, dparams

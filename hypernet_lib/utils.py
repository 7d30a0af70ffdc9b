"""Device choice, seeding and the notebook scale convention shared by every chapter."""
from __future__ import annotations

import hashlib
import math
import os
import platform
import stat
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional

import numpy as np
import torch

__all__ = ["SCALES", "get_scale", "by_scale", "get_device", "device_name", "seed_everything", "run_banner",
           "count_params", "checkpoint_bytes", "check_positive_ints", "machine_line", "atomic_save",
           "time_interleaved", "check_int", "check_float", "check_choice", "check_output_path",
           "check_finite", "TrainingDiverged", "tensor_sha256", "check_shape"]

#: The three scales a notebook can run at (env var ``HYPERNET_SCALE``).
#: smoke: seconds per notebook, for CI; cpu: minutes on a laptop, real data; full: the paper's scale.
SCALES = ("smoke", "cpu", "full")


def get_scale(default: str = "cpu", env: str = "HYPERNET_SCALE") -> str:
    """Read the scale from ``$HYPERNET_SCALE`` (default ``cpu``); an unknown value is an error."""
    value = os.environ.get(env, default).strip().lower() or default
    if value not in SCALES:
        raise ValueError(
            f"{env}={os.environ.get(env)!r} is not a known scale; set it to one of {', '.join(SCALES)} "
            f"(e.g. `export {env}=cpu`)")
    return value


def by_scale(scale: str, *, smoke: Any, cpu: Any, full: Any) -> Any:
    """Pick the value for ``scale``: ``by_scale(scale, smoke=1, cpu=5, full=100)``."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    return {"smoke": smoke, "cpu": cpu, "full": full}[scale]


def get_device(prefer: Optional[str] = None) -> torch.device:
    """CUDA if present, then Apple's MPS, then the CPU.  ``prefer`` (or ``$HYPERNET_DEVICE``) forces one.

    A forced device must be one this machine can compute on (cpu, cuda, cuda:N, mps); anything else
    raises an error that names where the value came from (the argument or ``HYPERNET_DEVICE``)."""
    source = "device"
    if not prefer:
        env = os.environ.get("HYPERNET_DEVICE")
        if env is not None and env.strip():
            prefer, source = env.strip(), "HYPERNET_DEVICE"
        else:
            prefer = None
    if prefer is not None:
        fix = ("unset HYPERNET_DEVICE or set it to cpu, cuda or mps" if source == "HYPERNET_DEVICE"
               else "choose cpu, cuda, cuda:N or mps")
        shown = f"HYPERNET_DEVICE={prefer!r}" if source == "HYPERNET_DEVICE" else f"device {prefer!r}"
        try:
            dev = torch.device(prefer)
        except (RuntimeError, TypeError, ValueError):
            raise ValueError(f"{shown} is not a device name; {fix}") from None
        if dev.type not in ("cpu", "cuda", "mps"):
            raise ValueError(f"{shown}: training and sampling run on cpu, cuda or mps, not {dev.type!r}; {fix}")
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"{shown}: device 'cuda' was asked for but torch.cuda.is_available() is False; "
                               "unset HYPERNET_DEVICE or install a CUDA build of torch")
        if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{shown}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                             f"numbered from 0; {fix}")
        if dev.type == "mps" and not _mps_available():
            raise RuntimeError(f"{shown}: device 'mps' was asked for but MPS is not available on this machine")
        if dev.type == "cpu" and dev.index not in (None, 0):
            raise ValueError(f"{shown}: there is one cpu device; {fix}")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


#: Seeds torch accepts (``torch.manual_seed``): 0 <= seed < 2**64.
MAX_SEED = 2**64 - 1


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU ``torch.Generator`` seeded the same way."""
    check_int(seed=seed, lo=0, hi=MAX_SEED)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        n = torch.get_num_threads()
        return f"cpu ({platform.processor() or platform.machine()}, {n} thread{'s' if n != 1 else ''})"
    return str(device)


def machine_line(device: Optional[torch.device] = None) -> str:
    """The machine a measurement ran on, for benchmark output: device, threads, torch, OS."""
    device = device if device is not None else torch.device("cpu")
    return f"{device_name(device)}, torch {torch.__version__}, {platform.platform()}"


def time_interleaved(fns: Mapping[str, Callable[[], Any]], repeats: int, warmup: int = 1,
                     device: Optional[torch.device] = None, stat: str = "median") -> Dict[str, float]:
    """Seconds per call of each function in ``fns``, measured in one run for comparing them.

    The functions take turns: each of the ``repeats`` rounds calls every function once, so a change in
    machine load (a shared CPU, GPU clocks) hits all of them alike and their ratios stay meaningful.
    ``warmup`` untimed rounds come first.  On CUDA the device is synchronised after every call.
    ``stat`` is "median" (default) or "min" (best of, the least noisy on a busy machine).
    Returns {name: seconds}.
    """
    if stat not in ("median", "min"):
        raise ValueError(f"stat must be 'median' or 'min', got {stat!r}")
    check_positive_ints(repeats=repeats)
    cuda = device is not None and torch.device(device).type == "cuda"

    def call(fn) -> float:
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize(device)
        return time.perf_counter() - t0

    for _ in range(warmup):
        for fn in fns.values():
            call(fn)
    times: Dict[str, list] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(call(fn))
    reduce = statistics.median if stat == "median" else min
    return {name: reduce(ts) for name, ts in times.items()}


def run_banner(scale: str, data: str, device: torch.device) -> str:
    """One line that says which scale, data and device produced a notebook's outputs; printed too."""
    line = f"scale={scale} | data={data} | device={device_name(device)} | torch {torch.__version__}"
    print(line)
    return line


# ---------------------------------------------------------------------------------------------
# Argument checks shared by every public entry point: one message style, naming the argument.
# ---------------------------------------------------------------------------------------------
def _is_int(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, np.integer))


def check_int(*, lo: Optional[int] = None, hi: Optional[int] = None, optional: bool = False, **values) -> None:
    """Raise a ValueError naming the first of ``values`` that is not an integer in [lo, hi] (bools are
    not integers; 2.5 and 2.0 are not either).  ``optional``: None is allowed."""
    for name, v in values.items():
        if v is None and optional:
            continue
        if not _is_int(v):
            raise ValueError(f"{name} must be an integer, got {v!r}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            if hi is None:
                want = "a positive integer" if lo == 1 else f"an integer >= {lo}"
            elif lo is None:
                want = f"an integer <= {hi}"
            else:
                want = f"an integer in [{lo}, {hi}]"
            raise ValueError(f"{name} must be {want}, got {v!r}")


def check_positive_ints(**values) -> None:
    """Raise a ValueError naming the first argument that is not a positive integer (bools are not)."""
    for name, v in values.items():
        if not _is_int(v) or v <= 0:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")


def check_float(*, lo: Optional[float] = None, hi: Optional[float] = None, lo_open: bool = False,
                hi_open: bool = False, optional: bool = False, **values) -> None:
    """Raise a ValueError naming the first of ``values`` that is not a finite real number in the interval
    (closed unless ``lo_open``/``hi_open``); ints count, bools and NaN do not.  ``optional``: None is allowed."""
    for name, v in values.items():
        if v is None and optional:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise ValueError(f"{name} must be a number, got {v!r}")
        v = float(v)
        bad = not math.isfinite(v)
        if lo is not None:
            bad = bad or (v <= lo if lo_open else v < lo)
        if hi is not None:
            bad = bad or (v >= hi if hi_open else v > hi)
        if bad:
            parts = []
            if lo is not None:
                parts.append(f"{'>' if lo_open else '>='} {lo:g}")
            if hi is not None:
                parts.append(f"{'<' if hi_open else '<='} {hi:g}")
            cond = " and ".join(parts) if parts else "finite"
            raise ValueError(f"{name} must be {cond} (a finite number), got {values[name]!r}")


def check_choice(name: str, value, choices) -> None:
    """Raise a ValueError if ``value`` is not one of ``choices``, listing them."""
    if value not in tuple(choices):
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(repr(c) for c in choices)}")


def check_output_path(path, what: str = "path") -> Path:
    """Check, before any work, that ``path`` can receive a file written by :func:`atomic_save`.

    Refused (ValueError naming ``what``): an empty path, a directory, anything that exists and is not a
    regular file (a fifo, a socket, a device), a path whose folder is a file or cannot be created, and
    a folder this process may not write in.  A symlink is followed: the file it points to is what gets
    written (and checked).  Returns the path that will be written.
    """
    if path is None or str(path).strip() == "":
        raise ValueError(f"{what} is empty; give a file path such as models/run.pt")
    p = Path(path)
    if p.is_symlink():
        p = Path(os.path.realpath(p))
    shown = f"{what} {str(path)!r}" + (f" (a link to {str(p)!r})" if str(p) != str(path) else "")
    if p.exists() or p.is_symlink():
        mode = os.stat(p).st_mode
        if stat.S_ISDIR(mode):
            raise ValueError(f"{shown} is a directory; give a file path inside it, e.g. {str(Path(path) / 'model.pt')!r}")
        if not stat.S_ISREG(mode):
            raise ValueError(f"{shown} exists and is not a regular file (a device, fifo or socket); "
                             "give a path to a regular file or a new path")
    parent = p.parent
    probe = parent
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ValueError(f"{shown}: {str(probe)!r} is a file, not a folder, so nothing can be written under it")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"{shown}: the folder {str(probe)!r} is not writable")
    return p


def _shape_text(shape) -> str:
    parts = ["*" if s is None else str(s) for s in shape]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def check_shape(name: str, value, shape, *, floating: Optional[bool] = None, fix: str = "") -> None:
    """Raise a ValueError naming ``name`` unless ``value`` is a tensor of ``shape``.

    ``shape``: a tuple whose entries are ints (that size) or strings / None (any size; a string is how
    the message shows that dimension, e.g. ``("T", "B", 5)``); a first entry ``"..."`` allows any number
    of leading dimensions.  ``floating=True`` also requires a floating-point dtype, ``False`` an integer
    one.  ``fix`` (what to do instead) ends the message.  Reads shape and dtype only: no device sync.
    """
    lead = bool(shape) and shape[0] == "..."
    tail = tuple(shape[1:]) if lead else tuple(shape)
    end = f"; {fix}" if fix else ""
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a tensor of shape {_shape_text(shape)}, got {type(value).__name__}{end}")
    dims = value.shape
    ok = len(dims) >= len(tail) if lead else len(dims) == len(tail)
    if ok:
        off = len(dims) - len(tail)
        ok = all(not isinstance(s, int) or dims[off + k] == s for k, s in enumerate(tail))
    if not ok:
        raise ValueError(f"{name} must have shape {_shape_text(shape)}, got {tuple(dims)}{end}")
    if floating is not None:
        is_float = value.is_floating_point()
        is_int = not is_float and not value.is_complex() and value.dtype != torch.bool
        if floating and not is_float:
            raise ValueError(f"{name} must be a floating-point tensor, got dtype {value.dtype}{end}")
        if floating is False and not is_int:
            raise ValueError(f"{name} must hold integers, got dtype {value.dtype}{end}")


# ---------------------------------------------------------------------------------------------
# Divergence: a loss or a weight that is not finite ends training with an error, never with success.
# ---------------------------------------------------------------------------------------------
class TrainingDiverged(FloatingPointError):
    """Training produced a non-finite loss or non-finite weights.  Nothing from the diverged steps is
    saved; a checkpoint written before them is kept."""


def check_finite(*, loss=None, model=None, where: str = "", hint: str = "") -> None:
    """Raise :class:`TrainingDiverged` if ``loss`` (a number or tensor; a running sum works, since one
    NaN or inf step makes it non-finite) or any parameter of ``model`` is NaN or infinite.
    One host sync per call: call it where the loop syncs anyway (an evaluation, an epoch's end)."""
    bad = None
    if loss is not None:
        value = float(loss.detach().float().sum()) if isinstance(loss, torch.Tensor) else float(loss)
        if not math.isfinite(value):
            bad = f"the training loss is {value}"
    if bad is None and model is not None:
        for name, p in model.named_parameters():
            if not bool(torch.isfinite(p.detach()).all()):
                bad = f"parameter {name!r} holds NaN or infinite values"
                break
    if bad is not None:
        raise TrainingDiverged(f"training diverged{' ' + where if where else ''}: {bad}; "
                               f"{hint or 'lower the learning rate or clip the gradients'}")


def tensor_sha256(t: torch.Tensor) -> str:
    """Hex SHA-256 of a tensor's dtype, shape and values (for recording which data a run trained on)."""
    t = t.detach().cpu().contiguous()
    h = hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def count_params(module_or_params) -> int:
    """Number of scalars in a module's parameters (or in an iterable of tensors)."""
    params = module_or_params.parameters() if hasattr(module_or_params, "parameters") else module_or_params
    return sum(p.numel() for p in params)


def checkpoint_bytes(module, directory: Optional[str] = None) -> int:
    """Size on disk of ``torch.save(module.state_dict())``, measured by saving to a temporary file."""
    fd, path = tempfile.mkstemp(suffix=".pt", dir=directory)
    os.close(fd)
    try:
        torch.save(module.state_dict(), path)
        return os.path.getsize(path)
    finally:
        os.remove(path)


def _creation_mode(existing: Optional[os.stat_result]) -> int:
    """The mode ordinary ``open(path, 'w')`` would give: an existing file keeps its mode, a new one
    gets 0o666 less the umask."""
    if existing is not None:
        return stat.S_IMODE(existing.st_mode)
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_save(obj, path: os.PathLike | str) -> Path:
    """``torch.save`` to a temporary file beside ``path``, fsync, then rename over ``path``.

    A crash mid-write leaves the previous checkpoint intact; a reader never sees half a file, and the
    temporary file is removed on any error.  A symlink is written through (its target is replaced, the
    link stays); a directory, fifo, socket or device at ``path`` is refused with a ValueError, never
    replaced.  The file gets the permissions ordinary file creation gives (umask; an existing file keeps
    its mode).  Returns the path written.
    """
    path = check_output_path(path, "checkpoint path")
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = os.stat(path) if path.exists() else None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _creation_mode(existing))
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def settings_diff(saved: dict, run: dict) -> str:
    """``"k saved -> now; ..."`` for the settings of ``run`` that a saved run had otherwise ("" if none).
    Resumable loops compare a checkpoint's settings with the current call's before continuing it."""
    return "; ".join(f"{k} {saved.get(k)!r} -> {v!r}" for k, v in run.items() if saved.get(k) != v)

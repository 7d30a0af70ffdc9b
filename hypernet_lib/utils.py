"""Device choice, seeding and the notebook scale convention shared by every chapter."""
from __future__ import annotations

import os
import platform
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
           "time_interleaved"]

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
    """CUDA if present, then Apple's MPS, then the CPU.  ``prefer`` (or ``$HYPERNET_DEVICE``) forces one."""
    prefer = prefer or os.environ.get("HYPERNET_DEVICE") or None
    if prefer is not None:
        dev = torch.device(prefer)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was asked for but torch.cuda.is_available() is False; "
                               "unset HYPERNET_DEVICE or install a CUDA build of torch")
        if dev.type == "mps" and not _mps_available():
            raise RuntimeError("device 'mps' was asked for but MPS is not available on this machine")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU ``torch.Generator`` seeded the same way."""
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


def check_positive_ints(**values) -> None:
    """Raise a ValueError naming the first argument that is not a positive integer (bools are not)."""
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")


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


def atomic_save(obj, path: os.PathLike | str) -> Path:
    """``torch.save`` to a temporary file beside ``path``, fsync, then rename over ``path``.

    A crash mid-write leaves the previous checkpoint intact; a reader never sees half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
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

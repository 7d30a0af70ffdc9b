"""Where a run executes: device choice, seeding, and a one-line description of the machine."""
from __future__ import annotations

import os
import platform
import random
from typing import Optional

import numpy as np
import torch

from .checks import MAX_SEED, check_int

__all__ = ["get_device", "seed_everything", "device_name", "machine_line"]


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

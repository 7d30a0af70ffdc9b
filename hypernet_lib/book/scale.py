"""The notebook scale convention: smoke (CI), cpu (a laptop, shipped checkpoints), full (a GPU)."""
from __future__ import annotations

import os
from typing import Any

import torch

from ..runtime import device_name

__all__ = ["SCALES", "get_scale", "by_scale", "run_banner"]

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


def run_banner(scale: str, data: str, device: torch.device) -> str:
    """One line that says which scale, data and device produced a notebook's outputs; printed too."""
    line = f"scale={scale} | data={data} | device={device_name(device)} | torch {torch.__version__}"
    print(line)
    return line

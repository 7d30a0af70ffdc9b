"""Argument checks shared by the whole library: each error names the argument, what it got, and the fix."""
from __future__ import annotations

import math
import os
import stat
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

__all__ = ["MAX_SEED", "check_int", "check_positive_ints", "check_float", "check_bool", "check_choice",
           "check_output_path",
           "check_shape", "TrainingDiverged", "check_finite", "check_ids_in_range", "check_state"]

#: Seeds torch accepts (``torch.manual_seed``): 0 <= seed < 2**64.
MAX_SEED = 2**64 - 1


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


def check_bool(**values) -> None:
    """Raise a ValueError naming the first of ``values`` that is not True or False (1 and 0 are not)."""
    for name, v in values.items():
        if not isinstance(v, bool):
            raise ValueError(f"{name} must be True or False, got {v!r}")


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


def check_ids_in_range(ids: torch.Tensor, n: int, what: str, of: str = "the model's vocabulary") -> None:
    """ValueError if an id lies outside [0, n): one min/max per call, so call it once per sequence."""
    if ids.numel() == 0:
        return
    lo, hi = torch.aminmax(ids)
    lo, hi = int(lo), int(hi)
    if lo < 0 or hi >= n:
        raise ValueError(f"{what} contain id {lo if lo < 0 else hi}, outside {of} (ids 0..{n - 1})")


def check_state(state, batch: int, sizes: Sequence[int], names: Sequence[str], what: str = "state",
                dtype: Optional[torch.dtype] = None) -> None:
    """ValueError naming the problem unless ``state`` is a tuple of ``len(sizes)`` tensors of shapes
    (batch, sizes[k]) (and of ``dtype`` if given): the state a recurrent layer carries between calls."""
    n = len(sizes)
    shown = ", ".join(names)
    if not isinstance(state, (tuple, list)) or len(state) != n:
        length = f" of length {len(state)}" if isinstance(state, (tuple, list)) else ""
        raise ValueError(f"{what} must be a tuple of {n} tensors ({shown}), as the layer's previous call returns; "
                         f"got {type(state).__name__}{length}")
    for k, (t, size) in enumerate(zip(state, sizes)):
        part = f"{what}[{k}] ({names[k]})"
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{part} must be a tensor of shape ({batch}, {size}), got {type(t).__name__}")
        if t.dim() == 2 and t.shape[1] == size and t.shape[0] != batch:
            raise ValueError(f"{part} has shape {tuple(t.shape)}, but the input has batch size {batch}; carry the "
                             "state only between calls with the same batch size")
        if t.shape != (batch, size):
            raise ValueError(f"{part} has shape {tuple(t.shape)}, expected ({batch}, {size}) ({size} units); pass the "
                             "state the layer returned")
        if dtype is not None and t.dtype != dtype:
            raise ValueError(f"{part} has dtype {t.dtype} but the weights are {dtype}; carry the state the layer "
                             f"returned, or convert it with .to({dtype})")

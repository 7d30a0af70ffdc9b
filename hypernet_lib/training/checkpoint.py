"""The one checkpoint format: atomic writes, a reader with clear errors, and run settings that must match to resume."""
from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Optional

import torch

from ..checks import check_output_path

__all__ = ["tensor_sha256", "atomic_save", "settings_diff", "load_checkpoint", "CheckpointError",
           "UnreadableCheckpoint"]


def tensor_sha256(t: torch.Tensor) -> str:
    """Hex SHA-256 of a tensor's dtype, shape and values (for recording which data a run trained on)."""
    t = t.detach().cpu().contiguous()
    h = hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


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


class CheckpointError(ValueError):
    """A file that is not a checkpoint of the kind expected, or a training state of another run."""


class UnreadableCheckpoint(CheckpointError, RuntimeError):
    """A file that cannot be read as a checkpoint at all (empty, truncated, not a torch file): a
    :class:`CheckpointError`, and a RuntimeError as :func:`load_checkpoint` always raised for it."""


def load_checkpoint(path: os.PathLike | str, map_location=None, *, format: Optional[str] = None,
                    what: str = "checkpoint", fix: str = "; delete it to start afresh", unversioned: bool = False):
    """The one checkpoint reader: ``torch.load(path, weights_only=True)`` with clear errors.

    * no file: FileNotFoundError; a directory, fifo or other non-regular file: :class:`CheckpointError`;
    * an empty or unreadable file: :class:`UnreadableCheckpoint` (a CheckpointError and a RuntimeError);
    * with ``format``, a file that is not a dict with that ``"format"`` id: :class:`CheckpointError`
      (``unversioned=True`` also accepts a dict without any ``"format"`` key, written before ids existed).

    Messages name ``what`` was expected and end with ``fix``.  Only tensors, numbers, strings and plain
    containers are read (weights only): a checkpoint never runs code.
    """
    shown = repr(os.fspath(path))
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {os.fspath(path)}; train first or pass the right path")
    if os.path.isdir(path):
        raise CheckpointError(f"{shown} is a directory, not a {what} file (not a regular file); "
                              "pass the checkpoint file's path")
    if not os.path.isfile(path):
        raise CheckpointError(f"{shown} is not a regular file, so not a {what}{fix}")
    if os.path.getsize(path) == 0:
        raise UnreadableCheckpoint(f"{shown} is empty (0 bytes), not a {what}{fix}")
    try:
        ck = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is reported the same way
        first = (str(e).strip().splitlines() or ["no details"])[0][:200]
        raise UnreadableCheckpoint(f"{shown} is not a readable {what} ({type(e).__name__}: {first}){fix}") from None
    if format is not None and not (isinstance(ck, dict) and (ck.get("format") == format
                                                             or (unversioned and "format" not in ck))):
        keys = sorted(map(str, ck))[:8] if isinstance(ck, dict) else type(ck).__name__
        raise CheckpointError(f"{shown} is not a {what} (expected format {format!r}; found {keys}){fix}")
    return ck

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

__all__ = ["tensor_sha256", "atomic_save", "settings_diff", "load_checkpoint", "CheckpointError"]


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


save_checkpoint = atomic_save


def load_checkpoint(path: os.PathLike | str, map_location=None):
    """Load a checkpoint written by :func:`save_checkpoint`, with a clear error if it is missing or damaged."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}; train first or pass the right path")
    if not path.is_file():
        raise ValueError(f"{path} is not a regular file, so not a checkpoint; pass the checkpoint file's path")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing here
        raise RuntimeError(f"{path} is not a readable checkpoint ({exc.__class__.__name__}: {exc}); "
                           "delete it to start afresh") from None


class CheckpointError(ValueError):
    """A file that is not a checkpoint of this module's language model."""


def _read_checkpoint(path: str, fmt: str, what: str, fix: str, map_location=None) -> dict:
    """torch.load (weights only) of a file this module wrote in format ``fmt``; a file that cannot be read
    or has another format raises :class:`CheckpointError` naming ``what`` was expected and the ``fix``."""
    if os.path.isdir(path):
        raise CheckpointError(f"{path!r} is a directory, not a {what} file; pass the checkpoint file's path")
    if os.path.exists(path) and not os.path.isfile(path):
        raise CheckpointError(f"{path!r} is not a regular file, so not a {what}{fix}")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise CheckpointError(f"{path!r} is empty (0 bytes), not a {what}{fix}")
    try:
        ck = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is reported the same way
        first = (str(e).strip().splitlines() or ["no details"])[0][:200]
        raise CheckpointError(f"{path!r} is not a readable {what} ({type(e).__name__}: {first}){fix}") from None
    if not isinstance(ck, dict) or ck.get("format") != fmt:
        keys = sorted(map(str, ck))[:8] if isinstance(ck, dict) else type(ck).__name__
        raise CheckpointError(f"{path!r} is not a {what} (expected format {fmt!r}; found {keys}){fix}")
    return ck

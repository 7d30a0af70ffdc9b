"""Trained models shipped with the book: one file per chapter run, listed with its sha256 and settings.

A chapter at ``cpu`` scale asks ``ShippedCheckpoint(name, settings, scale)`` whether a checkpoint
made with exactly these settings ships with the library. If so it loads it (after checking its
sha256) instead of training; otherwise, or with ``HYPERNET_RETRAIN=1``, it trains and saves one.
Smoke scale never loads or saves: CI must exercise the training code.

Files live in ``hypernet_lib/checkpoints/`` (package data, so ``pip install`` brings them along,
also in Colab) and are listed in ``manifest.json`` there. Floating-point tensors are stored in
half precision, or with ``precision="int8"`` the large matrices as 8-bit integers with one
half-precision scale per group of 64 numbers (about half the size of a half-precision file, for
the chapters whose models would not otherwise fit the book's 20 MB). ``save`` loads the rounded
weights back into the models, so what a run reports after saving is exactly what a reader who
loads the file sees.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Mapping, Optional

import torch
from torch import nn

from ..checks import check_choice
from ..training.checkpoint import atomic_save, settings_diff

DIRECTORY = Path(__file__).resolve().parents[1] / "checkpoints"
FORMAT = "hypernet_lib.shipped/1"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class CheckpointMismatch(RuntimeError):
    """A shipped checkpoint exists but cannot be used as it is (corrupt, or of another format)."""


def runs_directory() -> Path:
    """Where interrupted training runs keep their state: ``$HYPERNET_RUNS``, else ``~/.cache/hypernet_lib/runs``."""
    env = os.environ.get("HYPERNET_RUNS", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "hypernet_lib" / "runs"


def retrain_requested() -> bool:
    """True when the environment asks to train even where a matching checkpoint ships."""
    return os.environ.get("HYPERNET_RETRAIN", "").strip().lower() not in ("", "0", "false", "no")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _jsonable(settings: Mapping[str, Any]) -> dict:
    try:
        return json.loads(json.dumps(dict(settings), sort_keys=True))
    except TypeError as e:
        raise TypeError(f"checkpoint settings must be JSON values (numbers, strings, lists): {e}") from None


def read_manifest(directory: Path = DIRECTORY) -> dict:
    path = Path(directory) / "manifest.json"
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointMismatch(f"{path} is not valid JSON ({e}); restore it from the repository") from None


def _write_manifest(manifest: dict, directory: Path) -> None:
    path = Path(directory) / "manifest.json"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


PRECISIONS = ("half", "int8")
#: int8 storage: numbers per scale, and the smallest tensor worth quantising (smaller ones stay half)
INT8_GROUP, INT8_MIN_NUMEL = 64, 65536
_HALF_MAX = 60000.0          # float16 holds up to 65504; a margin for the int8 scales' rounding


def _int8(t: torch.Tensor) -> dict:
    """``t`` as int8 codes with one float16 scale per group of INT8_GROUP consecutive numbers
    (row-major; the last group zero-padded): code = round(x / scale), scale = max|x| / 127 of its
    group, so the error of each number is at most half its group's scale."""
    flat = t.detach().to("cpu", torch.float32).reshape(-1)
    groups = torch.nn.functional.pad(flat, (0, -flat.numel() % INT8_GROUP)).view(-1, INT8_GROUP)
    scale = (groups.abs().amax(1, keepdim=True) / 127).to(torch.float16)
    safe = scale.float().masked_fill(scale == 0, 1.0)            # an all-zero group: codes 0
    codes = torch.round(groups / safe).clamp_(-127, 127).to(torch.int8)
    return {"int8": codes, "scale": scale, "shape": torch.tensor(list(t.shape), dtype=torch.int64)}


def _from_int8(packed: Mapping[str, torch.Tensor]) -> torch.Tensor:
    shape = [int(n) for n in packed["shape"]]
    flat = (packed["int8"].float() * packed["scale"].float()).reshape(-1)
    return flat[:math.prod(shape)].view(shape)


def _store(state: Mapping[str, torch.Tensor], precision: str) -> dict:
    """A state dict as saved: float tensors in half precision, or (int8) large ones quantised.
    A tensor with numbers beyond float16's range (65504) stays float32 rather than become inf."""
    out = {}
    for k, v in state.items():
        if not v.is_floating_point():
            out[k] = v.detach().cpu()
        elif v.numel() and v.detach().abs().max() > _HALF_MAX:
            out[k] = v.detach().to("cpu", torch.float32)
        elif precision == "int8" and v.dim() >= 2 and v.numel() >= INT8_MIN_NUMEL:
            out[k] = _int8(v)
        else:
            out[k] = v.detach().to("cpu", torch.float16)
    return out


def _restore(stored: Mapping[str, Any]) -> dict:
    """Float32 tensors (integer ones unchanged) from what ``_store`` wrote."""
    out = {}
    for k, v in stored.items():
        if isinstance(v, Mapping):
            out[k] = _from_int8(v)
        else:
            out[k] = v.float() if v.is_floating_point() else v
    return out


class ShippedCheckpoint:
    """One chapter run's trained models: ``usable()`` → ``load()``, or train → ``save(models, extra)``.

    ``settings`` is every choice that changes the trained weights (sizes, data, steps, seeds);
    a checkpoint is used only when its recorded settings are equal. ``status`` says, in one line
    a notebook prints, whether the models were loaded or trained and why.
    """

    def __init__(self, name: str, settings: Mapping[str, Any], scale: str,
                 directory: Optional[os.PathLike | str] = None):
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"checkpoint name must be lower-case letters, digits, '_', '-' or '.', got {name!r}")
        self.name, self.scale = name, scale
        self.settings = _jsonable({**settings, "scale": scale})
        self.directory = Path(directory) if directory is not None else DIRECTORY
        self.path = self.directory / f"{name}.pt"
        self.status = ""

    def usable(self) -> bool:
        """Whether a matching, intact checkpoint ships; sets ``status`` to the reason either way."""
        if self.scale == "smoke":
            self.status = "smoke scale: trained here (shipped checkpoints are never used at smoke scale)"
            return False
        if retrain_requested():
            self.status = f"HYPERNET_RETRAIN is set: trained here instead of loading {self.path.name}"
            return False
        entry = read_manifest(self.directory).get(self.name)
        if entry is None or not self.path.exists():
            self.status = f"no shipped checkpoint {self.path.name}: trained here"
            return False
        diff = settings_diff(entry["settings"], self.settings)
        if diff:
            self.status = f"shipped {self.path.name} was made with other settings ({diff}): trained here"
            return False
        return True

    def run_state(self, model: str) -> Optional[str]:
        """Path for the resumable training state of one model of this run (None at smoke scale).

        The folder name holds a hash of the settings, so a run with other settings starts afresh
        instead of meeting a state it cannot use. Pass it as ``checkpoint=`` to a training loop:
        re-running an interrupted cell then resumes where the last evaluation left off.
        """
        if self.scale == "smoke":
            return None
        if not isinstance(model, str) or not _NAME.match(model):
            raise ValueError(f"model name must be lower-case letters, digits, '_', '-' or '.', got {model!r}")
        digest = hashlib.sha256(json.dumps(self.settings, sort_keys=True).encode()).hexdigest()[:12]
        return str(runs_directory() / f"{self.name}-{digest}" / f"{model}.pt")

    def load(self, map_location: Any = "cpu") -> dict:
        """Verify the file's sha256 against the manifest and return {"models": {...}, "extra": {...}}.

        Model states come back in float32; ``extra`` is whatever ``save`` was given (histories, ...).
        """
        entry = read_manifest(self.directory).get(self.name)
        if entry is None:
            raise CheckpointMismatch(f"{self.name} is not listed in {self.directory / 'manifest.json'}")
        digest = _sha256(self.path)
        if digest != entry["sha256"]:
            raise CheckpointMismatch(
                f"{self.path} has sha256 {digest[:12]}…, the manifest lists {entry['sha256'][:12]}…: the file is "
                f"corrupt or was replaced. Restore it from the repository, or retrain with HYPERNET_RETRAIN=1")
        try:
            payload = torch.load(self.path, map_location=map_location, weights_only=True)
        except Exception as e:                       # noqa: BLE001 - any unpickling failure means the same
            raise CheckpointMismatch(f"{self.path} cannot be read ({type(e).__name__}: {e}); restore it from "
                                     f"the repository, or retrain with HYPERNET_RETRAIN=1") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise CheckpointMismatch(f"{self.path} is not a {FORMAT} checkpoint")
        models = {k: _restore(sd) for k, sd in payload["models"].items()}
        self.status = (f"loaded the shipped checkpoint {self.path.name} (sha256 {digest[:12]}…, trained "
                       f"{payload['created'][:10]} on {payload.get('machine', '?')}); set HYPERNET_RETRAIN=1 to train")
        return {"models": models, "extra": payload.get("extra", {})}

    def load_into(self, models: Mapping[str, nn.Module], map_location: Any = "cpu") -> dict:
        """``load`` and copy each state into ``models[name]``; returns the ``extra`` dict."""
        payload = self.load(map_location)
        missing = sorted(set(models) - set(payload["models"]))
        if missing:
            raise CheckpointMismatch(f"{self.path.name} holds no model named {', '.join(missing)}; "
                                     f"it has {', '.join(sorted(payload['models']))}")
        for k, m in models.items():
            m.load_state_dict(payload["models"][k])
        return payload["extra"]

    def save(self, models: Mapping[str, nn.Module], extra: Optional[Mapping[str, Any]] = None,
             machine: str = "", precision: str = "half") -> None:
        """Write the checkpoint and its manifest entry, then load the rounded weights back into
        ``models``. ``precision``: ``"half"`` (every float tensor in float16) or ``"int8"`` (matrices
        of at least INT8_MIN_NUMEL numbers as int8 with a float16 scale per INT8_GROUP numbers, the
        rest float16). Does nothing at smoke scale."""
        check_choice("precision", precision, PRECISIONS)
        if self.scale == "smoke":
            return
        payload = {"format": FORMAT, "settings": self.settings,
                   "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "machine": str(machine), "torch": str(torch.__version__),
                   "models": {k: _store(m.state_dict(), precision) for k, m in models.items()},
                   "extra": dict(extra or {})}
        atomic_save(payload, self.path)
        manifest = read_manifest(self.directory)
        manifest[self.name] = {"file": self.path.name, "sha256": _sha256(self.path),
                               "bytes": self.path.stat().st_size, "settings": self.settings,
                               "created": payload["created"], "machine": machine}
        _write_manifest(manifest, self.directory)
        for k, m in models.items():                  # continue with exactly the weights a reader loads
            m.load_state_dict({n: t.to(v.dtype) for (n, t), v in
                               zip(_restore(payload["models"][k]).items(), m.state_dict().values())})
        stored = "half precision" if precision == "half" else "int8 matrices, half precision otherwise"
        self.status = (f"trained here and saved {self.path.name} ({self.path.stat().st_size / 2**20:.1f} MiB, "
                       f"{stored}; the results below use the saved weights)")

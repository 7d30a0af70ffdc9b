"""The published nets rebuilt from this library's modules and counted."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

import torch
import torch.nn as nn

from .. import paper
from ..nn.charlm import paper_ptb_config
from ..nn.mnist import MNISTHyperNet
from ..nn.wrn import WideResNet
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


_MNIST, _WRN, _PTB = paper.MNIST, paper.CIFAR10_WRN_SETUP, paper.PTB_SETUP

#: The paper's CIFAR-10 Table 2 parameter counts (millions), from :mod:`hypernet_lib.paper`.
WRN40_1_PUBLISHED_M = {"plain": paper.CIFAR10_WRN40_1["params_m_plain"],
                       "hyper": paper.CIFAR10_WRN40_1["params_m_hyper"]}

#: Table 3's character-level PTB models: key -> (row of ``paper.PTB``, CharLM cell, N_z, what).
_PTB_ROWS = {
    "ptb_lstm_params": ("lstm", "lstm", _PTB["n_z"],
                        f"PTB character LSTM, {_PTB['hidden']} units (nn.LSTM)"),
    "ptb_ln_lstm_params": ("ln-lstm", "ln-lstm", _PTB["n_z"], f"layer-norm LSTM, {_PTB['hidden']} units"),
    "ptb_hyperlstm_params": ("hyperlstm", "hyperlstm", _PTB["n_z"],
                             f"HyperLSTM {_PTB['hidden']} (hyper cell {_PTB['hyper_hidden']}, N_z = {_PTB['n_z']})"),
    "ptb_ln_hyperlstm_params": ("ln-hyperlstm", "ln-hyperlstm", _PTB["n_z"], f"layer-norm HyperLSTM {_PTB['hidden']}"),
    "ptb_large_embedding_params": ("ln-hyperlstm_large_embedding", "ln-hyperlstm", _PTB["n_z_large"],
                                   f"layer-norm HyperLSTM {_PTB['hidden']}, Large Embedding (N_z = {_PTB['n_z_large']})"),
}


def _ptb_formula(cell: str, n_z: int) -> int:
    """Closed form of a Table 3 model: one-hot input over the vocabulary, one (Hyper)LSTM layer, softmax."""
    vocab, hidden, layer_norm = _PTB["vocab"], _PTB["hidden"], cell.startswith("ln-")
    if cell.endswith("hyperlstm"):
        cell_params = hyperlstm_params(vocab, hidden, _PTB["hyper_hidden"], n_z, layer_norm=layer_norm)
    else:              # nn.LSTM has two biases per gate; with layer norm, the LN bias replaces them
        cell_params = lstm_params(vocab, hidden, 0 if layer_norm else 2, layer_norm=layer_norm)
    return char_lm_params(vocab, cell_params, hidden)


_WRN_NAME = f"WRN {_WRN['depth']}-{_WRN['width']}"
_WRN_NZ = f"N_z = d = {_WRN['n_z']}" if _WRN["n_z"] == _WRN["d"] else f"N_z = {_WRN['n_z']}, d = {_WRN['d']}"

PUBLISHED: dict[str, Published] = {p.key: p for p in [
    Published("mnist_hyper_params",
              f"MNIST hypernetwork: Eq. 2 generator + z (ordinary conv2 kernel: {_MNIST['kernel_params']:,})",
              _MNIST["hyper_params"], 1, "Ha et al. §4.1",
              lambda: mnist_hyper_params(_MNIST["n_z"], _MNIST["f"], _MNIST["channels"])),
    Published("wrn40_1_params", f"CIFAR-10 {_WRN_NAME}", WRN40_1_PUBLISHED_M["plain"], 1_000_000,
              "Ha et al. Table 2", lambda: wrn_params(_WRN["depth"], _WRN["width"], _WRN["num_classes"])),
    Published("wrn40_1_hyper_params", f"hyper {_WRN_NAME} ({_WRN_NZ}, {_WRN['tile']}×{_WRN['tile']}×3×3 tiles)",
              WRN40_1_PUBLISHED_M["hyper"], 1_000_000, "Ha et al. Table 2",
              lambda: wrn_params(_WRN["depth"], _WRN["width"], _WRN["num_classes"], hyper=True, n_z=_WRN["n_z"],
                                 d=_WRN["d"], chunk=_WRN["tile"])),
] + [Published(key, what, paper.PTB[row][2], 1_000_000, "Ha et al. Table 3",
               lambda cell=cell, n_z=n_z: _ptb_formula(cell, n_z))
     for key, (row, cell, n_z, what) in _PTB_ROWS.items()]}


def build_published(key: str, device: str | torch.device = "meta") -> nn.Module | list[nn.Parameter]:
    """Build the published configuration ``key`` from the library's modules.

    Returns the module, except for ``mnist_hyper_params`` (the list of the hypernetwork's
    parameters: generator and z).  ``device="meta"`` allocates nothing, so counting costs no memory.  Imports of the CIFAR and LSTM modules are lazy.
    """
    if key not in PUBLISHED:
        raise ValueError(f"unknown published configuration {key!r}; choose one of {', '.join(PUBLISHED)}")
    with torch.device(device):
        if key == "mnist_hyper_params":
            return MNISTHyperNet(f=_MNIST["f"], channels=_MNIST["channels"], n_z=_MNIST["n_z"]).hyper_parameters()
        if key.startswith("wrn40_1"):
            return WideResNet(_WRN["depth"], _WRN["width"], hyper=key == "wrn40_1_hyper_params",
                              num_classes=_WRN["num_classes"], n_z=_WRN["n_z"], d=_WRN["d"], tile=_WRN["tile"])
        _, cell, n_z, _ = _PTB_ROWS[key]
        return paper_ptb_config(cell, n_z=n_z)


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

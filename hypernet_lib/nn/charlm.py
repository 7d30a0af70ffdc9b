"""A character-level language model: embedding, stacked (Hyper)LSTM layers, softmax over the vocabulary."""
from __future__ import annotations

import os

import torch
import torch.nn as nn

from ..checks import (
    check_bool,
    check_choice,
    check_float,
    check_ids_in_range,
    check_int,
    check_state,
)
from .hyperlstm import CELLS, HyperLSTMLayer, LayerNormLSTMLayer, TorchLSTMLayer

__all__ = ["CharLM", "upgrade_config", "detach_state", "lstm_hidden_for_params", "paper_ptb_config"]

#: config keys of files written before a rename -> today's name (see :func:`upgrade_config`)
_OLD_CONFIG_KEYS = {"hyper_embedding_size": "n_z"}


class CharLM(nn.Module):
    """Character-level language model: input (one-hot or embedding) -> ``num_layers`` recurrent layers
    -> linear softmax layer over the vocabulary.

    Args:
        vocab_size: V.
        cell: one of :data:`CELLS` ("lstm", "ln-lstm", "hyperlstm", "ln-hyperlstm").
        hidden_size: N_h of every layer.
        num_layers: stacked layers.
        embedding_size: 0 for one-hot input (the paper), else a learned embedding of that size.
        dropout: drop probability on the layer inputs (embedding), between layers and before the
            softmax (the paper's input/output dropout, keep 0.9 -> 0.1).
        hyper_num_units, n_z, use_recurrent_dropout, dropout_keep_prob, z_from, z_init:
            see :class:`HyperLSTMLayer` (recurrent dropout also works for "ln-lstm").
    """

    def __init__(self, vocab_size: int, cell: str = "ln-hyperlstm", hidden_size: int = 256, num_layers: int = 1,
                 embedding_size: int = 0, dropout: float = 0.0, hyper_num_units: int = 128,
                 n_z: int = 4, use_recurrent_dropout: bool = False,
                 dropout_keep_prob: float = 0.9, z_from: str = "current", z_init: str = "paper"):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"unknown cell {cell!r}; choose one of {', '.join(CELLS)}")
        check_int(vocab_size=vocab_size, hidden_size=hidden_size, num_layers=num_layers, hyper_num_units=hyper_num_units,
                  n_z=n_z, lo=1)
        check_int(embedding_size=embedding_size, lo=0)
        check_float(dropout=dropout, lo=0.0, hi=1.0, hi_open=True)
        check_float(dropout_keep_prob=dropout_keep_prob, lo=0.0, hi=1.0, lo_open=True)
        check_choice("z_from", z_from, ("current", "previous"))
        check_choice("z_init", z_init, ("paper", "random"))
        check_bool(use_recurrent_dropout=use_recurrent_dropout)
        _check_fits_in_memory(_charlm_param_estimate(vocab_size, cell, hidden_size, num_layers, embedding_size,
                                                     hyper_num_units, n_z))
        if cell == "lstm" and use_recurrent_dropout:
            raise ValueError("recurrent dropout needs a cell with a visible time loop: use cell 'ln-lstm' or "
                             "'hyperlstm', or turn use_recurrent_dropout off")
        self.config = dict(vocab_size=vocab_size, cell=cell, hidden_size=hidden_size, num_layers=num_layers,
                           embedding_size=embedding_size, dropout=dropout, hyper_num_units=hyper_num_units,
                           n_z=n_z, use_recurrent_dropout=use_recurrent_dropout,
                           dropout_keep_prob=dropout_keep_prob, z_from=z_from, z_init=z_init)
        self.embedding = nn.Embedding(vocab_size, embedding_size) if embedding_size else None
        layers = []
        for k in range(num_layers):
            n_in = (embedding_size or vocab_size) if k == 0 else hidden_size
            if cell == "lstm":
                layers.append(TorchLSTMLayer(n_in, hidden_size))
            elif cell == "ln-lstm":
                layers.append(LayerNormLSTMLayer(n_in, hidden_size, use_recurrent_dropout, dropout_keep_prob))
            else:
                layers.append(HyperLSTMLayer(n_in, hidden_size, hyper_num_units, n_z,
                                             use_layer_norm=(cell == "ln-hyperlstm"),
                                             use_recurrent_dropout=use_recurrent_dropout,
                                             dropout_keep_prob=dropout_keep_prob, z_from=z_from,
                                             z_init=z_init))
        self.layers = nn.ModuleList(layers)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, vocab_size)

    def forward(self, ids: torch.Tensor, state=None):
        """ids (B, T) int64 -> logits (B, T, V), new state (a list with one tuple per layer)."""
        if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.dtype != torch.long:
            raise ValueError(f"CharLM expects int64 ids of shape (B, T), got "
                             f"{(ids.dtype, tuple(ids.shape)) if isinstance(ids, torch.Tensor) else type(ids).__name__}")
        if ids.numel() == 0:
            raise ValueError(f"CharLM needs at least one id, got ids of shape {tuple(ids.shape)}")
        if ids.device.type == "cpu":          # elsewhere the entry points check once (no host sync per step)
            check_ids_in_range(ids, self.config["vocab_size"], "ids")
        self._check_state(state, ids.shape[0])
        x = ids.t()                                               # time-major (T, B)
        if self.embedding is not None:
            x = self.drop(self.embedding(x))
        state = state or [None] * len(self.layers)
        new_state = []
        for k, layer in enumerate(self.layers):
            if k > 0:
                x = self.drop(x)
            x, s = layer(x, state[k])
            new_state.append(s)
        logits = self.out(self.drop(x).transpose(0, 1))           # (B, T, V)
        return logits, new_state


def _check_state_impl(model: "CharLM", state, batch: int) -> None:
    if state is None:
        return
    if not isinstance(state, (list, tuple)) or len(state) != len(model.layers):
        raise ValueError(f"state must be a list with one entry per layer ({len(model.layers)}), as returned by "
                         f"the previous call; got {type(state).__name__}"
                         f"{' of length ' + str(len(state)) if isinstance(state, (list, tuple)) else ''}")
    for k, (s, layer) in enumerate(zip(state, model.layers)):
        if s is not None:
            check_state(s, batch, layer.state_sizes, layer.STATE_NAMES, what=f"state[{k}]")
CharLM._check_state = _check_state_impl


def _charlm_param_estimate(vocab_size, cell, hidden_size, num_layers, embedding_size, hyper_num_units, n_z) -> int:
    """A lower estimate of a CharLM's parameter count, computed before anything is allocated."""
    h, hh = hidden_size, hyper_num_units
    total = vocab_size * embedding_size + h * vocab_size + vocab_size
    for k in range(num_layers):
        n_in = (embedding_size or vocab_size) if k == 0 else h
        total += 4 * h * (n_in + h)
        if "hyper" in cell:
            total += 4 * hh * (n_in + h + hh) + 12 * hh * n_z + 8 * n_z * h
    return total


def _check_fits_in_memory(n_params: int) -> None:
    """Refuse a model whose weights alone (float32) exceed this machine's memory, before allocating them."""
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):      # not POSIX: only an absurd size is refused
        mem = 2 ** 44
    need = 4 * n_params
    if need > mem:
        raise ValueError(f"a model of this size has about {n_params:.3g} parameters ({need / 2**30:,.3g} GiB of "
                         f"float32 weights alone), more than this machine's memory ({mem / 2**30:,.0f} GiB); "
                         "choose a smaller hidden_size, hyper_num_units, embedding_size or num_layers")


def upgrade_config(config: dict) -> dict:
    """A saved ``CharLM.config`` with the keys of older files renamed to today's (``hyper_embedding_size``
    -> ``n_z``), ready for ``CharLM(**config)``; a file that has both spellings is refused."""
    out = dict(config)
    for old, new in _OLD_CONFIG_KEYS.items():
        if old in out:
            if new in out:
                raise ValueError(f"config has both {old!r} and {new!r} (the same N_z under its old and new name)")
            out[new] = out.pop(old)
    return out


def detach_state(state):
    return [tuple(s.detach() for s in layer) for layer in state]


def lstm_hidden_for_params(vocab_size: int, target: int) -> int:
    """N_h of a one-layer ``CharLM(cell="lstm")`` whose parameter count is closest to ``target``
    (the smaller N_h on a tie): the LSTM that a comparison at equal parameters needs.
    With one-hot input over V characters that count is 4N_h(V + N_h) + 8N_h + V(N_h + 1)."""
    check_int(vocab_size=vocab_size, target=target, lo=1)
    count = lambda n: 4 * n * (vocab_size + n) + 8 * n + vocab_size * (n + 1)  # noqa: E731
    n = 1
    while count(n + 1) <= target:
        n += 1
    return n if target - count(n) <= count(n + 1) - target else n + 1


def paper_ptb_config(cell: str, n_z: int = 4) -> CharLM:
    """The paper's character-level PTB configuration (Table 3): 1000 units, one-hot input over
    50 characters, hyper cell 128 units, N_z = 4 (16 for "Large Embedding")."""
    return CharLM(50, cell=cell, hidden_size=1000, hyper_num_units=128,
                  n_z=n_z)


def _model_device(model) -> torch.device:
    if not isinstance(model, CharLM):
        raise ValueError(f"model must be a CharLM, got {type(model).__name__}")
    return next(model.parameters()).device

"""Training, evaluating, sampling and saving character-level language models."""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import (
    MAX_SEED,
    TrainingDiverged,
    check_finite,
    check_float,
    check_ids_in_range,
    check_int,
    check_output_path,
)
from ..data.text import CharData, Vocab, stream_batches
from ..nn.charlm import CharLM, _model_device, detach_state, upgrade_config
from .checkpoint import CheckpointError, atomic_save, load_checkpoint, tensor_sha256
from .engine import Engine, StateFormat

__all__ = ["CHECKPOINT_FORMAT", "LN2", "evaluate_bpc", "LMHistory", "TRAIN_STATE_FORMAT", "train_char_lm",
           "generate", "save_lm", "load_lm"]

CHECKPOINT_FORMAT = "hypernet_lib.hyperlstm/1"   # a format id: unchanged so that saved models stay readable


LN2 = math.log(2.0)


@torch.no_grad()
def evaluate_bpc(model: CharLM, ids: torch.Tensor, batch_size: int = 32, seq_length: int = 100,
                 max_chars: Optional[int] = None, progress: bool = False, warmup: int = 0) -> float:
    """Bits per character: mean −log₂ p(next char) over ``ids`` (1-D), read as ``batch_size`` streams
    with the state carried from chunk to chunk.  ``max_chars`` evaluates only the first that many.

    ``warmup=0`` (what training validates with): every stream starts from a zero state, so the first
    characters of each of the ``batch_size`` pieces are predicted with no context, and the result is
    a little worse than the text's bpc.  ``warmup=w``: every stream but the first reads the ``w``
    characters before its piece without scoring them, so each scored character has at least ``w``
    characters of context, as when the whole text is read as one stream (``batch_size=1``), at a
    fraction of the cost.  Every character but the first and at most ``batch_size - 1`` at the end is
    scored exactly once."""
    check_int(batch_size=batch_size, seq_length=seq_length, lo=1)
    check_int(max_chars=max_chars, lo=2, optional=True)
    check_int(warmup=warmup, lo=0)
    if not isinstance(ids, torch.Tensor) or ids.dim() != 1 or ids.dtype != torch.long:
        raise ValueError("ids must be a 1-D int64 tensor (e.g. data.valid), got "
                         f"{(ids.dtype, tuple(ids.shape)) if isinstance(ids, torch.Tensor) else type(ids).__name__}")
    if ids.numel() < 2:
        raise ValueError(f"bits per character need at least 2 characters, got {ids.numel()}")
    device = _model_device(model)
    check_ids_in_range(ids if max_chars is None else ids[:max_chars], model.config["vocab_size"], "ids")
    was_training = model.training
    model.eval()
    if max_chars is not None:
        ids = ids[:max_chars]
    ids = ids.to(device)
    b = min(batch_size, max(1, ids.numel() // (seq_length + 1)))
    if warmup == 0 or b == 1:
        streams = stream_batches(ids, b)                      # (B, n): every stream starts cold
        inputs, targets, scored = streams[:, :-1], streams[:, 1:], None
    else:
        n = (ids.numel() - 1) // b                            # scored characters per stream
        w = min(warmup, n)
        # stream k reads ids[k·n − w : (k+1)·n] and scores its last n predictions; stream 0 has
        # nothing before it, so it reads ids[0 : n + w] and scores its first n
        start = torch.arange(b, device=device) * n - w
        start[0] = 0
        pos = start[:, None] + torch.arange(n + w + 1, device=device)      # (B, n + w + 1)
        streams = ids[pos]
        inputs, targets = streams[:, :-1], streams[:, 1:]
        col = torch.arange(n + w, device=device)
        scored = torch.where(torch.arange(b, device=device)[:, None] == 0, col < n, col >= w)
    total, count, state = 0.0, 0, None
    starts = range(0, inputs.shape[1], seq_length)
    for s in _maybe_tqdm(starts, progress, "eval"):
        logits, state = model(inputs[:, s:s + seq_length], state)
        flat = logits.reshape(-1, logits.shape[-1])
        y = targets[:, s:s + seq_length].reshape(-1)
        if scored is None:
            total += F.cross_entropy(flat, y, reduction="sum").item()
            count += y.numel()
        else:
            keep = scored[:, s:s + seq_length].reshape(-1)
            total += F.cross_entropy(flat[keep], y[keep], reduction="sum").item()
            count += int(keep.sum())
    model.train(was_training)
    return total / count / LN2


def _check_model_vocab(model, vocab, fix: str = "use") -> torch.device:
    """The model's device, or a ValueError unless ``model`` is a CharLM and ``vocab`` the Vocab of its size."""
    if not isinstance(vocab, Vocab):
        raise ValueError(f"vocab must be a Vocab, got {type(vocab).__name__}")
    device = _model_device(model)
    if len(vocab) != model.config["vocab_size"]:
        raise ValueError(f"the vocabulary has {len(vocab)} characters but the model predicts "
                         f"{model.config['vocab_size']}; {fix} the vocabulary the model was trained with")
    return device


def _maybe_tqdm(it, progress: bool, desc: str, total=None):
    if not progress:
        return it
    from tqdm.auto import tqdm
    return tqdm(it, desc=desc, total=total, leave=False)


@dataclass
class LMHistory:
    """Learning curve of :func:`train_char_lm`, one entry per evaluation."""
    step: List[int] = field(default_factory=list)
    chars: List[int] = field(default_factory=list)
    train_bpc: List[float] = field(default_factory=list)
    val_bpc: List[float] = field(default_factory=list)
    lr: List[float] = field(default_factory=list)
    seconds: List[float] = field(default_factory=list)
    best_val_bpc: float = float("inf")
    best_step: int = 0
    threads: int = 0          # torch's CPU threads during training (0: not recorded)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, d: dict) -> "LMHistory":
        # histories saved before ``threads`` existed load with threads = 0
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k != "threads" or k in d})


TRAIN_STATE_FORMAT = "hypernet_lib.hyperlstm.train_state/1"   # a format id, as above
# train_char_lm's training state (the engine's one format); "state" is the hidden state carried across steps
LM_STATE = StateFormat(id=TRAIN_STATE_FORMAT, what="hyperlstm training state", count="step", bad="bad_evals",
                       extras=("state", "history"))


def train_char_lm(model: CharLM, data: CharData, *, batch_size: int = 32, seq_length: int = 100,
                  lr: float = 1e-3, epochs: float = 1.0, max_steps: Optional[int] = None,
                  eval_every: int = 200, val_chars: Optional[int] = None, clip: Optional[float] = 1.0,
                  lr_decay: float = 1.0, patience: int = 0, seed: int = 0, progress: bool = True,
                  keep_best: bool = True, on_eval=None, checkpoint: Optional[str] = None) -> LMHistory:
    """Train with Adam and truncated BPTT.

    The training text is cut into ``batch_size`` streams (:func:`stream_batches`); each step takes the
    next ``seq_length`` characters of every stream, and the final state of one step is the (detached)
    initial state of the next, so the model sees context beyond one chunk.  Every ``eval_every`` steps
    the validation bpc is measured (on the first ``val_chars`` characters if given); if it has not
    improved for ``patience`` evaluations the learning rate is multiplied by ``lr_decay``.  With
    ``keep_best`` the weights of the best validation bpc are restored at the end.

    With ``checkpoint`` (a path) the whole training state (weights, Adam's moments, the carried hidden
    state, the random-number generators, the learning curve, the best weights so far) is written
    atomically after every evaluation.  If the file exists when training starts, the run resumes from it
    and ends with exactly the weights and curve of an uninterrupted run (steps after the last evaluation
    are redone); a file from a run with other settings raises :class:`CheckpointError`.  ``on_eval(hist)``
    runs after the checkpoint is written (raise in it to interrupt).

    Arguments, the data and the checkpoint path are checked before any work (ValueError naming the
    argument); the run state records content hashes of the training and validation text and of the
    vocabulary, and a state of other data is refused.  A NaN or infinite training loss, or non-finite
    weights, raise :class:`~hypernet_lib.checks.TrainingDiverged` at the next evaluation, before anything
    is written: the checkpoint keeps the run as of its last good evaluation.
    """
    check_int(batch_size=batch_size, seq_length=seq_length, eval_every=eval_every, lo=1)
    check_int(max_steps=max_steps, val_chars=val_chars, lo=1, optional=True)
    check_int(patience=patience, lo=0)
    check_int(seed=seed, lo=0, hi=MAX_SEED)
    check_float(lr=lr, lo=0.0)
    check_float(epochs=epochs, lo=0.0, lo_open=True)
    check_float(clip=clip, lo=0.0, optional=True)          # 0 or None: no clipping
    check_float(lr_decay=lr_decay, lo=0.0, hi=1.0, lo_open=True)
    if not isinstance(data, CharData):
        raise ValueError(f"data must be a CharData (see make_char_data), got {type(data).__name__}")
    device = _model_device(model)
    if len(data.vocab) != model.config["vocab_size"]:
        raise ValueError(f"the model's vocab_size is {model.config['vocab_size']} but data.vocab has "
                         f"{len(data.vocab)} characters; build the model with CharLM(len(data.vocab), ...)")
    for split in ("train", "valid"):
        ids = getattr(data, split)
        if not isinstance(ids, torch.Tensor) or ids.dim() != 1 or ids.dtype != torch.long:
            raise ValueError(f"data.{split} must be a 1-D int64 tensor of ids")
        check_ids_in_range(ids, len(data.vocab), f"data.{split}")
    if data.valid.numel() < 2:
        raise ValueError(f"data.valid has {data.valid.numel()} characters; validation needs at least 2")
    if checkpoint is not None:
        check_output_path(checkpoint, "checkpoint")
    torch.manual_seed(seed)
    streams = stream_batches(data.train.to(device), batch_size)
    steps_per_epoch = (streams.shape[1] - 1) // seq_length
    if steps_per_epoch < 1:
        raise ValueError(f"the training text ({data.train.numel():,} characters) is too short for "
                         f"batch_size={batch_size} × seq_length={seq_length}")
    total_steps = int(math.ceil(epochs * steps_per_epoch))
    if max_steps is not None:
        total_steps = min(total_steps, max_steps)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    hist, carried = LMHistory(), {"state": None}
    # what must agree for a saved state to continue this run
    run = dict(model=dict(getattr(model, "config", {})), batch_size=batch_size, seq_length=seq_length, lr=lr,
               epochs=epochs, max_steps=max_steps, eval_every=eval_every, val_chars=val_chars, clip=clip,
               lr_decay=lr_decay, patience=patience, seed=seed, keep_best=keep_best,
               train_chars=data.train.numel(), valid_chars=data.valid.numel())
    content = {"train_sha256": "training text", "valid_sha256": "validation text", "vocab_sha256": "vocabulary"}
    if checkpoint is not None:      # which data the run is on, not only how much (hashing costs a pass over it)
        run.update(train_sha256=tensor_sha256(data.train), valid_sha256=tensor_sha256(data.valid),
                   vocab_sha256=tensor_sha256(torch.tensor([ord(c) for c in data.vocab.chars])))
    engine = Engine(model, opt, steps=total_steps, eval_every=eval_every, keep_best=keep_best, patience=patience,
                    lr_decay=lr_decay, checkpoint=checkpoint, fmt=LM_STATE, run=run, content=content,
                    where=lambda good, now: f"between steps {good} and {now}",
                    advice=f"lower the learning rate (lr={lr:g}) or clip the gradients", progress=progress,
                    postfix=lambda: {"train_bpc": f"{hist.train_bpc[-1]:.3f}", "val_bpc": f"{hist.val_bpc[-1]:.3f}"})
    ck = engine.resume()
    if ck is not None:
        hist, carried["state"] = LMHistory.from_dict(ck["history"]), ck["state"]
    t0 = time.perf_counter() - (hist.seconds[-1] if hist.seconds else 0.0)
    model.train()

    def step(i: int) -> torch.Tensor:
        k = i % steps_per_epoch
        if k == 0:
            carried["state"] = None                               # a new epoch starts from a zero state
        chunk = streams[:, k * seq_length:(k + 1) * seq_length + 1]
        logits, state = model(chunk[:, :-1], carried["state"])
        carried["state"] = detach_state(state)                    # truncated BPTT: carry, don't backprop
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), chunk[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        return loss                                               # summed on the device by the engine

    def validate(done: int) -> bool:
        val = evaluate_bpc(model, data.valid, batch_size=batch_size, seq_length=seq_length, max_chars=val_chars)
        hist.step.append(done)
        hist.chars.append(done * batch_size * seq_length)
        hist.train_bpc.append(engine.window.item() / engine.window_steps / LN2)
        hist.val_bpc.append(val)
        hist.lr.append(opt.param_groups[0]["lr"])
        hist.seconds.append(time.perf_counter() - t0)
        hist.threads = torch.get_num_threads()
        if val < hist.best_val_bpc:
            hist.best_val_bpc, hist.best_step = val, done
            return True
        return False

    engine.run(step, validate, state=lambda: {"state": carried["state"], "history": hist.to_dict()},
               after_eval=[lambda done: on_eval(hist)] if on_eval is not None else [])
    return hist


@torch.no_grad()
def generate(model: CharLM, vocab: Vocab, prime_text: str = "\n", length: int = 200, temperature: float = 1.0,
             top_k: Optional[int] = None, generator: Optional[torch.Generator] = None) -> str:
    """Sample ``length`` characters after ``prime_text``.  p ∝ softmax(logits / temperature), restricted
    to the ``top_k`` most likely characters if given.  Deterministic for a seeded CPU ``generator``.
    Returns the prime text followed by the sample."""
    if not isinstance(prime_text, str) or not prime_text:
        raise ValueError("prime_text must be a str of at least one character")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator (e.g. torch.Generator().manual_seed(0)) or None, "
                         f"got {type(generator).__name__}")
    check_float(temperature=temperature, lo=0.0, lo_open=True)
    check_int(length=length, lo=0)
    check_int(top_k=top_k, lo=1, optional=True)
    device = _check_model_vocab(model, vocab)
    ids = vocab.encode(prime_text).to(device).unsqueeze(0)       # (1, P); unknown chars raise
    was_training = model.training
    model.eval()
    logits, state = model(ids)
    logits = logits[0, -1].float().cpu()
    out = []
    for _ in range(length):
        # float64 and max 0: a tiny temperature gives -inf (greedy), not 0/0 = NaN
        scaled = (logits.double() - logits.double().max()) / temperature
        if top_k is not None and top_k < scaled.numel():
            kth = torch.topk(scaled, top_k).values[-1]
            scaled = scaled.masked_fill(scaled < kth, float("-inf"))
        nxt = torch.multinomial(torch.softmax(scaled, -1), 1, generator=generator)
        out.append(int(nxt))
        logits, state = model(nxt.view(1, 1).to(device), state)
        logits = logits[0, -1].float().cpu()
    model.train(was_training)
    return prime_text + vocab.decode(out)


def save_lm(path: str, model: CharLM, vocab: Vocab, **extra) -> None:
    """Write model config, weights and vocabulary (and ``extra`` picklable-by-weights_only data).
    Weights that are not finite are refused (:class:`~hypernet_lib.checks.TrainingDiverged`)."""
    _check_model_vocab(model, vocab, fix="save")
    check_finite(model=model, where="before saving", hint="nothing was written")
    atomic_save({"format": CHECKPOINT_FORMAT, "config": dict(model.config), "vocab": vocab.chars,
                  "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **extra}, path)


def load_lm(path: str, map_location="cpu") -> Tuple[CharLM, Vocab, dict]:
    """Read a checkpoint written by :func:`save_lm`; anything else raises :class:`CheckpointError`."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist; train one with "
                                "`python -m hypernet_lib.cli train --save_model PATH`")
    ck = load_checkpoint(path, map_location, format=CHECKPOINT_FORMAT, what="hyperlstm language-model checkpoint",
                         fix="; it may belong to another model")
    bad = lambda why: CheckpointError(f"{path!r} is a damaged hyperlstm checkpoint: {why}")  # noqa: E731
    config, chars, weights = ck.get("config"), ck.get("vocab"), ck.get("state_dict")
    if not isinstance(config, dict) or not isinstance(chars, str) or not isinstance(weights, dict):
        raise bad("its config, vocab or state_dict is missing or of the wrong type")
    try:
        config = upgrade_config(config)           # files written before N_z's key was renamed n_z
    except ValueError as e:
        raise bad(str(e)) from None
    import inspect
    known = set(inspect.signature(CharLM.__init__).parameters) - {"self"}
    unknown = sorted(map(str, set(config) - known))
    if unknown:
        raise bad(f"unknown config key(s) {', '.join(unknown)} (a newer or another library wrote it?)")
    try:
        model = CharLM(**config)
    except (TypeError, ValueError) as e:
        raise bad(f"its config is invalid ({(str(e).splitlines() or [''])[0]})") from None
    if len(chars) != len(set(chars)) or "".join(sorted(chars)) != chars or not chars:
        raise bad("its vocabulary is not a sorted string of distinct characters")
    if len(chars) != config["vocab_size"]:
        raise bad(f"its vocabulary has {len(chars)} characters but the model predicts {config['vocab_size']}, "
                  "so generated text would be shifted")
    try:
        model.load_state_dict(weights)
    except (RuntimeError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path!r}: weights do not fit the stored config "
                              f"({(str(e).splitlines() or [''])[0]})") from None
    try:
        check_finite(model=model)
    except TrainingDiverged as e:
        raise bad(f"{str(e).split(': ', 1)[1].split(';')[0]} (it was saved from a diverged run); "
                  "retrain with a lower learning rate") from None
    return model, Vocab(chars), ck

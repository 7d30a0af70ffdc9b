"""Training image classifiers: fit, with early stopping and exact resume.

``fit`` trains a classifier on an :class:`~hypernet_lib.data.ImageData` whose tensors already
live on the device.  Batches are drawn by index permutation from a seeded generator, and the
generator's state is part of the checkpoint, so a run that is interrupted and resumed ends with
exactly the weights of a run that was not (on the CPU, where kernels are deterministic).
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import Callable, Iterable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import (
    MAX_SEED,
    check_choice,
    check_float,
    check_int,
    check_output_path,
)
from ..data.augment import batch_indices
from ..data.images import ImageData
from .engine import Engine, StateFormat

__all__ = ["History", "evaluate", "make_optimizer", "fit"]

# fit's training state: one engine step is one epoch; files written before format ids existed resume too
FIT_STATE = StateFormat(id="hypernet_lib.fit.train_state/1", what="fit training state", count="epoch",
                        bad="bad_epochs", kept="the checkpoint {path} still holds the run as of epoch {n}; ",
                        unversioned=True)


@dataclasses.dataclass
class History:
    """Per-epoch curves of one run, plus the test result at the best validation epoch."""
    train_loss: list = dataclasses.field(default_factory=list)
    train_acc: list = dataclasses.field(default_factory=list)
    val_loss: list = dataclasses.field(default_factory=list)
    val_acc: list = dataclasses.field(default_factory=list)
    lr: list = dataclasses.field(default_factory=list)
    epoch_time: list = dataclasses.field(default_factory=list)
    best_epoch: int = -1
    test_loss: float = float("nan")
    test_acc: float = float("nan")
    stopped_early: bool = False

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    @property
    def test_error(self) -> float:
        """Test error in percent."""
        return 100.0 * (1.0 - self.test_acc)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(**d)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000,
             amp: bool = False) -> dict:
    """Mean cross-entropy and accuracy of ``model`` on (x, y), in eval mode."""
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)}")
    check_int(batch_size=batch_size, lo=1)
    if len(y) == 0:
        return {"loss": float("nan"), "acc": float("nan")}
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    for idx in batch_indices(len(y), batch_size, shuffle=False, device=x.device):
        with _autocast(x.device, amp):
            logits = model(x[idx])
        total_loss += F.cross_entropy(logits.float(), y[idx], reduction="sum").item()
        correct += (logits.argmax(1) == y[idx]).sum().item()
    model.train(was_training)
    return {"loss": total_loss / len(y), "acc": correct / len(y)}


def _autocast(device: torch.device, amp: bool):
    enabled = bool(amp) and device.type == "cuda"
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def make_optimizer(name, params: Iterable, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """'adam', 'adamw' or 'sgd' (Nesterov, momentum 0.9); or a callable ``params -> optimizer``."""
    if callable(name):
        return name(params)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose 'adam', 'adamw', 'sgd' or pass a callable")


def _lr_factor(schedule: Optional[str], step: int, total: int, warmup: int = 0) -> float:
    if schedule is None:
        return 1.0
    if schedule == "cosine":
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))
    raise ValueError(f"unknown schedule {schedule!r}; choose None or 'cosine'")


def fit(model: nn.Module, data: ImageData, *, epochs: int, batch_size: int, lr: float,
        optimizer="adam", weight_decay: float = 0.0, schedule: Optional[str] = None, warmup_steps: int = 0,
        clip: Optional[float] = None, patience: Optional[int] = None,
        augment: Optional[Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = None,
        amp: bool = False, channels_last: bool = False, seed: int = 0,
        checkpoint: Optional[os.PathLike | str] = None, progress: bool = False, verbose: bool = False,
        max_steps_per_epoch: Optional[int] = None, eval_batch_size: int = 1000, desc: Optional[str] = None,
        callbacks: Iterable[Callable[[int, History], None]] = ()) -> History:
    """Train ``model`` (logits = model(x)) with cross-entropy; return its :class:`History`.

    * early stopping: with ``patience``, stop after that many epochs without a better validation
      accuracy; the best weights are restored at the end either way, and the test split is
      evaluated with them.  Without a validation split the last epoch's weights are kept.
    * ``schedule='cosine'`` anneals the learning rate per step over the whole run.
    * ``clip`` clips the global gradient norm.  ``amp`` turns on bf16 autocast on CUDA.
    * ``checkpoint``: written atomically after every epoch; if the file exists, training resumes
      from it (model, optimiser, RNG state, history) and ends exactly where an uninterrupted run would.
      A checkpoint of a run with other settings (model shapes, data sizes, hyperparameters) raises
      :class:`~hypernet_lib.training.checkpoint.CheckpointError` (a ValueError) instead of being continued
      silently.  The loop, checkpoints and resume are the shared :class:`~hypernet_lib.training.engine.Engine`'s,
      with one engine step per epoch.
    * ``callbacks(epoch, history)`` run after each epoch's checkpoint (raise to interrupt).
    * a NaN or infinite training loss, or non-finite weights, at the end of an epoch raise
      :class:`~hypernet_lib.checks.TrainingDiverged`; the checkpoint of the last good epoch is kept.

    Arguments are checked before any work (ValueError naming the argument); so is the checkpoint path.
    """
    check_int(epochs=epochs, warmup_steps=warmup_steps, lo=0)
    check_int(batch_size=batch_size, eval_batch_size=eval_batch_size, lo=1)
    check_int(max_steps_per_epoch=max_steps_per_epoch, patience=patience, lo=1, optional=True)
    check_int(seed=seed, lo=0, hi=MAX_SEED)
    check_float(lr=lr, lo=0)    # lr 0 is allowed: a run that only measures
    check_float(weight_decay=weight_decay, lo=0)
    check_float(clip=clip, lo=0, lo_open=True, optional=True)
    check_choice("schedule", schedule, (None, "cosine"))
    if not callable(optimizer):
        check_choice("optimizer", optimizer, ("adam", "adamw", "sgd"))
    if next(iter(model.parameters()), None) is None:
        raise ValueError(f"{type(model).__name__} has no parameters to train")
    if len(data.y_train) == 0:
        raise ValueError("data.y_train is empty: there is nothing to train on")
    if checkpoint is not None:
        check_output_path(checkpoint, "checkpoint")
    has_val = len(data.y_val) > 0
    if not has_val and patience is not None:
        raise ValueError("early stopping (patience) needs a validation split, but data.y_val is empty; "
                         "load the data with val_size > 0 or pass patience=None")
    device = data.x_train.device
    if next(model.parameters()).device != device:
        model.to(device)
    if channels_last and device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    opt = make_optimizer(optimizer, model.parameters(), lr, weight_decay)
    n = len(data.y_train)
    steps_per_epoch = math.ceil(n / batch_size)
    if max_steps_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, max_steps_per_epoch)
    total_steps = epochs * steps_per_epoch

    gen = torch.Generator().manual_seed(seed)        # batching and augmentation randomness
    torch.manual_seed(seed)                          # dropout and the like
    history = History()
    # what must agree for a checkpoint to continue this run (the augmentation callable is not compared)
    run = dict(model=type(model).__name__, shapes=[tuple(p.shape) for p in model.parameters()],
               data=(data.name, len(data.y_train), len(data.y_val)), epochs=epochs, batch_size=batch_size, lr=lr,
               optimizer=_setting(optimizer), weight_decay=weight_decay, schedule=schedule,
               warmup_steps=warmup_steps, clip=clip, patience=patience, seed=seed, amp=amp,
               max_steps_per_epoch=max_steps_per_epoch)
    # one engine step is one epoch: evaluated, kept if best and checkpointed after each
    engine = Engine(model, opt, steps=epochs, eval_every=1, generator=gen, keep_best=True, patience=patience,
                    checkpoint=checkpoint, fmt=FIT_STATE, run=run, where=lambda good, now: f"in epoch {now}",
                    advice=f"lower the learning rate (lr={lr:g}) or clip the gradients", progress=progress,
                    desc=desc or type(model).__name__, leave=True,
                    postfix=lambda: {"loss": f"{history.train_loss[-1]:.3f}",
                                     "val_acc": f"{history.val_acc[-1]:.4f}"})
    ck = engine.resume()
    if ck is not None:
        history = History.from_dict(ck["history"])
    epoch_stats = {}

    def train_epoch(epoch: int) -> torch.Tensor:
        epoch_stats["t0"] = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        for step, idx in enumerate(batch_indices(n, batch_size, generator=gen, device=device)):
            if step >= steps_per_epoch:
                break
            for group in opt.param_groups:
                group["lr"] = lr * _lr_factor(schedule, epoch * steps_per_epoch + step, total_steps, warmup_steps)
            x, y = data.x_train[idx], data.y_train[idx]
            if augment is not None:
                x = augment(x, gen)
            if channels_last and device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            with _autocast(device, amp):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            loss_sum += loss.detach() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            seen += len(y)
        epoch_stats.update(loss_sum=loss_sum, correct=correct, seen=seen)
        return loss_sum

    def validate(epochs_done: int) -> bool:
        val = evaluate(model, data.x_val, data.y_val, eval_batch_size, amp)
        seen = max(epoch_stats["seen"], 1)
        history.train_loss.append(epoch_stats["loss_sum"].item() / seen)
        history.train_acc.append(epoch_stats["correct"].item() / seen)
        history.val_loss.append(val["loss"])
        history.val_acc.append(val["acc"])
        history.lr.append(opt.param_groups[0]["lr"])
        history.epoch_time.append(time.perf_counter() - epoch_stats["t0"])
        improved = not has_val or history.val_acc[-1] > max(history.val_acc[:-1], default=-1.0)  # no val: the latest
        if improved:
            history.best_epoch = epochs_done - 1
        return improved

    def report(epochs_done: int) -> None:
        if verbose:
            print(f"{desc or type(model).__name__} epoch {epochs_done:3d}/{epochs}: "
                  f"train loss {history.train_loss[-1]:.4f} acc {history.train_acc[-1]:.4f} | "
                  f"val loss {history.val_loss[-1]:.4f} acc {history.val_acc[-1]:.4f} | "
                  f"{history.epoch_time[-1]:.1f}s")
        for cb in callbacks:
            cb(epochs_done - 1, history)

    engine.run(train_epoch, validate, state=lambda: {"history": history.to_dict()}, after_eval=[report])
    history.stopped_early = engine.stopped or (patience is not None and engine.bad >= patience
                                               and history.epochs < epochs)
    test = evaluate(model, data.x_test, data.y_test, eval_batch_size, amp)   # with the best weights (engine)
    history.test_loss, history.test_acc = test["loss"], test["acc"]
    return history


def _setting(optimizer) -> str:
    """How a run records its optimiser: the name, or a callable's qualified name (a checkpoint holds no code)."""
    if callable(optimizer):
        return f"callable {getattr(optimizer, '__module__', '?')}.{getattr(optimizer, '__qualname__', repr(optimizer))}"
    return optimizer

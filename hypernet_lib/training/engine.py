"""The one training loop engine: steps, periodic evaluation, keep-best, patience, checkpoints and exact resume.

Every training loop of the library (``fit``, ``train_char_lm``, ``train_multitask``, ``train_continual``,
``train_episodic``) is a ``step(i)`` function (one optimisation step, or one epoch, returning its loss) and an
``evaluate(n)`` function (fills the loop's own history, says whether the run improved) handed to an
:class:`Engine`, which owns what they share:

* the step loop and its progress bar; evaluation every ``eval_every`` steps and after the last one;
* the divergence check before every evaluation (and at the end): a NaN or infinite loss, or non-finite
  weights, raise :class:`~hypernet_lib.checks.TrainingDiverged` before anything is written, so the
  checkpoint keeps the run as of its last good evaluation;
* keep-best weights and a patience policy: stop early, or multiply the learning rate by ``lr_decay``,
  after ``patience`` evaluations without improvement;
* one training-state format (:class:`StateFormat`): written atomically after every evaluation, with the
  run's settings (a file of a run with other settings, or on other data, is refused with
  :class:`~hypernet_lib.training.checkpoint.CheckpointError`), and read back for an exact resume: model,
  optimiser, best weights, patience counter, the CPU RNG, the CUDA RNG (on CUDA), the loop's
  ``torch.Generator`` and any state the loop carries (its history, the LM's hidden state).
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Optional

import torch
import torch.nn as nn

from ..checks import check_finite
from .checkpoint import CheckpointError, atomic_save, load_checkpoint, settings_diff

__all__ = ["StateFormat", "Engine"]

RESUME_FIX = "; pass another checkpoint path or delete the file to start the run over"


@dataclass(frozen=True)
class StateFormat:
    """How one loop names its training state on disk.  Every loop writes the same fields:

    ``format`` (the ``id``), ``run`` (settings that must match to resume), ``count`` (steps done),
    ``model``, ``optimizer``, ``best_state`` (or None), ``bad`` (evaluations without improvement),
    ``torch_rng``, ``cuda_rng`` (None off CUDA), ``generator`` (None without one) and the loop's
    ``extras`` (e.g. ``history``).  Only the id and the names of the two counters differ per loop, so that
    states written before this engine existed stay resumable."""
    id: str                          # the "format" id; a file with another id is refused
    what: str                        # what errors call it: "hyperlstm training state"
    count: str = "step"              # key of the number of steps done ("epoch" where a step is an epoch)
    bad: str = "bad_evals"           # key of the evaluations without improvement since the best
    extras: tuple = ("history",)     # keys the loop's ``state()`` fills
    kept: str = "the run as of step {n} stays in {path!r}; "   # divergence hint when a checkpoint is kept
    unversioned: bool = False        # also resume a file without a format id (written before ids existed)


def _rng_state(device: torch.device, generator: Optional[torch.Generator]) -> dict:
    """The random-number state a resumed run needs: CPU, CUDA (only on CUDA) and the loop's generator."""
    return {"torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
            "generator": generator.get_state() if generator is not None else None}


def _set_rng_state(saved: Mapping, generator: Optional[torch.Generator]) -> None:
    """Restore what :func:`_rng_state` recorded (RNG states are CPU byte tensors, wherever they were loaded).
    A CUDA state is restored only where CUDA is available; a run saved on CUDA resumed on the CPU skips it."""
    torch.set_rng_state(saved["torch_rng"].cpu())
    if saved.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([r.cpu() for r in saved["cuda_rng"]])
    if generator is not None:
        generator.set_state(saved["generator"].cpu())


class Engine:
    """Runs ``steps`` steps of a loop; see the module docstring.

    model, optimizer : what is trained and saved (``optimizer`` may be None without checkpoint or lr decay).
    steps            : total number of steps; ``eval_every`` (0: never) evaluations, and one after the last step.
    generator        : a torch.Generator the loop draws from, saved and restored with the other RNGs.
    keep_best        : keep the weights of the best evaluation and load them at the end.
    patience         : evaluations without improvement before the plateau action: stop (``lr_decay`` None),
                       or multiply every group's lr by ``lr_decay`` (not when it is 1) and count again.
    checkpoint, fmt  : path of the training state (None: none) and its :class:`StateFormat`.
    run, content     : settings that must match to resume; ``content`` maps keys of ``run`` that are content
                       hashes to what they hash ("training text"), compared only where the file has them.
    where, advice    : ``where(good, now)`` says where a divergence happened (``good``: steps done at the last
                       passing check) and ``advice`` how to avoid it.
    progress, desc, leave, postfix : a tqdm bar over the steps; ``postfix()`` gives its values at evaluations.
    device           : where the run is (default: the model's); CUDA RNG state is saved there.
    """

    def __init__(self, model: nn.Module, optimizer: Optional[torch.optim.Optimizer] = None, *, steps: int,
                 eval_every: int = 0, generator: Optional[torch.Generator] = None, keep_best: bool = False,
                 patience: Optional[int] = None, lr_decay: Optional[float] = None,
                 checkpoint: Optional[os.PathLike | str] = None, fmt: Optional[StateFormat] = None,
                 run: Optional[dict] = None, content: Optional[Mapping[str, str]] = None,
                 where: Callable[[int, int], str] = lambda good, now: f"by step {now}", advice: str = "",
                 progress: bool = False, desc: str = "train", leave: bool = False,
                 postfix: Optional[Callable[[], dict]] = None, device: Optional[torch.device] = None):
        if checkpoint is not None and (fmt is None or optimizer is None):
            raise ValueError("a checkpointed run needs a state format (fmt) and its optimizer")
        self.model, self.optimizer, self.steps, self.eval_every = model, optimizer, steps, eval_every
        self.generator, self.keep_best, self.patience, self.lr_decay = generator, keep_best, patience, lr_decay
        self.path = os.fspath(checkpoint) if checkpoint is not None else None
        self.fmt, self.settings, self.content = fmt, dict(run or {}), dict(content or {})
        self.where, self.advice = where, advice
        self.progress, self.desc, self.leave, self.postfix = progress, desc, leave, postfix
        first = next(iter(model.parameters()), None)
        self.device = torch.device(device) if device is not None else (
            first.device if first is not None else torch.device("cpu"))
        self.done = 0                    # steps done
        self.good = 0                    # steps done at the last passing divergence check
        self.bad = 0                     # evaluations without improvement
        self.best_state: Optional[dict] = None
        self.stopped = False             # stopped early by the patience policy
        self.window: Optional[torch.Tensor] = None   # summed step losses since the last check (on the device)
        self.window_steps = 0

    # ------------------------------------------------------------------------------------ resume
    def resume(self) -> Optional[dict]:
        """If the checkpoint file exists, check that it holds this run and continue it: restore the model,
        optimiser, RNG states, best weights and counters, and return the file's contents (the loop reads its
        extras from it).  None if there is no checkpoint to resume."""
        if self.path is None or not os.path.exists(self.path):
            return None
        fmt, path = self.fmt, self.path
        ck = load_checkpoint(path, self.device, format=fmt.id, what=fmt.what, fix=RESUME_FIX,
                             unversioned=fmt.unversioned)
        need = ["run", fmt.count, "model", "optimizer", "best_state", fmt.bad, "torch_rng", *fmt.extras]
        missing = [k for k in need + (["generator"] if self.generator is not None else []) if k not in ck]
        if missing or not isinstance(ck["run"], dict):
            raise CheckpointError(f"{path!r} is a damaged {fmt.what} (missing {', '.join(missing) or 'run'})"
                                  f"{RESUME_FIX}")
        saved = ck["run"]
        diff = settings_diff(saved, {k: v for k, v in self.settings.items() if k not in self.content})
        if diff:
            raise CheckpointError(f"{path!r} holds an interrupted run with other settings ({diff}); resume it "
                                  "with its own settings, or delete the file (or pass another checkpoint path) "
                                  "to start over")
        for key, what in self.content.items():
            # states written before content hashes were recorded lack the key: only sizes are compared for them
            if key in saved and saved[key] != self.settings.get(key):
                raise CheckpointError(
                    f"{path!r} holds an interrupted run on another {what} (content hash {str(saved[key])[:12]}... "
                    f"there, {str(self.settings.get(key))[:12]}... now; the sizes and settings match); resume it on "
                    "the same data, or delete the file to start over")
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        _set_rng_state(ck, self.generator)
        self.best_state, self.bad = ck["best_state"], ck[fmt.bad]
        self.done = self.good = ck[fmt.count]
        return ck

    def save(self, state: Callable[[], dict]) -> None:
        """Write the training state atomically (a crash mid-write keeps the previous file)."""
        fmt = self.fmt
        atomic_save({"format": fmt.id, "run": self.settings, fmt.count: self.done, "model": self.model.state_dict(),
                     "optimizer": self.optimizer.state_dict(), "best_state": self.best_state, fmt.bad: self.bad,
                     **_rng_state(self.device, self.generator), **state()}, self.path)

    # -------------------------------------------------------------------------------------- run
    def check(self) -> None:
        """The divergence check over the steps since the last one (TrainingDiverged; nothing is written)."""
        kept = (self.fmt.kept.format(n=self.good, path=self.path)
                if self.path is not None and self.good > 0 else "")
        check_finite(loss=self.window, model=self.model, where=self.where(self.good, self.done),
                     hint=kept + self.advice)
        self.good = self.done

    def _plateau(self, improved: bool) -> None:
        """Keep-best and the patience counter after an evaluation; the lr decay if that is the policy."""
        if improved:
            self.bad = 0
            if self.keep_best:
                self.best_state = copy.deepcopy(self.model.state_dict())
            return
        self.bad += 1
        if self.lr_decay is not None and self.patience and self.bad >= self.patience and self.lr_decay != 1.0:
            for group in self.optimizer.param_groups:
                group["lr"] *= self.lr_decay
            self.bad = 0

    def _should_stop(self) -> bool:
        return self.lr_decay is None and self.patience is not None and self.bad >= self.patience

    def run(self, step: Callable[[int], Optional[torch.Tensor]],
            evaluate: Optional[Callable[[int], Optional[bool]]] = None, *,
            state: Callable[[], dict] = dict, after_eval: Iterable[Callable[[int], None]] = ()) -> "Engine":
        """Run the steps left: ``step(i)`` for i = done, ..., steps − 1 (its returned loss is summed for
        the divergence check); at each evaluation: the check, ``evaluate(n)`` with n steps done (True:
        improved, False: not, None: no keep-best/patience), the checkpoint (with ``state()``), then each
        ``after_eval(n)`` (raise in one to interrupt).  At the end the best weights are loaded (keep_best)."""
        after_eval = list(after_eval)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=self.steps, initial=self.done, desc=self.desc, leave=self.leave)
        try:
            for i in range(self.done, self.steps):
                if self._should_stop():
                    self.stopped = True
                    break
                loss = step(i)
                if loss is not None:
                    loss = loss.detach()
                    self.window = loss.clone() if self.window is None else self.window + loss
                self.window_steps += 1
                self.done = i + 1
                if self.eval_every and (self.done % self.eval_every == 0 or self.done == self.steps):
                    self._evaluate(evaluate, state, after_eval, bar)
                if bar is not None:
                    bar.update(1)
            if self.window_steps:                     # steps after the last evaluation (or a run without any)
                self.check()
        finally:
            if bar is not None:
                bar.close()
        if self.keep_best and self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return self

    def _evaluate(self, evaluate, state, after_eval, bar) -> None:
        self.check()
        improved = evaluate(self.done) if evaluate is not None else None
        self.window, self.window_steps = None, 0
        if improved is not None:
            self._plateau(bool(improved))
        if bar is not None and self.postfix is not None:
            bar.set_postfix(**self.postfix())
        if self.path is not None:
            self.save(state)
        for cb in after_eval:
            cb(self.done)

"""Training task-conditioned nets: all tasks at once, or one after another (continual learning)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from ..checks import MAX_SEED, check_choice, check_float, check_int
from ..data.tasks import PermutedTasks
from ..nn.conditional import TaskHyperNet, _TaskModel, output_regularizer
from .engine import Engine
from .image import make_optimizer

__all__ = ["task_accuracy", "train_multitask", "ContinualResult", "train_continual"]


@torch.no_grad()
def task_accuracy(model: _TaskModel, tasks: PermutedTasks, task_ids: Optional[Sequence[int]] = None,
                  batch_size: int = 2000) -> list[float]:
    """Test accuracy of ``model`` on each task (in %)."""
    check_int(batch_size=batch_size, lo=1)
    task_ids = range(tasks.n_tasks) if task_ids is None else task_ids
    task_ids = [tasks._task_index(t) for t in task_ids]        # refused before the model is touched
    was_training = model.training
    model.eval()
    accs = []
    try:
        for t in task_ids:
            correct = 0
            for s in range(0, len(tasks.y_test), batch_size):
                x = tasks.permute(tasks.x_test[s:s + batch_size], t)
                correct += (model(x, int(t)).argmax(-1) == tasks.y_test[s:s + batch_size]).sum().item()
            accs.append(100.0 * correct / len(tasks.y_test))
    finally:
        model.train(was_training)
    return accs


def _optimizer(params, lr: float, weight_decay: float = 0.0, optimizer: str = "adam"):
    """``"adam"``: weight_decay is an L2 term added to the gradient (coupled);
    ``"adamw"``: decoupled decay, θ ← θ − lr·λ·θ each step."""
    check_choice("optimizer", optimizer, ("adam", "adamw"))
    return make_optimizer(optimizer, params, lr, weight_decay)


def train_multitask(model: _TaskModel, tasks: PermutedTasks, *, steps: int, batch_size: int = 64,
                    lr: float = 1e-3, weight_decay: float = 0.0, optimizer: str = "adam", param_groups=None,
                    seed: int = 0, eval_every: int = 0) -> dict:
    """Train on all tasks at once: every step takes ``batch_size`` images from *each* task
    (shape (T, B, in)) and runs all T main nets in one batched call.

    ``optimizer="adam"`` with ``weight_decay`` is a coupled L2 penalty; ``"adamw"`` decouples it.
    Returns {'loss': [...], 'eval_step': [...], 'eval_acc': [[acc per task], ...]}.
    A NaN or infinite loss (checked at every evaluation and at the end) raises
    :class:`~hypernet_lib.checks.TrainingDiverged`.
    """
    check_int(steps=steps, batch_size=batch_size, lo=1)
    check_int(eval_every=eval_every, lo=0)
    check_int(seed=seed, lo=0, hi=MAX_SEED)
    check_float(lr=lr, weight_decay=weight_decay, lo=0.0)
    g = torch.Generator(device=tasks.x_train.device).manual_seed(seed)
    opt = _optimizer(param_groups if param_groups is not None else model.parameters(), lr, weight_decay, optimizer)
    ids = torch.arange(tasks.n_tasks, device=tasks.x_train.device)
    n = len(tasks.y_train)
    hist = {"loss": [], "eval_step": [], "eval_acc": []}

    def step(i: int) -> torch.Tensor:
        idx = torch.randint(0, n, (tasks.n_tasks, batch_size), generator=g, device=tasks.x_train.device)
        x = tasks.permute(tasks.x_train[idx], ids)                       # (T, B, in)
        logits = model(x, ids)                                           # (T, B, 10)
        loss = F.cross_entropy(logits.flatten(0, 1), tasks.y_train[idx].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        hist["loss"].append(loss.detach())                               # no host sync per step
        return loss

    def evaluate(done: int) -> None:
        hist["eval_step"].append(done)
        hist["eval_acc"].append(task_accuracy(model, tasks))

    # the divergence check runs at every evaluation, and over all steps at the end when there is none
    Engine(model, opt, steps=steps, eval_every=eval_every,
           where=lambda good, now: f"by step {now}" if eval_every else f"in {steps} steps").run(step, evaluate)
    hist["loss"] = torch.stack(hist["loss"]).tolist() if hist["loss"] else []
    return hist


@dataclass
class ContinualResult:
    """acc[i][j]: test accuracy (%) on task j after training on tasks 0..i (NaN for j > i)."""
    acc: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    reg: list = field(default_factory=list)

    def _learned(self) -> list:
        if not self.acc:
            raise ValueError("no task has been learned yet (acc is empty): run train_continual first")
        return self.acc

    @property
    def final(self) -> list[float]:
        return self._learned()[-1]

    @property
    def just_learned(self) -> list[float]:
        """Accuracy on each task right after it was learned (the diagonal)."""
        return [self.acc[i][i] for i in range(len(self._learned()))]

    @property
    def forgetting(self) -> list[float]:
        """Drop from 'just learned' to 'at the end', per task (the last task has 0)."""
        return [just - self.acc[-1][i] for i, just in enumerate(self.just_learned)]

    @property
    def mean_final(self) -> float:
        return sum(self.final) / len(self.final)

    @property
    def mean_forgetting(self) -> float:
        f = self.forgetting[:-1]
        return sum(f) / max(len(f), 1)


def train_continual(model: _TaskModel, tasks: PermutedTasks, *, steps_per_task: int, batch_size: int = 128,
                    lr: float = 1e-3, beta: float = 0.0, seed: int = 0) -> ContinualResult:
    """Learn tasks 0, 1, ..., T−1 one after another; after each, test on all tasks.

    For a :class:`TaskHyperNet` with ``beta > 0`` the loss on task t is
        L_t(θ_t) + β · (1/t) Σ_{t'<t} ||h(e_{t'}; Θ) − h(e_{t'}; Θ*)||²
    with Θ* the hypernet parameters before task t (von Oswald et al., 2020, Eq. 2, no look-ahead).
    Only the current task's embedding is trained; earlier embeddings stay fixed.
    For the baselines (and beta = 0) this is plain sequential fine-tuning.
    """
    check_int(steps_per_task=steps_per_task, batch_size=batch_size, lo=1)
    check_int(seed=seed, lo=0, hi=MAX_SEED)
    check_float(lr=lr, lo=0.0)
    if isinstance(beta, (int, float)) and not isinstance(beta, bool) and beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    check_float(beta=beta, lo=0.0)
    if beta > 0 and not isinstance(model, TaskHyperNet):
        raise ValueError("the output regulariser needs a TaskHyperNet; use beta=0 for the baselines")
    dev = tasks.x_train.device
    g = torch.Generator(device=dev).manual_seed(seed)
    res = ContinualResult()
    n = len(tasks.y_train)
    task = {}                                                  # the current task's optimiser and targets

    def step(i: int) -> torch.Tensor:
        t = i // steps_per_task
        if i % steps_per_task == 0:                            # a new task: a fresh optimiser, Θ* fixed
            task["targets"] = None
            if isinstance(model, TaskHyperNet) and beta > 0 and t > 0:
                with torch.no_grad():                          # θ*_{t'} = h(e_{t'}; Θ*) for t' < t
                    task["targets"] = model.generate(model.task_emb[:t]).detach()
            task["opt"] = _optimizer(model.parameters(), lr)
        idx = torch.randint(0, n, (batch_size,), generator=g, device=dev)
        logits = model(tasks.permute(tasks.x_train[idx], t), t)
        loss = F.cross_entropy(logits, tasks.y_train[idx])
        total = loss
        if task["targets"] is not None:
            reg = output_regularizer(model, task["targets"], range(t))
            total = loss + beta * reg
            res.reg.append(reg.detach())
        task["opt"].zero_grad(set_to_none=True)
        total.backward()
        if isinstance(model, TaskHyperNet) and model.task_emb.grad is not None:
            model.task_emb.grad[:t] = 0                        # earlier embeddings stay as they were
            model.task_emb.grad[t + 1:] = 0
        task["opt"].step()
        res.loss.append(loss.detach())                         # no host sync per step
        return loss

    def evaluate(done: int) -> None:                           # after each task, on the tasks learned so far
        t = done // steps_per_task - 1
        accs = task_accuracy(model, tasks, range(t + 1))
        res.acc.append(accs + [float("nan")] * (tasks.n_tasks - t - 1))

    Engine(model, steps=tasks.n_tasks * steps_per_task, eval_every=steps_per_task,
           where=lambda good, now: f"while learning task {now // steps_per_task - 1}",
           advice="lower the learning rate" + (" or beta" if beta > 0 else "")).run(step, evaluate)
    res.loss = torch.stack(res.loss).tolist() if res.loss else []
    res.reg = torch.stack(res.reg).tolist() if res.reg else []
    return res

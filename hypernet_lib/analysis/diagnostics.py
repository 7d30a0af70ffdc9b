"""Diagnostics of conditional hypernetworks: spread, sensitivity to z, dead units; confidence intervals."""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from ..checks import check_int, check_shape
from ..nn.conditional import TaskHyperNet, _TaskModel
from ..nn.weights import unflatten

__all__ = ["generated_weight_variance", "weight_spread", "output_spread", "z_sensitivity", "dead_fraction",
           "diagnose", "mean_ci"]


@torch.no_grad()
def generated_weight_variance(hnet: TaskHyperNet, n_emb: int = 256, seed: int = 0) -> list[float]:
    """Variance of each generated main-net tensor over ``n_emb`` random embeddings
    e ~ N(0, emb_std²) (the distribution the init assumes).  One entry per tensor in
    ``hnet.main.param_shapes`` (W_1, b_1, W_2, ...)."""
    if not isinstance(hnet, TaskHyperNet):
        raise ValueError(f"hnet must be a TaskHyperNet, got {type(hnet).__name__}")
    check_int(n_emb=n_emb, lo=2)                      # a variance needs two draws
    g = torch.Generator().manual_seed(seed)
    emb = (torch.randn(n_emb, hnet.n_z, generator=g) * hnet.emb_std).to(hnet.device)
    theta = hnet.generate(emb)
    return [p.var().item() for p in unflatten(theta, hnet.main.param_shapes).values()]


def weight_spread(thetas: torch.Tensor) -> float:
    """How different the generated weights are across conditions.

    thetas: (K, P), one row per condition (K >= 2).  Returns
        rms_p(std_k θ_kp) / rms(θ)
    — 0 when every condition gets the same weights (weight collapse), about 1 when the
    rows are unrelated.
    """
    if not isinstance(thetas, torch.Tensor):
        check_shape("thetas", thetas, ("K", "P"))
    if thetas.dim() != 2 or thetas.shape[0] < 2:
        raise ValueError(f"thetas must have shape (K, P) with K >= 2 conditions, got {tuple(thetas.shape)}")
    thetas = thetas.detach().double()
    between = thetas.var(0, unbiased=False).mean().sqrt()
    scale = thetas.square().mean().sqrt()
    return float(between / scale.clamp_min(1e-30))


def output_spread(outputs: torch.Tensor) -> float:
    """Same measure as :func:`weight_spread` for main-net outputs (K, B, ...) on the same inputs:
    0 when the output does not depend on the condition (insensitivity to z)."""
    if not isinstance(outputs, torch.Tensor):
        check_shape("outputs", outputs, ("K", "B", "..."))
    if outputs.dim() < 2 or outputs.shape[0] < 2:
        raise ValueError(f"outputs must have shape (K, B, ...) with K >= 2 conditions, got {tuple(outputs.shape)}")
    return weight_spread(outputs.flatten(1))


@torch.no_grad()
def z_sensitivity(model: _TaskModel, x: torch.Tensor, task_ids: Optional[Sequence[int]] = None) -> dict:
    """Run the same inputs x (B, in) under every condition and measure how much the output moves.

    Returns {'output_spread': float (see :func:`output_spread`, on softmax probabilities),
             'pred_change': % of inputs whose predicted class is not the same under all conditions}.

    Read ``output_spread`` for insensitivity, not ``pred_change``: when the outputs are nearly flat
    (all class probabilities close to 1/C) a tiny condition-dependent shift still decides the
    argmax, so an insensitive net can have a ``pred_change`` near 100 %.
    """
    ids = list(range(model.n_tasks)) if task_ids is None else list(task_ids)
    if len(ids) < 2:
        raise ValueError("z_sensitivity needs at least two conditions to compare")
    check_shape("x", x, ("B", "in"), fix="one batch of inputs, run under every condition")
    probs = model(x.unsqueeze(0).expand(len(ids), *x.shape), ids).softmax(-1)    # (K, B, 10)
    pred = probs.argmax(-1)
    change = (pred != pred[:1]).any(0).float().mean().item() * 100.0
    return {"output_spread": output_spread(probs), "pred_change": change}


@torch.no_grad()
def dead_fraction(hnet: TaskHyperNet, task_ids: Optional[Sequence[int]] = None) -> float:
    """Fraction of the hypernet's hidden ReLU units that are zero for every task and chunk.

    A dead unit passes no signal and gets no gradient; when all are dead, θ = head bias for
    every condition and the task embeddings receive exactly zero gradient."""
    if not isinstance(hnet, TaskHyperNet):
        raise ValueError(f"hnet must be a TaskHyperNet (only a hypernetwork has hidden units), "
                         f"got {type(hnet).__name__}")
    ids = list(range(hnet.n_tasks)) if task_ids is None else list(task_ids)
    emb = hnet.task_emb[hnet._ids(ids)]
    if hnet.chunked:
        t = emb.shape[0]
        x = torch.cat([emb.unsqueeze(1).expand(t, hnet.n_chunks, hnet.n_z),
                       hnet.chunk_emb.unsqueeze(0).expand(t, hnet.n_chunks, hnet.n_c)], dim=-1).flatten(0, 1)
    else:
        x = emb
    dead = []
    for lin in hnet.body:
        x = F.relu(lin(x))
        dead.append((x == 0).all(0))
    return torch.cat(dead).float().mean().item()


@torch.no_grad()
def diagnose(model: _TaskModel, x: torch.Tensor, task_ids: Optional[Sequence[int]] = None,
             collapse_below: float = 0.05, insensitive_below: float = 0.05) -> dict:
    """Both checks at once: weight collapse (weight space) and insensitivity to z (function space).

    Returns {'weight_spread', 'output_spread', 'pred_change', 'dead_fraction' (TaskHyperNet only),
             'collapsed': bool, 'insensitive': bool}.
    """
    ids = list(range(model.n_tasks)) if task_ids is None else list(task_ids)
    report = {"weight_spread": weight_spread(model.thetas(ids))}
    report.update(z_sensitivity(model, x, ids))
    if isinstance(model, TaskHyperNet):
        report["dead_fraction"] = dead_fraction(model, ids)
    report["collapsed"] = report["weight_spread"] < collapse_below
    report["insensitive"] = report["output_spread"] < insensitive_below
    return report


def mean_ci(acc: torch.Tensor) -> tuple[float, float]:
    """Mean and the half-width of its 95 % confidence interval, 1.96·std/√n."""
    acc = torch.as_tensor(acc, dtype=torch.float64)
    if acc.numel() < 2:
        raise ValueError("mean_ci needs at least two episodes")
    return float(acc.mean()), float(1.96 * acc.std() / math.sqrt(acc.numel()))

"""Episodic training and evaluation of few-shot classifiers."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ..checks import check_positive_ints
from ..data.tasks import EpisodeSampler
from ..nn.fewshot import FineTune, _EpisodicModel
from .engine import Engine
from .image import make_optimizer

__all__ = ["training_labels", "episode_loss", "train_episodic", "evaluate_episodes"]


def training_labels(sampler: EpisodeSampler) -> torch.Tensor:
    """label_of[c]: class c's index among the sampler's classes, 0..n_classes-1 (-1 for the others);
    the labels :class:`FineTune` is pretrained on."""
    dev = sampler.table.device
    label_of = torch.full((len(sampler.data.names),), -1, dtype=torch.long, device=dev)
    label_of[sampler.classes] = torch.arange(sampler.n_classes, device=dev)
    return label_of


def episode_loss(model: _EpisodicModel, sampler: EpisodeSampler, ep, sup: torch.Tensor, qry: torch.Tensor,
                 label_of: torch.Tensor) -> torch.Tensor:
    """The training loss on a batch of episodes: the query cross-entropy of an episodic model; for
    :class:`FineTune`, ordinary cross-entropy over the training classes on the same images."""
    if isinstance(model, FineTune):
        x = torch.cat([sup.flatten(0, 2), qry.flatten(0, 1)])
        y = label_of[sampler.data.y[torch.cat([ep.support.flatten(), ep.query.flatten()])]]
        return model.pretrain_loss(x, y)
    return F.cross_entropy(model(sup, qry).flatten(0, 1), ep.query_labels.flatten())


def train_episodic(model: _EpisodicModel, sampler: EpisodeSampler, *, steps: int, n_way: int = 5,
                   shots: Sequence[int] = (1, 5), n_query: int = 5, episodes: int = 8, lr: float = 1e-3,
                   seed: int = 0) -> list[float]:
    """Train on batches of ``episodes`` episodes; the shot cycles through ``shots`` step by step.

    Episodic models minimise the query cross-entropy. :class:`FineTune` sees exactly the same
    images and minimises ordinary cross-entropy over the training classes (same budget).
    Returns the loss per step.  A NaN or infinite loss, or non-finite weights, at the end raise
    :class:`~hypernet_lib.checks.TrainingDiverged`.
    """
    check_positive_ints(steps=steps, episodes=episodes)
    dev = sampler.table.device
    g = torch.Generator(device=dev).manual_seed(seed)
    opt = make_optimizer("adam", model.parameters(), lr)
    label_of = training_labels(sampler)
    losses = []
    model.train()

    def step(i: int) -> torch.Tensor:
        ep = sampler.sample(episodes, n_way, shots[i % len(shots)], n_query, generator=g)
        sup, qry = sampler.images(ep)
        loss = episode_loss(model, sampler, ep, sup, qry, label_of)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
        return loss

    Engine(model, opt, steps=steps, where=lambda good, now: f"in {steps} steps",
           advice=f"lower the learning rate (lr={lr:g})").run(step)
    return torch.stack(losses).tolist()


@torch.no_grad()
def evaluate_episodes(model: _EpisodicModel, sampler: EpisodeSampler, *, n_episodes: int = 600, n_way: int = 5,
             shots: Sequence[int] = (1, 5), n_query: int = 15, batch: int = 100, seed: int = 0) -> dict:
    """Query accuracy (%) of each of ``n_episodes`` test episodes per shot: {K: tensor (n_episodes,)}.

    The encoder is fixed at test time, so the sampler's images are embedded once and episodes
    index into the embeddings. The same ``seed`` gives every model the same episodes."""
    check_positive_ints(n_episodes=n_episodes, batch=batch)
    model.eval()
    pool = sampler.table[sampler.valid]                                     # images of the split's classes
    emb = torch.zeros(len(sampler.data.x), model.encoder.dim, device=sampler.data.x.device)
    for i in range(0, len(pool), 2000):
        emb[pool[i:i + 2000]] = model.encoder(sampler.data.x[pool[i:i + 2000]])
    out = {}
    for k_shot in shots:
        g = torch.Generator(device=sampler.table.device).manual_seed(seed)
        accs = []
        for start in range(0, n_episodes, batch):
            ep = sampler.sample(min(batch, n_episodes - start), n_way, k_shot, n_query, generator=g)
            pred = model.logits(emb[ep.support], emb[ep.query]).argmax(-1)
            accs.append((pred == ep.query_labels).float().mean(-1) * 100)
        out[k_shot] = torch.cat(accs).cpu()
    return out

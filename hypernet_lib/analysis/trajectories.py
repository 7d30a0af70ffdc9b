"""What a trained net does as you move: z interpolation, weight trajectories, scaling vectors."""
from __future__ import annotations

from typing import Dict, List, Sequence

import torch

from ..checks import check_int, check_shape
from ..data.text import Vocab
from ..nn.charlm import CharLM
from ..nn.cifar import CifarNet
from ..nn.hyperlstm import HyperLSTMLayer
from ..nn.mnist import MNISTHyperNet
from ..training.lm import _check_model_vocab

__all__ = ["accuracy_along", "TrainingTracker", "path_length_share", "pca_trajectory", "scaling_vectors"]


@torch.no_grad()
def accuracy_along(model: MNISTHyperNet, zs: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                   batch_size: int = 2000) -> torch.Tensor:
    """Test accuracy of the MNIST hypernet when conv2's kernel is generated from each z in zs.

    zs: (S, N_z) -> accuracies (S,).  All S kernels are generated in one batched call.
    """
    if not isinstance(model, MNISTHyperNet):
        raise ValueError(f"model must be an MNISTHyperNet (its conv2 kernel is generated from z), "
                         f"got {type(model).__name__}")
    check_shape("zs", zs, ("S", model.generator.n_z), floating=True,
                fix="stack the embeddings, e.g. interpolate_z(z0, z1, steps)")
    check_shape("x", x, ("N", 1, 28, 28))
    check_shape("y", y, ("N",), floating=False)
    if len(x) != len(y):
        raise ValueError(f"x holds {len(x)} images but y {len(y)} labels; pass one label per image")
    if len(y) == 0:
        raise ValueError("x and y are empty; accuracy needs at least one image")
    check_int(batch_size=batch_size, lo=1)
    was_training = model.training
    model.eval()
    kernels = model.generator(zs)                                    # (S, N_out, N_in, f, f)
    acc = torch.zeros(len(zs))
    for s, kernel in enumerate(kernels):                             # one evaluation per z
        correct = 0
        for start in range(0, len(y), batch_size):
            logits = model(x[start:start + batch_size], {"conv2": kernel})
            correct += (logits.argmax(1) == y[start:start + batch_size]).sum().item()
        acc[s] = correct / len(y)
    model.train(was_training)
    return acc


class TrainingTracker:
    """A ``fit`` callback that snapshots a :class:`CifarNet` after every epoch (call it once before
    training for the initial state): all embeddings (flattened and per layer), per-layer z norms, per-layer weight
    statistics and conv1's kernel."""

    def __init__(self, net: CifarNet):
        if not isinstance(net, CifarNet):
            raise ValueError(f"net must be a CifarNet (see build_cifar_net), got {type(net).__name__}")
        self.net = net
        self.z, self.z_layers, self.z_norms, self.stats, self.conv1, self.labels = [], [], [], [], [], []

    def snapshot(self, label: str = "init") -> None:
        zs, weights = self.net.z_embeddings(), self.net.generated_weights()     # each computed once
        self.z.append(self.net.z_flat(zs).cpu().clone())
        self.z_layers.append({k: v.cpu().clone() for k, v in zs.items()})
        self.z_norms.append(self.net.z_norms(zs))
        self.stats.append(self.net.weight_stats(weights))
        self.conv1.append(weights["conv1"].float().cpu().clone())
        self.labels.append(label)

    def __call__(self, epoch: int, history) -> None:
        self.snapshot(f"epoch {epoch + 1}")

    _FIELDS = ("z", "z_layers", "z_norms", "stats", "conv1", "labels")

    def state(self) -> dict:
        """The snapshots as plain lists, dicts and tensors (for a checkpoint's ``extra``)."""
        return {k: getattr(self, k) for k in self._FIELDS}

    @classmethod
    def from_state(cls, net: "CifarNet", state: dict) -> "TrainingTracker":
        """A tracker for ``net`` holding the snapshots of :meth:`state` (no new snapshot)."""
        if not isinstance(state, dict):
            raise ValueError(f"state must be the dict TrainingTracker.state() returns, got {type(state).__name__}")
        missing = [k for k in cls._FIELDS if k not in state]
        if missing:
            raise ValueError(f"tracker state lacks {', '.join(missing)}")
        tracker = cls(net)
        for k in cls._FIELDS:
            setattr(tracker, k, list(state[k]))
        tracker.stats = [[{**r, "shape": tuple(r["shape"])} for r in rows] for rows in tracker.stats]
        return tracker

    def z_drift(self) -> Dict[str, List[float]]:
        """Per layer, ||z_t - z_0|| / ||z_0|| for every snapshot t (how far training moved the embeddings)."""
        if not self.z_layers:
            raise ValueError("the tracker has no snapshot yet; call snapshot() before training")
        z0 = self.z_layers[0]
        return {n: [((zt[n] - z0[n]).norm() / z0[n].norm().clamp_min(1e-12)).item() for zt in self.z_layers]
                for n in z0}


def _check_snapshots(snapshots) -> list:
    """``snapshots`` as a non-empty list of tensors of one shape, or a ValueError naming the bad one."""
    if isinstance(snapshots, torch.Tensor) or not hasattr(snapshots, "__iter__"):
        raise ValueError(f"snapshots must be a list of tensors (one per snapshot, e.g. TrainingTracker.z), "
                         f"got {type(snapshots).__name__}")
    snapshots = list(snapshots)
    if not snapshots:
        raise ValueError("snapshots is empty; pass the snapshots of a path, e.g. TrainingTracker.z")
    for t, s in enumerate(snapshots):
        if not isinstance(s, torch.Tensor):
            raise ValueError(f"snapshots[{t}] must be a tensor, got {type(s).__name__}")
        if s.shape != snapshots[0].shape:
            raise ValueError(f"snapshots[{t}] has shape {tuple(s.shape)} but snapshots[0] {tuple(snapshots[0].shape)}; "
                             "every snapshot must be of the same embedding")
    return snapshots


def path_length_share(snapshots: Sequence[torch.Tensor], upto: int) -> float:
    """Share of a path's length, sum_t ||s_{t+1} - s_t||, covered by its first ``upto`` steps
    (0..1).  Measured in the full embedding space, not in a projection."""
    zs = torch.stack([s.double().flatten() for s in _check_snapshots(snapshots)])
    steps = (zs[1:] - zs[:-1]).norm(dim=1)
    if steps.numel() == 0 or not 0 <= upto <= steps.numel():
        raise ValueError(f"upto must be between 0 and the {steps.numel()} steps of the path, got {upto}")
    total = steps.sum()
    return float(steps[:upto].sum() / total) if total > 0 else 0.0


def pca_trajectory(snapshots: Sequence[torch.Tensor], k: int = 2):
    """Project T snapshots of a flattened embedding vector (each (P,)) onto their top-k principal
    components.  Returns (coords (T, k), explained variance ratio (k,))."""
    check_int(k=k, lo=1)
    snapshots = _check_snapshots(snapshots)
    for t, s in enumerate(snapshots):
        if s.dim() != 1:
            raise ValueError(f"snapshots[{t}] has shape {tuple(s.shape)}; each snapshot must be a flat vector (P,), "
                             "e.g. CifarNet.z_flat()")
    zs = torch.stack([s.double() for s in snapshots])            # (T, P)
    if zs.shape[0] < 2 or zs.shape[1] == 0:
        raise ValueError("a PCA trajectory needs at least two snapshots of a non-empty embedding")
    zc = zs - zs.mean(0, keepdim=True)
    u, s, _ = torch.linalg.svd(zc, full_matrices=False)
    k = min(k, s.numel())
    var = s ** 2
    return (u[:, :k] * s[:k]).float(), (var[:k] / var.sum().clamp_min(1e-30)).float()


@torch.no_grad()
def scaling_vectors(model: CharLM, vocab: Vocab, text: str, layer: int = 0) -> Dict[str, torch.Tensor]:
    """The HyperLSTM's d_h, d_x and W_bz z_b while reading ``text``: each (T, 4, N_h), gates i, g, f, o."""
    device = _check_model_vocab(model, vocab)
    if not isinstance(text, str) or not text:
        raise ValueError(f"text must be a str of at least one character, got {text!r}"[:200])
    check_int(layer=layer, lo=0, hi=len(model.layers) - 1)
    lay = model.layers[layer]
    if not isinstance(lay, HyperLSTMLayer):
        raise ValueError(f"layer {layer} is a {type(lay).__name__}; scaling vectors exist only for hyperlstm cells")
    x = vocab.encode(text).to(device).view(-1, 1)               # (T, 1); unknown chars raise
    was_training = model.training
    model.eval()
    if model.embedding is not None:
        x = model.embedding(x)
    for k in range(layer):
        x, _ = model.layers[k](x)
    _, _, d = lay(x, return_d=True)
    model.train(was_training)
    return {k: v[:, 0].cpu() for k, v in d.items()}

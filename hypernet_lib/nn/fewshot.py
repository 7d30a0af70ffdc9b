"""Few-shot classifiers: a prototypical network, a hypernetwork that generates the classifier, and fine-tuning.

An N-way K-shot *episode* holds N classes never seen in training, K labelled support images per
class and Q query images per class. A model sees the support set and must classify the queries.

* :class:`ConvEncoder` f(x): the same small conv net for every method.
* :class:`HyperFewShot`: the hypernetwork. From the pooled class embeddings
  p_c = (1/K) Σ_k f(x_ck) and the support summary s = (1/N) Σ_c p_c it generates the head of
  every episode, optionally with H hidden units (H = 0: the last layer only),

      A, a = h_A(s)                            hidden layer  (H, D), (H,)    from the whole support set
      φ(x) = [f(x), ReLU(A f(x) + a)]          embedding plus H generated hidden units (φ = f if H = 0)
      u_c  = (1/K) Σ_k φ(x_ck)                 class c in the generated feature space
      w_c  = 2σ u_c + h_w([u_c, u_c − ū])      last-layer row of class c     (D+H,)
      b_c  = −σ‖u_c‖² + h_b([u_c, u_c − ū])    its bias

  and classifies query q by logits_c = w_c · φ(q) + b_c (einsum over a batch of episodes).
  With h_w = h_b = 0 (their initial value, ``residual=True``) the logits are
  σ(−‖φ(q) − u_c‖² + ‖φ(q)‖²): the prototypical classifier in φ-space, scaled by σ (``scale``);
  the softmax ignores the ‖φ(q)‖² term. With H = 0 and σ = 1 the hypernetwork therefore starts
  exactly as a prototypical network and learns corrections to it. ``residual=False`` generates
  w_c, b_c from scratch. h_A's output head uses the hyperfan-in variance of
  :mod:`hypernet_lib.nn.init`.
* Baselines, same encoder and training budget: :class:`ProtoNet` (Snell et al., 2017:
  logits_c = −‖f(q) − p_c‖²) and :class:`FineTune` (a shared net trained by ordinary
  classification on the training classes; at test time a new linear head is fitted on the
  support embeddings by a few gradient steps, batched over episodes, encoder frozen).

Names: E episodes per batch, N ways, K shots, Q queries per class, M = N·Q queries, D the
embedding size, H the generated head's hidden units.

Episodes are drawn by :class:`hypernet_lib.data.EpisodeSampler`; training and evaluation are in
:mod:`hypernet_lib.training.fewshot`.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import check_float, check_int, check_positive_ints
from .init import hyperfan_variance

__all__ = ["METHODS", "ConvEncoder", "prototypes", "ProtoNet", "HyperFewShot", "FineTune"]

METHODS = ("hyper", "proto", "finetune")


class ConvEncoder(nn.Module):
    """f(x): three blocks conv3×3 → ReLU → max-pool 2, then a linear map to D dims.
    x (B, C, 28, 28) -> (B, D)."""

    def __init__(self, in_channels: int = 1, width: int = 32, dim: int = 64, size: int = 28):
        super().__init__()
        check_positive_ints(in_channels=in_channels, width=width, dim=dim)
        layers, c = [], in_channels
        for _ in range(3):
            layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c = width
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.proj = nn.Linear(width * (size // 8) ** 2, dim)
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.body(x))


def prototypes(support_emb: torch.Tensor) -> torch.Tensor:
    """p_c = (1/K) Σ_k f(x_ck): support embeddings (E, N, K, D) -> (E, N, D)."""
    return support_emb.mean(2)


def _check_episode_shapes(sup: torch.Tensor, qry: torch.Tensor, dim: int) -> None:
    if sup.dim() != 4 or qry.dim() != 3:
        raise ValueError(f"support embeddings must be (E, N, K, D) and query embeddings (E, M, D); got "
                         f"{tuple(sup.shape)} and {tuple(qry.shape)}")
    if sup.shape[0] != qry.shape[0] or sup.shape[-1] != dim or qry.shape[-1] != dim:
        raise ValueError(f"support {tuple(sup.shape)} and query {tuple(qry.shape)} must share E and have "
                         f"D={dim} (the encoder's output size)")


class _EpisodicModel(nn.Module):
    """Common interface: ``logits(support_emb (E,N,K,D), query_emb (E,M,D)) -> (E, M, N)``;
    ``forward(support_images (E,N,K,C,H,W), query_images (E,M,C,H,W))`` encodes then calls it."""
    encoder: ConvEncoder

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.flatten(0, x.dim() - 4)).unflatten(0, x.shape[:-3])

    def forward(self, support: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        if support.dim() != 6 or query.dim() != 5:
            raise ValueError(f"support images must be (E, N, K, C, H, W) and queries (E, M, C, H, W); got "
                             f"{tuple(support.shape)} and {tuple(query.shape)}")
        return self.logits(self.encode(support), self.encode(query))


class ProtoNet(_EpisodicModel):
    """Prototypical networks (Snell et al., 2017): logits_c(q) = −‖f(q) − p_c‖² (squared Euclidean)."""

    def __init__(self, encoder: ConvEncoder):
        super().__init__()
        self.encoder = encoder

    def logits(self, sup: torch.Tensor, qry: torch.Tensor) -> torch.Tensor:
        _check_episode_shapes(sup, qry, self.encoder.dim)
        return -torch.cdist(qry, prototypes(sup)).square()                  # (E, M, N)


class HyperFewShot(_EpisodicModel):
    """A hypernetwork that generates each episode's classifier head from its support set.

    Generated per episode (see the module docstring for the equations):
    A (E, H, D), a (E, H) from the support summary s; w (E, N, D+H), b (E, N) per class.

    Args:
        encoder: the shared :class:`ConvEncoder` (D = ``encoder.dim``).
        hidden: H, hidden units of the generated head; 0 generates the last layer only.
        width: hidden width of the hypernetwork's MLPs (d_k in Chang et al.).
        residual: start the last layer as a nearest-mean classifier (see module docstring).
        scale: σ, the nearest-mean start's scale; 1 is the prototypical network's −‖φ(q) − u_c‖².
    """

    def __init__(self, encoder: ConvEncoder, hidden: int = 0, width: int = 128, residual: bool = True,
                 scale: float = 1.0):
        super().__init__()
        check_int(hidden=hidden, lo=0)
        check_positive_ints(width=width)
        check_float(scale=scale, lo=0.0, lo_open=True)
        self.encoder, self.hidden, self.width, self.residual, self.scale = encoder, hidden, width, residual, scale
        d = encoder.dim
        if hidden:                                         # the optional generated hidden layer
            self.set_net = nn.Linear(d, width)             # s -> e_s
            self.head_A = nn.Linear(width, hidden * d)     # e_s -> A (hidden layer weights)
            self.head_a = nn.Linear(width, hidden)         # e_s -> a
        self.class_net = nn.Linear(2 * (d + hidden), width)  # [u_c, u_c − ū] -> e_c
        self.head_w = nn.Linear(width, d + hidden)         # e_c -> Δw_c
        self.head_b = nn.Linear(width, 1)                  # e_c -> Δb_c
        self.reset_parameters()

    def reset_parameters(self) -> None:
        d = self.encoder.dim
        with torch.no_grad():
            for lin in (self.set_net, self.class_net) if self.hidden else (self.class_net,):
                nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
                nn.init.zeros_(lin.bias)
            if self.residual:                              # Δw = Δb = 0: the head starts as nearest-mean
                for lin in (self.head_w, self.head_b):
                    nn.init.zeros_(lin.weight)
                    nn.init.zeros_(lin.bias)
            if not self.hidden:
                return
            # hyperfan-in (Chang et al., 2020) for the generated hidden layer: Var(A) = 2 / (2 D), assuming E[e_s²] = 1
            self.head_A.weight.normal_(0.0, math.sqrt(hyperfan_variance(
                "hyperfan_in", "weight", fan_in=d, fan_out=self.hidden, d_k=self.width)))
            self.head_a.weight.normal_(0.0, math.sqrt(hyperfan_variance(
                "hyperfan_in", "bias", fan_in=d, fan_out=self.hidden, d_k=self.width)))
            for lin in (self.head_A, self.head_a):
                nn.init.zeros_(lin.bias)

    def generate(self, sup: torch.Tensor) -> dict:
        """Support embeddings (E, N, K, D) -> the generated head {A, a, w, b}."""
        if self.hidden:
            s = prototypes(sup).mean(1)                                     # (E, D) support summary
            e_s = F.relu(self.set_net(s))
            A = self.head_A(e_s).unflatten(-1, (self.hidden, sup.shape[-1]))   # (E, H, D)
            a = self.head_a(e_s)                                            # (E, H)
        else:                                                               # H = 0: φ = f
            A, a = sup.new_zeros(sup.shape[0], 0, sup.shape[-1]), sup.new_zeros(sup.shape[0], 0)
        phi = self.features(A, a, sup.flatten(1, 2)).unflatten(1, sup.shape[1:3])   # φ(x_ck)
        u = phi.mean(2)                                                     # (E, N, D+H) u_c
        e_c = F.relu(self.class_net(torch.cat([u, u - u.mean(1, keepdim=True)], -1)))
        w, b = self.head_w(e_c), self.head_b(e_c).squeeze(-1)              # (E, N, D+H), (E, N)
        if self.residual:                                                   # w_c = 2σu_c + Δw, b_c = −σ‖u_c‖² + Δb
            w, b = w + 2 * self.scale * u, b - self.scale * u.square().sum(-1)
        return {"A": A, "a": a, "w": w, "b": b}

    @staticmethod
    def features(A: torch.Tensor, a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """φ(x) = [f(x), ReLU(A f(x) + a)]: embeddings (E, M, D) -> (E, M, D+H), one A per episode."""
        return torch.cat([x, F.relu(torch.einsum("ehd,emd->emh", A, x) + a[:, None])], -1)

    @classmethod
    def apply(cls, head: dict, qry: torch.Tensor) -> torch.Tensor:
        """Query embeddings (E, M, D) through each episode's generated head -> logits (E, M, N)."""
        phi = cls.features(head["A"], head["a"], qry)                        # φ(q)
        return torch.einsum("enh,emh->emn", head["w"], phi) + head["b"][:, None]          # w_c·φ(q) + b_c

    def logits(self, sup: torch.Tensor, qry: torch.Tensor) -> torch.Tensor:
        _check_episode_shapes(sup, qry, self.encoder.dim)
        return self.apply(self.generate(sup), qry)


class FineTune(_EpisodicModel):
    """Baseline: a shared net (encoder + linear layer over the training classes) trained by ordinary
    classification; at test time the encoder is frozen and a new N-way linear head (W, b), started at
    zero, takes ``steps`` full-batch gradient steps of size ``lr`` on the support set, for all
    episodes at once (one batched head per episode)."""

    def __init__(self, encoder: ConvEncoder, n_train_classes: int, steps: int = 50, lr: float = 0.5):
        super().__init__()
        check_positive_ints(n_train_classes=n_train_classes, steps=steps)
        self.encoder, self.steps, self.lr = encoder, steps, lr
        self.classifier = nn.Linear(encoder.dim, n_train_classes)

    def pretrain_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the shared net on images x (B, C, H, W) with labels y (B,) in 0..n_train-1."""
        return F.cross_entropy(self.classifier(self.encoder(x)), y)

    def logits(self, sup: torch.Tensor, qry: torch.Tensor) -> torch.Tensor:
        _check_episode_shapes(sup, qry, self.encoder.dim)
        e, n, k, d = sup.shape
        sup, qry = sup.detach(), qry.detach()
        scale = sup.flatten(1, 2).norm(dim=-1).mean(-1).clamp_min(1e-6)[:, None, None]   # per episode
        xs, xq = sup.flatten(1, 2) / scale, qry / scale                     # unit-scale features
        ys = torch.arange(n, device=sup.device).repeat_interleave(k).expand(e, -1)
        w = torch.zeros(e, n, d, device=sup.device, requires_grad=True)
        b = torch.zeros(e, n, device=sup.device, requires_grad=True)
        with torch.enable_grad():
            for _ in range(self.steps):                                     # batched over episodes
                out = torch.einsum("end,ekd->ekn", w, xs) + b[:, None]
                loss = F.cross_entropy(out.flatten(0, 1), ys.flatten(), reduction="sum") / (n * k)
                gw, gb = torch.autograd.grad(loss, (w, b))
                w, b = (w - self.lr * gw).detach().requires_grad_(), (b - self.lr * gb).detach().requires_grad_()
        return torch.einsum("end,emd->emn", w.detach(), xq) + b.detach()[:, None]

"""Few-shot learning with a hypernetwork: generate a classifier from a support set, no gradient steps.

An N-way K-shot *episode* holds N classes never seen in training, K labelled support images per
class and Q query images per class. A model sees the support set and must classify the queries.

* :class:`EpisodeSampler` draws batches of episodes as tensor ops on the data's device: a per-class
  index table, ``torch.rand(...).argsort`` to pick the N classes of every episode and
  ``torch.rand(...).topk`` to pick K+Q distinct images per class (no Python loop over episodes).
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
  :mod:`hypernet_lib.conditional`.
* Baselines, same encoder and training budget: :class:`ProtoNet` (Snell et al., 2017:
  logits_c = −‖f(q) − p_c‖²) and :class:`FineTune` (a shared net trained by ordinary
  classification on the training classes; at test time a new linear head is fitted on the
  support embeddings by a few gradient steps, batched over episodes, encoder frozen).

Names: E episodes per batch, N ways, K shots, Q queries per class, M = N·Q queries, D the
embedding size, H the generated head's hidden units.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .conditional import hyperfan_variance
from .train import make_optimizer
from .utils import check_float, check_int, check_positive_ints

__all__ = [
    "MNIST_FASHION_NAMES", "MNIST_FASHION_TRAIN", "MNIST_FASHION_TEST",
    "FewShotData", "load_mnist_fashion", "load_omniglot", "split_table",
    "Episodes", "EpisodeSampler", "ConvEncoder", "HyperFewShot", "ProtoNet", "FineTune",
    "prototypes", "train_episodic", "evaluate", "mean_ci", "METHODS",
]

_FASHION = ("T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
            "ankle boot")
#: the 20 classes of the offline default: 0-9 the MNIST digits, 10-19 the Fashion-MNIST garments.
MNIST_FASHION_NAMES = tuple(f"digit {d}" for d in range(10)) + _FASHION
#: training classes: digits 0-4 and five garments (one of each kind of shape: top, trouser, dress, shoe, bag).
MNIST_FASHION_TRAIN = (0, 1, 2, 3, 4, 10, 11, 13, 15, 18)
#: test classes, never seen in training: digits 5-9 and the other five garments.
MNIST_FASHION_TEST = (5, 6, 7, 8, 9, 12, 14, 16, 17, 19)
METHODS = ("hyper", "proto", "finetune")


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------

@dataclass
class FewShotData:
    """A pool of labelled images and which classes are for training and which for testing.

    x: (P, C, H, W) float images on the device; y: (P,) class ids 0..len(names)-1.
    """
    x: torch.Tensor
    y: torch.Tensor
    names: tuple
    train_classes: tuple
    test_classes: tuple
    source: str

    def __post_init__(self):
        overlap = set(self.train_classes) & set(self.test_classes)
        if overlap:
            raise ValueError(f"classes {sorted(overlap)} are both training and test classes; "
                             "few-shot test classes must never be seen in training")

    def describe(self) -> str:
        return (f"{self.source}: {len(self.y):,} images, {len(self.train_classes)} training classes, "
                f"{len(self.test_classes)} test classes")


def load_mnist_fashion(device=None, per_class: Optional[int] = 1000) -> FewShotData:
    """MNIST (all splits pooled; the 5,000-image subset offline) and Fashion-MNIST (training split)
    as 20 classes; at most ``per_class`` images per class (None: all)."""
    import warnings

    from .data import load_fashion_mnist, load_mnist
    with warnings.catch_warnings():            # the offline fallback is named in ``source``
        warnings.simplefilter("ignore", UserWarning)
        mn = load_mnist(device="cpu")
    fa = load_fashion_mnist(device="cpu")
    xm = torch.cat([mn.x_train, mn.x_val, mn.x_test]); ym = torch.cat([mn.y_train, mn.y_val, mn.y_test])
    x, y = torch.cat([xm, fa.x_train]), torch.cat([ym, fa.y_train + 10])
    if per_class is not None:
        check_positive_ints(per_class=per_class)
        rank = torch.empty_like(y)                           # position of each image within its class
        order = torch.argsort(y, stable=True)
        counts = torch.bincount(y, minlength=20)
        starts = torch.cumsum(counts, 0) - counts
        rank[order] = torch.arange(len(y)) - starts[y[order]]
        keep = rank < per_class
        x, y = x[keep], y[keep]
    source = f"{mn.name} ({len(ym):,} images) + {fa.name} training split"
    device = device or torch.device("cpu")
    return FewShotData(x.to(device), y.to(device), MNIST_FASHION_NAMES, MNIST_FASHION_TRAIN,
                       MNIST_FASHION_TEST, source)


def load_omniglot(root, device=None, size: int = 28) -> FewShotData:
    """Omniglot through ``torchvision.datasets.Omniglot`` (needs the files or a download):
    the 964 'background' characters train, the 659 'evaluation' characters test.
    Images are resized to ``size``×``size`` and inverted (strokes bright). Raises
    :class:`hypernet_lib.data.DataUnavailable` when the data is neither on disk nor downloadable."""
    from .data import DataUnavailable
    try:
        from torchvision import datasets, transforms
        tf = transforms.Compose([transforms.Resize(size), transforms.ToTensor()])
        parts = [datasets.Omniglot(str(root), background=bg, download=True, transform=tf) for bg in (True, False)]
    except Exception as e:                                  # noqa: BLE001 - offline, missing torchvision, ...
        raise DataUnavailable(f"Omniglot is not available ({type(e).__name__}: {e}); "
                              f"put it under {root}/omniglot-py or run online") from None
    xs, ys, offset, split = [], [], 0, []
    for part in parts:
        labels = torch.tensor([c for _, c in part._flat_character_images])
        xs.append(torch.stack([part[i][0] for i in range(len(part))]))
        ys.append(labels + offset)
        n = len(part._characters)
        split.append(tuple(range(offset, offset + n)))
        offset += n
    x = 1.0 - torch.cat(xs)
    x = (x - x.mean()) / x.std()
    device = device or torch.device("cpu")
    return FewShotData(x.to(device), torch.cat(ys).to(device), tuple(f"char {i}" for i in range(offset)),
                       split[0], split[1], "Omniglot (torchvision)")


def split_table(data: FewShotData) -> list[dict]:
    """Rows {'class', 'split'} for a table of which classes train and which test."""
    return ([{"class": data.names[c], "split": "train"} for c in data.train_classes]
            + [{"class": data.names[c], "split": "test"} for c in data.test_classes])


# --------------------------------------------------------------------------------------
# Episodes
# --------------------------------------------------------------------------------------

@dataclass
class Episodes:
    """A batch of E episodes, as indices into the sampler's image pool.

    support: (E, N, K) image indices; query: (E, M) with M = N·Q; query_labels: (E, M) in 0..N-1
    (the position of the class in the episode); classes: (E, N) the original class ids.
    """
    support: torch.Tensor
    query: torch.Tensor
    query_labels: torch.Tensor
    classes: torch.Tensor

    @property
    def shape(self) -> tuple[int, int, int, int]:
        e, n, k = self.support.shape
        return e, n, k, self.query.shape[1] // n


class EpisodeSampler:
    """Draws batches of N-way K-shot episodes from ``classes`` of ``data`` with tensor ops only.

    The pool is held as a per-class index table (C, M_max) padded with -1 plus the count per
    class, on the data's device. ``sample`` needs no Python loop over episodes or images.
    """

    def __init__(self, data: FewShotData, split: str):
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        self.data, self.split = data, split
        self.classes = torch.as_tensor(data.train_classes if split == "train" else data.test_classes,
                                       device=data.y.device)
        members = [torch.nonzero(data.y == c).flatten() for c in self.classes.tolist()]   # once, at set-up
        self.counts = torch.tensor([len(m) for m in members], device=data.y.device)
        if int(self.counts.min()) == 0:
            empty = [data.names[c] for c, n in zip(self.classes.tolist(), self.counts.tolist()) if n == 0]
            raise ValueError(f"{split} classes without images: {', '.join(empty)}")
        self.table = torch.full((len(members), int(self.counts.max())), -1, dtype=torch.long, device=data.y.device)
        for i, m in enumerate(members):
            self.table[i, :len(m)] = m
        self.valid = self.table >= 0                                          # (C, M_max)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def check(self, n_way: int, k_shot: int, n_query: int) -> None:
        check_positive_ints(n_way=n_way, k_shot=k_shot, n_query=n_query)
        if n_way > self.n_classes:
            raise ValueError(f"n_way={n_way} but the {self.split} split has only {self.n_classes} classes; "
                             f"use n_way <= {self.n_classes} or add classes to the {self.split} split")
        smallest = int(self.counts.min())
        if k_shot + n_query > smallest:
            raise ValueError(f"k_shot + n_query = {k_shot + n_query} images per class, but the smallest "
                             f"{self.split} class has {smallest}; lower k_shot or n_query")

    def sample(self, n_episodes: int, n_way: int, k_shot: int, n_query: int,
               generator: Optional[torch.Generator] = None) -> Episodes:
        """E = ``n_episodes`` episodes; a seeded ``generator`` (on the data's device) repeats them."""
        self.check(n_way, k_shot, n_query)
        check_positive_ints(n_episodes=n_episodes)
        dev = self.table.device
        pick = torch.rand(n_episodes, self.n_classes, generator=generator, device=dev).argsort(-1)[:, :n_way]  # (E, N)
        r = torch.rand(n_episodes, n_way, self.table.shape[1], generator=generator, device=dev)
        r = r.masked_fill(~self.valid[pick], -1.0)                           # padding is never chosen
        slot = r.topk(k_shot + n_query, dim=-1).indices                      # (E, N, K+Q) distinct images
        idx = torch.gather(self.table[pick], 2, slot)                        # pool indices
        labels = torch.arange(n_way, device=dev).repeat_interleave(n_query).expand(n_episodes, -1)
        return Episodes(support=idx[..., :k_shot], query=idx[..., k_shot:].flatten(1),
                        query_labels=labels.contiguous(), classes=self.classes[pick])

    def images(self, ep: Episodes) -> tuple[torch.Tensor, torch.Tensor]:
        """support images (E, N, K, C, H, W) and query images (E, M, C, H, W)."""
        return self.data.x[ep.support], self.data.x[ep.query]


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------
# Training and evaluation
# --------------------------------------------------------------------------------------

def train_episodic(model: _EpisodicModel, sampler: EpisodeSampler, *, steps: int, n_way: int = 5,
                   shots: Sequence[int] = (1, 5), n_query: int = 5, episodes: int = 8, lr: float = 1e-3,
                   seed: int = 0) -> list[float]:
    """Train on batches of ``episodes`` episodes; the shot cycles through ``shots`` step by step.

    Episodic models minimise the query cross-entropy. :class:`FineTune` sees exactly the same
    images and minimises ordinary cross-entropy over the training classes (same budget).
    Returns the loss per step.
    """
    check_positive_ints(steps=steps, episodes=episodes)
    dev = sampler.table.device
    g = torch.Generator(device=dev).manual_seed(seed)
    opt = make_optimizer("adam", model.parameters(), lr)
    label_of = torch.full((len(sampler.data.names),), -1, dtype=torch.long, device=dev)
    label_of[sampler.classes] = torch.arange(sampler.n_classes, device=dev)
    losses = []
    model.train()
    for step in range(steps):
        ep = sampler.sample(episodes, n_way, shots[step % len(shots)], n_query, generator=g)
        sup, qry = sampler.images(ep)
        if isinstance(model, FineTune):
            x = torch.cat([sup.flatten(0, 2), qry.flatten(0, 1)])
            y = label_of[sampler.data.y[torch.cat([ep.support.flatten(), ep.query.flatten()])]]
            loss = model.pretrain_loss(x, y)
        else:
            loss = F.cross_entropy(model(sup, qry).flatten(0, 1), ep.query_labels.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    return torch.stack(losses).tolist()


@torch.no_grad()
def evaluate(model: _EpisodicModel, sampler: EpisodeSampler, *, n_episodes: int = 600, n_way: int = 5,
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


def mean_ci(acc: torch.Tensor) -> tuple[float, float]:
    """Mean and the half-width of its 95 % confidence interval, 1.96·std/√n."""
    acc = torch.as_tensor(acc, dtype=torch.float64)
    if acc.numel() < 2:
        raise ValueError("mean_ci needs at least two episodes")
    return float(acc.mean()), float(1.96 * acc.std() / math.sqrt(acc.numel()))

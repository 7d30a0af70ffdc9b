"""Task streams: permuted-MNIST tasks for continual learning and N-way K-shot episodes for few-shot learning.

Permuted MNIST (:class:`PermutedTasks`): task t permutes the pixels with a fixed permutation of its own;
the continual-learning chapter trains one task after another on them.

:class:`EpisodeSampler` draws batches of episodes as tensor ops on the data's device: a per-class
index table, ``torch.rand(...).argsort`` to pick the N classes of every episode and
``torch.rand(...).topk`` to pick K+Q distinct images per class (no Python loop over episodes).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from ..checks import MAX_SEED, check_int, check_positive_ints, check_shape
from .download import DataUnavailable
from .images import load_fashion_mnist, load_mnist

__all__ = ["PermutedTasks", "MNIST_FASHION_NAMES", "MNIST_FASHION_TRAIN", "MNIST_FASHION_TEST", "FewShotData",
           "load_mnist_fashion", "load_omniglot", "Episodes", "EpisodeSampler"]


class PermutedTasks:
    """T tasks made from one image set: task t sees every image with its pixels permuted by π_t.

    Task 0 uses the identity permutation.  Images are flattened once, kept on their device,
    and permuted on the fly by indexing (no copies per task).
    """

    def __init__(self, data, n_tasks: int, seed: int = 0, n_train: Optional[int] = None,
                 n_test: Optional[int] = None):
        check_positive_ints(n_tasks=n_tasks)
        check_int(n_train=n_train, n_test=n_test, lo=1, optional=True)     # -1 would drop the last image
        check_int(seed=seed, lo=0, hi=MAX_SEED)
        missing = [a for a in ("x_train", "y_train", "x_test", "y_test")
                   if not isinstance(getattr(data, a, None), torch.Tensor)]
        if missing:
            raise ValueError(f"data must hold image tensors x_train, y_train, x_test, y_test (an ImageData); "
                             f"{type(data).__name__} lacks {', '.join(missing)}")
        self.name = getattr(data, "name", "images")
        self.describe_data = data.describe() if hasattr(data, "describe") else self.name
        self.n_tasks = n_tasks
        self.x_train = data.x_train[:n_train].flatten(1)
        self.y_train = data.y_train[:n_train]
        self.x_test = data.x_test[:n_test].flatten(1)
        self.y_test = data.y_test[:n_test]
        n_in = self.x_train.shape[1]
        g = torch.Generator().manual_seed(seed)
        perms = [torch.arange(n_in)] + [torch.randperm(n_in, generator=g) for _ in range(n_tasks - 1)]
        self.perms = torch.stack(perms).to(self.x_train.device)            # (T, in)

    @property
    def n_in(self) -> int:
        return self.x_train.shape[1]

    def _task_index(self, task_id) -> int:
        """One task id as a Python int in 0..n_tasks-1 (a fractional or negative id is refused, not truncated)."""
        if isinstance(task_id, torch.Tensor) and task_id.dim() == 0 and not task_id.is_floating_point():
            task_id = int(task_id)
        if isinstance(task_id, bool) or not isinstance(task_id, (int, np.integer)):
            raise ValueError(f"task id must be one integer in 0..{self.n_tasks - 1}, got {task_id!r}")
        if not 0 <= task_id < self.n_tasks:
            raise ValueError(f"task id {task_id} is out of range: these tasks are numbered 0..{self.n_tasks - 1}")
        return int(task_id)

    def describe(self) -> str:
        return (f"permuted {self.describe_data}; {self.n_tasks} tasks, {len(self.y_train):,} train / "
                f"{len(self.y_test):,} test images per task")

    def permute(self, x: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """x (T', B, in) or (B, in) with one id -> permuted pixels, same shape."""
        n_in = self.perms.shape[1]
        if not isinstance(x, torch.Tensor) or x.dim() not in (2, 3) or x.shape[-1] != n_in:
            check_shape("x", x, ("B", n_in), fix=f"flattened images of {n_in} pixels, (B, {n_in}) with one task id "
                                                 f"or (T', B, {n_in}) with T' ids")
        if x.dim() == 2:
            return x[:, self.perms[self._task_index(task_ids)]]
        if not isinstance(task_ids, torch.Tensor) or task_ids.shape != (x.shape[0],) or task_ids.is_floating_point():
            check_shape("task_ids", task_ids, (x.shape[0],), floating=False,
                        fix=f"one integer task id per leading index of x (T'={x.shape[0]})")
        if task_ids.device.type == "cpu" and task_ids.numel() and (task_ids.min() < 0 or task_ids.max() >= self.n_tasks):
            raise ValueError(f"task_ids must be in 0..{self.n_tasks - 1}, got {task_ids.tolist()}")
        return torch.gather(x, 2, self.perms[task_ids].unsqueeze(1).expand_as(x))


_FASHION = ("T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
            "ankle boot")


#: the 20 classes of the offline default: 0-9 the MNIST digits, 10-19 the Fashion-MNIST garments.
MNIST_FASHION_NAMES = tuple(f"digit {d}" for d in range(10)) + _FASHION


#: training classes: digits 0-4 and five garments (one of each kind of shape: top, trouser, dress, shoe, bag).
MNIST_FASHION_TRAIN = (0, 1, 2, 3, 4, 10, 11, 13, 15, 18)


#: test classes, never seen in training: digits 5-9 and the other five garments.
MNIST_FASHION_TEST = (5, 6, 7, 8, 9, 12, 14, 16, 17, 19)


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

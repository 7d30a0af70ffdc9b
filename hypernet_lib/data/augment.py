"""Batching and augmentation as batched tensor operations on the device."""
from __future__ import annotations

import math
from typing import Iterator, Optional

import torch
import torch.nn.functional as F

from ..checks import check_float, check_int

__all__ = ["batch_indices", "random_crop", "random_flip", "make_augment"]


def batch_indices(n: int, batch_size: int, shuffle: bool = True, generator: Optional[torch.Generator] = None,
                  device=None, drop_last: bool = False) -> Iterator[torch.Tensor]:
    """Yield index tensors covering range(n) in batches (a random permutation when ``shuffle``)."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    order = order.to(device) if device is not None else order
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size]


def _rand(shape, high, generator, device):
    return torch.randint(0, high, shape, generator=generator).to(device)


def random_crop(x: torch.Tensor, padding: int, generator: Optional[torch.Generator] = None,
                fill: Optional[float] = None) -> torch.Tensor:
    """Pad by ``padding`` and crop back to the original size at a random offset per image.

    x: (B, C, H, W) -> (B, C, H, W).  One gather for the whole batch, no loop over images
    (the paper's MNIST set-up is padding=1: 30×30, then a random 28×28 crop).

    Why not ``torchvision.transforms.v2.RandomCrop``: applied to a batch tensor it draws ONE crop
    offset for the whole batch (every image shifted the same way), which is a much weaker augmentation;
    per image it needs a Python loop or a DataLoader.  Here every image gets its own offset
    (tests/data/test_loaders.py shows the difference).
    ``fill`` is the padding value; by default the batch minimum, which is the background of
    normalised MNIST-like images and black for normalised CIFAR images.
    """
    if x.dim() != 4:
        raise ValueError(f"random_crop expects (B, C, H, W), got {tuple(x.shape)}")
    if padding == 0:
        return x
    b, c, h, w = x.shape
    if fill is None:
        fill = float(x.amin()) if x.numel() else 0.0
    padded = torch.nn.functional.pad(x, (padding,) * 4, value=fill)
    oy = _rand((b, 1), 2 * padding + 1, generator, x.device)
    ox = _rand((b, 1), 2 * padding + 1, generator, x.device)
    rows = (oy + torch.arange(h, device=x.device))[:, None, :, None]        # (B, 1, H, 1)
    cols = (ox + torch.arange(w, device=x.device))[:, None, None, :]        # (B, 1, 1, W)
    bi = torch.arange(b, device=x.device)[:, None, None, None]
    ci = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[bi, ci, rows, cols]


def random_flip(x: torch.Tensor, generator: Optional[torch.Generator] = None, p: float = 0.5) -> torch.Tensor:
    """Flip each image horizontally with probability p, drawn per image.  x: (B, C, H, W).
    (``transforms.v2.RandomHorizontalFlip`` on a batch tensor flips all images or none.)"""
    mask = (torch.rand(x.shape[0], generator=generator) < p).to(x.device)
    return torch.where(mask[:, None, None, None], x.flip(-1), x)


# ----------------------------------------------------------------------------- training helpers
def make_augment(crop: int = 4, flip: bool = True, rotate: float = 0.0, jitter: float = 0.0,
                 erase: float = 0.0):
    """A batched augmentation ``(x, generator) -> x`` for (B, C, H, W) tensors on any device.

    crop: pad-and-crop padding (4 = 36×36 → 32×32, the paper's CIFAR set-up); flip: horizontal flip.
    Extras, off by default: ``rotate`` (max degrees, one affine warp for the batch),
    ``jitter`` (brightness/contrast: per-image scale 1±jitter and shift ±jitter, in normalised units),
    ``erase`` (probability of blanking one random rectangle of up to 1/4 of the image, per image).
    No Python loop over images.
    """

    check_int(crop=crop, lo=0)
    check_float(rotate=rotate, jitter=jitter, lo=0.0)
    check_float(erase=erase, lo=0.0, hi=1.0)

    def augment(x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        b, dev = x.shape[0], x.device
        rnd = lambda *shape: torch.rand(*shape, generator=generator).to(dev)
        if crop:
            x = random_crop(x, crop, generator)
        if flip:
            x = random_flip(x, generator)
        if rotate:
            a = (rnd(b) * 2 - 1) * math.radians(rotate)
            cos, sin, zero = torch.cos(a), torch.sin(a), torch.zeros_like(a)
            theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
            grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
        if jitter:
            scale = 1 + (rnd(b, 1, 1, 1) * 2 - 1) * jitter
            shift = (rnd(b, 1, 1, 1) * 2 - 1) * jitter
            x = x * scale + shift
        if erase:
            h, w = x.shape[-2:]
            eh, ew = (rnd(b) * h / 2).long() + 1, (rnd(b) * w / 2).long() + 1
            y0, x0 = (rnd(b) * (h - eh + 1)).long(), (rnd(b) * (w - ew + 1)).long()
            rows, cols = torch.arange(h, device=dev), torch.arange(w, device=dev)
            inside = (((rows[None] >= y0[:, None]) & (rows[None] < (y0 + eh)[:, None]))[:, :, None] &
                      ((cols[None] >= x0[:, None]) & (cols[None] < (x0 + ew)[:, None]))[:, None, :])
            on = (rnd(b) < erase)[:, None, None]
            x = x.masked_fill((inside & on)[:, None], 0.0)
        return x

    return augment

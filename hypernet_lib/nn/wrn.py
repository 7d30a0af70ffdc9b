"""Wide residual networks (Zagoruyko & Komodakis, 2016), plain or with every 3x3 kernel generated (paper §4.2).

The paper's CIFAR-10 Wide ResNet 40-1 and its hyper version (:func:`build_wrn`), with Table 2's
0.563 M / 0.097 M parameters; every 3×3 kernel of the hyper version is assembled from tiles that one
generator makes (:mod:`hypernet_lib.nn.tiling`).
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import check_int, check_shape
from .generator import HyperConvGenerator
from .tiling import kernel_from_tiles, tile_grid, tiles_by_layer
from .weights import check_weights

__all__ = ["wrn_blocks_per_group", "wrn_widths", "wrn_blocks", "wrn_kernel_shapes", "WideResNet", "build_wrn"]


# ------------------------------------------------------------------------------- Wide ResNets (§4.2)
def wrn_blocks_per_group(depth: int, width: int = 1) -> int:
    """n, the blocks in each of the three groups of a WRN-depth-width (depth = 6n + 4, n >= 1).
    A depth or width that names no WRN raises a ValueError naming it."""
    check_int(depth=depth, width=width, lo=1)
    if (depth - 4) % 6 or depth < 10:
        raise ValueError(f"WRN depth must be 6n+4 with n >= 1 (e.g. 10, 16, 28, 40), got {depth}")
    return (depth - 4) // 6


def wrn_widths(width: int = 1) -> List[int]:
    """Channels of conv1 and of the three groups of a WRN-*-width: [16, 16·width, 32·width, 64·width]."""
    check_int(width=width, lo=1)
    return [16, 16 * width, 32 * width, 64 * width]


def wrn_blocks(depth: int = 40, width: int = 1) -> List[tuple[int, int, int]]:
    """(in_channels, out_channels, stride) of every residual block of a WRN-depth-width, in order: three
    groups of n blocks; a group's first block takes the group's width, and in groups 2 and 3 halves H, W."""
    n = wrn_blocks_per_group(depth, width)
    widths = wrn_widths(width)
    blocks, in_c = [], widths[0]
    for g in range(3):
        for b in range(n):
            out_c = widths[g + 1]
            blocks.append((in_c, out_c, 2 if g > 0 and b == 0 else 1))
            in_c = out_c
    return blocks


def wrn_kernel_shapes(depth: int = 40, width: int = 1) -> List[tuple[int, int]]:
    """(out, in) of the 3×3 kernels in groups conv2-conv4 of a WRN-depth-width (in order), two per block."""
    return [shape for i, o, _ in wrn_blocks(depth, width) for shape in ((o, i), (o, o))]


class _TiledKernels(nn.Module):
    """All the generated conv kernels of a hyper WRN: per-chunk embeddings (n_chunks, N_z) and one
    shared generator; ``forward()`` makes every kernel from one batched generator call."""

    def __init__(self, shapes: Sequence[tuple], n_z: int = 64, d: Optional[int] = None, tile: int = 16, f: int = 3):
        super().__init__()
        self.generator = HyperConvGenerator(f, tile, tile, n_z, d)
        self.grids = [tile_grid(out_c, in_c, tile, tile) for out_c, in_c in shapes]     # exact: §3.1
        self.n_chunks = sum(r * c for r, c in self.grids)
        self.z = nn.Parameter(torch.randn(self.n_chunks, n_z))

    def forward(self) -> List[torch.Tensor]:
        k = self.generator(self.z)   # Eq. 2, all chunks (n_chunks, 16, 16, 3, 3)
        # §3.1 tiling: each kernel's (R, C) chunks, one reshape per kernel
        return [kernel_from_tiles(t) for t in tiles_by_layer(k, self.grids)]


class _WRNBlock(nn.Module):
    """Pre-activation basic block: BN-ReLU-conv3×3-BN-ReLU-conv3×3, 1×1 shortcut when channels change.
    Conv kernels are passed in (ordinary or generated), so the block has no conv weights of its own."""

    def __init__(self, in_c: int, out_c: int, stride: int):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(in_c), nn.BatchNorm2d(out_c)
        self.stride = stride
        self.shortcut = (nn.Conv2d(in_c, out_c, 1, stride=stride, bias=False)
                         if (in_c != out_c or stride != 1) else None)

    def forward(self, x, w1, w2):
        o = F.relu(self.bn1(x))
        y = F.conv2d(o, w1, stride=self.stride, padding=1)
        y = F.conv2d(F.relu(self.bn2(y)), w2, padding=1)
        return y + (self.shortcut(o) if self.shortcut is not None else x)


class WideResNet(nn.Module):
    """WRN-depth-width (Zagoruyko & Komodakis, 2016) for 32×32 images; ``hyper=True`` generates the
    3·2·n block kernels (36 for depth 40) from 16×16×3×3 chunks of one generator (N_z = d = 64), as in
    Ha et al. §4.2; conv1, batch norm, 1×1 shortcuts and the final FC stay ordinary.
    ``n_z``, ``d`` (default N_z) and ``tile`` (chunks of tile×tile×3×3) set up the generator.

    ``param_shapes`` = {"block{j}.conv{k}": (out, in, 3, 3)}: the block kernels, which
    ``forward(x, weights)`` takes from outside (:mod:`hypernet_lib.nn.weights`)."""

    def __init__(self, depth: int = 40, width: int = 1, hyper: bool = False, num_classes: int = 10,
                 n_z: int = 64, d: Optional[int] = None, tile: int = 16):
        super().__init__()
        blocks = wrn_blocks(depth, width)                     # (in, out, stride) per block
        check_int(num_classes=num_classes, n_z=n_z, tile=tile, lo=1)
        check_int(d=d, lo=1, optional=True)
        widths, shapes = wrn_widths(width), wrn_kernel_shapes(depth, width)
        self.conv1 = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)
        self.blocks = nn.ModuleList(_WRNBlock(in_c, out_c, stride) for in_c, out_c, stride in blocks)
        self.bn = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], num_classes)
        self.hyper = hyper
        self.param_shapes = {f"block{j // 2}.conv{j % 2 + 1}": (o, i, 3, 3)   # 2 per block
                             for j, (o, i) in enumerate(shapes)}
        if hyper:
            self.kernels = _TiledKernels(shapes, n_z=n_z, d=d, tile=tile)
        else:
            self.kernels = nn.ParameterList(
                [nn.Parameter(torch.randn(o, i, 3, 3) * math.sqrt(2.0 / (9 * i))) for o, i in shapes])

    def all_kernels(self) -> List[torch.Tensor]:
        return self.kernels() if self.hyper else list(self.kernels)

    def forward(self, x: torch.Tensor,
                weights: Optional[Dict[str, torch.Tensor]] = None):
        """x (B, 3, H, W) -> logits; ``weights``: {name: kernel} used instead."""
        check_shape("x", x, ("B", 3, "H", "W"), floating=True,
                    fix="colour images (B, 3, H, W), e.g. 32×32")
        given = check_weights(weights, self.param_shapes, "WideResNet")
        ks = self.all_kernels()              # generated (Eq. 2, §3.1) or ordinary
        ks = [given.get(n, k) for n, k in zip(self.param_shapes, ks)]
        x = self.conv1(x)
        for i, blk in enumerate(self.blocks):
            x = blk(x, ks[2 * i], ks[2 * i + 1])
        x = F.relu(self.bn(x)).mean(dim=(2, 3))
        return self.fc(x)


def build_wrn(depth: int = 40, width: int = 1, hyper: bool = False, num_classes: int = 10) -> WideResNet:
    """``build_wrn(40, 1)`` — 0.563 M in Ha et al.'s Table 2; ``build_wrn(40, 1, hyper=True)`` — 0.097 M."""
    return WideResNet(depth, width, hyper, num_classes)

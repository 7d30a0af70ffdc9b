"""Wide residual networks (Zagoruyko & Komodakis, 2016), plain or with every 3x3 kernel generated (paper §4.2)."""
from __future__ import annotations

import math
from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import check_int, check_shape
from .tiling import _TiledKernels

__all__ = ["wrn_blocks_per_group", "WideResNet", "build_wrn"]


# ------------------------------------------------------------------------------- Wide ResNets (§4.2)
def wrn_blocks_per_group(depth: int, width: int = 1) -> int:
    """n, the blocks in each of the three groups of a WRN-depth-width (depth = 6n + 4, n >= 1).
    A depth or width that names no WRN raises a ValueError naming it."""
    check_int(depth=depth, width=width, lo=1)
    if (depth - 4) % 6 or depth < 10:
        raise ValueError(f"WRN depth must be 6n+4 with n >= 1 (e.g. 10, 16, 28, 40), got {depth}")
    return (depth - 4) // 6


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
    Ha et al. §4.2; conv1, batch norm, 1×1 shortcuts and the final FC stay ordinary."""

    def __init__(self, depth: int = 40, width: int = 1, hyper: bool = False, num_classes: int = 10,
                 n_z: int = 64):
        super().__init__()
        n = wrn_blocks_per_group(depth, width)
        check_int(num_classes=num_classes, n_z=n_z, lo=1)
        widths = [16, 16 * width, 32 * width, 64 * width]
        self.conv1 = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)
        blocks, shapes, in_c = [], [], widths[0]
        for g in range(3):
            for b in range(n):
                out_c, stride = widths[g + 1], (2 if g > 0 and b == 0 else 1)
                blocks.append(_WRNBlock(in_c, out_c, stride))
                shapes += [(out_c, in_c), (out_c, out_c)]
                in_c = out_c
        self.blocks = nn.ModuleList(blocks)
        self.bn = nn.BatchNorm2d(in_c)
        self.fc = nn.Linear(in_c, num_classes)
        self.hyper = hyper
        if hyper:
            self.kernels = _TiledKernels(shapes, n_z=n_z)
        else:
            self.kernels = nn.ParameterList(
                [nn.Parameter(torch.randn(o, i, 3, 3) * math.sqrt(2.0 / (9 * i))) for o, i in shapes])

    def all_kernels(self) -> List[torch.Tensor]:
        return self.kernels() if self.hyper else list(self.kernels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_shape("x", x, ("B", 3, "H", "W"), floating=True, fix="colour images (B, 3, H, W), e.g. 32×32")
        ks = self.all_kernels()
        x = self.conv1(x)
        for i, blk in enumerate(self.blocks):
            x = blk(x, ks[2 * i], ks[2 * i + 1])
        x = F.relu(self.bn(x)).mean(dim=(2, 3))
        return self.fc(x)


def build_wrn(depth: int = 40, width: int = 1, hyper: bool = False, num_classes: int = 10) -> WideResNet:
    """``build_wrn(40, 1)`` — 0.563 M in Ha et al.'s Table 2; ``build_wrn(40, 1, hyper=True)`` — 0.097 M."""
    return WideResNet(depth, width, hyper, num_classes)

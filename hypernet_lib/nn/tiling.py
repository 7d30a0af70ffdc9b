"""Tiling: how one generator's N_out x N_in x f x f tiles are laid out to build a bigger kernel."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, List, Optional, Sequence

import torch
import torch.nn as nn

from ..checks import check_positive_ints, check_shape
from .generator import HyperConvGenerator

if TYPE_CHECKING:
    from .cifar import LayerSpec

__all__ = ["tile_grid", "kernel_from_tiles", "TiledConvEmbeddings"]


def tile_grid(out_channels: int, in_channels: int, n_out: int, n_in: int) -> tuple[int, int]:
    """(R, C): how many n_out×n_in basic kernels tile an out_channels×in_channels kernel."""
    check_positive_ints(out_channels=out_channels, in_channels=in_channels, n_out=n_out, n_in=n_in)
    if out_channels % n_out or in_channels % n_in:
        raise ValueError(
            f"a kernel of {in_channels}→{out_channels} channels cannot be tiled by {n_in}→{n_out} basic kernels: "
            f"both channel counts must be multiples of the basic kernel's ({n_in}→{n_out})")
    return out_channels // n_out, in_channels // n_in


def kernel_from_tiles(tiles: torch.Tensor) -> torch.Tensor:
    """Assemble a large kernel from a grid of basic kernels (paper §3.1, ResNets).

    tiles: (R, C, n_out, n_in, f, f) -- R tiles along output channels, C along input.
    returns: (R·n_out, C·n_in, f, f).  One reshape, no loop.
    """
    if not isinstance(tiles, torch.Tensor) or tiles.dim() != 6:
        check_shape("tiles", tiles, ("R", "C", "n_out", "n_in", "f", "f"))     # raises: not 6-D
    r, c, o, i, kh, kw = tiles.shape
    return tiles.permute(0, 2, 1, 3, 4, 5).reshape(r * o, c * i, kh, kw)


class TiledConvEmbeddings(nn.Module):
    """The embeddings z of one layer whose kernel is tiled from basic kernels.

    A kernel of N_out'×N_in' channels made of basic n_out×n_in kernels needs
    (N_out'/n_out)·(N_in'/n_in) embeddings (e.g. 32→64 with 16×16 tiles: 8).
    """

    def __init__(self, out_channels: int, in_channels: int, n_out: int, n_in: int, n_z: int,
                 std: float = 1.0):
        super().__init__()
        self.grid = tile_grid(out_channels, in_channels, n_out, n_in)
        check_positive_ints(n_z=n_z)
        self.n_out, self.n_in = n_out, n_in
        self.z = nn.Parameter(torch.randn(*self.grid, n_z) * std)

    def forward(self, generator: HyperConvGenerator) -> torch.Tensor:
        if not isinstance(generator, HyperConvGenerator):
            raise ValueError(f"generator must be a HyperConvGenerator, got {type(generator).__name__}")
        if (generator.n_out, generator.n_in) != (self.n_out, self.n_in):
            raise ValueError(f"generator makes {generator.n_in}→{generator.n_out} basic kernels, but these embeddings "
                             f"tile the kernel with {self.n_in}→{self.n_out} ones; pass a generator built with "
                             f"n_in={self.n_in}, n_out={self.n_out}")
        return kernel_from_tiles(generator(self.z))


def _tile_grid(spec: LayerSpec, n_out: int, n_in: int, f: int) -> tuple:
    """How many chunks a layer needs: (R, C). Conv: tiles of n_out×n_in channels (ceil, then crop).
    FC: the chunk read as the paper's 2-D kernel matrix, (n_out·f) × (n_in·f) = 48×48 blocks."""
    if spec.kind == "conv":
        if spec.f != f:
            raise ValueError(f"{spec.name} has a {spec.f}×{spec.f} kernel but the generator makes {f}×{f} chunks")
        return math.ceil(spec.out_features / n_out), math.ceil(spec.in_features / n_in)
    return math.ceil(spec.out_features / (n_out * f)), math.ceil(spec.in_features / (n_in * f))


def _assemble(spec: LayerSpec, tiles: torch.Tensor, grid: tuple) -> torch.Tensor:
    """tiles (R·C, n_out, n_in, f, f) -> the layer's weight, cropped to spec.shape."""
    r, c = grid
    _, o, i, f, _ = tiles.shape
    t = tiles.view(r, c, o, i, f, f)          # chunk k sits at row k // C, column k % C
    if spec.kind == "conv":
        w = kernel_from_tiles(t)              # (R·n_out, C·n_in, f, f): the tiling of §3.1
    else:                                     # FC: each chunk read as an (o·f) × (i·f) matrix
        w = t.permute(0, 2, 4, 1, 3, 5).reshape(r * o * f, c * i * f)
    return w[:spec.out_features, :spec.in_features]     # crop to the layer's shape


class _TiledKernels(nn.Module):
    """All the generated conv kernels of a hyper WRN: per-chunk embeddings (n_chunks, N_z) and one
    shared generator; ``forward()`` makes every kernel from one batched generator call."""

    def __init__(self, shapes: Sequence[tuple], n_z: int = 64, d: Optional[int] = None, tile: int = 16, f: int = 3):
        super().__init__()
        self.generator = HyperConvGenerator(f, tile, tile, n_z, d)
        self.grids = []
        for out_c, in_c in shapes:
            self.grids.append(tile_grid(out_c, in_c, tile, tile))
        self.n_chunks = sum(r * c for r, c in self.grids)
        self.z = nn.Parameter(torch.randn(self.n_chunks, n_z))

    def forward(self) -> List[torch.Tensor]:
        k = self.generator(self.z)            # Eq. 2, every chunk: (n_chunks, 16, 16, 3, 3)
        out, o = [], 0
        for r, c in self.grids:               # one reshape per kernel (§3.1 tiling)
            out.append(kernel_from_tiles(k[o:o + r * c].view(r, c, *k.shape[1:])))
            o += r * c
        return out

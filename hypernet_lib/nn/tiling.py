"""Tiling (paper §3.1): how one generator's N_out×N_in×f×f chunks are laid out, and cropped, into a layer's weight.

The one tiling of the library; every tiled net uses it (the static nets through
:class:`TiledConvEmbeddings`, the CIFAR nets through ``ChunkedHyperWeights``, the hyper WRN):

* the grid, :func:`tile_grid` / :func:`layer_grid`: R×C chunks per layer, R along the output channels,
  C along the input channels.  Exact (the paper's ResNet tiling: channel counts are multiples of the
  chunk's) or, with ``crop=True``, rounded up and the assembled weight cropped (CIFAR's conv1 has 3
  inputs).  An FC weight is covered by (n_out·f)×(n_in·f) blocks: a chunk read as a 2-D kernel matrix.
* the split, :func:`tiles_by_layer`: one batched generator call makes the chunks of every layer,
  (n_chunks, N_out, N_in, f, f); layer j owns the next R_j·C_j of them, chunk r·C_j + c at (r, c).
* the assembly, :func:`kernel_from_tiles` (a conv kernel, one reshape) and ``_assemble`` (conv or FC,
  then the crop).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterable, List

import torch
import torch.nn as nn

from ..checks import check_bool, check_choice, check_positive_ints, check_shape
from .generator import HyperConvGenerator

if TYPE_CHECKING:
    from .cifar import LayerSpec

__all__ = ["tile_grid", "layer_grid", "tiles_by_layer", "kernel_from_tiles", "TiledConvEmbeddings"]


def tile_grid(out_channels: int, in_channels: int, n_out: int, n_in: int, crop: bool = False) -> tuple[int, int]:
    """(R, C): how many n_out×n_in basic kernels tile an out_channels×in_channels kernel.

    ``crop=False``, the paper's tiling (§3.1): both channel counts must be multiples of the basic
    kernel's, else a ValueError.  ``crop=True``: R = ⌈out_channels / n_out⌉, C = ⌈in_channels / n_in⌉,
    and the assembled kernel is cropped to out_channels×in_channels (``_assemble``).
    """
    check_positive_ints(out_channels=out_channels, in_channels=in_channels, n_out=n_out, n_in=n_in)
    check_bool(crop=crop)
    if crop:
        return math.ceil(out_channels / n_out), math.ceil(in_channels / n_in)
    if out_channels % n_out or in_channels % n_in:
        raise ValueError(
            f"a kernel of {in_channels}→{out_channels} channels cannot be tiled by {n_in}→{n_out} basic kernels: "
            f"both channel counts must be multiples of the basic kernel's ({n_in}→{n_out})")
    return out_channels // n_out, in_channels // n_in


def layer_grid(kind: str, out_features: int, in_features: int, n_out: int, n_in: int, f: int) -> tuple[int, int]:
    """(R, C): the n_out×n_in×f×f chunks that cover one layer's weight, cropped at the edge.

    ``"conv"`` (out, in, f, f): tiles of n_out×n_in channels.  ``"fc"`` (out, in): blocks of
    (n_out·f)×(n_in·f), each chunk read as a 2-D kernel matrix (48×48 for 16×16×3×3 chunks).
    """
    check_choice("kind", kind, ("conv", "fc"))
    check_positive_ints(f=f)
    if kind == "conv":
        return tile_grid(out_features, in_features, n_out, n_in, crop=True)
    return tile_grid(out_features, in_features, n_out * f, n_in * f, crop=True)


def tiles_by_layer(chunks: torch.Tensor, grids: Iterable[tuple[int, int]]) -> List[torch.Tensor]:
    """Split the chunks of several layers into each layer's grid (views, no copy).

    chunks: (n_chunks, n_out, n_in, f, f), layer after layer, as one batched generator call makes them.
    grids: (R_j, C_j) of every layer.  Returns, per layer, (R_j, C_j, n_out, n_in, f, f): layer j owns
    the next R_j·C_j chunks, its chunk r·C_j + c sits at row r, column c.
    """
    grids = list(grids)
    sizes = [r * c for r, c in grids]
    if not isinstance(chunks, torch.Tensor) or chunks.dim() != 5 or chunks.shape[0] != sum(sizes):
        check_shape("chunks", chunks, (sum(sizes), "n_out", "n_in", "f", "f"),
                    fix=f"the grids {grids} need {sum(sizes)} chunks")
    return [t.view(r, c, *chunks.shape[1:]) for t, (r, c) in zip(torch.split(chunks, sizes), grids)]


def kernel_from_tiles(tiles: torch.Tensor) -> torch.Tensor:
    """Assemble a large kernel from a grid of basic kernels (paper §3.1, ResNets).

    tiles: (R, C, n_out, n_in, f, f) -- R tiles along output channels, C along input.
    returns: (R·n_out, C·n_in, f, f).  One reshape, no loop.
    """
    if not isinstance(tiles, torch.Tensor) or tiles.dim() != 6:
        check_shape("tiles", tiles, ("R", "C", "n_out", "n_in", "f", "f"))     # raises: not 6-D
    r, c, o, i, kh, kw = tiles.shape
    return tiles.permute(0, 2, 1, 3, 4, 5).reshape(r * o, c * i, kh, kw)


def _tile_grid(spec: LayerSpec, n_out: int, n_in: int, f: int) -> tuple:
    """:func:`layer_grid` of a layer described by a ``LayerSpec``; a conv's kernel must be f×f, as the chunks."""
    if spec.kind == "conv" and spec.f != f:
        raise ValueError(f"{spec.name} has a {spec.f}×{spec.f} kernel but the generator makes {f}×{f} chunks")
    return layer_grid(spec.kind, spec.out_features, spec.in_features, n_out, n_in, f)


def _assemble(spec: LayerSpec, tiles: torch.Tensor) -> torch.Tensor:
    """tiles (R, C, n_out, n_in, f, f), one layer's grid -> the layer's weight, cropped to spec.shape."""
    r, c, o, i, f, _ = tiles.shape
    if spec.kind == "conv":
        w = kernel_from_tiles(tiles)          # (R·n_out, C·n_in, f, f): the tiling of §3.1
    else:                                     # FC: each chunk read as an (o·f) × (i·f) matrix
        w = tiles.permute(0, 2, 4, 1, 3, 5).reshape(r * o * f, c * i * f)
    return w[:spec.out_features, :spec.in_features]     # crop to the layer's shape


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

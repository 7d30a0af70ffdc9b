"""The tiling grid of Ha et al. §3.1: a large conv kernel assembled from basic tiles, one z each.

    from hypernet_lib.book.diagrams.tiling import draw_tiling
    draw_tiling()                     # a 32→64 kernel made of eight 16×16 tiles

Each tile is one output of the shared generator, ``g(z_rc)``, a ``tile × tile × f × f`` kernel; the
layer's kernel is the R × C grid of them (R = n_out / tile along the output channels, C = n_in / tile
along the input channels). Chapters 3 and 4 draw it.
"""
from __future__ import annotations

import math

__all__ = ["draw_tiling"]


def draw_tiling(ax=None, n_out: int = 64, n_in: int = 32, tile: int = 16, f: int = 3):
    """Draw an ``n_in → n_out`` kernel as a grid of ``tile × tile`` tiles, each labelled with its
    embedding ``z_rc`` and the generator call that makes it. Returns the axes.

    Channel counts that are not multiples of ``tile`` are drawn with the last row/column of
    tiles cropped (hatched), as :class:`hypernet_lib.nn.cifar.ChunkedHyperWeights` crops them.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from ..style import color, figsize

    for name, v in (("n_out", n_out), ("n_in", n_in), ("tile", tile), ("f", f)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    rows, cols = math.ceil(n_out / tile), math.ceil(n_in / tile)
    if ax is None:
        _, ax = plt.subplots(figsize=figsize(min(4.2, 1.0 + 0.8 * rows)))
    face = color("chunked_full")
    for r in range(rows):
        for c in range(cols):
            x0, y0 = c * tile, r * tile
            w, h = min(tile, n_in - x0), min(tile, n_out - y0)
            ax.add_patch(Rectangle((x0, y0), tile, tile, facecolor="none", edgecolor="0.6",
                                   linestyle=":", linewidth=0.8))         # the tile as generated
            ax.add_patch(Rectangle((x0, y0), w, h, facecolor=face, alpha=0.25 + 0.5 * ((r + c) % 2),
                                   edgecolor="black", linewidth=1.0))     # the part the layer keeps
            k = r * cols + c
            ax.text(x0 + w / 2, y0 + h / 2, f"$g(z_{{{k}}})$\n{tile}×{tile}×{f}×{f}",
                    ha="center", va="center", fontsize=8.5)
    ax.add_patch(Rectangle((0, 0), n_in, n_out, facecolor="none", edgecolor="black", linewidth=2))
    ax.set_xlim(-0.5, cols * tile + 0.5)
    ax.set_ylim(rows * tile + 0.5, -0.5)                 # output channel 0 at the top, like a matrix
    ax.set_aspect("equal")
    ax.set_xticks([c * tile for c in range(cols + 1)] if n_in % tile == 0
                  else [c * tile for c in range(cols)] + [n_in])
    ax.set_yticks([r * tile for r in range(rows + 1)] if n_out % tile == 0
                  else [r * tile for r in range(rows)] + [n_out])
    ax.set_xlabel(f"input channel (N_in = {n_in})")
    ax.set_ylabel(f"output channel (N_out = {n_out})")
    ax.grid(False)
    ax.set_title(f"a {n_in}→{n_out} kernel = {rows}×{cols} tiles, one embedding z each")
    return ax

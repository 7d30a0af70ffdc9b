"""Eq. 2 of Ha, Dai & Le (2016) as a diagram, with the shape of every tensor.

    from hypernet_lib.book.diagrams.eq2 import draw_eq2
    fig = draw_eq2()                 # the MNIST sizes: f = 7, N_in = N_out = 16, N_z = d = 4

z goes through one small linear map per input slice i (a_i = W_i z + B_i), every a_i goes through
the same second map (K_i = <W_out, a_i> + B_out), and the slices K_i side by side are the kernel K.
Shapes are written with the paper's symbols and, after "=", with the numbers of the example.
"""
from __future__ import annotations

from functools import partial
from typing import Optional

from . import _draw
from ._draw import canvas

__all__ = ["draw_eq2"]

# fills: the generator's pieces in the hypernetwork's warm tones, the kernel in the main net's blue
_Z, _FIRST, _SHARED, _SLICE, _KERNEL = "#fde0c5", "#f9c58d", "#f4a261", "#cfe3f5", "#a9cbeb"


def draw_eq2(ax=None, f: int = 7, n_in: int = 16, n_out: int = 16, n_z: int = 4, d: Optional[int] = None):
    """Draw z → a_i (one per input slice) → K_i → K with every tensor's shape; return the figure.

    ``ax``: an axis to draw into (its figure is returned); by default a new figure one text
    column wide.  The numbers default to the MNIST hypernetwork of chapter 2 (d = N_z).
    """
    d = n_z if d is None else d
    fig, ax = canvas(ax, 4.0, 0.97, ylim=(-0.6, 5.4))
    box = partial(_draw.box, ax)
    arrow = partial(_draw.arrow, ax, scale=11, lw=1.1)

    rows = {"1": 3.75, "2": 2.55, "N_{in}": 0.55}             # the input slices drawn: 1, 2, ..., N_in
    h = 0.9
    # z
    box(0.05, 1.75, 1.15, 1.3, f"$z$\n$(N_z)$\n= ({n_z})", _Z)
    ax.text(0.625, 3.2, "learned\nembedding", ha="center", fontsize=9, color="0.3")
    # first layer: one (W_i, B_i) per input slice
    ax.text(2.8, 5.35, f"$W_i$: $(d, N_z)$ = ({d}, {n_z}),  $B_i$: $(d)$ = ({d})\none pair per slice i",
            ha="center", va="top", fontsize=9)
    for i, y in rows.items():
        box(1.85, y, 1.9, h, f"$a_{{{i}}} = W_{{{i}}} z + B_{{{i}}}$\n$(d)$ = ({d})", _FIRST)
        arrow((1.2, 2.4), (1.85, y + h / 2))
    ax.text(2.8, 1.78, "⋮", ha="center", va="center", fontsize=14)
    # second layer: one (W_out, B_out), shared by every slice
    box(4.35, 0.45, 1.6, 4.3 - 0.45 + 0.2,
        "$K_i =$\n$\\langle W_{out}, a_i \\rangle$\n$+\\ B_{out}$\n\nthe same\n$W_{out}, B_{out}$\nfor every $i$",
        _SHARED)
    ax.text(5.15, -0.05, f"$W_{{out}}$: $(f, N_{{out}} f, d)$ = ({f}, {n_out * f}, {d})\n"
            f"$B_{{out}}$: $(f, N_{{out}} f)$ = ({f}, {n_out * f})", ha="center", va="top", fontsize=9)
    # the slices K_i
    for i, y in rows.items():
        arrow((3.75, y + h / 2), (4.35, y + h / 2))
        box(6.5, y, 1.45, h, f"$K_{{{i}}}$: $(f, N_{{out}} f)$\n= ({f}, {n_out * f})", _SLICE)
        arrow((5.95, y + h / 2), (6.5, y + h / 2))
        arrow((7.95, y + h / 2), (8.5, 2.4))
    ax.text(7.225, 1.78, "⋮", ha="center", va="center", fontsize=14)
    # K: the slices side by side (Eq. 3)
    box(8.5, 1.55, 1.35, 1.7, f"$K$\n$(N_{{in}} f, N_{{out}} f)$\n= ({n_in * f}, {n_out * f})", _KERNEL)
    ax.text(9.175, 1.35, f"as a conv weight:\n$(N_{{out}}, N_{{in}}, f, f)$\n= ({n_out}, {n_in}, {f}, {f})",
            ha="center", va="top", fontsize=9)
    ax.text(9.175, 3.4, "side by side\n(Eq. 3)", ha="center", va="bottom", fontsize=9, color="0.3")
    return fig

"""The pieces every block diagram is drawn with: a blank canvas one text column wide, rounded boxes
with centred text, and straight or curved arrows, all in the book's style."""
from __future__ import annotations

__all__ = ["arrow", "box", "canvas"]


def canvas(ax, height: float, width: float, ylim: tuple, xlim: tuple = (0, 10)):
    """``ax`` (or a new axis on a figure ``width`` of the text column wide and ``height`` inches high)
    with the given limits and no axes drawn. Returns ``(fig, ax)``."""
    import matplotlib.pyplot as plt

    from .. import style

    if ax is None:
        _, ax = plt.subplots(figsize=style.figsize(height, width=width))
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_axis_off()
    return ax.figure, ax


def box(ax, x0, y0, w, h, text, fill, size=9, weight="normal"):
    """A rounded box with its lower-left corner at (x0, y0) and ``text`` centred in it."""
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x0, y0), w, h, boxstyle="round,pad=0.05", fc=fill, ec="0.3", lw=1.0))
    ax.text(x0 + w / 2, y0 + h / 2, text, ha="center", va="center", fontsize=size, linespacing=1.3,
            weight=weight)


def arrow(ax, p, q, color="0.25", style="-|>", rad=0.0, scale=10, lw=1.0):
    """An arrow from point ``p`` to point ``q``; ``rad`` bends it (matplotlib's arc3)."""
    from matplotlib.patches import FancyArrowPatch

    ax.add_patch(FancyArrowPatch(p, q, arrowstyle=style, mutation_scale=scale, color=color, lw=lw,
                                 shrinkA=1, shrinkB=1, connectionstyle=f"arc3,rad={rad}"))

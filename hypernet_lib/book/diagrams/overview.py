"""Chapter 1's picture of a hypernetwork: a small net that writes a big net's weights."""
from __future__ import annotations

import matplotlib.pyplot as plt

__all__ = ["draw_hypernetwork_diagram"]


def draw_hypernetwork_diagram(ax=None, dynamic: bool = False):
    """Draw the static (or dynamic) hypernetwork of Ha et al.: z -> g(z; φ) -> weights of f(x; θ).

    Boxes and arrows drawn with matplotlib patches; returns the axis.
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.2))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 4)
    ax.set_axis_off()

    def box(x, y, w, h, text, color):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.08", fc=color, ec="0.25", lw=1.2))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=10)

    def arrow(p, q, text=None, color="0.2", style="-|>"):
        ax.add_patch(FancyArrowPatch(p, q, arrowstyle=style, mutation_scale=14, color=color, lw=1.5))
        if text:
            ax.text((p[0] + q[0]) / 2, (p[1] + q[1]) / 2 + 0.18, text, ha="center", fontsize=9, color=color)

    # hypernetwork row
    if dynamic:
        box(0.2, 2.6, 1.6, 0.9, "$x_t,\\ h_{t-1}$", "#fde0c5")
        box(2.4, 2.6, 2.2, 0.9, "hyper LSTM cell\n$\\hat h_t \\to z_t$", "#f9c58d")
        arrow((1.8, 3.05), (2.4, 3.05))
        box(5.2, 2.6, 2.2, 0.9, "$d(z_t)$ scales\nthe rows of $W$", "#f4a261")
        arrow((4.6, 3.05), (5.2, 3.05))
    else:
        box(0.2, 2.6, 1.6, 0.9, "$z \\in \\mathbb{R}^{N_z}$\n(learned)", "#fde0c5")
        box(2.4, 2.6, 2.2, 0.9, "$a_i = W_i z + B_i$", "#f9c58d")
        arrow((1.8, 3.05), (2.4, 3.05))
        box(5.2, 2.6, 2.2, 0.9, "$K_i = \\langle W_{out}, a_i\\rangle$\n$+\\ B_{out}$", "#f4a261")
        arrow((4.6, 3.05), (5.2, 3.05))
    ax.text(3.8, 3.75, "hypernetwork $g(z; \\phi)$", ha="center", fontsize=11, weight="bold", color="#b5541c")
    # main network row
    box(0.2, 0.3, 1.6, 0.9, "input x", "#cfe3f5")
    box(2.4, 0.3, 2.2, 0.9, "layer 1", "#a9cbeb")
    box(5.2, 0.3, 2.2, 0.9, "layer 2\n(weights $\\theta$)", "#7fb0de")
    box(8.0, 0.3, 1.7, 0.9, "output $\\hat y$", "#cfe3f5")
    arrow((1.8, 0.75), (2.4, 0.75))
    arrow((4.6, 0.75), (5.2, 0.75))
    arrow((7.4, 0.75), (8.0, 0.75))
    ax.text(2.0, 1.45, "main network $f(x; \\theta)$", ha="center", fontsize=11, weight="bold", color="#1f4e79")
    arrow((6.3, 2.6), (6.3, 1.2), color="#b5541c")
    ax.text(6.45, 1.85, "$W_t = d(z_t) \\odot W$" if dynamic else "$\\theta = g(z; \\phi)$",
            ha="left", fontsize=10, color="#b5541c")
    return ax

"""The task-conditioned hypernetwork of chapter 6 as a block diagram.

    from hypernet_lib.book.diagrams.task_hypernet import draw_task_hypernet
    fig = draw_task_hypernet()

Top row (warm colours, the hypernetwork): a learned task embedding e_t and, with chunking, the
chunk embeddings c_k enter one shared MLP, whose output head emits chunk k of the main net's
parameters; the chunks, scaled by s_k and concatenated, are θ_t. Bottom row (blue, the main net):
the MLP f(x; θ_t) runs on the input x with exactly these weights and predicts ŷ.
"""
from __future__ import annotations

from functools import partial

from . import _draw
from ._draw import canvas

__all__ = ["draw_task_hypernet"]

_IN, _HYPER, _THETA, _MAIN = "#eeeeee", "#f9c58d", "#f4a261", "#cfe3f5"


def draw_task_hypernet(ax=None):
    """Draw e_t → hypernetwork h(·; Θ) → θ_t → main net f(x; θ_t) → ŷ. Returns the figure.

    ``ax``: an axis to draw into (its figure is returned); by default a new figure one text column wide.
    """
    fig, ax = canvas(ax, 3.3, 0.96, ylim=(0, 4.6))
    box = partial(_draw.box, ax)

    def arrow(p, q, text=None, color="0.25", dy=0.12):
        _draw.arrow(ax, p, q, color=color)
        if text:
            ax.text((p[0] + q[0]) / 2, (p[1] + q[1]) / 2 + dy, text, ha="center", va="bottom", fontsize=9,
                    color="0.3")

    # --- hypernetwork row
    box(0.05, 3.25, 1.75, 0.75, "task embedding\n$e_t \\in \\mathbb{R}^{N_z}$", _IN)
    box(0.05, 2.15, 1.75, 0.75, "chunk embeddings\n$c_k \\in \\mathbb{R}^{n_c}$", _IN)
    box(2.35, 2.45, 3.0, 1.25, "hypernetwork $h(\\cdot;\\Theta)$\n"
        "$\\mathrm{head}(\\mathrm{ReLU}(W_1[e_t; c_k] + b_1))$\nall chunks $k$ in one call", _HYPER)
    arrow((1.8, 3.62), (2.35, 3.3))
    arrow((1.8, 2.52), (2.35, 2.85))
    box(5.9, 2.6, 4.0, 0.95, "$\\theta_t = [s_1 \\cdot \\mathrm{chunk}_1, \\ldots, "
        "s_K \\cdot \\mathrm{chunk}_K]$\n$P$ numbers: $W_1, b_1, W_2, \\ldots$", _THETA)
    arrow((5.35, 3.07), (5.9, 3.07))
    # --- main-net row
    box(0.05, 0.35, 1.75, 0.75, "input $x$\n(784 pixels)", _IN)
    box(2.35, 0.25, 5.85, 0.95, "main net $f(x;\\theta_t)$: MLP 784–100–100–10, ReLU\n"
        "no weights of its own: MainMLP.forward(x, theta)", _MAIN)
    box(8.55, 0.35, 1.35, 0.75, "prediction\n$\\hat y$", _IN)
    arrow((1.8, 0.72), (2.35, 0.72))
    arrow((8.2, 0.72), (8.55, 0.72))
    arrow((7.9, 2.6), (7.9, 1.2))
    ax.text(8.0, 1.9, "weights $\\theta_t$", ha="left", va="center", fontsize=9, color="0.3")
    ax.text(0.05, 4.45, "hypernetwork: one per model, shared by all tasks", ha="left", va="top", fontsize=9,
            weight="bold", color="#b5541c")
    ax.text(2.35, 1.55, "main net: one per task, run in one batched call", ha="left", va="center",
            fontsize=9, weight="bold", color="#1f4e79")
    return fig

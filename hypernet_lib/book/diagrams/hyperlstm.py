"""One step of the HyperLSTM (Ha, Dai & Le, 2016, §3.2) as a block diagram.

    from hypernet_lib.book.diagrams.hyperlstm import draw_hyperlstm
    fig = draw_hyperlstm()

The hyper cell (top, warm colours) reads x̂_t = [h_{t-1}; x_t] and emits ĥ_t; three small linear
maps turn ĥ_t into the embeddings z_h, z_x, z_b (N_z numbers per gate), and three more into the
weight scaling vectors d_h, d_x and the dynamic bias b (N_h numbers per gate). In the main cell
(bottom, blue) d_h and d_x rescale the rows of the fixed matrices W_h and W_x, one gate at a time.
"""
from __future__ import annotations

from functools import partial

from . import _draw
from ._draw import canvas

__all__ = ["draw_hyperlstm"]

# the hyper cell and what it generates in the hypernetwork's warm tones, the main cell in blue
_IN, _HYPER, _Z, _D, _MAIN, _STATE = "#eeeeee", "#f9c58d", "#fde0c5", "#f4a261", "#cfe3f5", "#a9cbeb"


def draw_hyperlstm(ax=None):
    """Draw the HyperLSTM step: hyper cell → z_h, z_x, z_b → d_h, d_x, b → main cell. Returns the figure.

    ``ax``: an axis to draw into (its figure is returned); by default a new figure one text column wide.
    """
    fig, ax = canvas(ax, 4.6, 0.96, ylim=(-0.15, 6.3))
    box = partial(_draw.box, ax)
    arrow = partial(_draw.arrow, ax)

    # --- inputs, left
    box(0.05, 1.55, 1.05, 0.6, "$h_{t-1}$", _IN)
    box(0.05, 0.55, 1.05, 0.6, "$x_t$", _IN)
    # --- hyper cell, top left
    box(0.05, 4.1, 2.6, 1.25, "hyper cell\nLSTM, $N_{\\hat h}$ units\n"
        "input $\\hat x_t = [h_{t-1};\\, x_t]$", _HYPER)
    ax.text(1.35, 5.55, "state $\\hat h_{t-1}, \\hat c_{t-1} \\to \\hat h_t, \\hat c_t$", ha="center",
            fontsize=9, color="0.3")
    arrow((0.45, 2.15), (0.45, 4.1))                  # h_{t-1} up into the hyper cell
    arrow((1.1, 0.85), (1.55, 0.85), style="-")       # x_t: right, then up
    arrow((1.55, 0.85), (1.55, 4.1))
    # --- ĥ_t bus to the three embedding columns
    cols = {"h": 3.35, "x": 5.55, "b": 7.75}          # left edge of each column's boxes
    w = 2.0
    ax.plot([2.65, cols["b"] + w / 2], [4.72, 4.72], color="0.25", lw=1.0)
    ax.text(2.95, 4.85, "$\\hat h_t$", fontsize=9)
    z_text = {"h": "$z_h = W_{\\hat h h}\\,\\hat h_t + b_{\\hat h h}$",
              "x": "$z_x = W_{\\hat h x}\\,\\hat h_t + b_{\\hat h x}$",
              "b": "$z_b = W_{\\hat h b}\\,\\hat h_t$"}
    d_text = {"h": "$d_h = W_{hz}\\, z_h$", "x": "$d_x = W_{xz}\\, z_x$", "b": "$b = W_{bz}\\, z_b + b_0$"}
    term = {"h": "$d_h \\odot W_h h_{t-1}$", "x": "$d_x \\odot W_x x_t$", "b": "$+\\ b$"}
    for s, x0 in cols.items():
        cx = x0 + w / 2
        arrow((cx, 4.72), (cx, 4.35))
        box(x0, 3.75, w, 0.6, z_text[s], _Z)
        arrow((cx, 3.75), (cx, 3.2))
        box(x0, 2.6, w, 0.6, d_text[s], _D)
        arrow((cx, 2.6), (cx, 2.05))
        box(x0, 1.45, w, 0.6, term[s], _MAIN)
    ax.text(cols["x"] + w / 2, 3.47, "$N_z$ numbers per gate", ha="center", fontsize=9, color="0.3",
            bbox=dict(fc="white", ec="none", pad=0.5))
    ax.text(cols["x"] + w / 2, 2.33, "$N_h$ numbers per gate", ha="center", fontsize=9, color="0.3",
            bbox=dict(fc="white", ec="none", pad=0.5))
    # main-cell inputs into its terms
    arrow((1.1, 1.85), (cols["h"], 1.75))
    arrow((1.55, 0.85), (cols["x"] + 0.35, 1.45))
    # --- gates and state, bottom
    box(3.35, 0.05, 6.4, 0.85, "for each gate $y \\in \\{i, g, f, o\\}$:  $y_t = \\mathrm{LN}(\\ \\cdot\\ "
        "+\\ \\cdot\\ +\\ \\cdot\\ )$\n$c_t = \\sigma(f_t + 1) \\odot c_{t-1} + \\sigma(i_t) \\odot \\tanh g_t$,"
        "   $h_t = \\sigma(o_t) \\odot \\tanh \\mathrm{LN}(c_t)$", _STATE)
    for s, x0 in cols.items():
        arrow((x0 + w / 2, 1.45), (x0 + w / 2, 0.9))
    ax.text(9.9, 6.15, "hypernetwork: generates $z$ and $d$ at every step", ha="right", va="top",
            fontsize=9, weight="bold", color="#b5541c")
    ax.text(3.2, 0.2, "main cell\n($N_h$ units)", ha="right", va="center", fontsize=9, weight="bold",
            color="#1f4e79")
    return fig

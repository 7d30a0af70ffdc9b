"""Plots shared by the chapters, and a slider that works in the static HTML book.

:func:`static_slider` embeds precomputed frames (compressed PNGs) with an HTML range input and
a few lines of JavaScript: it needs no kernel, so it works on the rendered page.  Live sliders
(ipywidgets) regenerate frames through a model; the static one replays frames made the same way.
"""
from __future__ import annotations

import base64
import html
import io
import uuid
from typing import Optional, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch

from .utils import check_float, check_int, check_shape

__all__ = ["plot_histories", "filter_grid", "filter_mosaic", "figure_to_png", "static_slider",
           "SLIDER_CLASS"]

#: CSS class of every static slider's container (the browser tests look for it).
SLIDER_CLASS = "hn-static-slider"


#: How the History fields read on an axis.
_METRIC_NAMES = {"train_loss": "training loss", "val_loss": "validation loss", "train_acc": "training accuracy",
                 "val_acc": "validation accuracy"}


def plot_histories(histories: dict, metrics: Sequence[str] = ("val_acc",), ax=None, error: bool = False,
                   colors: Optional[dict] = None):
    """Learning curves of several runs on one axis.  ``histories``: name -> History.

    Each run keeps one colour (the same run has the same colour on every axis drawn in turn):
    ``colors[name]`` if given, else the book's colour for a model of that name
    (:data:`hypernet_lib.book.style.MODEL_COLORS`), else the next colour of the cycle.
    Training curves are dashed, validation curves solid.  With ``error=True`` accuracies are drawn
    as error rates in percent.
    """
    from .book.style import MODEL_COLORS, figsize

    if not isinstance(histories, dict):
        raise ValueError(f"histories must be a dict {{run name: History}}, got {type(histories).__name__}")
    if not histories:
        raise ValueError("histories is empty: there is nothing to plot; pass {run name: History} of trained runs")
    if isinstance(metrics, str):
        raise ValueError(f"metrics must be a sequence of metric names, got the str {metrics!r}; "
                         f"write metrics=({metrics!r},)")
    metrics = tuple(metrics)
    if not metrics:
        raise ValueError(f"metrics is empty; choose from {', '.join(_METRIC_NAMES)}")
    for name, h in histories.items():
        for metric in metrics:
            if not hasattr(h, metric):
                raise ValueError(f"unknown metric {metric!r}: run {name!r} ({type(h).__name__}) has no such curve; "
                                 f"choose from {', '.join(_METRIC_NAMES)}")
            curve = getattr(h, metric)
            if isinstance(curve, str) or not hasattr(curve, "__len__"):
                raise ValueError(f"{metric!r} of run {name!r} is one value ({curve!r}), not a curve per epoch; "
                                 f"choose from {', '.join(_METRIC_NAMES)}")
            if len(curve) == 0:
                raise ValueError(f"run {name!r} has no {metric} values (an empty history): train it first, "
                                 "or leave it out")
    if ax is None:
        _, ax = plt.subplots(figsize=figsize(3.2))
    styles = {"train": "--", "val": "-"}
    colors = dict(colors or {})

    def label(metric):
        name = _METRIC_NAMES.get(metric, metric.replace("_", " "))
        return name.replace("accuracy", "error (%)") if error and metric.endswith("acc") else name

    for k, (name, h) in enumerate(histories.items()):
        color = colors.get(name, MODEL_COLORS.get(name, f"C{k}"))
        for metric in metrics:
            values = np.asarray(getattr(h, metric), dtype=float)
            if error and metric.endswith("acc"):
                values = 100 * (1 - values)
            epochs = np.arange(1, len(values) + 1)
            ax.plot(epochs, values, styles.get(metric.split("_")[0], "-"), marker="o", ms=3, color=color,
                    label=f"{name}, {label(metric)}" if len(metrics) > 1 else name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(", ".join(label(m) for m in metrics) if len(metrics) < 3 else "")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    return ax


def filter_mosaic(kernel: torch.Tensor, pad: int = 1, per_filter: bool = False) -> np.ndarray:
    """(N_out, N_in, f, f) -> one 2-D array: tile (row o, column i) holds filter K[o, i], NaN gaps.

    Tiles are laid out by ``torchvision.utils.make_grid`` (N_in tiles per row), with the outer
    border cropped.  ``per_filter=True`` divides each filter by its own largest |weight|, so every
    tile spans [-1, 1]: the shapes of faint filters become visible, their sizes are lost.
    """
    from torchvision.utils import make_grid

    if not isinstance(kernel, torch.Tensor):
        check_shape("kernel", kernel, ("N_out", "N_in", "f", "f"), fix="pass torch.as_tensor(kernel)")
    k = kernel.detach().float().cpu()
    if k.dim() != 4:
        raise ValueError(f"expected a kernel of shape (N_out, N_in, f, f), got {tuple(k.shape)}")
    check_int(pad=pad, lo=0)
    if k.numel() == 0:
        raise ValueError(f"kernel has no weights (shape {tuple(k.shape)}); pass a kernel with at least one filter")
    n_out, n_in, fh, fw = k.shape
    if per_filter:
        k = k / k.abs().amax(dim=(2, 3), keepdim=True).clamp_min(1e-12)
    if n_out * n_in == 1:                                        # make_grid adds no padding to one tile
        return k[0, 0].numpy().astype(np.float32)
    grid = make_grid(k.reshape(n_out * n_in, 1, fh, fw), nrow=n_in, padding=pad, pad_value=float("nan"))
    grid = grid[0]                                               # make_grid repeats one channel to three
    if pad:
        grid = grid[pad:-pad, pad:-pad]                          # no border around the mosaic
    return grid.numpy().astype(np.float32)


def filter_grid(kernel: torch.Tensor, ax=None, vmax: Optional[float] = None, title: Optional[str] = None,
                cmap: str = "RdBu_r", per_filter: bool = False):
    """Draw every f×f filter of a conv kernel in an N_out × N_in grid (row: output channel o,
    column: input channel i).

    By default all filters share one symmetric colour scale; ``vmax`` fixes it (share it between
    plots to compare them).  ``per_filter=True`` gives each filter its own scale (its largest
    |weight| is full colour), which shows the shape of small filters but hides their size.
    Returns the image artist (for a colour bar).
    """
    check_float(vmax=vmax, lo=0.0, lo_open=True, optional=True)
    mosaic = filter_mosaic(kernel, per_filter=per_filter)
    if ax is None:
        from .book.style import figsize
        _, ax = plt.subplots(figsize=figsize(6.4, width=0.95))
    if per_filter:
        vmax = 1.0
    vmax = float(np.nanmax(np.abs(mosaic))) if vmax is None else vmax
    im = ax.imshow(mosaic, cmap=cmap, vmin=-vmax, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    ax.set_xlabel("input channel i")
    ax.set_ylabel("output channel o")
    if title:
        ax.set_title(title)
    return im


def figure_to_png(fig, dpi: int = 80) -> bytes:
    """Render a matplotlib figure to PNG bytes (palette-quantised when Pillow is present, to stay small)."""
    if not hasattr(fig, "savefig"):
        raise ValueError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    data = buf.getvalue()
    try:
        from PIL import Image
        img = Image.open(io.BytesIO(data)).convert("RGB").quantize(colors=128)
        out = io.BytesIO()
        img.save(out, format="PNG", optimize=True)
        if out.tell() < len(data):
            data = out.getvalue()
    except ImportError:
        pass
    return data


def _frame_png(frame, dpi: int, i: int = 0) -> bytes:
    if isinstance(frame, (bytes, bytearray)):
        return bytes(frame)
    if isinstance(frame, matplotlib.figure.Figure):
        png = figure_to_png(frame, dpi)
        plt.close(frame)
        return png
    arr = np.asarray(frame)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)) or arr.dtype.kind not in "biuf":
        raise ValueError(f"frames[{i}] is not an image: a frame is a matplotlib Figure, PNG bytes or an image "
                         f"array (H, W), (H, W, 3) or (H, W, 4) of numbers; got {type(frame).__name__} "
                         f"{'of shape ' + str(arr.shape) if arr.dtype.kind in 'biuf' else 'of dtype ' + str(arr.dtype)}")
    fig = plt.figure(figsize=(arr.shape[1] / 50, arr.shape[0] / 50), dpi=50)
    fig.figimage(arr, resize=True)
    png = figure_to_png(fig, dpi=50)
    plt.close(fig)
    return png


def _alt(title: Optional[str], label, i: int) -> str:
    """Alt text of one slider frame: what the figure shows and where on the slider it is."""
    return f"{title or 'figure'}, frame {i + 1}: {label}"


def static_slider(frames: Sequence, labels: Sequence[str], title: Optional[str] = None, dpi: int = 80,
                  start: int = 0):
    """A kernel-free slider over precomputed frames, for the static HTML book.

    frames: matplotlib Figures (closed after rendering), PNG bytes, or image arrays.
    labels: one caption per frame (e.g. the value of z).
    Returns an ``IPython.display.HTML`` object; its markup is in ``.data``.
    """
    from IPython.display import HTML

    if len(frames) != len(labels) or not frames:
        raise ValueError(f"static_slider needs one label per frame (got {len(frames)} frames, {len(labels)} labels)")
    check_int(start=start)
    uris = ["data:image/png;base64," + base64.b64encode(_frame_png(f, dpi, i)).decode() for i, f in enumerate(frames)]
    uid = "hn" + uuid.uuid4().hex[:10]
    start = max(0, min(start, len(uris) - 1))
    imgs = "".join(
        f'<img src="{u}" data-i="{i}" alt="{html.escape(_alt(title, labels[i], i), quote=True)}" '
        f'style="display:{"block" if i == start else "none"};max-width:100%">'
        for i, u in enumerate(uris))
    label_json = "[" + ",".join('"' + html.escape(str(l)).replace('"', "&quot;") + '"' for l in labels) + "]"
    title_html = f"<div style='font-weight:600'>{html.escape(title)}</div>" if title else ""
    markup = f"""<div class="{SLIDER_CLASS}" id="{uid}">{title_html}
<input type="range" min="0" max="{len(uris) - 1}" value="{start}" step="1" style="width:100%" aria-label="{html.escape(title or 'frame')}">
<div class="hn-label" style="font-family:monospace">{html.escape(str(labels[start]))}</div>
<div class="hn-frames">{imgs}</div>
<script>(function(){{var r=document.getElementById("{uid}");var s=r.querySelector("input");
var L={label_json};var im=r.querySelectorAll(".hn-frames img");var lab=r.querySelector(".hn-label");
s.addEventListener("input",function(){{var k=+s.value;for(var j=0;j<im.length;j++)im[j].style.display=(j===k)?"block":"none";
var t=document.createElement("textarea");t.innerHTML=L[k];lab.textContent=t.value;}});}})();</script></div>"""
    return HTML(markup)


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

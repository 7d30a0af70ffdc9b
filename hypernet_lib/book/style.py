"""The book's one figure style: sized for the ~690 px text column, one colour per model everywhere.

Call ``style.use()`` once per notebook (the import cell does). Figures are then
``COLUMN_INCHES`` wide at ``DPI``, so a PNG is at most ~690 px wide and its fonts (9 pt at
100 dpi, about 12.5 px) read at page width. Stack panels vertically with ``figsize(rows=...)``
instead of shrinking them side by side.
"""
from __future__ import annotations

COLUMN_PX = 690                 # the text column of the rendered book
DPI = 100
COLUMN_INCHES = COLUMN_PX / DPI
MAX_DECLARED_PX = 860           # tests/book/test_notebooks.py: no PNG output declares more

# One colour per model, the same in every chapter (colour-blind-safe Tableau-like palette).
MODEL_COLORS = {
    # ordinary, learned weights
    "conventional": "#4E79A7", "standard": "#4E79A7", "lstm": "#4E79A7",
    "ln-lstm": "#76B7B2", "lstm_matched": "#59A14F", "shared": "#4E79A7", "separate": "#76B7B2",
    # generated weights
    "hypernetwork": "#F28E2B", "hyperlstm": "#F28E2B", "chunked_full": "#F28E2B", "task_hypernet": "#F28E2B",
    "hypernetwork_ha_init": "#9C755F", "ln-hyperlstm": "#E15759",
    "naive_full": "#B07AA1", "partial": "#EDC948",
    # few-shot
    "fewshot_hyper": "#F28E2B", "prototypical": "#59A14F", "finetune": "#BAB0AC",
}


def color(model: str) -> str:
    """The book's colour for ``model``; a KeyError names the known models."""
    try:
        return MODEL_COLORS[model]
    except KeyError:
        raise KeyError(f"no book colour for model {model!r}; known: {', '.join(sorted(MODEL_COLORS))}") from None


def figsize(height: float = 3.4, rows: int = 1, width: float = 1.0) -> tuple[float, float]:
    """(width, height) in inches: ``width`` is a fraction of the text column, ``height`` per row."""
    if not 0 < width <= 1:
        raise ValueError(f"width is a fraction of the text column, 0 < width <= 1; got {width}")
    return (COLUMN_INCHES * width, height * rows)


RC = {
    "figure.figsize": figsize(), "figure.dpi": DPI, "savefig.dpi": DPI,
    "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8.5,
    "xtick.labelsize": 8.5, "ytick.labelsize": 8.5, "legend.frameon": False,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
    "figure.constrained_layout.use": True,
}


def use() -> None:
    """Apply the book style to matplotlib (and the inline backend, if running in IPython)."""
    import matplotlib as mpl
    mpl.rcParams.update(RC)
    try:
        from IPython import get_ipython
        ip = get_ipython()
        if ip is not None:
            ip.run_line_magic("config", "InlineBackend.rc = {}")
            ip.run_line_magic("config", "InlineBackend.print_figure_kwargs = "
                             f"{{'bbox_inches': 'tight', 'dpi': {DPI}}}")
    except ImportError:
        pass

"""What the notebooks use and nothing else does: scale, glue, figure style, plots, tables, widgets, shipped models.

    from hypernet_lib.book import get_scale, by_scale, glue, style, ShippedCheckpoint, static_slider

Importing it imports matplotlib; the rest of the library never imports ``book``.
"""
from . import style
from .checkpoints import CheckpointMismatch, ShippedCheckpoint, retrain_requested
from .datasets import load_cifar100_or_standin
from .diagrams.eq2 import draw_eq2
from .diagrams.hyperlstm import draw_hyperlstm
from .diagrams.overview import draw_hypernetwork_diagram
from .diagrams.task_hypernet import draw_task_hypernet
from .diagrams.tiling import draw_tiling
from .glue import glue
from .plots import (SLIDER_CLASS, figure_to_png, filter_grid, filter_mosaic, plot_accuracy_matrix, plot_diagnostics,
                    plot_generated_weights, plot_histories, plot_sweeps, static_slider)
from .scale import SCALES, by_scale, get_scale, run_banner
from .tables import calculator_html, format_published, html_table, memory_disk_html, published_table_html, split_table
from .widgets import FilterExplorer
from .zexplorer import zexplorer

__all__ = [
    # the scale convention and the page
    "SCALES", "get_scale", "by_scale", "run_banner", "glue", "style",
    # shipped models and the chapter-4 data choice
    "ShippedCheckpoint", "CheckpointMismatch", "retrain_requested", "load_cifar100_or_standin",
    # figures, diagrams, tables, widgets
    "SLIDER_CLASS", "figure_to_png", "filter_grid", "filter_mosaic", "plot_accuracy_matrix", "plot_diagnostics",
    "plot_generated_weights", "plot_histories", "plot_sweeps", "static_slider",
    "draw_eq2", "draw_hyperlstm", "draw_hypernetwork_diagram", "draw_task_hypernet", "draw_tiling",
    "calculator_html", "format_published", "html_table", "memory_disk_html", "published_table_html", "split_table",
    "FilterExplorer", "zexplorer",
]

"""What the notebooks use and nothing else does: scale, glue, figure style, plots, tables, widgets, shipped models.

    from hypernet_lib.book import get_scale, by_scale, glue, style, ShippedCheckpoint
"""
from . import style
from .checkpoints import CheckpointMismatch, ShippedCheckpoint, retrain_requested
from .glue import glue
from .scale import SCALES, by_scale, get_scale, run_banner
from .zexplorer import zexplorer

__all__ = ["SCALES", "get_scale", "by_scale", "run_banner", "glue", "style", "ShippedCheckpoint",
           "CheckpointMismatch", "retrain_requested", "zexplorer"]

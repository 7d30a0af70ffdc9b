"""What the notebooks use and nothing else does: glue, the book's figure style, shipped checkpoints.

    from hypernet_lib.book import glue, style, ShippedCheckpoint, zexplorer
"""
from . import style
from .checkpoints import CheckpointMismatch, ShippedCheckpoint, retrain_requested
from .glue import glue
from .zexplorer import zexplorer

__all__ = ["glue", "style", "ShippedCheckpoint", "CheckpointMismatch", "retrain_requested", "zexplorer"]

"""``glue`` that works without myst-nb: Colab and plain Jupyter do not ship it.

With myst-nb installed (the book build), this is ``myst_nb.glue``: the value is stored in the
notebook's outputs under ``name`` so the Markdown can quote it with ``{glue:}`name```. Without it,
the value is shown when ``display=True`` and otherwise nothing happens, which is all a reader of
a notebook in Colab needs.
"""
from __future__ import annotations

from typing import Any

try:                                    # the book build, CI, `make execute`
    from myst_nb import glue as _myst_glue
except ImportError:                     # Colab, a bare Jupyter
    _myst_glue = None


def glue(name: str, value: Any, display: bool = True) -> None:
    """Store ``value`` under ``name`` for the book's Markdown (``{glue:}`name```)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"glue needs a non-empty string name, got {name!r}")
    if _myst_glue is not None:
        _myst_glue(name, value, display=display)
    elif display:
        from IPython.display import display as _show
        _show(value)

"""Read the values that chapter notebooks glued (myst-nb ``glue``) from their committed outputs.

The landing page uses this to summarise every chapter's results without re-running them:
``glued(Path("book/02_static_mnist.ipynb"))["mnist_test_error_hyper"]``.
"""
from __future__ import annotations

import ast
from pathlib import Path

import nbformat

PREFIX = "application/papermill.record/"


def glued(path: Path) -> dict:
    """key -> value (as Python literal when it parses, else the text) for every glue in the notebook."""
    nb = nbformat.read(path, as_version=4)
    out = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            meta = o.get("metadata", {}).get("scrapbook")
            if not meta:
                continue
            text = o.get("data", {}).get(PREFIX + "text/plain")
            if text is None:
                continue
            try:
                out[meta["name"]] = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                out[meta["name"]] = text
    return out


def scale_of(path: Path) -> str:
    return nbformat.read(path, as_version=4).metadata.get("hypernet", {}).get("scale", "not executed")

"""Execute chapter notebooks in place and record what produced their outputs.

    python tools/execute.py [--scale cpu] [book/02_static_mnist.ipynb ...]

Each executed notebook gets ``metadata.hypernet`` = {scale, code_sha256, executed, torch,
python}.  ``code_sha256`` hashes the source of its code cells, so a test can tell when code
changed after the outputs were made (see tests/book/test_notebooks.py).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]      # tools/ sits in the repository root
if str(ROOT) not in sys.path:                   # hypernet_lib from the checkout, installed or not
    sys.path.insert(0, str(ROOT))

from hypernet_lib.book import SCALES  # noqa: E402

BOOK = ROOT / "book"


def code_hash(nb) -> str:
    """sha256 over the sources of the notebook's code cells, in order."""
    h = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            h.update(cell.source.strip().encode())
            h.update(b"\0")
    return h.hexdigest()


def chapter_notebooks() -> list[Path]:
    return sorted(p for p in BOOK.glob("*.ipynb"))


def kernel_env(scale: str) -> None:
    """Set the environment the notebook kernel inherits: the scale, and no MPLBACKEND (a
    non-interactive backend such as Agg, set for scripts and tests, would replace the kernel's
    inline one and leave the executed notebook without its figures)."""
    os.environ["HYPERNET_SCALE"] = scale
    os.environ.pop("MPLBACKEND", None)


def execute(path: Path, scale: str, timeout: int = 3600) -> float:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    kernel_env(scale)
    t0 = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    elapsed = time.perf_counter() - t0
    import torch
    nb.metadata["hypernet"] = {
        "scale": scale, "code_sha256": code_hash(nb),
        "executed": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seconds": round(elapsed, 1), "torch": torch.__version__, "python": platform.python_version(),
    }
    nbformat.write(nb, path)
    return elapsed


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("notebooks", nargs="*", type=Path, help="notebooks to execute (default: every chapter)")
    p.add_argument("--scale", default=os.environ.get("HYPERNET_SCALE", "cpu"), choices=SCALES)
    args = p.parse_args(argv)
    paths = args.notebooks or chapter_notebooks()
    for path in paths:
        if not path.exists():
            p.error(f"no such notebook: {path}")
    for path in paths:
        print(f"executing {path} at scale={args.scale} ...", flush=True)
        print(f"  done in {execute(path, args.scale):.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

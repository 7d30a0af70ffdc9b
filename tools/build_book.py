"""Build the HTML book into _build/html.

    python tools/build_book.py            # from the committed outputs (fast)
    python tools/build_book.py --strict   # the same, failing on any warning

Execution is off in _config.yml: the published book shows the outputs of a real run, committed
with the notebooks.  Notebooks are re-executed at smoke scale by the nbval stage of `make test`.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]      # tools/ sits in the repository root


def committed_errors() -> list[str]:
    """Error outputs or tracebacks left in committed notebooks."""
    import nbformat
    bad = []
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            for out in cell.get("outputs", []):
                text = out.get("text", "") if out.get("output_type") == "stream" else ""
                if out.get("output_type") == "error" or "Traceback (most recent call last)" in text:
                    bad.append(f"{path.name} cell {i}: {out.get('ename', 'traceback in output')}")
    return bad


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--strict", action="store_true", help="fail on any Sphinx warning or notebook error")
    args = p.parse_args(argv)
    mathjax = ROOT / "_extra" / "_static" / "mathjax" / "tex-mml-chtml.js"
    if not mathjax.exists():
        print(f"{mathjax} is missing: the book serves MathJax itself (mathjax_path in _config.yml); restore "
              f"_extra/_static/mathjax from git, or see its README.md to fetch it with npm", file=sys.stderr)
        return 1
    if args.strict:
        bad = committed_errors()
        if bad:
            print("committed notebook outputs hold errors:\n  " + "\n  ".join(bad), file=sys.stderr)
            return 1
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(ROOT), "--builder", "html"]
    if args.strict:
        cmd += ["-W", "-n", "--keep-going"]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=ROOT)
    print(f"book build: {time.perf_counter() - t0:.1f}s -> {ROOT / '_build' / 'html' / 'index.html'}")
    return res.returncode


if __name__ == "__main__":
    sys.exit(main())

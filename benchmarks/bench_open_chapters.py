"""How long a reader waits: every chapter run top to bottom ("Run all"), at cpu scale, on this machine.

    python benchmarks/bench_open_chapters.py [--scale cpu] [--goal 120] [book/05_hyperlstm.ipynb ...]

The goal: at ``cpu`` scale, a chapter shows its results and working sliders within 2 minutes on a
laptop CPU, because it loads the trained models that ship with the book instead of training them.
Each notebook is executed in a fresh kernel from a copy (the committed notebook is not touched);
the time runs from the kernel's start to the end of the last cell. The baseline, measured in the
same run, is a notebook that only starts a kernel and imports torch and hypernet_lib: what any
chapter costs before it does anything. Each line says whether the chapter loaded its shipped
checkpoints or trained. Nothing is asserted: the numbers depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCALES = ("smoke", "cpu", "full")
BASELINE_SOURCE = "import torch\nimport hypernet_lib, hypernet_lib.book\n"


def run_notebook(path: Path | None, scale: str, timeout: int, cwd: Path) -> tuple[float, str]:
    """Execute a copy of ``path`` (None: the baseline notebook) in a new kernel; (seconds, outputs)."""
    import nbformat
    from nbclient import NotebookClient

    if path is None:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(BASELINE_SOURCE)])
    else:
        nb = nbformat.read(path, as_version=4)
    os.environ["HYPERNET_SCALE"] = scale
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}})
    t0 = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - t0
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []) if o.get("output_type") == "stream")
    return seconds, text


def checkpoint_summary(text: str) -> str:
    loaded = list(dict.fromkeys(re.findall(r"loaded the shipped checkpoint ([\w.-]+\.pt)", text)))
    trained = list(dict.fromkeys(re.findall(r"(?:trained here[^\n]*?|no shipped checkpoint) ([\w.-]+\.pt)", text)))
    parts = ([f"loaded {', '.join(loaded)}"] if loaded else []) + (
        [f"TRAINED {', '.join(trained)}"] if trained else [])
    return "; ".join(parts) or "no shipped checkpoint used"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("notebooks", nargs="*", type=Path, help="default: every chapter in book/")
    p.add_argument("--scale", default="cpu", help="smoke, cpu or full (default cpu)")
    p.add_argument("--goal", type=float, default=120.0, help="seconds a reader should wait at most")
    p.add_argument("--timeout", type=int, default=1800, help="seconds one cell may take")
    args = p.parse_args(argv)
    if args.scale not in SCALES:
        p.error(f"--scale must be one of {', '.join(SCALES)}, got {args.scale!r}")
    if not args.goal > 0 or args.timeout < 1:
        p.error("--goal and --timeout must be positive")
    notebooks = args.notebooks or sorted((ROOT / "book").glob("*.ipynb"))
    missing = [str(n) for n in notebooks if not Path(n).is_file()]
    if missing:
        p.error(f"no such notebook: {', '.join(missing)}")
    if os.environ.get("HYPERNET_RETRAIN", "").strip().lower() not in ("", "0", "false", "no"):
        print("note: HYPERNET_RETRAIN is set, so chapters train instead of loading their checkpoints")

    import platform

    import torch
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"scale {args.scale}, load average {os.getloadavg()[0]:.1f}")
    base, _ = run_notebook(None, args.scale, args.timeout, ROOT / "book")
    print(f"{'baseline: kernel start + imports':40s} {base:7.1f} s")
    results = {"baseline": base}
    for path in notebooks:
        path = Path(path).resolve()
        seconds, text = run_notebook(path, args.scale, args.timeout, path.parent)
        results[path.stem] = seconds
        verdict = "within" if seconds <= args.goal else "OVER"
        print(f"{path.stem:40s} {seconds:7.1f} s  {seconds / base:5.1f}x baseline  {verdict} the "
              f"{args.goal:.0f} s goal  ({checkpoint_summary(text)})", flush=True)
    return results


if __name__ == "__main__":
    main()

"""Run the chapters whose data exist offline at full scale, each within a time budget.

    python tools/full_run.py                       # scale=full: needs a CUDA GPU (exit 2 without one)
    python tools/full_run.py --scale smoke         # the same pipeline in seconds (the tests run this)
    python tools/full_run.py --out /tmp/run 02 06  # some chapters, another output folder
    make full-run [SCALE=smoke] [OUT=folder]

Chapters 2, 4, 5 and 6 (their data ship with packages or Debian, so nothing is downloaded).  Each
chapter runs in a fresh kernel with ``HYPERNET_SCALE`` set and a budget in seconds: every cell's
nbclient timeout is what is left of its chapter's budget, so a chapter that runs over stops there
(and the run fails).  At full scale the budgets add up to 10 minutes, sized for one H200; smoke and
cpu scale get a fixed budget per chapter (``OTHER_BUDGETS``).

Written under the output folder (``--out``, else ``$OUT``, else ``artifacts/full-run``):
``NN_name.ipynb`` (the executed notebooks, with ``metadata.hypernet`` as ``tools/execute.py``
writes it), ``checkpoints/`` (the checkpoints the run trained, with their ``manifest.json``
entries) and ``full-run.json`` (per chapter: status, seconds, budget).  The checkout's
``hypernet_lib/checkpoints/`` is left as it was: copy the new files there to ship them.

Exit status: 0 when every chapter finished within its budget, 1 when one failed or ran over, 2
when the scale needs a GPU that this machine lacks.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]      # tools/ sits in the repository root
for p in (ROOT, ROOT / "tools"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

#: Chapters whose data exist offline, with their budget in seconds at full scale (10 minutes in all).
BUDGETS = {"02_static_mnist": 150, "04_cifar100": 210, "05_hyperlstm": 150, "06_conditional": 90}
#: Budget per chapter at the other scales: smoke checks the pipeline (a loaded 2-core machine
#: needs minutes for a smoke chapter), cpu is the book's default run on a laptop.
OTHER_BUDGETS = {"smoke": 600, "cpu": 3600}


def budget(chapter: str, scale: str, factor: float = 1.0) -> float:
    return (BUDGETS[chapter] if scale == "full" else OTHER_BUDGETS[scale]) * factor
CHECKPOINTS = ROOT / "hypernet_lib" / "checkpoints"
SCALES_NEEDING_GPU = ("full",)


def default_out() -> Path:
    return Path(os.environ["OUT"]) if os.environ.get("OUT") else ROOT / "artifacts" / "full-run"


def gpu_problem(scale: str) -> str:
    """Why this machine cannot run ``scale`` ('' when it can)."""
    if scale not in SCALES_NEEDING_GPU:
        return ""
    import torch
    if torch.cuda.is_available():
        return ""
    return (f"scale={scale} needs a CUDA GPU, and this machine has none that torch can use "
            f"(torch {torch.__version__}, torch.cuda.is_available() is False: no NVIDIA GPU or driver found). "
            f"Run it on a GPU machine, or try the pipeline here with `make full-run SCALE=smoke`.")


def _digests(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*")) if p.is_file()}


def pick(names: list[str]) -> list[str]:
    if not names:
        return list(BUDGETS)
    out = []
    for n in names:
        hits = [c for c in BUDGETS if c == n or c.startswith(n)]
        if len(hits) != 1:
            raise SystemExit(f"unknown chapter {n!r}; choose from {', '.join(BUDGETS)}")
        out.append(hits[0])
    return out


def run_chapter(chapter: str, scale: str, budget: float, out: Path) -> dict:
    import nbformat
    from execute import code_hash, kernel_env
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    src = ROOT / "book" / f"{chapter}.ipynb"
    nb = nbformat.read(src, as_version=4)
    kernel_env(scale)                              # the kernel inherits it
    client = NotebookClient(nb, timeout=int(budget), kernel_name="python3",
                            resources={"metadata": {"path": str(src.parent)}})
    t0 = time.perf_counter()
    status, detail, i = "ok", "", 0
    try:
        with client.setup_kernel():
            for i, cell in enumerate(nb.cells):
                left = budget - (time.perf_counter() - t0)
                if left <= 0:
                    raise CellTimeoutError(f"budget of {budget:.0f}s spent before cell {i}")
                client.timeout = max(1, int(left))
                client.execute_cell(cell, i)
    except CellTimeoutError:
        status, detail = "over budget", f"stopped in cell {i} after {time.perf_counter() - t0:.0f}s of {budget:.0f}s"
    except CellExecutionError as e:
        status, detail = "error", f"{e.ename}: {e.evalue}"
    except DeadKernelError as e:
        status, detail = "kernel died", str(e)
    elapsed = time.perf_counter() - t0
    import torch
    nb.metadata["hypernet"] = {
        "scale": scale, "code_sha256": code_hash(nb),
        "executed": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seconds": round(elapsed, 1), "torch": torch.__version__, "python": platform.python_version(),
    }
    nbformat.write(nb, out / src.name)
    return {"chapter": chapter, "status": status, "seconds": round(elapsed, 1), "budget": budget, "detail": detail}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("chapters", nargs="*", help=f"chapters (prefixes work: 02); default {' '.join(BUDGETS)}")
    p.add_argument("--scale", default="full", choices=("smoke", "cpu", "full"))
    p.add_argument("--out", type=Path, default=None, help="output folder (default: $OUT, else artifacts/full-run)")
    p.add_argument("--budget-factor", type=float, default=1.0, help="multiply every chapter's budget")
    args = p.parse_args(argv)
    chapters = pick(args.chapters)
    why = gpu_problem(args.scale)
    if why:
        print(why, file=sys.stderr)
        return 2
    out = (args.out or default_out()).resolve()
    out.mkdir(parents=True, exist_ok=True)
    backup = out / ".checkpoints-before"
    shutil.rmtree(backup, ignore_errors=True)
    shutil.copytree(CHECKPOINTS, backup)
    before = _digests(CHECKPOINTS)
    results = []
    t_all = time.perf_counter()
    try:
        for chapter in chapters:
            seconds = budget(chapter, args.scale, args.budget_factor)
            print(f"=== {chapter} at scale={args.scale}, budget {seconds:.0f}s", flush=True)
            r = run_chapter(chapter, args.scale, seconds, out)
            results.append(r)
            print(f"=== {chapter}: {r['status']} in {r['seconds']:.1f}s {r['detail']}".rstrip(), flush=True)
    finally:
        after = _digests(CHECKPOINTS)
        new = [n for n, d in after.items() if before.get(n) != d and n != "manifest.json"]
        if new:
            dest = out / "checkpoints"
            dest.mkdir(exist_ok=True)
            for n in new + ["manifest.json"]:
                shutil.copy2(CHECKPOINTS / n, dest / n)
        # leave the checkout as it was: the new checkpoints live in the output folder
        for n in after:
            if n not in before:
                (CHECKPOINTS / n).unlink()
        for n in before:
            shutil.copy2(backup / n, CHECKPOINTS / n)
        shutil.rmtree(backup, ignore_errors=True)
    summary = {"scale": args.scale, "seconds": round(time.perf_counter() - t_all, 1), "chapters": results,
               "new_checkpoints": sorted(new)}
    (out / "full-run.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"full run: {summary['seconds']:.0f}s; outputs in {out}")
    for r in results:
        print(f"  {r['status']:<12} {r['seconds']:7.1f}s / {r['budget']:.0f}s  {r['chapter']}")
    return 0 if all(r["status"] == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

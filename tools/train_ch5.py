"""Train chapter 5's language models at cpu scale, several at once, and ship them as a checkpoint.

    python tools/train_ch5.py                # 2 worker processes, 1 thread each
    python tools/train_ch5.py --workers 1    # one after the other

The script runs the chapter's own code, so it cannot drift from it: the parameters cell, the
set-up cell, and the training cell of ``book/05_hyperlstm.ipynb``. Each worker executes the
training cell with ``RUNS`` cut down to its share of the models, and each model keeps its
resumable state in ``ckpt.run_state(name)`` (under ``$HYPERNET_RUNS``). Stopping the script and
starting it again therefore resumes every model where its last evaluation left off. When every
worker has finished, the training cell runs once more with all the models: each resumes from a
finished state, and the cell writes ``hypernet_lib/checkpoints/ch5_char_lm.pt`` and its manifest
entry, exactly as executing the chapter would.

At N_h 512 (6 epochs) a model took 44-54 minutes on one core of a 2-core x86 machine; the six took
about 2.5 hours with two workers.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "book" / "05_hyperlstm.ipynb"
TRAIN_MARK = 'ShippedCheckpoint("ch5_char_lm"'
SPLIT_MARK = "models, histories, seconds = {}, {}, {}"


def chapter_code(path: Path = NOTEBOOK) -> tuple[str, str, str]:
    """(parameters and set-up cells, training cell up to its loop, the rest of the training cell)."""
    cells = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
             if c["cell_type"] == "code"]
    source = ["".join(c["source"]) for c in cells]
    first = next((k for k, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", [])), None)
    train = next((k for k, s in enumerate(source) if TRAIN_MARK in s), None)
    if first is None or train is None or SPLIT_MARK not in source[train]:
        raise SystemExit(f"{path}: no parameters cell, or no training cell with {TRAIN_MARK!r} "
                         f"and {SPLIT_MARK!r}; update tools/train_ch5.py to the chapter")
    head, tail = source[train].split(SPLIT_MARK, 1)
    return "\n".join(source[first:first + 2]), head, SPLIT_MARK + tail


def prepare(threads: int) -> dict:
    """Run the chapter's parameters, set-up and run definitions at cpu scale; return the namespace."""
    os.environ["HYPERNET_SCALE"] = "cpu"
    import torch
    torch.set_num_threads(threads)
    setup, head, _ = chapter_code()
    ns: dict = {"__name__": "ch5"}
    exec(compile(setup, "ch5-setup", "exec"), ns)
    exec(compile(head, "ch5-train-head", "exec"), ns)
    return ns


def _exit_with_parent(parent: int, every: float = 5.0) -> None:
    """Stop this worker when the script that started it is gone (killed, say): its models resume
    from their last run state, instead of training on unseen and competing with a new run."""
    import threading

    def watch():
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(3)
    threading.Thread(target=watch, daemon=True).start()


def worker(names: list[str], threads: int, parent: int) -> None:
    """Train ``names`` with the chapter's training loop; keep only their run states."""
    _exit_with_parent(parent)
    ns = prepare(threads)
    ns["RUNS"] = {n: ns["RUNS"][n] for n in names}
    ckpt = ns["ckpt"]
    ckpt.usable = lambda: False          # train (or resume) even if a matching file ships
    ckpt.save = lambda *a, **k: None     # the last pass, with every model, writes the file
    _, _, tail = chapter_code()
    t0 = time.perf_counter()
    exec(compile(tail, "ch5-train", "exec"), ns)
    for n in names:
        h = ns["histories"][n]
        print(f"[{os.getpid()}] {n}: {h.step[-1]} steps, best valid {h.best_val_bpc:.3f} bpc, "
              f"{time.perf_counter() - t0:.0f} s so far", flush=True)


def shares(names: list[str], cost: dict[str, float], workers: int) -> list[list[str]]:
    """Split ``names`` over ``workers``: the costliest first, each to the least loaded worker."""
    load = [0.0] * workers
    out: list[list[str]] = [[] for _ in range(workers)]
    for n in sorted(names, key=lambda n: -cost[n]):
        k = load.index(min(load))
        out[k].append(n)
        load[k] += cost[n]
    return [s for s in out if s]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=2, help="processes training at once (default 2)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1)")
    args = p.parse_args(argv)
    if args.workers < 1 or args.threads < 1:
        p.error("--workers and --threads must be at least 1")
    ns = prepare(args.threads)
    runs = ns["RUNS"]
    print(f"{len(runs)} models, settings hash folder: {Path(ns['ckpt'].run_state('x')).parent}", flush=True)
    # cost ~ N_h² times the cell's step time over a plain LSTM's (measured at N_h 512, B 32, T 50)
    factor = {"lstm": 1.0, "hyperlstm": 1.4, "ln-lstm": 1.47, "ln-hyperlstm": 1.56}
    cost = {n: spec[1] ** 2 * factor.get(spec[0], 1.6) for n, spec in runs.items()}
    parts = shares(list(runs), cost, args.workers)
    t0 = time.perf_counter()
    procs = [mp.get_context("spawn").Process(target=worker, args=(part, args.threads, os.getpid()))
             for part in parts]
    # a SIGTERM ends the workers too (each keeps its last run state), as Ctrl-C does
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        for proc, part in zip(procs, parts):
            proc.start()
            print(f"worker {proc.pid}: {', '.join(part)}", flush=True)
        for proc in procs:
            proc.join()
    except BaseException:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        raise
    failed = [proc.pid for proc in procs if proc.exitcode != 0]
    if failed:
        print(f"worker(s) {failed} failed; run again to resume", file=sys.stderr)
        return 1
    print(f"all models trained in {time.perf_counter() - t0:.0f} s; writing the checkpoint", flush=True)
    _, _, tail = chapter_code()
    exec(compile(tail, "ch5-train", "exec"), ns)
    return 0


if __name__ == "__main__":
    sys.exit(main())

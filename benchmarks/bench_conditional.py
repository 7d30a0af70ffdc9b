"""Per-sample weights: speed of the four implementations of y_b = W(z_b) x_b + b(z_b).

One run, same layer, same inputs, CPU; prints best-of-N seconds per forward+backward call and
the speed-up of each batched implementation over the Python loop (measured in this run).

    .venv/bin/python benchmarks/bench_conditional.py            # batch 256, ~10 s
    .venv/bin/python benchmarks/bench_conditional.py --big      # also batch 1024 and a wider layer
"""
from __future__ import annotations

import argparse

import torch

from hypernet_lib.analysis import time_per_sample_impls
from hypernet_lib.nn import IMPLS
from hypernet_lib.runtime import machine_line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--big", action="store_true", help="also run batch 1024 and a 256->128 layer")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {machine_line()}")
    configs = [dict(batch=args.batch, in_features=64, out_features=32)]
    if args.big:
        configs += [dict(batch=1024, in_features=64, out_features=32),
                    dict(batch=args.batch, in_features=256, out_features=128)]
    for cfg in configs:
        for backward in (False, True):
            r = time_per_sample_impls(repeats=args.repeats, backward=backward, **cfg)
            what = "forward+backward" if backward else "forward"
            print(f"\nbatch {cfg['batch']}, layer {cfg['in_features']}->{cfg['out_features']}, N_z=8, d=32, {what}:")
            for impl in IMPLS:
                print(f"  {impl:7s} {1e3 * r[impl]:9.3f} ms   {r['ratio_' + impl]:6.1f}x vs loop")


if __name__ == "__main__":
    main()

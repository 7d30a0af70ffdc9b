"""How much does generating the weights cost?  Chapter 4's CIFAR nets, measured in one run.

For every variant of :func:`hypernet_lib.cifar.build_cifar_net` this prints

* the median time of one training step (forward, backward, AdamW step), and its ratio to the
  standard net's step measured in the same run;
* the time of generating the weights alone (the weight source's forward + backward), as a share
  of that variant's train step.  The issue's target for the chunked generator is <= 5 %.

Generation cost does not depend on the batch, the main net's cost grows with it, so the share falls
as the batch grows: quote it at the batch you train with.

    python benchmarks/bench_cifar.py                 # CPU default: width 0.5, batch 32, ~1 min
    python benchmarks/bench_cifar.py --full          # the real net: width 1, batch 128 (GPU: bf16 + channels_last)
    python benchmarks/bench_cifar.py --width 1 --batch 128 --reps 10 --variants standard chunked_full
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hypernet_lib.analysis import count_params, time_interleaved  # noqa: E402
from hypernet_lib.nn import VARIANTS, build_cifar_net  # noqa: E402
from hypernet_lib.runtime import device_name, get_device


def bench_variant(variant, width, batch, device, amp, warmup, reps):
    torch.manual_seed(0)
    net = build_cifar_net(variant, width=width).to(device)
    cl = device.type == "cuda"
    if cl:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    x = torch.randn(batch, 3, 32, 32, device=device)
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 100, (batch,), device=device)
    ac = lambda: torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda")

    def step():
        with ac():
            loss = F.cross_entropy(net(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()

    with torch.no_grad():
        shapes = {k: v.shape for k, v in net.source().items()}
    grads = {k: torch.randn(s, device=device) for k, s in shapes.items()}

    def generate():                       # the weight source alone: forward + backward
        with ac():
            w = net.source()
        names = list(w)
        torch.autograd.backward([w[n] for n in names], [grads[n].to(w[n].dtype) for n in names])
        net.zero_grad(set_to_none=True)

    t = time_interleaved({"step": step, "gen": generate}, repeats=reps, warmup=warmup, device=device)
    return {"variant": variant, "params": count_params(net), "step_s": t["step"], "gen_s": t["gen"]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--full", action="store_true", help="width 1, batch 128, more repetitions")
    p.add_argument("--width", type=float, default=None)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--reps", type=int, default=None)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default=None, help="cpu / cuda (default: best available)")
    p.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    a = p.parse_args(argv)
    width = a.width if a.width is not None else (1.0 if a.full else 0.5)
    batch = a.batch if a.batch is not None else (128 if a.full else 32)
    reps = a.reps if a.reps is not None else (20 if a.full else 3)
    device = get_device(a.device)
    amp = device.type == "cuda" and not a.no_amp
    variants = ["standard"] + [v for v in a.variants if v != "standard"]
    print(f"machine: {device_name(device)} | torch {torch.__version__} | width {width} | batch {batch} | "
          f"reps {reps} (median) | bf16 autocast {'on' if amp else 'off'}")
    rows = [bench_variant(v, width, batch, device, amp, a.warmup, reps) for v in variants]
    base = rows[0]["step_s"]
    print(f"{'variant':<13} {'params':>12} {'step ms':>9} {'vs standard':>12} {'generation ms':>14} {'gen share':>10}")
    for r in rows:
        share = r["gen_s"] / r["step_s"]
        print(f"{r['variant']:<13} {r['params']:>12,} {1000 * r['step_s']:>9.1f} {r['step_s'] / base:>11.2f}x "
              f"{1000 * r['gen_s']:>14.1f} {100 * share:>9.1f}%")
    print("generation = the weight source's forward + backward alone (for 'standard': handing out the "
          "ordinary weights); share = generation / train step of the same variant.")
    return rows


if __name__ == "__main__":
    main()

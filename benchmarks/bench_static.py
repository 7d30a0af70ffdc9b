"""Train-step time of the MNIST hypernetwork against the conventional net, measured in one run.

    python benchmarks/bench_static.py [--batch 1000] [--steps 20] [--device cpu]

The kernel is generated once per step (not once per sample), so the hypernetwork should cost
almost nothing extra: target ratio <= 1.05 on the CPU.  Steps of the two nets are interleaved
so that both see the same machine load; the median over steps is reported.
"""
import argparse
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from hypernet_lib.analysis import time_interleaved
from hypernet_lib.nn import MNISTConvNet, MNISTHyperNet  # noqa: E402
from hypernet_lib.runtime import device_name  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=1000, help="batch size (the paper's: 1000)")
    p.add_argument("--steps", type=int, default=20, help="timed steps per net")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    if args.batch <= 0 or args.steps <= 0:
        p.error("--batch and --steps must be positive")
    dev = torch.device(args.device)
    torch.manual_seed(0)
    x = torch.randn(args.batch, 1, 28, 28, device=dev)
    y = torch.randint(0, 10, (args.batch,), device=dev)
    nets = {"conventional": MNISTConvNet().to(dev), "hypernetwork": MNISTHyperNet().to(dev)}
    opts = {k: torch.optim.Adam(m.parameters(), 1e-3) for k, m in nets.items()}

    def step(name):
        opts[name].zero_grad(set_to_none=True)
        F.cross_entropy(nets[name](x), y).backward()
        opts[name].step()

    fns = {name: (lambda name=name: step(name)) for name in nets}
    fns["generation"] = nets["hypernetwork"].conv2_kernel
    secs = time_interleaved(fns, repeats=args.steps, warmup=3, device=dev)
    med = {k: secs[k] for k in nets}
    print(f"machine: {device_name(dev)}, torch {torch.__version__}")
    print(f"batch {args.batch}, median of {args.steps} interleaved train steps (forward + backward + Adam):")
    for k, v in med.items():
        print(f"  {k:13s} {1000 * v:8.2f} ms/step")
    print(f"  kernel generation alone: {1000 * secs['generation']:.3f} ms")
    ratio = med["hypernetwork"] / med["conventional"]
    print(f"ratio hypernetwork / conventional: {ratio:.3f}  (target <= 1.05)")
    return ratio


if __name__ == "__main__":
    main()

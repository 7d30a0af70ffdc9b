"""Few-shot learning: cost of sampling episodes and of one training step of each method.

Synthetic 28x28 images in 20 classes (no download), CPU by default. Prints seconds per batch of
episodes for the batched sampler against a Python loop over episodes and classes, and seconds per
training step (forward + backward + Adam) of the hypernetwork, the prototypical network and the
fine-tuning baseline, all measured in this run with ``time_interleaved``.

    .venv/bin/python benchmarks/bench_fewshot.py                  # ~20 s
    .venv/bin/python benchmarks/bench_fewshot.py --episodes 16 --threads 1
"""
from __future__ import annotations

import argparse

import torch

from hypernet_lib.analysis import time_interleaved
from hypernet_lib.data import EpisodeSampler, FewShotData
from hypernet_lib.nn import METHODS, ConvEncoder, FineTune, HyperFewShot, ProtoNet
from hypernet_lib.runtime import machine_line
from hypernet_lib.training import episode_loss, make_optimizer, training_labels


def _loop_sample(sampler: EpisodeSampler, n_episodes, n_way, k_shot, n_query, g):
    """The literal reading: one episode at a time, one class at a time (for the comparison only)."""
    out = []
    for _ in range(n_episodes):
        classes = torch.randperm(sampler.n_classes, generator=g)[:n_way]
        for c in classes.tolist():
            members = sampler.table[c, :int(sampler.counts[c])]
            out.append(members[torch.randperm(len(members), generator=g)[:k_shot + n_query]])
    return torch.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=8, help="episodes per batch")
    ap.add_argument("--shot", type=int, default=5)
    ap.add_argument("--per-class", type=int, default=500, help="images per class in the pool")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args()
    if args.episodes < 1 or args.shot < 1 or args.per_class < args.shot + 5 or args.repeats < 1:
        ap.error("need --episodes >= 1, --shot >= 1, --repeats >= 1 and --per-class >= shot + 5")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {machine_line()}")
    g = torch.Generator().manual_seed(0)
    y = torch.arange(20).repeat_interleave(args.per_class)
    data = FewShotData(torch.randn(len(y), 1, 28, 28, generator=g), y, tuple(map(str, range(20))),
                          tuple(range(10)), tuple(range(10, 20)), "synthetic")
    sampler = EpisodeSampler(data, "train")
    e, n, k, q = args.episodes, 5, args.shot, 5
    t = time_interleaved({"batched": lambda: sampler.sample(e, n, k, q, generator=g),
                          "loop": lambda: _loop_sample(sampler, e, n, k, q, g)}, repeats=args.repeats * 4)
    print(f"\nsampling {e} episodes, 5-way {k}-shot, {q} queries per class:")
    for name, s in t.items():
        print(f"  {name:8s} {1e3 * s:8.3f} ms   {t['loop'] / s:6.1f}x vs loop")

    steps, label_of = {}, training_labels(sampler)
    for name in METHODS:
        torch.manual_seed(0)
        enc = ConvEncoder()
        model = {"hyper": lambda: HyperFewShot(enc), "proto": lambda: ProtoNet(enc),
                 "finetune": lambda: FineTune(enc, 10)}[name]()
        opt = make_optimizer("adam", model.parameters(), 1e-3)
        ep = sampler.sample(e, n, k, q, generator=g)
        sup, qry = sampler.images(ep)

        def step(model=model, opt=opt, ep=ep, sup=sup, qry=qry):
            loss = episode_loss(model, sampler, ep, sup, qry, label_of)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        steps[name] = step
    t = time_interleaved(steps, repeats=args.repeats)
    print(f"\none training step ({e} episodes, {e * n * (k + q)} images):")
    for name, s in t.items():
        print(f"  {name:9s} {1e3 * s:9.1f} ms")


if __name__ == "__main__":
    main()

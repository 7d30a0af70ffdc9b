"""Forward+backward time per character of the HyperLSTM layer against nn.LSTM of the same hidden size.

    .venv/bin/python benchmarks/bench_hyperlstm.py            # a small size and the paper's, as its speed
        # table measures them at cpu scale (about 30 s on a 2-core CPU)
    .venv/bin/python benchmarks/bench_hyperlstm.py --big      # the paper's PTB sizes (N_h = 1000, B = 128)
    .venv/bin/python benchmarks/bench_hyperlstm.py --compile --seq 20  # also torch.compile the autograd loop;
        # it unrolls the time loop, so compilation takes minutes on a CPU and grows with --seq

Every row is measured in the same run, the models taking turns, and printed as a ratio to nn.LSTM (cuDNN
on a GPU, MKL/oneDNN on a CPU), the baseline.  Rows: our LN-LSTM; HyperLSTM and LN-HyperLSTM as the
library runs them (``hyperlstm_fast``: no autograd graph in the time loop, a hand-written backward, and on
the CPU the elementwise work of each step in one C++ kernel call); LN-HyperLSTM with the kernels switched
off (``hyperlstm_native.ENABLED = False``: the torch loop, what runs where no compiler is found), to show what
the kernels buy; the same LN-HyperLSTM through ``forward_reference`` (the readable loop that autograd
differentiates), to show what the hand-written backward buys; with ``--naive`` the direct per-gate loop.  Memory: the bytes kept for the backward pass (activations, measured the same way
on any device; this is what grows with batch × sequence length) and, on CUDA, the peak allocated memory
of a forward+backward pass.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, ".")
from hypernet_lib.analysis import speed_rows, time_fwd_bwd
from hypernet_lib.nn import LN_EPS, HyperLSTMLayer, kernel_status
from hypernet_lib.runtime import machine_line  # noqa: E402


class NaiveHyperLSTM(torch.nn.Module):
    """The same model written the direct way: per step and per gate, every matmul inside the loop."""

    def __init__(self, layer: HyperLSTMLayer):
        super().__init__()
        self.l = layer

    def forward(self, x):
        l = self.l  # noqa: E741
        H, Hh, Nz = l.hidden_size, l.hyper_num_units, l.n_z
        T, B = x.shape[:2]
        h, c, hh, hc = l.initial_state(B, x.device)
        W_z, b_z, W_d = l.z_weights(), l.b_z.view(2, 4, Nz), l.W_d.view(3, 4, Nz, H)
        outs = []
        for t in range(T):
            xt = x[t]
            a = []
            for k in range(4):
                v = (xt @ l.W_in[:, 4 * H + k * Hh:4 * H + (k + 1) * Hh] + h @ l.W_rec[:, 4 * H + k * Hh:4 * H + (k + 1) * Hh]
                     + hh @ l.W_hath[:, k * Hh:(k + 1) * Hh])
                a.append(F.layer_norm(v, (Hh,), l.ln_hat_gain[k], l.ln_hat_bias[k], LN_EPS))
            hc = torch.sigmoid(a[2] + 1) * hc + torch.sigmoid(a[0]) * torch.tanh(a[1])
            hh = torch.sigmoid(a[3]) * torch.tanh(F.layer_norm(hc, (Hh,), l.ln_hat_c_gain, l.ln_hat_c_bias, LN_EPS))
            ys = []
            for k in range(4):
                d_h = (hh @ W_z[:, 0, k] + b_z[0, k]) @ W_d[0, k]
                d_x = (hh @ W_z[:, 1, k] + b_z[1, k]) @ W_d[1, k]
                bb = (hh @ W_z[:, 2, k]) @ W_d[2, k] + l.b_0[k * H:(k + 1) * H]
                y = d_h * (h @ l.W_rec[:, k * H:(k + 1) * H]) + d_x * (xt @ l.W_in[:, k * H:(k + 1) * H]) + bb
                ys.append(F.layer_norm(y, (H,), l.ln_gain[k], l.ln_bias[k], LN_EPS))
            c = torch.sigmoid(ys[2] + 1) * c + torch.sigmoid(ys[0]) * torch.tanh(ys[1])
            h = torch.sigmoid(ys[3]) * torch.tanh(F.layer_norm(c, (H,), l.ln_c_gain, l.ln_c_bias, LN_EPS))
            outs.append(h)
        return torch.stack(outs), None


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _storages(obj, seen):
    if isinstance(obj, torch.Tensor):
        st = obj.untyped_storage()
        seen[st.data_ptr()] = st.nbytes()
    elif isinstance(obj, dict):
        for v in obj.values():
            _storages(v, seen)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _storages(v, seen)


def saved_bytes(fn, x) -> int:
    """Bytes of the distinct storages kept for the backward pass by one forward pass: what autograd saves,
    plus the buffers the fast path's backward node holds itself (``ctx.saved``)."""
    seen = {}

    def pack(t):
        _storages(t, seen)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(x)[0]
    _storages(getattr(out.grad_fn, "saved", None), seen)
    del out
    return sum(seen.values())


def cuda_peak_mib(fn, x, device) -> float:
    if device.type != "cuda":
        return float("nan")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn(x)[0].sum().backward()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20


def _measure(a, device, V, Nz, H, Hh, B, T, reps, label):
    """Time every row at one size and print the table."""
    print(f"sizes{' (' + label + ')' if label else ''}: N_h={H}, N_ĥ={Hh}, N_z={Nz}, batch={B}, seq={T}, "
          f"one-hot input over V={V}; median of {reps} forward+backward passes, models measured in turn")
    x = torch.randint(0, V, (T, B), device=device)
    x1h = F.one_hot(x, V).float()
    chars = T * B
    table = speed_rows(V, H, Hh, Nz, device=device)
    ln_hyper = table["LN-HyperLSTM"]
    if a.naive:
        naive = NaiveHyperLSTM(ln_hyper)
        table["LN-HyperLSTM, naive loop"] = lambda inp: naive(x1h)
    if a.compile:
        try:
            compiled = torch.compile(ln_hyper.forward_reference)
            t0 = time.perf_counter()
            (compiled(x)[0]).sum().backward()
            sync(device)
            print(f"torch.compile: first call (compilation) {time.perf_counter() - t0:.1f} s")
            table["LN-HyperLSTM, autograd loop, torch.compile"] = lambda inp: compiled(inp)
        except Exception as e:  # noqa: BLE001 - report and go on
            print(f"torch.compile unavailable here: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
    med = time_fwd_bwd(table, x, repeats=reps)
    rows = list(table.items())
    base = med[rows[0][0]]
    print(f"{'model':44s} {'µs/char':>9s} {'ratio':>7s} {'saved MiB':>10s} {'CUDA peak MiB':>14s}")
    print("(saved MiB: activations kept for the backward pass; the fast path also keeps its freed buffers in a "
          "workspace for the next call)")
    for name, fn in rows:
        us = med[name] / chars * 1e6
        print(f"{name:44s} {us:9.2f} {med[name] / base:6.2f}x {saved_bytes(fn, x) / 2**20:10.1f} "
              f"{cuda_peak_mib(fn, x, device):14.1f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--big", action="store_true", help="paper sizes: N_h=1000, N_ĥ=128, B=128, T=100, V=50")
    p.add_argument("--hidden", type=int, default=None, help="N_h (default 256; --big: 1000)")
    p.add_argument("--hyper", type=int, default=None, help="N_ĥ (default 64; --big: 128)")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--seq", type=int, default=None)
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile of the autograd loop")
    p.add_argument("--naive", action="store_true", help="also time the naive per-gate loop (slow)")
    p.add_argument("--device", default=None)
    a = p.parse_args(argv)
    for name in ("hidden", "hyper", "batch", "seq", "repeats", "threads"):
        if getattr(a, name) is not None and getattr(a, name) <= 0:
            p.error(f"--{name} must be a positive integer, got {getattr(a, name)}")
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device) if a.device else (torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
    V, Nz = 50, 4
    torch.manual_seed(0)
    print(f"machine: {machine_line(device)}")
    if device.type == "cpu":
        print(f"C++ step kernels: {kernel_status()}")
    if a.big or any(getattr(a, n) is not None for n in ("hidden", "hyper", "batch", "seq")):
        big = a.big
        configs = [(a.hidden or (1000 if big else 256), a.hyper or (128 if big else 64), a.batch or (128 if big else 32),
                    a.seq or (100 if big else 50), a.repeats or (3 if big else 7), "")]
    else:       # the two sizes that chapter 5's speed table measures at cpu scale
        configs = [(256, 64, 32, 50, a.repeats or 7, "the small size of chapter 5's speed table"),
                   (1000, 128, 128, 20, a.repeats or 3, "the paper's size, 20 steps; --big runs 100")]
    for H, Hh, B, T, reps, label in configs:
        print()
        _measure(a, device, V, Nz, H, Hh, B, T, reps, label)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

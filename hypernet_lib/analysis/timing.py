"""Timing side by side: interleaved repeats, so that machine noise hits every contender alike."""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import torch
import torch.nn.functional as F

from ..checks import MAX_SEED, check_int, check_positive_ints
from ..nn.conditional import IMPLS, PerSampleLinear
from ..nn import hyperlstm_native
from ..nn.hyperlstm import HyperLSTMLayer, LayerNormLSTMLayer, TorchLSTMLayer
from ..runtime import machine_line

__all__ = ["time_interleaved", "speed_rows", "time_fwd_bwd", "time_per_sample_impls"]


def time_interleaved(fns: Mapping[str, Callable[[], Any]], repeats: int, warmup: int = 1,
                     device: Optional[torch.device] = None, stat: str = "median") -> Dict[str, float]:
    """Seconds per call of each function in ``fns``, measured in one run for comparing them.

    The functions take turns: each of the ``repeats`` rounds calls every function once, so a change in
    machine load (a shared CPU, GPU clocks) hits all of them alike and their ratios stay meaningful.
    ``warmup`` untimed rounds come first.  On CUDA the device is synchronised after every call.
    ``stat`` is "median" (default) or "min" (best of, the least noisy on a busy machine).
    Returns {name: seconds}.
    """
    if stat not in ("median", "min"):
        raise ValueError(f"stat must be 'median' or 'min', got {stat!r}")
    check_positive_ints(repeats=repeats)
    cuda = device is not None and torch.device(device).type == "cuda"

    def call(fn) -> float:
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize(device)
        return time.perf_counter() - t0

    for _ in range(warmup):
        for fn in fns.values():
            call(fn)
    times: Dict[str, list] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(call(fn))
    reduce = statistics.median if stat == "median" else min
    return {name: reduce(ts) for name, ts in times.items()}


def speed_rows(vocab_size: int, hidden_size: int, hyper_num_units: int, n_z: int = 4,
               device=None, seed: int = 0) -> Dict[str, Callable[[torch.Tensor], Tuple]]:
    """The layers a speed comparison runs, each as ``fn(ids) -> (out, state)`` on the same one-hot input:
    nn.LSTM (the baseline; fed ``F.one_hot`` floats), our LN-LSTM, HyperLSTM and LN-HyperLSTM as the
    library runs them (the fast path), on the CPU the LN-HyperLSTM's fast path with its C++ step kernels
    switched off (the torch loop; only where the kernels are built), and the LN-HyperLSTM's
    ``forward_reference`` (autograd loop)."""
    torch.manual_seed(seed)
    V = vocab_size
    lstm = TorchLSTMLayer(V, hidden_size).to(device)
    ln_lstm = LayerNormLSTMLayer(V, hidden_size).to(device)
    hyper = HyperLSTMLayer(V, hidden_size, hyper_num_units, n_z, use_layer_norm=False).to(device)
    ln_hyper = HyperLSTMLayer(V, hidden_size, hyper_num_units, n_z, use_layer_norm=True).to(device)
    rows = {"nn.LSTM (baseline)": lambda ids: lstm(F.one_hot(ids, V).float()),
            "LN-LSTM": ln_lstm,
            "HyperLSTM": hyper,
            "LN-HyperLSTM": ln_hyper}
    if hyperlstm_native.usable(ln_hyper.W_rec.device, ln_hyper.W_rec.dtype):
        def torch_loop(ids):                    # the forward pass decides which backward runs
            before, hyperlstm_native.ENABLED = hyperlstm_native.ENABLED, False
            try:
                return ln_hyper(ids)
            finally:
                hyperlstm_native.ENABLED = before
        rows["LN-HyperLSTM, torch loop"] = torch_loop
    rows["LN-HyperLSTM, autograd loop"] = ln_hyper.forward_reference
    return rows


def time_fwd_bwd(rows: Dict[str, Callable[[torch.Tensor], Tuple]], ids: torch.Tensor, repeats: int = 3,
                 warmup: int = 1) -> Dict[str, float]:
    """Seconds per forward+backward pass of each row on ``ids`` (T, B), the rows taking turns
    (:func:`time_interleaved`); the backward pass starts from a fixed random
    gradient of the outputs."""
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.is_floating_point() or ids.numel() == 0:
        raise ValueError("ids must be a non-empty (T, B) tensor of integer ids, got "
                         f"{(ids.dtype, tuple(ids.shape)) if isinstance(ids, torch.Tensor) else type(ids).__name__}")
    weights = {name: torch.randn_like(fn(ids)[0]) for name, fn in rows.items()}
    calls = {name: (lambda fn=fn, w=weights[name]: (fn(ids)[0] * w).sum().backward()) for name, fn in rows.items()}
    return time_interleaved(calls, repeats=repeats, warmup=warmup, device=ids.device)


def time_per_sample_impls(batch: int = 256, in_features: int = 64, out_features: int = 32, n_z: int = 8,
                          d: int = 32, repeats: int = 5, backward: bool = True, seed: int = 0) -> dict:
    """Best-of-``repeats`` seconds per forward(+backward) call of each implementation in ``IMPLS``
    on the CPU (the minimum is the least noisy statistic on a shared machine).

    Returns {impl: seconds, ..., 'ratio_<impl>': loop_time / impl_time, 'machine': str}.
    """
    check_int(batch=batch, in_features=in_features, out_features=out_features, n_z=n_z, d=d, repeats=repeats, lo=1)
    check_int(seed=seed, lo=0, hi=MAX_SEED)
    g = torch.Generator().manual_seed(seed)
    layer = PerSampleLinear(in_features, out_features, n_z, d)
    x = torch.randn(batch, in_features, generator=g)
    z = torch.randn(batch, n_z, generator=g)
    times = {}
    for impl in IMPLS:
        ts = []
        for r in range(repeats + 1):                           # first call is a warm-up
            t0 = time.perf_counter()
            y = layer(x, z, impl=impl)
            if backward:
                y.square().mean().backward()
            ts.append(time.perf_counter() - t0)
        layer.zero_grad(set_to_none=True)
        times[impl] = min(ts[1:])
    out = dict(times)
    for impl in IMPLS:
        out[f"ratio_{impl}"] = times["loop"] / times[impl]
    out["machine"] = machine_line()
    return out

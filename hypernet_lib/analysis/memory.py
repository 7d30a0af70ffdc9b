"""Parameters, generated-weight memory and checkpoint sizes."""
from __future__ import annotations

import os
import tempfile
from typing import Callable, Optional

import torch
import torch.nn as nn

from ..checks import check_float

__all__ = ["count_params", "checkpoint_bytes", "checkpoint_mb", "checkpoint_mib", "format_bytes",
           "generation_memory", "memory_disk_table"]


def count_params(module_or_params) -> int:
    """Number of scalars in a module's parameters (or in an iterable of tensors)."""
    params = module_or_params.parameters() if hasattr(module_or_params, "parameters") else module_or_params
    return sum(p.numel() for p in params)


def checkpoint_bytes(module, directory: Optional[str] = None) -> int:
    """Size on disk of ``torch.save(module.state_dict())``, measured by saving to a temporary file."""
    fd, path = tempfile.mkstemp(suffix=".pt", dir=directory)
    os.close(fd)
    try:
        torch.save(module.state_dict(), path)
        return os.path.getsize(path)
    finally:
        os.remove(path)


def checkpoint_mb(module: nn.Module) -> float:
    """Size in MB (10^6 bytes) of ``torch.save(module.state_dict())``, measured by saving it."""
    return checkpoint_bytes(module) / 1e6


def checkpoint_mib(module: nn.Module) -> float:
    """Size in MiB (2^20 bytes) of ``torch.save(module.state_dict())``, measured by saving it.

    The unit of chapter 3's tables."""
    return checkpoint_bytes(module) / 2 ** 20


def format_bytes(n: float) -> str:
    check_float(n=n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def _storage_key(t: torch.Tensor):
    s = t.untyped_storage()
    return (t.device.type, s.data_ptr())


def generation_memory(module: nn.Module, fn: Optional[Callable[[nn.Module], object]] = None) -> dict:
    """Memory that generating the weights occupies, measured from the tensors themselves.

    Runs ``fn(module)`` (default ``module()``) with autograd on, and records:

    - ``param_bytes``: the learned parameters;
    - ``generated_bytes``: the tensors it returns (the generated weights, which must exist in
      memory for the main net to use them, however few parameters produced them);
    - ``saved_bytes``: activations autograd keeps for the backward pass (unique storages,
      parameters excluded), via ``torch.autograd.graph.saved_tensors_hooks``;
    - ``total_bytes``: the sum, a lower bound on the peak while training;
    - on CUDA also ``cuda_peak_bytes`` (``torch.cuda.max_memory_allocated`` during the call).
    """
    if not isinstance(module, nn.Module):
        raise ValueError(f"module must be an nn.Module, got {type(module).__name__}")
    fn = fn or (lambda m: m())
    params = {_storage_key(p): p.untyped_storage().nbytes() for p in module.parameters()}
    saved: dict = {}

    def pack(t):
        k = _storage_key(t)
        if k not in params:
            saved[k] = t.untyped_storage().nbytes()
        return t

    first = next(iter(module.parameters()), None)
    if first is None:
        raise ValueError(f"{type(module).__name__} has no parameters; generation_memory needs a module with some")
    dev = first.device
    cuda = dev.type == "cuda"
    if cuda:
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(module)
    outs = list(out.values()) if isinstance(out, dict) else out if isinstance(out, (list, tuple)) else [out]
    generated = {_storage_key(t): t.untyped_storage().nbytes() for t in outs if isinstance(t, torch.Tensor)}
    generated = {k: v for k, v in generated.items() if k not in params}   # "ordinary" returns its parameter
    for k in generated:
        saved.pop(k, None)
    res = {"param_bytes": sum(params.values()), "generated_bytes": sum(generated.values()),
           "saved_bytes": sum(saved.values())}
    res["total_bytes"] = res["param_bytes"] + res["generated_bytes"] + res["saved_bytes"]
    if cuda:
        torch.cuda.synchronize(dev)
        res["cuda_peak_bytes"] = torch.cuda.max_memory_allocated(dev) - base + res["param_bytes"]
    del out, outs
    return res


def memory_disk_table(modules: dict[str, nn.Module],
                      fns: Optional[dict[str, Callable[[nn.Module], object]]] = None) -> list[dict]:
    """For each named module: parameters, bytes of parameters, memory while generating
    (see :func:`generation_memory`) and checkpoint size on disk (measured)."""
    if not isinstance(modules, dict):
        raise ValueError(f"modules must be a dict {{name: module}}, got {type(modules).__name__}")
    rows = []
    for name, m in modules.items():
        mem = generation_memory(m, (fns or {}).get(name))
        rows.append({"name": name, "params": count_params(m), **mem, "disk_bytes": checkpoint_bytes(m)})
    return rows

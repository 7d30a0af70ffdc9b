"""Conditional hypernetworks: weights generated per sample or per task.

A conditional hypernetwork h(·; Θ) maps a *condition* z to the parameters of a
main network:  θ = h(z; Θ).  Chapter 6 uses two kinds of condition.

* **Per sample** (:class:`PerSampleLinear`): every sample b carries its own z_b and gets its
  own linear layer  y_b = W(z_b) x_b + b(z_b).  Four implementations of the same map
  (``IMPLS``): a Python loop over samples, ``torch.bmm``, ``torch.einsum`` and
  ``torch.func.vmap`` + ``functional_call``.

* **Per task** (:class:`TaskHyperNet`): a learned task embedding e_t generates a whole
  MNIST classifier (:class:`MainMLP`, a hypnettorch-style main net with a functional
  forward that takes the weights as an argument).  With chunking, the hypernet emits
  the parameter vector in chunks of ``chunk_size`` values, each chunk conditioned on
  [e_t, c_k] with a learned chunk embedding c_k, so its output head is small.
  Baselines with the same interface: :class:`SharedNet` (one net, task ignored) and
  :class:`SeparateNets` (one net per task).

Continual learning uses the output regulariser of von Oswald et al. (2020), Eq. 2
without the look-ahead term (:func:`output_regularizer`, :func:`train_continual`).

Initialisation (:func:`hyperfan_variance`): hyperfan-in and hyperfan-out of
Chang, Flokas & Lipson (2020) choose the variance of the hypernet's output head so
that the *generated* weights have the variance that Kaiming (fan-in) or fan-out
init would give the main net directly:

    hyperfan-in,  weight:  Var(H) = g / (c_b · d_j · d_k · Var(e))      c_b = 2 if a bias is generated, else 1
    hyperfan-in,  bias:    Var(G) = g / (2 · d_k · Var(e))
    hyperfan-out, weight:  Var(H) = g / (d_i · d_k · Var(e))
    hyperfan-out, bias:    Var(G) = max(0, g · (1 − d_j / d_i)) / (d_k · Var(e))

with g the gain (2 for ReLU main nets), d_j / d_i the fan-in / fan-out of the main
layer, d_k the width of the hypernet's last hidden layer and Var(e) the second moment
E[e²] of that layer's output.  The generated weight then has variance
d_k · Var(H) · Var(e).

Diagnostics: :func:`weight_spread` (weight collapse: generated weights nearly
identical for every condition), :func:`output_spread` / :func:`z_sensitivity`
(insensitivity: the main net's output barely changes with the condition) and
:func:`diagnose`.  Plot helpers: :func:`plot_generated_weights`, :func:`plot_diagnostics`,
:func:`plot_accuracy_matrix`.

Names: z / e (condition, task embedding), N_z (``n_z``), d / d_k (hypernet hidden width),
θ (generated main-net parameters, flat vector of length P), Θ (hypernet parameters).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .train import make_optimizer
from .utils import MAX_SEED, check_finite, check_float, check_int, check_positive_ints, check_shape, machine_line

__all__ = [
    "IMPLS", "INITS",
    "hyperfan_variance",
    "PerSampleLinear", "apply_loop", "apply_bmm", "apply_einsum",
    "MainMLP", "TaskHyperNet", "SharedNet", "SeparateNets",
    "PermutedTasks", "task_accuracy", "train_multitask",
    "output_regularizer", "train_continual", "ContinualResult",
    "weight_spread", "output_spread", "z_sensitivity", "dead_fraction", "diagnose",
    "generated_weight_variance", "time_per_sample_impls",
    "plot_generated_weights", "plot_diagnostics", "plot_accuracy_matrix",
]

#: implementations of the per-sample linear layer (all compute y_b = W(z_b) x_b + b(z_b)).
IMPLS = ("loop", "bmm", "einsum", "vmap")
#: hypernetwork initialisations: PyTorch's default Linear init, hyperfan-in, hyperfan-out.
INITS = ("naive", "hyperfan_in", "hyperfan_out")


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(map(str, choices))}")


# --------------------------------------------------------------------------------------
# Hyperfan initialisation (Chang, Flokas & Lipson, 2020)
# --------------------------------------------------------------------------------------

def hyperfan_variance(method: str, kind: str, *, fan_in: int, fan_out: int, d_k: int,
                      var_e: float = 1.0, gain: float = 2.0, has_bias: bool = True) -> float:
    """Variance of the hypernet's output-head weights for one generated tensor.

    Args:
        method: ``"hyperfan_in"`` or ``"hyperfan_out"``.
        kind: ``"weight"`` or ``"bias"`` (the generated main-net tensor).
        fan_in, fan_out: d_j and d_i of the main layer the tensor belongs to.
        d_k: width of the hypernet's last hidden layer (input size of the head).
        var_e: second moment E[e²] of the head's input.
        gain: 2 for ReLU main nets, 1 for linear ones.
        has_bias: whether the main layer's bias is generated too (hyperfan-in splits the
            variance budget evenly between W x and b).

    Returns Var(H); the generated tensor then has variance ``d_k · Var(H) · var_e``.
    """
    _check_choice("method", method, ("hyperfan_in", "hyperfan_out"))
    _check_choice("kind", kind, ("weight", "bias"))
    check_int(fan_in=fan_in, fan_out=fan_out, d_k=d_k, lo=1)
    check_float(var_e=var_e, gain=gain, lo=0.0, lo_open=True)
    if method == "hyperfan_in":
        if kind == "weight":   # Chang et al. 2020, hyperfan-in: Var(W) = g / (c_b d_j)
            return gain / ((2.0 if has_bias else 1.0) * fan_in * d_k * var_e)
        return gain / (2.0 * d_k * var_e)              # hyperfan-in bias: Var(b) = g / 2
    if kind == "weight":       # hyperfan-out: Var(W) = g / d_i
        return gain / (fan_out * d_k * var_e)
    return max(0.0, gain * (1.0 - fan_in / fan_out)) / (d_k * var_e)   # hyperfan-out bias


def _target_var(method: str, kind: str, fan_in: int, fan_out: int, gain: float, has_bias: bool = True) -> float:
    """Variance of a generated tensor under hyperfan init: d_k · Var(H) · Var(e) (d_k, Var(e) cancel)."""
    return hyperfan_variance(method, kind, fan_in=fan_in, fan_out=fan_out, d_k=1, var_e=1.0,
                             gain=gain, has_bias=has_bias)


def _kaiming_body(layers: Sequence[nn.Linear]) -> None:
    """Hidden layers: Kaiming-normal weights, zero biases.  With a zero-mean input of second
    moment v, every ReLU layer's output again has second moment E[e²] = v."""
    for lin in layers:
        nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
        nn.init.zeros_(lin.bias)


def _mlp(sizes: Sequence[int]) -> nn.ModuleList:
    return nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))


def _run_body(layers: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    for lin in layers:
        x = F.relu(lin(x))
    return x


# --------------------------------------------------------------------------------------
# 1. Per-sample weights
# --------------------------------------------------------------------------------------

def _check_apply(x, w, b) -> None:
    """x (B, in), w (B, out, in), b (B, out), with one B, in and out (shapes only)."""
    check_shape("w", w, ("B", "out", "in"), fix="one (out, in) weight matrix per sample")
    B, out, n_in = w.shape
    check_shape("x", x, (B, n_in), fix=f"one input per sample, sized like w's last dimension ({n_in})")
    check_shape("b", b, (B, out), fix=f"one bias per sample, sized like w's rows ({out})")


def apply_loop(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """y_b = W_b x_b + b_b with a Python loop over samples.  x (B, in), w (B, out, in), b (B, out)."""
    _check_apply(x, w, b)
    return torch.stack([w[i] @ x[i] + b[i] for i in range(x.shape[0])])


def _bmm(x, w, b):
    return torch.bmm(w, x.unsqueeze(-1)).squeeze(-1) + b


def _einsum(x, w, b):
    return torch.einsum("boi,bi->bo", w, x) + b


def apply_bmm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Same map as :func:`apply_loop` with one batched matmul."""
    _check_apply(x, w, b)
    return _bmm(x, w, b)


def apply_einsum(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Same map as :func:`apply_loop` with one einsum."""
    _check_apply(x, w, b)
    return _einsum(x, w, b)


_LINEAR_TEMPLATE = nn.Linear(1, 1)   # only its forward (F.linear) is used by functional_call


class PerSampleLinear(nn.Module):
    """A linear layer whose W and b are generated from a per-sample condition z.

    Hypernetwork (one hidden ReLU layer of width d):
        e    = ReLU(W_h z + b_h)                 e ∈ R^d
        W(z) = reshape(H e + h_0, (out, in))     H ∈ R^{out·in × d}
        b(z) = G e + g_0                         G ∈ R^{out × d}
    Main layer, for every sample b:   y_b = W(z_b) x_b + b(z_b).

    Args:
        in_features, out_features: size of the generated layer (d_j = in, d_i = out).
        n_z: N_z, size of the condition z.
        d: width of the hidden layer (d_k in Chang et al.).
        init: one of ``INITS``; the hyperfan inits assume z has variance ``cond_var``.
        gain: 2 for a ReLU after the layer, 1 for a linear readout.

    Shapes: z (B, N_z), x (B, in) -> y (B, out).  ``generate`` accepts any leading dims.
    """

    def __init__(self, in_features: int, out_features: int, n_z: int, d: int = 32,
                 init: str = "hyperfan_in", gain: float = 2.0, cond_var: float = 1.0):
        super().__init__()
        check_positive_ints(in_features=in_features, out_features=out_features, n_z=n_z, d=d)
        check_float(gain=gain, cond_var=cond_var, lo=0.0, lo_open=True)
        self.in_features, self.out_features, self.n_z, self.d = in_features, out_features, n_z, d
        self.gain, self.cond_var = gain, cond_var
        self.hidden = nn.Linear(n_z, d)
        self.head_w = nn.Linear(d, out_features * in_features)
        self.head_b = nn.Linear(d, out_features)
        self.reset_parameters(init)

    def reset_parameters(self, init: str = "hyperfan_in") -> None:
        _check_choice("init", init, INITS)
        self.init = init
        if init == "naive":
            for lin in (self.hidden, self.head_w, self.head_b):
                lin.reset_parameters()
            return
        with torch.no_grad():
            _kaiming_body([self.hidden])      # E[e²] = Var(z) = cond_var
            for head, kind in ((self.head_w, "weight"), (self.head_b, "bias")):
                var = hyperfan_variance(init, kind, fan_in=self.in_features, fan_out=self.out_features,
                                        d_k=self.d, var_e=self.cond_var, gain=self.gain)
                head.weight.normal_(0.0, math.sqrt(var))
                head.bias.zero_()

    def _check_z(self, z: torch.Tensor) -> None:
        if not isinstance(z, torch.Tensor) or z.dim() == 0:
            check_shape("z", z, ("...", self.n_z), fix=f"pass z of shape (B, {self.n_z})")
        if z.shape[-1] != self.n_z:
            raise ValueError(f"condition z has last dimension {z.shape[-1]}, but this layer was built with "
                             f"N_z={self.n_z}; pass z of shape (B, {self.n_z})")

    def generate(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (..., N_z) -> W (..., out, in), b (..., out)."""
        self._check_z(z)
        e = F.relu(self.hidden(z))                                            # (..., d)
        w = self.head_w(e).unflatten(-1, (self.out_features, self.in_features))  # W(z) = H e + h_0
        return w, self.head_b(e)                                              # b(z) = G e + g_0

    def forward(self, x: torch.Tensor, z: torch.Tensor, impl: str = "bmm") -> torch.Tensor:
        """x (B, in), z (B, N_z) -> y (B, out), computed by ``impl`` (one of ``IMPLS``)."""
        _check_choice("impl", impl, IMPLS)
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[-1] != self.in_features:
            check_shape("x", x, ("B", self.in_features))          # raises: not (B, in_features)
        self._check_z(z)
        if z.dim() != 2 or z.shape[0] != x.shape[0]:
            raise ValueError(f"z must have shape (B, {self.n_z}) with the same B as x ({x.shape[0]}), "
                             f"got {tuple(z.shape)}")
        if impl == "loop":    # literal reading: generate and apply, one sample at a time
            out = []
            for i in range(x.shape[0]):
                w_i, b_i = self.generate(z[i])
                out.append(w_i @ x[i] + b_i)
            return torch.stack(out)
        if impl == "vmap":    # the same per-sample function, vectorised by torch.func
            def one(z_i, x_i):
                w_i, b_i = self.generate(z_i)
                return torch.func.functional_call(_LINEAR_TEMPLATE, {"weight": w_i, "bias": b_i}, (x_i,))
            return torch.func.vmap(one)(z, x)
        w, b = self.generate(z)                                # (B, out, in), (B, out): one batched call
        return _bmm(x, w, b) if impl == "bmm" else _einsum(x, w, b)    # the shapes were checked above


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


# --------------------------------------------------------------------------------------
# 2. Task-conditioned hypernetwork: main net with a functional forward
# --------------------------------------------------------------------------------------

class MainMLP(nn.Module):
    """A ReLU MLP with no parameters of its own: ``forward(x, theta)`` takes them (hypnettorch style).

    sizes=(784, 100, 100, 10) has P = 89,610 parameters, laid out in ``theta`` as
    [W_1, b_1, W_2, b_2, ...] with W_l of shape (out, in), flattened.

    Shapes: x (..., B, in) and theta (..., P) with matching leading dims (broadcast), so
    one call runs a different net for each leading index (e.g. one per task).
    """

    def __init__(self, sizes: Sequence[int] = (784, 100, 100, 10)):
        super().__init__()
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
            raise ValueError(f"sizes must be a sequence of layer widths (in, ..., out), e.g. (784, 100, 10); "
                             f"got {sizes!r}")
        sizes = tuple(int(s) if isinstance(s, np.integer) else s for s in sizes)
        if len(sizes) < 2 or any((not isinstance(s, int)) or isinstance(s, bool) or s <= 0 for s in sizes):
            raise ValueError(f"sizes must be at least two positive ints (in, ..., out), got {sizes!r}")
        self.sizes = sizes
        self.param_shapes: list[tuple[int, ...]] = []
        #: for every tensor: ("weight" | "bias", fan_in d_j, fan_out d_i)
        self.param_meta: list[tuple[str, int, int]] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            self.param_shapes += [(b, a), (b,)]
            self.param_meta += [("weight", a, b), ("bias", a, b)]
        self.numels = [math.prod(s) for s in self.param_shapes]
        self.num_params = sum(self.numels)

    def unflatten(self, theta: torch.Tensor) -> list[torch.Tensor]:
        """theta (..., P) -> [W_1 (..., out, in), b_1 (..., out), ...]."""
        if not isinstance(theta, torch.Tensor) or theta.dim() == 0:
            check_shape("theta", theta, ("...", self.num_params))
        if theta.shape[-1] != self.num_params:
            raise ValueError(f"theta has {theta.shape[-1]} values in its last dimension, but MainMLP{self.sizes} "
                             f"needs P={self.num_params}")
        parts = torch.split(theta, self.numels, dim=-1)
        return [p.unflatten(-1, s) for p, s in zip(parts, self.param_shapes)]

    def init_theta(self, n: Optional[int] = None, generator: Optional[torch.Generator] = None,
                   gain: float = 2.0) -> torch.Tensor:
        """Kaiming-normal weights, zero biases, flattened: (P,) or (n, P)."""
        check_int(n=n, lo=0, optional=True)
        lead = () if n is None else (n,)
        chunks = []
        for (kind, fan_in, _), shape in zip(self.param_meta, self.param_shapes):
            if kind == "weight":
                chunks.append(torch.randn(*lead, math.prod(shape), generator=generator) * math.sqrt(gain / fan_in))
            else:
                chunks.append(torch.zeros(*lead, math.prod(shape)))
        return torch.cat(chunks, dim=-1)

    def forward(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() == 0:
            check_shape("x", x, ("...", "B", self.sizes[0]))
        if x.shape[-1] != self.sizes[0]:
            raise ValueError(f"x has last dimension {x.shape[-1]}, MainMLP expects {self.sizes[0]} "
                             f"(flatten images to (B, {self.sizes[0]}))")
        params = self.unflatten(theta)
        if theta.dim() > 1 and x.dim() > 2:
            try:
                torch.broadcast_shapes(x.shape[:-2], theta.shape[:-1])
            except RuntimeError:
                raise ValueError(f"x (..., B, in) has leading dimensions {tuple(x.shape[:-2])} and theta (..., P) "
                                 f"{tuple(theta.shape[:-1])}; one net per leading index needs matching (or "
                                 "broadcastable) leading dimensions") from None
        n_layers = len(params) // 2
        for l in range(n_layers):
            w, b = params[2 * l], params[2 * l + 1]
            x = x @ w.transpose(-1, -2) + b.unsqueeze(-2)      # y = W x + b, batched over leading dims
            if l < n_layers - 1:
                x = F.relu(x)
        return x


def _one_id(task_ids) -> bool:
    """One task id (an int, a NumPy integer or a 0-dim tensor), as opposed to a sequence of them."""
    return (isinstance(task_ids, (int, np.integer)) and not isinstance(task_ids, bool)) or \
        (isinstance(task_ids, torch.Tensor) and task_ids.dim() == 0)


def _check_main(main, n_tasks: int, seed: int) -> None:
    if not isinstance(main, MainMLP):
        raise ValueError(f"main must be a MainMLP (a main net with a functional forward), got {type(main).__name__}")
    check_int(n_tasks=n_tasks, lo=1)
    check_int(seed=seed, lo=0, hi=MAX_SEED)


class _TaskModel(nn.Module):
    """Common interface: ``thetas(task_ids) -> (len, P)``; ``forward(x, task_ids)``."""
    main: MainMLP
    n_tasks: int

    def _ids(self, task_ids) -> torch.Tensor:
        dev = self.device
        if isinstance(task_ids, bool) or (isinstance(task_ids, (list, tuple))
                                          and any(isinstance(t, bool) for t in task_ids)):
            raise ValueError(f"task ids must be integers, got {task_ids!r} (a bool is not a task id)")
        if isinstance(task_ids, (int, np.integer)):
            task_ids = [int(task_ids)]
        try:
            raw = torch.as_tensor(task_ids)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"task ids must be integers, got {task_ids!r}") from None
        if raw.numel() == 0:
            raise ValueError(f"task ids are empty ({task_ids!r}); pass at least one task id, e.g. 0 or [0, 1]")
        if raw.dtype.is_floating_point or raw.is_complex() or raw.dtype == torch.bool:
            raise ValueError(f"task ids must be integers (a fractional id is not truncated), got {task_ids!r}")
        ids = raw.to(dtype=torch.long, device=dev).reshape(-1)
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.n_tasks):
            raise ValueError(f"task ids must be in 0..{self.n_tasks - 1}, got {ids.tolist()}")
        return ids

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def thetas(self, task_ids) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, task_ids) -> torch.Tensor:
        """x (B, 784) with one task id (int) -> (B, 10); or x (T', B, 784) with T' ids -> (T', B, 10)."""
        theta = self.thetas(task_ids)                          # (T', P)
        if _one_id(task_ids):
            return self.main(x, theta[0])
        if x.dim() != 3 or x.shape[0] != theta.shape[0]:
            raise ValueError(f"with {theta.shape[0]} task ids, x must have shape ({theta.shape[0]}, B, in); "
                             f"got {tuple(x.shape)}")
        return self.main(x, theta)


class SharedNet(_TaskModel):
    """Baseline: one main net for every task (the task id is ignored)."""

    def __init__(self, main: MainMLP, n_tasks: int, seed: int = 0):
        super().__init__()
        _check_main(main, n_tasks, seed)
        self.main, self.n_tasks = main, n_tasks
        self.theta = nn.Parameter(main.init_theta(generator=torch.Generator().manual_seed(seed)))

    def thetas(self, task_ids) -> torch.Tensor:
        ids = self._ids(task_ids)
        return self.theta.expand(ids.numel(), -1)


class SeparateNets(_TaskModel):
    """Baseline: an independent main net per task (T·P parameters)."""

    def __init__(self, main: MainMLP, n_tasks: int, seed: int = 0):
        super().__init__()
        _check_main(main, n_tasks, seed)
        self.main, self.n_tasks = main, n_tasks
        self.theta = nn.Parameter(main.init_theta(n_tasks, generator=torch.Generator().manual_seed(seed)))

    def thetas(self, task_ids) -> torch.Tensor:
        return self.theta[self._ids(task_ids)]


class TaskHyperNet(_TaskModel):
    """θ_t = h(e_t; Θ): a (chunked) MLP hypernetwork that generates the whole main net from a task embedding.

    Without chunking (``chunk_size=None``) the head maps the last hidden layer straight to the
    P main-net parameters.  With chunking, every main-net tensor is cut into chunks of
    ``chunk_size`` values (a chunk never spans two tensors; the last chunk of a tensor is
    padded and the padding discarded), chunk k has a learned embedding c_k ∈ R^{n_c}, and

        θ_t[chunk k] = s_k · head(MLP([e_t, c_k]))            (one batched call for all t, k)

    s_k is a constant per chunk: 1 for ``init="naive"``; for the hyperfan inits the head is
    initialised to give unit-variance outputs and s_k = sqrt(target variance of the tensor
    that chunk k belongs to), which gives every generated tensor exactly the variance that
    hyperfan-in/-out (Chang et al., 2020) prescribe.  (A shared head cannot have a different
    variance per tensor; the constant scale does the same job.)

    Parameters Θ: task embeddings (T, N_z), chunk embeddings (K, n_c), hidden layers, head.
    """

    def __init__(self, main: MainMLP, n_tasks: int, n_z: int = 8, hidden: Sequence[int] = (64,),
                 chunk_size: Optional[int] = 1024, n_c: int = 8, init: str = "hyperfan_in",
                 gain: float = 2.0, emb_std: float = 1.0, seed: int = 0):
        super().__init__()
        _check_main(main, n_tasks, seed)
        check_positive_ints(n_tasks=n_tasks, n_z=n_z, n_c=n_c)
        if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__iter__"):
            raise ValueError(f"hidden must be a sequence of hidden layer widths, e.g. (64,); got {hidden!r}")
        if not hidden:
            raise ValueError("hidden must list at least one hidden layer width, e.g. (64,)")
        check_positive_ints(**{f"hidden[{k}]": h for k, h in enumerate(hidden)})
        check_float(gain=gain, emb_std=emb_std, lo=0.0, lo_open=True)
        _check_choice("init", init, INITS)
        g = torch.Generator().manual_seed(seed)
        self.main, self.n_tasks, self.n_z, self.hidden_sizes = main, n_tasks, n_z, tuple(hidden)
        self.gain, self.emb_std = gain, emb_std
        self.chunked = chunk_size is not None
        self.task_emb = nn.Parameter(torch.randn(n_tasks, n_z, generator=g) * emb_std)
        if self.chunked:
            check_positive_ints(chunk_size=chunk_size)
            self.chunk_size, self.n_c = chunk_size, n_c
            owner, index = [], []                              # owner tensor of each chunk; where values go
            for t, numel in enumerate(main.numels):
                n_chunks = -(-numel // chunk_size)
                for k in range(n_chunks):
                    base = len(owner) * chunk_size
                    length = min(chunk_size, numel - k * chunk_size)
                    index.append(torch.arange(base, base + length))
                    owner.append(t)
            self.n_chunks = len(owner)
            self.register_buffer("chunk_owner", torch.tensor(owner), persistent=False)
            self.register_buffer("gather_index", torch.cat(index), persistent=False)   # (P,)
            self.chunk_emb = nn.Parameter(torch.randn(self.n_chunks, n_c, generator=g) * emb_std)
            in_size, out_size = n_z + n_c, chunk_size
        else:
            self.chunk_size, self.n_c, self.n_chunks = None, 0, 0
            in_size, out_size = n_z, main.num_params
        self.body = _mlp((in_size,) + self.hidden_sizes)
        self.head = nn.Linear(self.hidden_sizes[-1], out_size)
        self.register_buffer("out_scale", torch.ones(max(self.n_chunks, 1), 1), persistent=False)
        self.register_buffer("param_scale", torch.ones(main.num_params), persistent=False)
        self.reset_parameters(init, generator=g)

    def reset_parameters(self, init: str = "hyperfan_in", generator: Optional[torch.Generator] = None) -> None:
        """Initialise the hypernetwork; with ``generator`` every draw (PyTorch's default inits included)
        comes from it, so the same seed gives the same hypernetwork whatever the global RNG state."""
        _check_choice("init", init, INITS)
        if generator is None:
            return self._reset(init, None)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
            self._reset(init, generator)

    def _reset(self, init: str, generator: Optional[torch.Generator]) -> None:
        self.init = init
        with torch.no_grad():
            self.out_scale.fill_(1.0)
            self.param_scale.fill_(1.0)
            if init == "naive":                                # PyTorch defaults everywhere, no scaling
                for lin in list(self.body) + [self.head]:
                    lin.reset_parameters()
                return
            _kaiming_body(self.body)                           # E[e²] = Var of the hypernet input
            var_e = self.emb_std ** 2
            d_k = self.hidden_sizes[-1]
            self.head.weight.normal_(0.0, math.sqrt(1.0 / (d_k * var_e)), generator=generator)  # unit-var output
            self.head.bias.zero_()
            targets = torch.tensor([_target_var(init, kind, fi, fo, self.gain)
                                    for kind, fi, fo in self.main.param_meta])
            if self.chunked:
                self.out_scale.copy_(targets[self.chunk_owner].sqrt().unsqueeze(-1))
            else:
                self.param_scale.copy_(torch.repeat_interleave(targets, torch.tensor(self.main.numels)).sqrt())

    def target_variances(self) -> list[float]:
        """The variance hyperfan init aims at, for every main-net tensor (naive: NaN)."""
        if self.init == "naive":
            return [float("nan")] * len(self.main.param_meta)
        return [_target_var(self.init, k, fi, fo, self.gain) for k, fi, fo in self.main.param_meta]

    def generate(self, emb: torch.Tensor) -> torch.Tensor:
        """Task embeddings e (T', N_z) -> θ (T', P).  Use this to try any embedding (e.g. interpolations)."""
        if emb.dim() != 2 or emb.shape[-1] != self.n_z:
            raise ValueError(f"embeddings must have shape (T, {self.n_z}), got {tuple(emb.shape)}")
        if not self.chunked:
            return self.head(_run_body(self.body, emb)) * self.param_scale
        t = emb.shape[0]
        inp = torch.cat([emb.unsqueeze(1).expand(t, self.n_chunks, self.n_z),
                         self.chunk_emb.unsqueeze(0).expand(t, self.n_chunks, self.n_c)], dim=-1)
        chunks = self.head(_run_body(self.body, inp)) * self.out_scale   # (T', K, C): θ chunk = s_k · h([e_t, c_k])
        return chunks.flatten(1).index_select(1, self.gather_index)      # drop padding -> (T', P)

    def thetas(self, task_ids) -> torch.Tensor:
        return self.generate(self.task_emb[self._ids(task_ids)])


# --------------------------------------------------------------------------------------
# Data: permuted MNIST tasks
# --------------------------------------------------------------------------------------

class PermutedTasks:
    """T tasks made from one image set: task t sees every image with its pixels permuted by π_t.

    Task 0 uses the identity permutation.  Images are flattened once, kept on their device,
    and permuted on the fly by indexing (no copies per task).
    """

    def __init__(self, data, n_tasks: int, seed: int = 0, n_train: Optional[int] = None,
                 n_test: Optional[int] = None):
        check_positive_ints(n_tasks=n_tasks)
        check_int(n_train=n_train, n_test=n_test, lo=1, optional=True)     # -1 would drop the last image
        check_int(seed=seed, lo=0, hi=MAX_SEED)
        missing = [a for a in ("x_train", "y_train", "x_test", "y_test")
                   if not isinstance(getattr(data, a, None), torch.Tensor)]
        if missing:
            raise ValueError(f"data must hold image tensors x_train, y_train, x_test, y_test (an ImageData); "
                             f"{type(data).__name__} lacks {', '.join(missing)}")
        self.name = getattr(data, "name", "images")
        self.describe_data = data.describe() if hasattr(data, "describe") else self.name
        self.n_tasks = n_tasks
        self.x_train = data.x_train[:n_train].flatten(1)
        self.y_train = data.y_train[:n_train]
        self.x_test = data.x_test[:n_test].flatten(1)
        self.y_test = data.y_test[:n_test]
        n_in = self.x_train.shape[1]
        g = torch.Generator().manual_seed(seed)
        perms = [torch.arange(n_in)] + [torch.randperm(n_in, generator=g) for _ in range(n_tasks - 1)]
        self.perms = torch.stack(perms).to(self.x_train.device)            # (T, in)

    @property
    def n_in(self) -> int:
        return self.x_train.shape[1]

    def _task_index(self, task_id) -> int:
        """One task id as a Python int in 0..n_tasks-1 (a fractional or negative id is refused, not truncated)."""
        if isinstance(task_id, torch.Tensor) and task_id.dim() == 0 and not task_id.is_floating_point():
            task_id = int(task_id)
        if isinstance(task_id, bool) or not isinstance(task_id, (int, np.integer)):
            raise ValueError(f"task id must be one integer in 0..{self.n_tasks - 1}, got {task_id!r}")
        if not 0 <= task_id < self.n_tasks:
            raise ValueError(f"task id {task_id} is out of range: these tasks are numbered 0..{self.n_tasks - 1}")
        return int(task_id)

    def describe(self) -> str:
        return (f"permuted {self.describe_data}; {self.n_tasks} tasks, {len(self.y_train):,} train / "
                f"{len(self.y_test):,} test images per task")

    def permute(self, x: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """x (T', B, in) or (B, in) with one id -> permuted pixels, same shape."""
        n_in = self.perms.shape[1]
        if not isinstance(x, torch.Tensor) or x.dim() not in (2, 3) or x.shape[-1] != n_in:
            check_shape("x", x, ("B", n_in), fix=f"flattened images of {n_in} pixels, (B, {n_in}) with one task id "
                                                 f"or (T', B, {n_in}) with T' ids")
        if x.dim() == 2:
            return x[:, self.perms[self._task_index(task_ids)]]
        if not isinstance(task_ids, torch.Tensor) or task_ids.shape != (x.shape[0],) or task_ids.is_floating_point():
            check_shape("task_ids", task_ids, (x.shape[0],), floating=False,
                        fix=f"one integer task id per leading index of x (T'={x.shape[0]})")
        if task_ids.device.type == "cpu" and task_ids.numel() and (task_ids.min() < 0 or task_ids.max() >= self.n_tasks):
            raise ValueError(f"task_ids must be in 0..{self.n_tasks - 1}, got {task_ids.tolist()}")
        return torch.gather(x, 2, self.perms[task_ids].unsqueeze(1).expand_as(x))


@torch.no_grad()
def task_accuracy(model: _TaskModel, tasks: PermutedTasks, task_ids: Optional[Sequence[int]] = None,
                  batch_size: int = 2000) -> list[float]:
    """Test accuracy of ``model`` on each task (in %)."""
    check_int(batch_size=batch_size, lo=1)
    task_ids = range(tasks.n_tasks) if task_ids is None else task_ids
    task_ids = [tasks._task_index(t) for t in task_ids]        # refused before the model is touched
    was_training = model.training
    model.eval()
    accs = []
    try:
        for t in task_ids:
            correct = 0
            for s in range(0, len(tasks.y_test), batch_size):
                x = tasks.permute(tasks.x_test[s:s + batch_size], t)
                correct += (model(x, int(t)).argmax(-1) == tasks.y_test[s:s + batch_size]).sum().item()
            accs.append(100.0 * correct / len(tasks.y_test))
    finally:
        model.train(was_training)
    return accs


def _optimizer(params, lr: float, weight_decay: float = 0.0, optimizer: str = "adam"):
    """``"adam"``: weight_decay is an L2 term added to the gradient (coupled);
    ``"adamw"``: decoupled decay, θ ← θ − lr·λ·θ each step."""
    _check_choice("optimizer", optimizer, ("adam", "adamw"))
    return make_optimizer(optimizer, params, lr, weight_decay)


def train_multitask(model: _TaskModel, tasks: PermutedTasks, *, steps: int, batch_size: int = 64,
                    lr: float = 1e-3, weight_decay: float = 0.0, optimizer: str = "adam", param_groups=None,
                    seed: int = 0, eval_every: int = 0) -> dict:
    """Train on all tasks at once: every step takes ``batch_size`` images from *each* task
    (shape (T, B, in)) and runs all T main nets in one batched call.

    ``optimizer="adam"`` with ``weight_decay`` is a coupled L2 penalty; ``"adamw"`` decouples it.
    Returns {'loss': [...], 'eval_step': [...], 'eval_acc': [[acc per task], ...]}.
    A NaN or infinite loss (checked at every evaluation and at the end) raises
    :class:`~hypernet_lib.utils.TrainingDiverged`.
    """
    check_int(steps=steps, batch_size=batch_size, lo=1)
    check_int(eval_every=eval_every, lo=0)
    check_int(seed=seed, lo=0, hi=MAX_SEED)
    check_float(lr=lr, weight_decay=weight_decay, lo=0.0)
    g = torch.Generator(device=tasks.x_train.device).manual_seed(seed)
    opt = _optimizer(param_groups if param_groups is not None else model.parameters(), lr, weight_decay, optimizer)
    ids = torch.arange(tasks.n_tasks, device=tasks.x_train.device)
    n = len(tasks.y_train)
    hist = {"loss": [], "eval_step": [], "eval_acc": []}
    for step in range(steps):
        idx = torch.randint(0, n, (tasks.n_tasks, batch_size), generator=g, device=tasks.x_train.device)
        x = tasks.permute(tasks.x_train[idx], ids)                       # (T, B, in)
        logits = model(x, ids)                                           # (T, B, 10)
        loss = F.cross_entropy(logits.flatten(0, 1), tasks.y_train[idx].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        hist["loss"].append(loss.detach())                               # no host sync per step
        if eval_every and ((step + 1) % eval_every == 0 or step + 1 == steps):
            check_finite(loss=torch.stack(hist["loss"][-eval_every:]), model=model, where=f"by step {step + 1}")
            hist["eval_step"].append(step + 1)
            hist["eval_acc"].append(task_accuracy(model, tasks))
    if hist["loss"]:
        check_finite(loss=torch.stack(hist["loss"]), model=model, where=f"in {steps} steps")
    hist["loss"] = torch.stack(hist["loss"]).tolist() if hist["loss"] else []
    return hist


# --------------------------------------------------------------------------------------
# Continual learning: the hypernetwork output regulariser (von Oswald et al., 2020)
# --------------------------------------------------------------------------------------

def output_regularizer(hnet: TaskHyperNet, targets: torch.Tensor, task_ids: Sequence[int]) -> torch.Tensor:
    """(1 / T') Σ_{t'} ||h(e_{t'}; Θ) − θ*_{t'}||²  — von Oswald et al. (2020), Eq. 2 without look-ahead.

    targets: θ* (T', P), the hypernet outputs for the earlier tasks, stored before the current
    task started; task_ids: the T' earlier tasks.  Returns a scalar (0 for no earlier task).
    """
    if not isinstance(hnet, TaskHyperNet):
        raise ValueError(f"hnet must be a TaskHyperNet (the regulariser pulls its outputs back), "
                         f"got {type(hnet).__name__}")
    ids = list(task_ids)
    for t in ids:              # a Python list: checked without touching the device
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t < hnet.n_tasks:
            raise ValueError(f"task_ids must be integers in 0..{hnet.n_tasks - 1}, got {ids!r}")
    if not isinstance(targets, torch.Tensor):
        check_shape("targets", targets, (len(ids), hnet.main.num_params))
    if not ids:
        return torch.zeros((), device=targets.device)
    if targets.dim() != 2 or targets.shape[0] != len(ids):
        raise ValueError(f"targets must have shape ({len(ids)}, P) for {len(ids)} earlier tasks, "
                         f"got {tuple(targets.shape)}")
    if targets.shape[1] != hnet.main.num_params:
        raise ValueError(f"targets has {targets.shape[1]} values per task but the main net has "
                         f"P={hnet.main.num_params} parameters; store hnet.generate(...) outputs as targets")
    # The earlier embeddings are kept fixed (detached): only Θ is pulled back.
    current = hnet.generate(hnet.task_emb[torch.as_tensor(ids, device=targets.device)].detach())
    return (current - targets).square().sum(-1).mean()


@dataclass
class ContinualResult:
    """acc[i][j]: test accuracy (%) on task j after training on tasks 0..i (NaN for j > i)."""
    acc: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    reg: list = field(default_factory=list)

    def _learned(self) -> list:
        if not self.acc:
            raise ValueError("no task has been learned yet (acc is empty): run train_continual first")
        return self.acc

    @property
    def final(self) -> list[float]:
        return self._learned()[-1]

    @property
    def just_learned(self) -> list[float]:
        """Accuracy on each task right after it was learned (the diagonal)."""
        return [self.acc[i][i] for i in range(len(self._learned()))]

    @property
    def forgetting(self) -> list[float]:
        """Drop from 'just learned' to 'at the end', per task (the last task has 0)."""
        return [just - self.acc[-1][i] for i, just in enumerate(self.just_learned)]

    @property
    def mean_final(self) -> float:
        return sum(self.final) / len(self.final)

    @property
    def mean_forgetting(self) -> float:
        f = self.forgetting[:-1]
        return sum(f) / max(len(f), 1)


def train_continual(model: _TaskModel, tasks: PermutedTasks, *, steps_per_task: int, batch_size: int = 128,
                    lr: float = 1e-3, beta: float = 0.0, seed: int = 0) -> ContinualResult:
    """Learn tasks 0, 1, ..., T−1 one after another; after each, test on all tasks.

    For a :class:`TaskHyperNet` with ``beta > 0`` the loss on task t is
        L_t(θ_t) + β · (1/t) Σ_{t'<t} ||h(e_{t'}; Θ) − h(e_{t'}; Θ*)||²
    with Θ* the hypernet parameters before task t (von Oswald et al., 2020, Eq. 2, no look-ahead).
    Only the current task's embedding is trained; earlier embeddings stay fixed.
    For the baselines (and beta = 0) this is plain sequential fine-tuning.
    """
    check_int(steps_per_task=steps_per_task, batch_size=batch_size, lo=1)
    check_int(seed=seed, lo=0, hi=MAX_SEED)
    check_float(lr=lr, lo=0.0)
    if isinstance(beta, (int, float)) and not isinstance(beta, bool) and beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    check_float(beta=beta, lo=0.0)
    if beta > 0 and not isinstance(model, TaskHyperNet):
        raise ValueError("the output regulariser needs a TaskHyperNet; use beta=0 for the baselines")
    dev = tasks.x_train.device
    g = torch.Generator(device=dev).manual_seed(seed)
    res = ContinualResult()
    n = len(tasks.y_train)
    for t in range(tasks.n_tasks):
        targets = None
        if isinstance(model, TaskHyperNet) and beta > 0 and t > 0:
            with torch.no_grad():                              # θ*_{t'} = h(e_{t'}; Θ*) for t' < t
                targets = model.generate(model.task_emb[:t]).detach()
        opt = _optimizer(model.parameters(), lr)
        for step in range(steps_per_task):
            idx = torch.randint(0, n, (batch_size,), generator=g, device=dev)
            logits = model(tasks.permute(tasks.x_train[idx], t), t)
            loss = F.cross_entropy(logits, tasks.y_train[idx])
            total = loss
            if targets is not None:
                reg = output_regularizer(model, targets, range(t))
                total = loss + beta * reg
                res.reg.append(reg.detach())
            opt.zero_grad(set_to_none=True)
            total.backward()
            if isinstance(model, TaskHyperNet) and model.task_emb.grad is not None:
                model.task_emb.grad[:t] = 0                    # earlier embeddings stay as they were
                model.task_emb.grad[t + 1:] = 0
            opt.step()
            res.loss.append(loss.detach())                     # no host sync per step
        check_finite(loss=torch.stack(res.loss[-steps_per_task:]), model=model, where=f"while learning task {t}",
                     hint="lower the learning rate" + (" or beta" if beta > 0 else ""))
        accs = task_accuracy(model, tasks, range(t + 1))
        res.acc.append(accs + [float("nan")] * (tasks.n_tasks - t - 1))
    res.loss = torch.stack(res.loss).tolist() if res.loss else []
    res.reg = torch.stack(res.reg).tolist() if res.reg else []
    return res


# --------------------------------------------------------------------------------------
# 3. Variance of generated weights
# --------------------------------------------------------------------------------------

@torch.no_grad()
def generated_weight_variance(hnet: TaskHyperNet, n_emb: int = 256, seed: int = 0) -> list[float]:
    """Variance of each generated main-net tensor over ``n_emb`` random embeddings
    e ~ N(0, emb_std²) (the distribution the init assumes).  One entry per tensor in
    ``hnet.main.param_shapes`` ([W_1, b_1, W_2, ...])."""
    if not isinstance(hnet, TaskHyperNet):
        raise ValueError(f"hnet must be a TaskHyperNet, got {type(hnet).__name__}")
    check_int(n_emb=n_emb, lo=2)                      # a variance needs two draws
    g = torch.Generator().manual_seed(seed)
    emb = (torch.randn(n_emb, hnet.n_z, generator=g) * hnet.emb_std).to(hnet.device)
    theta = hnet.generate(emb)
    return [p.var().item() for p in hnet.main.unflatten(theta)]


# --------------------------------------------------------------------------------------
# 4. Debugging diagnostics
# --------------------------------------------------------------------------------------

def weight_spread(thetas: torch.Tensor) -> float:
    """How different the generated weights are across conditions.

    thetas: (K, P), one row per condition (K >= 2).  Returns
        rms_p(std_k θ_kp) / rms(θ)
    — 0 when every condition gets the same weights (weight collapse), about 1 when the
    rows are unrelated.
    """
    if not isinstance(thetas, torch.Tensor):
        check_shape("thetas", thetas, ("K", "P"))
    if thetas.dim() != 2 or thetas.shape[0] < 2:
        raise ValueError(f"thetas must have shape (K, P) with K >= 2 conditions, got {tuple(thetas.shape)}")
    thetas = thetas.detach().double()
    between = thetas.var(0, unbiased=False).mean().sqrt()
    scale = thetas.square().mean().sqrt()
    return float(between / scale.clamp_min(1e-30))


def output_spread(outputs: torch.Tensor) -> float:
    """Same measure as :func:`weight_spread` for main-net outputs (K, B, ...) on the same inputs:
    0 when the output does not depend on the condition (insensitivity to z)."""
    if not isinstance(outputs, torch.Tensor):
        check_shape("outputs", outputs, ("K", "B", "..."))
    if outputs.dim() < 2 or outputs.shape[0] < 2:
        raise ValueError(f"outputs must have shape (K, B, ...) with K >= 2 conditions, got {tuple(outputs.shape)}")
    return weight_spread(outputs.flatten(1))


@torch.no_grad()
def z_sensitivity(model: _TaskModel, x: torch.Tensor, task_ids: Optional[Sequence[int]] = None) -> dict:
    """Run the same inputs x (B, in) under every condition and measure how much the output moves.

    Returns {'output_spread': float (see :func:`output_spread`, on softmax probabilities),
             'pred_change': % of inputs whose predicted class is not the same under all conditions}.

    Read ``output_spread`` for insensitivity, not ``pred_change``: when the outputs are nearly flat
    (all class probabilities close to 1/C) a tiny condition-dependent shift still decides the
    argmax, so an insensitive net can have a ``pred_change`` near 100 %.
    """
    ids = list(range(model.n_tasks)) if task_ids is None else list(task_ids)
    if len(ids) < 2:
        raise ValueError("z_sensitivity needs at least two conditions to compare")
    check_shape("x", x, ("B", "in"), fix="one batch of inputs, run under every condition")
    probs = model(x.unsqueeze(0).expand(len(ids), *x.shape), ids).softmax(-1)    # (K, B, 10)
    pred = probs.argmax(-1)
    change = (pred != pred[:1]).any(0).float().mean().item() * 100.0
    return {"output_spread": output_spread(probs), "pred_change": change}


@torch.no_grad()
def dead_fraction(hnet: TaskHyperNet, task_ids: Optional[Sequence[int]] = None) -> float:
    """Fraction of the hypernet's hidden ReLU units that are zero for every task and chunk.

    A dead unit passes no signal and gets no gradient; when all are dead, θ = head bias for
    every condition and the task embeddings receive exactly zero gradient."""
    if not isinstance(hnet, TaskHyperNet):
        raise ValueError(f"hnet must be a TaskHyperNet (only a hypernetwork has hidden units), "
                         f"got {type(hnet).__name__}")
    ids = list(range(hnet.n_tasks)) if task_ids is None else list(task_ids)
    emb = hnet.task_emb[hnet._ids(ids)]
    if hnet.chunked:
        t = emb.shape[0]
        x = torch.cat([emb.unsqueeze(1).expand(t, hnet.n_chunks, hnet.n_z),
                       hnet.chunk_emb.unsqueeze(0).expand(t, hnet.n_chunks, hnet.n_c)], dim=-1).flatten(0, 1)
    else:
        x = emb
    dead = []
    for lin in hnet.body:
        x = F.relu(lin(x))
        dead.append((x == 0).all(0))
    return torch.cat(dead).float().mean().item()


@torch.no_grad()
def diagnose(model: _TaskModel, x: torch.Tensor, task_ids: Optional[Sequence[int]] = None,
             collapse_below: float = 0.05, insensitive_below: float = 0.05) -> dict:
    """Both checks at once: weight collapse (weight space) and insensitivity to z (function space).

    Returns {'weight_spread', 'output_spread', 'pred_change', 'dead_fraction' (TaskHyperNet only),
             'collapsed': bool, 'insensitive': bool}.
    """
    ids = list(range(model.n_tasks)) if task_ids is None else list(task_ids)
    report = {"weight_spread": weight_spread(model.thetas(ids))}
    report.update(z_sensitivity(model, x, ids))
    if isinstance(model, TaskHyperNet):
        report["dead_fraction"] = dead_fraction(model, ids)
    report["collapsed"] = report["weight_spread"] < collapse_below
    report["insensitive"] = report["output_spread"] < insensitive_below
    return report


# --------------------------------------------------------------------------------------
# Plot helpers
# --------------------------------------------------------------------------------------

def plot_generated_weights(thetas: torch.Tensor, labels: Sequence[str], n: int = 200, ax=None,
                           title: Optional[str] = None, vmax: Optional[float] = None):
    """Heat map: one row per condition, the first ``n`` generated values.  Identical rows = collapse."""
    import matplotlib.pyplot as plt
    check_shape("thetas", thetas, ("K", "P"), fix="one row of generated values per condition")
    if len(labels) != thetas.shape[0]:
        raise ValueError(f"labels has {len(labels)} entries but thetas {thetas.shape[0]} rows; pass one label per row")
    check_int(n=n, lo=1)
    ax = ax or plt.gca()
    data = thetas.detach()[:, :n].float().cpu()
    vmax = vmax or float(data.abs().max()) or 1.0
    im = ax.imshow(data, aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel(f"generated parameter index (first {n})")
    if title:
        ax.set_title(title)
    return im


def plot_diagnostics(reports: dict, ax=None, threshold: float = 0.05, floor: float = 1e-6):
    """Bars of weight spread and output spread per model (log scale), with the alarm threshold.

    A log axis cannot show 0: values below ``floor`` (the exact zeros of a dead hypernetwork)
    get no bar, only a label "0" (or "<floor") at the bottom of the axis, in the bar's colour.
    The legend sits in a band above 1 (a spread is never above 1), clear of the bars."""
    import matplotlib.pyplot as plt
    for name, r in reports.items():
        missing = [k for k in ("weight_spread", "output_spread") if not isinstance(r, dict) or k not in r]
        if missing:
            raise ValueError(f"reports[{name!r}] lacks {', '.join(missing)}; pass {{name: diagnose(...)}}")
    ax = ax or plt.gca()
    names = list(reports)
    pos = np.arange(len(names))
    for k, (key, label) in enumerate((("weight_spread", "weight spread"), ("output_spread", "output spread"))):
        vals = np.array([reports[n][key] for n in names], dtype=float)
        x = pos + (k - 0.5) * 0.4
        ax.bar(x, np.where(vals < floor, np.nan, vals), 0.4, label=label, color=f"C{k}")
        for xi, v in zip(x, vals):
            if v < floor:
                ax.text(xi, floor * 1.3, "0" if v == 0 else f"<{floor:g}", ha="center", va="bottom",
                        fontsize=8, color=f"C{k}", fontweight="bold")
    ax.axhline(threshold, color="k", ls="--", lw=1, label=f"alarm ({threshold:g})")
    ax.set_yscale("log")
    ax.set_ylim(floor, 30.0)
    ax.set_ylabel("spread")
    ax.set_xticks(pos, names)
    ax.legend(fontsize=8, loc="upper center", ncol=3, frameon=False)
    return ax


def plot_accuracy_matrix(acc, ax=None, title: Optional[str] = None):
    """acc[i][j] (after task i, tested on task j) as an annotated heat map."""
    import matplotlib.pyplot as plt
    try:
        a = np.array(acc, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("acc must be a square table acc[i][j] of numbers (ContinualResult.acc); "
                         "its rows have different lengths or hold something else") from None
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"acc must be a non-empty table acc[i][j] (ContinualResult.acc), got shape {a.shape}")
    ax = ax or plt.gca()
    ax.imshow(np.ma.masked_invalid(a), vmin=0, vmax=100, cmap="viridis")
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            if not np.isnan(a[i, j]):
                ax.text(j, i, f"{a[i, j]:.0f}", ha="center", va="center",
                        color="w" if a[i, j] < 60 else "k", fontsize=8)
    ax.set_xlabel("tested on task")
    ax.set_ylabel("after training task")
    ax.set_xticks(range(a.shape[1]), [str(j + 1) for j in range(a.shape[1])])
    ax.set_yticks(range(a.shape[0]), [str(i + 1) for i in range(a.shape[0])])
    if title:
        ax.set_title(title)
    return ax

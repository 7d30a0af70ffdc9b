"""Conditional hypernetworks: layers whose weights are generated per sample or per task.

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
without the look-ahead term (:func:`output_regularizer`; the loop is in :mod:`hypernet_lib.training.conditional`).
Initialisation: :mod:`hypernet_lib.nn.init`.  Diagnostics: :mod:`hypernet_lib.analysis.diagnostics`.

Names: z / e (condition, task embedding), N_z (``n_z``), d / d_k (hypernet hidden width),
θ (generated main-net parameters, flat vector of length P), Θ (hypernet parameters).
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import (
    MAX_SEED,
    check_choice,
    check_float,
    check_int,
    check_positive_ints,
    check_shape,
)
from .init import INITS, _target_var, check_init, hyperfan_variance
from .weights import check_weights, unflatten

__all__ = ["IMPLS", "apply_loop", "apply_bmm", "apply_einsum", "PerSampleLinear", "MainMLP", "SharedNet",
           "SeparateNets", "TaskHyperNet", "output_regularizer"]

#: implementations of the per-sample linear layer (all compute y_b = W(z_b) x_b + b(z_b)).
IMPLS = ("loop", "bmm", "einsum", "vmap")


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
        check_init(init, INITS, "PerSampleLinear")
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
        check_choice("impl", impl, IMPLS)
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


class MainMLP(nn.Module):
    """A ReLU MLP with no parameters of its own: ``forward(x, weights)`` takes them all (hypnettorch style).

    ``param_shapes`` = {"W_1": (out, in), "b_1": (out,), "W_2": ...} (see :mod:`~hypernet_lib.nn.weights`);
    sizes=(784, 100, 100, 10) has P = 89,610 parameters.  A flat θ (..., P), laid out
    [W_1, b_1, W_2, b_2, ...] with each W flattened, becomes that dict with ``unflatten(θ, param_shapes)``.

    Shapes: x (..., B, in) and every weight (..., *shape) with matching leading dims (broadcast), so
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
        self.param_shapes: dict[str, tuple[int, ...]] = {}
        #: for every tensor, in param_shapes' order: ("weight" | "bias", fan_in d_j, fan_out d_i)
        self.param_meta: list[tuple[str, int, int]] = []
        for l, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            self.param_shapes.update({f"W_{l}": (b, a), f"b_{l}": (b,)})
            self.param_meta += [("weight", a, b), ("bias", a, b)]
        self.numels = [math.prod(s) for s in self.param_shapes.values()]
        self.num_params = sum(self.numels)

    def init_theta(self, n: Optional[int] = None, generator: Optional[torch.Generator] = None,
                   gain: float = 2.0) -> torch.Tensor:
        """Kaiming-normal weights, zero biases, flattened: (P,) or (n, P)."""
        check_int(n=n, lo=0, optional=True)
        lead = () if n is None else (n,)
        chunks = []
        for (kind, fan_in, _), shape in zip(self.param_meta, self.param_shapes.values()):
            if kind == "weight":
                chunks.append(torch.randn(*lead, math.prod(shape), generator=generator) * math.sqrt(gain / fan_in))
            else:
                chunks.append(torch.zeros(*lead, math.prod(shape)))
        return torch.cat(chunks, dim=-1)

    def forward(self, x: torch.Tensor, weights: Optional[Dict[str, torch.Tensor]] = None) -> torch.Tensor:
        """x (..., B, in), weights {"W_1": (..., out, in), "b_1": (..., out), ...} -> (..., B, out)."""
        if not isinstance(x, torch.Tensor) or x.dim() == 0:
            check_shape("x", x, ("...", "B", self.sizes[0]))
        if x.shape[-1] != self.sizes[0]:
            raise ValueError(f"x has last dimension {x.shape[-1]}, MainMLP expects {self.sizes[0]} "
                             f"(flatten images to (B, {self.sizes[0]}))")
        w = check_weights(weights, self.param_shapes, f"MainMLP{self.sizes}", batch_dims=True, required=True)
        self._check_leading(x, w)
        n_layers = len(self.sizes) - 1
        for l in range(1, n_layers + 1):
            x = x @ w[f"W_{l}"].transpose(-1, -2) + w[f"b_{l}"].unsqueeze(-2)   # y = W_l x + b_l, batched
            if l < n_layers:
                x = F.relu(x)
        return x

    def _check_leading(self, x: torch.Tensor, w: Dict[str, torch.Tensor]) -> None:
        """The weights share their leading dims, and those broadcast with x's (..., B, in)."""
        leads = {n: tuple(t.shape[:t.dim() - len(self.param_shapes[n])]) for n, t in w.items()}
        lead = leads["W_1"]
        if any(v != lead for v in leads.values()):
            raise ValueError(f"the weights must share their leading dimensions (one net per leading index), got "
                             + ", ".join(f"{n} {v}" for n, v in leads.items()))
        if lead and x.dim() > 2:
            try:
                torch.broadcast_shapes(x.shape[:-2], lead)
            except RuntimeError:
                raise ValueError(f"x (..., B, in) has leading dimensions {tuple(x.shape[:-2])} and the weights "
                                 f"(..., *shape) {lead}; one net per leading index needs matching (or "
                                 "broadcastable) leading dimensions") from None


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
    """Common interface: ``thetas(task_ids) -> (len, P)``; ``forward(x, task_ids)`` runs ``main`` on
    ``unflatten(θ, main.param_shapes)``."""
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
            theta = theta[0]                                   # (P,)
        elif x.dim() != 3 or x.shape[0] != theta.shape[0]:
            raise ValueError(f"with {theta.shape[0]} task ids, x must have shape ({theta.shape[0]}, B, in); "
                             f"got {tuple(x.shape)}")
        return self.main(x, unflatten(theta, self.main.param_shapes))   # θ -> {W_1, b_1, ...}


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
        check_init(init, INITS, "TaskHyperNet")
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
        check_init(init, INITS, "TaskHyperNet")
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

"""Hyperfan initialisation (Chang, Flokas & Lipson, 2020): the variance a generator's output layer needs.

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
"""
from __future__ import annotations

from ..checks import check_choice, check_float, check_int

__all__ = ["INIT_NAMES", "INITS", "GENERATOR_INITS", "check_init", "hyperfan_variance"]

#: Every hypernetwork initialisation of the library, one name each, whatever the model:
#:   "naive"         the heads keep PyTorch's default Linear init, blind to the weights they generate;
#:   "hyperfan_in"   Chang et al. (2020): the generated weights start at Var = g / fan_in (Kaiming for ReLU);
#:   "hyperfan_out"  the same with the fan-out: Var = g / fan_out;
#:   "ha"            Ha et al.'s code: N(0, 0.01²) weights and zero biases (kernels ~100× below Kaiming).
INIT_NAMES = ("naive", "hyperfan_in", "hyperfan_out", "ha")
#: the inits of a hypernetwork with linear output heads (PerSampleLinear, TaskHyperNet): chapter 6.
INITS = ("naive", "hyperfan_in", "hyperfan_out")
#: the inits of Ha's Eq. 2 generator (HyperConvGenerator, MNISTHyperNet): chapter 2.
GENERATOR_INITS = ("hyperfan_in", "ha")
_HYPERFAN = ("hyperfan_in", "hyperfan_out")             # the rules hyperfan_variance computes
_RENAMED = {"hyperfan": "hyperfan_in"}                   # names from before there was one set
_USED_BY = {"naive": "hypernets with linear heads (PerSampleLinear, TaskHyperNet)",
            "hyperfan_out": "hypernets with linear heads (PerSampleLinear, TaskHyperNet)",
            "ha": "the Eq. 2 generator (HyperConvGenerator, MNISTHyperNet)"}


def check_init(init: str, choices=INITS, who: str = "this model") -> str:
    """``init`` if it is one of ``choices`` (a subset of :data:`INIT_NAMES`); else a ValueError that
    lists them, and says what an old name is called now or which models take a name ``who`` does not."""
    if isinstance(init, str) and init in choices:
        return init
    valid = ", ".join(repr(c) for c in choices)
    if isinstance(init, str) and init in INIT_NAMES:
        raise ValueError(f"init {init!r} does not apply to {who}; choose one of {valid} "
                         f"({init!r} is for {_USED_BY.get(init, 'other models')})")
    hint = f" ({init!r} is now called {_RENAMED[init]!r})" if isinstance(init, str) and init in _RENAMED else ""
    raise ValueError(f"unknown init {init!r}; choose one of {valid}{hint}")


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
    check_choice("method", method, _HYPERFAN)
    check_choice("kind", kind, ("weight", "bias"))
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

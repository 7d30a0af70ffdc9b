"""Hyperfan initialisation (Chang, Flokas & Lipson, 2020): the variance a generator's output layer needs."""
from __future__ import annotations

from ..checks import check_choice, check_float, check_int

__all__ = ["INITS", "hyperfan_variance"]

#: hypernetwork initialisations: PyTorch's default Linear init, hyperfan-in, hyperfan-out.
INITS = ("naive", "hyperfan_in", "hyperfan_out")


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
    check_choice("method", method, ("hyperfan_in", "hyperfan_out"))
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

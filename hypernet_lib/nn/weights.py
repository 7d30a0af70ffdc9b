"""The one way a main net takes weights from outside: ``param_shapes`` and ``forward(x, weights)``.

Every main net here that can run on generated weights (:class:`~hypernet_lib.nn.MNISTConvNet`,
:class:`~hypernet_lib.nn.CifarNet`, :class:`~hypernet_lib.nn.WideResNet`,
:class:`~hypernet_lib.nn.MainMLP`) exposes

    param_shapes                : {name: shape}, ordered -- the weights it accepts from outside;
    forward(x, weights=None)    : weights = {name: tensor}; a name left out is taken from the net's
                                  own parameters (or its weight source).

A flat vector θ (..., P), as a hypernetwork that makes all P numbers at once returns it, becomes
that dict with :func:`unflatten` (cut in ``param_shapes``' order: views, no copy).
"""
from __future__ import annotations

import math
from typing import Dict, Mapping, Optional, Tuple

import torch

from ..checks import check_shape

__all__ = ["num_params", "unflatten", "check_weights"]

Shapes = Mapping[str, Tuple[int, ...]]


def _listing(param_shapes: Shapes) -> str:
    return ", ".join(f"{n} {tuple(s)}" for n, s in param_shapes.items())


def num_params(param_shapes: Shapes) -> int:
    """P, the numbers in all the weights of ``param_shapes``."""
    return sum(math.prod(s) for s in param_shapes.values())


def unflatten(theta: torch.Tensor, param_shapes: Shapes) -> Dict[str, torch.Tensor]:
    """θ (..., P) -> {name: (..., *shape)}: θ cut into the weights of ``param_shapes``, in its order.

    θ's leading dimensions (e.g. one θ per task) stay leading dimensions of every weight.
    """
    P = num_params(param_shapes)
    if not isinstance(theta, torch.Tensor) or theta.dim() == 0:
        check_shape("theta", theta, ("...", P),
                    fix=f"a flat vector of the P={P} numbers of {_listing(param_shapes)}")
    if theta.shape[-1] != P:
        raise ValueError(f"theta has {theta.shape[-1]} values in its last dimension, but the weights "
                         f"{_listing(param_shapes)} need P={P}")
    parts = torch.split(theta, [math.prod(s) for s in param_shapes.values()], dim=-1)
    return {n: p.unflatten(-1, tuple(s)) for p, (n, s) in zip(parts, param_shapes.items())}


def check_weights(weights: Optional[Mapping[str, torch.Tensor]], param_shapes: Shapes, net: str, *,
                  batch_dims: bool = False, required: bool = False) -> Dict[str, torch.Tensor]:
    """``weights`` as a dict, after checking every entry against ``param_shapes``; {} for None.

    A ValueError names the weight and the shape it must have.  ``batch_dims``: leading dimensions
    (one net per leading index) are allowed; ``required``: every weight must be given (a net with
    no parameters of its own).  Reads shapes only: no device sync.
    """
    if weights is None:
        weights = {}
    elif not isinstance(weights, Mapping):
        raise ValueError(f"{net}: weights must be a dict {{name: tensor}} over {_listing(param_shapes)}, got "
                         f"{type(weights).__name__}; turn a flat vector into one with unflatten(theta, "
                         "net.param_shapes)")
    unknown = [n for n in weights if n not in param_shapes]
    if unknown:
        raise ValueError(f"{net} takes no weight named {', '.join(map(repr, unknown))}; "
                         f"it takes {_listing(param_shapes)}")
    if required and len(weights) < len(param_shapes):
        missing = [n for n in param_shapes if n not in weights]
        raise ValueError(f"{net} has no weights of its own: weights must give {', '.join(missing)} too "
                         f"(all of {_listing(param_shapes)})")
    for n, w in weights.items():
        shape = tuple(param_shapes[n])
        if not isinstance(w, torch.Tensor) or w.shape[w.dim() - len(shape):] != shape or \
                (not batch_dims and w.dim() != len(shape)) or not w.is_floating_point():
            check_shape(f"weights[{n!r}]", w, ("...",) + shape if batch_dims else shape, floating=True,
                        fix=f"see {net}.param_shapes")
    return dict(weights)

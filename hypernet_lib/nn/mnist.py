"""The MNIST nets of the paper's section 4.1: a plain two-layer CNN and the same net with conv2 generated."""
from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import check_int, check_positive_ints, check_shape
from .generator import HyperConvGenerator
from .weights import check_weights

__all__ = ["StaticHyperConv2d", "MNISTConvNet", "MNISTHyperNet", "mnist_net", "interpolate_z"]


class StaticHyperConv2d(nn.Module):
    """A conv layer whose kernel is K = g(z; φ) (static hypernetwork, z learned).

    The generator can be shared with other layers: pass an existing
    :class:`HyperConvGenerator`.  The kernel is generated once per forward call,
    not once per sample, so the cost over an ordinary conv is one small einsum.
    """

    def __init__(self, generator: HyperConvGenerator, padding: int | str = "same",
                 z_std: float = 1.0, bias: bool = True):
        super().__init__()
        if not isinstance(generator, HyperConvGenerator):
            raise ValueError(f"generator must be a HyperConvGenerator, got {type(generator).__name__}")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"padding must be 'same', 'valid' or a number of pixels, got {padding!r}")
        else:
            check_int(padding=padding, lo=0)
        self.generator = generator
        self.padding = padding
        self.z = nn.Parameter(torch.randn(generator.n_z) * z_std)
        self.bias = nn.Parameter(torch.zeros(generator.n_out)) if bias else None

    def kernel(self, z: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The generated kernel (N_out, N_in, f, f); pass z to try another embedding."""
        return self.generator(self.z if z is None else z)

    def forward(self, x: torch.Tensor, z: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x (B, N_in, H, W) or (N_in, H, W); ``z`` (N_z,) instead of the learned one, if given."""
        g = self.generator
        if not isinstance(x, torch.Tensor) or x.dim() not in (3, 4) or x.shape[-3] != g.n_in:
            check_shape("x", x, ("B", g.n_in, "H", "W"), fix=f"this layer's kernel has {g.n_in} input channels")
        if z is not None and (not isinstance(z, torch.Tensor) or z.dim() != 1):
            check_shape("z", z, (g.n_z,), fix="one embedding per call; for a batch of kernels use kernel(z)")
        return F.conv2d(x, self.kernel(z), self.bias, padding=self.padding)


class MNISTConvNet(nn.Module):
    """The paper's MNIST main net (§4.1): conv1 7×7 1→16, conv2 7×7 16→16, 2×2 max-pool
    after each, linear 784→10.  Here conv2 has ordinary weights (the baseline).

    Input (B, 1, 28, 28) -> logits (B, 10).  Weights from outside (see :mod:`~hypernet_lib.nn.weights`):
    ``param_shapes = {"conv2": (N_out, N_in, f, f)}``; ``forward(x, {"conv2": K})`` runs conv2 with K.
    """

    def __init__(self, f: int = 7, channels: int = 16):
        super().__init__()
        check_positive_ints(f=f, channels=channels)
        self.param_shapes = {"conv2": (channels, channels, f, f)}   # conv2's kernel K
        self.conv1 = nn.Conv2d(1, channels, f, padding="same")
        self.conv2 = nn.Conv2d(channels, channels, f, padding="same")
        self.fc = nn.Linear(channels * 7 * 7, 10)

    def conv2_kernel(self) -> torch.Tensor:
        return self.conv2.weight

    def features(self, x: torch.Tensor, weights: Optional[Dict[str, torch.Tensor]] = None) -> torch.Tensor:
        """x (B, 1, 28, 28) -> (B, 784), the input of fc; ``weights`` as in :meth:`forward`."""
        if x.dim() != 4 or x.shape[1:] != (1, 28, 28):
            raise ValueError(f"expected images of shape (B, 1, 28, 28), got {tuple(x.shape)}")
        w = check_weights(weights, self.param_shapes, type(self).__name__)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)                       # (B, 16, 14, 14)
        K = w["conv2"] if "conv2" in w else self.conv2_kernel()   # given, or own (hypernet: K = g(z), Eq. 2)
        x = F.conv2d(x, K, self.conv2.bias, padding="same")
        return F.max_pool2d(F.relu(x), 2).flatten(1)                      # (B, 784)

    def forward(self, x: torch.Tensor, weights: Optional[Dict[str, torch.Tensor]] = None) -> torch.Tensor:
        """x (B, 1, 28, 28) -> logits (B, 10); ``weights={"conv2": K}``: conv2 uses K, not its own kernel."""
        return self.fc(self.features(x, weights))


class MNISTHyperNet(MNISTConvNet):
    """The same main net, with conv2's 7×7×16×16 kernel generated from z ∈ R^4 by Eq. 2.

    Parameters of the hypernetwork: the generator (4,240) and z (4) = 4,244,
    against 12,544 for the ordinary kernel.  conv2's bias stays an ordinary parameter.
    ``init``: the generator's, ``"hyperfan_in"`` or ``"ha"`` (:data:`~hypernet_lib.nn.init.GENERATOR_INITS`).
    """

    def __init__(self, f: int = 7, channels: int = 16, n_z: int = 4, d: Optional[int] = None,
                 init: str = "hyperfan_in"):
        super().__init__(f, channels)
        bias = self.conv2.bias
        del self.conv2
        gen = HyperConvGenerator(f, channels, channels, n_z, d, init=init)
        self.conv2 = StaticHyperConv2d(gen, padding="same", z_std=1.0)   # z ~ N(0, 1) for both inits
        self.conv2.bias = bias

    @property
    def z(self) -> nn.Parameter:
        return self.conv2.z

    @property
    def generator(self) -> HyperConvGenerator:
        return self.conv2.generator

    def conv2_kernel(self, z: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.conv2.kernel(z)

    def hyper_parameters(self) -> list[nn.Parameter]:
        """The parameters that replace the ordinary kernel: φ and z."""
        return list(self.generator.parameters()) + [self.z]


def mnist_net(kind: str, **kwargs) -> MNISTConvNet:
    """``mnist_net("hyper")`` or ``mnist_net("conv")``."""
    kinds = {"hyper": MNISTHyperNet, "conv": MNISTConvNet}
    if kind not in kinds:
        raise ValueError(f"unknown MNIST net {kind!r}; choose one of {sorted(kinds)}")
    return kinds[kind](**kwargs)


def interpolate_z(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """``steps`` embeddings on the straight line from z0 to z1 (both included): (steps, N_z)."""
    check_shape("z0", z0, ("N_z",), floating=True)
    check_shape("z1", z1, ("N_z",), floating=True)
    check_int(steps=steps, lo=2)
    if z0.shape != z1.shape:
        raise ValueError(f"z0 and z1 must have the same shape, got {tuple(z0.shape)} and {tuple(z1.shape)}")
    t = torch.linspace(0, 1, steps, device=z0.device, dtype=z0.dtype)[:, None]
    return (1 - t) * z0 + t * z1

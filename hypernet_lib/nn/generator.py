"""Ha's static hypernetwork for convolution kernels, Eq. 2-3: z -> a -> K.

A *static* hypernetwork turns a learned layer embedding z ∈ R^{N_z} into the kernel
of a convolution.  The paper factorises the generator into two linear maps:

    a_i = W_i z + B_i                      (Eq. 2, first line)   W_i ∈ R^{d×N_z}, B_i ∈ R^d,  i = 1..N_in
    K_i = <W_out, a_i> + B_out             (Eq. 2, second line)  W_out ∈ R^{f×N_out·f×d}, B_out ∈ R^{f×N_out·f}
    K   = [K_1, K_2, ..., K_{N_in}]        (Eq. 3)               K ∈ R^{N_in·f × N_out·f}

W_out and B_out are shared by every input slice i and by every layer that the
generator serves; this sharing is what makes the generator smaller than the kernel.

Shapes in this module follow PyTorch's convention for a conv weight,
``(N_out, N_in, f, f)``.  The generator accepts any number of leading batch
dimensions on z, so a stack of embeddings (one per layer, or one per chunk of a
tiled kernel) is turned into a stack of kernels in one batched einsum: there is
no Python loop over layers or chunks.

Names follow the paper: ``z``, ``N_z`` (``n_z``), ``d``, ``N_in``, ``N_out``, ``f``,
``W_i`` (``w_in``), ``B_i`` (``b_in``), ``W_out`` (``w_out``), ``B_out`` (``b_out``).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn

from ..checks import check_positive_ints, check_shape
from .init import GENERATOR_INITS, check_init, hyperfan_variance

__all__ = ["HyperConvGenerator", "direct_eq2"]


class HyperConvGenerator(nn.Module):
    """Eq. 2: a two-layer linear generator g(z; φ) of conv kernels.

    Args:
        f: kernel size (the kernel is f×f).
        n_in: N_in, input channels of the generated kernel.
        n_out: N_out, output channels of the generated kernel.
        n_z: N_z, size of the layer embedding z.
        d: size of the hidden vectors a_i (the paper uses d = N_z). Defaults to n_z.
        init: one of :data:`~hypernet_lib.nn.init.GENERATOR_INITS`. ``"hyperfan_in"`` (default)
            scales the weights so that the generated kernel starts with the variance of a
            Kaiming-normal kernel for ReLU nets (Chang, Flokas & Lipson, 2020, hyperfan-in, with
            z ~ N(0, 1)); ``"ha"`` is the original code's N(0, 0.01²) weights and zero biases, whose
            kernels start at std ≈ 4e-4 for z ~ N(0, 1), about 100× smaller than a Kaiming kernel.

    Parameters (the paper's names):
        w_in:  W_i for all i, shape (N_in, d, N_z)
        b_in:  B_i for all i, shape (N_in, d)
        w_out: W_out, shape (N_out·f·f, d)  -- the paper's f × N_out·f × d, flattened
        b_out: B_out, shape (N_out·f·f,)

    Count: d·(N_z+1)·N_in + f·N_out·f·(d+1)  (see :mod:`hypernet_lib.analysis.counting`).
    """

    def __init__(self, f: int, n_in: int, n_out: int, n_z: int, d: Optional[int] = None,
                 init: str = "hyperfan_in"):
        super().__init__()
        d = n_z if d is None else d
        check_positive_ints(f=f, n_in=n_in, n_out=n_out, n_z=n_z, d=d)
        check_init(init, GENERATOR_INITS, "HyperConvGenerator")
        self.f, self.n_in, self.n_out, self.n_z, self.d = f, n_in, n_out, n_z, d
        self.w_in = nn.Parameter(torch.empty(n_in, d, n_z))
        self.b_in = nn.Parameter(torch.zeros(n_in, d))
        self.w_out = nn.Parameter(torch.empty(n_out * f * f, d))
        self.b_out = nn.Parameter(torch.zeros(n_out * f * f))
        self.reset_parameters(init)

    @property
    def kernel_fan_in(self) -> int:
        """Fan-in of one generated kernel, N_in·f·f (what Kaiming init divides by)."""
        return self.n_in * self.f * self.f

    def reset_parameters(self, init: str = "hyperfan_in") -> None:
        """Initialise φ. With ``"hyperfan_in"`` and z ~ N(0, 1):
        Var(a) = N_z·Var(W_i) = 1 and Var(K) = d·Var(W_out)·Var(a) = 2 / (N_in·f²),
        the Kaiming-normal variance for a ReLU net."""
        check_init(init, GENERATOR_INITS, "HyperConvGenerator")
        with torch.no_grad():
            if init == "ha":
                self.w_in.normal_(0.0, 0.01)
                self.w_out.normal_(0.0, 0.01)
            else:
                self.w_in.normal_(0.0, 1.0 / math.sqrt(self.n_z))        # Var(a_i) = N_z·Var(W_i)·Var(z) = 1
                # hyperfan-in for K (its bias is not generated): Var(W_out) = 2 / (N_in·f²·d·Var(a))
                var_out = hyperfan_variance("hyperfan_in", "weight", fan_in=self.kernel_fan_in,
                                            fan_out=self.n_out * self.f * self.f, d_k=self.d, has_bias=False)
                self.w_out.normal_(0.0, math.sqrt(var_out))
            self.b_in.zero_()
            self.b_out.zero_()

    def _check_z(self, z) -> None:
        """A ValueError naming the problem unless z is a float tensor (..., N_z)."""
        if not isinstance(z, torch.Tensor) or z.dim() == 0:
            check_shape("z", z, ("...", self.n_z), fix=f"pass a float tensor of shape (..., {self.n_z})")
        if z.shape[-1] != self.n_z:
            raise ValueError(
                f"z has last dimension {z.shape[-1]}, but this generator was built with N_z={self.n_z}; "
                f"pass z of shape (..., {self.n_z})")
        if not z.is_floating_point():
            raise ValueError(f"z must be a floating-point tensor, got dtype {z.dtype}; pass z.float()")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z: (..., N_z) -> kernels (..., N_out, N_in, f, f)."""
        self._check_z(z)
        # Eq. 2, first line, all slices i at once: a_i = W_i z + B_i
        a = torch.einsum("idz,...z->...id", self.w_in, z) + self.b_in
        # a: (..., N_in, d)
        # Eq. 2, second line: K_i = <W_out, a_i> + B_out
        k = torch.einsum("od,...id->...io", self.w_out, a) + self.b_out
        # k: (..., N_in, N_out·f·f)
        # Eq. 3: concatenate the slices as a conv weight (N_out, N_in, f, f)
        f = self.f
        k = k.unflatten(-1, (self.n_out, f, f))   # (..., N_in, N_out, f, f)
        return k.transpose(-4, -3)                # (..., N_out, N_in, f, f)


def direct_eq2(z, w_in, b_in, w_out, b_out, f: int, n_out: int) -> torch.Tensor:
    """A slow, literal reading of Eq. 2-3 with a Python loop over slices, for tests.

    Returns the paper's K ∈ R^{N_in·f × N_out·f} layout converted to (N_out, N_in, f, f).
    """
    n_in = w_in.shape[0]
    slices = []
    for i in range(n_in):
        a_i = w_in[i] @ z + b_in[i]                      # (d,)
        k_i = w_out @ a_i + b_out                         # (N_out·f·f,)
        slices.append(k_i.reshape(n_out, f, f))
    return torch.stack(slices, dim=1)

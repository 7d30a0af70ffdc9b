"""Static hypernetworks for convolution kernels (Ha, Dai & Le, 2016, §3.1, Eq. 1-3).

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

import copy
import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .utils import check_int, check_positive_ints, check_shape

__all__ = [
    "HyperConvGenerator",
    "TiledConvEmbeddings",
    "tile_grid",
    "kernel_from_tiles",
    "StaticHyperConv2d",
    "MNISTConvNet",
    "MNISTHyperNet",
    "mnist_net",
    "direct_eq2",
]

_INITS = ("hyperfan", "ha")


class HyperConvGenerator(nn.Module):
    """Eq. 2: a two-layer linear generator g(z; φ) of conv kernels.

    Args:
        f: kernel size (the kernel is f×f).
        n_in: N_in, input channels of the generated kernel.
        n_out: N_out, output channels of the generated kernel.
        n_z: N_z, size of the layer embedding z.
        d: size of the hidden vectors a_i (the paper uses d = N_z). Defaults to n_z.
        init: ``"hyperfan"`` (default) scales the weights so that the generated kernel
            starts with the variance of a Kaiming-normal kernel for ReLU nets
            (Chang, Flokas & Lipson, 2020, hyperfan-in, with z ~ N(0, 1)); ``"ha"`` is the
            original code's N(0, 0.01²) weights and zero biases, whose kernels start at
            std ≈ 4e-4 for z ~ N(0, 1), about 100× smaller than a Kaiming kernel.

    Parameters (the paper's names):
        w_in:  W_i for all i, shape (N_in, d, N_z)
        b_in:  B_i for all i, shape (N_in, d)
        w_out: W_out, shape (N_out·f·f, d)  -- the paper's f × N_out·f × d, flattened
        b_out: B_out, shape (N_out·f·f,)

    Count: d·(N_z+1)·N_in + f·N_out·f·(d+1)  (see :mod:`hypernet_lib.counting`).
    """

    def __init__(self, f: int, n_in: int, n_out: int, n_z: int, d: Optional[int] = None,
                 init: str = "hyperfan"):
        super().__init__()
        d = n_z if d is None else d
        check_positive_ints(f=f, n_in=n_in, n_out=n_out, n_z=n_z, d=d)
        if init not in _INITS:
            raise ValueError(f"unknown init {init!r}; choose one of {_INITS}")
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

    def reset_parameters(self, init: str = "hyperfan") -> None:
        """Initialise φ. With ``"hyperfan"`` and z ~ N(0, 1):
        Var(a) = N_z·Var(W_i) = 1 and Var(K) = d·Var(W_out)·Var(a) = 2 / (N_in·f²),
        the Kaiming-normal variance for a ReLU net."""
        if init not in _INITS:
            raise ValueError(f"unknown init {init!r}; choose one of {_INITS}")
        with torch.no_grad():
            if init == "ha":
                self.w_in.normal_(0.0, 0.01)
                self.w_out.normal_(0.0, 0.01)
            else:
                self.w_in.normal_(0.0, 1.0 / math.sqrt(self.n_z))
                self.w_out.normal_(0.0, math.sqrt(2.0 / (self.kernel_fan_in * self.d)))
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
        # Eq. 2, first line, for all slices i at once: a_i = W_i z + B_i  -> (..., N_in, d)
        a = torch.einsum("idz,...z->...id", self.w_in, z) + self.b_in
        # Eq. 2, second line: K_i = <W_out, a_i> + B_out              -> (..., N_in, N_out·f·f)
        k = torch.einsum("od,...id->...io", self.w_out, a) + self.b_out
        # Eq. 3: concatenate the slices, laid out as a PyTorch conv weight (N_out, N_in, f, f)
        k = k.unflatten(-1, (self.n_out, self.f, self.f))        # (..., N_in, N_out, f, f)
        return k.transpose(-4, -3)                               # (..., N_out, N_in, f, f)


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


def tile_grid(out_channels: int, in_channels: int, n_out: int, n_in: int) -> tuple[int, int]:
    """(R, C): how many n_out×n_in basic kernels tile an out_channels×in_channels kernel."""
    check_positive_ints(out_channels=out_channels, in_channels=in_channels, n_out=n_out, n_in=n_in)
    if out_channels % n_out or in_channels % n_in:
        raise ValueError(
            f"a kernel of {in_channels}→{out_channels} channels cannot be tiled by {n_in}→{n_out} basic kernels: "
            f"both channel counts must be multiples of the basic kernel's ({n_in}→{n_out})")
    return out_channels // n_out, in_channels // n_in


def kernel_from_tiles(tiles: torch.Tensor) -> torch.Tensor:
    """Assemble a large kernel from a grid of basic kernels (paper §3.1, ResNets).

    tiles: (R, C, n_out, n_in, f, f) -- R tiles along output channels, C along input.
    returns: (R·n_out, C·n_in, f, f).  One reshape, no loop.
    """
    if not isinstance(tiles, torch.Tensor) or tiles.dim() != 6:
        check_shape("tiles", tiles, ("R", "C", "n_out", "n_in", "f", "f"))     # raises: not 6-D
    r, c, o, i, kh, kw = tiles.shape
    return tiles.permute(0, 2, 1, 3, 4, 5).reshape(r * o, c * i, kh, kw)


class TiledConvEmbeddings(nn.Module):
    """The embeddings z of one layer whose kernel is tiled from basic kernels.

    A kernel of N_out'×N_in' channels made of basic n_out×n_in kernels needs
    (N_out'/n_out)·(N_in'/n_in) embeddings (e.g. 32→64 with 16×16 tiles: 8).
    """

    def __init__(self, out_channels: int, in_channels: int, n_out: int, n_in: int, n_z: int,
                 std: float = 1.0):
        super().__init__()
        self.grid = tile_grid(out_channels, in_channels, n_out, n_in)
        check_positive_ints(n_z=n_z)
        self.n_out, self.n_in = n_out, n_in
        self.z = nn.Parameter(torch.randn(*self.grid, n_z) * std)

    def forward(self, generator: HyperConvGenerator) -> torch.Tensor:
        if not isinstance(generator, HyperConvGenerator):
            raise ValueError(f"generator must be a HyperConvGenerator, got {type(generator).__name__}")
        if (generator.n_out, generator.n_in) != (self.n_out, self.n_in):
            raise ValueError(f"generator makes {generator.n_in}→{generator.n_out} basic kernels, but these embeddings "
                             f"tile the kernel with {self.n_in}→{self.n_out} ones; pass a generator built with "
                             f"n_in={self.n_in}, n_out={self.n_out}")
        return kernel_from_tiles(generator(self.z))


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

    Input (B, 1, 28, 28) -> logits (B, 10).
    """

    def __init__(self, f: int = 7, channels: int = 16):
        super().__init__()
        check_positive_ints(f=f, channels=channels)
        self.kernel_shape = (channels, channels, f, f)            # conv2's kernel
        self.conv1 = nn.Conv2d(1, channels, f, padding="same")
        self.conv2 = nn.Conv2d(channels, channels, f, padding="same")
        self.fc = nn.Linear(channels * 7 * 7, 10)

    def conv2_kernel(self) -> torch.Tensor:
        return self.conv2.weight

    def features(self, x: torch.Tensor, conv2_kernel: Optional[torch.Tensor] = None) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1:] != (1, 28, 28):
            raise ValueError(f"expected images of shape (B, 1, 28, 28), got {tuple(x.shape)}")
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)                       # (B, 16, 14, 14)
        if conv2_kernel is not None and (not isinstance(conv2_kernel, torch.Tensor)
                                         or conv2_kernel.shape != self.kernel_shape):
            check_shape("conv2_kernel", conv2_kernel, self.kernel_shape,
                        fix="pass one kernel (N_out, N_in, f, f) of this net's conv2")
        w = self.conv2_kernel() if conv2_kernel is None else conv2_kernel
        x = F.conv2d(x, w, self.conv2.bias, padding="same")
        return F.max_pool2d(F.relu(x), 2).flatten(1)                      # (B, 784)

    def forward(self, x: torch.Tensor, conv2_kernel: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.fc(self.features(x, conv2_kernel))


class MNISTHyperNet(MNISTConvNet):
    """The same main net, with conv2's 7×7×16×16 kernel generated from z ∈ R^4 by Eq. 2.

    Parameters of the hypernetwork: the generator (4,240) and z (4) = 4,244,
    against 12,544 for the ordinary kernel.  conv2's bias stays an ordinary parameter.
    """

    def __init__(self, f: int = 7, channels: int = 16, n_z: int = 4, d: Optional[int] = None,
                 init: str = "hyperfan"):
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


# ---------------------------------------------------------------------------------------------
# Exploring z: interpolation, accuracy along a path, live sliders
# ---------------------------------------------------------------------------------------------
def interpolate_z(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """``steps`` embeddings on the straight line from z0 to z1 (both included): (steps, N_z)."""
    check_shape("z0", z0, ("N_z",), floating=True)
    check_shape("z1", z1, ("N_z",), floating=True)
    check_int(steps=steps, lo=2)
    if z0.shape != z1.shape:
        raise ValueError(f"z0 and z1 must have the same shape, got {tuple(z0.shape)} and {tuple(z1.shape)}")
    t = torch.linspace(0, 1, steps, device=z0.device, dtype=z0.dtype)[:, None]
    return (1 - t) * z0 + t * z1


@torch.no_grad()
def accuracy_along(model: MNISTHyperNet, zs: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                   batch_size: int = 2000) -> torch.Tensor:
    """Test accuracy of the MNIST hypernet when conv2's kernel is generated from each z in zs.

    zs: (S, N_z) -> accuracies (S,).  All S kernels are generated in one batched call.
    """
    if not isinstance(model, MNISTHyperNet):
        raise ValueError(f"model must be an MNISTHyperNet (its conv2 kernel is generated from z), "
                         f"got {type(model).__name__}")
    check_shape("zs", zs, ("S", model.generator.n_z), floating=True,
                fix="stack the embeddings, e.g. interpolate_z(z0, z1, steps)")
    check_shape("x", x, ("N", 1, 28, 28))
    check_shape("y", y, ("N",), floating=False)
    if len(x) != len(y):
        raise ValueError(f"x holds {len(x)} images but y {len(y)} labels; pass one label per image")
    if len(y) == 0:
        raise ValueError("x and y are empty; accuracy needs at least one image")
    check_int(batch_size=batch_size, lo=1)
    was_training = model.training
    model.eval()
    kernels = model.generator(zs)                                    # (S, N_out, N_in, f, f)
    acc = torch.zeros(len(zs))
    for s, kernel in enumerate(kernels):                             # one evaluation per z
        correct = 0
        for start in range(0, len(y), batch_size):
            logits = model(x[start:start + batch_size], conv2_kernel=kernel)
            correct += (logits.argmax(1) == y[start:start + batch_size]).sum().item()
        acc[s] = correct / len(y)
    model.train(was_training)
    return acc


class FilterExplorer:
    """Live sliders (ipywidgets) for the four components of z and an interpolation slider.

    Each move regenerates conv2's kernel through the trained generator and redraws the 16×16
    filter grid in place (``imshow.set_data``, no new figure).  ``update(z)`` is the redraw,
    exposed so its time can be measured without a browser.
    """

    def __init__(self, model: MNISTHyperNet, z_other: torch.Tensor, vmax: float, slider_range: float = 3.0):
        import ipywidgets as W
        from matplotlib.figure import Figure

        from .plotting import filter_mosaic

        # a private CPU copy of the trained generator: the sliders never depend on where the model lives
        self.generator = copy.deepcopy(model.generator).cpu().eval()
        self.vmax = vmax
        self.z_trained = model.z.detach().cpu().clone()
        self.z_other = z_other.detach().cpu().clone()
        self._mosaic = filter_mosaic
        self.fig = Figure(figsize=(4.6, 4.6))          # not managed by pyplot: never shown twice
        self.ax = self.fig.add_subplot()
        self.image = self.ax.imshow(filter_mosaic(self.kernel(self.z_trained)), cmap="RdBu_r",
                                    vmin=-vmax, vmax=vmax, interpolation="nearest")
        self.ax.set_axis_off()
        lim = float(self.z_trained.abs().max()) * slider_range
        self.z_sliders = [W.FloatSlider(value=float(v), min=-lim, max=lim, step=lim / 100,
                                        description=f"z[{i}]", continuous_update=True)
                          for i, v in enumerate(self.z_trained)]
        self.t_slider = W.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.02,
                                      description="trained → other", style={"description_width": "initial"})
        self.out = W.Output()
        for s in self.z_sliders:
            s.observe(lambda change: self.update(self._z_from_sliders()), names="value")
        self.t_slider.observe(self._on_t, names="value")
        with self.out:
            from IPython.display import display
            display(self.fig.canvas if hasattr(self.fig.canvas, "layout") else self.fig)
        self.widget = W.HBox([W.VBox(self.z_sliders + [self.t_slider]), self.out])

    def kernel(self, z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.generator(z.cpu())

    def _z_from_sliders(self) -> torch.Tensor:
        return torch.tensor([s.value for s in self.z_sliders], dtype=self.z_trained.dtype)

    def _on_t(self, change) -> None:
        t = change["new"]
        self.update((1 - t) * self.z_trained + t * self.z_other)

    def update(self, z: torch.Tensor) -> None:
        """Regenerate the kernel from z and redraw."""
        self.image.set_data(self._mosaic(self.kernel(z)))
        self.ax.set_title("z = [" + ", ".join(f"{v:+.2f}" for v in z.tolist()) + "]", fontsize=9)
        self.fig.canvas.draw_idle()
        if not hasattr(self.fig.canvas, "layout"):              # inline backend: re-render the PNG
            from IPython.display import clear_output, display
            with self.out:
                clear_output(wait=True)
                display(self.fig)

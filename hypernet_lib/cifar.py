"""CIFAR nets whose layers take their weights from a pluggable *weight source* (chapter 4).

One plain CNN for 32×32 colour images, built once (:class:`CifarNet`)::

    conv1 3→64 ─ BN ─ ReLU                         32×32
    conv2 64→128 ─ BN ─ ReLU ─ max-pool 2×2        32×32 → 16×16
    conv3 128→256 ─ BN ─ ReLU ─ max-pool 2×2       16×16 → 8×8
    conv4 256→512 ─ BN ─ ReLU ─ max-pool 2×2        8×8 → 4×4
    conv5 512→512 ─ BN ─ ReLU ─ global average pool  4×4 → 1×1
    fc1 512→1024 ─ ReLU ─ dropout 0.5
    fc2 1024→512 ─ ReLU ─ dropout 0.5
    fc3 512→100                                     logits

All convs are 3×3 with padding 1 and keep their bias (redundant before batch norm, kept so that
the counts match a plain ``nn.Conv2d`` net). Biases and batch norm are always ordinary parameters;
only the eight weight matrices/kernels come from the weight source, which returns
``{layer name: weight}`` once per forward call:

* :class:`OrdinaryWeights` — (a) ``standard``: ordinary parameters, Kaiming-normal init.
* :class:`NaiveHeads` — (b) ``naive_full``: a common first design, one ``Linear(16, N)`` head per
  layer from its own 16-dim z. A head with bias has (16+1)·N parameters, so this source is 17×
  the weights it makes *by construction*: 85,160,676 parameters for the whole net.
* :class:`ChunkedHyperWeights` — (d) ``chunked_full``: Ha, Dai & Le's tiling (§3.1): ONE
  :class:`~hypernet_lib.static.HyperConvGenerator` (Eq. 2) makes fixed 16×16×3×3 chunks, each
  from its own embedding z_c ∈ R^{N_z}; every layer is assembled from its chunks (Eq. 3 /
  tiling), FC layers too (a chunk read as the paper's 2-D kernel matrix, 48×48). All chunks of
  all layers come out of one batched generator call: no Python loop over chunks.
* (c) ``partial``: :class:`ChunkedHyperWeights` for the large layers (conv3–conv5, fc1, fc2) and
  :class:`OrdinaryWeights` for the small ones (conv1, conv2, fc3), merged by
  :class:`CompositeWeights`.

Also the paper's CIFAR-10 Wide ResNet (Zagoruyko & Komodakis, 2016) and its hyper version
(:func:`build_wrn`), with Table 2's 0.563 M / 0.097 M parameters.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .static import HyperConvGenerator, kernel_from_tiles, tile_grid
from .utils import check_float, check_int, check_shape, checkpoint_bytes

__all__ = [
    "LayerSpec", "cifar_layer_specs", "VARIANTS", "build_cifar_net", "CifarNet",
    "OrdinaryWeights", "NaiveHeads", "ChunkedHyperWeights", "CompositeWeights",
    "assemble_chunks_slow", "WideResNet", "build_wrn",
    "make_augment", "to_cifar_shape", "load_cifar100_or_standin", "checkpoint_mb", "checkpoint_mib",
    "TrainingTracker", "pca_trajectory", "path_length_share",
]

VARIANTS = ("standard", "naive_full", "partial", "chunked_full")


# ----------------------------------------------------------------------------------------- layers
@dataclass(frozen=True)
class LayerSpec:
    """One weight of the main net. conv: shape (out, in, f, f); fc: shape (out, in)."""
    name: str
    kind: str            # "conv" or "fc"
    out_features: int
    in_features: int
    f: int = 3

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a LayerSpec's name must be a non-empty str, got {self.name!r}")
        if self.kind not in ("conv", "fc"):
            raise ValueError(f"LayerSpec {self.name!r}: unknown kind {self.kind!r}; choose 'conv' or 'fc'")
        check_int(out_features=self.out_features, in_features=self.in_features, f=self.f, lo=1)

    @property
    def shape(self) -> tuple:
        if self.kind == "conv":
            return (self.out_features, self.in_features, self.f, self.f)
        return (self.out_features, self.in_features)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def fan_in(self) -> int:
        return self.in_features * (self.f * self.f if self.kind == "conv" else 1)


def cifar_layer_specs(num_classes: int = 100, width: float = 1.0, in_channels: int = 3) -> List[LayerSpec]:
    """The eight weights of :class:`CifarNet`; ``width`` scales every channel/unit count
    (1.0: 64…512 channels, 1024/512 hidden units)."""
    check_float(width=width, lo=0.0, lo_open=True)
    check_int(num_classes=num_classes, in_channels=in_channels, lo=1)
    c = [max(1, round(w * width)) for w in (64, 128, 256, 512, 512)]
    h = [max(1, round(w * width)) for w in (1024, 512)]
    convs = [LayerSpec(f"conv{i + 1}", "conv", c[i], ([in_channels] + c)[i]) for i in range(5)]
    fcs = [LayerSpec("fc1", "fc", h[0], c[4]), LayerSpec("fc2", "fc", h[1], h[0]),
           LayerSpec("fc3", "fc", num_classes, h[1])]
    return convs + fcs


def _kaiming_std(spec: LayerSpec) -> float:
    """He et al. (2015) std for a ReLU layer: sqrt(2 / fan_in)."""
    return math.sqrt(2.0 / spec.fan_in)


# ---------------------------------------------------------------------------------- weight sources
def _check_specs(specs, who: str) -> List[LayerSpec]:
    """``specs`` as a list of LayerSpec with distinct names, or a ValueError naming the bad entry."""
    if isinstance(specs, (str, bytes)) or not hasattr(specs, "__iter__"):
        raise ValueError(f"{who}: specs must be a list of LayerSpec (see cifar_layer_specs), got {type(specs).__name__}")
    specs = list(specs)
    for k, spec in enumerate(specs):
        if not isinstance(spec, LayerSpec):
            raise ValueError(f"{who}: specs[{k}] must be a LayerSpec (see cifar_layer_specs), got {type(spec).__name__}")
    names = [spec.name for spec in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{who}: layer name(s) {', '.join(dup)} appear more than once in specs")
    return specs


class WeightSource(nn.Module):
    """Base class: ``forward() -> {name: weight}`` for the layers in ``self.specs``."""
    kind = "base"
    specs: List[LayerSpec]

    @property
    def names(self) -> List[str]:
        return [s.name for s in self.specs]

    def z_embeddings(self) -> Dict[str, torch.Tensor]:
        """Per generated layer, its embeddings (detached): (N_z,) or (n_chunks, N_z). Empty if none."""
        return {}


class OrdinaryWeights(WeightSource):
    """(a) Ordinary weights: one ``nn.Parameter`` per layer, Kaiming-normal init."""
    kind = "ordinary"

    def __init__(self, specs: Sequence[LayerSpec]):
        super().__init__()
        self.specs = _check_specs(specs, "OrdinaryWeights")
        self.weights = nn.ParameterDict(
            {s.name: nn.Parameter(torch.randn(s.shape) * _kaiming_std(s)) for s in self.specs})

    def forward(self) -> Dict[str, torch.Tensor]:
        return {n: self.weights[n] for n in self.names}


class NaiveHeads(WeightSource):
    """(b) Naive per-layer heads: for each layer j, W^j = reshape(H_j z^j + b_j), with its own
    z^j ∈ R^{N_z} (N_z = 16) and its own head H_j ∈ R^{N×N_z}, b_j ∈ R^N (N = the layer's weight count).

    Parameters per layer: N_z (z) + N·N_z + N (head) = 17·N + 16 for N_z = 16 — the head is 17× the
    weights it generates, whatever N is.  Init: z ~ N(0, 1), H_j ~ N(0, 2 / (fan_in·N_z)), b_j = 0, so
    Var(W) = 2 / fan_in (Kaiming) at the start.
    """
    kind = "naive"

    def __init__(self, specs: Sequence[LayerSpec], n_z: int = 16):
        super().__init__()
        self.specs = _check_specs(specs, "NaiveHeads")
        check_int(n_z=n_z, lo=1)
        self.n_z = n_z
        self.z = nn.ParameterDict({s.name: nn.Parameter(torch.randn(n_z)) for s in self.specs})
        self.heads = nn.ModuleDict()
        for s in self.specs:
            head = nn.Linear(n_z, s.numel)
            with torch.no_grad():
                head.weight.normal_(0.0, math.sqrt(2.0 / (s.fan_in * n_z)))
                head.bias.zero_()
            self.heads[s.name] = head

    def forward(self) -> Dict[str, torch.Tensor]:
        return {s.name: self.heads[s.name](self.z[s.name]).view(s.shape) for s in self.specs}

    def z_embeddings(self) -> Dict[str, torch.Tensor]:
        return {n: self.z[n].detach() for n in self.names}


def _tile_grid(spec: LayerSpec, n_out: int, n_in: int, f: int) -> tuple:
    """How many chunks a layer needs: (R, C). Conv: tiles of n_out×n_in channels (ceil, then crop).
    FC: the chunk read as the paper's 2-D kernel matrix, (n_out·f) × (n_in·f) = 48×48 blocks."""
    if spec.kind == "conv":
        if spec.f != f:
            raise ValueError(f"{spec.name} has a {spec.f}×{spec.f} kernel but the generator makes {f}×{f} chunks")
        return math.ceil(spec.out_features / n_out), math.ceil(spec.in_features / n_in)
    return math.ceil(spec.out_features / (n_out * f)), math.ceil(spec.in_features / (n_in * f))


def _assemble(spec: LayerSpec, tiles: torch.Tensor, grid: tuple) -> torch.Tensor:
    """tiles (R·C, n_out, n_in, f, f) -> the layer's weight, cropped to spec.shape."""
    r, c = grid
    _, o, i, f, _ = tiles.shape
    t = tiles.view(r, c, o, i, f, f)          # chunk k sits at row k // C, column k % C
    if spec.kind == "conv":
        w = kernel_from_tiles(t)              # (R·n_out, C·n_in, f, f): the tiling of §3.1
    else:                                     # FC: each chunk read as an (o·f) × (i·f) matrix
        w = t.permute(0, 2, 4, 1, 3, 5).reshape(r * o * f, c * i * f)
    return w[:spec.out_features, :spec.in_features]     # crop to the layer's shape


class ChunkedHyperWeights(WeightSource):
    """(c)/(d) Ha-style chunked generation: one shared generator g(·; φ) (Eq. 2, a
    :class:`HyperConvGenerator` making n_out×n_in×f×f = 16×16×3×3 chunks) and one embedding
    z_c ∈ R^{N_z} per chunk c.  All chunks of all layers are generated in ONE batched call::

        Z  : (n_chunks, N_z)                          every chunk's embedding, stacked
        K  = g(Z)  : (n_chunks, 16, 16, 3, 3)           Eq. 2 for all chunks at once
        W^j = s_j · crop(tile(K[chunks of layer j]))    Eq. 3 / §3.1 tiling

    s_j = sqrt(fan_in(chunk) / fan_in(layer j)) is a fixed (not learned) constant: the generator is
    initialised (hyperfan-in) to give chunks the Kaiming scale for a chunk's own fan-in 16·3·3 = 144;
    s_j rescales that to layer j's fan-in, so every generated layer starts Kaiming-like.

    Parameters: n_chunks·N_z (embeddings) + d·(N_z+1)·n_in + f·n_out·f·(d+1) (generator).
    """
    kind = "chunked"

    def __init__(self, specs: Sequence[LayerSpec], n_z: int = 64, d: Optional[int] = None,
                 n_out: int = 16, n_in: int = 16, f: int = 3, generator: Optional[HyperConvGenerator] = None):
        super().__init__()
        self.specs = _check_specs(specs, "ChunkedHyperWeights")
        if not self.specs:
            raise ValueError("ChunkedHyperWeights needs at least one layer")
        if generator is not None and not isinstance(generator, HyperConvGenerator):
            raise ValueError(f"generator must be a HyperConvGenerator, got {type(generator).__name__}")
        self.generator = generator if generator is not None else HyperConvGenerator(f, n_in, n_out, n_z, d)
        g = self.generator
        self.n_z = g.n_z
        self.grids = {s.name: _tile_grid(s, g.n_out, g.n_in, g.f) for s in self.specs}
        counts = [r * c for r, c in self.grids.values()]
        self.offsets = dict(zip(self.names, [sum(counts[:k]) for k in range(len(counts))]))
        self.counts = dict(zip(self.names, counts))
        self.n_chunks = sum(counts)
        self.z = nn.Parameter(torch.randn(self.n_chunks, g.n_z))   # z_c ~ N(0, 1): hyperfan-in assumes it
        chunk_fan_in = g.n_in * g.f * g.f
        self.scale = {s.name: math.sqrt(chunk_fan_in / s.fan_in) for s in self.specs}
        # the same constants, one per chunk, so they are applied by one broadcast multiply
        self.register_buffer("chunk_scale", torch.cat(
            [torch.full((self.counts[s.name],), self.scale[s.name]) for s in self.specs]), persistent=False)

    def chunks(self) -> torch.Tensor:
        """All chunks at once: g(Z) -> (n_chunks, n_out, n_in, f, f). One batched op (Eq. 2)."""
        return self.generator(self.z)

    def forward(self) -> Dict[str, torch.Tensor]:
        scale = self.chunk_scale.view(-1, 1, 1, 1, 1).to(self.z.dtype)
        k = self.chunks() * scale             # Eq. 2 for every chunk, times s_j
        sizes = [self.counts[s.name] for s in self.specs]
        parts = torch.split(k, sizes)         # layer j's chunks (no copy)
        # a loop over the (≤ 8) layers, not over chunks: each is one reshape + crop
        return {s.name: _assemble(s, p, self.grids[s.name])
                for s, p in zip(self.specs, parts)}

    def z_embeddings(self) -> Dict[str, torch.Tensor]:
        z = self.z.detach()
        return {n: z[self.offsets[n]:self.offsets[n] + self.counts[n]] for n in self.names}


def assemble_chunks_slow(source: ChunkedHyperWeights) -> Dict[str, torch.Tensor]:
    """Slow reference for tests: one generator call *per chunk* and element-by-element placement."""
    g = source.generator
    out = {}
    for s in source.specs:
        r, c = source.grids[s.name]
        o0 = source.offsets[s.name]
        if s.kind == "conv":
            full = torch.zeros(r * g.n_out, c * g.n_in, g.f, g.f)
        else:
            full = torch.zeros(r * g.n_out * g.f, c * g.n_in * g.f)
        for a in range(r):
            for b in range(c):
                k = g(source.z[o0 + a * c + b])                     # (n_out, n_in, f, f)
                if s.kind == "conv":
                    full[a * g.n_out:(a + 1) * g.n_out, b * g.n_in:(b + 1) * g.n_in] = k
                else:
                    for oo in range(g.n_out):
                        for kh in range(g.f):
                            row = a * g.n_out * g.f + oo * g.f + kh
                            for ii in range(g.n_in):
                                col = b * g.n_in * g.f + ii * g.f
                                full[row, col:col + g.f] = k[oo, ii, kh]
        out[s.name] = full[:s.out_features, :s.in_features] * source.scale[s.name]
    return out


class CompositeWeights(WeightSource):
    """Merge several sources that each serve some of the layers (used by ``partial``)."""
    kind = "composite"

    def __init__(self, sources: Iterable[WeightSource], order: Sequence[LayerSpec]):
        super().__init__()
        sources = list(sources)
        for k, src in enumerate(sources):
            if not isinstance(src, WeightSource):
                raise ValueError(f"sources[{k}] must be a WeightSource (OrdinaryWeights, NaiveHeads, "
                                 f"ChunkedHyperWeights), got {type(src).__name__}")
        self.sources = nn.ModuleList(sources)
        self.specs = _check_specs(order, "CompositeWeights")
        served = [n for src in self.sources for n in src.names]
        if sorted(served) != sorted(self.names):
            raise ValueError(f"the sources serve layers {served}, but the net needs {self.names}")

    def forward(self) -> Dict[str, torch.Tensor]:
        out = {}
        for src in self.sources:
            out.update(src())
        return out

    def z_embeddings(self) -> Dict[str, torch.Tensor]:
        out = {}
        for src in self.sources:
            out.update(src.z_embeddings())
        return {n: out[n] for n in self.names if n in out}

    def kind_of(self, name: str) -> str:
        for src in self.sources:
            if name in src.names:
                return src.kind
        raise KeyError(f"no layer named {name!r}; the layers are {', '.join(self.names)}")


# ------------------------------------------------------------------------------------------ the net
class CifarNet(nn.Module):
    """The chapter's plain CNN; its eight weights come from ``source`` (see module docstring).

    Input (B, C, 32, 32) -> logits (B, num_classes).  Any H, W divisible by 8 works.
    """
    POOL_AFTER = ("conv2", "conv3", "conv4")

    def __init__(self, source: WeightSource, specs: Sequence[LayerSpec], dropout: float = 0.5,
                 variant: str = "custom"):
        super().__init__()
        check_float(dropout=dropout, lo=0.0, hi=1.0, hi_open=True)
        self.specs = _check_specs(specs, "CifarNet")
        if not isinstance(source, WeightSource):
            raise ValueError(f"source must be a WeightSource (see build_cifar_net), got {type(source).__name__}")
        missing = [s.name for s in self.specs if s.name not in source.names]
        if missing:
            raise ValueError(f"the source makes no weight for layer(s) {', '.join(missing)}; it serves "
                             f"{', '.join(source.names) or 'none'}")
        if not any(s.kind == "conv" for s in self.specs):
            raise ValueError("CifarNet needs at least one conv layer in specs (its first conv reads the images)")
        self.source = source
        self.variant = variant
        self.convs = [s for s in self.specs if s.kind == "conv"]
        self.fcs = [s for s in self.specs if s.kind == "fc"]
        self.biases = nn.ParameterDict({s.name: nn.Parameter(torch.zeros(s.out_features)) for s in self.specs})
        self.bns = nn.ModuleDict({s.name: nn.BatchNorm2d(s.out_features) for s in self.convs})
        self.dropout = nn.Dropout(dropout)
        self.in_channels = self.convs[0].in_features

    # -- the forward pass
    def _check_images(self, x) -> None:
        """A ValueError naming the problem unless x is a float batch (B, C, H, W) this net can pool."""
        if not isinstance(x, torch.Tensor):
            check_shape("x", x, ("B", self.in_channels, "H", "W"))
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected images of shape (B, {self.in_channels}, H, W), "
                             f"got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"images must be floating point, got dtype {x.dtype}; convert with x.float() "
                             "(and normalise them as the training data was)")
        small = 2 ** sum(s.name in self.POOL_AFTER for s in self.convs)      # each 2×2 max-pool halves H and W
        if x.shape[2] < small or x.shape[3] < small:
            raise ValueError(f"images of {x.shape[2]}×{x.shape[3]} are too small: the net max-pools "
                             f"{small.bit_length() - 1} times, so H and W must be at least {small} (32×32 for CIFAR)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_images(x)                 # (B, C, H, W), float
        w = self.source()                     # {name: weight}, generated once per call
        b = self.biases
        for s in self.convs:
            x = F.conv2d(x, w[s.name], b[s.name], padding=s.f // 2)
            x = F.relu(self.bns[s.name](x))
            if s.name in self.POOL_AFTER:
                x = F.max_pool2d(x, 2)
        x = x.mean(dim=(2, 3))                # global average pooling
        for k, s in enumerate(self.fcs):
            x = F.linear(x, w[s.name], b[s.name])
            if k < len(self.fcs) - 1:
                x = self.dropout(F.relu(x))
        return x

    # -- analysis helpers
    def generated_weights(self) -> Dict[str, torch.Tensor]:
        """{name: weight} exactly as the forward pass uses them (detached)."""
        with torch.no_grad():
            w = self.source()
        return {s.name: w[s.name].detach() for s in self.specs}

    def layer_kind(self, name: str) -> str:
        if name not in [s.name for s in self.specs]:
            raise KeyError(f"no layer named {name!r}; the layers are {', '.join(s.name for s in self.specs)}")
        src = self.source
        return src.kind_of(name) if isinstance(src, CompositeWeights) else src.kind

    def weight_stats(self, weights: Optional[Dict[str, torch.Tensor]] = None) -> List[dict]:
        """Per layer: shape, source kind, mean, std, Kaiming std sqrt(2/fan_in), std / Kaiming std.
        ``weights``: the output of :meth:`generated_weights`, if it is at hand already."""
        rows, weights = [], self.generated_weights() if weights is None else weights
        for s in self.specs:
            name, w = s.name, weights[s.name].float()
            std = w.std().item()
            rows.append({"layer": name, "shape": tuple(w.shape), "source": self.layer_kind(name),
                         "mean": w.mean().item(), "std": std, "kaiming_std": _kaiming_std(s),
                         "std_over_kaiming": std / _kaiming_std(s), "max_abs": w.abs().max().item()})
        return rows

    def z_embeddings(self) -> Dict[str, torch.Tensor]:
        """Per generated layer, its embedding(s) (detached); empty for the standard net."""
        return self.source.z_embeddings()

    def z_norms(self, zs: Optional[Dict[str, torch.Tensor]] = None) -> Dict[str, float]:
        """Mean L2 norm of each layer's embeddings (one z for naive heads, many chunks for chunked)."""
        zs = self.z_embeddings() if zs is None else zs
        return {n: z.reshape(-1, z.shape[-1]).norm(dim=-1).mean().item() for n, z in zs.items()}

    def z_flat(self, zs: Optional[Dict[str, torch.Tensor]] = None) -> torch.Tensor:
        """All embeddings concatenated into one vector (for PCA trajectories over training)."""
        zs = list((self.z_embeddings() if zs is None else zs).values())
        return torch.cat([z.reshape(-1) for z in zs]) if zs else torch.zeros(0)

    def conv1_filters(self) -> torch.Tensor:
        """conv1's kernel (64, 3, 3, 3) as the forward pass uses it (generated or ordinary)."""
        return self.generated_weights()["conv1"]


def build_cifar_net(variant: str, num_classes: int = 100, width: float = 1.0, in_channels: int = 3,
                    dropout: float = 0.5, n_z: Optional[int] = None, d: Optional[int] = None) -> CifarNet:
    """Build one of :data:`VARIANTS` on :class:`CifarNet`'s architecture.

    ``standard``: ordinary weights.  ``naive_full``: one Linear(16, N) head per layer
    (n_z defaults to 16).  ``partial``: conv3–conv5, fc1, fc2 generated by one chunked Ha generator,
    conv1, conv2, fc3 ordinary.  ``chunked_full``: all eight layers from one chunked Ha generator
    (n_z = d = 64 by default, 16×16×3×3 chunks).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown CIFAR net variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    specs = cifar_layer_specs(num_classes, width, in_channels)
    if variant == "standard":
        source: WeightSource = OrdinaryWeights(specs)
    elif variant == "naive_full":
        source = NaiveHeads(specs, n_z=16 if n_z is None else n_z)
    elif variant == "chunked_full":
        source = ChunkedHyperWeights(specs, n_z=64 if n_z is None else n_z, d=d)
    else:  # partial
        large = {"conv3", "conv4", "conv5", "fc1", "fc2"}
        gen = ChunkedHyperWeights([s for s in specs if s.name in large], n_z=64 if n_z is None else n_z, d=d)
        source = CompositeWeights([OrdinaryWeights([s for s in specs if s.name not in large]), gen], specs)
    return CifarNet(source, specs, dropout=dropout, variant=variant)


# ------------------------------------------------------------------------------- Wide ResNets (§4.2)
def wrn_blocks_per_group(depth: int, width: int = 1) -> int:
    """n, the blocks in each of the three groups of a WRN-depth-width (depth = 6n + 4, n >= 1).
    A depth or width that names no WRN raises a ValueError naming it."""
    check_int(depth=depth, width=width, lo=1)
    if (depth - 4) % 6 or depth < 10:
        raise ValueError(f"WRN depth must be 6n+4 with n >= 1 (e.g. 10, 16, 28, 40), got {depth}")
    return (depth - 4) // 6


class _TiledKernels(nn.Module):
    """All the generated conv kernels of a hyper WRN: per-chunk embeddings (n_chunks, N_z) and one
    shared generator; ``forward()`` makes every kernel from one batched generator call."""

    def __init__(self, shapes: Sequence[tuple], n_z: int = 64, d: Optional[int] = None, tile: int = 16, f: int = 3):
        super().__init__()
        self.generator = HyperConvGenerator(f, tile, tile, n_z, d)
        self.grids = []
        for out_c, in_c in shapes:
            self.grids.append(tile_grid(out_c, in_c, tile, tile))
        self.n_chunks = sum(r * c for r, c in self.grids)
        self.z = nn.Parameter(torch.randn(self.n_chunks, n_z))

    def forward(self) -> List[torch.Tensor]:
        k = self.generator(self.z)            # Eq. 2, every chunk: (n_chunks, 16, 16, 3, 3)
        out, o = [], 0
        for r, c in self.grids:               # one reshape per kernel (§3.1 tiling)
            out.append(kernel_from_tiles(k[o:o + r * c].view(r, c, *k.shape[1:])))
            o += r * c
        return out


class _WRNBlock(nn.Module):
    """Pre-activation basic block: BN-ReLU-conv3×3-BN-ReLU-conv3×3, 1×1 shortcut when channels change.
    Conv kernels are passed in (ordinary or generated), so the block has no conv weights of its own."""

    def __init__(self, in_c: int, out_c: int, stride: int):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(in_c), nn.BatchNorm2d(out_c)
        self.stride = stride
        self.shortcut = (nn.Conv2d(in_c, out_c, 1, stride=stride, bias=False)
                         if (in_c != out_c or stride != 1) else None)

    def forward(self, x, w1, w2):
        o = F.relu(self.bn1(x))
        y = F.conv2d(o, w1, stride=self.stride, padding=1)
        y = F.conv2d(F.relu(self.bn2(y)), w2, padding=1)
        return y + (self.shortcut(o) if self.shortcut is not None else x)


class WideResNet(nn.Module):
    """WRN-depth-width (Zagoruyko & Komodakis, 2016) for 32×32 images; ``hyper=True`` generates the
    3·2·n block kernels (36 for depth 40) from 16×16×3×3 chunks of one generator (N_z = d = 64), as in
    Ha et al. §4.2; conv1, batch norm, 1×1 shortcuts and the final FC stay ordinary."""

    def __init__(self, depth: int = 40, width: int = 1, hyper: bool = False, num_classes: int = 10,
                 n_z: int = 64):
        super().__init__()
        n = wrn_blocks_per_group(depth, width)
        check_int(num_classes=num_classes, n_z=n_z, lo=1)
        widths = [16, 16 * width, 32 * width, 64 * width]
        self.conv1 = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)
        blocks, shapes, in_c = [], [], widths[0]
        for g in range(3):
            for b in range(n):
                out_c, stride = widths[g + 1], (2 if g > 0 and b == 0 else 1)
                blocks.append(_WRNBlock(in_c, out_c, stride))
                shapes += [(out_c, in_c), (out_c, out_c)]
                in_c = out_c
        self.blocks = nn.ModuleList(blocks)
        self.bn = nn.BatchNorm2d(in_c)
        self.fc = nn.Linear(in_c, num_classes)
        self.hyper = hyper
        if hyper:
            self.kernels = _TiledKernels(shapes, n_z=n_z)
        else:
            self.kernels = nn.ParameterList(
                [nn.Parameter(torch.randn(o, i, 3, 3) * math.sqrt(2.0 / (9 * i))) for o, i in shapes])

    def all_kernels(self) -> List[torch.Tensor]:
        return self.kernels() if self.hyper else list(self.kernels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_shape("x", x, ("B", 3, "H", "W"), floating=True, fix="colour images (B, 3, H, W), e.g. 32×32")
        ks = self.all_kernels()
        x = self.conv1(x)
        for i, blk in enumerate(self.blocks):
            x = blk(x, ks[2 * i], ks[2 * i + 1])
        x = F.relu(self.bn(x)).mean(dim=(2, 3))
        return self.fc(x)


def build_wrn(depth: int = 40, width: int = 1, hyper: bool = False, num_classes: int = 10) -> WideResNet:
    """``build_wrn(40, 1)`` — 0.563 M in Ha et al.'s Table 2; ``build_wrn(40, 1, hyper=True)`` — 0.097 M."""
    return WideResNet(depth, width, hyper, num_classes)


# ----------------------------------------------------------------------------- training helpers
def make_augment(crop: int = 4, flip: bool = True, rotate: float = 0.0, jitter: float = 0.0,
                 erase: float = 0.0):
    """A batched augmentation ``(x, generator) -> x`` for (B, C, H, W) tensors on any device.

    crop: pad-and-crop padding (4 = 36×36 → 32×32, the paper's CIFAR set-up); flip: horizontal flip.
    Extras, off by default: ``rotate`` (max degrees, one affine warp for the batch),
    ``jitter`` (brightness/contrast: per-image scale 1±jitter and shift ±jitter, in normalised units),
    ``erase`` (probability of blanking one random rectangle of up to 1/4 of the image, per image).
    No Python loop over images.
    """
    from .data import random_crop, random_flip

    check_int(crop=crop, lo=0)
    check_float(rotate=rotate, jitter=jitter, lo=0.0)
    check_float(erase=erase, lo=0.0, hi=1.0)

    def augment(x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        b, dev = x.shape[0], x.device
        rnd = lambda *shape: torch.rand(*shape, generator=generator).to(dev)
        if crop:
            x = random_crop(x, crop, generator)
        if flip:
            x = random_flip(x, generator)
        if rotate:
            a = (rnd(b) * 2 - 1) * math.radians(rotate)
            cos, sin, zero = torch.cos(a), torch.sin(a), torch.zeros_like(a)
            theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
            grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
        if jitter:
            scale = 1 + (rnd(b, 1, 1, 1) * 2 - 1) * jitter
            shift = (rnd(b, 1, 1, 1) * 2 - 1) * jitter
            x = x * scale + shift
        if erase:
            h, w = x.shape[-2:]
            eh, ew = (rnd(b) * h / 2).long() + 1, (rnd(b) * w / 2).long() + 1
            y0, x0 = (rnd(b) * (h - eh + 1)).long(), (rnd(b) * (w - ew + 1)).long()
            rows, cols = torch.arange(h, device=dev), torch.arange(w, device=dev)
            inside = (((rows[None] >= y0[:, None]) & (rows[None] < (y0 + eh)[:, None]))[:, :, None] &
                      ((cols[None] >= x0[:, None]) & (cols[None] < (x0 + ew)[:, None]))[:, None, :])
            on = (rnd(b) < erase)[:, None, None]
            x = x.masked_fill((inside & on)[:, None], 0.0)
        return x

    return augment


def to_cifar_shape(data, size: int = 32, channels: int = 3):
    """A stand-in with CIFAR's tensor shape: pad (N, 1, 28, 28) images to ``size`` (with the
    background value) and repeat the channel ``channels`` times.  Returns a new ImageData with
    ``name``/``source`` saying so.  Used when CIFAR-100 itself is not on disk."""
    import dataclasses as dc

    check_int(size=size, channels=channels, lo=1)
    bg = float(data.x_train.amin()) if data.x_train.numel() else 0.0     # the background value
    images = {}
    for split in ("train", "val", "test"):
        x = getattr(data, f"x_{split}")
        if x.dim() != 4:
            raise ValueError(f"x_{split} must be (N, C, H, W), got {tuple(x.shape)}")
        ph, pw = size - x.shape[-2], size - x.shape[-1]
        if ph < 0 or pw < 0:
            raise ValueError(f"images of {tuple(x.shape[-2:])} are larger than {size}×{size}")
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=bg)
        if x.shape[1] != channels:
            if x.shape[1] != 1:
                raise ValueError(f"x_{split} has {x.shape[1]} channels: only one channel can be repeated to "
                                 f"channels={channels}; pass channels={x.shape[1]}")
            x = x.expand(-1, channels, -1, -1).contiguous()
        images[f"x_{split}"] = x
    return dc.replace(data, **images, name=f"{data.name} as {channels}×{size}×{size}",
                      source=f"{data.source}; padded and channel-repeated stand-in, NOT CIFAR-100")


def load_cifar100_or_standin(scale: str, val_size: int = 5000):
    """The data of the CIFAR-100 chapter, and which kind it is: ``(ImageData, kind)``.

    * ``smoke``: a small file in CIFAR-100's exact pickle format, written on the spot ("fixture");
    * otherwise the real CIFAR-100 (45k / 5k / 10k), downloaded if needed ("cifar100");
    * at ``cpu`` scale, when CIFAR-100 cannot be had offline, a REAL but different data set with
      CIFAR's tensor shape, Fashion-MNIST padded to 3×32×32 ("stand-in"), saying so when it does.
      At ``full`` scale the missing data is an error: a full run must not silently change data set.
    """
    import tempfile

    from . import data as hd

    if scale == "smoke":
        root = tempfile.mkdtemp(prefix="cifar100-fixture-")
        hd.write_cifar100_fixture(root, n_train=256, n_test=64, seed=0)
        return hd.load_cifar100(root=root, download=False, val_size=64), "fixture"
    try:
        return hd.load_cifar100(download=True, val_size=val_size), "cifar100"
    except hd.DataUnavailable as exc:
        if scale == "full":
            raise
        # the whole message: what was tried, and where to put the file (not only its first line)
        print("CIFAR-100 is not available here:\n  " + str(exc).replace("\n", "\n  "))
        print("-> using a REAL but different data set as a stand-in, with CIFAR's tensor shape.")
        return to_cifar_shape(hd.load_fashion_mnist(val_size=val_size)), "stand-in"

def checkpoint_mb(module: nn.Module) -> float:
    """Size in MB (10^6 bytes) of ``torch.save(module.state_dict())``, measured by saving it."""
    return checkpoint_bytes(module) / 1e6


def checkpoint_mib(module: nn.Module) -> float:
    """Size in MiB (2^20 bytes) of ``torch.save(module.state_dict())``, measured by saving it.

    The unit of chapter 3's tables."""
    return checkpoint_bytes(module) / 2 ** 20


class TrainingTracker:
    """A ``fit`` callback that snapshots a :class:`CifarNet` after every epoch (call it once before
    training for the initial state): all embeddings (flattened and per layer), per-layer z norms, per-layer weight
    statistics and conv1's kernel."""

    def __init__(self, net: CifarNet):
        if not isinstance(net, CifarNet):
            raise ValueError(f"net must be a CifarNet (see build_cifar_net), got {type(net).__name__}")
        self.net = net
        self.z, self.z_layers, self.z_norms, self.stats, self.conv1, self.labels = [], [], [], [], [], []

    def snapshot(self, label: str = "init") -> None:
        zs, weights = self.net.z_embeddings(), self.net.generated_weights()     # each computed once
        self.z.append(self.net.z_flat(zs).cpu().clone())
        self.z_layers.append({k: v.cpu().clone() for k, v in zs.items()})
        self.z_norms.append(self.net.z_norms(zs))
        self.stats.append(self.net.weight_stats(weights))
        self.conv1.append(weights["conv1"].float().cpu().clone())
        self.labels.append(label)

    def __call__(self, epoch: int, history) -> None:
        self.snapshot(f"epoch {epoch + 1}")

    _FIELDS = ("z", "z_layers", "z_norms", "stats", "conv1", "labels")

    def state(self) -> dict:
        """The snapshots as plain lists, dicts and tensors (for a checkpoint's ``extra``)."""
        return {k: getattr(self, k) for k in self._FIELDS}

    @classmethod
    def from_state(cls, net: "CifarNet", state: dict) -> "TrainingTracker":
        """A tracker for ``net`` holding the snapshots of :meth:`state` (no new snapshot)."""
        if not isinstance(state, dict):
            raise ValueError(f"state must be the dict TrainingTracker.state() returns, got {type(state).__name__}")
        missing = [k for k in cls._FIELDS if k not in state]
        if missing:
            raise ValueError(f"tracker state lacks {', '.join(missing)}")
        tracker = cls(net)
        for k in cls._FIELDS:
            setattr(tracker, k, list(state[k]))
        tracker.stats = [[{**r, "shape": tuple(r["shape"])} for r in rows] for rows in tracker.stats]
        return tracker

    def z_drift(self) -> Dict[str, List[float]]:
        """Per layer, ||z_t - z_0|| / ||z_0|| for every snapshot t (how far training moved the embeddings)."""
        if not self.z_layers:
            raise ValueError("the tracker has no snapshot yet; call snapshot() before training")
        z0 = self.z_layers[0]
        return {n: [((zt[n] - z0[n]).norm() / z0[n].norm().clamp_min(1e-12)).item() for zt in self.z_layers]
                for n in z0}


def _check_snapshots(snapshots) -> list:
    """``snapshots`` as a non-empty list of tensors of one shape, or a ValueError naming the bad one."""
    if isinstance(snapshots, torch.Tensor) or not hasattr(snapshots, "__iter__"):
        raise ValueError(f"snapshots must be a list of tensors (one per snapshot, e.g. TrainingTracker.z), "
                         f"got {type(snapshots).__name__}")
    snapshots = list(snapshots)
    if not snapshots:
        raise ValueError("snapshots is empty; pass the snapshots of a path, e.g. TrainingTracker.z")
    for t, s in enumerate(snapshots):
        if not isinstance(s, torch.Tensor):
            raise ValueError(f"snapshots[{t}] must be a tensor, got {type(s).__name__}")
        if s.shape != snapshots[0].shape:
            raise ValueError(f"snapshots[{t}] has shape {tuple(s.shape)} but snapshots[0] {tuple(snapshots[0].shape)}; "
                             "every snapshot must be of the same embedding")
    return snapshots


def path_length_share(snapshots: Sequence[torch.Tensor], upto: int) -> float:
    """Share of a path's length, sum_t ||s_{t+1} - s_t||, covered by its first ``upto`` steps
    (0..1).  Measured in the full embedding space, not in a projection."""
    zs = torch.stack([s.double().flatten() for s in _check_snapshots(snapshots)])
    steps = (zs[1:] - zs[:-1]).norm(dim=1)
    if steps.numel() == 0 or not 0 <= upto <= steps.numel():
        raise ValueError(f"upto must be between 0 and the {steps.numel()} steps of the path, got {upto}")
    total = steps.sum()
    return float(steps[:upto].sum() / total) if total > 0 else 0.0


def pca_trajectory(snapshots: Sequence[torch.Tensor], k: int = 2):
    """Project T snapshots of a flattened embedding vector (each (P,)) onto their top-k principal
    components.  Returns (coords (T, k), explained variance ratio (k,))."""
    check_int(k=k, lo=1)
    snapshots = _check_snapshots(snapshots)
    for t, s in enumerate(snapshots):
        if s.dim() != 1:
            raise ValueError(f"snapshots[{t}] has shape {tuple(s.shape)}; each snapshot must be a flat vector (P,), "
                             "e.g. CifarNet.z_flat()")
    zs = torch.stack([s.double() for s in snapshots])            # (T, P)
    if zs.shape[0] < 2 or zs.shape[1] == 0:
        raise ValueError("a PCA trajectory needs at least two snapshots of a non-empty embedding")
    zc = zs - zs.mean(0, keepdim=True)
    u, s, _ = torch.linalg.svd(zc, full_matrices=False)
    k = min(k, s.numel())
    var = s ** 2
    return (u[:, :k] * s[:k]).float(), (var[:k] / var.sum().clamp_min(1e-30)).float()

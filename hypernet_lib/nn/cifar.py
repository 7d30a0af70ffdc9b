"""Chapter 4's CIFAR net, whose layers take their weights from a pluggable weight source.

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
  :class:`~hypernet_lib.nn.generator.HyperConvGenerator` (Eq. 2) makes fixed 16×16×3×3 chunks, each
  from its own embedding z_c ∈ R^{N_z}; every layer is assembled from its chunks (Eq. 3 /
  tiling), FC layers too (a chunk read as the paper's 2-D kernel matrix, 48×48). All chunks of
  all layers come out of one batched generator call: no Python loop over chunks. The generated FC
  layers, which no batch norm follows, are weight-normalised with one learned gain each.
* (c) ``partial``: :class:`ChunkedHyperWeights` for the large convolutions (conv3–conv5,
  :data:`PARTIAL_LAYERS`) and :class:`OrdinaryWeights` for the rest (conv1, conv2, fc1–fc3),
  merged by :class:`CompositeWeights`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import check_bool, check_float, check_int, check_shape
from .generator import HyperConvGenerator
from .tiling import _assemble, _tile_grid, tiles_by_layer
from .weights import check_weights

__all__ = ["VARIANTS", "PARTIAL_LAYERS", "LayerSpec", "cifar_layer_specs", "WeightSource", "OrdinaryWeights",
           "NaiveHeads", "ChunkedHyperWeights", "assemble_chunks_slow", "CompositeWeights", "CifarNet",
           "build_cifar_net"]

VARIANTS = ("standard", "naive_full", "partial", "chunked_full")

#: the layers that ``partial`` generates: the three large convolutions, each followed by batch norm
#: (as in the paper's hyper WRN, which generates its 3×3 kernels and keeps the rest ordinary).
#: fc1 and fc2 stay ordinary: nothing normalises their outputs, so the growing scale of a generated
#: fc weight goes straight into the activations.
PARTIAL_LAYERS = ("conv3", "conv4", "conv5")


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
    """Base class: ``forward() -> {name: weight}`` for the layers in ``self.specs``, each of
    ``param_shapes[name]``: a net's own weights, in the dict it also accepts from outside."""
    kind = "base"
    specs: List[LayerSpec]

    @property
    def names(self) -> List[str]:
        return [s.name for s in self.specs]

    @property
    def param_shapes(self) -> Dict[str, tuple]:
        """{name: shape} of the weights this source makes, in ``specs`` order."""
        return {s.name: s.shape for s in self.specs}

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

    ``normalise_fc`` (default): the fully connected layers, which no batch norm follows, are
    weight-normalised per layer (Salimans & Kingma, 2016), with one learned gain γ_j each::

        W^j = γ_j · σ_j · V^j / rms(V^j),    σ_j = sqrt(2 / fan_in(layer j)),  γ_j = 1 at init

    The generator is shared, so the scale its chunks drift to under the batch-normalised convolutions
    would otherwise carry over into the fc layers, where it reaches the activations; γ_j sets their
    scale alone. A conv layer is left as it is: the batch norm after it does the same job.

    Parameters: n_chunks·N_z (embeddings) + d·(N_z+1)·n_in + f·n_out·f·(d+1) (generator)
    + one γ per fc layer (with ``normalise_fc``).
    """
    kind = "chunked"

    def __init__(self, specs: Sequence[LayerSpec], n_z: int = 64, d: Optional[int] = None,
                 n_out: int = 16, n_in: int = 16, f: int = 3, generator: Optional[HyperConvGenerator] = None,
                 normalise_fc: bool = True):
        super().__init__()
        check_bool(normalise_fc=normalise_fc)
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
        # the layers that nothing normalises, and their gains γ_j (none for a source of convs only)
        self.normalised = [s.name for s in self.specs if normalise_fc and s.kind == "fc"]
        self.kaiming = {s.name: _kaiming_std(s) for s in self.specs if s.name in self.normalised}
        if self.normalised:
            self.gain = nn.Parameter(torch.ones(len(self.normalised)))

    def chunks(self) -> torch.Tensor:
        """All chunks at once: g(Z) -> (n_chunks, n_out, n_in, f, f). One batched op (Eq. 2)."""
        return self.generator(self.z)

    def forward(self) -> Dict[str, torch.Tensor]:
        scale = self.chunk_scale.view(-1, 1, 1, 1, 1).to(self.z.dtype)
        k = self.chunks() * scale             # Eq. 2 for every chunk, times s_j
        # layer j's (R, C) grid of chunks, as views (no copy)
        grids = tiles_by_layer(k, (self.grids[s.name] for s in self.specs))
        # a loop over the (≤ 8) layers, not over chunks:
        # each is one reshape + crop (§3.1 tiling)
        w = {s.name: _assemble(s, t) for s, t in zip(self.specs, grids)}
        return self._normalise(w)

    def _normalise(self, w: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """W^j = γ_j · σ_j · V^j / rms(V^j) for the fc layers (weight normalisation, per layer)."""
        for k, name in enumerate(self.normalised):
            v = w[name]
            # a scalar first, then one multiply: autograd keeps no full-size copy for the backward
            w[name] = v * (self.gain[k] * self.kaiming[name] / v.square().mean().sqrt())
        return w

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
        w = full[:s.out_features, :s.in_features] * source.scale[s.name]
        if s.name in source.normalised:                        # weight normalisation, written out
            gain = source.gain[source.normalised.index(s.name)]
            w = gain * _kaiming_std(s) * w / torch.sqrt((w ** 2).sum() / w.numel())
        out[s.name] = w
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
    Weights from outside (see :mod:`~hypernet_lib.nn.weights`): ``param_shapes`` = {layer: shape};
    ``forward(x, {"conv1": W, ...})`` uses those, and the source's weights for the other layers.
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
        self.param_shapes = {s.name: s.shape for s in self.specs}
        wrong = [f"{n} {source.param_shapes[n]}" for n, shape in self.param_shapes.items()
                 if source.param_shapes[n] != shape]
        if wrong:
            raise ValueError(f"the source makes weights of other shapes than specs: {', '.join(wrong)}; "
                             f"the net needs {', '.join(f'{n} {s}' for n, s in self.param_shapes.items())}")
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

    def forward(self, x: torch.Tensor,
                weights: Optional[Dict[str, torch.Tensor]] = None):
        """x (B, C, H, W) -> logits (B, num_classes).

        ``weights``: {layer: W}, used instead of the source's for those."""
        self._check_images(x)                 # (B, C, H, W), float
        w = self.source()                     # {name: W}, made once per call
        given = check_weights(weights, self.param_shapes, "CifarNet")
        w = {**w, **given}                    # weights passed in replace them
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
    (n_z defaults to 16).  ``partial``: conv3–conv5 (:data:`PARTIAL_LAYERS`) generated by one chunked
    Ha generator, conv1, conv2 and fc1–fc3 ordinary.  ``chunked_full``: all eight layers from one chunked Ha generator
    (n_z = d = 64 by default, 16×16×3×3 chunks), its fc layers weight-normalised.  ``d`` sets the
    generator's hidden size for both chunked variants: its cost, d·(N_z+1)·16 + 144·(d+1), does not
    shrink with ``width``, so a narrow net may need a smaller d to stay compressed.
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
        gen = ChunkedHyperWeights([s for s in specs if s.name in PARTIAL_LAYERS],
                                  n_z=64 if n_z is None else n_z, d=d)
        source = CompositeWeights([OrdinaryWeights([s for s in specs if s.name not in PARTIAL_LAYERS]), gen],
                                  specs)
    return CifarNet(source, specs, dropout=dropout, variant=variant)

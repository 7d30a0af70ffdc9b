"""Closed-form parameter counts of every layer and net in the book, independent of the modules.

Closed-form parameter counts for every weight-generation scheme in the book, the
published configurations rebuilt from the library's real modules, and the memory
and disk cost of each scheme, measured.

Counts ignore the biases and normalisation layers of the main net unless a function says
otherwise: those stay ordinary parameters in every scheme.

The schemes compared in chapter 3 are in :mod:`hypernet_lib.analysis.schemes`; the published nets,
rebuilt and counted, in :mod:`hypernet_lib.analysis.published`.

All counts are Python ``int``.  Every formula is checked against ``sum(p.numel())`` of real
modules in ``tests/analysis/test_counting.py``.
"""
from __future__ import annotations

import math
from typing import Iterable, Optional

import numpy as np

from ..checks import check_int, check_positive_ints
from ..nn.cifar import PARTIAL_LAYERS, cifar_layer_specs
from ..nn.tiling import layer_grid, tile_grid
from ..nn.wrn import wrn_blocks, wrn_kernel_shapes, wrn_widths

__all__ = ["conv2d_params", "linear_params", "batchnorm_params", "layernorm_params", "linear_head_params",
           "ha_generator_params", "num_tiles", "tiled_params", "lstm_params", "hyperlstm_params",
           "char_lm_params", "mnist_hyper_params", "CIFAR100_CONVS", "CIFAR100_FCS", "CIFAR100_VARIANTS",
           "cifar100_net_params", "wrn_kernel_shapes", "wrn_params", "linear_head_rows"]


def conv2d_params(n_in: int, n_out: int, f: int, bias: bool = True) -> int:
    """``nn.Conv2d(n_in, n_out, f)``: N_out·N_in·f·f weights (+ N_out biases)."""
    check_positive_ints(n_in=n_in, n_out=n_out, f=f)
    return n_out * n_in * f * f + (n_out if bias else 0)


def linear_params(n_in: int, n_out: int, bias: bool = True) -> int:
    """``nn.Linear(n_in, n_out)``: N_out·N_in weights (+ N_out biases)."""
    check_positive_ints(n_in=n_in, n_out=n_out)
    return n_out * n_in + (n_out if bias else 0)


def batchnorm_params(c: int) -> int:
    """``nn.BatchNorm2d(c)``: a scale and a shift per channel (running stats are buffers)."""
    check_positive_ints(c=c)
    return 2 * c


def layernorm_params(n: int, affine: bool = True) -> int:
    """``nn.LayerNorm(n)``: gain and bias per feature."""
    check_positive_ints(n=n)
    return 2 * n if affine else 0


def linear_head_params(n_z: int, n_weights: int, bias: bool = True, with_z: bool = True) -> int:
    """``Linear(N_z, N)`` that outputs all N weights of a layer, plus its z.

    (N_z + 1)·N (+ N_z for z).  The head holds a full copy of the layer's weights *per
    input dimension of z*, plus one more for its bias: at N_z = 16 that is 17 copies.
    A "17× parameter explosion" at N_z = 16 is therefore built into the construction, not a finding.
    """
    check_positive_ints(n_z=n_z, n_weights=n_weights)
    return (n_z + (1 if bias else 0)) * n_weights + (n_z if with_z else 0)


def ha_generator_params(n_z: int, n_in: int, n_out: int, f: int, d: Optional[int] = None,
                        n_layers: int = 0) -> int:
    """N_z·D + d(N_z+1)N_in + f·N_out·f(d+1)  (paper §3.1).

    The generator (W_i, B_i for i = 1..N_in; W_out, B_out) plus D layer embeddings z^j.
    ``n_layers`` = D, the number of layers (or tiles) it serves; 0 counts the generator alone.
    ``d`` defaults to N_z, as in the paper.
    """
    d = n_z if d is None else d
    check_positive_ints(n_z=n_z, n_in=n_in, n_out=n_out, f=f, d=d)
    check_int(n_layers=n_layers, lo=0)
    return (n_z * n_layers                 # z^1..z^D
            + d * (n_z + 1) * n_in         # W_i ∈ R^{d×N_z}, B_i ∈ R^d, for i = 1..N_in
            + f * n_out * f * (d + 1))     # W_out ∈ R^{f×N_out·f×d}, B_out ∈ R^{f×N_out·f}


def num_tiles(out_channels: int, in_channels: int, n_out: int = 16, n_in: int = 16) -> int:
    """Tiles of n_out×n_in needed for an out_channels×in_channels kernel (32→64 with 16×16: 8)."""
    rows, cols = tile_grid(out_channels, in_channels, n_out, n_in)
    return rows * cols


def tiled_params(kernel_shapes: Iterable[tuple[int, int]], n_z: int, f: int = 3,
                 n_in: int = 16, n_out: int = 16, d: Optional[int] = None) -> int:
    """N_z·(Σ tiles) + d(N_z+1)n_in + f·n_out·f(d+1).

    kernel_shapes: (out_channels, in_channels) of every generated kernel.
    """
    kernel_shapes = _kernel_pairs(kernel_shapes)
    tiles = sum(num_tiles(o, i, n_out, n_in) for o, i in kernel_shapes)
    return ha_generator_params(n_z, n_in, n_out, f, d, n_layers=tiles)


def _kernel_pairs(kernel_shapes) -> list:
    """``kernel_shapes`` as a list of (out_channels, in_channels) pairs, or a ValueError naming the bad entry."""
    fix = "pass a list of (out_channels, in_channels) pairs, e.g. [(32, 16), (32, 32)]"
    if isinstance(kernel_shapes, (str, bytes)) or not hasattr(kernel_shapes, "__iter__"):
        raise ValueError(f"kernel_shapes must be a list of pairs, got {type(kernel_shapes).__name__}; {fix}")
    pairs = list(kernel_shapes)
    for k, pair in enumerate(pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"kernel_shapes[{k}] must be an (out_channels, in_channels) pair, got {pair!r}; {fix}")
    return pairs


def lstm_params(n_x: int, n_h: int, n_biases: int = 1, layer_norm: bool = False) -> int:
    """An LSTM cell: 4 gates × (N_h·N_x + N_h·N_h + n_biases·N_h).

    ``n_biases``: 2 for ``nn.LSTM``/``nn.LSTMCell`` (b_ih and b_hh), 1 for one bias per gate
    (Ha's TensorFlow cells), 0 when a layer norm's bias takes its place.
    ``layer_norm`` adds a gain and bias per gate (4·2·N_h) and for the cell state (2·N_h).
    """
    check_positive_ints(n_x=n_x, n_h=n_h)
    if isinstance(n_biases, bool) or not isinstance(n_biases, (int, np.integer)) or n_biases not in (0, 1, 2):
        raise ValueError(f"n_biases must be 0, 1 or 2, got {n_biases!r}")
    n = 4 * (n_h * n_x + n_h * n_h + n_biases * n_h)
    if layer_norm:
        n += 4 * layernorm_params(n_h) + layernorm_params(n_h)
    return n


def hyperlstm_params(n_x: int, n_h: int, n_hh: int = 128, n_z: int = 4, layer_norm: bool = False) -> int:
    """A HyperLSTM cell (paper §3.2, Appendix A.2.2-A.2.3), as ``hypernet_lib.nn.hyperlstm`` builds it.

    - hyper cell: an LSTM of N_ĥ units on x̂ = [h_{t-1}; x_t] (N_h + N_x inputs); with
      ``layer_norm`` it is layer-normalised and the LN bias replaces its gate bias;
    - per gate y ∈ {i, g, f, o}: z_h^y = W ĥ + b, z_x^y = W ĥ + b  (N_ĥ·N_z + N_z each),
      z_b^y = W ĥ (N_ĥ·N_z, no bias);
    - per gate: d_h = W_hz z_h, d_x = W_xz z_x, b = W_bz z_b + b_0  (3·N_z·N_h + N_h);
    - main weights W_h^y, W_x^y: 4·(N_h·N_h + N_h·N_x);
    - ``layer_norm``: LN per main gate and on the cell state (4·2·N_h + 2·N_h).
    """
    check_positive_ints(n_x=n_x, n_h=n_h, n_hh=n_hh, n_z=n_z)
    hyper_cell = lstm_params(n_h + n_x, n_hh, n_biases=0 if layer_norm else 1, layer_norm=layer_norm)
    z_proj = 4 * (2 * (n_hh * n_z + n_z) + n_hh * n_z)        # ĥ -> z_h, z_x (with bias), z_b (none)
    scale_proj = 4 * (3 * n_z * n_h + n_h)                    # W_hz, W_xz, W_bz and b_0
    main = 4 * (n_h * n_h + n_h * n_x)                        # W_h^y, W_x^y
    ln = (4 * layernorm_params(n_h) + layernorm_params(n_h)) if layer_norm else 0
    return hyper_cell + z_proj + scale_proj + main + ln


def char_lm_params(vocab: int, cell_params: int, n_h: int, embedding: Optional[int] = None) -> int:
    """A character LM: (optional embedding table) + recurrent cell + output Linear(N_h, vocab).

    The paper feeds characters one-hot (``embedding=None``): no embedding table.
    """
    check_positive_ints(vocab=vocab, n_h=n_h)
    check_int(cell_params=cell_params, lo=0)
    check_int(embedding=embedding, lo=0, optional=True)
    emb = 0 if embedding is None else vocab * embedding
    return emb + cell_params + linear_params(n_h, vocab)


def mnist_hyper_params(n_z: int = 4, f: int = 7, channels: int = 16, d: Optional[int] = None) -> int:
    """The paper's MNIST hypernetwork (§4.1): Eq. 2 generator for conv2 plus its z.

    Default: 4 + 4·64 + 64 + 4·784 + 784 = 4,244 (first layer 320, second 3,920, z 4).
    """
    return ha_generator_params(n_z, channels, channels, f, d, n_layers=1)


#: Chapter 4's CIFAR-100 net, its layers read from the list the net is built from
#: (:func:`hypernet_lib.nn.cifar_layer_specs`): 5 convs 3×3 (3→64→128→256→512→512), BN after each,
#: global average pooling, FC 512→1024→512→100.  (in, out) per layer.
_CIFAR100_SPECS = tuple(cifar_layer_specs(num_classes=100))
CIFAR100_CONVS = tuple((s.in_features, s.out_features) for s in _CIFAR100_SPECS if s.kind == "conv")
CIFAR100_FCS = tuple((s.in_features, s.out_features) for s in _CIFAR100_SPECS if s.kind == "fc")

CIFAR100_VARIANTS = ("standard", "naive_full", "partial", "chunked_full")


def cifar100_net_params(variant: str = "standard", n_z: Optional[int] = None, d: Optional[int] = None) -> int:
    """Chapter 4's CIFAR-100 net, 5 conv + 3 FC layers (as built by ``hypernet_lib.nn.build_cifar_net``), closed form.

    - ``"standard"``: ordinary weights.
    - ``"naive_full"``: every weight (5 conv + 3 FC) from its own ``Linear(N_z, N)`` with bias and
      its own z (N_z = 16): Σ (N_z+1)·N_j + 8·N_z.
    - ``"chunked_full"``: one Eq. 2 generator of 16×16×3×3 chunks (N_z = d = 64), one z per chunk,
      and one weight-normalisation gain per fc layer (3).
    - ``"partial"``: conv3-conv5 chunked (``PARTIAL_LAYERS``); conv1, conv2, fc1-fc3 ordinary.

    Biases (1,472 conv + 1,636 FC) and batch norm (2·1,472) are ordinary in every variant.
    """
    if variant not in CIFAR100_VARIANTS:
        raise ValueError(f"unknown CIFAR-100 net variant {variant!r}; choose one of {', '.join(CIFAR100_VARIANTS)}")
    check_int(n_z=n_z, d=d, lo=1, optional=True)
    # (name, kind, out, in, weights): N = out·in·f² for a conv, out·in for an FC
    layers = [(s.name, s.kind, s.out_features, s.in_features,
               s.out_features * s.in_features * (s.f * s.f if s.kind == "conv" else 1)) for s in _CIFAR100_SPECS]
    biases = sum(o for _, o in CIFAR100_CONVS) + sum(o for _, o in CIFAR100_FCS)
    bn = sum(batchnorm_params(o) for _, o in CIFAR100_CONVS)
    if variant == "standard":
        return sum(n for *_, n in layers) + biases + bn
    if variant == "naive_full":
        n_z = 16 if n_z is None else n_z
        return sum(linear_head_params(n_z, n) for *_, n in layers) + biases + bn
    n_z = 64 if n_z is None else n_z
    large = PARTIAL_LAYERS if variant == "partial" else [name for name, *_ in layers]
    # chunks of 16×16×3×3 per layer, on the library's grid (convs: 16×16 channel tiles, FCs: 48×48 blocks,
    # cropped at the edge): R·C each
    chunks = sum(math.prod(layer_grid(k, o, i, 16, 16, 3)) for name, k, o, i, _ in layers if name in large)
    ordinary = sum(n for name, *_, n in layers if name not in large)
    gains = sum(1 for name, kind, *_ in layers if name in large and kind == "fc")     # γ_j of the generated fc layers
    return ordinary + ha_generator_params(n_z, 16, 16, 3, d, n_layers=chunks) + gains + biases + bn


def wrn_params(depth: int = 40, width: int = 1, num_classes: int = 10, hyper: bool = False,
               n_z: int = 64, d: Optional[int] = None, chunk: int = 16, f: int = 3) -> int:
    """A pre-activation Wide ResNet (Zagoruyko & Komodakis) and its hyper version (paper §4.2).

    conv1 3→16 (3×3, no bias); per block BN-ReLU-conv-BN-ReLU-conv, a 1×1 shortcut when the
    width changes; final BN, global pooling, FC.  ``hyper``: all 3×3 kernels of conv2-conv4
    are tiled from ``chunk``×``chunk`` kernels of one Eq. 2 generator; the rest stays ordinary.
    The layout (widths, blocks, kernel shapes) is read from :mod:`hypernet_lib.nn.wrn`; the counts are not.
    """
    shapes = wrn_kernel_shapes(depth, width)
    check_int(num_classes=num_classes, f=f, lo=1)
    widths = wrn_widths(width)
    if hyper:
        check_int(chunk=chunk, lo=1)
        if any(c % chunk for c in widths):
            raise ValueError(f"chunk={chunk} does not divide the channel counts of WRN-{depth}-{width} "
                             f"({', '.join(map(str, widths))}); choose a chunk that divides 16, e.g. 16")
    other = conv2d_params(3, widths[0], f, bias=False) + linear_params(widths[3], num_classes)
    other += batchnorm_params(widths[3])                                   # final BN
    for c_in, c_out, _ in wrn_blocks(depth, width):
        other += batchnorm_params(c_in) + batchnorm_params(c_out)
        if c_in != c_out:
            other += conv2d_params(c_in, c_out, 1, bias=False)             # 1×1 shortcut when the width changes
    if hyper:
        return other + tiled_params(shapes, n_z, f, chunk, chunk, d)
    return other + sum(o * i * f * f for o, i in shapes)


def linear_head_rows(n_z: int = 16) -> list[dict]:
    """Per layer of the CIFAR-100 net: weights N and the Linear(N_z, N) head that generates them."""
    rows = []
    for s in _CIFAR100_SPECS:
        name, i, o = s.name, s.in_features, s.out_features
        n = o * i * (s.f * s.f if s.kind == "conv" else 1)
        head = linear_head_params(n_z, n, with_z=False)
        rows.append({"layer": name, "shape": f"{i}→{o}", "weights": n, "head": head, "ratio": head / n})
    return rows

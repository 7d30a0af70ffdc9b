"""Counting parameters: when a hypernetwork compresses and when it explodes.

Closed-form parameter counts for every weight-generation scheme in the book, the
published configurations rebuilt from the library's real modules, and the memory
and disk cost of each scheme, measured.

Schemes (names used throughout: ``SCHEMES``):

``"ordinary"``     every kernel is a learned tensor:            N_out·N_in·f·f per layer.
``"linear_head"``  one ``Linear(N_z, N)`` per layer, with bias (a common first design):
                   (N_z+1)·N + N_z per layer -- always *larger* than the N weights it makes.
``"ha"``           Ha's factorised generator (Eq. 2), one generator per layer:
                   N_z + d(N_z+1)N_in + f·N_out·f(d+1) per layer.
``"ha_shared"``    one Eq. 2 generator shared by D layers of the same shape, one z each:
                   N_z·D + d(N_z+1)N_in + f·N_out·f(d+1)  (paper §3.1).
``"tiled"``        one generator of basic n_out×n_in×f×f kernels, one z per tile (paper's ResNets):
                   N_z·(number of tiles) + d(N_z+1)n_in + f·n_out·f(d+1).

Counts ignore the biases and normalisation layers of the main net unless a function says
otherwise: those stay ordinary parameters in every scheme.

Also here:

- :data:`PUBLISHED`, :func:`build_published`, :func:`count_published`: the paper's MNIST, WRN 40-1 and
  PTB models, built from ``hypernet_lib`` (on the meta device, so counting costs no memory) and
  counted, next to the published numbers;
- :func:`cifar100_net_params`: chapter 4's CIFAR-100 net (5 conv + 3 FC) in each variant, including
  the 85 M-parameter one that gives every layer its own linear head;
- :func:`break_even_width`, :func:`break_even_nz`, :func:`sweep`, :func:`plot_sweeps`,
  :func:`calculator_html`: the chapter's plots and calculator;
- :func:`generation_memory`, :func:`checkpoint_bytes`: memory while generating (measured from the
  tensors, with autograd's saved-tensor hooks) and checkpoint size (measured by saving).

All counts are Python ``int``.  Every formula is checked against ``sum(p.numel())`` of real
modules in ``tests/test_counting.py``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from . import paper
from .cifar import wrn_blocks_per_group
from .static import HyperConvGenerator, MNISTHyperNet, TiledConvEmbeddings, tile_grid
from .utils import check_float, check_int, check_positive_ints, checkpoint_bytes, count_params

__all__ = [
    # (a) ordinary layers
    "conv2d_params", "linear_params", "batchnorm_params", "layernorm_params",
    # (b) linear head, (c) Ha's generator, (d) tiling
    "linear_head_params", "ha_generator_params", "num_tiles", "tiled_params",
    # (e) recurrent
    "lstm_params", "hyperlstm_params", "char_lm_params",
    # whole nets
    "mnist_hyper_params", "cifar100_net_params", "CIFAR100_VARIANTS", "wrn_params", "wrn_kernel_shapes",
    # schemes, plots, calculator
    "SCHEMES", "SCHEME_LABELS", "SCHEME_COLORS", "scheme_params", "compression_ratio", "break_even_width", "break_even_nz",
    "ha_break_even_width_closed_form", "sweep", "plot_sweeps", "calculator_rows", "calculator_html",
    "SchemeStack", "build_scheme",
    # published configurations
    "Published", "PUBLISHED", "build_published", "count_published", "published_table",
    # memory and disk
    "generation_memory", "checkpoint_bytes", "memory_disk_table", "format_bytes",
    # chapter tables
    "format_published", "published_table_html", "linear_head_rows", "memory_disk_html", "solve_nz",
]


# ---------------------------------------------------------------------------------------------
# (a) ordinary weights
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# (b) a linear head per layer: z ∈ R^{N_z} -> N weights
# ---------------------------------------------------------------------------------------------

def linear_head_params(n_z: int, n_weights: int, bias: bool = True, with_z: bool = True) -> int:
    """``Linear(N_z, N)`` that outputs all N weights of a layer, plus its z.

    (N_z + 1)·N (+ N_z for z).  The head holds a full copy of the layer's weights *per
    input dimension of z*, plus one more for its bias: at N_z = 16 that is 17 copies.
    A "17× parameter explosion" at N_z = 16 is therefore built into the construction, not a finding.
    """
    check_positive_ints(n_z=n_z, n_weights=n_weights)
    return (n_z + (1 if bias else 0)) * n_weights + (n_z if with_z else 0)


# ---------------------------------------------------------------------------------------------
# (c) Ha's factorised generator (paper §3.1, Eq. 2)
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# (d) tiled generation: one shared generator, one embedding per tile
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# (e) LSTM and HyperLSTM (paper §3.2, Appendix A.2.2-A.2.3)
# ---------------------------------------------------------------------------------------------

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
    """A HyperLSTM cell (paper §3.2, Appendix A.2.2-A.2.3), as ``hypernet_lib.hyperlstm`` builds it.

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


# ---------------------------------------------------------------------------------------------
# whole nets
# ---------------------------------------------------------------------------------------------

def mnist_hyper_params(n_z: int = 4, f: int = 7, channels: int = 16, d: Optional[int] = None) -> int:
    """The paper's MNIST hypernetwork (§4.1): Eq. 2 generator for conv2 plus its z.

    Default: 4 + 4·64 + 64 + 4·784 + 784 = 4,244 (first layer 320, second 3,920, z 4).
    """
    return ha_generator_params(n_z, channels, channels, f, d, n_layers=1)


#: Chapter 4's CIFAR-100 net: 5 convs 3×3 (3→64→128→256→512→512), BN after each, global
#: average pooling, FC 512→1024→512→100.
CIFAR100_CONVS = ((3, 64), (64, 128), (128, 256), (256, 512), (512, 512))
CIFAR100_FCS = ((512, 1024), (1024, 512), (512, 100))


def _cifar100_chunks(kind: str, out_f: int, in_f: int, chunk: int = 16, f: int = 3) -> int:
    """Chunks that cover one of the CIFAR-100 net's weights in the chunked variants (``hypernet_lib.cifar``):
    a conv needs ceil(out/16)·ceil(in/16) 16×16×3×3 chunks (cropped at the edge); an FC matrix is
    covered by 48×48 blocks, each chunk read as the paper's 2-D (16·3)×(16·3) kernel matrix."""
    if kind == "conv":
        return math.ceil(out_f / chunk) * math.ceil(in_f / chunk)
    return math.ceil(out_f / (chunk * f)) * math.ceil(in_f / (chunk * f))


CIFAR100_VARIANTS = ("standard", "naive_full", "partial", "chunked_full")


def cifar100_net_params(variant: str = "standard", n_z: Optional[int] = None, d: Optional[int] = None) -> int:
    """Chapter 4's CIFAR-100 net, 5 conv + 3 FC layers (as built by ``hypernet_lib.cifar.build_cifar_net``), closed form.

    - ``"standard"``: ordinary weights.
    - ``"naive_full"``: every weight (5 conv + 3 FC) from its own ``Linear(N_z, N)`` with bias and
      its own z (N_z = 16): Σ (N_z+1)·N_j + 8·N_z.
    - ``"chunked_full"``: one Eq. 2 generator of 16×16×3×3 chunks (N_z = d = 64), one z per chunk.
    - ``"partial"``: conv3-conv5, fc1, fc2 chunked; conv1, conv2, fc3 ordinary.

    Biases (1,472 conv + 1,636 FC) and batch norm (2·1,472) are ordinary in every variant.
    """
    if variant not in CIFAR100_VARIANTS:
        raise ValueError(f"unknown CIFAR-100 net variant {variant!r}; choose one of {', '.join(CIFAR100_VARIANTS)}")
    check_int(n_z=n_z, d=d, lo=1, optional=True)
    layers = ([("conv", o, i, o * i * 9) for i, o in CIFAR100_CONVS]
              + [("fc", o, i, o * i) for i, o in CIFAR100_FCS])
    biases = sum(o for _, o in CIFAR100_CONVS) + sum(o for _, o in CIFAR100_FCS)
    bn = sum(batchnorm_params(o) for _, o in CIFAR100_CONVS)
    if variant == "standard":
        return sum(n for *_, n in layers) + biases + bn
    if variant == "naive_full":
        n_z = 16 if n_z is None else n_z
        return sum(linear_head_params(n_z, n) for *_, n in layers) + biases + bn
    n_z = 64 if n_z is None else n_z
    large = (2, 3, 4, 5, 6) if variant == "partial" else range(8)       # conv3-5, fc1, fc2
    chunks = sum(_cifar100_chunks(k, o, i) for j, (k, o, i, _) in enumerate(layers) if j in large)
    ordinary = sum(n for j, (*_, n) in enumerate(layers) if j not in large)
    return ordinary + ha_generator_params(n_z, 16, 16, 3, d, n_layers=chunks) + biases + bn


def wrn_kernel_shapes(depth: int = 40, width: int = 1) -> list[tuple[int, int]]:
    """(out, in) of the 3×3 kernels in groups conv2-conv4 of a WRN-depth-width (in order)."""
    n = wrn_blocks_per_group(depth, width)
    widths = [16, 16 * width, 32 * width, 64 * width]
    shapes = []
    for g in range(3):
        c_in, c_out = widths[g], widths[g + 1]
        for b in range(n):
            shapes.append((c_out, c_in if b == 0 else c_out))
            shapes.append((c_out, c_out))
    return shapes


def wrn_params(depth: int = 40, width: int = 1, num_classes: int = 10, hyper: bool = False,
               n_z: int = 64, d: Optional[int] = None, chunk: int = 16, f: int = 3) -> int:
    """A pre-activation Wide ResNet (Zagoruyko & Komodakis) and its hyper version (paper §4.2).

    conv1 3→16 (3×3, no bias); per block BN-ReLU-conv-BN-ReLU-conv, a 1×1 shortcut when the
    width changes; final BN, global pooling, FC.  ``hyper``: all 3×3 kernels of conv2-conv4
    are tiled from ``chunk``×``chunk`` kernels of one Eq. 2 generator; the rest stays ordinary.
    """
    shapes = wrn_kernel_shapes(depth, width)
    check_int(num_classes=num_classes, f=f, lo=1)
    widths = [16, 16 * width, 32 * width, 64 * width]
    if hyper:
        check_int(chunk=chunk, lo=1)
        if any(c % chunk for c in widths):
            raise ValueError(f"chunk={chunk} does not divide the channel counts of WRN-{depth}-{width} "
                             f"({', '.join(map(str, widths))}); choose a chunk that divides 16, e.g. 16")
    n = wrn_blocks_per_group(depth, width)
    other = conv2d_params(3, 16, f, bias=False) + linear_params(widths[3], num_classes)
    other += batchnorm_params(widths[3])                                   # final BN
    for g in range(3):
        c_in, c_out = widths[g], widths[g + 1]
        for b in range(n):
            first_in = c_in if b == 0 else c_out
            other += batchnorm_params(first_in) + batchnorm_params(c_out)
            if b == 0 and c_in != c_out:
                other += conv2d_params(c_in, c_out, 1, bias=False)         # 1×1 shortcut
    if hyper:
        return other + tiled_params(shapes, n_z, f, chunk, chunk, d)
    return other + sum(o * i * f * f for o, i in shapes)


# ---------------------------------------------------------------------------------------------
# schemes on a stack of D layers of C→C channels: plots, break-even, calculator
# ---------------------------------------------------------------------------------------------

SCHEMES = ("ordinary", "linear_head", "ha", "ha_shared", "tiled")
SCHEME_LABELS = {
    "ordinary": "ordinary weights",
    "linear_head": "Linear(N_z, N) head per layer",
    "ha": "Eq. 2 generator per layer",
    "ha_shared": "one Eq. 2 generator, shared",
    "tiled": "one generator of 16×16 tiles",
}


#: One colour per scheme, the same in every plot.
SCHEME_COLORS = dict(zip(SCHEMES, ("#4E79A7", "#B07AA1", "#F28E2B", "#E15759", "#59A14F")))


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")


def scheme_params(scheme: str, n_in: int, n_out: int, f: int = 3, n_z: int = 4,
                  d: Optional[int] = None, n_layers: int = 1, chunk: int = 16) -> int:
    """Parameters that hold the kernels of ``n_layers`` layers of shape (N_out, N_in, f, f).

    Main-net biases and normalisation are not counted (they are ordinary in every scheme).
    ``chunk`` is the tile size of ``"tiled"`` (N_in and N_out must be multiples of it).
    """
    _check_scheme(scheme)
    check_positive_ints(n_in=n_in, n_out=n_out, f=f, n_z=n_z, n_layers=n_layers, chunk=chunk)
    check_int(d=d, lo=1, optional=True)
    if scheme == "ordinary":
        return n_layers * n_out * n_in * f * f
    if scheme == "linear_head":
        return n_layers * linear_head_params(n_z, n_out * n_in * f * f)
    if scheme == "ha":
        return n_layers * ha_generator_params(n_z, n_in, n_out, f, d, n_layers=1)
    if scheme == "ha_shared":
        return ha_generator_params(n_z, n_in, n_out, f, d, n_layers=n_layers)
    return tiled_params([(n_out, n_in)] * n_layers, n_z, f, chunk, chunk, d)


def compression_ratio(scheme: str, n_in: int, n_out: int, f: int = 3, n_z: int = 4,
                      d: Optional[int] = None, n_layers: int = 1, chunk: int = 16) -> float:
    """Ordinary count / scheme count: > 1 means the scheme is smaller (compresses)."""
    ordinary = scheme_params("ordinary", n_in, n_out, f, n_z, d, n_layers, chunk)
    return ordinary / scheme_params(scheme, n_in, n_out, f, n_z, d, n_layers, chunk)


def break_even_width(scheme: str, f: int = 3, n_z: int = 4, d: Optional[int] = None,
                     n_layers: int = 1, chunk: int = 16, max_width: int = 1 << 14) -> Optional[int]:
    """Smallest width C (layers C→C) at which ``scheme`` needs no more parameters than ordinary
    weights.  None if there is none up to ``max_width`` (e.g. ``"linear_head"``: never).

    For ``"tiled"`` only multiples of ``chunk`` are tried.
    """
    _check_scheme(scheme)
    check_positive_ints(chunk=chunk, max_width=max_width)
    step = chunk if scheme == "tiled" else 1
    for c in range(step, max_width + 1, step):
        if scheme_params(scheme, c, c, f, n_z, d, n_layers, chunk) <= c * c * f * f * n_layers:
            return c
    return None


def ha_break_even_width_closed_form(f: int, n_z: int, n_layers: int = 1, shared: bool = False) -> float:
    """Real root C* of ordinary(C) = Eq. 2 count(C), for d = N_z and C→C layers.

    per layer:  D·[N_z + C·(N_z+1)(N_z+f²)] = D·f²C²      ->  f²C² - (N_z+1)(N_z+f²)C - N_z = 0
    shared:     N_z·D + C·(N_z+1)(N_z+f²) = D·f²C²        ->  D f²C² - (N_z+1)(N_z+f²)C - N_z·D = 0
    (using d(N_z+1)C + f²C(d+1) = C(N_z+1)(N_z+f²) when d = N_z).
    """
    check_positive_ints(f=f, n_z=n_z, n_layers=n_layers)
    a = f * f * (n_layers if shared else 1)
    b = (n_z + 1) * (n_z + f * f)
    c = n_z * (n_layers if shared else 1)
    return (b + math.sqrt(b * b + 4 * a * c)) / (2 * a)


def break_even_nz(scheme: str, n_in: int, n_out: int, f: int = 3, n_layers: int = 1,
                  chunk: int = 16, max_nz: int = 4096) -> Optional[int]:
    """Largest N_z (with d = N_z) at which ``scheme`` is still no larger than ordinary weights;
    None if even N_z = 1 is larger."""
    _check_scheme(scheme)
    check_positive_ints(max_nz=max_nz)
    ordinary = n_layers * n_out * n_in * f * f
    best = None
    for nz in range(1, max_nz + 1):
        if scheme_params(scheme, n_in, n_out, f, nz, None, n_layers, chunk) <= ordinary:
            best = nz
        else:
            break   # every scheme's count grows with N_z
    return best


def sweep(var: str, values: Sequence[int], schemes: Sequence[str] = SCHEMES, **fixed) -> dict:
    """Counts of each scheme while one argument of :func:`scheme_params` varies.

    ``var``: ``"n_z"`` or ``"width"`` (C→C layers).  ``fixed``: the other arguments
    (``f``, ``n_z``, ``n_layers``, ``chunk``, ``width``).  Returns {scheme: np.ndarray of counts}
    (NaN where a scheme does not apply, e.g. a width that 16×16 tiles cannot cover).
    """
    if var not in ("n_z", "width"):
        raise ValueError(f"sweep over 'n_z' or 'width', not {var!r}")
    if isinstance(schemes, str):
        raise ValueError(f"schemes must be a sequence of scheme names, got the str {schemes!r}; "
                         f"write schemes=({schemes!r},)")
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(f"values must be a sequence of {var} values, got {type(values).__name__}; "
                         "e.g. range(1, 65)")
    values = list(values)
    check_positive_ints(**{f"values[{k}]": v for k, v in enumerate(values)})
    unknown = sorted(set(fixed) - {"f", "n_z", "d", "n_layers", "chunk", "width"})
    if unknown:
        raise ValueError(f"sweep got unknown argument(s) {', '.join(unknown)}; "
                         "the fixed ones are f, n_z, d, n_layers, chunk and width")
    if var in fixed:
        raise ValueError(f"{var}={fixed[var]!r} is fixed but {var} is the variable swept; drop {var}={fixed[var]!r}")
    check_positive_ints(**{k: v for k, v in fixed.items() if k != "d"})
    check_int(d=fixed.get("d"), lo=1, optional=True)
    out = {}
    for s in schemes:
        _check_scheme(s)
        row = []
        for v in values:
            kw = dict(fixed)
            if var == "width":
                kw["width"] = v
            else:
                kw["n_z"] = v
            c = kw.pop("width", 64)
            try:
                row.append(scheme_params(s, c, c, **kw))
            except ValueError:
                row.append(float("nan"))
        out[s] = np.asarray(row, dtype=float)
    return out


def plot_sweeps(width: int = 64, f: int = 3, n_z: int = 4, n_layers: int = 12, chunk: int = 16,
                nz_values: Sequence[int] = tuple(range(1, 129)),
                width_values: Sequence[int] = tuple(range(16, 1025, 16)), axes=None):
    """Three panels, stacked for a text column: parameters vs N_z, parameters vs width, and the
    compression ratio vs width."""
    import matplotlib.pyplot as plt
    if axes is None:
        fig, axes = plt.subplots(3, 1, figsize=(6.9, 9.0), constrained_layout=True)
    else:
        fig = axes[0].figure
    by_nz = sweep("n_z", nz_values, width=width, f=f, n_layers=n_layers, chunk=chunk)
    by_w = sweep("width", width_values, n_z=n_z, f=f, n_layers=n_layers, chunk=chunk)
    for s in SCHEMES:
        style = dict(label=SCHEME_LABELS[s], color=SCHEME_COLORS[s])
        axes[0].plot(nz_values, by_nz[s], **style)
        axes[1].plot(width_values, by_w[s], **style)
        if s != "ordinary":
            axes[2].plot(width_values, by_w["ordinary"] / by_w[s], **style)
    axes[0].set(xlabel="$N_z$ (= d)", ylabel="parameters", yscale="log",
                title=f"{n_layers} layers {width}→{width}, {f}×{f}")
    axes[1].set(xlabel="width C (layers C→C)", ylabel="parameters", yscale="log", xscale="log",
                title=f"{n_layers} layers, $N_z$ = d = {n_z}")
    axes[2].axhline(1.0, color="k", lw=0.8, ls="--")
    axes[2].set(xlabel="width C", ylabel="ordinary / scheme", yscale="log", xscale="log",
                title=f"compression ratio, $N_z$ = d = {n_z} (dotted: break-even)")
    for s in ("ha", "ha_shared", "tiled"):
        c = break_even_width(s, f, n_z, None, n_layers, chunk)
        if c is not None and width_values[0] < c <= width_values[-1]:
            axes[2].axvline(c, ls=":", lw=1.2, color=SCHEME_COLORS[s])
    # one legend for all three panels, above them, at a readable size
    handles, labels = axes[0].get_legend_handles_labels()
    if fig.get_layout_engine() is not None:
        fig.legend(handles, labels, loc="outside upper center", ncol=3, fontsize=9, frameon=False)
    else:
        axes[0].legend(fontsize=9)
    return fig


def calculator_rows(n_in: int, n_out: int, f: int = 3, n_z: int = 4, d: Optional[int] = None,
                    n_layers: int = 1, chunk: int = 16) -> list[dict]:
    """One row per scheme: parameters, compression ratio, fp32 bytes, and a note."""
    rows = []
    ordinary = scheme_params("ordinary", n_in, n_out, f, n_z, d, n_layers, chunk)
    for s in SCHEMES:
        try:
            n = scheme_params(s, n_in, n_out, f, n_z, d, n_layers, chunk)
            note = ""
        except ValueError as e:
            n, note = None, f"not applicable: {str(e).split(';')[0]}"
        rows.append({"scheme": SCHEME_LABELS[s], "params": n,
                     "ratio": None if n is None else ordinary / n,
                     "fp32_bytes": None if n is None else 4 * n, "note": note})
    return rows


def calculator_html(n_in: int, n_out: int, f: int = 3, n_z: int = 4, d: Optional[int] = None,
                    n_layers: int = 1, chunk: int = 16, title: Optional[str] = None) -> str:
    """The calculator's answer as an HTML table (used live by widgets and statically)."""
    rows = calculator_rows(n_in, n_out, f, n_z, d, n_layers, chunk)
    d_ = n_z if d is None else d
    head = title or (f"{n_layers} layer(s) of {n_in}→{n_out}, {f}×{f}; N_z = {n_z}, d = {d_}, "
                     f"tiles {chunk}×{chunk}")
    lines = [f"<table><caption>{head}</caption>",
             "<tr><th>scheme</th><th>parameters</th><th>ordinary / scheme</th><th>fp32 size</th></tr>"]
    for r in rows:
        if r["params"] is None:
            lines.append(f"<tr><td>{r['scheme']}</td><td colspan=3>{r['note']}</td></tr>")
        else:
            lines.append(f"<tr><td>{r['scheme']}</td><td style='text-align:right'>{r['params']:,}</td>"
                         f"<td style='text-align:right'>{r['ratio']:.3g}×</td>"
                         f"<td style='text-align:right'>{format_bytes(r['fp32_bytes'])}</td></tr>")
    lines.append("</table>")
    return "\n".join(lines)


class SchemeStack(nn.Module):
    """The kernels of D layers of shape (N_out, N_in, f, f), held by one scheme, as a real module.

    ``forward()`` -> kernels (D, N_out, N_in, f, f).  Used to check :func:`scheme_params`
    against ``sum(p.numel())`` and to measure memory and checkpoint size.
    """

    def __init__(self, scheme: str, n_in: int, n_out: int, f: int = 3, n_z: int = 4,
                 d: Optional[int] = None, n_layers: int = 1, chunk: int = 16):
        super().__init__()
        _check_scheme(scheme)
        check_positive_ints(n_in=n_in, n_out=n_out, f=f, n_z=n_z, n_layers=n_layers, chunk=chunk)
        check_int(d=d, lo=1, optional=True)
        self.scheme, self.shape, self.n_layers = scheme, (n_out, n_in, f, f), n_layers
        if scheme == "ordinary":
            self.weight = nn.Parameter(torch.randn(n_layers, n_out, n_in, f, f) * math.sqrt(2 / (n_in * f * f)))
        elif scheme == "linear_head":
            # an independent Linear(N_z, N) and z per layer
            self.heads = nn.ModuleList(nn.Linear(n_z, n_out * n_in * f * f) for _ in range(n_layers))
            self.z = nn.Parameter(torch.randn(n_layers, n_z))
        elif scheme == "ha":
            self.generators = nn.ModuleList(HyperConvGenerator(f, n_in, n_out, n_z, d) for _ in range(n_layers))
            self.z = nn.Parameter(torch.randn(n_layers, n_z))
        elif scheme == "ha_shared":
            self.generator = HyperConvGenerator(f, n_in, n_out, n_z, d)
            self.z = nn.Parameter(torch.randn(n_layers, n_z))
        else:  # tiled
            self.generator = HyperConvGenerator(f, chunk, chunk, n_z, d)
            self.embeddings = nn.ModuleList(TiledConvEmbeddings(n_out, n_in, chunk, chunk, n_z)
                                            for _ in range(n_layers))

    def forward(self) -> torch.Tensor:
        """-> (D, N_out, N_in, f, f)"""
        if self.scheme == "ordinary":
            return self.weight
        if self.scheme == "linear_head":
            # one head per layer: a loop over *layers* (each has its own weights)
            return torch.stack([h(z).view(self.shape) for h, z in zip(self.heads, self.z)])
        if self.scheme == "ha":
            return torch.stack([g(z) for g, z in zip(self.generators, self.z)])
        if self.scheme == "ha_shared":
            return self.generator(self.z)                  # one batched einsum for all D layers
        # tiled: all tiles of all layers through the shared generator in one call
        z = torch.stack([e.z for e in self.embeddings])    # (D, R, C, N_z)
        tiles = self.generator(z)                          # (D, R, C, n_out, n_in, f, f)
        d, r, c, o, i, kh, kw = tiles.shape
        return tiles.permute(0, 1, 3, 2, 4, 5, 6).reshape(d, r * o, c * i, kh, kw)


def build_scheme(scheme: str, n_in: int, n_out: int, f: int = 3, n_z: int = 4,
                 d: Optional[int] = None, n_layers: int = 1, chunk: int = 16,
                 device: str | torch.device = "cpu") -> SchemeStack:
    """``SchemeStack`` built on ``device`` (``"meta"`` builds it without allocating memory)."""
    with torch.device(device):
        return SchemeStack(scheme, n_in, n_out, f, n_z, d, n_layers, chunk)


# ---------------------------------------------------------------------------------------------
# published configurations, rebuilt from the library's modules
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Published:
    key: str                      # glue key in the chapter
    what: str
    published: float              # the number as printed
    unit: int                     # 1 or 1_000_000 (the paper prints "0.563 M")
    source: str
    formula: Callable[[], int] = field(compare=False, repr=False)

    @property
    def digits(self) -> int:
        """Decimals the published number was printed with (0.563 M -> 3, 4.25 M -> 2)."""
        if self.unit == 1:
            return 0
        s = repr(self.published)
        return len(s.split(".")[1]) if "." in s else 0

    def rounds_to_published(self, count: int) -> bool:
        return round(count / self.unit, self.digits) == round(self.published, self.digits)


PTB_VOCAB, PTB_UNITS, PTB_HYPER_UNITS = 50, 1000, 128

#: The paper's CIFAR-10 Table 2 parameter counts (millions), from :mod:`hypernet_lib.paper`.
WRN40_1_PUBLISHED_M = {"plain": paper.CIFAR10_WRN40_1["params_m_plain"],
                       "hyper": paper.CIFAR10_WRN40_1["params_m_hyper"]}

PUBLISHED: dict[str, Published] = {p.key: p for p in [
    Published("mnist_hyper_params", "MNIST hypernetwork: Eq. 2 generator + z (ordinary conv2 kernel: 12,544)",
              paper.MNIST["hyper_params"], 1, "Ha et al. §4.1", lambda: mnist_hyper_params()),
    Published("wrn40_1_params", "CIFAR-10 WRN 40-1", WRN40_1_PUBLISHED_M["plain"], 1_000_000,
              "Ha et al. Table 2", lambda: wrn_params(40, 1)),
    Published("wrn40_1_hyper_params", "hyper WRN 40-1 (N_z = d = 64, 16×16×3×3 tiles)",
              WRN40_1_PUBLISHED_M["hyper"], 1_000_000, "Ha et al. Table 2", lambda: wrn_params(40, 1, hyper=True)),
    Published("ptb_lstm_params", "PTB character LSTM, 1000 units (nn.LSTM)", paper.PTB["lstm"][2], 1_000_000,
              "Ha et al. Table 3", lambda: char_lm_params(PTB_VOCAB, lstm_params(PTB_VOCAB, PTB_UNITS, 2), PTB_UNITS)),
    Published("ptb_ln_lstm_params", "layer-norm LSTM, 1000 units", paper.PTB["ln_lstm"][2], 1_000_000,
              "Ha et al. Table 3",
              lambda: char_lm_params(PTB_VOCAB, lstm_params(PTB_VOCAB, PTB_UNITS, 0, layer_norm=True), PTB_UNITS)),
    Published("ptb_hyperlstm_params", "HyperLSTM 1000 (hyper cell 128, N_z = 4)", paper.PTB["hyperlstm"][2],
              1_000_000, "Ha et al. Table 3",
              lambda: char_lm_params(PTB_VOCAB, hyperlstm_params(PTB_VOCAB, PTB_UNITS, 128, 4), PTB_UNITS)),
    Published("ptb_ln_hyperlstm_params", "layer-norm HyperLSTM 1000", paper.PTB["ln_hyperlstm"][2], 1_000_000,
              "Ha et al. Table 3",
              lambda: char_lm_params(PTB_VOCAB, hyperlstm_params(PTB_VOCAB, PTB_UNITS, 128, 4, layer_norm=True),
                                     PTB_UNITS)),
    Published("ptb_large_embedding_params", "layer-norm HyperLSTM 1000, Large Embedding (N_z = 16)",
              paper.PTB["ln_hyperlstm_large_embedding"][2], 1_000_000, "Ha et al. Table 3",
              lambda: char_lm_params(PTB_VOCAB, hyperlstm_params(PTB_VOCAB, PTB_UNITS, 128, 16, layer_norm=True),
                                     PTB_UNITS)),
]}


def build_published(key: str, device: str | torch.device = "meta") -> nn.Module | list[nn.Parameter]:
    """Build the published configuration ``key`` from the library's modules.

    Returns the module, except for ``mnist_hyper_params`` (the list of the hypernetwork's
    parameters: generator and z).  ``device="meta"`` allocates nothing, so counting costs no memory.  Imports of the CIFAR and LSTM modules are lazy.
    """
    if key not in PUBLISHED:
        raise ValueError(f"unknown published configuration {key!r}; choose one of {', '.join(PUBLISHED)}")
    with torch.device(device):
        if key == "mnist_hyper_params":
            return MNISTHyperNet().hyper_parameters()
        if key.startswith("wrn40_1"):
            from .cifar import build_wrn
            return build_wrn(depth=40, width=1, hyper=key == "wrn40_1_hyper_params", num_classes=10)
        from .hyperlstm import paper_ptb_config
        cell, n_z = {"ptb_lstm_params": ("lstm", 4), "ptb_ln_lstm_params": ("ln-lstm", 4),
                     "ptb_hyperlstm_params": ("hyperlstm", 4), "ptb_ln_hyperlstm_params": ("ln-hyperlstm", 4),
                     "ptb_large_embedding_params": ("ln-hyperlstm", 16)}[key]
        return paper_ptb_config(cell, hyper_embedding_size=n_z)


def count_published(key: str) -> int:
    """sum(p.numel()) of the configuration built by :func:`build_published` (on the meta device)."""
    return count_params(build_published(key, "meta"))


def published_table(keys: Optional[Iterable[str]] = None, counts: Optional[dict] = None) -> list[dict]:
    """Rows: key, what, module count, closed-form count, published, difference (module - published)."""
    if isinstance(keys, str):
        raise ValueError(f"keys must be a list of configuration names, got the str {keys!r}; write keys=[{keys!r}]")
    keys = list(keys or PUBLISHED)
    for k in keys:
        if k not in PUBLISHED:
            raise ValueError(f"unknown published configuration {k!r} in keys; choose from {', '.join(PUBLISHED)}")
    rows = []
    for k in keys:
        p = PUBLISHED[k]
        n = counts[k] if counts and k in counts else count_published(k)
        rows.append({"key": k, "what": p.what, "count": n, "formula": p.formula(),
                     "published": p.published, "unit": p.unit,
                     "diff": n - p.published * p.unit, "rounds": p.rounds_to_published(n)})
    return rows


# ---------------------------------------------------------------------------------------------
# memory while generating, size on disk
# ---------------------------------------------------------------------------------------------

def format_bytes(n: float) -> str:
    check_float(n=n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def _storage_key(t: torch.Tensor):
    s = t.untyped_storage()
    return (t.device.type, s.data_ptr())


def generation_memory(module: nn.Module, fn: Optional[Callable[[nn.Module], object]] = None) -> dict:
    """Memory that generating the weights occupies, measured from the tensors themselves.

    Runs ``fn(module)`` (default ``module()``) with autograd on, and records:

    - ``param_bytes``: the learned parameters;
    - ``generated_bytes``: the tensors it returns (the generated weights, which must exist in
      memory for the main net to use them, however few parameters produced them);
    - ``saved_bytes``: activations autograd keeps for the backward pass (unique storages,
      parameters excluded), via ``torch.autograd.graph.saved_tensors_hooks``;
    - ``total_bytes``: the sum, a lower bound on the peak while training;
    - on CUDA also ``cuda_peak_bytes`` (``torch.cuda.max_memory_allocated`` during the call).
    """
    if not isinstance(module, nn.Module):
        raise ValueError(f"module must be an nn.Module, got {type(module).__name__}")
    fn = fn or (lambda m: m())
    params = {_storage_key(p): p.untyped_storage().nbytes() for p in module.parameters()}
    saved: dict = {}

    def pack(t):
        k = _storage_key(t)
        if k not in params:
            saved[k] = t.untyped_storage().nbytes()
        return t

    first = next(iter(module.parameters()), None)
    if first is None:
        raise ValueError(f"{type(module).__name__} has no parameters; generation_memory needs a module with some")
    dev = first.device
    cuda = dev.type == "cuda"
    if cuda:
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(module)
    outs = list(out.values()) if isinstance(out, dict) else out if isinstance(out, (list, tuple)) else [out]
    generated = {_storage_key(t): t.untyped_storage().nbytes() for t in outs if isinstance(t, torch.Tensor)}
    generated = {k: v for k, v in generated.items() if k not in params}   # "ordinary" returns its parameter
    for k in generated:
        saved.pop(k, None)
    res = {"param_bytes": sum(params.values()), "generated_bytes": sum(generated.values()),
           "saved_bytes": sum(saved.values())}
    res["total_bytes"] = res["param_bytes"] + res["generated_bytes"] + res["saved_bytes"]
    if cuda:
        torch.cuda.synchronize(dev)
        res["cuda_peak_bytes"] = torch.cuda.max_memory_allocated(dev) - base + res["param_bytes"]
    del out, outs
    return res


def memory_disk_table(modules: dict[str, nn.Module],
                      fns: Optional[dict[str, Callable[[nn.Module], object]]] = None) -> list[dict]:
    """For each named module: parameters, bytes of parameters, memory while generating
    (see :func:`generation_memory`) and checkpoint size on disk (measured)."""
    if not isinstance(modules, dict):
        raise ValueError(f"modules must be a dict {{name: module}}, got {type(modules).__name__}")
    rows = []
    for name, m in modules.items():
        mem = generation_memory(m, (fns or {}).get(name))
        rows.append({"name": name, "params": count_params(m), **mem, "disk_bytes": checkpoint_bytes(m)})
    return rows


# ---------------------------------------------------------------------------------------------
# tables for the chapter
# ---------------------------------------------------------------------------------------------

def _html_table(header: Sequence[str], rows: Iterable[Sequence], caption: Optional[str] = None,
                align: Optional[Sequence[str]] = None) -> str:
    import html as _html
    align = align or ["left"] + ["right"] * (len(header) - 1)
    out = ["<table>"]
    if caption:
        out.append(f"<caption>{_html.escape(caption)}</caption>")
    out.append("<tr>" + "".join(f"<th>{_html.escape(h)}</th>" for h in header) + "</tr>")
    for r in rows:
        out.append("<tr>" + "".join(f"<td style='text-align:{a}'>{_html.escape(str(v))}</td>"
                                    for v, a in zip(r, align)) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def format_published(p: Published, n: Optional[float] = None) -> str:
    """A count written the way the paper prints it (``0.564 M``) or in full (``85,160,676``)."""
    if not isinstance(p, Published):
        raise ValueError(f"p must be a Published entry (e.g. PUBLISHED['wrn40_1_params']), got {type(p).__name__}")
    n = p.published * p.unit if n is None else n
    if p.unit == 1:
        return f"{int(round(n)):,}"
    return f"{n / p.unit:.{p.digits}f} M"


def published_table_html(rows: list[dict]) -> str:
    """The rows of :func:`published_table` as HTML."""
    _check_rows(rows, ("key", "what", "count", "diff", "rounds"), "published_table")
    for k, r in enumerate(rows):
        if r["key"] not in PUBLISHED:
            raise ValueError(f"rows[{k}] has key {r['key']!r}, not a published configuration; "
                             "pass the rows of published_table()")
    body = []
    for r in rows:
        p = PUBLISHED[r["key"]]
        body.append([r["what"], f"{r['count']:,}", format_published(p, r["count"]), format_published(p),
                     f"{r['diff']:+,.0f}", "yes" if r["rounds"] else "no"])
    return _html_table(["configuration", "module", "rounded like the paper", "published",
                        "module − published", "same digits"], body)


def linear_head_rows(n_z: int = 16) -> list[dict]:
    """Per layer of the CIFAR-100 net: weights N and the Linear(N_z, N) head that generates them."""
    rows = []
    for name, (i, o), n in ([(f"conv{k + 1}", io, io[0] * io[1] * 9) for k, io in enumerate(CIFAR100_CONVS)]
                            + [(f"fc{k + 1}", io, io[0] * io[1]) for k, io in enumerate(CIFAR100_FCS)]):
        head = linear_head_params(n_z, n, with_z=False)
        rows.append({"layer": name, "shape": f"{i}→{o}", "weights": n, "head": head, "ratio": head / n})
    return rows


def _check_rows(rows, keys: Sequence[str], made_by: str) -> None:
    """A ValueError naming the first row that is not a dict with ``keys`` (the rows ``made_by`` returns)."""
    for k, r in enumerate(rows):
        missing = [key for key in keys if key not in r] if isinstance(r, dict) else list(keys)
        if missing:
            raise ValueError(f"rows[{k}] lacks {', '.join(missing)}; pass the rows of {made_by}()")


def memory_disk_html(rows: list[dict]) -> str:
    """The rows of :func:`memory_disk_table` as HTML.

    Columns (short, so that the table fits a page): parameters, their fp32 bytes, the generated
    weights, what autograd keeps for the backward pass, the total of the three while generating,
    (on CUDA: the allocator's peak), the checkpoint's size on disk, and disk / fp32 parameter bytes.
    """
    _check_rows(rows, ("name", "params", "param_bytes", "generated_bytes", "saved_bytes", "total_bytes",
                       "disk_bytes"), "memory_disk_table")
    cuda = any("cuda_peak_bytes" in r for r in rows)
    body = [[r["name"], f"{r['params']:,}", format_bytes(r["param_bytes"]), format_bytes(r["generated_bytes"]),
             format_bytes(r["saved_bytes"]), format_bytes(r["total_bytes"])]
            + ([format_bytes(r["cuda_peak_bytes"]) if "cuda_peak_bytes" in r else "–"] if cuda else [])
            + [format_bytes(r["disk_bytes"]), f"{r['disk_bytes'] / r['param_bytes']:.3f}"] for r in rows]
    return _html_table(["model", "params", "params (fp32)", "generated", "for backward", "total"]
                       + (["CUDA peak"] if cuda else [])
                       + ["on disk", "disk / fp32"], body)


def solve_nz(target: int, count: Callable[[int], int], max_nz: int = 1024) -> int:
    """The N_z whose count is closest to ``target`` (counts grow with N_z)."""
    check_float(target=target)
    check_positive_ints(max_nz=max_nz)
    return min(range(1, max_nz + 1), key=lambda nz: abs(count(nz) - target))

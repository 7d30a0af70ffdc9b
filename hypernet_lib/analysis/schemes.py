"""Weight-generation schemes compared: counts, compression, break-even widths and sweeps.

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
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..checks import check_float, check_int, check_positive_ints
from ..nn.generator import HyperConvGenerator
from ..nn.tiling import TiledConvEmbeddings
from .counting import ha_generator_params, linear_head_params, tiled_params

__all__ = ["SCHEMES", "SCHEME_LABELS", "SCHEME_COLORS", "scheme_params", "compression_ratio",
           "break_even_width", "ha_break_even_width_closed_form", "break_even_nz", "sweep", "calculator_rows",
           "SchemeStack", "build_scheme", "solve_nz"]

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


def solve_nz(target: int, count: Callable[[int], int], max_nz: int = 1024) -> int:
    """The N_z whose count is closest to ``target`` (counts grow with N_z)."""
    check_float(target=target)
    check_positive_ints(max_nz=max_nz)
    return min(range(1, max_nz + 1), key=lambda nz: abs(count(nz) - target))

"""Chapter 2's hypernetwork in the reader's browser: sliders for z, no kernel, no network.

    from hypernet_lib.book.zexplorer import zexplorer
    zexplorer(model, x_test, y_test)        # an IPython.display.HTML

The output is one ``text/html`` block: a small JSON blob of the trained weights (float32,
base64) and 100 test digits (uint8), the JavaScript of ``zexplorer.js`` and the CSS of
``zexplorer.css``, all inline.  It works the same in the HTML book, in Jupyter and in Colab.

In the page, four sliders set z (one per coordinate, starting at the trained z*).  Every move
regenerates conv2's 16×16×7×7 kernel with Eq. 2 in JavaScript and redraws it on a fixed colour
scale, reclassifies the embedded test digits and the digit the reader draws (MNIST's
preprocessing: 20×20 box, centred by mass in 28×28).  Buttons walk z along the chapter's
directions from z* (by default towards −z*, and the chapter's three random directions of
length 2|z*|), animated over ``animate_ms``.

Shapes (PyTorch's order, as in :mod:`hypernet_lib.nn.mnist`):
    conv1_weight (C, 1, f, f), conv1_bias (C,), w_in (N_in, d, N_z), b_in (N_in, d),
    w_out (N_out·f·f, d), b_out (N_out·f·f,), conv2_bias (C,), fc_weight (10, C·7·7), fc_bias (10,),
    z_star (N_z,), digits (n, 28, 28) uint8, labels (n,).
"""
from __future__ import annotations

import base64
import json
import uuid
from importlib import resources
from typing import Mapping, Optional, Sequence, Union

import numpy as np
import torch

__all__ = ["zexplorer", "zexplorer_data", "default_directions", "decode_array", "zero_rle", "un_zero_rle"]

#: What the page needs from the model, in the order it is exported: (blob key, how to read it).
_ARRAYS = (
    ("conv1_weight", lambda m: m.conv1.weight),
    ("conv1_bias", lambda m: m.conv1.bias),
    ("w_in", lambda m: m.generator.w_in),
    ("b_in", lambda m: m.generator.b_in),
    ("w_out", lambda m: m.generator.w_out),
    ("b_out", lambda m: m.generator.b_out),
    ("conv2_bias", lambda m: m.conv2.bias),
    ("fc_weight", lambda m: m.fc.weight),
    ("fc_bias", lambda m: m.fc.bias),
)

Directions = Union[None, Mapping[str, object], Sequence[tuple]]


def default_directions(z_star: torch.Tensor, n_random: int = 3, seed: int = 0) -> list[tuple[str, torch.Tensor]]:
    """The chapter's paths from z*: to −z*, and ``n_random`` random directions of length 2|z*|.

    The random ends are z* + 2u, u ~ N(0, I) rescaled to |u| = |z*|, drawn from
    ``torch.Generator().manual_seed(seed)`` exactly as chapter 2's accuracy plot draws them.
    Returns [(label, end)], each end of shape (N_z,).
    """
    z_star = z_star.detach().cpu().float()
    out = [("z* \u2192 \u2212z*", -z_star)]
    gen = torch.Generator().manual_seed(seed)
    for k in range(n_random):
        u = torch.randn(z_star.shape, generator=gen)
        u = u / u.norm() * z_star.norm()
        out.append((f"random direction {k + 1}", z_star + 2 * u))
    return out


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def zero_rle(pixels: np.ndarray) -> bytes:
    """uint8 pixels -> bytes where ``0, n`` stands for n zeros (1 <= n <= 255) and any other byte is itself.

    MNIST digits are about 80% background, so their 78 kB shrink about fourfold; the page decodes
    this in a few lines (``unzeroRle`` in zexplorer.js)."""
    flat = np.ascontiguousarray(pixels, dtype=np.uint8).ravel()
    out = bytearray()
    i, n = 0, len(flat)
    nonzero = np.flatnonzero(flat)
    nz = iter(nonzero.tolist() + [n])
    nxt = next(nz)
    while i < n:
        if i < nxt:                                   # a run of zeros up to the next nonzero pixel
            run = min(nxt - i, 255)
            out += bytes((0, run))
            i += run
        else:
            out.append(int(flat[i]))
            i += 1
            nxt = next(nz)
    return bytes(out)


def un_zero_rle(data: bytes, size: int) -> np.ndarray:
    """The inverse of :func:`zero_rle`: ``size`` uint8 pixels."""
    out = np.zeros(size, dtype=np.uint8)
    i = j = 0
    while i < len(data):
        if data[i] == 0:
            j += data[i + 1]
            i += 2
        else:
            out[j] = data[i]
            j += 1
            i += 1
    if j != size:
        raise ValueError(f"the encoded digits hold {j} pixels, expected {size}")
    return out


def decode_array(blob: dict, key: str) -> np.ndarray:
    """One array of the blob back as numpy: float32 weights (flat) or, for ``"digits"``, uint8 (n, 28, 28)."""
    if key == "digits":
        n = len(blob["labels"])
        return un_zero_rle(base64.b64decode(blob["digits"]), n * 784).reshape(n, 28, 28)
    return np.frombuffer(base64.b64decode(blob["arrays"][key]), dtype="<f4")


def _check_model(model):
    from ..nn.mnist import MNISTHyperNet

    if not isinstance(model, MNISTHyperNet):
        kind = type(model).__name__
        hint = (" An MNISTConvNet has an ordinary conv2 and no z to move: pass the hypernetwork "
                "(MNISTHyperNet, `hyper_model` in chapter 2).") if kind == "MNISTConvNet" else ""
        raise TypeError(f"zexplorer needs a trained hypernet_lib.nn.MNISTHyperNet, got {kind}.{hint}")
    gen = model.generator
    if gen.n_in != gen.n_out or model.conv1.out_channels != gen.n_in or model.conv1.kernel_size != (gen.f, gen.f):
        raise ValueError(
            f"zexplorer expects conv1 and the generated conv2 to have the same channels and kernel size "
            f"(got conv1 {model.conv1.out_channels} channels {model.conv1.kernel_size}, conv2 generated "
            f"{gen.n_in}\u2192{gen.n_out}, f={gen.f}); build the model with MNISTHyperNet(f=..., channels=...)")
    if gen.f % 2 != 1:
        raise ValueError(f"zexplorer needs an odd kernel size for 'same' padding, got f={gen.f}")


def _check_data(x_test, y_test, n_digits: int):
    if not isinstance(x_test, torch.Tensor) or not isinstance(y_test, torch.Tensor):
        raise TypeError(f"x_test and y_test must be torch tensors (as in data.x_test, data.y_test), got "
                        f"{type(x_test).__name__} and {type(y_test).__name__}; wrap arrays with torch.as_tensor(...)")
    shape = tuple(x_test.shape)
    if x_test.dim() != 4 or shape[1:] != (1, 28, 28):
        if shape[1:] == (28, 28):
            fix = "add the channel axis: x_test.unsqueeze(1)"
        elif shape[1:] == (784,):
            fix = "reshape it: x_test.reshape(-1, 1, 28, 28)"
        else:
            fix = "pass MNIST images as the model consumes them (e.g. data.x_test from load_mnist)"
        raise ValueError(f"x_test must have shape (N, 1, 28, 28), got {shape}; {fix}")
    if not x_test.is_floating_point():
        raise TypeError(f"x_test must be float images normalised as the model consumes them, got dtype {x_test.dtype}; "
                        "use data.x_test from load_mnist, or (x.float() / 255 - mean) / std")
    if y_test.dim() != 1 or len(y_test) != len(x_test):
        raise ValueError(f"y_test must be one label per image, shape ({len(x_test)},), got {tuple(y_test.shape)}")
    if y_test.is_floating_point() or y_test.is_complex():
        raise TypeError(f"y_test must hold integer class labels, got dtype {y_test.dtype}; pass y_test.long()")
    if not isinstance(n_digits, int) or n_digits < 1:
        raise ValueError(f"n_digits must be a positive int, got {n_digits!r}")
    if n_digits > len(x_test):
        raise ValueError(f"n_digits={n_digits} but x_test has only {len(x_test)} images; "
                         f"pass n_digits={len(x_test)} or more test images")
    y = y_test[:n_digits]
    if int(y.min()) < 0 or int(y.max()) > 9:
        raise ValueError(f"y_test must hold MNIST labels 0..9, got values from {int(y.min())} to {int(y.max())}")
    if not torch.isfinite(x_test[:n_digits]).all():
        raise ValueError("x_test holds NaN or infinite values in the images to embed")


def _normalisation(x: torch.Tensor, mean: Optional[float], std: Optional[float]) -> tuple[float, float]:
    """(mean, std) of the input normalisation x = (pixel - mean) / std, pixels in [0, 1].

    Given, or read off x: its smallest value is a black pixel (0), its largest a white one (1);
    true of any MNIST test set, whose every image has both."""
    if (mean is None) != (std is None):
        raise ValueError("pass both mean and std (the normalisation of the model's inputs), or neither")
    if mean is not None:
        if not std > 0:
            raise ValueError(f"std must be positive, got {std}")
        return float(mean), float(std)
    lo, hi = float(x.min()), float(x.max())
    if not hi > lo:
        raise ValueError("x_test is constant, so its normalisation cannot be read off it; pass mean= and std=")
    std = 1.0 / (hi - lo)
    return -lo * std, std


def _directions(directions: Directions, z_star: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    if directions is None:
        return default_directions(z_star)
    items = list(directions.items()) if isinstance(directions, Mapping) else list(directions)
    out = []
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise TypeError(f"directions must map labels to end points of z, e.g. {{'z* \u2192 \u2212z*': -z_star}} "
                            f"or [(label, end)], got an item {item!r}")
        label, end = item
        end = torch.as_tensor(end, dtype=torch.float32).detach().cpu().flatten()
        if end.shape != z_star.shape:
            raise ValueError(f"direction {label!r} ends at a z of {end.numel()} values; z has N_z={z_star.numel()}")
        out.append((label, end))
    return out


@torch.no_grad()
def zexplorer_data(model, x_test: torch.Tensor, y_test: torch.Tensor, n_digits: int = 100,
                   directions: Directions = None, *, vmax: Optional[float] = None,
                   mean: Optional[float] = None, std: Optional[float] = None,
                   animate_ms: int = 1500) -> dict:
    """The JSON-able blob the page reads (see the module docstring for the arrays' shapes).

    model: a trained MNISTHyperNet (any device); x_test: (N, 1, 28, 28) float, normalised as the
    model consumes it; y_test: (N,) labels.  The first ``n_digits`` test images are embedded as
    8-bit pixels (exact for MNIST, whose pixels are 8-bit).  ``vmax``: the colour scale of the
    filter grid, by default max |K(z*)|.  ``mean``/``std``: the input normalisation, by default
    read off x_test.
    """
    _check_model(model)
    _check_data(x_test, y_test, n_digits)
    gen = model.generator
    z_star = model.z.detach().cpu().float()
    mean, std = _normalisation(x_test.detach(), mean, std)
    x = x_test[:n_digits].detach().cpu().float().numpy()
    pixels = np.clip(np.rint((x * std + mean) * 255), 0, 255).astype(np.uint8).reshape(n_digits, 28, 28)
    dirs = _directions(directions, z_star)
    k_star = gen(model.z.detach()).detach().cpu()                     # K(z*), on the model's device
    vmax = float(k_star.abs().max()) if vmax is None else float(vmax)
    if not vmax > 0:
        raise ValueError(f"vmax must be positive, got {vmax}")
    ends = [float(e.abs().max()) for _, e in dirs]
    z_range = max([3 * float(z_star.abs().max()), 1.05 * max(ends, default=0.0), 1e-3])
    arrays = {key: _b64(get(model).detach().cpu().float().numpy().astype("<f4")) for key, get in _ARRAYS}
    return {
        "version": 1,
        "title": f"conv2's {gen.n_out}\u00d7{gen.n_in} filters of {gen.f}\u00d7{gen.f}, generated from z by Eq. 2 "
                 f"in your browser",
        "channels": gen.n_in, "f": gen.f, "n_z": gen.n_z, "d": gen.d, "n_classes": model.fc.out_features,
        "mean": mean, "std": std, "vmax": vmax, "z_range": z_range, "animate_ms": int(animate_ms),
        "z_star": [float(v) for v in z_star],
        "directions": [{"label": label, "end": [float(v) for v in end]} for label, end in dirs],
        "arrays": arrays,
        "digits": base64.b64encode(zero_rle(pixels)).decode("ascii"),   # (n, 28, 28) uint8, zero-run coded
        "labels": [int(v) for v in y_test[:n_digits].cpu()],
    }


def _asset(name: str) -> str:
    return resources.files("hypernet_lib.book").joinpath(name).read_text(encoding="utf-8")


def _json_for_script(obj) -> str:
    """JSON that is safe inside <script>: no '<', '>' or '&' can close the tag or start a comment."""
    return (json.dumps(obj, ensure_ascii=True, separators=(",", ":"))
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def zexplorer(model, x_test: torch.Tensor, y_test: torch.Tensor, n_digits: int = 100,
              directions: Directions = None, **options):
    """The kernel-free z explorer of chapter 2, as an ``IPython.display.HTML``.

    model: a trained ``MNISTHyperNet``; x_test: (N, 1, 28, 28) float tensor as the model consumes
    it; y_test: (N,) labels; n_digits: test digits embedded (the first ones); directions: the
    buttons' paths from z*, ``{label: end}`` or ``[(label, end)]`` with ends of shape (N_z,)
    (default: :func:`default_directions`).  ``options`` go to :func:`zexplorer_data` (vmax, mean,
    std, animate_ms).  About 190 kB with the defaults; the markup is in ``.data``.
    """
    from IPython.display import HTML

    blob = zexplorer_data(model, x_test, y_test, n_digits, directions, **options)
    uid = "hnzx-" + uuid.uuid4().hex[:10]
    js = _asset("zexplorer.js").replace("</script", "<\\/script")
    css = _asset("zexplorer.css")
    markup = (
        f'<div class="hn-zexplorer tex2jax_ignore mathjax_ignore" id="{uid}">'
        f"<style>{css}</style>"
        f'<noscript><p class="hn-zx-error">This explorer of z needs JavaScript.</p></noscript>'
        f'<script type="application/json" class="hn-zx-data">{_json_for_script(blob)}</script>'
        "<script>(function () {\n"
        f"{js}\n"
        "var s = document.currentScript, root = (s && s.parentNode) || document.getElementById(" + json.dumps(uid) + ");\n"
        "try { hnZExplorerMount(root, JSON.parse(root.querySelector('script.hn-zx-data').textContent)); }\n"
        "catch (e) { var p = document.createElement('p'); p.className = 'hn-zx-error';\n"
        "  p.textContent = 'The z explorer failed: ' + e.message; root.appendChild(p); console.error(e); }\n"
        "})();</script></div>")
    return HTML(markup)

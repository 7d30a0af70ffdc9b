"""The plotting helpers: properties that a wrong version would break."""
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from hypernet_lib.book.plots import filter_grid, filter_mosaic, plot_histories, static_slider  # noqa: E402


@pytest.mark.parametrize("shape,pad", [((3, 5, 2, 4), 1), ((16, 16, 7, 7), 2), ((4, 1, 3, 3), 0), ((1, 1, 3, 3), 1)])
def test_mosaic_puts_filter_o_i_at_row_o_column_i(shape, pad):
    n_out, n_in, fh, fw = shape
    k = torch.randn(*shape)
    m = filter_mosaic(k, pad=pad)
    assert m.shape == (n_out * (fh + pad) - pad, n_in * (fw + pad) - pad)
    for o in range(n_out):
        for i in range(n_in):
            tile = m[o * (fh + pad): o * (fh + pad) + fh, i * (fw + pad): i * (fw + pad) + fw]
            np.testing.assert_array_equal(tile, k[o, i].numpy())
    assert np.isnan(m).sum() == m.size - k.numel()            # the gaps and nothing else are blank


def test_mosaic_per_filter_scale_and_bad_shape():
    k = torch.randn(2, 3, 5, 5) * torch.logspace(-3, 1, 6).reshape(2, 3, 1, 1)
    m = filter_mosaic(k, per_filter=True)
    for o in range(2):
        for i in range(3):
            tile = m[o * 6: o * 6 + 5, i * 6: i * 6 + 5]
            assert np.abs(tile).max() == pytest.approx(1.0)
            np.testing.assert_allclose(tile, (k[o, i] / k[o, i].abs().max()).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="expected a kernel of shape"):
        filter_mosaic(torch.zeros(3, 7, 7))


def test_filter_grid_colour_scale():
    k = torch.randn(4, 4, 3, 3)
    fig, (a, b) = plt.subplots(1, 2)
    assert filter_grid(k, ax=a, vmax=0.5).get_clim() == (-0.5, 0.5)
    assert filter_grid(k, ax=b, per_filter=True).get_clim() == (-1.0, 1.0)
    assert a.get_ylabel() == "output channel o" and a.get_xlabel() == "input channel i"
    plt.close(fig)


def _runs():
    from hypernet_lib.training import History
    return {name: History(train_loss=[1.0, 0.5], val_loss=[1.1, 0.6], val_acc=[0.8, 0.9])
            for name in ("conventional", "hypernetwork", "hypernetwork_ha_init", "something else")}


def test_plot_histories_one_colour_per_run_book_colours_first():
    from hypernet_lib.book.style import MODEL_COLORS
    fig, ax = plt.subplots()
    plot_histories(_runs(), metrics=("train_loss", "val_loss"), ax=ax)
    colours = {}
    for line in ax.get_lines():
        colours.setdefault(line.get_label().split(",")[0], set()).add(line.get_color())
    assert all(len(c) == 1 for c in colours.values())               # both curves of a run: one colour
    assert len({c.pop() for c in colours.values()}) == 4           # four runs: four colours
    assert ax.get_lines()[0].get_color() == MODEL_COLORS["conventional"]
    assert ax.get_lines()[4].get_color() == MODEL_COLORS["hypernetwork_ha_init"]
    plt.close(fig)
    fig, ax = plt.subplots()
    plot_histories({"Ha's init": _runs()["conventional"]}, ax=ax, colors={"Ha's init": "#123456"})
    assert ax.get_lines()[0].get_color() == "#123456"
    plt.close(fig)


def test_static_slider_one_frame_per_label_and_labels_carry_the_text():
    frames = [np.full((8, 8, 3), v, dtype=np.uint8) for v in (0, 120, 250)]
    labels = ["t = 0.00, test accuracy 98.2%", "t = 0.50, test accuracy 61.0%", 'say "<hi>"']
    out = static_slider(frames, labels, title="z path", start=1).data
    assert len(re.findall(r"<img ", out)) == 3
    assert len(re.findall(r'style="display:block', out)) == 1 and re.search(r'data-i="1" alt="z path, frame 2: [^"]*" style="display:block', out)
    assert "test accuracy 98.2%" in out and "test accuracy 61.0%" in out
    assert "<hi>" not in out and "&lt;hi&gt;" in out                 # labels are escaped, not injected
    shown = re.search(r'<div class="hn-label"[^>]*>(.*?)</div>', out).group(1)
    assert shown == "t = 0.50, test accuracy 61.0%"
    with pytest.raises(ValueError, match="one label per frame"):
        static_slider(frames, labels[:2])


def test_eq2_diagram_fits_the_column():
    from hypernet_lib.book.diagrams.eq2 import draw_eq2
    fig = draw_eq2()
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "(16, 16, 7, 7)" in texts and "(112, 112)" in texts and "(7, 112, 4)" in texts
    assert fig.get_size_inches()[0] * fig.dpi <= 690
    fig2, ax = plt.subplots()
    assert draw_eq2(ax=ax, f=3, n_in=2, n_out=5, n_z=8) is fig2
    plt.close(fig)
    plt.close(fig2)

"""Nothing silent, nothing lost: the public API refuses a bad argument with a message that names it.

Each row of the tables below is a hostile call that used to end in a raw error that did not name the
problem (an IndexError from an embedding, a RuntimeError from a matmul, reshape or conv, a
ZeroDivisionError, a KeyError, an AttributeError) or, worse, in silently wrong output.  Each must now
raise the given exception with a message that names the argument (the regex).  Rows built on an
object (a model, a layer) also check that the refused call left it as it was: parameters, buffers and
train/eval mode.  Tiny models, well under a second each.

The table holds 74 hostile calls.
"""
import matplotlib
import numpy as np
import pytest
import torch
import torch.nn as nn

matplotlib.use("Agg")

from hypernet_lib import counting as C
from hypernet_lib import plotting as P
from hypernet_lib import static as st
from hypernet_lib import utils


def snapshot(obj):
    """What a refused call must not change: every tensor of the state dict, and the train/eval mode."""
    if isinstance(obj, nn.Module):
        return ({k: v.detach().clone() for k, v in obj.state_dict().items()},
                [m.training for m in obj.modules()])
    return None


def same(a, b) -> bool:
    if a is None:
        return b is None
    (sa, ta), (sb, tb) = a, b
    return ta == tb and sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


class Case:
    """``call()`` (or ``call(obj)`` with ``obj``: a factory of the object the call is made on) must
    raise ``exc`` whose message matches ``message``; the object must be unchanged."""

    def __init__(self, name, call, message, exc=ValueError, obj=None):
        self.name, self.call, self.message, self.exc, self.obj = name, call, message, exc, obj


# ------------------------------------------------------------------------------------- static
def _gen(n_z=4):
    torch.manual_seed(0)
    return st.HyperConvGenerator(3, 4, 4, n_z)


def _conv():
    torch.manual_seed(0)
    return st.StaticHyperConv2d(_gen())


def _mnist_hyper():
    torch.manual_seed(0)
    return st.MNISTHyperNet()


_X28, _Y5 = torch.zeros(5, 1, 28, 28), torch.zeros(5, dtype=torch.long)

STATIC = [
    Case("generator(z 0-dim)", lambda g: g(torch.tensor(1.0)), r"z must have shape \(\.\.\., 4\), got \(\)", obj=_gen),
    Case("generator(z a list)", lambda g: g([0.0] * 4), r"z must be a tensor of shape \(\.\.\., 4\), got list", obj=_gen),
    Case("generator(z int64)", lambda g: g(torch.zeros(4, dtype=torch.long)), r"z must be a floating-point tensor",
         obj=_gen),
    Case("kernel_from_tiles(list)", lambda: st.kernel_from_tiles([1]), r"tiles must be a tensor of shape \(R, C,"),
    Case("TiledConvEmbeddings(n_z=0)", lambda: st.TiledConvEmbeddings(32, 32, 16, 16, 0),
         "n_z must be a positive integer, got 0"),
    Case("TiledConvEmbeddings(n_z=2.5)", lambda: st.TiledConvEmbeddings(32, 32, 16, 16, 2.5),
         "n_z must be a positive integer, got 2.5"),
    Case("TiledConvEmbeddings(8x8 generator for 16x16 tiles)",
         lambda e: e(st.HyperConvGenerator(3, 8, 8, 4)), r"generator makes 8→8 basic kernels.*n_in=16, n_out=16",
         obj=lambda: st.TiledConvEmbeddings(32, 32, 16, 16, 4)),
    Case("StaticHyperConv2d(a Linear)", lambda: st.StaticHyperConv2d(nn.Linear(2, 2)),
         "generator must be a HyperConvGenerator, got Linear"),
    Case("StaticHyperConv2d(padding='valid2')", lambda: st.StaticHyperConv2d(_gen(), padding="valid2"),
         r"padding must be 'same', 'valid' or a number of pixels, got 'valid2'"),
    Case("StaticHyperConv2d(3 channels for 4)", lambda c: c(torch.zeros(1, 3, 8, 8)),
         r"x must have shape \(B, 4, H, W\), got \(1, 3, 8, 8\); this layer's kernel has 4 input channels", obj=_conv),
    Case("StaticHyperConv2d(x 2-D)", lambda c: c(torch.zeros(4, 8)), r"x must have shape \(B, 4, H, W\), got \(4, 8\)",
         obj=_conv),
    Case("StaticHyperConv2d(a batch of z)", lambda c: c(torch.zeros(1, 4, 8, 8), torch.zeros(2, 4)),
         r"z must have shape \(4,\), got \(2, 4\); one embedding per call", obj=_conv),
    Case("MNISTConvNet(conv2_kernel 16x8)", lambda m: m(_X28[:2], conv2_kernel=torch.zeros(16, 8, 7, 7)),
         r"conv2_kernel must have shape \(16, 16, 7, 7\), got \(16, 8, 7, 7\)", obj=lambda: st.MNISTConvNet()),
    Case("MNISTConvNet(conv2_kernel 3x3, silently used)", lambda m: m(_X28[:2], conv2_kernel=torch.zeros(16, 16, 3, 3)),
         r"conv2_kernel must have shape \(16, 16, 7, 7\), got \(16, 16, 3, 3\)", obj=lambda: st.MNISTConvNet()),
    Case("interpolate_z(steps=1)", lambda: st.interpolate_z(torch.zeros(4), torch.ones(4), 1),
         r"steps must be an integer >= 2, got 1"),
    Case("interpolate_z(steps=2.5)", lambda: st.interpolate_z(torch.zeros(4), torch.ones(4), 2.5),
         "steps must be an integer, got 2.5"),
    Case("interpolate_z(int z, silently truncated)",
         lambda: st.interpolate_z(torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long), 3),
         "z0 must be a floating-point tensor"),
    Case("interpolate_z(2-D z)", lambda: st.interpolate_z(torch.zeros(2, 4), torch.ones(2, 4), 3),
         r"z0 must have shape \(N_z,\), got \(2, 4\)"),
    Case("accuracy_along(5 images, 4 labels)", lambda m: st.accuracy_along(m, torch.zeros(2, 4), _X28, _Y5[:4]),
         "x holds 5 images but y 4 labels", obj=_mnist_hyper),
    Case("accuracy_along(no images)", lambda m: st.accuracy_along(m, torch.zeros(2, 4), _X28[:0], _Y5[:0]),
         "x and y are empty", obj=_mnist_hyper),
    Case("accuracy_along(one z, 1-D)", lambda m: st.accuracy_along(m, torch.zeros(4), _X28, _Y5),
         r"zs must have shape \(S, 4\), got \(4,\); stack the embeddings", obj=_mnist_hyper),
    Case("accuracy_along(batch_size=0)", lambda m: st.accuracy_along(m, torch.zeros(2, 4), _X28, _Y5, batch_size=0),
         "batch_size must be a positive integer, got 0", obj=_mnist_hyper),
    Case("accuracy_along(an MNISTConvNet)",
         lambda: st.accuracy_along(st.MNISTConvNet(), torch.zeros(2, 4), _X28, _Y5),
         "model must be an MNISTHyperNet"),
    Case("accuracy_along(one-hot labels)", lambda m: st.accuracy_along(m, torch.zeros(2, 4), _X28, torch.zeros(5, 10)),
         r"y must have shape \(N,\), got \(5, 10\)", obj=_mnist_hyper),
]

# ----------------------------------------------------------------------------------- counting
COUNTING = [
    Case("ha_generator_params(n_layers=1.5, counted as 1.5 layers)",
         lambda: C.ha_generator_params(4, 16, 16, 3, n_layers=1.5), "n_layers must be an integer, got 1.5"),
    Case("ha_generator_params(n_layers='2')", lambda: C.ha_generator_params(4, 16, 16, 3, n_layers="2"),
         "n_layers must be an integer, got '2'"),
    Case("tiled_params(a shape that is not a pair)", lambda: C.tiled_params([(32, 16), (32,)], 4),
         r"kernel_shapes\[1\] must be an \(out_channels, in_channels\) pair, got \(32,\)"),
    Case("tiled_params(an int)", lambda: C.tiled_params(5, 4), "kernel_shapes must be a list of pairs, got int"),
    Case("lstm_params(n_biases=1.0, a float count)", lambda: C.lstm_params(5, 5, n_biases=1.0),
         "n_biases must be 0, 1 or 2, got 1.0"),
    Case("char_lm_params(cell_params=-5)", lambda: C.char_lm_params(50, -5, 10),
         "cell_params must be an integer >= 0, got -5"),
    Case("char_lm_params(embedding=-1)", lambda: C.char_lm_params(50, 100, 10, embedding=-1),
         "embedding must be an integer >= 0, got -1"),
    Case("cifar100_net_params(n_z=2.5)", lambda: C.cifar100_net_params("standard", n_z=2.5),
         "n_z must be an integer, got 2.5"),
    Case("wrn_kernel_shapes(depth=40.0)", lambda: C.wrn_kernel_shapes(40.0), "depth must be an integer, got 40.0"),
    Case("wrn_kernel_shapes(width=0, channels of 0)", lambda: C.wrn_kernel_shapes(40, 0),
         "width must be a positive integer, got 0"),
    Case("wrn_kernel_shapes(width=1.5)", lambda: C.wrn_kernel_shapes(40, 1.5), "width must be an integer, got 1.5"),
    Case("wrn_params(num_classes=0, blamed on n_out)", lambda: C.wrn_params(40, 1, num_classes=0),
         "num_classes must be a positive integer, got 0"),
    Case("wrn_params(hyper, chunk=0, blamed on n_out)", lambda: C.wrn_params(40, 1, hyper=True, chunk=0),
         "chunk must be a positive integer, got 0"),
    Case("wrn_params(hyper, chunk=5)", lambda: C.wrn_params(40, 1, hyper=True, chunk=5),
         r"chunk=5 does not divide the channel counts of WRN-40-1 \(16, 16, 32, 64\)"),
    Case("scheme_params(tiled, chunk=0, blamed on n_out)", lambda: C.scheme_params("tiled", 16, 16, chunk=0),
         "chunk must be a positive integer, got 0"),
    Case("SchemeStack(tiled, chunk=0, blamed on n_in)", lambda: C.SchemeStack("tiled", 16, 16, chunk=0),
         "chunk must be a positive integer, got 0"),
    Case("break_even_width(tiled, chunk=0)", lambda: C.break_even_width("tiled", chunk=0),
         "chunk must be a positive integer, got 0"),
    Case("break_even_width(max_width=0, answers None)", lambda: C.break_even_width("ha", max_width=0),
         "max_width must be a positive integer, got 0"),
    Case("ha_break_even_width_closed_form(f=0)", lambda: C.ha_break_even_width_closed_form(0, 4),
         "f must be a positive integer, got 0"),
    Case("ha_break_even_width_closed_form(shared, n_layers=0)",
         lambda: C.ha_break_even_width_closed_form(3, 4, 0, shared=True), "n_layers must be a positive integer, got 0"),
    Case("break_even_nz(max_nz=0, answers None)", lambda: C.break_even_nz("ha", 16, 16, max_nz=0),
         "max_nz must be a positive integer, got 0"),
    Case("sweep(values=5)", lambda: C.sweep("n_z", 5), "values must be a sequence of n_z values, got int"),
    Case("sweep(an unknown fixed argument)", lambda: C.sweep("n_z", [1, 2], depth=3),
         "sweep got unknown argument.* depth; the fixed ones are f, n_z, d, n_layers, chunk and width"),
    Case("sweep(n_z fixed and swept)", lambda: C.sweep("n_z", [1, 2], n_z=3),
         "n_z=3 is fixed but n_z is the variable swept"),
    Case("sweep(f=0, all NaN)", lambda: C.sweep("width", [16, 32], f=0), "f must be a positive integer, got 0"),
    Case("sweep(schemes='ha', read letter by letter)", lambda: C.sweep("n_z", [1], schemes="ha"),
         r"schemes must be a sequence of scheme names, got the str 'ha'; write schemes=\('ha',\)"),
    Case("published_table(an unknown key)", lambda: C.published_table(["resnet50"]),
         "unknown published configuration 'resnet50' in keys"),
    Case("published_table(keys a str)", lambda: C.published_table("wrn40_1_params"),
         "keys must be a list of configuration names, got the str 'wrn40_1_params'"),
    Case("format_bytes(nan)", lambda: C.format_bytes(float("nan")), "n must be finite"),
    Case("generation_memory(not a module)", lambda: C.generation_memory(3), "module must be an nn.Module, got int"),
    Case("memory_disk_table(a list)", lambda: C.memory_disk_table([nn.Linear(2, 2)]),
         r"modules must be a dict \{name: module\}, got list"),
    Case("memory_disk_html(a row without counts)", lambda: C.memory_disk_html([{"name": "x"}]),
         r"rows\[0\] lacks params, .*pass the rows of memory_disk_table\(\)"),
    Case("solve_nz(max_nz=0)", lambda: C.solve_nz(100, lambda n: n, max_nz=0), "max_nz must be a positive integer"),
    Case("format_published(a str)", lambda: C.format_published("wrn40_1_params"), "p must be a Published entry"),
]

# ----------------------------------------------------------------------------------- plotting
class _Run:
    """A History-like run with two epochs."""
    train_loss, val_loss, train_acc, val_acc, test_acc = [1.0, 0.5], [1.1, 0.6], [0.5, 0.7], [0.4, 0.6], 0.6


class _Untrained:
    train_loss, val_loss, train_acc, val_acc = [], [], [], []


def _closing(fn):
    """Run fn, closing any figure it opened (a refused call must not leave one behind either)."""
    import matplotlib.pyplot as plt

    def call():
        before = set(plt.get_fignums())
        try:
            return fn()
        finally:
            opened = set(plt.get_fignums()) - before
            for n in opened:
                plt.close(n)
            assert not opened, f"the refused call left {len(opened)} figure(s) open"
    return call


PLOTTING = [
    Case("plot_histories({})", _closing(lambda: P.plot_histories({})), "histories is empty"),
    Case("plot_histories(a list)", _closing(lambda: P.plot_histories([_Run()])),
         r"histories must be a dict \{run name: History\}, got list"),
    Case("plot_histories(unknown metric)", _closing(lambda: P.plot_histories({"a": _Run()}, metrics=("val_accuracy",))),
         "unknown metric 'val_accuracy': run 'a'.*choose from train_loss, val_loss, train_acc, val_acc"),
    Case("plot_histories(metrics a str)", _closing(lambda: P.plot_histories({"a": _Run()}, metrics="val_acc")),
         r"metrics must be a sequence of metric names, got the str 'val_acc'; write metrics=\('val_acc',\)"),
    Case("plot_histories(metrics=())", _closing(lambda: P.plot_histories({"a": _Run()}, metrics=())),
         "metrics is empty"),
    Case("plot_histories(an empty history)", _closing(lambda: P.plot_histories({"a": _Untrained()})),
         "run 'a' has no val_acc values"),
    Case("plot_histories(a number, not a curve)", _closing(lambda: P.plot_histories({"a": _Run()}, metrics=("test_acc",))),
         "'test_acc' of run 'a' is one value"),
    Case("filter_mosaic(a NumPy array)", lambda: P.filter_mosaic(np.zeros((2, 2, 3, 3))),
         r"kernel must be a tensor of shape \(N_out, N_in, f, f\), got ndarray"),
    Case("filter_mosaic(pad=1.5)", lambda: P.filter_mosaic(torch.zeros(2, 2, 3, 3), pad=1.5),
         "pad must be an integer, got 1.5"),
    Case("filter_mosaic(no filters)", lambda: P.filter_mosaic(torch.zeros(0, 2, 3, 3)),
         r"kernel has no weights \(shape \(0, 2, 3, 3\)\)"),
    Case("filter_grid(vmax=0, a blank plot)", _closing(lambda: P.filter_grid(torch.randn(2, 2, 3, 3), vmax=0)),
         "vmax must be > 0"),
    Case("filter_grid(vmax=-1, colours flipped)", _closing(lambda: P.filter_grid(torch.randn(2, 2, 3, 3), vmax=-1)),
         "vmax must be > 0"),
    Case("figure_to_png(not a figure)", lambda: P.figure_to_png(3), "fig must be a matplotlib Figure, got int"),
    Case("static_slider(start=1.5, no frame shown)", lambda: P.static_slider([b"x", b"y", b"z"], "abc", start=1.5),
         "start must be an integer, got 1.5"),
    Case("static_slider(a 1-D array as a frame)", lambda: P.static_slider([b"x", np.zeros(3)], ["a", "b"]),
         r"frames\[1\] is not an image.*got ndarray of shape \(3,\)"),
    Case("static_slider(a str as a frame)", lambda: P.static_slider(["frame.png"], ["a"]),
         r"frames\[0\] is not an image.*got str"),
]

# ---------------------------------------------------------------------------------------- table
CASES = STATIC + COUNTING + PLOTTING


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_hostile_call_names_the_problem_and_changes_nothing(case):
    obj = case.obj() if case.obj is not None else None
    before = snapshot(obj)
    with pytest.raises(case.exc, match=case.message):
        case.call(obj) if case.obj is not None else case.call()
    assert same(before, snapshot(obj)), f"{case.name}: the refused call changed the object"


def test_case_names_are_unique_and_the_docstring_counts_them():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    assert f"table holds {len(CASES)} hostile calls" in __doc__


# ---------------------------------------------------------------------------- the shared check
def test_check_shape_reads_only_shape_and_dtype():
    utils.check_shape("x", torch.zeros(2, 3, 5), ("T", "B", 5))
    utils.check_shape("z", torch.zeros(7, 2, 4), ("...", 4), floating=True)
    utils.check_shape("ids", torch.zeros(3, dtype=torch.int32), (None,), floating=False)
    with pytest.raises(ValueError, match=r"x must have shape \(T, B, 5\), got \(2, 3, 4\); fix it"):
        utils.check_shape("x", torch.zeros(2, 3, 4), ("T", "B", 5), fix="fix it")
    with pytest.raises(ValueError, match=r"ids must hold integers, got dtype torch.bool"):
        utils.check_shape("ids", torch.zeros(3, dtype=torch.bool), ("N",), floating=False)
    with pytest.raises(ValueError, match=r"z must be a tensor of shape \(4,\), got ndarray"):
        utils.check_shape("z", np.zeros(4), (4,))

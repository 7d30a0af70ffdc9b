"""Nothing silent, nothing lost: the public API refuses a bad argument with a message that names it.

Each row of the tables below is a hostile call that used to end in a raw error that did not name the
problem (an IndexError from an embedding, a RuntimeError from a matmul, reshape or conv, a
ZeroDivisionError, a KeyError, an AttributeError) or, worse, in silently wrong output.  Each must now
raise the given exception with a message that names the argument (the regex).  Rows built on an
object (a model, a layer) also check that the refused call left it as it was: parameters, buffers and
train/eval mode.  Tiny models, well under a second each.

The table holds 216 hostile calls.
"""
import dataclasses

import matplotlib
import numpy as np
import pytest
import torch
import torch.nn as nn

matplotlib.use("Agg")

from hypernet_lib import checks as utils
from hypernet_lib.analysis import (
    SchemeStack,
    TrainingTracker,
    accuracy_along,
    break_even_nz,
    break_even_width,
    char_lm_params,
    cifar100_net_params,
    dead_fraction,
    format_bytes,
    generated_weight_variance,
    generation_memory,
    ha_break_even_width_closed_form,
    ha_generator_params,
    lstm_params,
    memory_disk_table,
    path_length_share,
    pca_trajectory,
    published_table,
    scaling_vectors,
    scheme_params,
    solve_nz,
    speed_rows,
    sweep,
    tiled_params,
    time_fwd_bwd,
    time_per_sample_impls,
    weight_spread,
    wrn_kernel_shapes,
    wrn_params,
    z_sensitivity,
)
from hypernet_lib.book import plots as P
from hypernet_lib.book.plots import plot_accuracy_matrix, plot_diagnostics, plot_generated_weights
from hypernet_lib.book.tables import format_published, memory_disk_html
from hypernet_lib.data import PermutedTasks, Vocab, make_augment, to_cifar_shape
from hypernet_lib.nn import (
    CharLM,
    ChunkedHyperWeights,
    CifarNet,
    HyperConvGenerator,
    HyperLSTMLayer,
    LayerNormLSTMLayer,
    LayerSpec,
    MainMLP,
    MNISTConvNet,
    MNISTHyperNet,
    NaiveHeads,
    OrdinaryWeights,
    PerSampleLinear,
    SeparateNets,
    SharedNet,
    StaticHyperConv2d,
    TaskHyperNet,
    TiledConvEmbeddings,
    TorchLSTMLayer,
    WideResNet,
    apply_bmm,
    apply_einsum,
    apply_loop,
    build_cifar_net,
    cifar_layer_specs,
    hyperfan_variance,
    interpolate_z,
    kernel_from_tiles,
    lstm_hidden_for_params,
    output_regularizer,
    unflatten,
)
from hypernet_lib.nn import hyperlstm_fast as hf
from hypernet_lib.nn import hyperlstm_readable as hr
from hypernet_lib.training import ContinualResult, generate, task_accuracy


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
    return HyperConvGenerator(3, 4, 4, n_z)


def _conv():
    torch.manual_seed(0)
    return StaticHyperConv2d(_gen())


def _mnist_hyper():
    torch.manual_seed(0)
    return MNISTHyperNet()


_X28, _Y5 = torch.zeros(5, 1, 28, 28), torch.zeros(5, dtype=torch.long)

STATIC = [
    Case("generator(z 0-dim)", lambda g: g(torch.tensor(1.0)), r"z must have shape \(\.\.\., 4\), got \(\)", obj=_gen),
    Case("generator(z a list)", lambda g: g([0.0] * 4), r"z must be a tensor of shape \(\.\.\., 4\), got list", obj=_gen),
    Case("generator(z int64)", lambda g: g(torch.zeros(4, dtype=torch.long)), r"z must be a floating-point tensor",
         obj=_gen),
    Case("kernel_from_tiles(list)", lambda: kernel_from_tiles([1]), r"tiles must be a tensor of shape \(R, C,"),
    Case("TiledConvEmbeddings(n_z=0)", lambda: TiledConvEmbeddings(32, 32, 16, 16, 0),
         "n_z must be a positive integer, got 0"),
    Case("TiledConvEmbeddings(n_z=2.5)", lambda: TiledConvEmbeddings(32, 32, 16, 16, 2.5),
         "n_z must be a positive integer, got 2.5"),
    Case("TiledConvEmbeddings(8x8 generator for 16x16 tiles)",
         lambda e: e(HyperConvGenerator(3, 8, 8, 4)), r"generator makes 8→8 basic kernels.*n_in=16, n_out=16",
         obj=lambda: TiledConvEmbeddings(32, 32, 16, 16, 4)),
    Case("StaticHyperConv2d(a Linear)", lambda: StaticHyperConv2d(nn.Linear(2, 2)),
         "generator must be a HyperConvGenerator, got Linear"),
    Case("StaticHyperConv2d(padding='valid2')", lambda: StaticHyperConv2d(_gen(), padding="valid2"),
         r"padding must be 'same', 'valid' or a number of pixels, got 'valid2'"),
    Case("StaticHyperConv2d(3 channels for 4)", lambda c: c(torch.zeros(1, 3, 8, 8)),
         r"x must have shape \(B, 4, H, W\), got \(1, 3, 8, 8\); this layer's kernel has 4 input channels", obj=_conv),
    Case("StaticHyperConv2d(x 2-D)", lambda c: c(torch.zeros(4, 8)), r"x must have shape \(B, 4, H, W\), got \(4, 8\)",
         obj=_conv),
    Case("StaticHyperConv2d(a batch of z)", lambda c: c(torch.zeros(1, 4, 8, 8), torch.zeros(2, 4)),
         r"z must have shape \(4,\), got \(2, 4\); one embedding per call", obj=_conv),
    Case("MNISTConvNet(conv2 kernel 16x8)", lambda m: m(_X28[:2], {"conv2": torch.zeros(16, 8, 7, 7)}),
         r"weights\['conv2'\] must have shape \(16, 16, 7, 7\), got \(16, 8, 7, 7\)", obj=lambda: MNISTConvNet()),
    Case("MNISTConvNet(conv2 kernel 3x3, silently used)", lambda m: m(_X28[:2], {"conv2": torch.zeros(16, 16, 3, 3)}),
         r"weights\['conv2'\] must have shape \(16, 16, 7, 7\), got \(16, 16, 3, 3\)", obj=lambda: MNISTConvNet()),
    Case("interpolate_z(steps=1)", lambda: interpolate_z(torch.zeros(4), torch.ones(4), 1),
         r"steps must be an integer >= 2, got 1"),
    Case("interpolate_z(steps=2.5)", lambda: interpolate_z(torch.zeros(4), torch.ones(4), 2.5),
         "steps must be an integer, got 2.5"),
    Case("interpolate_z(int z, silently truncated)",
         lambda: interpolate_z(torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long), 3),
         "z0 must be a floating-point tensor"),
    Case("interpolate_z(2-D z)", lambda: interpolate_z(torch.zeros(2, 4), torch.ones(2, 4), 3),
         r"z0 must have shape \(N_z,\), got \(2, 4\)"),
    Case("accuracy_along(5 images, 4 labels)", lambda m: accuracy_along(m, torch.zeros(2, 4), _X28, _Y5[:4]),
         "x holds 5 images but y 4 labels", obj=_mnist_hyper),
    Case("accuracy_along(no images)", lambda m: accuracy_along(m, torch.zeros(2, 4), _X28[:0], _Y5[:0]),
         "x and y are empty", obj=_mnist_hyper),
    Case("accuracy_along(one z, 1-D)", lambda m: accuracy_along(m, torch.zeros(4), _X28, _Y5),
         r"zs must have shape \(S, 4\), got \(4,\); stack the embeddings", obj=_mnist_hyper),
    Case("accuracy_along(batch_size=0)", lambda m: accuracy_along(m, torch.zeros(2, 4), _X28, _Y5, batch_size=0),
         "batch_size must be a positive integer, got 0", obj=_mnist_hyper),
    Case("accuracy_along(an MNISTConvNet)",
         lambda: accuracy_along(MNISTConvNet(), torch.zeros(2, 4), _X28, _Y5),
         "model must be an MNISTHyperNet"),
    Case("accuracy_along(one-hot labels)", lambda m: accuracy_along(m, torch.zeros(2, 4), _X28, torch.zeros(5, 10)),
         r"y must have shape \(N,\), got \(5, 10\)", obj=_mnist_hyper),
]

# ----------------------------------------------------------------------------------- counting
COUNTING = [
    Case("ha_generator_params(n_layers=1.5, counted as 1.5 layers)",
         lambda: ha_generator_params(4, 16, 16, 3, n_layers=1.5), "n_layers must be an integer, got 1.5"),
    Case("ha_generator_params(n_layers='2')", lambda: ha_generator_params(4, 16, 16, 3, n_layers="2"),
         "n_layers must be an integer, got '2'"),
    Case("tiled_params(a shape that is not a pair)", lambda: tiled_params([(32, 16), (32,)], 4),
         r"kernel_shapes\[1\] must be an \(out_channels, in_channels\) pair, got \(32,\)"),
    Case("tiled_params(an int)", lambda: tiled_params(5, 4), "kernel_shapes must be a list of pairs, got int"),
    Case("lstm_params(n_biases=1.0, a float count)", lambda: lstm_params(5, 5, n_biases=1.0),
         "n_biases must be 0, 1 or 2, got 1.0"),
    Case("char_lm_params(cell_params=-5)", lambda: char_lm_params(50, -5, 10),
         "cell_params must be an integer >= 0, got -5"),
    Case("char_lm_params(embedding=-1)", lambda: char_lm_params(50, 100, 10, embedding=-1),
         "embedding must be an integer >= 0, got -1"),
    Case("cifar100_net_params(n_z=2.5)", lambda: cifar100_net_params("standard", n_z=2.5),
         "n_z must be an integer, got 2.5"),
    Case("wrn_kernel_shapes(depth=40.0)", lambda: wrn_kernel_shapes(40.0), "depth must be an integer, got 40.0"),
    Case("wrn_kernel_shapes(width=0, channels of 0)", lambda: wrn_kernel_shapes(40, 0),
         "width must be a positive integer, got 0"),
    Case("wrn_kernel_shapes(width=1.5)", lambda: wrn_kernel_shapes(40, 1.5), "width must be an integer, got 1.5"),
    Case("wrn_params(num_classes=0, blamed on n_out)", lambda: wrn_params(40, 1, num_classes=0),
         "num_classes must be a positive integer, got 0"),
    Case("wrn_params(hyper, chunk=0, blamed on n_out)", lambda: wrn_params(40, 1, hyper=True, chunk=0),
         "chunk must be a positive integer, got 0"),
    Case("wrn_params(hyper, chunk=5)", lambda: wrn_params(40, 1, hyper=True, chunk=5),
         r"chunk=5 does not divide the channel counts of WRN-40-1 \(16, 16, 32, 64\)"),
    Case("scheme_params(tiled, chunk=0, blamed on n_out)", lambda: scheme_params("tiled", 16, 16, chunk=0),
         "chunk must be a positive integer, got 0"),
    Case("SchemeStack(tiled, chunk=0, blamed on n_in)", lambda: SchemeStack("tiled", 16, 16, chunk=0),
         "chunk must be a positive integer, got 0"),
    Case("break_even_width(tiled, chunk=0)", lambda: break_even_width("tiled", chunk=0),
         "chunk must be a positive integer, got 0"),
    Case("break_even_width(max_width=0, answers None)", lambda: break_even_width("ha", max_width=0),
         "max_width must be a positive integer, got 0"),
    Case("ha_break_even_width_closed_form(f=0)", lambda: ha_break_even_width_closed_form(0, 4),
         "f must be a positive integer, got 0"),
    Case("ha_break_even_width_closed_form(shared, n_layers=0)",
         lambda: ha_break_even_width_closed_form(3, 4, 0, shared=True), "n_layers must be a positive integer, got 0"),
    Case("break_even_nz(max_nz=0, answers None)", lambda: break_even_nz("ha", 16, 16, max_nz=0),
         "max_nz must be a positive integer, got 0"),
    Case("sweep(values=5)", lambda: sweep("n_z", 5), "values must be a sequence of n_z values, got int"),
    Case("sweep(an unknown fixed argument)", lambda: sweep("n_z", [1, 2], depth=3),
         "sweep got unknown argument.* depth; the fixed ones are f, n_z, d, n_layers, chunk and width"),
    Case("sweep(n_z fixed and swept)", lambda: sweep("n_z", [1, 2], n_z=3),
         "n_z=3 is fixed but n_z is the variable swept"),
    Case("sweep(f=0, all NaN)", lambda: sweep("width", [16, 32], f=0), "f must be a positive integer, got 0"),
    Case("sweep(schemes='ha', read letter by letter)", lambda: sweep("n_z", [1], schemes="ha"),
         r"schemes must be a sequence of scheme names, got the str 'ha'; write schemes=\('ha',\)"),
    Case("published_table(an unknown key)", lambda: published_table(["resnet50"]),
         "unknown published configuration 'resnet50' in keys"),
    Case("published_table(keys a str)", lambda: published_table("wrn40_1_params"),
         "keys must be a list of configuration names, got the str 'wrn40_1_params'"),
    Case("format_bytes(nan)", lambda: format_bytes(float("nan")), "n must be finite"),
    Case("generation_memory(not a module)", lambda: generation_memory(3), "module must be an nn.Module, got int"),
    Case("memory_disk_table(a list)", lambda: memory_disk_table([nn.Linear(2, 2)]),
         r"modules must be a dict \{name: module\}, got list"),
    Case("memory_disk_html(a row without counts)", lambda: memory_disk_html([{"name": "x"}]),
         r"rows\[0\] lacks params, .*pass the rows of memory_disk_table\(\)"),
    Case("solve_nz(max_nz=0)", lambda: solve_nz(100, lambda n: n, max_nz=0), "max_nz must be a positive integer"),
    Case("format_published(a str)", lambda: format_published("wrn40_1_params"), "p must be a Published entry"),
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

# ------------------------------------------------------------------ hyperlstm, hyperlstm_fast
def _hl(**kw):
    torch.manual_seed(0)
    return HyperLSTMLayer(5, 6, 4, 2, **kw)


def _ln():
    torch.manual_seed(0)
    return LayerNormLSTMLayer(5, 6)


def _torch_lstm():
    torch.manual_seed(0)
    return TorchLSTMLayer(5, 6)


def _lm():
    torch.manual_seed(0)
    return CharLM(5, cell="hyperlstm", hidden_size=8, hyper_num_units=4)


_IDS = torch.zeros(3, 2, dtype=torch.long)                 # (T, B) = (3, 2), one-hot input of size 5
_VOCAB = Vocab("abcde")


def _zeros_state(*widths, batch=2, dtype=torch.float32):
    return tuple(torch.zeros(batch, w, dtype=dtype) for w in widths)


def _params(layer, **replace):
    names = ("W_in", "b_hat", "W_rec", "W_hath", "W_z", "b_z", "W_d", "b_0") + hf._LN_FIELDS
    return hf.Params(*(getattr(layer, n) for n in names))._replace(**replace)


def _seq(x, state=None, masks=None, grad=True, plain_tuple=False, **replace):
    """hyperlstm_sequence on a fresh LN-HyperLSTM's parameters (5 inputs, 6 units, hyper cell 4)."""
    layer = _hl()
    state = layer.initial_state(2) if state is None else state
    params = _params(layer, **replace)
    with torch.set_grad_enabled(grad):
        return hf.hyperlstm_sequence(x, state, tuple(params) if plain_tuple else params, ln=True, z_current=True,
                                     masks=masks)


HYPERLSTM = [
    Case("HyperLSTMLayer(input_size=True)", lambda: HyperLSTMLayer(True, 6, 4, 2),
         "input_size must be an integer, got True"),
    Case("HyperLSTMLayer(dropout_keep_prob='x')", lambda: HyperLSTMLayer(5, 6, 4, 2, dropout_keep_prob="x"),
         "dropout_keep_prob must be a number, got 'x'"),
    Case("HyperLSTMLayer(id 5 of 5)", lambda m: m(torch.full((3, 2), 5)),
         r"HyperLSTMLayer: the ids in x contain id 5, outside the one-hot input of input_size=5 \(ids 0\.\.4\)", obj=_hl),
    Case("HyperLSTMLayer(id -1)", lambda m: m(torch.full((3, 2), -1)), "the ids in x contain id -1", obj=_hl),
    Case("HyperLSTMLayer.forward_reference(id 5 of 5)", lambda m: m.forward_reference(torch.full((3, 2), 5)),
         "the ids in x contain id 5", obj=_hl),
    Case("HyperLSTMLayer(no time steps)", lambda m: m(_IDS[:0]),
         r"HyperLSTMLayer: x has no time steps \(shape \(0, 2\)\)", obj=_hl),
    Case("HyperLSTMLayer(a list)", lambda m: m([[0, 1]]), "HyperLSTMLayer: x must be a tensor", obj=_hl),
    Case("HyperLSTMLayer(int16 ids, called float input)", lambda m: m(_IDS.short()),
         r"HyperLSTMLayer: x has dtype torch.int16; pass int64 \(or int32\) ids", obj=_hl),
    Case("HyperLSTMLayer(state of batch 3 for batch 2)", lambda m: m(_IDS, m.initial_state(3)),
         r"state\[0\] \(h\) has shape \(3, 6\), but the input has batch size 2; carry the state only between calls "
         "with the same batch size", obj=_hl),
    Case("HyperLSTMLayer.forward_reference(state of batch 3)", lambda m: m.forward_reference(_IDS, m.initial_state(3)),
         r"state\[0\] \(h\) has shape \(3, 6\), but the input has batch size 2", obj=_hl),
    Case("HyperLSTMLayer(an LSTM's state of 2 tensors)", lambda m: m(_IDS, _zeros_state(6, 6)),
         r"state must be a tuple of 4 tensors \(h, c, ĥ, ĉ\), as the layer's previous call returns; got tuple of "
         "length 2", obj=_hl),
    Case("HyperLSTMLayer(state 7 units wide)", lambda m: m(_IDS, _zeros_state(7, 7, 4, 4)),
         r"state\[0\] \(h\) has shape \(2, 7\), expected \(2, 6\) \(6 units\)", obj=_hl),
    Case("HyperLSTMLayer(state of Nones)", lambda m: m(_IDS, (None,) * 4),
         r"state\[0\] \(h\) must be a tensor of shape \(2, 6\), got NoneType", obj=_hl),
    Case("HyperLSTMLayer(float64 state, float32 weights)", lambda m: m(_IDS, m.initial_state(2, dtype=torch.float64)),
         r"state\[0\] \(h\) has dtype torch.float64 but the weights are torch.float32", obj=_hl),
    Case("HyperLSTMLayer.initial_state(-1)", lambda m: m.initial_state(-1), "batch_size must be an integer >= 0, got -1",
         obj=_hl),
    Case("LayerNormLSTMLayer(hidden_size=-1)", lambda: LayerNormLSTMLayer(5, -1),
         "hidden_size must be a positive integer, got -1"),
    Case("LayerNormLSTMLayer(input_size=0, silently built)", lambda: LayerNormLSTMLayer(0, 6),
         "input_size must be a positive integer, got 0"),
    Case("LayerNormLSTMLayer(id 5 of 5)", lambda m: m(torch.full((3, 2), 5)),
         "LayerNormLSTMLayer: the ids in x contain id 5", obj=_ln),
    Case("LayerNormLSTMLayer(state of batch 3)", lambda m: m(_IDS, m.initial_state(3)),
         r"state\[0\] \(h\) has shape \(3, 6\), but the input has batch size 2", obj=_ln),
    Case("LayerNormLSTMLayer(no time steps)", lambda m: m(_IDS[:0]), "LayerNormLSTMLayer: x has no time steps", obj=_ln),
    Case("TorchLSTMLayer(id 5 of 5)", lambda m: m(torch.full((3, 2), 5)),
         "TorchLSTMLayer: the ids in x contain id 5", obj=_torch_lstm),
    Case("TorchLSTMLayer(state of batch 3)", lambda m: m(_IDS, m.initial_state(3)),
         r"state\[0\] \(h\) has shape \(3, 6\), but the input has batch size 2", obj=_torch_lstm),
    Case("Vocab.encode(bytes, read as numbers)", lambda: _VOCAB.encode(b"ab"),
         r"text must be a str, got bytes; decode the bytes first"),
    Case("Vocab.encode(None)", lambda: _VOCAB.encode(None), "text must be a str, got NoneType"),
    Case("Vocab.decode(5)", lambda: _VOCAB.decode(5),
         r"ids must be a sequence of integer ids \(a list or a 1-D tensor\), got int 5"),
    Case("Vocab.decode(None)", lambda: _VOCAB.decode(None), "ids must be a sequence of integer ids"),
    Case("Vocab.from_text(None)", lambda: Vocab.from_text(None), "a vocabulary is built from a str of text"),
    Case("CharLM(state 3 units wide)", lambda m: m(torch.zeros(1, 2, dtype=torch.long), [_zeros_state(3, 3, 4, 4, batch=1)]),
         r"state\[0\]\[0\] \(h\) has shape \(1, 3\), expected \(1, 8\)", obj=_lm),
    Case("CharLM(an LSTM's state for a HyperLSTM)",
         lambda m: m(torch.zeros(1, 2, dtype=torch.long), [_zeros_state(8, 8, batch=1)]),
         r"state\[0\] must be a tuple of 4 tensors \(h, c, ĥ, ĉ\)", obj=_lm),
    Case("generate(generator=5)", lambda m: generate(m, _VOCAB, "a", 3, generator=5),
         r"generator must be a torch.Generator \(e.g. torch.Generator\(\).manual_seed\(0\)\) or None, got int", obj=_lm),
    Case("generate(an unknown prime character, left the model in eval mode)",
         lambda m: generate(m, _VOCAB, "az", 3), r"text contains 1 character\(s\) not in the model's vocabulary: 'z'",
         obj=_lm),
    Case("scaling_vectors(an unknown character, left the model in eval mode)",
         lambda m: scaling_vectors(m, _VOCAB, "xyz"), "text contains 3 character", obj=_lm),
    Case("scaling_vectors(layer=1 of 1)", lambda m: scaling_vectors(m, _VOCAB, "abc", layer=1),
         r"layer must be an integer in \[0, 0\], got 1", obj=_lm),
    Case("scaling_vectors(layer=-1, silently the last)", lambda m: scaling_vectors(m, _VOCAB, "abc", layer=-1),
         r"layer must be an integer in \[0, 0\], got -1", obj=_lm),
    Case("scaling_vectors(empty text)", lambda m: scaling_vectors(m, _VOCAB, ""),
         "text must be a str of at least one character", obj=_lm),
    Case("scaling_vectors(a 7-character vocabulary)", lambda m: scaling_vectors(m, Vocab("abcdefg"), "fg"),
         "the vocabulary has 7 characters but the model predicts 5", obj=_lm),
    Case("scaling_vectors(not a CharLM)", lambda: scaling_vectors(nn.Linear(2, 2), _VOCAB, "abc"),
         "model must be a CharLM, got Linear"),
    Case("lstm_hidden_for_params(vocab_size=0)", lambda: lstm_hidden_for_params(0, 1000),
         "vocab_size must be a positive integer, got 0"),
    Case("time_fwd_bwd(1-D ids)", lambda: time_fwd_bwd(speed_rows(5, 4, 4), torch.zeros(3, dtype=torch.long)),
         r"ids must be a non-empty \(T, B\) tensor of integer ids"),
    Case("hyperlstm_sequence(id 5 of 5)", lambda: _seq(torch.full((3, 2), 5)),
         r"x contain id 5, outside the one-hot input of size 5 \(ids 0\.\.4\)"),
    Case("hyperlstm_sequence(4 features for 5)", lambda: _seq(torch.zeros(3, 2, 4)),
         r"x must have shape \(T, B, 5\), got \(3, 2, 4\)"),
    Case("hyperlstm_sequence(1-D ids)", lambda: _seq(torch.zeros(3, dtype=torch.long)),
         r"x must have shape \(T, B\), got \(3,\)"),
    Case("hyperlstm_sequence(no time steps)", lambda: _seq(_IDS[:0]), r"x has no time steps"),
    Case("hyperlstm_sequence(state of batch 3)", lambda: _seq(_IDS, _hl().initial_state(3)),
         r"state\[0\] \(h\) has shape \(3, 6\), but the input has batch size 2"),
    Case("hyperlstm_sequence(3 state tensors)", lambda: _seq(_IDS, _hl().initial_state(2)[:3]),
         "state must be a tuple of 4 tensors .*got tuple of length 3"),
    Case("hyperlstm_sequence(masks for 5 units)", lambda: _seq(_IDS, masks=torch.ones(3, 2, 5)),
         r"masks must have shape \(3, 2, 6\), got \(3, 2, 5\)"),
    Case("hyperlstm_sequence(ln=True without its gains)", lambda: _seq(_IDS, ln_gain=None),
         "ln=True but params has no ln_gain"),
    Case("hyperlstm_sequence(float64 state)", lambda: _seq(_IDS, _hl().initial_state(2, dtype=torch.float64)),
         r"state\[0\] \(h\) has dtype torch.float64 but the weights are torch.float32"),
    Case("hyperlstm_sequence(params a plain tuple)",
         lambda: _seq(_IDS, grad=False, plain_tuple=True),
         "params must be a hyperlstm_fast.Params, got tuple"),
]


# ------------------------------------------------------------------------- hyperlstm_readable
def _cell():
    torch.manual_seed(0)
    return hr.ReadableHyperLSTMCell(5, 6, 4, 2)


_RSTATE = _zeros_state(6, 6, 4, 4)

READABLE = [
    Case("ReadableHyperLSTMCell(hidden_size=-1)", lambda: hr.ReadableHyperLSTMCell(5, -1, 4, 2),
         "hidden_size must be a positive integer, got -1"),
    Case("ReadableHyperLSTMCell(input_size=0, silently built)", lambda: hr.ReadableHyperLSTMCell(0, 6, 4, 2),
         "input_size must be a positive integer, got 0"),
    Case("ReadableHyperLSTMCell(4 features for 5)", lambda c: c(torch.zeros(2, 4), _RSTATE),
         r"x must have shape \(B, 5\), got \(2, 4\); one step of float inputs", obj=_cell),
    Case("ReadableHyperLSTMCell(x of batch 3, state of batch 2)", lambda c: c(torch.zeros(3, 5), _RSTATE),
         r"state\[0\] \(h\) has shape \(2, 6\), but the input has batch size 3", obj=_cell),
    Case("ReadableHyperLSTMCell(state None)", lambda c: c(torch.zeros(2, 5), None),
         r"state must be a tuple of 4 tensors \(h, c, ĥ, ĉ\).*got NoneType", obj=_cell),
    Case("ReadableHyperLSTMCell(integer x)", lambda c: c(torch.zeros(2, 5, dtype=torch.long), _RSTATE),
         "x must be a floating-point tensor, got dtype torch.int64", obj=_cell),
    Case("ReadableHyperLSTMCell.run(id 5 of 5)", lambda c: c.run(torch.full((3, 2), 5)),
         r"xs contain id 5, outside the one-hot input of input_size=5 \(ids 0\.\.4\)", obj=_cell),
    Case("ReadableHyperLSTMCell.run(4 features for 5)", lambda c: c.run(torch.zeros(3, 2, 4)),
         r"xs must have shape \(T, B, 5\), got \(3, 2, 4\)", obj=_cell),
    Case("ReadableHyperLSTMCell.run(no time steps)", lambda c: c.run(torch.zeros(0, 2, 5)), "xs has no time steps",
         obj=_cell),
    Case("ReadableHyperLSTMCell.run(state of batch 3)",
         lambda c: c.run(torch.zeros(3, 2, 5), _zeros_state(6, 6, 4, 4, batch=3)),
         r"state\[0\] \(h\) has shape \(3, 6\), but the input has batch size 2", obj=_cell),
    Case("ReadableHyperLSTMCell.from_layer(a LayerNormLSTMLayer)",
         lambda: hr.ReadableHyperLSTMCell.from_layer(LayerNormLSTMLayer(5, 6)),
         "layer must be a HyperLSTMLayer, got LayerNormLSTMLayer"),
]

# -------------------------------------------------------------------------------- conditional
def _main():
    return MainMLP((16, 6, 3))


def _sep():
    return SeparateNets(_main(), 2)


def _thn():
    return TaskHyperNet(_main(), 2, chunk_size=32)


def _psl():
    torch.manual_seed(0)
    return PerSampleLinear(3, 4, 2)


class _Images:
    """An ImageData-like set of 4×4 images, 3 classes."""
    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.x_train, self.y_train = torch.rand(20, 1, 4, 4, generator=g), torch.randint(0, 3, (20,), generator=g)
        self.x_test, self.y_test = torch.rand(10, 1, 4, 4, generator=g), torch.randint(0, 3, (10,), generator=g)


def _tasks():
    return PermutedTasks(_Images(), 2)


_W, _B = torch.zeros(2, 4, 5), torch.zeros(2, 4)       # per-sample weights (B, out, in) and biases (B, out)

CONDITIONAL = [
    Case("hyperfan_variance(fan_in=0)", lambda: hyperfan_variance("hyperfan_in", "weight", fan_in=0, fan_out=3, d_k=4),
         "fan_in must be a positive integer, got 0"),
    Case("hyperfan_variance(d_k=0)", lambda: hyperfan_variance("hyperfan_in", "weight", fan_in=2, fan_out=3, d_k=0),
         "d_k must be a positive integer, got 0"),
    Case("hyperfan_variance(fan_out=0)", lambda: hyperfan_variance("hyperfan_out", "bias", fan_in=2, fan_out=0, d_k=4),
         "fan_out must be a positive integer, got 0"),
    Case("hyperfan_variance(gain=-1, a negative variance)",
         lambda: hyperfan_variance("hyperfan_in", "weight", fan_in=2, fan_out=3, d_k=4, gain=-1), "gain must be > 0"),
    Case("hyperfan_variance(var_e=nan)",
         lambda: hyperfan_variance("hyperfan_in", "weight", fan_in=2, fan_out=3, d_k=4, var_e=float("nan")),
         "var_e must be > 0"),
    Case("apply_bmm(x of 3 features, w of 5)", lambda: apply_bmm(torch.zeros(2, 3), _W, _B),
         r"x must have shape \(2, 5\), got \(2, 3\); one input per sample, sized like w's last dimension \(5\)"),
    Case("apply_einsum(x of 3 features, w of 5)", lambda: apply_einsum(torch.zeros(2, 3), _W, _B),
         r"x must have shape \(2, 5\), got \(2, 3\)"),
    Case("apply_loop(3 samples, 2 weights)", lambda: apply_loop(torch.zeros(3, 5), _W, _B),
         r"x must have shape \(2, 5\), got \(3, 5\)"),
    Case("apply_bmm(bias of 3 rows)", lambda: apply_bmm(torch.zeros(2, 5), _W, torch.zeros(2, 3)),
         r"b must have shape \(2, 4\), got \(2, 3\)"),
    Case("PerSampleLinear(gain=-1)", lambda: PerSampleLinear(3, 4, 2, gain=-1), "gain must be > 0"),
    Case("PerSampleLinear.generate(z 0-dim)", lambda m: m.generate(torch.tensor(1.0)),
         r"z must have shape \(\.\.\., 2\), got \(\)", obj=_psl),
    Case("time_per_sample_impls(repeats=0)", lambda: time_per_sample_impls(batch=2, repeats=0),
         "repeats must be a positive integer, got 0"),
    Case("MainMLP(sizes=5)", lambda: MainMLP(5), r"sizes must be a sequence of layer widths \(in, \.\.\., out\)"),
    Case("MainMLP(3 nets for 2 thetas)", lambda m: m(torch.zeros(3, 2, 16), unflatten(m.init_theta(2), m.param_shapes)),
         r"x \(\.\.\., B, in\) has leading dimensions \(3,\) and the weights \(\.\.\., \*shape\) \(2,\)", obj=_main),
    Case("MainMLP.init_theta(n=-1)", lambda m: m.init_theta(-1), "n must be an integer >= 0, got -1", obj=_main),
    Case("unflatten(theta 0-dim, MainMLP's shapes)", lambda m: unflatten(torch.tensor(1.0), m.param_shapes),
         r"theta must have shape \(\.\.\., 123\), got \(\)", obj=_main),
    Case("SharedNet(n_tasks=0, silently built)", lambda: SharedNet(_main(), 0), "n_tasks must be a positive integer"),
    Case("SeparateNets(n_tasks=-1)", lambda: SeparateNets(_main(), -1), "n_tasks must be a positive integer, got -1"),
    Case("SeparateNets(main a Linear)", lambda: SeparateNets(nn.Linear(2, 2), 2), "main must be a MainMLP, got Linear"
         .replace("MainMLP,", r"MainMLP \(a main net with a functional forward\),")),
    Case("SeparateNets(task ids [])", lambda m: m.thetas([]), r"task ids are empty \(\[\]\); pass at least one task id",
         obj=_sep),
    Case("SeparateNets(task id True)", lambda m: m(torch.zeros(1, 16), True),
         r"task ids must be integers, got True \(a bool is not a task id\)", obj=_sep),
    Case("TaskHyperNet(hidden=(0,))", lambda: TaskHyperNet(_main(), 2, hidden=(0,)),
         r"hidden\[0\] must be a positive integer, got 0"),
    Case("TaskHyperNet(hidden=64)", lambda: TaskHyperNet(_main(), 2, hidden=64),
         r"hidden must be a sequence of hidden layer widths, e.g. \(64,\); got 64"),
    Case("TaskHyperNet(emb_std=0)", lambda: TaskHyperNet(_main(), 2, emb_std=0), "emb_std must be > 0"),
    Case("TaskHyperNet(gain=0, all weights 0)", lambda: TaskHyperNet(_main(), 2, gain=0), "gain must be > 0"),
    Case("TaskHyperNet(main a Linear)", lambda: TaskHyperNet(nn.Linear(2, 2), 2), "main must be a MainMLP"),
    Case("PermutedTasks(n_train=-1, drops the last image)", lambda: PermutedTasks(_Images(), 2, n_train=-1),
         "n_train must be a positive integer, got -1"),
    Case("PermutedTasks(n_train=2.5)", lambda: PermutedTasks(_Images(), 2, n_train=2.5),
         "n_train must be an integer, got 2.5"),
    Case("PermutedTasks(data=None)", lambda: PermutedTasks(None, 2),
         "data must hold image tensors x_train, y_train, x_test, y_test .* NoneType lacks x_train"),
    Case("PermutedTasks.permute(task 2 of 2)", lambda: _tasks().permute(torch.zeros(3, 16), 2),
         r"task id 2 is out of range: these tasks are numbered 0\.\.1"),
    Case("PermutedTasks.permute(task -1, silently the last)", lambda: _tasks().permute(torch.zeros(3, 16), -1),
         "task id -1 is out of range"),
    Case("PermutedTasks.permute(task 1.5, truncated)", lambda: _tasks().permute(torch.zeros(3, 16), 1.5),
         r"task id must be one integer in 0\.\.1, got 1.5"),
    Case("PermutedTasks.permute(15 pixels for 16)", lambda: _tasks().permute(torch.zeros(3, 15), 0),
         r"x must have shape \(B, 16\), got \(3, 15\); flattened images of 16 pixels"),
    Case("PermutedTasks.permute(2 ids for 3 tasks' images)",
         lambda: _tasks().permute(torch.zeros(3, 2, 16), torch.tensor([0, 1])),
         r"task_ids must have shape \(3,\), got \(2,\)"),
    Case("task_accuracy(task 5 of 2)", lambda m: task_accuracy(m, _tasks(), [5]), "task id 5 is out of range",
         obj=_sep),
    Case("task_accuracy(task 1.5, left the model in eval mode)", lambda m: task_accuracy(m, _tasks(), [0, 1.5]),
         r"task id must be one integer in 0\.\.1, got 1.5", obj=_sep),
    Case("task_accuracy(batch_size=0)", lambda m: task_accuracy(m, _tasks(), batch_size=0),
         "batch_size must be a positive integer, got 0", obj=_sep),
    Case("output_regularizer(targets of 3 values for P=123)",
         lambda m: output_regularizer(m, torch.zeros(2, 3), [0, 1]),
         "targets has 3 values per task but the main net has P=123 parameters", obj=_thn),
    Case("output_regularizer(task 5 of 2)", lambda m: output_regularizer(m, torch.zeros(1, 123), [5]),
         r"task_ids must be integers in 0\.\.1, got \[5\]", obj=_thn),
    Case("output_regularizer(a SeparateNets)", lambda m: output_regularizer(m, torch.zeros(1, 123), [0]),
         "hnet must be a TaskHyperNet", obj=_sep),
    Case("generated_weight_variance(n_emb=1, NaN)", lambda m: generated_weight_variance(m, n_emb=1),
         "n_emb must be an integer >= 2, got 1", obj=_thn),
    Case("weight_spread(a list)", lambda: weight_spread([[1.0, 2.0], [3.0, 4.0]]),
         r"thetas must be a tensor of shape \(K, P\), got list"),
    Case("z_sensitivity(x with a task dimension)", lambda m: z_sensitivity(m, torch.zeros(2, 3, 16)),
         r"x must have shape \(B, in\), got \(2, 3, 16\)", obj=_sep),
    Case("dead_fraction(task 5 of 2)", lambda m: dead_fraction(m, [0, 5]), r"task ids must be in 0\.\.1", obj=_thn),
    Case("dead_fraction(task -1, silently the last)", lambda m: dead_fraction(m, [-1]),
         r"task ids must be in 0\.\.1, got \[-1\]", obj=_thn),
    Case("dead_fraction(a SeparateNets)", lambda m: dead_fraction(m), "hnet must be a TaskHyperNet", obj=_sep),
    Case("plot_generated_weights(1 label for 2 rows)",
         _closing(lambda: plot_generated_weights(torch.zeros(2, 5), ["a"])),
         "labels has 1 entries but thetas 2 rows"),
    Case("plot_generated_weights(n=0)", _closing(lambda: plot_generated_weights(torch.zeros(2, 5), ["a", "b"], n=0)),
         "n must be a positive integer, got 0"),
    Case("plot_diagnostics(a report without output_spread)",
         _closing(lambda: plot_diagnostics({"a": {"weight_spread": 0.1}})), r"reports\['a'\] lacks output_spread"),
    Case("plot_accuracy_matrix(ragged rows)", _closing(lambda: plot_accuracy_matrix([[1, 2], [3]])),
         r"acc must be a square table acc\[i\]\[j\] of numbers"),
    Case("plot_accuracy_matrix([])", _closing(lambda: plot_accuracy_matrix([])),
         r"acc must be a non-empty table acc\[i\]\[j\]"),
    Case("ContinualResult().final", lambda: ContinualResult().final, r"no task has been learned yet \(acc is empty\)"),
]

# -------------------------------------------------------------------------------------- cifar
_SPECS = cifar_layer_specs(width=0.05)          # conv 3→3→6→13→26→26, fc 26→51→26→100


def _net(variant="standard"):
    torch.manual_seed(0)
    return build_cifar_net(variant, width=0.05)


def _wrn():
    torch.manual_seed(0)
    return WideResNet(10, 1)


@dataclasses.dataclass
class _Gray:
    """An ImageData-like set of 3-channel 28×28 images (x_train, x_val, x_test)."""
    name: str = "gray"
    source: str = "test"
    x_train: torch.Tensor = dataclasses.field(default_factory=lambda: torch.zeros(2, 3, 28, 28))
    x_val: torch.Tensor = dataclasses.field(default_factory=lambda: torch.zeros(2, 3, 28, 28))
    x_test: torch.Tensor = dataclasses.field(default_factory=lambda: torch.zeros(2, 3, 28, 28))


CIFAR = [
    Case("LayerSpec(kind='lstm', read as fc)", lambda: LayerSpec("x", "lstm", 3, 4).shape,
         "LayerSpec 'x': unknown kind 'lstm'; choose 'conv' or 'fc'"),
    Case("LayerSpec(out_features=0)", lambda: LayerSpec("x", "conv", 0, 4),
         "out_features must be a positive integer, got 0"),
    Case("NaiveHeads(n_z=0)", lambda: NaiveHeads(_SPECS, n_z=0), "n_z must be a positive integer, got 0"),
    Case("build_cifar_net(naive_full, n_z=2.5)", lambda: build_cifar_net("naive_full", width=0.05, n_z=2.5),
         "n_z must be an integer, got 2.5"),
    Case("OrdinaryWeights([1])", lambda: OrdinaryWeights([1]),
         r"OrdinaryWeights: specs\[0\] must be a LayerSpec \(see cifar_layer_specs\), got int"),
    Case("ChunkedHyperWeights(generator a Linear)",
         lambda: ChunkedHyperWeights(_SPECS, generator=nn.Linear(2, 2)), "generator must be a HyperConvGenerator"),
    Case("CifarNet(a source for 2 of 8 layers)", lambda: CifarNet(OrdinaryWeights(_SPECS[:2]), _SPECS),
         "the source makes no weight for layer.* conv3, conv4, conv5, fc1, fc2, fc3; it serves conv1, conv2"),
    Case("CifarNet(no conv layer)",
         lambda: CifarNet(OrdinaryWeights([LayerSpec("fc", "fc", 3, 4)]), [LayerSpec("fc", "fc", 3, 4)]),
         "CifarNet needs at least one conv layer"),
    Case("CifarNet(4×4 images)", lambda m: m(torch.zeros(2, 3, 4, 4)),
         r"images of 4×4 are too small: the net max-pools 3 times, so H and W must be at least 8", obj=_net),
    Case("CifarNet(uint8 images)", lambda m: m(torch.zeros(2, 3, 32, 32, dtype=torch.uint8)),
         r"images must be floating point, got dtype torch.uint8; convert with x.float\(\)", obj=_net),
    Case("CifarNet(a list)", lambda m: m([1]), r"x must be a tensor of shape \(B, 3, H, W\), got list", obj=_net),
    Case("CifarNet.layer_kind('conv9', answered 'ordinary')", lambda m: m.layer_kind("conv9"),
         "no layer named 'conv9'; the layers are conv1, ", KeyError, obj=_net),
    Case("CompositeWeights.kind_of('conv9')", lambda m: m.layer_kind("conv9"), "no layer named 'conv9'", KeyError,
         obj=lambda: _net("partial")),
    Case("WideResNet(depth=4, no blocks)", lambda: WideResNet(4), r"WRN depth must be 6n\+4 with n >= 1"),
    Case("WideResNet(depth=-2, no blocks)", lambda: WideResNet(-2), "depth must be a positive integer, got -2"),
    Case("WideResNet(depth=40.0)", lambda: WideResNet(40.0), "depth must be an integer, got 40.0"),
    Case("WideResNet(width=0)", lambda: WideResNet(10, 0), "width must be a positive integer, got 0"),
    Case("WideResNet(num_classes=0, silently built)", lambda: WideResNet(10, 1, num_classes=0),
         "num_classes must be a positive integer, got 0"),
    Case("WideResNet(1-channel images)", lambda m: m(torch.zeros(2, 1, 32, 32)),
         r"x must have shape \(B, 3, H, W\), got \(2, 1, 32, 32\); colour images", obj=_wrn),
    Case("make_augment(crop=-1)", lambda: make_augment(crop=-1), "crop must be an integer >= 0, got -1"),
    Case("make_augment(erase=2, a probability)", lambda: make_augment(erase=2), "erase must be >= 0 and <= 1"),
    Case("make_augment(rotate=nan)", lambda: make_augment(rotate=float("nan")), "rotate must be >= 0"),
    Case("to_cifar_shape(3-channel images to channels=2, name says 2)", lambda: to_cifar_shape(_Gray(), channels=2),
         "x_train has 3 channels: only one channel can be repeated to channels=2"),
    Case("path_length_share([])", lambda: path_length_share([], 0), "snapshots is empty"),
    Case("path_length_share(snapshots of two sizes)", lambda: path_length_share([torch.zeros(2), torch.ones(3)], 1),
         r"snapshots\[1\] has shape \(3,\) but snapshots\[0\] \(2,\)"),
    Case("pca_trajectory(k=-1, drops the last component)",
         lambda: pca_trajectory([torch.zeros(2), torch.ones(2)], k=-1), "k must be a positive integer, got -1"),
    Case("pca_trajectory(2-D snapshots)", lambda: pca_trajectory([torch.zeros(2, 2), torch.ones(2, 2)]),
         r"snapshots\[0\] has shape \(2, 2\); each snapshot must be a flat vector \(P,\)"),
    Case("TrainingTracker(not a CifarNet)", lambda: TrainingTracker(3), "net must be a CifarNet"),
    Case("TrainingTracker.z_drift(no snapshot)", lambda: TrainingTracker(_net()).z_drift(),
         r"the tracker has no snapshot yet; call snapshot\(\)"),
    Case("TrainingTracker.from_state(None)", lambda: TrainingTracker.from_state(_net(), None),
         r"state must be the dict TrainingTracker.state\(\) returns, got NoneType"),
]

# ---------------------------------------------------------------------------------------- table
CASES = STATIC + COUNTING + PLOTTING + HYPERLSTM + READABLE + CONDITIONAL + CIFAR


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


def test_int32_ids_work_in_every_layer_as_int64_ids_do():
    """TorchLSTMLayer and the readable cell fed int32 ids to F.one_hot, which takes int64 only (a RuntimeError);
    the layers that gather rows took them.  Now every layer gives int32 and int64 ids the same output."""
    for make in (_hl, _ln, _torch_lstm):
        layer = make().eval()
        with torch.no_grad():
            assert torch.equal(layer(_IDS.int())[0], layer(_IDS)[0]), make.__name__
    cell = _cell()
    with torch.no_grad():
        assert torch.equal(cell.run(_IDS.int())[0], cell.run(_IDS)[0])


def test_a_numpy_or_0_dim_tensor_task_id_is_one_task_id_like_an_int():
    """np.int64(1) and torch.tensor(1) were read as a list of one id, so x (B, in) was refused with
    'with 1 task ids, x must have shape (1, B, in)'.  They now select one task, as 1 does."""
    torch.manual_seed(0)
    net, x = _sep(), torch.randn(4, 16)
    for one in (np.int64(1), torch.tensor(1)):
        assert torch.equal(net(x, one), net(x, 1))

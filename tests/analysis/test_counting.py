"""Every closed-form count in hypernet_lib.counting against sum(p.numel()) of real modules,
and the published configurations rebuilt from the library."""
import math

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from hypernet_lib.analysis import (
    CIFAR100_VARIANTS,
    PUBLISHED,
    SCHEMES,
    batchnorm_params,
    break_even_nz,
    break_even_width,
    build_published,
    build_scheme,
    calculator_rows,
    char_lm_params,
    checkpoint_bytes,
    cifar100_net_params,
    compression_ratio,
    conv2d_params,
    count_params,
    count_published,
    format_bytes,
    generation_memory,
    ha_break_even_width_closed_form,
    ha_generator_params,
    hyperlstm_params,
    layernorm_params,
    linear_head_params,
    linear_params,
    lstm_params,
    mnist_hyper_params,
    num_tiles,
    scheme_params,
    solve_nz,
    sweep,
    tiled_params,
    wrn_params,
)
from hypernet_lib.book.tables import calculator_html, format_published
from hypernet_lib.nn import (
    HyperConvGenerator,
    MNISTConvNet,
    MNISTHyperNet,
    TiledConvEmbeddings,
    direct_eq2,
    kernel_from_tiles,
)

FAST = settings(max_examples=40, deadline=None)
small = st.integers(1, 24)


def _cifar():
    import hypernet_lib.nn
    return hypernet_lib.nn


def _hyperlstm():
    import hypernet_lib.nn
    return hypernet_lib.nn


def meta(factory):
    """Build a module on the meta device: counting needs shapes, not memory."""
    with torch.device("meta"):
        return factory()


# ------------------------------------------------------------------ (a) ordinary layers

@FAST
@given(n_in=small, n_out=small, f=st.integers(1, 7), bias=st.booleans())
def test_conv2d_params_match_nn_conv2d(n_in, n_out, f, bias):
    assert conv2d_params(n_in, n_out, f, bias) == count_params(meta(lambda: nn.Conv2d(n_in, n_out, f, bias=bias)))


@FAST
@given(n_in=st.integers(1, 3000), n_out=st.integers(1, 3000), bias=st.booleans())
def test_linear_params_match_nn_linear(n_in, n_out, bias):
    assert linear_params(n_in, n_out, bias) == count_params(meta(lambda: nn.Linear(n_in, n_out, bias=bias)))


@FAST
@given(c=st.integers(1, 2048))
def test_norm_params(c):
    assert batchnorm_params(c) == count_params(nn.BatchNorm2d(c))
    assert layernorm_params(c) == count_params(nn.LayerNorm(c))


# ------------------------------------------------------------------ (b) linear head

@FAST
@given(n_z=st.integers(1, 64), n=st.integers(1, 50_000), bias=st.booleans())
def test_linear_head_params_match_module(n_z, n, bias):
    head = meta(lambda: nn.Linear(n_z, n, bias=bias))
    z = meta(lambda: nn.Parameter(torch.empty(n_z)))
    assert linear_head_params(n_z, n, bias) == count_params(head) + z.numel()
    assert linear_head_params(n_z, n, bias, with_z=False) == count_params(head)


def test_linear_head_is_nz_plus_one_copies_of_the_layer():
    # per-layer generator sizes of the CIFAR-100 net are exactly 17 × the weights they generate
    per_layer = {1_728: 29_376, 73_728: 1_253_376, 294_912: 5_013_504, 1_179_648: 20_054_016,
            2_359_296: 40_108_032, 524_288: 8_912_896, 51_200: 870_400}
    for n, reported in per_layer.items():
        assert linear_head_params(16, n, with_z=False) == reported == 17 * n


# ------------------------------------------------------------------ (c) Ha's generator

@FAST
@given(n_z=st.integers(1, 32), n_in=small, n_out=small, f=st.integers(1, 7),
       d=st.one_of(st.none(), st.integers(1, 32)), layers=st.integers(0, 6))
def test_ha_generator_params_match_module(n_z, n_in, n_out, f, d, layers):
    gen = meta(lambda: HyperConvGenerator(f, n_in, n_out, n_z, d))
    zs = layers * n_z
    assert ha_generator_params(n_z, n_in, n_out, f, d, n_layers=layers) == count_params(gen) + zs


def test_ha_generator_formula_is_the_papers():
    # N_z·D + d(N_z+1)N_in + f·N_out·f(d+1), written out for one odd configuration
    n_z, d, n_in, n_out, f, D = 5, 3, 7, 11, 3, 2
    assert ha_generator_params(n_z, n_in, n_out, f, d, D) == n_z * D + d * (n_z + 1) * n_in + f * n_out * f * (d + 1)


# ------------------------------------------------------------------ (d) tiling

@FAST
@given(shapes=st.lists(st.tuples(st.integers(1, 4), st.integers(1, 4)), min_size=1, max_size=5),
       chunk=st.sampled_from([2, 4, 16]), n_z=st.integers(1, 16), f=st.sampled_from([1, 3]))
def test_tiled_params_match_shared_generator_plus_embeddings(shapes, chunk, n_z, f):
    kernel_shapes = [(r * chunk, c * chunk) for r, c in shapes]

    def build():
        gen = HyperConvGenerator(f, chunk, chunk, n_z)
        embs = nn.ModuleList(TiledConvEmbeddings(o, i, chunk, chunk, n_z) for o, i in kernel_shapes)
        return nn.ModuleDict({"generator": gen, "embeddings": embs})

    assert tiled_params(kernel_shapes, n_z, f, chunk, chunk) == count_params(meta(build))


def test_num_tiles_examples_and_errors():
    assert num_tiles(64, 32) == 8 and num_tiles(32, 32) == 4 and num_tiles(16, 16) == 1
    with pytest.raises(ValueError, match="multiples"):
        num_tiles(24, 16)


# ------------------------------------------------------------------ schemes as real modules

@settings(max_examples=25, deadline=None)
@given(scheme=st.sampled_from(SCHEMES), r=st.integers(1, 3), c=st.integers(1, 3),
       f=st.sampled_from([1, 3, 5]), n_z=st.integers(1, 12), layers=st.integers(1, 4))
def test_scheme_params_match_scheme_stack(scheme, r, c, f, n_z, layers):
    chunk = 4
    m = build_scheme(scheme, c * chunk, r * chunk, f, n_z, None, layers, chunk, device="meta")
    assert scheme_params(scheme, c * chunk, r * chunk, f, n_z, None, layers, chunk) == count_params(m)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_scheme_stack_generates_kernels_of_the_right_shape(scheme):
    torch.manual_seed(0)
    m = build_scheme(scheme, 32, 16, 3, 4, None, 3, chunk=8)
    assert m().shape == (3, 16, 32, 3, 3)


def test_shared_scheme_equals_eq2_per_layer():
    torch.manual_seed(0)
    m = build_scheme("ha_shared", 5, 6, 3, 4, 3, n_layers=4)
    g = m.generator
    k = m()
    for j in range(4):
        ref = direct_eq2(m.z[j], g.w_in, g.b_in, g.w_out, g.b_out, 3, 6)
        torch.testing.assert_close(k[j], ref)


def test_tiled_scheme_equals_tiles_assembled_one_layer_at_a_time():
    torch.manual_seed(0)
    m = build_scheme("tiled", 8, 12, 3, 4, None, n_layers=2, chunk=4)
    k = m()
    for j, emb in enumerate(m.embeddings):
        torch.testing.assert_close(k[j], kernel_from_tiles(m.generator(emb.z)))


def test_linear_head_scheme_equals_each_head():
    torch.manual_seed(0)
    m = build_scheme("linear_head", 3, 2, 3, 5, None, n_layers=2)
    k = m()
    for j in range(2):
        torch.testing.assert_close(k[j], m.heads[j](m.z[j]).view(2, 3, 3, 3))


def test_unknown_scheme_and_bad_sizes_have_clear_errors():
    with pytest.raises(ValueError, match="unknown scheme 'hyper'.*ordinary"):
        scheme_params("hyper", 16, 16)
    with pytest.raises(ValueError, match="n_z must be a positive integer"):
        scheme_params("ha", 16, 16, n_z=0)
    with pytest.raises(ValueError, match="multiples"):
        scheme_params("tiled", 24, 24, chunk=16)
    with pytest.raises(ValueError, match="unknown published"):
        build_published("resnet50")


# ------------------------------------------------------------------ break-even and compression

@pytest.mark.parametrize("f,n_z", [(3, 4), (3, 64), (7, 4), (1, 8), (5, 16)])
def test_break_even_width_closed_form_matches_scan(f, n_z):
    c_star = ha_break_even_width_closed_form(f, n_z)
    c = break_even_width("ha", f, n_z)
    assert c == math.ceil(c_star)
    assert scheme_params("ha", c, c, f, n_z) <= scheme_params("ordinary", c, c, f, n_z)
    if c > 1:
        assert scheme_params("ha", c - 1, c - 1, f, n_z) > scheme_params("ordinary", c - 1, c - 1, f, n_z)
    D = 12
    assert break_even_width("ha_shared", f, n_z, n_layers=D) == math.ceil(
        ha_break_even_width_closed_form(f, n_z, D, shared=True))


@FAST
@given(c=st.integers(1, 512), f=st.integers(1, 7), n_z=st.integers(1, 64))
def test_linear_head_never_compresses(c, f, n_z):
    assert compression_ratio("linear_head", c, c, f, n_z) < 1 / n_z
    assert break_even_width("linear_head", f, n_z, max_width=256) is None


def test_break_even_nz_is_the_largest_nz_that_still_compresses():
    nz = break_even_nz("ha_shared", 64, 64, 3, n_layers=12)
    assert scheme_params("ha_shared", 64, 64, 3, nz, n_layers=12) <= 12 * 64 * 64 * 9
    assert scheme_params("ha_shared", 64, 64, 3, nz + 1, n_layers=12) > 12 * 64 * 64 * 9
    assert break_even_nz("linear_head", 64, 64) is None


def test_sweep_and_calculator():
    s = sweep("width", [16, 24, 32], n_z=4, n_layers=2)
    assert math.isnan(s["tiled"][1]) and s["ordinary"][2] == 2 * 32 * 32 * 9
    rows = calculator_rows(16, 16, 7, 4)
    assert [r["params"] for r in rows][:3] == [12_544, 5 * 12_544 + 4, 4_244]
    assert "4,244" in calculator_html(16, 16, 7, 4)
    with pytest.raises(ValueError, match="sweep over"):
        sweep("depth", [1])


# ------------------------------------------------------------------ MNIST (paper §4.1), and the common 3,524 slip

def test_mnist_hypernetwork_is_4244_and_3524_is_a_slip():
    net = MNISTHyperNet()
    n = count_params(net.hyper_parameters())
    assert n == mnist_hyper_params() == count_published("mnist_hyper_params") == 4_244
    assert MNISTConvNet().conv2.weight.numel() == 12_544
    first, second, z = 4 * 64 + 64, 4 * 784 + 784, 4
    assert (first, second) == (320, 3_920) and first + second + z == 4_244
    # a common slip: writing the second layer as 4×(16×7×7) + 16×7×7 but evaluating it as 3,200
    assert 4 * (16 * 7 * 7) + 16 * 7 * 7 == second != 3_200
    assert z + first + 3_200 == 3_524
    # the rest of the net is ordinary in both: the difference is exactly the kernel
    assert count_params(MNISTConvNet()) - count_params(net) == 12_544 - 4_244


# ------------------------------------------------------------------ (e) LSTM / HyperLSTM

@FAST
@given(n_x=st.integers(1, 64), n_h=st.integers(1, 64))
def test_lstm_params_match_nn_lstmcell(n_x, n_h):
    assert lstm_params(n_x, n_h, n_biases=2) == count_params(meta(lambda: nn.LSTMCell(n_x, n_h)))


def test_ptb_formulas_against_published():
    for key in ("ptb_ln_lstm_params", "ptb_hyperlstm_params", "ptb_ln_hyperlstm_params"):
        p = PUBLISHED[key]
        assert p.rounds_to_published(p.formula()), key
    # nn.LSTM has two bias vectors (b_ih, b_hh): 4,258,050 = 4.26 M; with one bias per gate,
    # as in Ha's TensorFlow cell, it is 4,254,050 = the printed 4.25 M.
    lstm = PUBLISHED["ptb_lstm_params"]
    assert lstm.formula() == 4_258_050 and not lstm.rounds_to_published(lstm.formula())
    one_bias = char_lm_params(50, lstm_params(50, 1000, n_biases=1), 1000)
    assert one_bias == 4_254_050 and lstm.rounds_to_published(one_bias)
    # Large Embedding: N_z = 16 gives 5.09 M, not the printed 5.06 M (see chapter 3);
    # 5.06 M is what N_z = 14 would give under the same accounting.
    p = PUBLISHED["ptb_large_embedding_params"]
    assert p.formula() == 5_085_170 and not p.rounds_to_published(p.formula())
    n14 = char_lm_params(50, hyperlstm_params(50, 1000, 128, 14, layer_norm=True), 1000)
    assert p.rounds_to_published(n14)


@settings(max_examples=20, deadline=None)
@given(n_x=st.integers(1, 40), n_h=st.integers(1, 40), n_hh=st.integers(1, 16), n_z=st.integers(1, 8),
       ln=st.booleans())
def test_hyperlstm_params_match_module(n_x, n_h, n_hh, n_z, ln):
    hl = _hyperlstm()
    m = meta(lambda: hl.HyperLSTMLayer(n_x, n_h, n_hh, n_z, use_layer_norm=ln))
    assert hyperlstm_params(n_x, n_h, n_hh, n_z, layer_norm=ln) == count_params(m)


@settings(max_examples=15, deadline=None)
@given(n_x=st.integers(1, 40), n_h=st.integers(1, 40))
def test_lstm_params_match_library_lstms(n_x, n_h):
    hl = _hyperlstm()
    assert lstm_params(n_x, n_h, 2) == count_params(meta(lambda: hl.TorchLSTMLayer(n_x, n_h)))
    assert lstm_params(n_x, n_h, 0, layer_norm=True) == count_params(meta(lambda: hl.LayerNormLSTMLayer(n_x, n_h)))


# ------------------------------------------------------------------ memory and disk

def test_generation_memory_counts_generated_weights_and_saved_activations():
    torch.manual_seed(0)
    D, cin, cout, f, n_z = 3, 8, 6, 3, 4
    ordinary = build_scheme("ordinary", cin, cout, f, n_z, None, D)
    mem = generation_memory(ordinary)
    assert mem["generated_bytes"] == 0 and mem["saved_bytes"] == 0
    assert mem["param_bytes"] == 4 * D * cout * cin * f * f
    shared = build_scheme("ha_shared", cin, cout, f, n_z, None, D)
    mem = generation_memory(shared)
    assert mem["param_bytes"] == 4 * count_params(shared)
    assert mem["generated_bytes"] == 4 * D * cout * cin * f * f
    # backward needs a = W_i z + B_i, (D, N_in, d)
    assert mem["saved_bytes"] >= 4 * D * cin * n_z


def test_checkpoint_bytes_is_four_bytes_per_parameter_plus_overhead():
    m = build_scheme("ha_shared", 16, 16, 3, 8, None, 4)
    n = checkpoint_bytes(m)
    assert 4 * count_params(m) < n < 4 * count_params(m) + 4096


# ------------------------------------------------------------------ published configs from other modules

@pytest.mark.parametrize("variant,exact", [("naive_full", 85_160_676), ("standard", 5_015_140)])
def test_cifar100_nets(variant, exact):
    cifar = _cifar()
    assert count_params(meta(lambda: cifar.build_cifar_net(variant))) == exact == cifar100_net_params(variant)


def test_published_table_quotes_only_the_paper():
    assert all(p.source.startswith("Ha et al.") for p in PUBLISHED.values())


@pytest.mark.parametrize("variant", CIFAR100_VARIANTS)
def test_cifar100_variants_match_closed_form(variant):
    cifar = _cifar()
    assert count_params(meta(lambda: cifar.build_cifar_net(variant))) == cifar100_net_params(variant)


@pytest.mark.parametrize("variant,n_z", [("naive_full", 4), ("chunked_full", 8), ("partial", 32)])
def test_cifar100_variants_other_nz(variant, n_z):
    cifar = _cifar()
    assert count_params(meta(lambda: cifar.build_cifar_net(variant, n_z=n_z))) == cifar100_net_params(variant, n_z)


def test_naive_full_is_17x_its_weights_by_construction():
    cifar = _cifar()
    net = meta(lambda: cifar.build_cifar_net("naive_full"))
    std = meta(lambda: cifar.build_cifar_net("standard"))
    n_weights = count_params(std.source)
    assert count_params(net.source) == 17 * n_weights + 8 * 16
    # z, biases and batch norm: 6,180
    assert count_params(net) - 17 * n_weights == 8 * 16 + 1_472 + 1_636 + 2 * 1_472 == 6_180


@pytest.mark.parametrize("key,exact", [("wrn40_1_params", 563_930), ("wrn40_1_hyper_params", 97_770)])
def test_wrn40_1_matches_closed_form(key, exact):
    _cifar()
    n = count_published(key)
    assert n == exact == PUBLISHED[key].formula()
    # 0.564 M / 0.098 M against the printed 0.563 M / 0.097 M: within 1 % (the chapter explains)
    p = PUBLISHED[key]
    assert not p.rounds_to_published(n)
    assert abs(n - p.published * p.unit) / (p.published * p.unit) < 0.01


@pytest.mark.parametrize("depth,width", [(16, 1), (16, 2), (28, 2), (40, 4)])
def test_wrn_closed_form_other_sizes(depth, width):
    cifar = _cifar()
    for hyper in (False, True):
        m = meta(lambda: cifar.build_wrn(depth, width, hyper=hyper, num_classes=100))
        assert count_params(m) == wrn_params(depth, width, 100, hyper=hyper)


def test_generation_memory_of_cifar_nets():
    cifar = _cifar()
    torch.manual_seed(0)
    std, chunked = cifar.build_cifar_net("standard", width=0.25), cifar.build_cifar_net("chunked_full", width=0.25)
    weights_bytes = 4 * count_params(std.source)
    assert generation_memory(std, lambda m: m.source())["generated_bytes"] == 0
    mem = generation_memory(chunked, lambda m: m.source())
    # the same weights exist, however made; a layer cropped from chunks (conv1) is a view that keeps
    # its uncropped storage alive, so generation holds between the weights' size and two copies of
    # all chunks (the tensor of chunks, and the assembled, rescaled layers)
    g = chunked.source.generator
    all_chunks = 4 * chunked.source.n_chunks * g.n_out * g.n_in * g.f * g.f
    assert weights_bytes <= mem["generated_bytes"] <= 2 * all_chunks
    assert mem["param_bytes"] == 4 * count_params(chunked) < 4 * count_params(std)


@pytest.mark.parametrize("key,exact", [
    ("ptb_lstm_params", 4_258_050), ("ptb_ln_lstm_params", 4_260_050), ("ptb_hyperlstm_params", 4_911_874),
    ("ptb_ln_hyperlstm_params", 4_922_642), ("ptb_large_embedding_params", 5_085_170)])
def test_ptb_models_match_closed_form(key, exact):
    _hyperlstm()
    assert count_published(key) == exact == PUBLISHED[key].formula()


def test_hyperlstm_adds_about_0_66_m_to_the_lstm():
    # the hyper machinery (hyper cell, z and d projections) without the main weights
    extra = hyperlstm_params(50, 1000, 128, 4) - 4 * (1000 * 1000 + 1000 * 50)
    hyper_cell = lstm_params(1050, 128, 1)
    assert extra == hyper_cell + 4 * (2 * (128 * 4 + 4) + 128 * 4) + 4 * (3 * 4 * 1000 + 1000)
    assert 0.65e6 < extra < 0.67e6


def test_published_rounding_and_formatting():
    p = PUBLISHED["wrn40_1_params"]
    assert p.digits == 3 and p.rounds_to_published(563_499) and not p.rounds_to_published(563_500)
    assert format_published(p, 563_930) == "0.564 M"
    assert format_published(PUBLISHED["mnist_hyper_params"]) == "4,244"
    assert format_bytes(340_672_628) == "324.9 MiB"        # the 85 M-parameter net's checkpoint
    assert solve_nz(mnist_hyper_params(n_z=7), lambda nz: mnist_hyper_params(n_z=nz)) == 7


def test_architecture_lists_are_the_modules_and_published_numbers_are_paper_py():
    """counting reads the layer lists the nets are built from; the numbers it is compared with come from
    hypernet_lib.paper.  The architectures are written out here once more, as the test's own statement."""
    from hypernet_lib import paper
    from hypernet_lib.analysis import CIFAR100_CONVS, CIFAR100_FCS, linear_head_rows, wrn_kernel_shapes
    from hypernet_lib.nn import cifar_layer_specs, wrn_blocks
    assert CIFAR100_CONVS == ((3, 64), (64, 128), (128, 256), (256, 512), (512, 512))
    assert CIFAR100_FCS == ((512, 1024), (1024, 512), (512, 100))
    assert [r["layer"] for r in linear_head_rows()] == [s.name for s in cifar_layer_specs()]
    assert wrn_kernel_shapes(16, 1) == [(16, 16)] * 4 + [(32, 16)] + [(32, 32)] * 3 + [(64, 32)] + [(64, 64)] * 3
    assert wrn_blocks(16, 1)[2] == (16, 32, 2)
    # every published number of the table is paper.py's
    assert PUBLISHED["mnist_hyper_params"].published == paper.MNIST["hyper_params"]
    assert (PUBLISHED["wrn40_1_params"].published, PUBLISHED["wrn40_1_hyper_params"].published) == (
        paper.CIFAR10_WRN40_1["params_m_plain"], paper.CIFAR10_WRN40_1["params_m_hyper"])
    assert [p.published for k, p in PUBLISHED.items() if k.startswith("ptb_")] == [r[2] for r in paper.PTB.values()]
    assert [p.what for p in PUBLISHED.values()] == [
        "MNIST hypernetwork: Eq. 2 generator + z (ordinary conv2 kernel: 12,544)", "CIFAR-10 WRN 40-1",
        "hyper WRN 40-1 (N_z = d = 64, 16×16×3×3 tiles)", "PTB character LSTM, 1000 units (nn.LSTM)",
        "layer-norm LSTM, 1000 units", "HyperLSTM 1000 (hyper cell 128, N_z = 4)", "layer-norm HyperLSTM 1000",
        "layer-norm HyperLSTM 1000, Large Embedding (N_z = 16)"]


@pytest.mark.parametrize("cell,n_z_key", [("lstm", "n_z"), ("ln-hyperlstm", "n_z"), ("ln-hyperlstm", "n_z_large")])
def test_paper_ptb_config_is_the_set_up_in_paper_py(cell, n_z_key):
    """nn may not import paper.py, so paper_ptb_config states the set-up again; here they must agree."""
    from hypernet_lib import paper
    from hypernet_lib.nn import paper_ptb_config
    setup = paper.PTB_SETUP
    c = meta(lambda: paper_ptb_config(cell, setup[n_z_key])).config
    assert (c["vocab_size"], c["hidden_size"], c["hyper_num_units"], c["n_z"], c["embedding_size"],
            c["num_layers"]) == (setup["vocab"], setup["hidden"], setup["hyper_hidden"], setup[n_z_key], 0, 1)


def test_generation_memory_needs_parameters():
    with pytest.raises(ValueError, match="has no parameters"):
        generation_memory(nn.ReLU())


@settings(max_examples=20, deadline=None)
@given(f=st.sampled_from([3, 5, 7]), channels=st.integers(1, 24), n_z=st.integers(1, 16),
       d=st.one_of(st.none(), st.integers(1, 16)))
def test_mnist_hyper_params_match_module_for_other_sizes(f, channels, n_z, d):
    net = meta(lambda: MNISTHyperNet(f=f, channels=channels, n_z=n_z, d=d))
    assert mnist_hyper_params(n_z, f, channels, d) == count_params(net.hyper_parameters())


@settings(max_examples=15, deadline=None)
@given(cell=st.sampled_from(["lstm", "ln-lstm", "hyperlstm", "ln-hyperlstm"]), vocab=st.integers(2, 60),
       hidden=st.integers(1, 48), emb=st.sampled_from([0, 8]), n_hh=st.integers(1, 16), n_z=st.integers(1, 8))
def test_char_lm_params_match_module(cell, vocab, hidden, emb, n_hh, n_z):
    hl = _hyperlstm()
    m = meta(lambda: hl.CharLM(vocab, cell=cell, hidden_size=hidden, embedding_size=emb,
                               hyper_num_units=n_hh, n_z=n_z))
    n_x = emb or vocab
    cell_params = {"lstm": lstm_params(n_x, hidden, 2),
                   "ln-lstm": lstm_params(n_x, hidden, 0, layer_norm=True),
                   "hyperlstm": hyperlstm_params(n_x, hidden, n_hh, n_z),
                   "ln-hyperlstm": hyperlstm_params(n_x, hidden, n_hh, n_z, layer_norm=True)}[cell]
    assert char_lm_params(vocab, cell_params, hidden, embedding=emb or None) == count_params(m)

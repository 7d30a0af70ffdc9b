"""Tests for hypernet_lib.cifar: exact parameter counts, batched chunk generation against a slow
per-chunk loop, gradients, shapes, init scale, errors, and the CIFAR-100 data path on a fixture."""
import math

import pytest
import torch

from hypernet_lib.analysis import TrainingTracker, checkpoint_mb, count_params, pca_trajectory
from hypernet_lib.data import make_augment
from hypernet_lib.nn import (VARIANTS, ChunkedHyperWeights, WideResNet, assemble_chunks_slow, build_cifar_net,
                             build_wrn, cifar_layer_specs)


# ------------------------------------------------------------------------------- parameter counts
@pytest.fixture(scope="module")
def naive_full():
    torch.manual_seed(0)
    return build_cifar_net("naive_full")


def test_naive_full_counts_exactly_seed002(naive_full):
    assert count_params(naive_full) == 85_160_676
    # seed 002's per-layer head counts ("hyper_conv1: 29,376 ... hyper_fc3: 870,400") = 17·N each
    seed_heads = {"conv1": 29_376, "conv2": 1_253_376, "conv3": 5_013_504, "conv4": 20_054_016,
                  "conv5": 40_108_032, "fc1": 8_912_896, "fc2": 8_912_896, "fc3": 870_400}
    for name, head in naive_full.source.heads.items():
        assert count_params(head) == seed_heads[name]
    # its "z + biases + BN: 6,180"
    rest = count_params(naive_full) - sum(seed_heads.values())
    assert rest == 6_180 == 8 * 16 + count_params(naive_full.biases) + count_params(naive_full.bns)


def test_standard_and_ratio(naive_full):
    std = count_params(build_cifar_net("standard"))
    assert std == 5_015_140
    assert 16.9 < count_params(naive_full) / std < 17.0        # the "17×" is (N_z + 1) by construction


def test_counts_agree_with_counting_module(naive_full):
    from hypernet_lib.analysis import counting
    assert counting.cifar100_net_params("standard") == count_params(build_cifar_net("standard"))
    assert counting.cifar100_net_params("naive_full") == count_params(naive_full)


def test_chunked_and_partial_counts():
    std = count_params(build_cifar_net("standard"))
    full = build_cifar_net("chunked_full")
    part = build_cifar_net("partial")
    gen = 64 * 65 * 16 + 3 * 16 * 3 * 65                          # d(N_z+1)N_in + f·N_out·f(d+1)
    # chunks: conv 4+32+128+512+1024 (conv1's 3 inputs padded to one 16-wide tile); fc 22·11, 11·22, 3·11
    assert full.source.n_chunks == 1700 + 242 + 242 + 33 == 2217
    # + one weight-normalisation gain for each of the three generated fc layers
    assert count_params(full) == 2217 * 64 + gen + 3 + 3_108 + 2_944 == 223_863
    assert count_params(full) <= std / 4                       # the target: at most 1/4 of (a)
    # partial: conv3-conv5 tiled (128 + 512 + 1024 chunks); conv1, conv2 and all three FCs ordinary
    ordinary = 64 * 3 * 9 + 128 * 64 * 9 + 1024 * 512 + 512 * 1024 + 100 * 512
    assert count_params(part) == (128 + 512 + 1024) * 64 + gen + ordinary + 3_108 + 2_944 == 1_363_700


def test_wrn_counts_match_paper():
    from hypernet_lib.analysis import counting
    plain, hyper = count_params(build_wrn(40, 1)), count_params(build_wrn(40, 1, hyper=True))
    assert plain == 563_930 and hyper == 97_770
    assert abs(plain / 0.563e6 - 1) < 0.005                    # Table 2: 0.563 M
    assert abs(hyper / 0.097e6 - 1) < 0.01                     # Table 2: 0.097 M
    assert plain == counting.wrn_params(40, 1) and hyper == counting.wrn_params(40, 1, hyper=True)
    assert build_wrn(40, 1, hyper=True).kernels.n_chunks == 242


# ------------------------------------------------------------------------------ chunked generation
def test_batched_chunks_equal_slow_loop():
    torch.manual_seed(1)
    net = build_cifar_net("chunked_full", width=0.25, num_classes=10)
    fast = net.source()
    slow = assemble_chunks_slow(net.source)
    for s in net.specs:
        assert fast[s.name].shape == s.shape
        torch.testing.assert_close(fast[s.name], slow[s.name], rtol=1e-5, atol=1e-6)


def test_chunked_fc_layers_are_weight_normalised():
    """W^j = γ_j · sqrt(2/fan_in) · V^j / rms(V^j) for fc layers; convs (batch norm follows) untouched."""
    torch.manual_seed(1)
    net = build_cifar_net("chunked_full", width=0.25, num_classes=10)
    src = net.source
    assert src.normalised == ["fc1", "fc2", "fc3"] and src.gain.shape == (3,)
    with torch.no_grad():
        src.gain.copy_(torch.tensor([0.5, 2.0, 3.0]))
        torch.manual_seed(2)
        src.z.normal_()
    torch.manual_seed(1)
    plain = ChunkedHyperWeights(src.specs, normalise_fc=False)
    plain.load_state_dict({k: v for k, v in src.state_dict().items() if k != "gain"})
    assert not hasattr(plain, "gain") and plain.normalised == []
    w, v = src(), plain()
    for s, gain in zip(net.fcs, (0.5, 2.0, 3.0)):
        rms = w[s.name].square().mean().sqrt().item()
        assert rms == pytest.approx(gain * math.sqrt(2 / s.fan_in), rel=1e-5)
        # the same direction as the unnormalised weight: only its scale is set
        torch.testing.assert_close(w[s.name] / rms, v[s.name] / v[s.name].square().mean().sqrt())
    for s in net.convs:
        torch.testing.assert_close(w[s.name], v[s.name], rtol=0, atol=0)
    # a generator whose chunks grow tenfold changes the convs tenfold and the fc layers not at all
    with torch.no_grad():
        src.generator.w_out.mul_(10)
        src.generator.b_out.mul_(10)
    grown = src()
    for s in net.specs:
        torch.testing.assert_close(grown[s.name], w[s.name] * (10 if s.kind == "conv" else 1), rtol=1e-5, atol=1e-6)
    # the slow reference applies the same normalisation
    for name, slow in assemble_chunks_slow(src).items():
        torch.testing.assert_close(grown[name], slow, rtol=1e-5, atol=1e-6)
    # partial generates convs only: no gain, so its saved weights keep their keys
    part = build_cifar_net("partial", width=0.25)
    assert not any("gain" in k for k in part.state_dict())
    with pytest.raises(ValueError, match="normalise_fc must be True or False"):
        ChunkedHyperWeights(src.specs, normalise_fc="yes")


def test_generator_called_once_per_forward():
    net = build_cifar_net("chunked_full", width=0.25)
    calls = []
    net.source.generator.register_forward_hook(lambda m, i, o: calls.append(i[0].shape))
    net(torch.randn(2, 3, 32, 32))
    assert calls == [torch.Size([net.source.n_chunks, 64])]    # ONE batched call over every chunk


def test_wrn_hyper_kernels_equal_per_chunk_loop():
    torch.manual_seed(2)
    m = build_wrn(40, 1, hyper=True)
    ks = m.kernels()
    assert len(ks) == 36
    g, z = m.kernels.generator, m.kernels.z
    o = 0
    for k, (r, c) in zip(ks, m.kernels.grids):
        for a in range(r):
            for b in range(c):
                torch.testing.assert_close(k[16 * a:16 * (a + 1), 16 * b:16 * (b + 1)], g(z[o + a * c + b]))
        o += r * c


# ------------------------------------------------------------------------------- the one tiling
def test_one_tiling_grid_split_and_crop():
    """nn/tiling.py: exact or cropped grids, FC blocks of (n_out·f)×(n_in·f), the split by layer."""
    from hypernet_lib.nn import layer_grid, tile_grid, tiles_by_layer
    assert tile_grid(64, 32, 16, 16) == (4, 2) == tile_grid(64, 32, 16, 16, crop=True)
    assert tile_grid(64, 3, 16, 16, crop=True) == (4, 1)                  # conv1: 3 inputs, one cropped column
    with pytest.raises(ValueError, match="cannot be tiled"):
        tile_grid(64, 3, 16, 16)
    assert layer_grid("conv", 64, 3, 16, 16, 3) == (4, 1)
    assert layer_grid("fc", 1024, 512, 16, 16, 3) == (22, 11)             # 48×48 blocks
    with pytest.raises(ValueError, match="unknown kind 'rnn'"):
        layer_grid("rnn", 4, 4, 16, 16, 3)
    k = torch.arange(7 * 2 * 2 * 1 * 1.0).view(7, 2, 2, 1, 1)
    a, b = tiles_by_layer(k, [(1, 3), (2, 2)])
    assert a.shape == (1, 3, 2, 2, 1, 1) and b.shape == (2, 2, 2, 2, 1, 1)
    assert torch.equal(b[1, 0], k[3 + 2]) and a.data_ptr() == k.data_ptr()   # chunk r·C + c at (r, c); a view
    with pytest.raises(ValueError, match=r"chunks must have shape \(6, n_out, n_in, f, f\), got \(7, 2, 2, 1, 1\)"):
        tiles_by_layer(k, [(1, 3), (1, 3)])


def test_cifar_and_wrn_take_their_grids_from_the_one_tiling():
    from hypernet_lib.nn import layer_grid, tile_grid, wrn_kernel_shapes
    src = build_cifar_net("chunked_full", width=0.25).source
    assert src.grids == {s.name: layer_grid(s.kind, s.out_features, s.in_features, 16, 16, 3) for s in src.specs}
    m = build_wrn(16, 2, hyper=True)
    assert m.kernels.grids == [tile_grid(o, i, 16, 16) for o, i in wrn_kernel_shapes(16, 2)]
    assert [tuple(k.shape[:2]) for k in m.all_kernels()] == wrn_kernel_shapes(16, 2)


def test_wrn_layout_is_the_one_the_net_is_built_from():
    from hypernet_lib.nn import wrn_blocks, wrn_widths
    m = build_wrn(16, 2)
    assert wrn_widths(2) == [16, 32, 64, 128]
    assert [(b.bn1.num_features, b.bn2.num_features, b.stride) for b in m.blocks] == wrn_blocks(16, 2) == [
        (16, 32, 1), (32, 32, 1), (32, 64, 2), (64, 64, 1), (64, 128, 2), (128, 128, 1)]
    assert [tuple(k.shape[:2]) for k in m.all_kernels()] == [(32, 16), (32, 32), (32, 32), (32, 32), (64, 32),
                                                             (64, 64), (64, 64), (64, 64), (128, 64), (128, 128),
                                                             (128, 128), (128, 128)]
    with pytest.raises(ValueError, match="cannot be tiled"):
        WideResNet(16, 1, hyper=True, tile=12)


# ------------------------------------------------------------------------------------ gradients
@pytest.mark.parametrize("variant", ["naive_full", "partial", "chunked_full"])
def test_gradients_reach_embeddings_and_generator(variant):
    torch.manual_seed(3)
    net = build_cifar_net(variant, width=0.25)
    loss = torch.nn.functional.cross_entropy(net(torch.randn(4, 3, 32, 32)), torch.arange(4))
    loss.backward()
    for name, p in net.named_parameters():
        if "bns" in name or "biases" in name:
            continue
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    if variant != "naive_full":
        src = net.source if variant == "chunked_full" else net.source.sources[1]
        # every chunk's embedding gets a gradient (no chunk is generated and then cropped away entirely)
        assert (src.z.grad.abs().sum(1) > 0).all()


# ------------------------------------------------------------------------------ shapes and scale
@pytest.mark.parametrize("variant", VARIANTS)
def test_forward_shapes_and_init_scale(variant):
    torch.manual_seed(4)
    net = build_cifar_net(variant, width=0.5)
    assert net(torch.randn(3, 3, 32, 32)).shape == (3, 100)
    for row in net.weight_stats():
        assert 0.7 < row["std_over_kaiming"] < 1.4, row       # Kaiming-like at the start
    assert net.conv1_filters().shape == (32, 3, 3, 3)
    net.eval()
    assert net(torch.randn(1, 3, 32, 32)).shape == (1, 100)


def test_analysis_helpers():
    net = build_cifar_net("chunked_full", width=0.25)
    zs = net.z_embeddings()
    assert list(zs) == [s.name for s in net.specs]
    assert sum(z.shape[0] for z in zs.values()) == net.source.n_chunks
    assert net.z_flat().numel() == net.source.n_chunks * 64
    assert set(net.z_norms()) == set(zs)
    assert build_cifar_net("standard", width=0.25).z_flat().numel() == 0
    naive = build_cifar_net("naive_full", width=0.25)
    assert naive.z_flat().numel() == 8 * 16
    part = build_cifar_net("partial", width=0.25)
    kinds = {r["layer"]: r["source"] for r in part.weight_stats()}
    assert kinds == {"conv1": "ordinary", "conv2": "ordinary", "conv3": "chunked", "conv4": "chunked",
                     "conv5": "chunked", "fc1": "ordinary", "fc2": "ordinary", "fc3": "ordinary"}


def test_determinism():
    torch.manual_seed(5)
    a = build_cifar_net("chunked_full", width=0.25)
    torch.manual_seed(5)
    b = build_cifar_net("chunked_full", width=0.25)
    x = torch.randn(2, 3, 32, 32)
    a.eval(), b.eval()
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_weights_from_outside_replace_the_sources():
    """forward(x, weights): the layers named in weights use them, the others the source's (param_shapes)."""
    torch.manual_seed(0)
    net = build_cifar_net("partial", num_classes=10, width=0.125).eval()
    specs = cifar_layer_specs(10, 0.125)
    assert net.param_shapes == {s.name: s.shape for s in specs} == net.source.param_shapes
    x = torch.randn(2, 3, 32, 32)
    own = net.generated_weights()
    torch.testing.assert_close(net(x, own), net(x), rtol=0, atol=0)          # all eight, as generated
    other = {"conv3": torch.randn(specs[2].shape) * 0.1, "fc3": torch.zeros(specs[-1].shape)}
    out = net(x, other)
    torch.testing.assert_close(out, net.biases["fc3"].detach().expand(2, 10))   # fc3's W = 0: logits = bias
    with pytest.raises(ValueError, match=r"weights\['conv1'\] must have shape \(8, 3, 3, 3\), got \(3, 8, 3, 3\)"):
        net(x, {"conv1": own["conv1"].transpose(0, 1)})
    with pytest.raises(ValueError, match=r"CifarNet takes no weight named 'conv6'; it takes conv1 \(8, 3, 3, 3\)"):
        net(x, {"conv6": own["conv1"]})



def test_wrn_forward_uses_the_generated_kernels(monkeypatch):
    """Output shape of both WRNs, and: the 3×3 convs of the hyper WRN run with exactly the
    kernels its generator makes (spied on F.conv2d), and gradients reach z and the generator."""
    torch.manual_seed(3)
    x = torch.randn(2, 3, 32, 32)
    for hyper in (False, True):
        m = build_wrn(16, 1, hyper=hyper, num_classes=10).eval()
        assert m(x).shape == (2, 10)
    m = build_wrn(16, 1, hyper=True, num_classes=10).eval()
    with torch.no_grad():
        expected = m.all_kernels()
    used, real = [], torch.nn.functional.conv2d

    def spy(inp, weight, *args, **kwargs):
        used.append(weight.detach().clone())
        return real(inp, weight, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "conv2d", spy)
    with torch.no_grad():
        m(x)
    monkeypatch.undo()
    assert torch.equal(used[0], m.conv1.weight)                 # conv1 is ordinary
    block_kernels = [w for w in used[1:] if w.shape[-1] == 3]   # the 1×1 shortcuts are ordinary
    assert len(block_kernels) == len(expected) == 12            # 3 groups · 2 blocks · 2 convs
    for w, k in zip(block_kernels, expected):
        assert torch.equal(w, k)
    m.train()
    m(x).square().mean().backward()
    assert m.kernels.z.grad.abs().sum() > 0 and m.kernels.generator.w_out.grad.abs().sum() > 0
    with torch.no_grad():                                       # new embeddings, new outputs
        before = m.eval()(x)
        m.kernels.z.add_(0.5)
        assert not torch.allclose(m(x), before)


def test_tracker_state_round_trip():
    torch.manual_seed(4)
    net = build_cifar_net("chunked_full", width=0.25, num_classes=10)
    tr = TrainingTracker(net)
    tr.snapshot("init")
    tr.snapshot("epoch 1")
    back = TrainingTracker.from_state(net, tr.state())
    assert back.labels == ["init", "epoch 1"] and len(back.z) == 2
    assert back.z_drift() == tr.z_drift()
    with pytest.raises(ValueError, match="lacks conv1"):
        TrainingTracker.from_state(net, {k: v for k, v in tr.state().items() if k != "conv1"})

# ------------------------------------------------------------------------------------------ errors
def test_unknown_variant_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown CIFAR net variant 'hyper'.*standard, naive_full, partial, chunked_full"):
        build_cifar_net("hyper")


def test_bad_input_shape_is_a_clear_error():
    net = build_cifar_net("standard", width=0.25)
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 3, H, W\)"):
        net(torch.randn(2, 1, 28, 28))


def test_bad_wrn_depth_and_width():
    with pytest.raises(ValueError, match="6n\\+4"):
        build_wrn(depth=41)
    with pytest.raises(ValueError, match="width must be > 0"):
        cifar_layer_specs(width=0)


# ------------------------------------------------------------------------------- data, end to end
def test_cifar100_fixture_end_to_end(tmp_path):
    from hypernet_lib import data as data_mod
    from hypernet_lib.training import image as train
    data_mod.write_cifar100_fixture(tmp_path, n_train=64, n_test=32, seed=0)
    data = data_mod.load_cifar100(root=tmp_path, download=False, val_size=16)
    assert data.x_train.shape[1:] == (3, 32, 32) and data.num_classes == 100
    torch.manual_seed(6)
    net = build_cifar_net("chunked_full", width=0.25)
    z0 = net.source.z.detach().clone()
    aug = lambda x, g: data_mod.random_flip(data_mod.random_crop(x, 4, g), g)
    hist = train.fit(net, data, epochs=1, batch_size=16, lr=1e-3, optimizer="adamw", weight_decay=1e-4,
                     schedule="cosine", clip=1.0, augment=aug, max_steps_per_epoch=1)
    assert math.isfinite(hist.train_loss[0]) and 0.0 <= hist.test_acc <= 1.0
    assert not torch.equal(net.source.z.detach(), z0)          # one step moved the chunk embeddings


# ------------------------------------------------------------------------------------ helpers
def test_augment_options_batched_and_seeded():
    x = torch.randn(8, 3, 32, 32)
    aug = make_augment(crop=4, flip=True, rotate=15, jitter=0.2, erase=1.0)
    a = aug(x, torch.Generator().manual_seed(0))
    b = aug(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    erased = make_augment(crop=0, flip=False, erase=1.0)(x, torch.Generator().manual_seed(1))
    assert ((erased == 0).all(1).flatten(1).sum(1) > 0).all()          # every image has a blanked patch
    assert torch.equal(make_augment(crop=0, flip=False)(x), x)


def test_pca_trajectory_and_checkpoint_size():
    snaps = [torch.tensor([float(t), 2.0 * t, 0.0]) for t in range(5)]  # a straight line
    coords, ratio = pca_trajectory(snaps)
    assert coords.shape == (5, 2) and ratio[0] > 0.999
    net = build_cifar_net("standard", width=0.25)
    mb = checkpoint_mb(net)
    assert 4 * count_params(net) / 1e6 < mb < 4 * count_params(net) / 1e6 + 0.2   # float32 + a little pickle


def test_chapter_data_choice_is_honest(data_root, monkeypatch, tmp_path):
    """smoke: the synthetic fixture; cpu offline: a labelled stand-in; full offline: an error."""
    import socket
    import tempfile
    from pathlib import Path

    from hypernet_lib.book.datasets import load_cifar100_or_standin
    from hypernet_lib.data import download as hd
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    data, kind = load_cifar100_or_standin("smoke")
    assert kind == "fixture" and "synthetic" in data.describe() and data.num_classes == 100
    # the fixture's files are not left behind (torch may keep its own cache folder there)
    assert list((tmp_path / "tmp").glob("cifar100-fixture-*")) == []
    assert data.x_train.sum().item() != 0                 # ... and the tensors do not need them
    with socket.socket() as s:                            # CIFAR-100's server, unreachable
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setitem(hd.SOURCES, "cifar100", hd.Source("cifar-100-python.tar.gz",
                                                          (f"http://127.0.0.1:{port}/c.tar.gz",), md5="0" * 32))
    with pytest.raises(hd.DataUnavailable):
        load_cifar100_or_standin("full")
    if not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    data, kind = load_cifar100_or_standin("cpu")
    assert kind == "stand-in" and "NOT CIFAR-100" in data.describe() and data.x_train.shape[1:] == (3, 32, 32)


def test_path_length_share_and_checkpoint_units():
    from hypernet_lib.analysis import checkpoint_mb, checkpoint_mib, path_length_share
    path = [torch.tensor([0.0, 0.0]), torch.tensor([3.0, 4.0]), torch.tensor([3.0, 4.0]), torch.tensor([3.0, 14.0])]
    assert path_length_share(path, 1) == pytest.approx(5 / 15)        # steps of length 5, 0, 10
    assert path_length_share(path, 3) == pytest.approx(1.0) and path_length_share(path, 0) == 0.0
    with pytest.raises(ValueError, match="between 0 and the 3 steps"):
        path_length_share(path, 4)
    m = torch.nn.Linear(300, 300)
    assert checkpoint_mib(m) * 2 ** 20 == pytest.approx(checkpoint_mb(m) * 1e6)
    assert checkpoint_mib(m) * 2 ** 20 > 300 * 301 * 4              # the fp32 weights, plus pickle overhead


@pytest.mark.parametrize("hyper", [False, True])
def test_wrn_takes_its_block_kernels_from_outside(hyper):
    """WideResNet follows the one convention: param_shapes names every 3×3 block kernel, forward(x, weights)
    uses the ones given and its own (ordinary or generated) for the rest."""
    torch.manual_seed(0)
    net = build_wrn(10, 1, hyper=hyper).eval()
    x = torch.randn(2, 3, 32, 32)
    ks = net.all_kernels()
    assert list(net.param_shapes) == [f"block{j}.conv{k}" for j in range(3) for k in (1, 2)]
    assert [tuple(k.shape) for k in ks] == [tuple(s) for s in net.param_shapes.values()]
    same = net(x, dict(zip(net.param_shapes, ks)))
    assert torch.equal(same, net(x))
    zero = net(x, {"block1.conv2": torch.zeros_like(ks[3])})
    assert not torch.equal(zero, same)
    with pytest.raises(ValueError, match=r"weights\['block0.conv1'\] must have shape \(16, 16, 3, 3\)"):
        net(x, {"block0.conv1": torch.zeros(3, 3)})
    with pytest.raises(ValueError, match="WideResNet takes no weight named 'conv9'"):
        net(x, {"conv9": ks[0]})

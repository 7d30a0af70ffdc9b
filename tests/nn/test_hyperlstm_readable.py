"""The readable, gate-by-gate HyperLSTM cell computes what the library's fast path computes."""
import pytest
import torch
import torch.nn.functional as F

from hypernet_lib.analysis import count_params
from hypernet_lib.nn import GATES, CharLM, HyperLSTMLayer, ReadableHyperLSTMCell, lstm_hidden_for_params

I, H, HH, NZ, T, B = 7, 6, 5, 3, 9, 4


def _random_layer(ln: bool, z_from: str = "current", seed: int = 0) -> HyperLSTMLayer:
    """A float64 layer with every parameter moved off its initialisation (no term vanishes)."""
    torch.manual_seed(seed)
    layer = HyperLSTMLayer(I, H, HH, NZ, use_layer_norm=ln, z_from=z_from).double().eval()
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return layer


def _random_state(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return tuple(0.5 * torch.randn(B, n, dtype=torch.float64, generator=g) for n in (H, H, HH, HH))


@pytest.mark.parametrize("ln", [True, False])
@pytest.mark.parametrize("z_from", ["current", "previous"])
def test_readable_cell_matches_fast_path(ln, z_from):
    layer = _random_layer(ln, z_from)
    assert layer.fast
    cell = ReadableHyperLSTMCell.from_layer(layer)
    x = torch.randn(T, B, I, dtype=torch.float64)
    state = _random_state()
    with torch.no_grad():
        out_fast, st_fast = layer(x, state)                     # HyperLSTMLayer.forward: the fast path
        out_read, st_read = cell.run(x, state)
    torch.testing.assert_close(out_read, out_fast, rtol=1e-10, atol=1e-12)
    for a, b in zip(st_read, st_fast):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("ln", [True, False])
def test_readable_cell_matches_on_character_ids_and_zero_state(ln):
    layer = _random_layer(ln, seed=3)
    cell = ReadableHyperLSTMCell.from_layer(layer)
    ids = torch.randint(0, I, (T, B), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        out_fast, st_fast = layer(ids)
        out_read, st_read = cell.run(ids)
    torch.testing.assert_close(out_read, out_fast, rtol=1e-10, atol=1e-12)
    for a, b in zip(st_read, st_fast):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_scaling_vectors_match_return_d():
    layer = _random_layer(True, seed=5)
    cell = ReadableHyperLSTMCell.from_layer(layer)
    x = torch.randn(T, B, I, dtype=torch.float64)
    with torch.no_grad():
        _, _, d = layer(x, return_d=True)                       # d_h: (T, B, 4, N_h)
        state = layer.initial_state(B)
        for t in range(T):
            _, state, seen = cell(x[t], state)
            for k, y in enumerate(GATES):
                torch.testing.assert_close(seen[y]["d_h"], d["d_h"][t, :, k])
                torch.testing.assert_close(seen[y]["d_x"], d["d_x"][t, :, k])


def test_fresh_layer_scaling_vectors_start_at_one_tenth():
    layer = HyperLSTMLayer(I, H, HH, NZ).double()
    cell = ReadableHyperLSTMCell.from_layer(layer)
    _, _, seen = cell(torch.randn(B, I, dtype=torch.float64), layer.initial_state(B))
    for y in GATES:
        torch.testing.assert_close(seen[y]["d_h"], torch.full((B, H), 0.1, dtype=torch.float64))
        torch.testing.assert_close(seen[y]["d_x"], torch.full((B, H), 0.1, dtype=torch.float64))


def test_named_pieces_are_views_of_the_packed_parameters():
    layer = _random_layer(True, seed=6)
    z, zb, d = layer.z_maps(), layer.z_biases(), layer.d_maps()
    assert set(z) == {"h", "x", "b"} and set(zb) == {"h", "x"} and set(d) == {"h", "x", "b"}
    assert z["x"]["f"].shape == (HH, NZ) and zb["h"]["o"].shape == (NZ,) and d["b"]["g"].shape == (NZ, H)
    assert sum(m.numel() for s in z.values() for m in s.values()) == layer.W_z.numel()
    assert sum(m.numel() for s in d.values() for m in s.values()) == layer.W_d.numel()
    # the z's the named maps give are those of one packed matmul, in the packed order (source, gate)
    h_hat = torch.randn(B, HH, dtype=torch.float64)
    packed = h_hat @ layer.W_z.detach()
    named = torch.cat([h_hat @ z[s][y] for s in "hxb" for y in GATES], dim=1)
    torch.testing.assert_close(named, packed)
    g, hg = layer.gate_weights(), layer.hyper_gate_weights()
    assert g["W_h"]["i"].shape == (H, H) and g["W_x"]["o"].shape == (I, H)
    assert hg["W_h"]["g"].shape == (H, HH) and hg["W_hhat"]["f"].shape == (HH, HH) and hg["b"] is None


def test_from_layer_copies():
    layer = _random_layer(False, seed=7)
    cell = ReadableHyperLSTMCell.from_layer(layer)
    with torch.no_grad():
        cell.W_h["i"].zero_()
    assert layer.W_rec[:, :H].abs().sum() > 0


@pytest.mark.parametrize("target", [1_000, 371_796, 491_000])
def test_lstm_hidden_for_params(target):
    V = 65
    n = lstm_hidden_for_params(V, target)
    count = lambda k: count_params(CharLM(V, cell="lstm", hidden_size=k))  # noqa: E731
    assert abs(count(n) - target) <= abs(count(n + 1) - target)
    if n > 1:
        assert abs(count(n) - target) <= abs(count(n - 1) - target)


def test_readable_cell_rejects_bad_z_from():
    with pytest.raises(ValueError, match="z_from"):
        ReadableHyperLSTMCell(I, H, HH, NZ, z_from="next")


def test_one_hot_run_equals_float_run():
    layer = _random_layer(True, seed=8)
    cell = ReadableHyperLSTMCell.from_layer(layer)
    ids = torch.randint(0, I, (T, B))
    with torch.no_grad():
        a, _ = cell.run(ids)
        b, _ = cell.run(F.one_hot(ids, I).double())
    torch.testing.assert_close(a, b)

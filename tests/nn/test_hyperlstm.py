"""Tests for hypernet_lib.hyperlstm: the HyperLSTM cell against a slow reference written from the paper's
equations, its initialisation, truncated BPTT, sampling, checkpoints, parameter counts of the paper's
PTB models (Table 3) and the command line."""
from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from hypernet_lib.analysis import count_params, scaling_vectors
from hypernet_lib.cli import charlm as cli_module
from hypernet_lib.cli.charlm import main as cli_main
from hypernet_lib.data import Vocab, make_char_data, stream_batches
from hypernet_lib import paper
from hypernet_lib.nn import (
    CELLS,
    GATES,
    SOURCES,
    CharLM,
    HyperLSTMLayer,
    LayerNormLSTMLayer,
    paper_ptb_config,
    upgrade_config,
)
from hypernet_lib.training import CheckpointError, evaluate_bpc, generate, load_lm, save_lm, train_char_lm

EPS = 1e-3


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny matrices: one thread avoids thread-synchronisation cost on a shared machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ---------------------------------------------------------------------------------------------
# A slow, direct reference: one gate at a time, one step at a time, from the equations
# ---------------------------------------------------------------------------------------------
def _ln(v, gain, bias):
    mu = v.mean(-1, keepdim=True)
    var = ((v - mu) ** 2).mean(-1, keepdim=True)
    return gain * (v - mu) / torch.sqrt(var + EPS) + bias


def reference_hyperlstm(layer: HyperLSTMLayer, x: torch.Tensor, state=None):
    """x: (T, B, I) float.  Written from §3.2 / App. A.2.2 gate by gate; reads the layer's weights only."""
    H, Hh, Nz, I = layer.hidden_size, layer.hyper_num_units, layer.n_z, layer.input_size
    ln = layer.use_layer_norm
    P = dict(layer.named_parameters())
    W_x, W_xhat = P["W_in"][:, :4 * H], P["W_in"][:, 4 * H:]          # main / hyper input weights
    W_h, W_hhat = P["W_rec"][:, :4 * H], P["W_rec"][:, 4 * H:]        # main / hyper weights on h_{t-1}
    W_z = P["W_z"].view(Hh, 3, 4, Nz)                                 # [W_ĥh, W_ĥx, W_ĥb] per gate
    b_z = P["b_z"].view(2, 4, Nz)                                     # [b_ĥh, b_ĥx] per gate
    W_d = P["W_d"].view(3, 4, Nz, H)                                  # [W_hz, W_xz, W_bz] per gate
    blk = lambda W, k, n: W[:, k * n:(k + 1) * n]  # noqa: E731
    T, B = x.shape[:2]
    if state is None:
        state = layer.initial_state(B, dtype=x.dtype)
    h, c, hh, hc = state
    outs, ds = [], []
    for t in range(T):
        xt = x[t]
        # hyper cell on x̂_t = [h_{t-1}; x_t]
        x_hat = torch.cat([h, xt], 1)
        W_xhat_full = torch.cat([W_hhat, W_xhat], 0)
        a = []
        for k in range(4):
            v = x_hat @ blk(W_xhat_full, k, Hh) + hh @ blk(P["W_hath"], k, Hh)
            if ln:
                v = _ln(v, P["ln_hat_gain"][k], P["ln_hat_bias"][k])
            else:
                v = v + P["b_hat"][k * Hh:(k + 1) * Hh]
            a.append(v)
        hc = torch.sigmoid(a[2] + 1.0) * hc + torch.sigmoid(a[0]) * torch.tanh(a[1])
        hh_new = torch.sigmoid(a[3]) * torch.tanh(_ln(hc, P["ln_hat_c_gain"], P["ln_hat_c_bias"]) if ln else hc)
        src = hh_new if layer.z_from == "current" else hh
        hh = hh_new
        ys, d_t = [], []
        for k in range(4):                                            # y ∈ {i, g, f, o}
            z_h = src @ W_z[:, 0, k] + b_z[0, k]
            z_x = src @ W_z[:, 1, k] + b_z[1, k]
            z_b = src @ W_z[:, 2, k]
            d_h, d_x = z_h @ W_d[0, k], z_x @ W_d[1, k]
            b = z_b @ W_d[2, k] + P["b_0"][k * H:(k + 1) * H]
            y = d_h * (h @ blk(W_h, k, H)) + d_x * (xt @ blk(W_x, k, H)) + b
            if ln:
                y = _ln(y, P["ln_gain"][k], P["ln_bias"][k])
            ys.append(y)
            d_t.append(torch.stack([d_h, d_x]))
        i, g, f, o = ys
        c = torch.sigmoid(f + 1.0) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(_ln(c, P["ln_c_gain"], P["ln_c_bias"]) if ln else c)
        outs.append(h)
        ds.append(torch.stack(d_t, 1))                                # (2, 4, B, H)
    return torch.stack(outs), (h, c, hh, hc), torch.stack(ds)


def reference_ln_lstm(layer: LayerNormLSTMLayer, x):
    H = layer.hidden_size
    P = dict(layer.named_parameters())
    T, B = x.shape[:2]
    h = c = torch.zeros(B, H, dtype=x.dtype)
    outs = []
    for t in range(T):
        ys = []
        for k in range(4):
            y = x[t] @ P["W_in"][:, k * H:(k + 1) * H] + h @ P["W_rec"][:, k * H:(k + 1) * H]
            ys.append(_ln(y, P["ln_gain"][k], P["ln_bias"][k]))
        i, g, f, o = ys
        c = torch.sigmoid(f + 1.0) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(_ln(c, P["ln_c_gain"], P["ln_c_bias"]))
        outs.append(h)
    return torch.stack(outs)


def _perturbed_layer(ln: bool, z_from: str, I=7, H=6, Hh=5, Nz=3, seed=0) -> HyperLSTMLayer:
    """A float64 layer whose every parameter is moved off its init (so no term vanishes in the check)."""
    torch.manual_seed(seed)
    layer = HyperLSTMLayer(I, H, Hh, Nz, use_layer_norm=ln, z_from=z_from).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return layer


@pytest.mark.parametrize("ln", [True, False])
@pytest.mark.parametrize("z_from", ["current", "previous"])
def test_cell_matches_slow_reference_values_and_gradients(ln, z_from):
    layer = _perturbed_layer(ln, z_from)
    x = torch.randn(6, 3, 7, dtype=torch.float64)
    out, state, d = layer(x, return_d=True)
    ref_out, ref_state, ref_d = reference_hyperlstm(layer, x)
    torch.testing.assert_close(out, ref_out, rtol=1e-10, atol=1e-12)
    for a, b in zip(state, ref_state):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    # exposed d_h, d_x (T, B, 4, H) equal the reference's per-gate d's
    torch.testing.assert_close(d["d_h"], ref_d[:, 0].permute(0, 2, 1, 3))
    torch.testing.assert_close(d["d_x"], ref_d[:, 1].permute(0, 2, 1, 3))
    # gradients of every parameter agree too
    w = torch.randn_like(out)
    g1 = torch.autograd.grad((out * w).sum(), list(layer.parameters()))
    g2 = torch.autograd.grad((reference_hyperlstm(layer, x)[0] * w).sum(), list(layer.parameters()))
    for (name, _), a, b in zip(layer.named_parameters(), g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10, msg=f"gradient of {name}")


def test_one_hot_ids_equal_explicit_one_hot_vectors():
    layer = _perturbed_layer(True, "current")
    ids = torch.randint(0, 7, (5, 2))
    out_ids, _ = layer(ids)
    out_vec, _ = layer(F.one_hot(ids, 7).double())
    torch.testing.assert_close(out_ids, out_vec)


def test_z_from_changes_the_model():
    a = _perturbed_layer(True, "current", seed=1)
    b = _perturbed_layer(True, "previous", seed=1)
    x = torch.randn(4, 2, 7, dtype=torch.float64)
    assert not torch.allclose(a(x)[0], b(x)[0])


def test_ln_lstm_matches_reference():
    torch.manual_seed(0)
    layer = LayerNormLSTMLayer(5, 4).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(5, 3, 5, dtype=torch.float64)
    torch.testing.assert_close(layer(x)[0], reference_ln_lstm(layer, x))


# ---------------------------------------------------------------------------------------------
# The fast path (hyperlstm_fast: hand-written backward) against the autograd reference
# ---------------------------------------------------------------------------------------------
def _fast_and_reference(layer, x, state, extra_inputs=()):
    """Values and gradients (of outputs, final state) of forward (fast) and forward_reference."""
    results = []
    for fast in (True, False):
        layer.fast = fast
        torch.manual_seed(1)                                   # same recurrent-dropout masks
        out, new_state = layer(x, state)
        torch.manual_seed(2)
        w = torch.randn_like(out)
        ws = [torch.randn_like(s) for s in new_state]
        loss = (out * w).sum() + sum((s * v).sum() for s, v in zip(new_state, ws))
        inputs = list(layer.parameters()) + list(state) + list(extra_inputs)
        results.append((out, new_state, torch.autograd.grad(loss, inputs)))
    layer.fast = True
    return results


@pytest.mark.parametrize("ln", [True, False])
@pytest.mark.parametrize("z_from", ["current", "previous"])
@pytest.mark.parametrize("dropout", [False, True])
@pytest.mark.parametrize("ids", [False, True])
@pytest.mark.parametrize("kernels", [True, False], ids=["c++ step kernels", "torch loop"])
def test_fast_path_equals_reference_values_and_gradients(ln, z_from, dropout, ids, kernels, monkeypatch):
    from hypernet_lib.nn import hyperlstm_native
    monkeypatch.setattr(hyperlstm_native, "ENABLED", kernels)
    torch.manual_seed(0)
    layer = HyperLSTMLayer(7, 6, 5, 3, use_layer_norm=ln, z_from=z_from, use_recurrent_dropout=dropout,
                              dropout_keep_prob=0.7).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.randint(0, 7, (6, 3)) if ids else torch.randn(6, 3, 7, dtype=torch.float64, requires_grad=True)
    state = tuple((0.5 * torch.randn(3, n, dtype=torch.float64)).requires_grad_() for n in (6, 6, 5, 5))
    (o1, s1, g1), (o2, s2, g2) = _fast_and_reference(layer, x, state, () if ids else (x,))
    torch.testing.assert_close(o1, o2, rtol=1e-12, atol=1e-12)
    for a, b in zip(s1, s2):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    names = [n for n, _ in layer.named_parameters()] + ["h0", "c0", "ĥ0", "ĉ0"] + ([] if ids else ["x"])
    for name, a, b in zip(names, g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=f"gradient of {name}")


def test_fast_path_with_one_step_sequences():
    layer = _perturbed_layer(True, "previous")
    x = torch.randn(1, 2, 7, dtype=torch.float64, requires_grad=True)
    state = tuple(torch.randn(2, n, dtype=torch.float64, requires_grad=True) for n in (6, 6, 5, 5))
    (o1, s1, g1), (o2, s2, g2) = _fast_and_reference(layer, x, state, (x,))
    torch.testing.assert_close(o1, o2)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)


def test_fast_path_in_a_two_layer_model_and_float32():
    """Layer 2 takes layer 1's output, so the fast path's input gradient is exercised; float32 agrees with
    the reference to round-off."""
    torch.manual_seed(0)
    m = CharLM(11, cell="ln-hyperlstm", hidden_size=16, num_layers=2, hyper_num_units=8, embedding_size=5)
    ids = torch.randint(0, 11, (4, 9))
    grads = []
    for fast in (True, False):
        for layer in m.layers:
            layer.fast = fast
        logits, _ = m(ids)
        loss = F.cross_entropy(logits.reshape(-1, 11), ids.reshape(-1))
        grads.append((logits, torch.autograd.grad(loss, list(m.parameters()))))
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-5, atol=1e-6)
    for (name, _), a, b in zip(m.named_parameters(), grads[0][1], grads[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=f"gradient of {name}")


def test_fast_path_scaling_vectors_and_no_grad_forward_equal_reference():
    layer = _perturbed_layer(True, "current")
    x = torch.randn(5, 2, 7, dtype=torch.float64)
    with torch.no_grad():
        out, state, d = layer(x, return_d=True)                      # fast path (no graph needed)
        layer.fast = False
        out_r, state_r, d_r = layer(x, return_d=True)
    for k in ("d_h", "d_x", "b_z"):
        torch.testing.assert_close(d[k], d_r[k], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(out, out_r, rtol=1e-12, atol=1e-14)


def test_fast_path_refuses_a_second_backward_and_in_place_edits():
    layer = _perturbed_layer(True, "current")
    x = torch.randn(4, 2, 7, dtype=torch.float64)
    out, _ = layer(x)
    out.sum().backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="ran twice.*layer.fast = False"):
        out.sum().backward()
    out, _ = layer(x)
    out.mul_(2.0)                                                    # backward reads h_t from out
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def test_fast_path_runs_in_the_parameters_dtype_under_autocast():
    torch.manual_seed(0)
    layer = HyperLSTMLayer(7, 6, 5, 3)
    x = torch.randn(4, 2, 7)
    plain, _ = layer(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = layer(x.bfloat16())
        out.sum().backward()
    assert out.dtype == torch.float32 and layer.W_rec.grad.dtype == torch.float32
    torch.testing.assert_close(out, plain, rtol=0.05, atol=0.02)     # the input was rounded to bf16


def test_fast_path_workspace_is_reused_and_released():
    from hypernet_lib.nn import hyperlstm_fast
    layer = _perturbed_layer(False, "previous")
    x = torch.randn(5, 3, 7, dtype=torch.float64)
    hyperlstm_fast.release_workspace()
    first = layer(x)[0]
    first.sum().backward()
    assert hyperlstm_fast._WORKSPACE.nbytes() > 0                    # buffers kept for the next call
    layer.zero_grad()
    again = layer(x)[0]                                              # reused buffers: identical results
    again.sum().backward()
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert hyperlstm_fast.release_workspace() > 0 and hyperlstm_fast._WORKSPACE.nbytes() == 0


# ---------------------------------------------------------------------------------------------
# Initialisation
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ln", [True, False])
def test_init_scaling_vectors_start_at_0_1(ln):
    torch.manual_seed(0)
    layer = HyperLSTMLayer(11, 16, 8, 4, use_layer_norm=ln)
    _, _, d = layer(torch.randint(0, 11, (9, 3)), return_d=True)
    # z_h = z_x = 1 (weights 0, bias 1) and W_hz = W_xz = 0.1/N_z  =>  d = N_z · 0.1/N_z = 0.1 exactly
    torch.testing.assert_close(d["d_h"], torch.full_like(d["d_h"], 0.1))
    torch.testing.assert_close(d["d_x"], torch.full_like(d["d_x"], 0.1))
    assert torch.all(d["b_z"] == 0)                                   # W_bz = 0
    W_z = layer.z_weights()                                            # (N_ĥ, s, y, N_z)
    assert torch.all(W_z[:, :2] == 0) and torch.all(layer.b_z == 1)
    # N(0, 0.01²): 4096 draws from a wider layer pin the std to about 1% (a variance off by 2 moves it 41%)
    big = HyperLSTMLayer(11, 16, 64, 16, use_layer_norm=ln).z_weights()[:, 2]
    assert 0.0093 < big.std().item() < 0.0107 and abs(big.mean().item()) < 0.0007
    assert torch.all(layer.b_0 == 0)


def test_z_weights_is_w_z_with_named_axes():
    """z_weights()[:, s, y] is the paper's W_ĥs^y: the matrix that makes z_s^y from ĥ (in W_z's packing)."""
    torch.manual_seed(0)
    layer = HyperLSTMLayer(5, 6, 7, 3, z_init="random")
    W = layer.z_weights()
    assert W.shape == (7, len(SOURCES), len(GATES), 3) and W.data_ptr() == layer.W_z.data_ptr()   # a view
    h_hat = torch.randn(2, 7)
    packed = (h_hat @ layer.W_z).view(2, 3, 4, 3)                      # z for every (s, y), as forward makes it
    for a, s in enumerate(SOURCES):
        for k, y in enumerate(GATES):
            torch.testing.assert_close(h_hat @ W[:, a, k], packed[:, a, k])
            assert torch.equal(W[:, a, k].detach(), layer.z_maps()[s][y])
    with torch.no_grad():
        W[:, 2].zero_()                                                # writes through to W_z
    assert torch.all(layer.z_maps()["b"]["g"] == 0)


def test_one_name_per_thing():
    """N_z is n_z everywhere (HyperLSTMLayer, CharLM and its config); a cell has one name (CELLS = PTB's keys)."""
    assert set(CELLS) <= set(paper.PTB) and all(k in CELLS or k.split("_")[0] in CELLS for k in paper.PTB)
    m = CharLM(7, cell="hyperlstm", hidden_size=6, hyper_num_units=5, n_z=3)
    assert m.layers[0].n_z == 3 and m.config["n_z"] == 3 and "hyper_embedding_size" not in m.config
    with pytest.raises(TypeError):
        CharLM(7, hyper_embedding_size=3)
    old = {**{k: v for k, v in m.config.items() if k != "n_z"}, "hyper_embedding_size": 3}   # a file before the rename
    assert upgrade_config(old) == m.config
    with pytest.raises(ValueError, match="both 'hyper_embedding_size' and 'n_z'"):
        upgrade_config({**m.config, "hyper_embedding_size": 3})


def test_a_checkpoint_with_the_old_n_z_key_still_loads(tmp_path):
    torch.manual_seed(0)
    text = "abcab" * 20
    vocab = Vocab(text)
    model = CharLM(len(vocab.chars), cell="ln-hyperlstm", hidden_size=6, hyper_num_units=5, n_z=2)
    path = str(tmp_path / "m.pt")
    save_lm(path, model, vocab)
    ck = torch.load(path, weights_only=False)
    ck["config"]["hyper_embedding_size"] = ck["config"].pop("n_z")    # as save_lm wrote it before the rename
    torch.save(ck, path)
    loaded, _, _ = load_lm(path)
    assert loaded.config == model.config
    ids = torch.randint(0, len(vocab.chars), (2, 7))
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(ids)[0], model.eval()(ids)[0], rtol=0, atol=0)


def _spread_over_nz(layer):
    """Largest difference between the N_z coordinates of the z_h/z_x maps (weights, biases, W_hz/W_xz)."""
    Hh, Nz, H = layer.hyper_num_units, layer.n_z, layer.hidden_size
    W_z, b_z, W_d = layer.z_weights()[:, :2], layer.b_z.view(2, 4, Nz), layer.W_d.view(3, 4, Nz, H)[:2]
    return max((W_z - W_z[..., :1]).abs().max().item(), (b_z - b_z[..., :1]).abs().max().item(),
               (W_d - W_d[:, :, :1]).abs().max().item())


@pytest.mark.parametrize("z_init", ["paper", "random"])
def test_paper_init_symmetry_survives_training(z_init):
    """The published init (ĥ -> z_h, z_x weights 0, bias 1; W_hz = W_xz = 0.1/N_z) is symmetric in the N_z
    coordinates, and Adam keeps it: z_h, z_x keep N_z equal entries and d_h(t) = s(t)·v, rank 1 over time."""
    torch.manual_seed(0)
    text = "the quick brown fox jumps over the lazy dog. " * 40
    data = make_char_data(text[:1500], text[1500:1700], text[1700:])
    m = CharLM(len(data.vocab), cell="ln-hyperlstm", hidden_size=16, hyper_num_units=8, z_init=z_init)
    train_char_lm(m, data, batch_size=4, seq_length=16, lr=3e-3, max_steps=8, eval_every=8, progress=False)
    layer = m.layers[0]
    d_h = scaling_vectors(m, data.vocab, text[:60])["d_h"][:, 2].double()   # forget gate, (T, N_h)
    sv = torch.linalg.svdvals(d_h - d_h.mean(0))        # how d_h varies over time: directions used
    second = (sv[1] / sv[0]).item()                     # 0 (up to float32 noise, ~1e-6) iff rank 1
    moved = (layer.W_d.view(3, 4, 4, 16)[:2] - 0.1 / 4).abs().max().item()
    assert moved > 1e-3                                                        # training did change them
    if z_init == "paper":
        assert _spread_over_nz(layer) < 1e-6 and second < 1e-5
    else:
        assert _spread_over_nz(layer) > 1e-4 and second > 3e-5


def test_init_orthogonal_per_gate_blocks():
    torch.manual_seed(0)
    layer = HyperLSTMLayer(11, 16, 8, 4)
    eye16 = torch.eye(16)
    for k in range(4):
        W_h = layer.W_rec[:, k * 16:(k + 1) * 16].detach()           # square main block: orthogonal
        torch.testing.assert_close(W_h.t() @ W_h, eye16, atol=1e-5, rtol=0)
        W_hh = layer.W_hath[:, k * 8:(k + 1) * 8].detach()
        torch.testing.assert_close(W_hh.t() @ W_hh, torch.eye(8), atol=1e-5, rtol=0)
    assert not torch.allclose(layer.W_rec[:, :16], layer.W_rec[:, 16:32])


# ---------------------------------------------------------------------------------------------
# State, dropout, truncated BPTT
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", CELLS)
def test_state_carries_across_chunks(cell):
    torch.manual_seed(0)
    m = CharLM(9, cell=cell, hidden_size=12, hyper_num_units=6).eval()
    ids = torch.randint(0, 9, (2, 10))
    full, _ = m(ids)
    a, s = m(ids[:, :4])
    b, _ = m(ids[:, 4:], s)
    torch.testing.assert_close(torch.cat([a, b], 1), full, rtol=1e-5, atol=1e-6)
    fresh, _ = m(ids[:, 4:])                                          # without the state: different
    assert not torch.allclose(fresh, b, atol=1e-4)


def test_evaluate_bpc_carries_state_between_chunks():
    torch.manual_seed(0)
    m = CharLM(5, cell="ln-hyperlstm", hidden_size=8, hyper_num_units=4)
    ids = torch.randint(0, 5, (41,))
    one_chunk = evaluate_bpc(m, ids, batch_size=1, seq_length=40)
    many = evaluate_bpc(m, ids, batch_size=1, seq_length=7)
    assert abs(one_chunk - many) < 1e-5
    logits, _ = m(ids[:-1].view(1, -1))
    direct = F.cross_entropy(logits[0], ids[1:]).item() / math.log(2)
    assert abs(direct - one_chunk) < 1e-5


def _direct_bpc(m, ids, pieces):
    """Sum of −log₂ p over the scored targets of each (read from, score from, score to) piece, one
    piece at a time, from a zero state: a direct implementation of evaluate_bpc's warm-up."""
    total, count = 0.0, 0
    for lo, s0, s1 in pieces:
        logits, _ = m(ids[lo:s1 - 1].view(1, -1))                      # predicts ids[lo+1 : s1]
        nll = F.cross_entropy(logits[0], ids[lo + 1:s1], reduction="none")
        total += nll[s0 - lo - 1:].sum().item()                        # targets ids[s0 : s1]
        count += s1 - s0
    return total / count / math.log(2)


def test_evaluate_bpc_warmup_scores_every_character_once_after_its_context():
    torch.manual_seed(0)
    m = CharLM(5, cell="ln-hyperlstm", hidden_size=8, hyper_num_units=4)
    ids = torch.randint(0, 5, (62,))                                   # 61 targets: 3 streams of 20
    # stream 0 scores ids[1:21] cold; streams 1 and 2 read 6 characters first, unscored
    warm = evaluate_bpc(m, ids, batch_size=3, seq_length=7, warmup=6)
    assert abs(warm - _direct_bpc(m, ids, [(0, 1, 21), (14, 21, 41), (34, 41, 61)])) < 1e-5
    # warm-up longer than a piece is cut to the piece: stream k then starts where stream k-1 did
    longer = evaluate_bpc(m, ids, batch_size=3, seq_length=7, warmup=500)
    assert abs(longer - _direct_bpc(m, ids, [(0, 1, 21), (0, 21, 41), (20, 41, 61)])) < 1e-5
    # warmup=0 is the cold evaluation training validates with, unchanged; it differs
    cold = evaluate_bpc(m, ids, batch_size=3, seq_length=7)
    assert abs(cold - _direct_bpc(m, ids, [(0, 1, 20), (20, 21, 40), (40, 41, 60)])) < 1e-5
    assert abs(cold - warm) > 1e-4
    # one stream has nothing to warm up: the same number with or without
    assert evaluate_bpc(m, ids, batch_size=1, seq_length=7, warmup=6) == \
        evaluate_bpc(m, ids, batch_size=1, seq_length=7)


def test_evaluate_bpc_rejects_a_negative_warmup():
    m = CharLM(5, cell="lstm", hidden_size=4)
    with pytest.raises(ValueError, match="warmup"):
        evaluate_bpc(m, torch.arange(5).repeat(4), warmup=-1)


def test_recurrent_dropout_only_in_training():
    torch.manual_seed(0)
    layer = HyperLSTMLayer(5, 8, 4, 2, use_recurrent_dropout=True, dropout_keep_prob=0.5)
    x = torch.randn(6, 3, 5)
    layer.eval()
    e1, e2 = layer(x)[0], layer(x)[0]
    torch.testing.assert_close(e1, e2)
    layer.train()
    assert not torch.allclose(layer(x)[0], e1)


def test_training_lowers_bpc_on_a_periodic_text():
    torch.manual_seed(0)
    text = "abcdefgh" * 300
    data = make_char_data(text[:2000], text[2000:2200], text[2200:])
    m = CharLM(len(data.vocab), cell="ln-hyperlstm", hidden_size=24, hyper_num_units=8)
    before = evaluate_bpc(m, data.valid, batch_size=4, seq_length=20)
    hist = train_char_lm(m, data, batch_size=8, seq_length=20, lr=1e-2, max_steps=40, eval_every=20,
                            epochs=10, progress=False)
    assert before > 2.5                                               # ≈ log2(8) = 3 at init
    assert hist.val_bpc[-1] < 1.0 and hist.best_val_bpc == min(hist.val_bpc)
    assert hist.step == [20, 40]


class _Interrupt(Exception):
    pass


def _resume_setup():
    """A small LN-HyperLSTM with dropout and recurrent dropout (so the RNG matters), on a text whose
    streams cross an epoch boundary (so the carried state and its reset matter), validated on shuffled
    characters, so validation stalls and the learning-rate decay (patience state) takes part."""
    text = "the cat sat on the mat; a dog ran. " * 40
    shuffled = "".join(sorted(text[:100], key=lambda ch, r=iter(torch.randperm(100, generator=torch.Generator()
                                                                              .manual_seed(0)).tolist()): next(r)))
    data = make_char_data(text[:1200], shuffled, text[1300:])
    kw = dict(batch_size=4, seq_length=10, lr=1e-2, epochs=3, max_steps=70, eval_every=5, lr_decay=0.5,
              patience=2, seed=3, progress=False)

    def model(seed):
        torch.manual_seed(seed)
        return CharLM(len(data.vocab), cell="ln-hyperlstm", hidden_size=12, hyper_num_units=6, dropout=0.2,
                         use_recurrent_dropout=True, dropout_keep_prob=0.8)
    return data, kw, model


def test_interrupted_training_resumes_to_identical_weights_and_curve(tmp_path):
    """Interrupted twice: at step 20, before the best validation step (so the final, best weights come from
    resumed training), and at step 35, with the patience counter at 1 (so the lr decays on time only if
    the counter was restored)."""
    data, kw, model = _resume_setup()
    ref = model(0)
    h_ref = train_char_lm(ref, data, **kw)
    steps_per_epoch = (stream_batches(data.train, kw["batch_size"]).shape[1] - 1) // kw["seq_length"]
    assert steps_per_epoch < kw["max_steps"]   # more than one epoch: the carried state is reset on the way
    assert h_ref.best_step == 30, h_ref.val_bpc                  # the premises of the two interruptions
    assert h_ref.val_bpc[6] > h_ref.best_val_bpc and h_ref.lr[8] < kw["lr"] == h_ref.lr[7]   # 35, 40 bad: decay

    ck = str(tmp_path / "run.train_state")

    def stop_at(k):
        def cb(hist):
            if hist.step[-1] == k:
                raise _Interrupt
        return cb

    m = model(0)
    with pytest.raises(_Interrupt):
        train_char_lm(m, data, checkpoint=ck, on_eval=stop_at(20), **kw)
    saved = torch.load(ck, weights_only=True)
    assert saved["step"] == 20 and saved["history"]["step"] == [5, 10, 15, 20]
    m = model(77)
    torch.manual_seed(5)
    with pytest.raises(_Interrupt):
        train_char_lm(m, data, checkpoint=ck, on_eval=stop_at(35), **kw)
    saved = torch.load(ck, weights_only=True)
    assert saved["step"] == 35 and saved["bad_evals"] == 1
    resumed = model(123)                       # a fresh process would start from other weights and RNG state
    torch.manual_seed(999)
    h = train_char_lm(resumed, data, checkpoint=ck, **kw)
    for (name, p), q in zip(ref.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(p, q), name
    a, b = h_ref.to_dict(), h.to_dict()
    a.pop("seconds"), b.pop("seconds")
    assert a == b and len(h.seconds) == len(h_ref.seconds)
    assert min(h.lr) < kw["lr"]                 # the lr decay (patience state) took part in the run


def test_resume_refuses_a_state_of_another_run(tmp_path):
    data, kw, model = _resume_setup()
    ck = tmp_path / "run.train_state"
    train_char_lm(model(0), data, checkpoint=str(ck), **{**kw, "max_steps": 10})
    with pytest.raises(CheckpointError, match=r"other settings \(batch_size 4 -> 8\).*delete the file"):
        train_char_lm(model(0), data, checkpoint=str(ck), **{**kw, "max_steps": 10, "batch_size": 8})
    ck.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable hyperlstm training state"):
        train_char_lm(model(0), data, checkpoint=str(ck), **kw)


def test_a_training_state_written_before_the_engine_still_resumes(tmp_path):
    """The state is the engine's one format under the id it always had; a file in the layout written
    before the engine (no 'generator' entry) resumes to the same weights and curve."""
    from hypernet_lib.training import TRAIN_STATE_FORMAT
    data, kw, model = _resume_setup()
    kw = {**kw, "max_steps": 20}
    ref = model(0)
    h_ref = train_char_lm(ref, data, **kw)
    ck = str(tmp_path / "run.train_state")

    def stop(hist):
        if hist.step[-1] == 10:
            raise _Interrupt
    with pytest.raises(_Interrupt):
        train_char_lm(model(0), data, checkpoint=ck, on_eval=stop, **kw)
    saved = torch.load(ck, weights_only=True)
    assert saved["format"] == TRAIN_STATE_FORMAT and saved["step"] == 10 and saved["cuda_rng"] is None
    assert len(saved["state"]) == 1 and all(t.shape[0] == kw["batch_size"] for t in saved["state"][0])
    del saved["generator"]
    torch.save(saved, ck)
    resumed = model(1)
    h = train_char_lm(resumed, data, checkpoint=ck, **kw)
    assert all(torch.equal(p, q) for p, q in zip(ref.state_dict().values(), resumed.state_dict().values()))
    assert {**h.to_dict(), "seconds": None} == {**h_ref.to_dict(), "seconds": None}


# ---------------------------------------------------------------------------------------------
# Sampling and vocabulary
# ---------------------------------------------------------------------------------------------
def _small_lm():
    torch.manual_seed(0)
    vocab = Vocab("abcde ")
    return CharLM(len(vocab), cell="hyperlstm", hidden_size=8, hyper_num_units=4), vocab


def test_sampling_is_deterministic_under_a_seed():
    m, vocab = _small_lm()
    s1 = generate(m, vocab, "ab", 50, generator=torch.Generator().manual_seed(3))
    s2 = generate(m, vocab, "ab", 50, generator=torch.Generator().manual_seed(3))
    s3 = generate(m, vocab, "ab", 50, generator=torch.Generator().manual_seed(4))
    assert s1 == s2 and s1 != s3
    assert s1.startswith("ab") and len(s1) == 52 and set(s1) <= set(vocab.chars)


def test_top_k_1_is_greedy_decoding():
    m, vocab = _small_lm()
    s = generate(m, vocab, "a", 10, top_k=1, generator=torch.Generator().manual_seed(0))
    ids = vocab.encode("a").view(1, 1)
    logits, state = m(ids)
    greedy = []
    for _ in range(10):
        nxt = int(logits[0, -1].argmax())
        greedy.append(nxt)
        logits, state = m(torch.tensor([[nxt]]), state)
    assert s == "a" + vocab.decode(greedy)


def test_sampling_rejects_bad_input():
    m, vocab = _small_lm()
    with pytest.raises(ValueError, match="not in the model's vocabulary: 'X', 'Z'"):
        generate(m, vocab, "aXZ", 5)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        generate(m, vocab, "a", 5, temperature=0.0)
    with pytest.raises(ValueError, match="at least one character"):
        generate(m, vocab, "", 5)


def test_shape_and_name_errors():
    layer = HyperLSTMLayer(5, 8, 4, 2)
    with pytest.raises(ValueError, match=r"shape \(T, B, 5\)"):
        layer(torch.randn(3, 2, 6))
    with pytest.raises(ValueError, match="unknown cell 'gru'"):
        CharLM(5, cell="gru")
    with pytest.raises(ValueError, match="z_from"):
        HyperLSTMLayer(5, 8, z_from="next")
    with pytest.raises(ValueError, match="recurrent dropout"):
        CharLM(5, cell="lstm", use_recurrent_dropout=True)


def test_checkpoint_round_trip_carries_vocab_and_is_atomic(tmp_path):
    m, vocab = _small_lm()
    path = tmp_path / "sub" / "m.pt"
    save_lm(str(path), m, vocab, history={"val_bpc": [1.0]})
    assert os.listdir(tmp_path / "sub") == ["m.pt"]                  # no temp file left behind
    m2, vocab2, ck = load_lm(str(path))
    assert vocab2.chars == vocab.chars and ck["history"]["val_bpc"] == [1.0]
    ids = torch.randint(0, len(vocab), (2, 5))
    torch.testing.assert_close(m.eval()(ids)[0], m2.eval()(ids)[0])
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a hyperlstm language-model checkpoint"):
        load_lm(str(tmp_path / "other.pt"))


# ---------------------------------------------------------------------------------------------
# Parameter counts of the paper's character-level PTB models (Table 3)
# ---------------------------------------------------------------------------------------------
def _paper_counts_by_formula(cell: str, V=50, H=1000, Hh=128, Nz=4) -> int:
    """Counts written out term by term.  Convention (the paper's totals include it): the output
    softmax layer H·V + V is counted; input is one-hot (no embedding)."""
    softmax = H * V + V
    if cell == "lstm":            # nn.LSTM: W_ih, W_hh and two bias vectors b_ih, b_hh
        return 4 * H * (V + H) + 2 * 4 * H + softmax
    if cell == "ln-lstm":         # no linear bias (LN's bias replaces it); per-gate LN gain+bias, LN on c
        return 4 * H * (V + H) + 2 * 4 * H + 2 * H + softmax
    ln = cell == "ln-hyperlstm"
    main = 4 * H * (V + H) + 4 * H                                    # W_x, W_h, b_0
    hyper = 4 * Hh * (V + H + Hh) + (2 * 4 * Hh + 2 * Hh if ln else 4 * Hh)   # x̂=[h;x], ĥ; LN or bias
    z = 4 * (3 * Hh * Nz + 2 * Nz)                                    # z_h, z_x (with bias), z_b (no bias)
    d = 4 * 3 * Nz * H                                                # W_hz, W_xz, W_bz
    main_ln = 2 * 4 * H + 2 * H if ln else 0
    return main + hyper + z + d + main_ln + softmax


@pytest.mark.parametrize("cell, n_z, exact, paper_m", [
    ("lstm", 4, 4_258_050, 4.25),          # paper's 4.25 M counts one bias vector: 4,254,050
    ("ln-lstm", 4, 4_260_050, 4.26),
    ("hyperlstm", 4, 4_911_874, 4.91),
    ("ln-hyperlstm", 4, 4_922_642, 4.92),
    ("ln-hyperlstm", 16, 5_085_170, 5.06),  # "Large Embedding": 0.5 % above the published figure
])
def test_paper_ptb_parameter_counts(cell, n_z, exact, paper_m):
    m = paper_ptb_config(cell, n_z=n_z)
    n = count_params(m)
    assert n == exact == _paper_counts_by_formula(cell, Nz=n_z)
    assert abs(n / 1e6 - paper_m) / paper_m < 0.006
    if cell != "ln-hyperlstm" or n_z == 4:
        assert round(n / 1e6, 2) == pytest.approx(paper_m, abs=0.011)   # within one printed digit
    if cell == "lstm":                      # without nn.LSTM's second bias: exactly the paper's 4.25 M
        assert round((n - 4 * 1000) / 1e6, 2) == 4.25


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
def test_cli_help_runs_as_module():
    r = subprocess.run([sys.executable, "-m", "hypernet_lib.cli", "train", "--help"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    for opt in ("--data_path", "--seq_length", "--batch_size", "--val_split", "--embedding_size", "--hidden_size",
                "--num_layers", "--dropout", "--hyper_num_units", "--hyper_embedding_size", "--use_layer_norm",
                "--use_recurrent_dropout", "--dropout_keep_prob", "--epochs", "--lr", "--lr_decay",
                "--patience", "--clip", "--cell"):
        assert opt in r.stdout
    r = subprocess.run([sys.executable, "-m", "hypernet_lib.cli", "generate", "--load_model", "/nonexistent.pt"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("argv, message", [
    (["train", "--hidden_size", "-3", "--data_path", "x"], "argument --hidden_size: expected a positive integer"),
    (["train", "--hidden_size", "wide", "--data_path", "x"], "expected a positive integer, got 'wide'"),
    (["train", "--patience", "-1", "--data_path", "x"], "argument --patience: expected an integer >= 0, got -1"),
    (["train", "--seed", "-1", "--data_path", "x"], "a seed is an integer in [0, 2**64 - 1], got -1"),
    (["generate", "--load_model", "m.pt", "--seed", "2**8"], "expected an integer seed, got '2**8'"),
    (["train", "--cell", "gru", "--data_path", "x"], "invalid choice: 'gru'"),
    (["train", "--dropout_keep_prob", "1.5", "--data_path", "x"], "is outside (0, 1]"),
    (["generate", "--load_model", "m.pt", "--temperature", "0"], "is outside (0.0, inf)"),
    (["frobnicate"], "invalid choice"),
])
def test_cli_bad_arguments_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_train_generate_eval_round_trip(tmp_path, capsys):
    text = ("the quick brown fox jumps over the lazy dog. " * 60)
    (tmp_path / "tiny.txt").write_text(text)
    ck = tmp_path / "models" / "m.pt"
    rc = cli_main(["--mode", "train", "--data_path", str(tmp_path / "tiny.txt"), "--cell", "hyperlstm",
                   "--use_layer_norm", "--hidden_size", "16", "--hyper_num_units", "8", "--seq_length", "16",
                   "--batch_size", "4", "--max_steps", "6", "--eval_every", "3", "--save_model", str(ck),
                   "--no_progress"])
    out = capsys.readouterr().out
    assert rc == 0 and ck.exists() and "ln-hyperlstm" in out and "best validation bpc" in out
    _, vocab, saved = load_lm(str(ck))
    assert vocab.chars == "".join(sorted(set(text))) and saved["config"]["cell"] == "ln-hyperlstm"

    args = ["generate", "--load_model", str(ck), "--prime_text", "the ", "--gen_length", "30", "--seed", "1"]
    assert cli_main(args) == 0
    sample = capsys.readouterr().out.rstrip("\n")
    assert sample.startswith("the ") and len(sample) == 34 and set(sample) <= set(text)
    assert cli_main(args) == 0 and capsys.readouterr().out.rstrip("\n") == sample     # seeded: same text

    assert cli_main(["eval", "--load_model", str(ck), "--data_path", str(tmp_path / "tiny.txt"),
                     "--batch_size", "2", "--seq_length", "16", "--no_progress"]) == 0
    out = capsys.readouterr().out
    assert "valid bpc:" in out and "test bpc:" in out
    # by default every stream but the first reads 1000 characters before it is scored
    def bpc_lines(*extra):
        assert cli_main(["eval", "--load_model", str(ck), "--data_path", str(tmp_path / "tiny.txt"),
                         "--batch_size", "2", "--seq_length", "16", "--no_progress", *extra]) == 0
        return [line for line in capsys.readouterr().out.splitlines() if " bpc:" in line]
    assert bpc_lines("--warmup", "1000") == [line for line in out.splitlines() if " bpc:" in line]
    assert bpc_lines("--warmup", "0") != bpc_lines("--warmup", "1000")
    with pytest.raises(SystemExit) as e:
        cli_main(["eval", "--load_model", str(ck), "--warmup", "-1"])
    assert e.value.code == 2 and "--warmup: expected an integer >= 0" in capsys.readouterr().err

    # bad input after parsing: exit 2 and a one-line message, never a traceback
    assert cli_main(["generate", "--load_model", str(ck), "--prime_text", "QQ@"]) == 2
    err = capsys.readouterr().err
    assert "--prime_text" in err and "'@', 'Q'" in err and "Traceback" not in err
    torch.save({"model": {}}, tmp_path / "other.pt")
    assert cli_main(["generate", "--load_model", str(tmp_path / "other.pt")]) == 2
    assert "another model" in capsys.readouterr().err
    assert cli_main(["train", "--data_path", str(tmp_path / "missing.txt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli_main(["train", "--data_path", str(tmp_path / "tiny.txt"), "--corpus", "shakespeare"]) == 2
    assert "exactly one of" in capsys.readouterr().err


def test_cli_train_resumes_an_interrupted_run(tmp_path, capsys, monkeypatch):
    (tmp_path / "tiny.txt").write_text("to be or not to be, that is the question. " * 40)
    ck = tmp_path / "m.pt"
    argv = ["train", "--data_path", str(tmp_path / "tiny.txt"), "--cell", "hyperlstm", "--hidden_size", "12",
            "--hyper_num_units", "6", "--seq_length", "12", "--batch_size", "4", "--max_steps", "9",
            "--eval_every", "3", "--use_recurrent_dropout", "--seed", "5", "--no_progress"]
    assert cli_main(argv + ["--save_model", str(tmp_path / "ref.pt")]) == 0
    assert not (tmp_path / "ref.pt.train_state").exists()          # a finished run leaves no state behind
    capsys.readouterr()

    real = train_char_lm

    def interrupted(*a, **k):                   # Ctrl-C after the second evaluation
        def on_eval(hist):
            if hist.step[-1] == 6:
                raise KeyboardInterrupt
        return real(*a, **{**k, "on_eval": on_eval})
    monkeypatch.setattr(cli_module, "train_char_lm", interrupted)
    assert cli_main(argv + ["--save_model", str(ck)]) == 130
    err = capsys.readouterr().err
    assert "m.pt.train_state" in err and "resumes it" in err and not ck.exists()
    monkeypatch.setattr(cli_module, "train_char_lm", real)

    assert cli_main(argv + ["--save_model", str(ck)]) == 0
    assert "resuming the interrupted run" in capsys.readouterr().out
    assert not (tmp_path / "m.pt.train_state").exists()
    ref_sd, res_sd = load_lm(str(tmp_path / "ref.pt"))[2]["state_dict"], load_lm(str(ck))[2]["state_dict"]
    assert all(torch.equal(ref_sd[k], res_sd[k]) for k in ref_sd)

    # a state left by a run with other settings: exit 2, a message naming the fix
    train_char_lm(CharLM(5, cell="lstm", hidden_size=4), make_char_data("abcde" * 40, "abcde", "abcde"),
                     batch_size=2, seq_length=4, max_steps=2, eval_every=2, progress=False,
                     checkpoint=str(ck) + ".train_state")
    assert cli_main(argv + ["--save_model", str(ck)]) == 2
    assert "other settings" in capsys.readouterr().err

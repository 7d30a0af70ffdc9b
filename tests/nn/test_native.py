"""The HyperLSTM's fused CPU step kernels (hypernet_lib.nn.hyperlstm_native, hyperlstm_kernels.cpp): the same values
and gradients as the torch loop they replace, at sizes where the kernels split samples over threads;
a build that goes to the cache atomically; and a silent fallback, with the reason in native.kernel_status(),
wherever they cannot be built."""
from __future__ import annotations

import pytest
import torch

from hypernet_lib.nn import HyperLSTMLayer
from hypernet_lib.nn import hyperlstm_native as native


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """A native module that has not tried to build yet, with its cache in tmp_path."""
    monkeypatch.setitem(native._state, "lib", None)
    monkeypatch.setitem(native._state, "status", "not tried yet")
    monkeypatch.setenv("HYPERNET_KERNELS", str(tmp_path / "kernels"))
    monkeypatch.delenv("HYPERNET_NATIVE", raising=False)
    monkeypatch.delenv("CXX", raising=False)
    return tmp_path / "kernels"


def _layer(H, Hh, n_z, ln, z_from, dropout, I=9, dtype=torch.float64):
    torch.manual_seed(0)
    layer = HyperLSTMLayer(I, H, Hh, n_z, use_layer_norm=ln, z_from=z_from, use_recurrent_dropout=dropout,
                           dropout_keep_prob=0.8).to(dtype)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return layer


def _run(layer, x, state, native_on, monkeypatch):
    """Outputs and gradients of a weighted loss over outputs and final state, with or without the kernels."""
    monkeypatch.setattr(native, "ENABLED", native_on)
    calls = []
    real = native._Table.__call__
    monkeypatch.setattr(native._Table, "__call__", lambda self, w, t: (calls.append(w), real(self, w, t)))
    torch.manual_seed(1)                                   # the same dropout masks
    out, new_state = layer(x, state)
    torch.manual_seed(2)
    loss = (out * torch.randn_like(out)).sum() + sum((s * torch.randn_like(s)).sum() for s in new_state)
    inputs = list(layer.parameters()) + list(state) + ([x] if x.is_floating_point() else [])
    return out, new_state, torch.autograd.grad(loss, inputs), calls


@pytest.mark.parametrize("ln", [True, False])
@pytest.mark.parametrize("z_from", ["current", "previous"])
@pytest.mark.parametrize("dropout", [False, True])
def test_kernels_equal_the_torch_loop_when_split_over_threads(ln, z_from, dropout, monkeypatch):
    """B·4N_h = 8·640 is over the kernels' threading threshold: each thread takes some samples.  N_h = 160
    and N_ĥ = 37 leave tails after the vector width."""
    assert native.build_kernels() is not None, native.kernel_status()
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        layer = _layer(160, 37, 4, ln, z_from, dropout)
        x = torch.randn(7, 8, 9, dtype=torch.float64, requires_grad=True)
        state = tuple((0.5 * torch.randn(8, n, dtype=torch.float64)).requires_grad_() for n in (160, 160, 37, 37))
        o1, s1, g1, calls = _run(layer, x, state, True, monkeypatch)
        o2, s2, g2, none = _run(layer, x, state, False, monkeypatch)
    finally:
        torch.set_num_threads(threads)
    assert sorted(set(calls)) == [0, 1] and len(calls) == 2 * 7 and none == []      # a forward and a backward call per step
    torch.testing.assert_close(o1, o2, rtol=1e-12, atol=1e-13)
    for a, b in zip(s1, s2):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-13)
    names = [n for n, _ in layer.named_parameters()] + ["h0", "c0", "ĥ0", "ĉ0", "x"]
    for name, a, b in zip(names, g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=f"gradient of {name}")


def test_kernels_in_float32_agree_with_the_torch_loop_to_round_off(monkeypatch):
    layer = _layer(96, 32, 4, True, "current", False, I=20, dtype=torch.float32)
    x = torch.randint(0, 20, (12, 4))
    state = tuple(torch.zeros(4, n, requires_grad=True) for n in (96, 96, 32, 32))
    o1, _, g1, calls = _run(layer, x, state, True, monkeypatch)
    o2, _, g2, _ = _run(layer, x, state, False, monkeypatch)
    assert calls
    torch.testing.assert_close(o1, o2, rtol=1e-5, atol=1e-6)
    for (name, _), a, b in zip(layer.named_parameters(), g1, g2):    # round-off relative to the largest entry
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * b.abs().max().item(), msg=f"gradient of {name}")


def test_the_build_lands_in_the_cache_whole_and_is_reused(fresh):
    lib = native.build_kernels()
    assert lib is not None and native.kernel_status().startswith("built ")
    files = sorted(p.name for p in fresh.iterdir())
    assert len(files) == 1 and files[0].startswith("hyperlstm_kernels-") and files[0].endswith(".so"), files
    native._state.update(lib=None, status="not tried yet")
    assert native.build_kernels() is not None and native.kernel_status() == f"loaded {fresh / files[0]}"


def test_a_damaged_library_in_the_cache_is_built_again(fresh):
    target = native._target(native._compiler())
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not a shared library")
    assert native.build_kernels() is not None
    assert native.kernel_status() == f"built {target}"
    assert target.read_bytes()[:4] == b"\x7fELF" and sorted(fresh.iterdir()) == [target]


def _fallback_still_trains(monkeypatch):
    """With no kernels the layer runs the torch loop: same outputs and gradients as the autograd reference."""
    layer = _layer(6, 5, 3, True, "current", False)
    x = torch.randn(4, 2, 9, dtype=torch.float64, requires_grad=True)
    state = tuple(torch.zeros(2, n, dtype=torch.float64, requires_grad=True) for n in (6, 6, 5, 5))
    o1, _, g1, calls = _run(layer, x, state, True, monkeypatch)
    layer.fast = False
    o2, _, g2, _ = _run(layer, x, state, True, monkeypatch)
    assert calls == []
    torch.testing.assert_close(o1, o2)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)


def test_a_failing_build_falls_back_silently_and_leaves_nothing(fresh, monkeypatch, tmp_path):
    broken = tmp_path / "broken.cpp"
    broken.write_text("int f( { return 0; }\n")
    monkeypatch.setattr(native, "SOURCE", broken)
    assert native.build_kernels() is None
    assert native.kernel_status().startswith("the build failed: ") and "error" in native.kernel_status()
    assert list(fresh.iterdir()) == []                        # no object file, no half-written library
    _fallback_still_trains(monkeypatch)


def test_a_build_over_the_time_limit_is_stopped(fresh, monkeypatch):
    monkeypatch.setattr(native, "BUILD_TIMEOUT_S", 0)
    assert native.build_kernels() is None
    assert native.kernel_status() == "the build took over 0 s and was stopped"
    assert list(fresh.iterdir()) == []


def test_no_compiler_and_switched_off_are_reported(fresh, monkeypatch):
    monkeypatch.setenv("CXX", "/nonexistent/g++")
    assert native.build_kernels() is None
    assert native.kernel_status() == ("no C++ compiler found (CXX='/nonexistent/g++' is not a program on PATH); "
                               "install g++ or set CXX")
    native._state.update(status="not tried yet")
    monkeypatch.setenv("HYPERNET_NATIVE", "0")
    assert native.build_kernels() is None and native.kernel_status() == "switched off (HYPERNET_NATIVE=0)"
    _fallback_still_trains(monkeypatch)


@pytest.mark.parametrize("ln", [True, False])
def test_saturated_gates_stay_finite_and_nan_stays_nan(ln, monkeypatch):
    """Weights ×200 push every gate far into saturation (pre-activations in the thousands).  In float32
    the kernels produce no NaN (a fused 1/(1 + exp(-x)) gives NaN there under -ffast-math); in float64 they
    agree with the torch loop (float32 is too ill-conditioned at this scale to compare).  A NaN weight
    still gives NaN outputs, so a diverged run is caught downstream."""
    x = torch.randint(0, 5, (6, 4))
    for dtype in (torch.float32, torch.float64):
        layer = _layer(32, 16, 4, ln, "current", False, I=5, dtype=dtype)
        with torch.no_grad():
            for p in layer.parameters():
                p.mul_(200)
        outs = []
        for on in (True, False):
            monkeypatch.setattr(native, "ENABLED", on)
            with torch.no_grad():
                outs.append(layer(x)[0])
        assert torch.isfinite(outs[0]).all(), dtype
        if dtype == torch.float64:
            torch.testing.assert_close(outs[0], outs[1], rtol=1e-9, atol=1e-9)
    monkeypatch.setattr(native, "ENABLED", True)
    with torch.no_grad():
        layer.W_d[0, 0, 0] = float("nan")
        assert torch.isnan(layer(x)[0]).any()


def test_masks_of_another_float_dtype_are_converted_and_bool_masks_refused(monkeypatch):
    """hyperlstm_sequence takes masks from the caller: the kernels read raw memory, so masks in float32 for a
    float64 layer are converted first (same result as float64 masks), and non-float masks are refused."""
    layer = _layer(8, 5, 3, True, "current", True)
    x = torch.randn(4, 2, 9, dtype=torch.float64)
    state = tuple(torch.zeros(2, n, dtype=torch.float64) for n in (8, 8, 5, 5))
    from hypernet_lib.nn import hyperlstm_sequence
    from hypernet_lib.nn.hyperlstm_buffers import Params
    params = Params(layer.W_in, None, layer.W_rec, layer.W_hath, layer.W_z, layer.b_z, layer.W_d, layer.b_0,
                    layer.ln_gain, layer.ln_bias, layer.ln_c_gain, layer.ln_c_bias, layer.ln_hat_gain,
                    layer.ln_hat_bias, layer.ln_hat_c_gain, layer.ln_hat_c_bias)
    masks = (torch.rand(4, 2, 8) < 0.8).double() / 0.8
    with torch.no_grad():
        out64, _ = hyperlstm_sequence(x, state, params, ln=True, z_current=True, masks=masks)
        out32, _ = hyperlstm_sequence(x, state, params, ln=True, z_current=True, masks=masks.float())
        monkeypatch.setattr(native, "ENABLED", False)
        ref, _ = hyperlstm_sequence(x, state, params, ln=True, z_current=True, masks=masks)
    torch.testing.assert_close(out64, ref, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(out32, out64, rtol=1e-6, atol=1e-7)       # the float32 masks' 1/0.8 rounded
    with pytest.raises(ValueError, match="masks must be a floating-point tensor, got dtype torch.bool"):
        hyperlstm_sequence(x, state, params, ln=True, z_current=True, masks=masks > 0)

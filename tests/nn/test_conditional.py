"""Tests for hypernet_lib.conditional (chapter 6)."""
import math

import pytest
import torch

from hypernet_lib.analysis import (
    count_params,
    dead_fraction,
    diagnose,
    generated_weight_variance,
    output_spread,
    weight_spread,
)
from hypernet_lib.nn import (
    IMPLS,
    MainMLP,
    PerSampleLinear,
    SeparateNets,
    SharedNet,
    TaskHyperNet,
    apply_bmm,
    apply_einsum,
    apply_loop,
    hyperfan_variance,
    output_regularizer,
    unflatten,
)

# ---------------------------------------------------------------- per-sample weights

def _per_sample_setup(seed=0, batch=12):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    layer = PerSampleLinear(7, 5, n_z=3, d=6).double()
    x = torch.randn(batch, 7, generator=g, dtype=torch.double)
    z = torch.randn(batch, 3, generator=g, dtype=torch.double)
    return layer, x, z


def test_per_sample_matches_direct_formula():
    layer, x, z = _per_sample_setup()
    # slow, literal: e = ReLU(W_h z + b_h); W = H e + h0; b = G e + g0; y = W x + b
    ys = []
    for i in range(len(x)):
        e = torch.relu(layer.hidden.weight @ z[i] + layer.hidden.bias)
        w = (layer.head_w.weight @ e + layer.head_w.bias).reshape(5, 7)
        b = layer.head_b.weight @ e + layer.head_b.bias
        ys.append(w @ x[i] + b)
    expected = torch.stack(ys)
    for impl in IMPLS:
        torch.testing.assert_close(layer(x, z, impl=impl), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("impl", [i for i in IMPLS if i != "loop"])
def test_per_sample_impls_equal_outputs_and_gradients(impl):
    layer, x, z = _per_sample_setup(seed=1)
    x.requires_grad_(True)
    z.requires_grad_(True)
    target = torch.randn(len(x), 5, dtype=torch.double, generator=torch.Generator().manual_seed(3))

    def grads(which):
        layer.zero_grad(set_to_none=True)
        x.grad = z.grad = None
        y = layer(x, z, impl=which)
        ((y - target) ** 2).sum().backward()
        return y.detach(), [p.grad.clone() for p in layer.parameters()] + [x.grad.clone(), z.grad.clone()]

    y_ref, g_ref = grads("loop")
    y, g = grads(impl)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    assert len(g) == len(g_ref)
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_apply_functions_agree_and_differ_per_sample():
    g = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(4, 3, generator=g), torch.randn(4, 2, 3, generator=g), torch.randn(4, 2, generator=g)
    y = apply_loop(x, w, b)
    torch.testing.assert_close(apply_bmm(x, w, b), y)
    torch.testing.assert_close(apply_einsum(x, w, b), y)
    # each sample really uses its own W: swapping W_0 and W_1 changes rows 0 and 1
    w2 = w.clone()
    w2[[0, 1]] = w[[1, 0]]
    assert not torch.allclose(apply_bmm(x, w2, b)[:2], y[:2])


def test_per_sample_shape_errors():
    layer = PerSampleLinear(7, 5, n_z=3, d=4)
    with pytest.raises(ValueError, match=r"N_z=3"):
        layer(torch.randn(2, 7), torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"shape \(B, 7\)"):
        layer(torch.randn(2, 6), torch.randn(2, 3))
    with pytest.raises(ValueError, match="same B"):
        layer(torch.randn(2, 7), torch.randn(3, 3))
    with pytest.raises(ValueError, match="unknown impl 'gpu'"):
        layer(torch.randn(2, 7), torch.randn(2, 3), impl="gpu")
    with pytest.raises(ValueError, match="unknown init"):
        PerSampleLinear(7, 5, 3, init="xavier")


# ---------------------------------------------------------------- hyperfan init

def test_init_names_are_one_set_for_every_model():
    from hypernet_lib.nn import GENERATOR_INITS, INIT_NAMES, INITS
    assert INITS == ("naive", "hyperfan_in", "hyperfan_out") and set(INITS) | set(GENERATOR_INITS) == set(INIT_NAMES)
    with pytest.raises(ValueError, match=r"unknown init 'xavier'; choose one of 'naive', 'hyperfan_in', 'hyperfan_out'$"):
        PerSampleLinear(7, 5, 3, init="xavier")
    with pytest.raises(ValueError, match=r"init 'ha' does not apply to TaskHyperNet; .*'ha' is for the Eq. 2 generator"):
        TaskHyperNet(MainMLP((4, 3)), 2, init="ha")
    with pytest.raises(ValueError, match=r"'hyperfan' is now called 'hyperfan_in'"):
        PerSampleLinear(7, 5, 3).reset_parameters("hyperfan")


def test_hyperfan_formulas():
    # Chang et al. 2020: the generated weight has variance d_k * Var(H) * Var(e)
    v = hyperfan_variance("hyperfan_in", "weight", fan_in=100, fan_out=10, d_k=32, var_e=0.5, gain=2.0,
                          has_bias=False)
    assert math.isclose(32 * v * 0.5, 2.0 / 100)
    v = hyperfan_variance("hyperfan_in", "weight", fan_in=100, fan_out=10, d_k=32, var_e=0.5, gain=2.0)
    assert math.isclose(32 * v * 0.5, 1.0 / 100)                 # halved: bias takes the other half
    v = hyperfan_variance("hyperfan_in", "bias", fan_in=100, fan_out=10, d_k=32, var_e=0.5, gain=2.0)
    assert math.isclose(32 * v * 0.5, 1.0)
    v = hyperfan_variance("hyperfan_out", "weight", fan_in=100, fan_out=10, d_k=32, var_e=0.5, gain=1.0)
    assert math.isclose(32 * v * 0.5, 1.0 / 10)
    assert hyperfan_variance("hyperfan_out", "bias", fan_in=100, fan_out=10, d_k=32) == 0.0
    v = hyperfan_variance("hyperfan_out", "bias", fan_in=10, fan_out=40, d_k=8, var_e=1.0, gain=1.0)
    assert math.isclose(8 * v, 0.75)
    with pytest.raises(ValueError, match="unknown method"):
        hyperfan_variance("fan_avg", "weight", fan_in=1, fan_out=1, d_k=1)


@pytest.mark.parametrize("init", ["hyperfan_in", "hyperfan_out"])
def test_per_sample_generated_variance_hits_target(init):
    """Statistical check: over 40 hypernet inits x 200 conditions, Var(W) and Var(b) are the targets."""
    torch.manual_seed(0)
    fan_in, fan_out = 40, 20
    ws, bs = [], []
    for _ in range(40):
        layer = PerSampleLinear(fan_in, fan_out, n_z=16, d=64, init=init)
        with torch.no_grad():
            w, b = layer.generate(torch.randn(200, 16))
        ws.append(w.flatten())
        bs.append(b.flatten())
    var_w, var_b = torch.cat(ws).var().item(), torch.cat(bs).var().item()
    if init == "hyperfan_in":
        target_w, target_b = 2.0 / (2 * fan_in), 1.0
    else:
        target_w, target_b = 2.0 / fan_out, 0.0
    assert abs(var_w / target_w - 1) < 0.1, (var_w, target_w)
    assert abs(var_b - target_b) < 0.1 * max(target_b, 1e-3) + 1e-9, (var_b, target_b)


def test_naive_init_is_far_from_target():
    torch.manual_seed(0)
    layer = PerSampleLinear(400, 20, n_z=16, d=64, init="naive")
    with torch.no_grad():
        w, _ = layer.generate(torch.randn(500, 16))
    # PyTorch's default Linear init ignores the main layer's fan-in: Var(W) is > 3x the Kaiming target
    assert w.var().item() > 3 * (2.0 / 400)


def test_task_hypernet_variance_matches_target_on_average():
    main = MainMLP((50, 30, 10))
    for init in ("hyperfan_in", "hyperfan_out"):
        vs = []
        for seed in range(30):
            torch.manual_seed(seed)
            h = TaskHyperNet(main, 3, n_z=8, hidden=(64,), chunk_size=64, init=init, seed=seed)
            vs.append(generated_weight_variance(h, n_emb=64, seed=seed))
        mean = torch.tensor(vs).mean(0)
        target = torch.tensor(h.target_variances())
        for m, t in zip(mean.tolist(), target.tolist()):
            if t == 0:
                assert m == 0
            else:
                assert abs(m / t - 1) < 0.15, (init, m, t)


# ---------------------------------------------------------------- task-conditioned nets

def test_main_mlp_counts_and_functional_forward():
    main = MainMLP((784, 100, 100, 10))
    assert main.num_params == 784 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10 == 89_610
    assert count_params(main) == 0
    ref = torch.nn.Sequential(torch.nn.Linear(784, 100), torch.nn.ReLU(), torch.nn.Linear(100, 100),
                              torch.nn.ReLU(), torch.nn.Linear(100, 10))
    assert list(main.param_shapes) == ["W_1", "b_1", "W_2", "b_2", "W_3", "b_3"]
    assert main.param_shapes["W_1"] == (100, 784) and main.param_shapes["b_3"] == (10,)
    theta = torch.cat([p.detach().flatten() for p in ref.parameters()])
    x = torch.randn(6, 784)
    weights = unflatten(theta, main.param_shapes)
    torch.testing.assert_close(weights["W_2"], ref[2].weight)          # views of theta, in its layout
    torch.testing.assert_close(main(x, weights), ref(x))
    # batched over a leading task dim: row t uses theta[t]
    thetas = torch.stack([theta, 2 * theta])
    xs = torch.stack([x, x])
    out = main(xs, unflatten(thetas, main.param_shapes))
    torch.testing.assert_close(out[0], ref(x))
    torch.testing.assert_close(out[1], main(x, unflatten(2 * theta, main.param_shapes)))
    with pytest.raises(ValueError, match="P=89610"):
        unflatten(theta[:-1], main.param_shapes)
    with pytest.raises(ValueError, match="flatten images"):
        main(torch.randn(6, 1, 28, 28), weights)


def test_main_mlp_weights_are_checked_by_name():
    main = MainMLP((4, 3, 2))
    w = unflatten(main.init_theta(), main.param_shapes)
    x = torch.randn(5, 4)
    with pytest.raises(ValueError, match=r"no weights of its own: weights must give b_2 too"):
        main(x, {k: v for k, v in w.items() if k != "b_2"})
    with pytest.raises(ValueError, match=r"no weights of its own"):
        main(x)
    with pytest.raises(ValueError, match=r"weights\['W_2'\] must have shape \(\.\.\., 2, 3\), got \(3, 2\)"):
        main(x, {**w, "W_2": w["W_2"].t()})
    with pytest.raises(ValueError, match=r"takes no weight named 'W_3'; it takes W_1 \(3, 4\), b_1 \(3,\)"):
        main(x, {**w, "W_3": w["W_2"]})
    with pytest.raises(ValueError, match=r"weights must be a dict.*unflatten\(theta, net.param_shapes\)"):
        main(x, main.init_theta())                                    # a flat vector: unflatten it first
    with pytest.raises(ValueError, match=r"share their leading dimensions"):
        main(x, {**w, "b_1": w["b_1"].expand(2, 3)})


def test_model_param_counts():
    main = MainMLP((20, 8, 4))
    assert count_params(SharedNet(main, 3)) == main.num_params
    assert count_params(SeparateNets(main, 3)) == 3 * main.num_params
    h = TaskHyperNet(main, 3, n_z=5, hidden=(7,), chunk_size=16, n_c=2)
    n_chunks = sum(-(-n // 16) for n in main.numels)
    assert h.n_chunks == n_chunks
    expected = 3 * 5 + n_chunks * 2 + (5 + 2 + 1) * 7 + (7 + 1) * 16
    assert count_params(h) == expected
    h2 = TaskHyperNet(main, 3, n_z=5, hidden=(7,), chunk_size=None)
    assert count_params(h2) == 3 * 5 + (5 + 1) * 7 + (7 + 1) * main.num_params


def test_chunked_generation_equals_per_chunk_loop():
    torch.manual_seed(0)
    main = MainMLP((20, 8, 4))
    h = TaskHyperNet(main, 2, n_z=3, hidden=(5,), chunk_size=16, n_c=2).double()
    theta = h.thetas([0, 1])
    for t in range(2):
        parts = []
        for k in range(h.n_chunks):
            inp = torch.cat([h.task_emb[t], h.chunk_emb[k]])
            out = h.head(torch.relu(h.body[0](inp))) * h.out_scale[k]
            tensor = h.chunk_owner[k].item()
            first_chunk_of_tensor = (h.chunk_owner == tensor).nonzero()[0].item()
            start = (k - first_chunk_of_tensor) * 16
            parts.append(out[: min(16, main.numels[tensor] - start)])
        torch.testing.assert_close(theta[t], torch.cat(parts))


def test_task_id_errors():
    main = MainMLP((20, 8, 4))
    h = TaskHyperNet(main, 2, n_z=3, hidden=(5,), chunk_size=16)
    with pytest.raises(ValueError, match=r"task ids must be in 0\.\.1"):
        h.thetas([2])
    with pytest.raises(ValueError, match=r"shape \(2, B, in\)"):
        h(torch.randn(5, 20), [0, 1])
    with pytest.raises(ValueError, match=r"shape \(T, 3\)"):
        h.generate(torch.randn(3))


# ---------------------------------------------------------------- output regulariser

def _small_hnet(seed=0):
    torch.manual_seed(seed)
    return TaskHyperNet(MainMLP((12, 6, 3)), 3, n_z=4, hidden=(8,), chunk_size=10, n_c=2, seed=seed).double()


def test_regulariser_zero_when_unchanged_positive_after_change():
    h = _small_hnet()
    with torch.no_grad():
        targets = h.generate(h.task_emb[:2]).clone()
    assert output_regularizer(h, targets, [0, 1]).item() == 0.0
    assert output_regularizer(h, targets[:0], []).item() == 0.0
    with torch.no_grad():
        h.head.weight.add_(0.01)
    assert output_regularizer(h, targets, [0, 1]).item() > 0.0


def test_regulariser_value_and_gradient():
    h = _small_hnet(1)
    targets = torch.randn(2, h.main.num_params, dtype=torch.double)
    reg = output_regularizer(h, targets, [0, 1])
    manual = sum(((h.generate(h.task_emb[t:t + 1])[0] - targets[t]) ** 2).sum() for t in range(2)) / 2
    torch.testing.assert_close(reg, manual)
    # gradient: autograd against central finite differences (float64) on a few head weights and an embedding
    reg.backward()
    grad_w = h.head.weight.grad.clone()
    eps = 1e-6
    for (i, j) in [(0, 0), (3, 5), (9, 7)]:
        with torch.no_grad():
            h.head.weight[i, j] += eps
            up = output_regularizer(h, targets, [0, 1]).item()
            h.head.weight[i, j] -= 2 * eps
            down = output_regularizer(h, targets, [0, 1]).item()
            h.head.weight[i, j] += eps
        assert (up - down) / (2 * eps) == pytest.approx(grad_w[i, j].item(), rel=1e-5, abs=1e-8)
    assert grad_w.abs().sum() > 0
    # earlier task embeddings get no gradient from the regulariser (they are held fixed)
    assert h.task_emb.grad is None or torch.all(h.task_emb.grad == 0)


def test_regulariser_shape_error():
    h = _small_hnet()
    with pytest.raises(ValueError, match=r"shape \(2, P\)"):
        output_regularizer(h, torch.zeros(3, h.main.num_params, dtype=torch.double), [0, 1])


# ---------------------------------------------------------------- diagnostics

def test_spread_measures():
    theta = torch.randn(1, 50).expand(4, 50)
    assert weight_spread(theta) == 0.0
    assert weight_spread(torch.randn(4, 5000)) == pytest.approx(math.sqrt(3 / 4), rel=0.05)
    assert output_spread(torch.ones(3, 8, 10)) == 0.0
    with pytest.raises(ValueError, match="K >= 2"):
        weight_spread(torch.randn(1, 5))


def test_diagnose_detects_collapsed_and_healthy_hypernets():
    torch.manual_seed(0)
    main = MainMLP((12, 6, 3))
    x = torch.randn(64, 12)
    healthy = TaskHyperNet(main, 4, n_z=4, hidden=(8,), chunk_size=10, seed=0)
    rep = diagnose(healthy, x)
    assert not rep["collapsed"] and not rep["insensitive"], rep
    collapsed = TaskHyperNet(main, 4, n_z=4, hidden=(8,), chunk_size=10, seed=0)
    with torch.no_grad():                                 # all conditions shrunk to (almost) one point
        collapsed.task_emb.mul_(1e-4)
        collapsed.head.bias.normal_(0, 1.0)               # a condition-free part that dominates
    rep = diagnose(collapsed, x)
    assert rep["collapsed"] and rep["insensitive"] and rep["pred_change"] == 0.0, rep


def test_dead_hypernet_is_flagged_and_gets_no_gradient():
    torch.manual_seed(0)
    main = MainMLP((12, 6, 3))
    h = TaskHyperNet(main, 3, n_z=4, hidden=(8,), chunk_size=10, seed=0)
    assert dead_fraction(h) < 0.5
    with torch.no_grad():
        h.body[0].bias.fill_(-100.0)                      # every hidden ReLU is off for every input
        h.head.bias.normal_(0, 1.0)
    assert dead_fraction(h) == 1.0
    rep = diagnose(h, torch.randn(32, 12))
    assert rep["collapsed"] and rep["insensitive"] and rep["dead_fraction"] == 1.0
    h(torch.randn(3, 5, 12), [0, 1, 2]).sum().backward()
    assert torch.all(h.task_emb.grad == 0)


def test_weights_can_differ_where_the_main_net_does_not_look():
    """Weight spread is high but output spread is 0: conditions only change the weights *into* a
    hidden unit that is dead (its bias is hugely negative), so the two checks are not redundant."""
    main = MainMLP((4, 2, 3))
    g = torch.Generator().manual_seed(0)
    base = torch.randn(main.num_params, generator=g)
    w1, b1, w2, b2 = unflatten(base.clone(), main.param_shapes).values()
    thetas = []
    for k in range(3):
        w1k, b1k = w1.clone(), b1.clone()
        b1k[0] = -20.0                                     # unit 0 never fires for |x| <= 1 ...
        w1k[0] = torch.rand(4, generator=g) * 8 - 4        # ... since |w . x| <= 16: its inputs do not matter
        thetas.append(torch.cat([w1k.flatten(), b1k, w2.flatten(), b2]))
    thetas = torch.stack(thetas)
    x = torch.rand(20, 4, generator=g) * 2 - 1
    out = main(x.expand(3, 20, 4), unflatten(thetas, main.param_shapes))
    assert weight_spread(thetas) > 0.1
    assert output_spread(out) == 0.0


def test_task_hypernet_seed_fixes_every_initial_weight():
    from hypernet_lib.nn import MainMLP, TaskHyperNet
    main = MainMLP((784, 32, 10))
    torch.manual_seed(1); a = TaskHyperNet(main, n_tasks=3, seed=5)
    torch.manual_seed(2); b = TaskHyperNet(main, n_tasks=3, seed=5)
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), name
    c = TaskHyperNet(main, n_tasks=3, seed=6)
    assert not torch.equal(a.body[0].weight, c.body[0].weight)

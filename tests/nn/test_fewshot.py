"""Tests for hypernet_lib.fewshot (chapter 6, few-shot learning)."""
import pytest
import torch

from hypernet_lib.analysis import mean_ci
from hypernet_lib.data import EpisodeSampler, FewShotData
from hypernet_lib.nn import ConvEncoder, FineTune, HyperFewShot, ProtoNet, prototypes
from hypernet_lib.training import evaluate_episodes, train_episodic


def _data(n_classes=8, per_class=6, train=(0, 1, 2, 3), test=(4, 5, 6, 7), size=28, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n_classes).repeat_interleave(per_class)
    x = torch.randn(len(y), 1, size, size, generator=g) + y[:, None, None, None].float()
    return FewShotData(x, y, tuple(f"c{i}" for i in range(n_classes)), train, test, "synthetic")


def test_episodes_never_leak_test_classes_into_training():
    data = _data(n_classes=10, per_class=8, train=(0, 2, 4, 6, 8), test=(1, 3, 5, 7, 9))
    tr, te = EpisodeSampler(data, "train"), EpisodeSampler(data, "test")
    g = torch.Generator().manual_seed(0)
    ep = tr.sample(200, 3, 2, 3, generator=g)
    seen = set(data.y[ep.support].unique().tolist()) | set(data.y[ep.query].unique().tolist())
    assert seen <= set(data.train_classes) and not seen & set(data.test_classes)
    ep = te.sample(200, 3, 2, 3, generator=g)
    assert set(data.y[ep.query].unique().tolist()) <= set(data.test_classes)
    # labels say which episode class each image is from; images within a class are distinct
    cls_of_query = torch.gather(ep.classes, 1, ep.query_labels)
    assert torch.equal(data.y[ep.query], cls_of_query)
    assert torch.equal(data.y[ep.support], ep.classes[..., None].expand_as(ep.support))
    both = torch.cat([ep.support, ep.query.unflatten(1, (3, 3))], -1)
    assert (both.sort(-1).values.diff(dim=-1) > 0).all()
    assert (ep.classes.sort(-1).values.diff(dim=-1) > 0).all()          # N distinct classes per episode


def test_overlapping_split_is_refused():
    with pytest.raises(ValueError, match="both training and test"):
        _data(train=(0, 1, 2), test=(2, 3))


def test_seeded_episodes_repeat():
    s = EpisodeSampler(_data(), "train")
    a = s.sample(5, 2, 1, 2, generator=torch.Generator().manual_seed(3))
    b = s.sample(5, 2, 1, 2, generator=torch.Generator().manual_seed(3))
    c = s.sample(5, 2, 1, 2, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a.support, b.support) and torch.equal(a.query, b.query)
    assert not (torch.equal(a.support, c.support) and torch.equal(a.query, c.query))


def test_bad_arguments_name_problem_and_fix():
    s = EpisodeSampler(_data(), "train")
    with pytest.raises(ValueError, match=r"n_way=5 .* only 4 classes.*n_way <= 4"):
        s.sample(2, 5, 1, 1)
    with pytest.raises(ValueError, match=r"smallest train class has 6; lower k_shot or n_query"):
        s.sample(2, 2, 5, 2)
    with pytest.raises(ValueError, match="n_way"):
        s.sample(2, 0, 1, 1)
    with pytest.raises(ValueError, match="split must be"):
        EpisodeSampler(_data(), "val")
    model = ProtoNet(ConvEncoder(dim=8))
    with pytest.raises(ValueError, match=r"\(E, N, K, D\)"):
        model.logits(torch.zeros(2, 3, 8), torch.zeros(2, 4, 8))
    with pytest.raises(ValueError, match="D=8"):
        model.logits(torch.zeros(2, 3, 1, 7), torch.zeros(2, 4, 7))
    with pytest.raises(ValueError, match=r"\(E, N, K, C, H, W\)"):
        model(torch.zeros(2, 3, 1, 28, 28), torch.zeros(2, 4, 1, 28, 28))


def test_prototypical_equals_hand_computation():
    enc = ConvEncoder(dim=2)
    model = ProtoNet(enc)
    sup = torch.tensor([[[[0.0, 0.0], [2.0, 0.0]],           # class 0: mean (1, 0)
                         [[0.0, 4.0], [0.0, 2.0]]]])          # class 1: mean (0, 3)
    qry = torch.tensor([[[1.0, 1.0], [0.0, 3.0]]])
    # -||q - p||²: q1: to (1,0): 1, to (0,3): 1+4=5;  q2: to (1,0): 1+9=10, to (0,3): 0
    expected = -torch.tensor([[[1.0, 5.0], [10.0, 0.0]]])
    torch.testing.assert_close(prototypes(sup), torch.tensor([[[1.0, 0.0], [0.0, 3.0]]]))
    torch.testing.assert_close(model.logits(sup, qry), expected)


def test_generated_head_shapes_and_gradients():
    torch.manual_seed(0)
    model = HyperFewShot(ConvEncoder(dim=8, width=4), hidden=5, width=16)
    sup, qry = torch.randn(3, 4, 2, 1, 28, 28), torch.randn(3, 6, 1, 28, 28)
    head = model.generate(model.encode(sup))
    assert head["A"].shape == (3, 5, 8) and head["a"].shape == (3, 5)
    assert head["w"].shape == (3, 4, 13) and head["b"].shape == (3, 4)
    logits = model(sup, qry)
    assert logits.shape == (3, 6, 4)
    logits.logsumexp(-1).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.encoder.proj.weight.grad.abs().sum() > 0 and model.head_A.weight.grad.abs().sum() > 0


def test_generated_head_matches_per_episode_loop():
    torch.manual_seed(1)
    model = HyperFewShot(ConvEncoder(dim=6, width=4), hidden=3, width=8, residual=False).double()
    sup, qry = torch.randn(2, 3, 2, 6, dtype=torch.double), torch.randn(2, 5, 6, dtype=torch.double)
    batched = model.logits(sup, qry)
    for e in range(2):                                      # one episode at a time, plain matmuls
        h = model.generate(sup[e:e + 1])
        phi = torch.cat([qry[e], torch.relu(qry[e] @ h["A"][0].T + h["a"][0])], -1)
        torch.testing.assert_close(batched[e], phi @ h["w"][0].T + h["b"][0])


@pytest.mark.parametrize("hidden", [0, 3])
@pytest.mark.parametrize("scale", [0.5, 1.0])
def test_residual_head_starts_as_nearest_mean(hidden, scale):
    """At the start, logits = σ(−‖φ(q) − u_c‖² + ‖φ(q)‖²), computed here with cdist."""
    torch.manual_seed(2)
    model = HyperFewShot(ConvEncoder(dim=6, width=4), hidden=hidden, width=8, scale=scale).double()
    sup, qry = torch.randn(2, 3, 4, 6, dtype=torch.double), torch.randn(2, 5, 6, dtype=torch.double)
    h = model.generate(sup)
    assert h["w"].shape == (2, 3, 6 + hidden) and h["A"].shape == (2, hidden, 6)
    phi_q = model.features(h["A"], h["a"], qry)
    u = model.features(h["A"], h["a"], sup.flatten(1, 2)).unflatten(1, (3, 4)).mean(2)
    nearest = scale * (-torch.cdist(phi_q, u).square() + phi_q.square().sum(-1, keepdim=True))
    torch.testing.assert_close(model.logits(sup, qry), nearest)


def test_last_layer_hypernetwork_starts_as_the_prototypical_network():
    """H = 0, σ = 1: the same class probabilities as ProtoNet on the same encoder, for every query."""
    torch.manual_seed(3)
    enc = ConvEncoder(dim=8, width=4).double()
    hyper, proto = HyperFewShot(enc, hidden=0, width=8).double(), ProtoNet(enc)
    sup, qry = torch.randn(2, 4, 3, 1, 28, 28, dtype=torch.double), torch.randn(2, 6, 1, 28, 28, dtype=torch.double)
    torch.testing.assert_close(hyper(sup, qry).log_softmax(-1), proto(sup, qry).log_softmax(-1))
    assert not any(n.startswith(("set_net", "head_A", "head_a")) for n, _ in hyper.named_parameters())


def test_last_layer_hypernetwork_gradients_reach_every_parameter():
    torch.manual_seed(4)
    model = HyperFewShot(ConvEncoder(dim=8, width=4), hidden=0, width=16)
    with torch.no_grad():                                   # move off the zero start, so Δw, Δb matter
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    sup, qry = torch.randn(3, 4, 2, 1, 28, 28), torch.randn(3, 6, 1, 28, 28)
    logits = model(sup, qry)
    assert logits.shape == (3, 6, 4)
    logits.log_softmax(-1)[..., 0].sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("kwargs, message", [
    ({"hidden": -1}, "hidden"), ({"hidden": 2.5}, "hidden"), ({"width": 0}, "width"),
    ({"scale": 0.0}, "scale"), ({"scale": float("nan")}, "scale"),
])
def test_hyper_fewshot_refuses_bad_sizes(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        HyperFewShot(ConvEncoder(dim=4, width=2), **kwargs)


def test_training_and_evaluation_run_for_every_method():
    data = _data(n_classes=8, per_class=10)
    tr, te = EpisodeSampler(data, "train"), EpisodeSampler(data, "test")
    for make in (lambda e: HyperFewShot(e, hidden=4, width=8), ProtoNet, lambda e: FineTune(e, 4, steps=3)):
        torch.manual_seed(0)
        model = make(ConvEncoder(width=4, dim=8))
        losses = train_episodic(model, tr, steps=2, n_way=3, shots=(1, 2), n_query=2, episodes=2)
        assert len(losses) == 2 and all(map(lambda v: v == v, losses))
        acc = evaluate_episodes(model, te, n_episodes=7, n_way=3, shots=(1, 2), n_query=3, batch=4)
        assert set(acc) == {1, 2} and acc[1].shape == (7,) and ((acc[1] >= 0) & (acc[1] <= 100)).all()


def test_episodic_training_is_seeded_and_stops_on_divergence():
    from hypernet_lib.checks import TrainingDiverged
    tr = EpisodeSampler(_data(n_classes=8, per_class=10), "train")
    runs = []
    for seed in (1, 1, 2):
        torch.manual_seed(0)
        model = ProtoNet(ConvEncoder(width=4, dim=8))
        runs.append((train_episodic(model, tr, steps=3, n_way=3, shots=(1, 2), n_query=2, episodes=2, seed=seed),
                     model.state_dict()))
    assert runs[0][0] == runs[1][0] and all(torch.equal(runs[0][1][k], v) for k, v in runs[1][1].items())
    assert runs[0][0] != runs[2][0]                     # the seed picks the episodes
    torch.manual_seed(0)
    with pytest.raises(TrainingDiverged, match=r"training diverged in 3 steps: the training loss is nan; "
                                               r"lower the learning rate \(lr=1e\+30\)"):
        train_episodic(ProtoNet(ConvEncoder(width=4, dim=8)), tr, steps=3, n_way=3, shots=(1,), n_query=2,
                       episodes=2, lr=1e30)


def test_finetune_fits_separable_support():
    model = FineTune(ConvEncoder(dim=2), n_train_classes=3, steps=100, lr=1.0)
    sup = torch.tensor([[[[5.0, 0.0]], [[0.0, 5.0]]]])
    qry = torch.tensor([[[4.0, 1.0], [1.0, 4.0]]])
    assert model.logits(sup, qry).argmax(-1).tolist() == [[0, 1]]


def test_mean_ci():
    m, h = mean_ci(torch.tensor([0.0, 100.0, 0.0, 100.0]))
    assert m == 50.0 and h == pytest.approx(1.96 * torch.tensor([0.0, 100, 0, 100]).std().item() / 2)

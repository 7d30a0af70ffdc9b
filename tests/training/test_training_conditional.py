"""conditional.train_multitask and train_continual against a direct re-implementation of a step,
hand-computed accuracies, and the continual-learning invariants (earlier task embeddings frozen,
the output regulariser starting at 0 and holding earlier tasks' weights in place)."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from hypernet_lib.data import PermutedTasks
from hypernet_lib.nn import MainMLP, SeparateNets, TaskHyperNet
from hypernet_lib.training import conditional as training_conditional
from hypernet_lib.training import task_accuracy, train_continual, train_multitask

T, IN, K = 3, 16, 3


def tiny_tasks(n_train=60, n_test=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(IN, K, generator=g)
    x_tr, x_te = torch.randn(n_train, 1, 4, 4, generator=g), torch.randn(n_test, 1, 4, 4, generator=g)
    data = SimpleNamespace(name="toy", x_train=x_tr, y_train=(x_tr.flatten(1) @ w).argmax(1),
                           x_test=x_te, y_test=(x_te.flatten(1) @ w).argmax(1))
    return PermutedTasks(data, n_tasks=T, seed=1)


def hnet(seed=0):
    return TaskHyperNet(MainMLP((IN, 8, K)), n_tasks=T, n_z=4, hidden=(8,), chunk_size=None, seed=seed)


def direct_accuracy(model, tasks, t):
    """Percent correct on task t's test set, pixels permuted by hand."""
    with torch.no_grad():
        x = tasks.x_test[:, tasks.perms[t]]
        return 100.0 * (model(x, t).argmax(-1) == tasks.y_test).sum().item() / len(tasks.y_test)


def test_permuted_tasks_permute_pixels_per_task():
    tasks = tiny_tasks()
    assert torch.equal(tasks.perms[0], torch.arange(IN))
    assert not torch.equal(tasks.perms[1], tasks.perms[2])
    x = tasks.x_train[:5]
    assert torch.equal(tasks.permute(x, 2), x[:, tasks.perms[2]])
    stacked = tasks.permute(torch.stack([x, x, x]), torch.arange(T))
    assert all(torch.equal(stacked[t], x[:, tasks.perms[t]]) for t in range(T))


def test_multitask_steps_match_a_direct_implementation():
    tasks = tiny_tasks()
    for make in (hnet, lambda: SeparateNets(MainMLP((IN, 8, K)), n_tasks=T, seed=0)):
        model, ref = make(), make()
        ref.load_state_dict(model.state_dict())
        hist = train_multitask(model, tasks, steps=3, batch_size=5, lr=1e-2, seed=4, eval_every=2)
        # the same three steps, one task at a time: every step draws batch_size images per task
        g = torch.Generator().manual_seed(4)
        opt = torch.optim.Adam(ref.parameters(), lr=1e-2)
        losses = []
        for _ in range(3):
            idx = torch.randint(0, len(tasks.y_train), (T, 5), generator=g)
            per_task = [F.cross_entropy(ref(tasks.x_train[idx[t]][:, tasks.perms[t]], t), tasks.y_train[idx[t]],
                                        reduction="sum") for t in range(T)]
            loss = sum(per_task) / (T * 5)                       # the mean over all T x B examples
            opt.zero_grad(); loss.backward(); opt.step()
            losses.append(loss.item())
        assert hist["loss"] == pytest.approx(losses, rel=1e-5, abs=1e-6)
        for (name, p), q in zip(model.state_dict().items(), ref.state_dict().values()):
            assert torch.allclose(p, q, atol=1e-6, rtol=1e-5), name
        assert hist["eval_step"] == [2, 3]
        assert hist["eval_acc"][-1] == [direct_accuracy(model, tasks, t) for t in range(T)]


def test_continual_freezes_earlier_embeddings_and_records_accuracy(monkeypatch):
    tasks = tiny_tasks()
    model = hnet()
    emb0 = model.task_emb.detach().clone()
    snaps, real = [], task_accuracy

    def snapshot(m, tk, ids=None, **kw):                        # called once after each task
        snaps.append((m.task_emb.detach().clone(), [direct_accuracy(m, tk, t) for t in ids]))
        return real(m, tk, ids, **kw)

    monkeypatch.setattr(training_conditional, "task_accuracy", snapshot)
    res = train_continual(model, tasks, steps_per_task=4, batch_size=8, lr=1e-2, beta=0.5, seed=2)
    assert len(snaps) == T and len(res.loss) == 4 * T and len(res.reg) == 4 * (T - 1)
    for t, (emb, accs) in enumerate(snaps):
        before = emb0 if t == 0 else snaps[t - 1][0]
        assert not torch.equal(emb[t], before[t])                # task t's embedding was trained
        assert torch.equal(emb[:t], before[:t])                  # the earlier ones did not move
        assert torch.equal(emb[t + 1:], emb0[t + 1:])            # the later ones are untouched so far
        assert res.acc[t][:t + 1] == accs                        # accuracy after task t, on tasks 0..t
        assert all(a != a for a in res.acc[t][t + 1:])           # NaN for tasks not learned yet
    # the regulariser compares with the hypernet as it was when the task started: 0 at the first step
    assert res.reg[0] == 0.0 and res.reg[4] == 0.0 and res.reg[1] > 0.0 and res.reg[5] > 0.0


def test_regulariser_holds_earlier_tasks_in_place(monkeypatch):
    """How far task 0's generated weights move while tasks 1 and 2 are learned: a strong output
    regulariser (beta=50) keeps them much closer than plain fine-tuning (beta=0)."""
    tasks, real = tiny_tasks(), task_accuracy
    drift = {}
    for beta in (0.0, 50.0):
        model, kept = hnet(), []

        def snapshot(m, tk, ids=None, **kw):
            with torch.no_grad():
                kept.append(m.generate(m.task_emb[:1]).clone())
            return real(m, tk, ids, **kw)

        monkeypatch.setattr(training_conditional, "task_accuracy", snapshot)
        train_continual(model, tasks, steps_per_task=6, batch_size=8, lr=1e-2, beta=beta, seed=2)
        drift[beta] = (kept[-1] - kept[0]).norm().item()
    assert drift[0.0] > 0 and drift[50.0] < 0.5 * drift[0.0], drift

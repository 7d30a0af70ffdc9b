"""training.engine, tested directly on a toy loop: exact resume after an interruption (model, optimiser,
RNGs, carried state, patience counter, best weights), refusal of another run's state, divergence keeping
the last good checkpoint, the RNG restore (a faked CUDA, and CUDA skipped where there is none), nothing
partial left on disk, and the one checkpoint reader."""
import math
import os

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from hypernet_lib.checks import TrainingDiverged
from hypernet_lib.training import CheckpointError, Engine, StateFormat, UnreadableCheckpoint, load_checkpoint
from hypernet_lib.training import engine as E

FMT = StateFormat(id="test.toy.train_state/1", what="toy training state", extras=("history", "carry"))
X_VAL = torch.randn(32, 4, generator=torch.Generator().manual_seed(9))
Y_VAL = X_VAL.sum(1, keepdim=True)


class Interrupt(Exception):
    pass


def toy_run(path=None, *, init_seed=0, steps=18, stop_at=None, poison_at=None, lr=0.3, fmt=FMT, extra_run=None,
            patience=2, lr_decay=0.5):
    """A regression net with dropout (CPU RNG), data drawn from a torch.Generator, a carried running sum
    (the loop's extra state), evaluation every 2 steps, keep-best and lr decay on plateau."""
    torch.manual_seed(init_seed)                      # a resumed run starts from other weights ...
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(100 + init_seed)   # ... and other RNG states
    torch.manual_seed(200 + init_seed)
    hist, carried = {"step": [], "val": [], "train": [], "lr": []}, {"sum": torch.zeros(())}
    engine = Engine(model, opt, steps=steps, eval_every=2, generator=gen, keep_best=True, patience=patience,
                    lr_decay=lr_decay, checkpoint=path, fmt=fmt, run=dict(lr=lr, steps=steps, **(extra_run or {})),
                    where=lambda good, now: f"between steps {good} and {now}", advice="lower the learning rate")
    ck = engine.resume()
    if ck is not None:
        hist, carried["sum"] = ck["history"], ck["carry"]

    def step(i):
        x = torch.randn(8, 4, generator=gen)
        loss = F.mse_loss(model(x), x.sum(1, keepdim=True))
        opt.zero_grad()
        loss.backward()
        opt.step()
        carried["sum"] = carried["sum"] + loss.detach()
        return loss

    def evaluate(n):
        model.eval()
        with torch.no_grad():
            val = F.mse_loss(model(X_VAL), Y_VAL).item()
        model.train()
        hist["step"].append(n)
        hist["val"].append(val)
        hist["train"].append(engine.window.item() / engine.window_steps)
        hist["lr"].append(opt.param_groups[0]["lr"])
        return val < min(hist["val"][:-1], default=math.inf)

    def after(n):
        if poison_at == n:
            with torch.no_grad():
                model[0].weight[0, 0] = float("nan")
        if stop_at == n:
            raise Interrupt

    engine.run(step, evaluate, state=lambda: {"history": hist, "carry": carried["sum"]}, after_eval=[after])
    return model, hist, carried["sum"], engine


def same(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_same_settings_same_numbers_and_the_policies_take_part():
    m1, h1, c1, e1 = toy_run()
    m2, h2, c2, _ = toy_run()
    assert same(m1, m2) and h1 == h2 and torch.equal(c1, c2)
    assert h1["step"] == [2, 4, 6, 8, 10, 12, 14, 16, 18]
    best = h1["val"].index(min(h1["val"]))
    assert best < len(h1["val"]) - 1, h1["val"]           # a non-improving evaluation after the best one
    # the premises of the interruptions below: 2 evaluations without improvement at steps 10 and 12 (the
    # counter is 1 at step 10), so the lr halves after step 12
    assert h1["val"][4] > min(h1["val"][:4]) and h1["val"][5] > min(h1["val"][:4]), h1["val"]
    assert h1["lr"][5] == 0.3 and h1["lr"][6] == 0.15, h1["lr"]
    assert torch.allclose(F.mse_loss(m1.eval()(X_VAL), Y_VAL), torch.tensor(min(h1["val"])))  # best weights back
    assert not same(m1, toy_run(init_seed=1)[0])


@pytest.mark.parametrize("stops", [[4], [2, 10], [10, 16]])   # 16: the best evaluation, none after it
def test_interrupted_run_resumes_exactly(tmp_path, stops):
    ref, h_ref, c_ref, e_ref = toy_run()
    path = tmp_path / "run.state"
    for k, at in enumerate(stops):
        with pytest.raises(Interrupt):
            toy_run(path, stop_at=at, init_seed=0 if k == 0 else 10 + k)
        ck = torch.load(path, weights_only=True)
        assert ck["format"] == FMT.id and ck["step"] == at and ck["history"]["step"][-1] == at
    resumed, h, c, e = toy_run(path, init_seed=99)
    assert same(ref, resumed) and h == h_ref and torch.equal(c, c_ref)
    assert e.bad == e_ref.bad and e.done == e_ref.done == 18
    assert all(torch.equal(e.best_state[k], v) for k, v in e_ref.best_state.items())
    assert leftovers(tmp_path) == []


def test_resume_restores_every_rng(tmp_path):
    """After a resume the CPU RNG and the loop's generator continue where the interrupted run left them."""
    path = tmp_path / "s"
    with pytest.raises(Interrupt):
        toy_run(path, stop_at=4)
    ck = torch.load(path, weights_only=True)
    assert ck["cuda_rng"] is None                        # a CPU run records no CUDA state
    torch.manual_seed(123)
    gen = torch.Generator().manual_seed(5)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))
    engine = Engine(model, torch.optim.Adam(model.parameters()), steps=18, eval_every=2, generator=gen,
                    checkpoint=path, fmt=FMT, run=dict(lr=0.3, steps=18))
    engine.resume()
    assert torch.equal(torch.get_rng_state(), ck["torch_rng"]) and torch.equal(gen.get_state(), ck["generator"])
    assert engine.done == engine.good == 4


def _fake_cuda(monkeypatch, available):
    calls = []
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [torch.full((8,), 7, dtype=torch.uint8)])
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: calls.append([s.clone() for s in states]))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    return calls


def test_cuda_rng_is_recorded_on_cuda_and_restored_where_cuda_is(monkeypatch):
    calls = _fake_cuda(monkeypatch, available=True)
    saved = E._rng_state(torch.device("cuda"), None)
    assert [s.tolist() for s in saved["cuda_rng"]] == [[7] * 8] and saved["generator"] is None
    assert E._rng_state(torch.device("cpu"), None)["cuda_rng"] is None
    E._set_rng_state(saved, None)
    assert [s.tolist() for s in calls[0]] == [[7] * 8]
    calls.clear()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)   # resumed on a machine without CUDA
    E._set_rng_state(saved, None)
    assert calls == [] and torch.equal(torch.get_rng_state(), saved["torch_rng"])


@pytest.mark.parametrize("available", [True, False])
def test_resume_restores_a_saved_cuda_rng_only_where_cuda_is(tmp_path, monkeypatch, available):
    path = tmp_path / "s"
    with pytest.raises(Interrupt):
        toy_run(path, stop_at=4)
    ck = torch.load(path, weights_only=True)
    ck["cuda_rng"] = [torch.arange(6, dtype=torch.uint8), torch.arange(6, 12, dtype=torch.uint8)]  # two GPUs
    torch.save(ck, path)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))
    engine = Engine(model, torch.optim.Adam(model.parameters()), steps=18, eval_every=2,
                    generator=torch.Generator(), checkpoint=path, fmt=FMT, run=dict(lr=0.3, steps=18))
    with monkeypatch.context() as mp:
        calls = _fake_cuda(mp, available)
        engine.resume()
    assert [[s.tolist() for s in c] for c in calls] == ([[list(range(6)), list(range(6, 12))]] if available else [])
    assert engine.done == 4 and torch.equal(torch.get_rng_state(), ck["torch_rng"])


def test_resume_refuses_another_runs_state(tmp_path):
    path = tmp_path / "s"
    with pytest.raises(Interrupt):
        toy_run(path, stop_at=4)
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match=r"holds an interrupted run with other settings \(lr 0.3 -> 0.1\); "
                                              r"resume it with its own settings, or delete the file"):
        toy_run(path, lr=0.1)
    other = StateFormat(id="test.other/1", what="other training state", extras=("history", "carry"))
    with pytest.raises(CheckpointError, match=r"is not a other training state \(expected format 'test.other/1'"):
        toy_run(path, fmt=other)
    assert path.read_bytes() == before                  # a refusal never touches the file


def test_resume_refuses_other_data_by_content_hash(tmp_path):
    path = tmp_path / "s"

    def run(sha, **kw):
        torch.manual_seed(0)
        m = nn.Linear(2, 1)
        e = Engine(m, torch.optim.SGD(m.parameters(), lr=0.1), steps=4, eval_every=2, checkpoint=path, fmt=FMT,
                   run=dict(n=10, data_sha256=sha), content={"data_sha256": "training set"}, **kw)
        e.resume()
        e.run(lambda i: m(torch.ones(1, 2)).pow(2).sum(), state=lambda: {"history": {}, "carry": None})
        return e
    run("a" * 64)
    with pytest.raises(CheckpointError, match=r"interrupted run on another training set \(content hash aaaaaaaaaaaa"
                                              r"\.\.\. there, bbbbbbbbbbbb\.\.\. now; the sizes and settings match\)"):
        run("b" * 64)
    ck = torch.load(path, weights_only=True)
    del ck["run"]["data_sha256"]                        # a state written before hashes were recorded
    torch.save(ck, path)
    assert run("b" * 64).done == 4


def test_a_damaged_or_unversioned_state(tmp_path):
    path = tmp_path / "s"
    torch.save({"format": FMT.id, "run": {}}, path)
    with pytest.raises(CheckpointError, match=r"damaged toy training state \(missing step, model, optimizer, "
                                              r"best_state, bad_evals, torch_rng, history, carry, generator\)"):
        toy_run(path)
    with pytest.raises(Interrupt):
        toy_run(path.with_name("t"), stop_at=2)
    ck = torch.load(path.with_name("t"), weights_only=True)
    del ck["format"]
    torch.save(ck, path)
    with pytest.raises(CheckpointError, match="expected format"):
        toy_run(path)
    legacy = StateFormat(id=FMT.id, what=FMT.what, extras=FMT.extras, unversioned=True)
    assert toy_run(path, fmt=legacy)[3].done == 18


def test_divergence_keeps_the_last_good_checkpoint(tmp_path):
    path = tmp_path / "s"
    with pytest.raises(TrainingDiverged, match=r"training diverged between steps 4 and 6: the training loss is nan; "
                                               r"the run as of step 4 stays in '.*s'; lower the learning rate$"):
        toy_run(path, poison_at=4)
    ck = torch.load(path, weights_only=True)
    assert ck["step"] == 4 and all(torch.isfinite(v).all() for v in ck["model"].values())
    assert leftovers(tmp_path) == []
    fresh = tmp_path / "fresh"
    with pytest.raises(TrainingDiverged, match=r"between steps 0 and 2: the training loss is (nan|inf); "
                                               r"lower the learning rate$"):
        toy_run(fresh, lr=1e30)
    assert not fresh.exists() and leftovers(tmp_path) == []


def test_steps_after_the_last_evaluation_are_checked_at_the_end():
    m = nn.Linear(2, 1)
    engine = Engine(m, steps=3, where=lambda good, now: f"in {now} steps")
    losses = iter([1.0, float("inf"), 2.0])
    with pytest.raises(TrainingDiverged, match="training diverged in 3 steps: the training loss is inf"):
        engine.run(lambda i: torch.tensor(next(losses)))
    assert engine.done == 3


def test_a_failed_save_leaves_the_previous_checkpoint_and_no_temporary_file(tmp_path):
    path = tmp_path / "s"
    with pytest.raises(Interrupt):
        toy_run(path, stop_at=2)
    before = path.read_bytes()
    torch.manual_seed(0)
    m = nn.Linear(2, 1)
    e = Engine(m, torch.optim.SGD(m.parameters(), lr=0.1), steps=4, eval_every=2, checkpoint=path, fmt=FMT,
               run=dict(lr=0.3, steps=18))
    with pytest.raises(Exception):
        e.run(lambda i: m(torch.ones(1, 2)).sum(), state=lambda: {"history": {}, "carry": lambda: 0})  # unpicklable
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["s"]


def test_early_stopping_policy_and_best_weights():
    """patience=2 without lr_decay: stop before the step after the 2nd evaluation without improvement."""
    torch.manual_seed(0)
    m = nn.Linear(1, 1, bias=False)
    scores = iter([3.0, 1.0, 2.0, 2.5, 0.5, 0.1])     # improves at evaluations 1 and 2, then not
    snaps = []

    def evaluate(n):
        snaps.append(m.weight.detach().clone())
        s = next(scores)
        improved = s < evaluate.best
        evaluate.best = min(s, evaluate.best)
        return improved
    evaluate.best = math.inf
    opt = torch.optim.SGD(m.parameters(), lr=0.1)

    def step(i):
        loss = m(torch.ones(1, 1)).pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    e = Engine(m, opt, steps=6, eval_every=1, keep_best=True, patience=2).run(step, evaluate)
    assert e.stopped and e.done == 4 and len(snaps) == 4 and e.bad == 2
    assert torch.equal(m.weight, snaps[1])            # the weights of the best evaluation came back


def test_a_checkpointed_engine_needs_its_format_and_optimizer():
    with pytest.raises(ValueError, match="needs a state format"):
        Engine(nn.Linear(1, 1), steps=1, checkpoint="x")


# ----------------------------------------------------------------------------- the one reader
def test_the_reader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing")
    with pytest.raises(CheckpointError, match=r"is a directory, not a checkpoint file \(not a regular file\)"):
        load_checkpoint(tmp_path)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(UnreadableCheckpoint, match=r"is empty \(0 bytes\), not a checkpoint"):
        load_checkpoint(empty)
    junk = tmp_path / "junk"
    junk.write_bytes(b"junk")
    for kind in (RuntimeError, CheckpointError, ValueError):     # unreadable is all three
        with pytest.raises(kind, match="is not a readable checkpoint .*delete it to start afresh"):
            load_checkpoint(junk)
    code = tmp_path / "code"
    torch.save({"format": "x", "f": os.getcwd}, code)            # would run code on load: refused
    with pytest.raises(UnreadableCheckpoint, match="not a readable toy state"):
        load_checkpoint(code, what="toy state")
    ok = tmp_path / "ok"
    torch.save({"format": "x/1", "t": torch.ones(2)}, ok)
    assert torch.equal(load_checkpoint(ok, format="x/1")["t"], torch.ones(2))
    with pytest.raises(CheckpointError, match=r"is not a toy state \(expected format 'y/1'; found \['format', 't'\]\)"
                                              r"; fix it"):
        load_checkpoint(ok, format="y/1", what="toy state", fix="; fix it")
    torch.save([1, 2], ok)
    with pytest.raises(CheckpointError, match=r"found list"):
        load_checkpoint(ok, format="y/1")
    assert load_checkpoint(ok) == [1, 2]               # without a format id: whatever weights-only data it holds


def test_progress_bar_counts_steps_from_the_resume_point(tmp_path, monkeypatch):
    import tqdm.auto
    bars = []

    class FakeBar:
        def __init__(self, total, initial, desc, leave):
            self.args, self.n, self.postfix, self.closed = (total, initial, desc, leave), initial, [], False
            bars.append(self)

        def update(self, k):
            self.n += k

        def set_postfix(self, **kw):
            self.postfix.append(kw)

        def close(self):
            self.closed = True
    monkeypatch.setattr(tqdm.auto, "tqdm", FakeBar)
    torch.manual_seed(0)
    m = nn.Linear(2, 1)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    path = tmp_path / "s"

    def engine():
        return Engine(m, opt, steps=6, eval_every=2, checkpoint=path, fmt=FMT, run={}, progress=True, desc="toy",
                      postfix=lambda: {"at": len(bars[-1].postfix)})

    def stop(n):
        if n == 4:
            raise Interrupt
    with pytest.raises(Interrupt):
        engine().run(lambda i: m(torch.ones(1, 2)).sum(), lambda n: None,
                     state=lambda: {"history": {}, "carry": None}, after_eval=[stop])
    e = engine()
    e.resume()
    e.run(lambda i: m(torch.ones(1, 2)).sum(), lambda n: None, state=lambda: {"history": {}, "carry": None})
    assert [b.args for b in bars] == [(6, 0, "toy", False), (6, 4, "toy", False)]
    assert [b.n for b in bars] == [3, 6] and all(b.closed for b in bars)   # interrupted mid-step 4: closed too
    assert bars[0].postfix == [{"at": 0}, {"at": 1}] and bars[1].postfix == [{"at": 0}]

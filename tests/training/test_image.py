"""hypernet_lib.train: determinism, exact resume, atomic checkpoints, early stopping, schedules."""
import math
import os

import pytest
import torch
import torch.nn as nn
from helpers import toy_data

from hypernet_lib.data import random_crop
from hypernet_lib.training import History, atomic_save, evaluate, fit, load_checkpoint, make_optimizer


def toy_model():
    return nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))


KW = dict(epochs=4, batch_size=16, lr=1e-2, schedule="cosine", clip=1.0, seed=7,
          augment=lambda x, g: random_crop(x, 1, g))


def same_weights(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_same_seed_same_numbers():
    torch.manual_seed(0); m1 = toy_model()
    torch.manual_seed(0); m2 = toy_model()
    h1, h2 = fit(m1, toy_data(), **KW), fit(m2, toy_data(), **KW)
    timeless = lambda h: {k: v for k, v in h.to_dict().items() if k != "epoch_time"}
    assert same_weights(m1, m2) and timeless(h1) == timeless(h2)
    torch.manual_seed(0); m3 = toy_model()
    fit(m3, toy_data(), **{**KW, "seed": 8})
    assert not same_weights(m1, m3)


def test_interrupted_run_resumes_to_identical_weights(tmp_path):
    torch.manual_seed(0); ref = toy_model()
    h_ref = fit(ref, toy_data(), **KW)

    class Interrupt(Exception):
        pass

    def stop_after_second(epoch, history):
        if epoch == 1:
            raise Interrupt

    ckpt = tmp_path / "run.pt"
    torch.manual_seed(0); m = toy_model()
    with pytest.raises(Interrupt):
        fit(m, toy_data(), checkpoint=ckpt, callbacks=[stop_after_second], **KW)
    assert load_checkpoint(ckpt)["epoch"] == 2
    torch.manual_seed(123); resumed = toy_model()          # a fresh process would start from other weights
    h = fit(resumed, toy_data(), checkpoint=ckpt, **KW)
    assert same_weights(ref, resumed)
    assert h.to_dict() == {**h_ref.to_dict(), "epoch_time": h.epoch_time}


def test_resume_refuses_a_checkpoint_of_other_settings(tmp_path):
    ckpt = tmp_path / "run.pt"
    torch.manual_seed(0)
    fit(toy_model(), toy_data(), checkpoint=ckpt, **{**KW, "epochs": 1})
    with pytest.raises(ValueError, match=r"other settings \(lr 0.01 -> 0.02\).*delete the file"):
        fit(toy_model(), toy_data(), checkpoint=ckpt, **{**KW, "epochs": 1, "lr": 2e-2})
    wider = nn.Sequential(nn.Flatten(), nn.Linear(36, 32), nn.ReLU(), nn.Linear(32, 2))
    with pytest.raises(ValueError, match=r"shapes"):
        fit(wider, toy_data(), checkpoint=ckpt, **{**KW, "epochs": 1})


def test_atomic_save_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "ck.pt"
    atomic_save({"a": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_save({"a": Unpicklable()}, path)
    assert load_checkpoint(path) == {"a": 1}
    assert os.listdir(tmp_path) == ["ck.pt"]               # no temporary file left behind


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(RuntimeError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


def _snapshots():
    """A callback that keeps a copy of the weights after every epoch, and the list it fills."""
    snaps = []

    def keep(model):
        return lambda epoch, history: snaps.append({k: v.clone() for k, v in model.state_dict().items()})
    return snaps, keep


ES = dict(epochs=20, batch_size=16, lr=3e-2, patience=2, seed=2)   # val acc (of 16): 9 12 11 13 14 14 15 15 15


def test_early_stopping_and_best_weights_restored():
    torch.manual_seed(2); m = toy_model()
    snaps, keep = _snapshots()
    h = fit(m, toy_data(), callbacks=[keep(m)], **ES)
    accs = h.val_acc
    # the run learns, then stalls: the best epoch is neither the first nor the last
    assert 0 < h.best_epoch < h.epochs - 1, accs
    assert h.best_epoch == accs.index(max(accs))                    # the first epoch with the best val acc
    assert h.epochs == h.best_epoch + 1 + ES["patience"] and h.stopped_early
    best, last = snaps[h.best_epoch], snaps[-1]
    assert any(not torch.equal(best[k], last[k]) for k in best)    # training went on after the best epoch
    assert all(torch.equal(v, best[k]) for k, v in m.state_dict().items())   # and the best weights came back
    assert h.test_acc == evaluate(m, toy_data().x_test, toy_data().y_test)["acc"]
    assert h.test_loss == pytest.approx(evaluate(m, toy_data().x_test, toy_data().y_test)["loss"], rel=1e-6)


def test_resume_with_early_stopping_state(tmp_path):
    """Interrupted twice: once before the best epoch (so the final weights come from resumed training),
    once while the no-improvement counter is 1 (so stopping on time needs the restored counter)."""
    torch.manual_seed(2); ref = toy_model()
    h_ref = fit(ref, toy_data(), **ES)
    bad = [e for e in range(1, h_ref.epochs) if h_ref.val_acc[e] <= max(h_ref.val_acc[:e])]
    first = next(e for e in bad if e < h_ref.best_epoch)            # a bad epoch before the best one
    second = next(e for e in bad if h_ref.best_epoch < e < h_ref.epochs - 1)
    assert h_ref.stopped_early and first < h_ref.best_epoch < second

    class Interrupt(Exception):
        pass

    def stop_after(k):
        def cb(epoch, history):
            if epoch == k:
                raise Interrupt
        return cb

    ckpt = tmp_path / "run.pt"
    torch.manual_seed(2); m = toy_model()
    with pytest.raises(Interrupt):
        fit(m, toy_data(), checkpoint=ckpt, callbacks=[stop_after(first)], **ES)
    assert load_checkpoint(ckpt)["bad_epochs"] == 1
    torch.manual_seed(99); m = toy_model()
    with pytest.raises(Interrupt):
        fit(m, toy_data(), checkpoint=ckpt, callbacks=[stop_after(second)], **ES)
    assert load_checkpoint(ckpt)["bad_epochs"] == 1
    torch.manual_seed(123); resumed = toy_model()
    h = fit(resumed, toy_data(), checkpoint=ckpt, **ES)
    assert same_weights(ref, resumed)
    assert h.to_dict() == {**h_ref.to_dict(), "epoch_time": h.epoch_time}


def _cosine(lr, step, total, warmup):
    """The schedule written out: linear warm-up to lr over `warmup` steps, then half a cosine to 0."""
    if step < warmup:
        return lr * (step + 1) / warmup
    return lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))


@pytest.mark.parametrize("warmup", [0, 3])
def test_cosine_schedule_step_by_step(warmup):
    torch.manual_seed(0)
    # one step per epoch, so history.lr holds the learning rate of every step
    h = fit(toy_model(), toy_data(), epochs=8, batch_size=16, lr=0.1, schedule="cosine", warmup_steps=warmup,
            max_steps_per_epoch=1)
    assert h.lr == pytest.approx([_cosine(0.1, s, 8, warmup) for s in range(8)], rel=1e-9, abs=1e-12)
    if warmup:
        assert h.lr[:4] == pytest.approx([0.1 / 3, 0.2 / 3, 0.1, 0.1])
    else:
        assert h.lr[0] == pytest.approx(0.1) and h.lr[4] == pytest.approx(0.05)


def test_amp_and_channels_last_reach_every_forward_pass(monkeypatch):
    """On the CPU fit's bf16 autocast and channels-last are documented as no-ops (CUDA only): same numbers.
    The amp flag must still reach every forward pass (training and evaluation), and on CUDA ask for bf16."""
    from hypernet_lib.training import image as T
    torch.manual_seed(0); plain = toy_model()
    h_plain = fit(plain, toy_data(), epochs=2, batch_size=16, lr=1e-2, max_steps_per_epoch=2)
    calls, real = [], T._autocast
    monkeypatch.setattr(T, "_autocast", lambda device, amp: (calls.append((device.type, amp)), real(device, amp))[1])
    torch.manual_seed(0); m = toy_model()
    h = fit(m, toy_data(), epochs=2, batch_size=16, lr=1e-2, max_steps_per_epoch=2, amp=True, channels_last=True)
    assert calls == [("cpu", True)] * (2 * (2 + 1) + 1)     # 2 epochs x (2 steps + 1 val batch) + 1 test batch
    assert same_weights(plain, m) and h.val_loss == h_plain.val_loss and h.test_acc == h_plain.test_acc
    asked = []
    monkeypatch.setattr(torch, "autocast", lambda **kw: asked.append(kw))
    real(torch.device("cuda"), True); real(torch.device("cpu"), True); real(torch.device("cuda"), False)
    assert asked == [dict(device_type="cuda", dtype=torch.bfloat16, enabled=True),
                     dict(device_type="cpu", dtype=torch.bfloat16, enabled=False),
                     dict(device_type="cuda", dtype=torch.bfloat16, enabled=False)]


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown optimizer 'adamm'"):
        make_optimizer("adamm", [nn.Parameter(torch.zeros(1))], 1e-3)
    with pytest.raises(ValueError, match="unknown schedule"):
        fit(toy_model(), toy_data(), epochs=1, batch_size=8, lr=1e-3, schedule="linear")
    with pytest.raises(ValueError, match="x has 3 examples but y has 2"):
        evaluate(toy_model(), torch.zeros(3, 1, 6, 6), torch.zeros(2, dtype=torch.long))


def test_history_round_trip():
    h = History(train_loss=[1.0], val_acc=[0.5], test_acc=0.9)
    assert History.from_dict(h.to_dict()) == h and h.test_error == pytest.approx(10.0)


def test_without_a_validation_split_the_last_weights_are_kept():
    d = toy_data()
    d.x_val, d.y_val = d.x_val[:0], d.y_val[:0]
    torch.manual_seed(0); m = toy_model()
    h = fit(m, d, epochs=3, batch_size=16, lr=1e-2)
    assert h.best_epoch == 2
    with pytest.raises(ValueError, match="needs a validation split"):
        fit(toy_model(), d, epochs=3, batch_size=16, lr=1e-2, patience=1)


def test_bf16_autocast_path_on_the_cpu(monkeypatch):
    """fit's amp path, run for real with CPU bf16 autocast switched on: every forward pass (training,
    validation, test) runs under bf16 autocast, only with amp=True, and the numbers stay close to fp32."""
    from hypernet_lib.training import image as T
    monkeypatch.setattr(T, "_autocast", lambda device, amp: torch.autocast("cpu", dtype=torch.bfloat16,
                                                                        enabled=bool(amp)))

    class Recorder(nn.Module):
        def __init__(self):
            super().__init__()
            self.net, self.seen = toy_model(), []

        def forward(self, x):
            out = self.net(x)
            self.seen.append((self.training, out.dtype))
            return out

    runs = {}
    for amp in (False, True):
        torch.manual_seed(0); m = Recorder()
        runs[amp] = (m, fit(m, toy_data(), epochs=2, batch_size=16, lr=1e-2, max_steps_per_epoch=3, amp=amp))
    want = torch.bfloat16
    assert runs[True][0].seen == [(True, want)] * 3 + [(False, want)] + [(True, want)] * 3 + [(False, want)] * 2
    assert {d for _, d in runs[False][0].seen} == {torch.float32}
    h32, h16 = runs[False][1], runs[True][1]
    assert h16.train_loss == pytest.approx(h32.train_loss, rel=3e-2)
    assert h16.val_loss == pytest.approx(h32.val_loss, rel=3e-2)
    assert all(isinstance(v, float) for v in h16.train_loss + h16.val_loss + [h16.test_loss])


def test_evaluate_averages_over_examples_not_batches():
    """5 examples in batches of 2 (the last one short): the mean over examples, computed in one go,
    in eval mode (dropout off), and the model's training mode is given back."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.Dropout(0.9))
    x = torch.randn(5, 1, 2, 2, generator=torch.Generator().manual_seed(1)) * 3
    y = torch.tensor([0, 1, 2, 1, 0])
    with torch.no_grad():
        logits = model[1](x.flatten(1))
    want_loss = torch.nn.functional.cross_entropy(logits, y).item()
    want_acc = (logits.argmax(1) == y).sum().item() / 5
    model.train()
    got = evaluate(model, x, y, batch_size=2)
    assert got["loss"] == pytest.approx(want_loss, rel=1e-6) and got["acc"] == want_acc
    assert 0 < want_acc < 1 and model.training
    model.eval()
    evaluate(model, x, y, batch_size=2)
    assert not model.training


def test_checkpoint_format_and_a_state_written_before_format_ids(tmp_path):
    """fit writes the engine's one training-state format (weights only, with a format id); a checkpoint
    written before format ids existed (no 'format' key, no CUDA state) still resumes to the same run."""
    torch.manual_seed(0); ref = toy_model()
    h_ref = fit(ref, toy_data(), **KW)
    ckpt = tmp_path / "run.pt"

    def stop(epoch, history):
        if epoch == 1:
            raise KeyboardInterrupt
    torch.manual_seed(0); m = toy_model()
    with pytest.raises(KeyboardInterrupt):
        fit(m, toy_data(), checkpoint=ckpt, callbacks=[stop], **KW)
    state = torch.load(ckpt, weights_only=True)
    assert state["format"] == "hypernet_lib.fit.train_state/1" and state["cuda_rng"] is None
    val = state["history"]["val_acc"]
    assert state["epoch"] == 2 and state["bad_epochs"] == int(val[1] <= val[0]) and len(val) == 2
    for key in ("format", "cuda_rng"):                  # the layout fit wrote before
        del state[key]
    torch.save(state, ckpt)
    torch.manual_seed(5); resumed = toy_model()
    h = fit(resumed, toy_data(), checkpoint=ckpt, **KW)
    assert same_weights(ref, resumed) and h.to_dict() == {**h_ref.to_dict(), "epoch_time": h.epoch_time}


def test_resume_refuses_another_loops_state_and_a_damaged_one(tmp_path):
    from hypernet_lib.training import TRAIN_STATE_FORMAT, CheckpointError
    ckpt = tmp_path / "run.pt"
    torch.save({"format": TRAIN_STATE_FORMAT, "run": {}}, ckpt)          # a language model's training state
    with pytest.raises(CheckpointError, match="is not a fit training state .expected format 'hypernet_lib.fit"):
        fit(toy_model(), toy_data(), checkpoint=ckpt, epochs=1, batch_size=16, lr=1e-2)
    torch.save({"format": "hypernet_lib.fit.train_state/1", "run": {}}, ckpt)
    with pytest.raises(CheckpointError, match=r"damaged fit training state \(missing epoch, model"):
        fit(toy_model(), toy_data(), checkpoint=ckpt, epochs=1, batch_size=16, lr=1e-2)
    ckpt.write_bytes(b"junk")
    with pytest.raises(RuntimeError, match="not a readable fit training state.*delete the file"):
        fit(toy_model(), toy_data(), checkpoint=ckpt, epochs=1, batch_size=16, lr=1e-2)


def adam(params):
    return torch.optim.Adam(params, lr=1e-2)


def test_a_callable_optimizer_is_recorded_by_name(tmp_path):
    """A checkpoint holds no code: a callable optimiser is recorded by its qualified name, and resuming
    with another callable is refused."""
    ckpt = tmp_path / "run.pt"
    kw = dict(epochs=1, batch_size=16, lr=1e-2, checkpoint=ckpt)
    fit(toy_model(), toy_data(), optimizer=adam, **kw)
    assert torch.load(ckpt, weights_only=True)["run"]["optimizer"] == f"callable {__name__}.adam"
    fit(toy_model(), toy_data(), optimizer=adam, **kw)                     # the same run: nothing left to do
    with pytest.raises(ValueError, match=r"other settings \(optimizer 'callable .*adam' -> 'callable .*<lambda>'"):
        fit(toy_model(), toy_data(), optimizer=lambda p: torch.optim.SGD(p, lr=1e-2), **kw)

"""Resumable chapter runs: where ShippedCheckpoint.run_state puts a training state, and what a resumed
chapter run reports (the learning curve, its seconds and its threads come from the saved state)."""
import pytest
import torch

from hypernet_lib.book import ShippedCheckpoint
from hypernet_lib.data import Vocab, make_char_data
from hypernet_lib.nn import CharLM
from hypernet_lib.training import LMHistory, train_char_lm

TEXT = "to be, or not to be: that is the question. " * 60


def test_run_state_is_keyed_by_the_settings_and_honours_hypernet_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("HYPERNET_RUNS", str(tmp_path / "runs"))
    a = ShippedCheckpoint("ch9_demo", {"hidden": 8}, "cpu")
    same = ShippedCheckpoint("ch9_demo", {"hidden": 8}, "cpu")
    other = ShippedCheckpoint("ch9_demo", {"hidden": 16}, "cpu")
    path = a.run_state("ln-hyperlstm_random_z")
    assert path.startswith(str(tmp_path / "runs" / "ch9_demo-")) and path.endswith("/ln-hyperlstm_random_z.pt")
    assert same.run_state("lstm") == a.run_state("lstm")
    assert other.run_state("lstm") != a.run_state("lstm")               # new settings start afresh
    assert ShippedCheckpoint("ch9_demo", {"hidden": 8}, "full").run_state("lstm") != a.run_state("lstm")
    assert ShippedCheckpoint("ch9_demo", {"hidden": 8}, "smoke").run_state("lstm") is None   # CI trains


def test_run_state_default_folder_is_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("HYPERNET_RUNS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    path = ShippedCheckpoint("ch9_demo", {}, "cpu").run_state("lstm")
    assert path.startswith(str(tmp_path / ".cache" / "hypernet_lib" / "runs" / "ch9_demo-"))


@pytest.mark.parametrize("bad", ["", "LSTM", "a/b", "../up", 3])
def test_run_state_refuses_a_bad_model_name(bad):
    with pytest.raises(ValueError, match="model name must be lower-case"):
        ShippedCheckpoint("ch9_demo", {}, "cpu").run_state(bad)


def test_a_rerun_of_a_finished_run_returns_its_curve_time_and_threads(tmp_path, monkeypatch):
    """What the chapter 5 cell relies on: calling the loop again with the same state file trains nothing
    and hands back the recorded history, seconds and thread count included."""
    monkeypatch.setenv("HYPERNET_RUNS", str(tmp_path))
    vocab = Vocab.from_text(TEXT)
    data = make_char_data(TEXT[:2000], TEXT[2000:2400], TEXT[2400:], name="t", vocab=vocab)
    path = ShippedCheckpoint("ch9_demo", {"a": 1}, "cpu").run_state("lstm")
    kw = dict(batch_size=4, seq_length=10, max_steps=12, eval_every=6, progress=False, checkpoint=path)
    torch.manual_seed(0)
    first = train_char_lm(CharLM(len(vocab), cell="lstm", hidden_size=8), data, **kw)
    assert first.threads == torch.get_num_threads() >= 1 and first.seconds[-1] > 0
    torch.manual_seed(1)
    model = CharLM(len(vocab), cell="lstm", hidden_size=8)        # other initial weights
    again = train_char_lm(model, data, **kw)
    assert again.to_dict() == first.to_dict()
    saved = torch.load(path, weights_only=True)
    best = saved["best_state"] if saved.get("best_state") is not None else saved["model"]
    for name, p in model.state_dict().items():
        assert torch.equal(p, best[name]), name


def test_histories_saved_before_threads_existed_still_load():
    d = LMHistory(step=[5], chars=[50], train_bpc=[3.0], val_bpc=[3.1], lr=[1e-3], seconds=[0.5]).to_dict()
    d.pop("threads")
    assert LMHistory.from_dict(d).threads == 0
    d.pop("step")
    with pytest.raises(KeyError):                  # anything else missing is still an error
        LMHistory.from_dict(d)

"""Scale convention, device fallback and seeding."""
import pytest
import torch

from hypernet_lib import runtime
from hypernet_lib.analysis import time_interleaved
from hypernet_lib.book import by_scale, get_scale, run_banner
from hypernet_lib.runtime import get_device, seed_everything


def test_scale_defaults_to_cpu(monkeypatch):
    monkeypatch.delenv("HYPERNET_SCALE", raising=False)
    assert get_scale() == "cpu"
    monkeypatch.setenv("HYPERNET_SCALE", "Smoke")
    assert get_scale() == "smoke"


def test_unknown_scale_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HYPERNET_SCALE", "huge")
    with pytest.raises(ValueError, match=r"HYPERNET_SCALE='huge' is not a known scale.*smoke, cpu, full"):
        get_scale()


def test_by_scale():
    assert [by_scale(s, smoke=1, cpu=2, full=3) for s in ("smoke", "cpu", "full")] == [1, 2, 3]
    with pytest.raises(ValueError, match="unknown scale"):
        by_scale("gpu", smoke=1, cpu=2, full=3)


def test_device_falls_back_to_cpu(monkeypatch):
    monkeypatch.delenv("HYPERNET_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(runtime, "_mps_available", lambda: False)
    assert get_device() == torch.device("cpu")
    monkeypatch.setattr(runtime, "_mps_available", lambda: True)
    assert get_device() == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device() == torch.device("cuda")


def test_asking_for_a_missing_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("HYPERNET_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="cuda.*not available|is_available"):
        get_device()


def test_seeding_is_reproducible():
    seed_everything(5); a = torch.randn(4)
    g = seed_everything(5); b = torch.randn(4)
    assert torch.equal(a, b) and torch.equal(torch.randn(3, generator=g), torch.randn(3, generator=torch.Generator().manual_seed(5)))


def test_run_banner_names_scale_data_device(capsys):
    line = run_banner("smoke", "MNIST 5k subset", torch.device("cpu"))
    assert "scale=smoke" in line and "MNIST 5k subset" in line and "device=cpu" in line
    assert line in capsys.readouterr().out


def test_time_interleaved_takes_turns_and_reduces(monkeypatch):
    from hypernet_lib.analysis import timing
    calls, clock = [], [0.0]
    durations = {"a": iter([9, 1, 2, 3]), "b": iter([9, 5, 6, 100])}   # first value: the warm-up round

    def make(name):
        def fn():
            calls.append(name)
            clock[0] += next(durations[name])
        return fn

    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])
    med = time_interleaved({"a": make("a"), "b": make("b")}, repeats=3, warmup=1)
    assert calls == ["a", "b"] * 4                                     # round robin, warm-up first
    assert med == {"a": 2, "b": 6}                                      # warm-up not counted
    durations.update(a=iter([1, 4, 2]), b=iter([1, 7, 3]))
    calls.clear()
    best = time_interleaved({"a": make("a"), "b": make("b")}, repeats=2, warmup=1, stat="min")
    assert best == {"a": 2, "b": 3}
    with pytest.raises(ValueError, match="stat must be"):
        time_interleaved({}, repeats=1, stat="mean")
    with pytest.raises(ValueError, match="repeats must be a positive integer"):
        time_interleaved({}, repeats=0)


def test_settings_diff_names_each_changed_setting():
    from hypernet_lib.training import settings_diff
    assert settings_diff({"lr": 0.1, "seed": 0}, {"lr": 0.1, "seed": 0}) == ""
    assert settings_diff({"lr": 0.1, "seed": 0}, {"lr": 0.2, "seed": 0, "clip": 1.0}) == "lr 0.1 -> 0.2; clip None -> 1.0"

"""The benchmark scripts run end to end at toy sizes and print their ratio lines (no timing is asserted)."""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(autouse=True)
def _threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_bench_hyperlstm_prints_every_row(capsys):
    _load("bench_hyperlstm").main(["--hidden", "8", "--hyper", "4", "--batch", "2", "--seq", "3",
                                   "--repeats", "1", "--naive", "--device", "cpu"])
    out = capsys.readouterr().out
    for row in ("nn.LSTM (baseline)", "LN-LSTM", "HyperLSTM", "LN-HyperLSTM", "LN-HyperLSTM, autograd loop",
                "LN-HyperLSTM, naive loop"):
        assert f"\n{row} " in out
    assert "machine: cpu" in out


def test_bench_hyperlstm_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit) as e:
        _load("bench_hyperlstm").main(["--batch", "0"])
    assert e.value.code == 2 and "--batch must be a positive integer" in capsys.readouterr().err


def test_bench_static_returns_the_ratio(capsys, monkeypatch):
    mod = _load("bench_static")
    ran = []

    def fake_timer(fns, repeats, warmup, device):       # runs every step once, reports fixed medians
        for name, fn in fns.items():
            fn()
            ran.append(name)
        return {"conventional": 0.002, "hypernetwork": 0.003, "generation": 0.0001}

    monkeypatch.setattr(mod, "time_interleaved", fake_timer)
    ratio = mod.main(["--batch", "4", "--steps", "1"])
    out = capsys.readouterr().out
    assert sorted(ran) == ["conventional", "generation", "hypernetwork"]
    assert ratio == pytest.approx(1.5)                   # hypernetwork / conventional, not the other way
    assert "conventional      2.00 ms/step" in out and "hypernetwork      3.00 ms/step" in out
    assert "kernel generation alone: 0.100 ms" in out and "ratio hypernetwork / conventional: 1.500" in out
    ratio = _load("bench_static").main(["--batch", "4", "--steps", "1"])   # and the real timer runs end to end
    assert ratio > 0 and "ratio hypernetwork / conventional" in capsys.readouterr().out


def test_bench_static_rejects_bad_arguments():
    with pytest.raises(SystemExit) as e:
        _load("bench_static").main(["--steps", "0"])
    assert e.value.code == 2


def test_bench_cifar_runs_each_variant(capsys):
    rows = _load("bench_cifar").main(["--width", "0.125", "--batch", "2", "--reps", "1", "--warmup", "0",
                                      "--device", "cpu", "--variants", "standard", "chunked_full"])
    assert [r["variant"] for r in rows] == ["standard", "chunked_full"]
    assert rows[1]["params"] < rows[0]["params"]
    assert "generation" in capsys.readouterr().out


def test_bench_conditional_prints_speedups(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["bench_conditional.py", "--batch", "8", "--repeats", "1"])
    _load("bench_conditional").main()
    out = capsys.readouterr().out
    assert "x vs loop" in out and "forward+backward" in out


def test_bench_open_chapters_times_a_copy_and_names_the_checkpoint(tmp_path, capsys):
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os\nprint('scale', os.environ['HYPERNET_SCALE'])\n"
        "print('loaded the shipped checkpoint toy.pt (sha256 0123…)')")])
    path = tmp_path / "toy.ipynb"
    nbformat.write(nb, path)
    before = path.read_bytes()
    results = _load("bench_open_chapters").main([str(path), "--scale", "smoke", "--goal", "600"])
    out = capsys.readouterr().out
    assert set(results) == {"baseline", "toy"} and all(v > 0 for v in results.values())
    assert "baseline: kernel start + imports" in out
    assert re.search(r"\ntoy +[\d.]+ s +[\d.]+x baseline  within the 600 s goal  \(loaded toy\.pt\)", out)
    assert path.read_bytes() == before                   # the notebook itself is not executed in place


@pytest.mark.parametrize("argv, message", [
    (["--scale", "huge"], "--scale must be one of smoke, cpu, full"),
    (["--goal", "0"], "--goal and --timeout must be positive"),
    (["no/such.ipynb"], "no such notebook: no/such.ipynb"),
])
def test_bench_open_chapters_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        _load("bench_open_chapters").main(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err

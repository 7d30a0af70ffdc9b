"""The build and test tools in tools/: scripts that find the repository from their own path."""
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import ROOT, tool

TOOLS = ["build_book", "colab", "execute", "run_tests", "full_run", "train_ch5"]


def test_tools_left_the_package():
    assert not (ROOT / "hypernet_lib" / "tools").exists(), "hypernet_lib/tools/ should have moved to tools/"
    for path in (ROOT / "hypernet_lib").rglob("*.py"):
        assert "parents[2]" not in path.read_text(), f"{path} finds the repository from inside the package"


@pytest.mark.parametrize("name", TOOLS)
def test_tool_runs_as_a_script_from_anywhere(name, tmp_path):
    res = subprocess.run([sys.executable, str(ROOT / "tools" / f"{name}.py"), "--help"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"tools/{name}.py" in res.stdout or "usage" in res.stdout


def test_colab_check_runs_from_another_folder(tmp_path):
    res = subprocess.run([sys.executable, str(ROOT / "tools" / "colab.py"), "--check"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert "_config.yml has no repository.url" not in res.stderr
    assert res.returncode in (0, 1), res.stderr[-2000:]


def test_colab_write_replaces_a_block_with_the_old_marker():
    """Blocks written before the marker was shortened are replaced whole, not stacked under a new one."""
    colab = tool("colab")
    old = colab.OLD_BEGINS[0] + "\nprint('old set-up')\n" + colab.END + "\nSCALE = get_scale()"
    new = colab.with_block(old, colab.setup_block("https://example.org/repo"))
    assert new.count(colab.END) == 1 and "old set-up" not in new and colab.OLD_BEGINS[0] not in new
    assert new.startswith(colab.BEGIN) and new.endswith("\nSCALE = get_scale()")


def make_n(*args):
    res = subprocess.run(["make", "-n", "-o", ".venv/.installed", *args], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_makefile_rules():
    assert "--execute" not in make_n("test-book") and "book build" in make_n("test-book").replace('"', "").lower()
    assert "tools/build_book.py" in make_n("book") and "--strict" not in make_n("book")
    assert "browser tests" in make_n("test-browser")
    assert "tools/execute.py --scale smoke book/02_static_mnist.ipynb" in make_n(
        "execute", "NOTEBOOKS=book/02_static_mnist.ipynb", "SCALE=smoke")
    assert "tools/run_tests.py" in make_n("test")
    assert "tools/full_run.py --scale smoke" in make_n("full-run", "SCALE=smoke")
    assert "--scale" not in make_n("full-run")           # its own default: full


def test_build_book_refuses_without_local_mathjax():
    assert (ROOT / "_extra" / "_static" / "mathjax" / "tex-mml-chtml.js").exists()
    assert "mathjax/tex-mml-chtml.js" in (ROOT / "_config.yml").read_text()


# --- the test runner: skips fail in CI ----------------------------------------------------------

SKIPPING = textwrap.dedent('''
    import pytest

    def test_runs():
        pass

    def test_needs_something():
        pytest.skip("something is not installed")

    @pytest.mark.xfail(reason="known")
    def test_known():
        assert False
''')


@pytest.fixture
def skipping_test(tmp_path):
    path = tmp_path / "test_skipping.py"
    path.write_text(SKIPPING)
    return path


def test_ci_fails_a_stage_with_a_skip(skipping_test, capsys):
    rt = tool("run_tests")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(skipping_test)]
    ok, code, skips = rt.run_stage("demo", cmd, {}, ci=True)
    out = capsys.readouterr().out
    assert code == 0 and not ok
    assert [why for _, why in skips] == ["something is not installed"]
    assert "test_needs_something" in out and "something is not installed" in out and "CI allows no skipped" in out


def test_a_developer_may_skip(skipping_test):
    rt = tool("run_tests")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(skipping_test)]
    ok, code, skips = rt.run_stage("demo", cmd, {}, ci=False)
    assert ok and len(skips) == 1


def test_ci_is_read_from_the_environment():
    rt = tool("run_tests")
    assert rt.in_ci({"CI": "true"}) and rt.in_ci({"CI": "1"})
    assert not rt.in_ci({}) and not rt.in_ci({"CI": "false"})


def test_every_stage_prints_its_time():
    rt = tool("run_tests")
    names = [name for name, _, _ in rt.stages()]
    assert names == ["library tests", "Colab clean room", "notebooks (nbval, smoke scale)", "book build (strict)",
                     "browser tests"]
    lib = rt.stages()[0][1]
    assert "not browser and not colab" in lib


# --- full run -----------------------------------------------------------------------------------

def test_full_run_refuses_full_scale_without_a_gpu(monkeypatch, capsys, tmp_path):
    import torch
    fr = tool("full_run")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert fr.main(["--scale", "full", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "CUDA GPU" in err and "SCALE=smoke" in err
    assert not (tmp_path / "out").exists()


def test_full_run_chapters_and_budget():
    fr = tool("full_run")
    assert list(fr.BUDGETS) == ["02_static_mnist", "04_cifar100", "05_hyperlstm", "06_conditional"]
    assert sum(fr.BUDGETS.values()) <= 600
    assert fr.budget("06_conditional", "full") == 90 and fr.budget("06_conditional", "smoke", 2) == 1200
    assert fr.pick(["02", "06"]) == ["02_static_mnist", "06_conditional"]
    with pytest.raises(SystemExit):
        fr.pick(["03"])


@pytest.mark.slow
def test_make_full_run_smoke_end_to_end(tmp_path):
    """`make full-run SCALE=smoke` runs chapters 2, 4, 5, 6 and leaves the checkout's checkpoints alone."""
    ckpt = ROOT / "hypernet_lib" / "checkpoints"
    before = {p.name: p.read_bytes() for p in ckpt.iterdir() if p.is_file()}
    out = tmp_path / "full-run"
    res = subprocess.run(["make", "-o", ".venv/.installed", "full-run", "SCALE=smoke", f"OUT={out}",
                          f"PY={sys.executable}"], cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    summary = json.loads((out / "full-run.json").read_text())
    assert [c["status"] for c in summary["chapters"]] == ["ok"] * 4, summary
    for c in summary["chapters"]:
        nb = json.loads((out / f"{c['chapter']}.ipynb").read_text())
        assert nb["metadata"]["hypernet"]["scale"] == "smoke"
    assert {p.name: p.read_bytes() for p in ckpt.iterdir() if p.is_file()} == before


def test_train_ch5_runs_the_chapters_own_training_cell():
    t5 = tool("train_ch5")
    setup, head, tail = t5.chapter_code()
    assert 'SCALE = get_scale()' in setup and "data = make_char_data(" in setup
    assert "RUNS = {" in head and t5.TRAIN_MARK in head and "ckpt.save(" not in head
    assert tail.startswith(t5.SPLIT_MARK) and "ckpt.save(" in tail and "train_char_lm(" in tail
    # every model goes to exactly one worker, the costliest ones first
    cost = {"a": 1.0, "b": 4.0, "c": 2.0, "d": 3.0}
    assert t5.shares(list(cost), cost, 2) == [["b", "a"], ["d", "c"]]
    assert t5.shares(list(cost), cost, 9) == [["b"], ["d"], ["c"], ["a"]]


def test_train_ch5_names_a_chapter_it_cannot_read(tmp_path):
    t5 = tool("train_ch5")
    nb = tmp_path / "ch5.ipynb"
    nb.write_text(json.dumps({"cells": [{"cell_type": "code", "metadata": {}, "source": ["x = 1\n"]}]}))
    with pytest.raises(SystemExit, match="no parameters cell, or no training cell"):
        t5.chapter_code(nb)


def test_train_ch5_worker_stops_when_its_parent_is_gone(tmp_path):
    """A worker whose script was killed exits instead of training on as an orphan."""
    child = tmp_path / "child.py"
    child.write_text(textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {str(ROOT / 'tools')!r})
        import train_ch5
        train_ch5._exit_with_parent(os.getppid(), every=0.05)
        time.sleep(30)
        print("still here", flush=True)
    """))
    parent = tmp_path / "parent.py"
    parent.write_text(textwrap.dedent(f"""
        import os, subprocess, sys, time
        out = open({str(tmp_path / 'out.txt')!r}, "w")
        child = subprocess.Popen([sys.executable, {str(child)!r}], stdout=out)
        time.sleep(2.0)                  # the child has started its watch
        print(child.pid, flush=True)
        os._exit(0)                      # the parent dies without a word; the child is orphaned
    """))
    res = subprocess.run([sys.executable, str(parent)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]
    pid = int(res.stdout.split()[0])
    for _ in range(100):
        try:
            os.kill(pid, 0)
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (ProcessLookupError, FileNotFoundError):
            break
        if state == "Z":                 # exited; waiting for whoever adopted it to reap it
            break
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
        pytest.fail("the orphaned worker was still running after 10 s")
    assert "still here" not in (tmp_path / "out.txt").read_text()


def test_execute_keeps_figures_when_the_caller_sets_a_non_inline_backend(tmp_path, monkeypatch):
    """MPLBACKEND=Agg (set for scripts and by this test suite) must not reach the kernel: with it, a
    re-executed chapter silently lost all its figures."""
    import nbformat
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import matplotlib.pyplot as plt\nplt.plot([0, 1])\nplt.show()")])
    path = tmp_path / "fig.ipynb"
    nbformat.write(nb, path)
    tool("execute").execute(path, "smoke", timeout=120)
    outputs = nbformat.read(path, as_version=4).cells[0].outputs
    assert any("image/png" in o.get("data", {}) for o in outputs), outputs

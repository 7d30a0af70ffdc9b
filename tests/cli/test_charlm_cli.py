"""The hyperlstm command line as a hostile user meets it: the exit status, the one-line message, and what is
left on disk.  Exit status: 0 done, 2 bad input (checked before any work), 3 diverged, 130 interrupted."""
import os
import re
import socket
import stat
import subprocess
import sys

import pytest
import torch

from hypernet_lib.cli import charlm as cli_module
from hypernet_lib.cli.charlm import main as cli_main
from hypernet_lib.training import lm as hl

TINY = ["--hidden_size", "8", "--hyper_num_units", "4", "--seq_length", "8", "--batch_size", "2",
        "--eval_every", "2", "--max_steps", "4", "--no_progress", "--cell", "hyperlstm"]


@pytest.fixture
def corpus(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("the cat sat on the mat; a bat ate the hat.\n" * 12)
    return p


def train(corpus, save, *extra):
    return cli_main(["train", "--data_path", str(corpus), *TINY, "--save_model", str(save), *extra])


def listing(folder):
    return sorted((str(p.relative_to(folder)), stat.S_IFMT(os.lstat(p).st_mode)) for p in folder.rglob("*"))


@pytest.fixture
def trained(tmp_path, corpus, capsys):
    m = tmp_path / "m.pt"
    assert train(corpus, m) == 0
    capsys.readouterr()
    return m


# ------------------------------------------------------------------------- 1. a diverged run
def test_diverged_run_exits_3_and_saves_nothing(tmp_path, corpus, capsys):
    m = tmp_path / "m.pt"
    before = listing(tmp_path)
    assert train(corpus, m, "--lr", "1e30") == 3
    err = capsys.readouterr().err
    assert "train: error: training diverged between steps 0 and 2: the training loss is nan" in err
    assert "nothing was saved to" in err and "Traceback" not in err
    assert listing(tmp_path) == before                    # no model, no state, no temporary file


def test_diverged_run_keeps_the_previous_model_untouched(trained, corpus, capsys):
    before = trained.read_bytes()
    assert train(corpus, trained, "--lr", "1e30") == 3
    assert trained.read_bytes() == before and not os.path.exists(f"{trained}.train_state")


def test_diverged_run_as_a_process_exits_non_zero(tmp_path, corpus):
    r = subprocess.run([sys.executable, "-m", "hypernet_lib.cli", "train", "--data_path", str(corpus), *TINY,
                        "--lr", "1e30", "--save_model", str(tmp_path / "m.pt")], capture_output=True, text=True,
                       cwd=tmp_path, timeout=300)
    assert r.returncode == 3 and "training diverged" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "m.pt").exists()


def test_a_model_with_non_finite_weights_is_refused_by_eval_and_generate(trained, corpus, capsys):
    ck = torch.load(trained, weights_only=True)
    ck["state_dict"]["out.weight"][0, 0] = float("nan")
    torch.save(ck, trained)
    assert cli_main(["eval", "--load_model", str(trained), "--data_path", str(corpus), "--no_progress"]) == 2
    assert "'out.weight' holds NaN" in capsys.readouterr().err
    assert cli_main(["generate", "--load_model", str(trained), "--prime_text", "t"]) == 2
    assert "diverged run" in capsys.readouterr().err


# ------------------------------------------------------------------------- 3. output paths, before any work
def _fifo(p):
    os.mkfifo(p)
    return p


def _sock(p):
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(p))
    s.close()
    return p


BAD_SAVE = {
    "directory": (lambda t: (t / "out").mkdir() or t / "out", "is a directory; give a file path inside it"),
    "under a regular file": (lambda t: (t / "f").write_text("x") and t / "f" / "m.pt", "is a file, not a folder"),
    "empty": (lambda t: "", "--save_model is empty"),
    "fifo": (lambda t: _fifo(t / "fifo"), "is not a regular file"),
    "socket": (lambda t: _sock(t / "sock"), "is not a regular file"),
    "link to a fifo": (lambda t: (t / "l").symlink_to(_fifo(t / "fifo")) or t / "l", "a link to .* is not a regular"),
}


@pytest.mark.parametrize("kind", list(BAD_SAVE))
def test_bad_save_model_is_refused_before_any_work(tmp_path, corpus, capsys, kind):
    make, message = BAD_SAVE[kind]
    save = make(tmp_path)
    before = listing(tmp_path)
    assert train(corpus, save) == 2
    out, err = capsys.readouterr()
    assert out == ""                                      # refused before the data was even read
    assert "train: error: --save_model" in err and re.search(message, err), err
    assert listing(tmp_path) == before                    # nothing replaced, nothing left behind


def test_save_model_through_a_symlink_writes_the_target(tmp_path, corpus, capsys):
    (tmp_path / "runs").mkdir()
    target = tmp_path / "runs" / "best.pt"
    link = tmp_path / "latest.pt"
    link.symlink_to(target)
    assert train(corpus, link) == 0
    assert link.is_symlink() and target.is_file()
    model, vocab, _ = hl.load_lm(str(link))
    assert len(vocab) == model.config["vocab_size"]


def test_read_only_folder_is_refused_before_any_work(read_only_dir, corpus, capsys):
    assert train(corpus, read_only_dir / "m.pt") == 2
    assert "is not writable" in capsys.readouterr().err


# ------------------------------------------------------------------------- 4. resume on other data
def test_resume_on_other_text_exits_2_naming_it(tmp_path, corpus, capsys, monkeypatch):
    real = hl.train_char_lm

    def interrupted(*a, **k):
        def stop(hist):
            raise KeyboardInterrupt
        return real(*a, **{**k, "on_eval": stop})
    monkeypatch.setattr(cli_module, "train_char_lm", interrupted)
    m = tmp_path / "m.pt"
    assert train(corpus, m) == 130
    monkeypatch.setattr(cli_module, "train_char_lm", real)
    text = corpus.read_text()
    i, j = text.index("c"), text.index("m")
    t = list(text)
    t[i], t[j] = t[j], t[i]                               # swap two letters: same size, same vocabulary
    corpus.write_text("".join(t))
    capsys.readouterr()
    assert train(corpus, m) == 2
    err = capsys.readouterr().err
    assert "interrupted run on another training text (content hash" in err and "delete the file" in err
    assert os.path.exists(f"{m}.train_state") and not m.exists()


# ------------------------------------------------------------------------- 5. wrong checkpoints
def test_checkpoint_with_a_short_vocabulary_is_refused(trained, capsys):
    ck = torch.load(trained, weights_only=True)
    ck["vocab"] = ck["vocab"][:-1]
    torch.save(ck, trained)
    assert cli_main(["generate", "--load_model", str(trained), "--prime_text", "t"]) == 2
    assert "so generated text would be shifted" in capsys.readouterr().err


@pytest.mark.parametrize("which", ["model", "train_state"])
def test_an_empty_file_gives_a_message_not_a_crash(tmp_path, corpus, capsys, which):
    m = tmp_path / "m.pt"
    if which == "model":
        m.write_bytes(b"")
        rc = cli_main(["generate", "--load_model", str(m)])
    else:
        (tmp_path / "m.pt.train_state").write_bytes(b"")
        rc = train(corpus, m)
    err = capsys.readouterr().err
    assert rc == 2 and "is empty (0 bytes)" in err and "Traceback" not in err


@pytest.mark.parametrize("edit,message", [
    (lambda ck: ck["config"].update(colour=1), r"unknown config key\(s\) colour"),
    (lambda ck: ck["config"].update(num_layers=-1), "config is invalid"),
])
def test_bad_config_in_a_checkpoint_is_refused(trained, capsys, edit, message):
    ck = torch.load(trained, weights_only=True)
    edit(ck)
    torch.save(ck, trained)
    assert cli_main(["generate", "--load_model", str(trained)]) == 2
    assert re.search(message, capsys.readouterr().err)


# ------------------------------------------------------------------------- 6. options refused before work
@pytest.mark.parametrize("extra,message", [
    (["--hidden_size", str(10**12)], "--hidden_size 1000000000000 .*more than this machine's memory"),
    (["--device", "meta"], "--device 'meta': training and sampling run on cpu, cuda or mps"),
    (["--device", "tpu"], "--device 'tpu' is not a device name"),
    (["--device", "cpu:3"], "there is one cpu device"),
])
def test_bad_option_values_exit_2_naming_the_option(tmp_path, corpus, capsys, extra, message):
    assert train(corpus, tmp_path / "m.pt", *extra) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert not (tmp_path / "m.pt").exists() and not (tmp_path / "m.pt.train_state").exists()


@pytest.mark.parametrize("seed", [str(2**70), "-1"])
def test_seed_out_of_range_is_an_argparse_error(tmp_path, corpus, capsys, seed):
    with pytest.raises(SystemExit) as e:
        train(corpus, tmp_path / "m.pt", "--seed", seed)
    assert e.value.code == 2 and "argument --seed: a seed is an integer in [0, 2**64 - 1]" in capsys.readouterr().err


def test_hypernet_device_is_named(tmp_path, corpus, capsys, monkeypatch):
    monkeypatch.setenv("HYPERNET_DEVICE", "tpu")
    assert train(corpus, tmp_path / "m.pt") == 2
    assert "HYPERNET_DEVICE='tpu' is not a device name; unset HYPERNET_DEVICE" in capsys.readouterr().err


def test_load_model_that_is_a_directory(tmp_path, capsys):
    assert cli_main(["generate", "--load_model", str(tmp_path)]) == 2
    assert "is a directory, not a hyperlstm language-model checkpoint file" in capsys.readouterr().err


def test_tiny_temperature_samples_instead_of_crashing(trained, capsys):
    assert cli_main(["generate", "--load_model", str(trained), "--prime_text", "t", "--gen_length", "10",
                     "--temperature", "1e-300"]) == 0
    assert len(capsys.readouterr().out.strip()) == 11

"""Nothing silent, nothing lost: what the library does with a diverged run, a bad argument, a bad output
path, a resume on other data and a checkpoint that is well-formed but wrong.  Tiny models, seconds each."""
import math
import os
import socket
import stat
import types

import pytest
import torch
import torch.nn as nn
from helpers import toy_data

from hypernet_lib.checks import TrainingDiverged, check_finite, check_output_path
from hypernet_lib.data import Vocab, make_char_data, stream_batches
from hypernet_lib.nn import CharLM
from hypernet_lib.runtime import get_device, seed_everything
from hypernet_lib.training import (
    CHECKPOINT_FORMAT,
    TRAIN_STATE_FORMAT,
    CheckpointError,
    atomic_save,
    evaluate_bpc,
    fit,
    generate,
    load_checkpoint,
    load_lm,
    save_lm,
    train_char_lm,
)


# ----------------------------------------------------------------------------------------- helpers
def toy_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(36, 8), nn.ReLU(), nn.Linear(8, 2))


TEXT = "the cat sat on the mat; a bat ate the hat.\n" * 12


def char_data(text=TEXT):
    n = len(text)
    return make_char_data(text[:int(n * .8)], text[int(n * .8):int(n * .9)], text[int(n * .9):])


def tiny_lm(vocab_size):
    torch.manual_seed(0)
    return CharLM(vocab_size, cell="hyperlstm", hidden_size=8, hyper_num_units=4)


LM_KW = dict(batch_size=2, seq_length=8, max_steps=6, eval_every=2, progress=False)


def leftovers(folder):
    """Temporary files atomic_save may have left (there must be none)."""
    return sorted(p.name for p in folder.rglob("*.tmp"))


def finite(sd):
    return all(torch.isfinite(v).all() for v in sd.values() if v.is_floating_point())


# ----------------------------------------------------------------------------------- 1. divergence
def test_char_lm_divergence_from_the_start_raises_and_writes_nothing(tmp_path):
    data = char_data()
    state = tmp_path / "run.train_state"
    with pytest.raises(TrainingDiverged, match=r"training diverged between steps 0 and 2: .*nan.*lower the learning"):
        train_char_lm(tiny_lm(len(data.vocab)), data, lr=1e30, checkpoint=str(state), **LM_KW)
    assert not state.exists() and leftovers(tmp_path) == []


def test_char_lm_divergence_later_keeps_the_last_good_state(tmp_path):
    data = char_data()
    state = tmp_path / "run.train_state"
    model = tiny_lm(len(data.vocab))

    def poison(hist):                        # after the 2nd evaluation a weight goes NaN (as a huge step would)
        if hist.step[-1] == 4:
            with torch.no_grad():
                model.out.weight[0, 0] = float("nan")
    with pytest.raises(TrainingDiverged, match=r"between steps 4 and 6: the training loss is nan; the run as of step 4 stays in"):
        train_char_lm(model, data, checkpoint=str(state), on_eval=poison, **LM_KW)
    ck = torch.load(state, weights_only=True)
    assert ck["step"] == 4 and finite(ck["model"]) and leftovers(tmp_path) == []


def test_fit_divergence_raises_and_keeps_the_last_good_epoch(tmp_path):
    ckpt = tmp_path / "fit.pt"
    with pytest.raises(TrainingDiverged, match=r"in epoch 1: the training loss is (nan|inf)"):
        fit(toy_model(), toy_data(), epochs=2, batch_size=16, lr=1e30, optimizer="sgd", checkpoint=ckpt)
    assert not ckpt.exists()

    model = toy_model()

    def poison(epoch, history):
        if epoch == 0:
            with torch.no_grad():
                model[1].weight.fill_(float("inf"))
    with pytest.raises(TrainingDiverged, match=r"in epoch 2: .*still holds the run as of epoch 1"):
        fit(model, toy_data(), epochs=3, batch_size=16, lr=1e-2, checkpoint=ckpt, callbacks=[poison])
    state = load_checkpoint(ckpt)
    assert state["epoch"] == 1 and finite(state["model"]) and leftovers(tmp_path) == []


def _tasks():
    from hypernet_lib.data import PermutedTasks
    g = torch.Generator().manual_seed(0)
    d = types.SimpleNamespace(x_train=torch.rand(40, 1, 4, 4, generator=g), y_train=torch.randint(0, 3, (40,), generator=g),
                              x_test=torch.rand(10, 1, 4, 4, generator=g), y_test=torch.randint(0, 3, (10,), generator=g))
    return PermutedTasks(d, n_tasks=2)


@pytest.mark.parametrize("loop", ["multitask", "continual"])
def test_conditional_loops_stop_on_divergence(loop):
    from hypernet_lib.nn import MainMLP, SeparateNets
    from hypernet_lib.training import train_continual, train_multitask
    model = SeparateNets(MainMLP((16, 6, 3)), n_tasks=2)
    with pytest.raises(TrainingDiverged, match="training diverged"):
        if loop == "multitask":
            train_multitask(model, _tasks(), steps=4, batch_size=8, lr=1e30, optimizer="adam", eval_every=2)
        else:
            train_continual(model, _tasks(), steps_per_task=4, batch_size=8, lr=1e30)


def test_non_finite_weights_are_refused_on_save_and_on_load(tmp_path):
    data = char_data()
    model = tiny_lm(len(data.vocab))
    with torch.no_grad():
        model.out.bias[0] = float("nan")
    path = tmp_path / "m.pt"
    with pytest.raises(TrainingDiverged, match="'out.bias' holds NaN.*nothing was written"):
        save_lm(str(path), model, data.vocab)
    assert not path.exists() and leftovers(tmp_path) == []
    torch.save({"format": CHECKPOINT_FORMAT, "config": dict(model.config), "vocab": data.vocab.chars,
                "state_dict": model.state_dict()}, path)                 # as an older version would have
    with pytest.raises(CheckpointError, match=r"damaged.*'out.bias' holds NaN.*diverged run"):
        load_lm(str(path))


# ------------------------------------------------------------------------------ 2. bad arguments
FIT_BAD = [
    (dict(clip=-1), "clip must be > 0"),
    (dict(clip=float("nan")), "clip must be > 0"),
    (dict(max_steps_per_epoch=0), "max_steps_per_epoch must be a positive integer"),
    (dict(epochs=2.5), "epochs must be an integer"),
    (dict(epochs=-1), "epochs must be an integer >= 0"),
    (dict(batch_size=0), "batch_size must be a positive integer"),
    (dict(batch_size=True), "batch_size must be an integer"),
    (dict(lr=-1e-3), "lr must be >= 0"),
    (dict(lr=float("inf")), "lr must be >= 0"),
    (dict(weight_decay=-1), "weight_decay must be >= 0"),
    (dict(patience=0), "patience must be a positive integer"),
    (dict(seed=-1), r"seed must be an integer in \[0, "),
    (dict(seed=2**70), r"seed must be an integer in \[0, "),
    (dict(warmup_steps=-3), "warmup_steps must be an integer >= 0"),
    (dict(optimizer="adamm"), "unknown optimizer 'adamm'"),
    (dict(eval_batch_size=0), "eval_batch_size must be a positive integer"),
]


@pytest.mark.parametrize("bad,message", FIT_BAD, ids=[str(b) for b, _ in FIT_BAD])
def test_fit_refuses_bad_arguments_before_any_work(tmp_path, bad, message):
    ckpt = tmp_path / "c.pt"
    kw = {**dict(epochs=1, batch_size=16, lr=1e-2, checkpoint=ckpt), **bad}
    with pytest.raises(ValueError, match=message):
        fit(toy_model(), toy_data(), **kw)
    assert list(tmp_path.iterdir()) == []


LM_BAD = [
    (dict(clip=-1), "clip must be >= 0"),
    (dict(eval_every=0), "eval_every must be a positive integer"),
    (dict(eval_every=2.5), "eval_every must be an integer"),
    (dict(epochs=0), "epochs must be > 0"),
    (dict(epochs=float("nan")), "epochs must be > 0"),
    (dict(max_steps=0), "max_steps must be a positive integer"),
    (dict(seq_length=0), "seq_length must be a positive integer"),
    (dict(batch_size=-2), "batch_size must be a positive integer"),
    (dict(lr=float("nan")), "lr must be >= 0"),
    (dict(lr_decay=0), "lr_decay must be > 0 and <= 1"),
    (dict(lr_decay=1.5), "lr_decay must be > 0 and <= 1"),
    (dict(patience=-1), "patience must be an integer >= 0"),
    (dict(seed=2**70), r"seed must be an integer in \[0, "),
    (dict(val_chars=0), "val_chars must be a positive integer"),
]


@pytest.mark.parametrize("bad,message", LM_BAD, ids=[str(b) for b, _ in LM_BAD])
def test_train_char_lm_refuses_bad_arguments_before_any_work(tmp_path, bad, message):
    data = char_data()
    model = tiny_lm(len(data.vocab))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=message):
        train_char_lm(model, data, checkpoint=str(tmp_path / "s"), **{**LM_KW, **bad})
    assert list(tmp_path.iterdir()) == [] and all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_clip_minus_one_no_longer_trains_uphill():
    data = char_data()
    with pytest.raises(ValueError, match="clip must be >= 0"):
        train_char_lm(tiny_lm(len(data.vocab)), data, clip=-1, **LM_KW)
    with pytest.raises(ValueError, match="clip must be > 0"):
        fit(toy_model(), toy_data(), epochs=1, batch_size=16, lr=1e-2, clip=-1)


def test_train_char_lm_refuses_a_model_of_another_vocabulary():
    data = char_data()
    with pytest.raises(ValueError, match=r"vocab_size is 7 but data.vocab has \d+ characters"):
        train_char_lm(tiny_lm(7), data, **LM_KW)


def _lm_and_vocab():
    vocab = Vocab("abcde")
    return tiny_lm(5), vocab


LIB_BAD = [
    ("Vocab.decode([-1])", lambda: Vocab("abc").decode([-1]), r"id -1 is outside the vocabulary \(ids 0..2\)"),
    ("Vocab.decode([3])", lambda: Vocab("abc").decode([3]), r"id 3 is outside the vocabulary"),
    ("Vocab.decode([1.5])", lambda: Vocab("abc").decode([1.5]), "ids must be integers"),
    ("Vocab.decode(float tensor)", lambda: Vocab("abc").decode(torch.tensor([1.0])), "ids must be integers"),
    ("Vocab(None)", lambda: Vocab(None), "built from a str"),
    ("make_char_data(bytes)", lambda: make_char_data(b"abc", "a", "b"), "train must be a str"),
    ("stream_batches(bs=0)", lambda: stream_batches(torch.arange(10), 0), "batch_size must be a positive integer"),
    ("CharLM(hidden_size=0)", lambda: CharLM(5, hidden_size=0), "hidden_size must be a positive integer"),
    ("CharLM(hidden_size=2.5)", lambda: CharLM(5, hidden_size=2.5), "hidden_size must be an integer"),
    ("CharLM(vocab_size=-3)", lambda: CharLM(-3), "vocab_size must be a positive integer"),
    ("CharLM(use_recurrent_dropout=1)", lambda: CharLM(5, use_recurrent_dropout=1),
     "use_recurrent_dropout must be True or False, got 1"),
    ("tile_grid(crop='yes')", lambda: __import__("hypernet_lib.nn", fromlist=["x"]).tile_grid(4, 4, 2, 2, crop="yes"),
     "crop must be True or False, got 'yes'"),
    ("CharLM(hyper_num_units=0)", lambda: CharLM(5, hyper_num_units=0), "hyper_num_units must be a positive"),
    ("CharLM(dropout=1)", lambda: CharLM(5, dropout=1.0), "dropout must be >= 0 and < 1"),
    ("CharLM(dropout_keep_prob=0)", lambda: CharLM(5, dropout_keep_prob=0), "dropout_keep_prob must be > 0"),
    ("CharLM(z_init=zero)", lambda: CharLM(5, z_init="zero"), "unknown z_init 'zero'"),
    ("CharLM(hidden_size=10**12)", lambda: CharLM(5, hidden_size=10**12), "more than this machine's memory"),
    ("forward(ids out of range)", lambda: _lm_and_vocab()[0](torch.tensor([[0, 5]])),
     r"ids contain id 5, outside the model's vocabulary \(ids 0..4\)"),
    ("forward(negative id)", lambda: _lm_and_vocab()[0](torch.tensor([[-1, 0]])), "ids contain id -1"),
    ("forward(float ids)", lambda: _lm_and_vocab()[0](torch.zeros(1, 2)), r"int64 ids of shape \(B, T\)"),
    ("forward(empty ids)", lambda: _lm_and_vocab()[0](torch.zeros(1, 0, dtype=torch.long)), "at least one id"),
    ("forward(state of batch 2 for batch 3)",
     lambda: (lambda m: m(torch.zeros(3, 2, dtype=torch.long), m(torch.zeros(2, 2, dtype=torch.long))[1]))(
         _lm_and_vocab()[0]), "batch size 3; carry the state only between calls with the same batch size"),
    ("forward(state of another depth)", lambda: _lm_and_vocab()[0](torch.zeros(1, 2, dtype=torch.long), [None, None]),
     r"one entry per layer \(1\)"),
    ("evaluate_bpc(bs=0)", lambda: evaluate_bpc(_lm_and_vocab()[0], torch.arange(5).repeat(9), batch_size=0),
     "batch_size must be a positive integer"),
    ("evaluate_bpc(1 char)", lambda: evaluate_bpc(_lm_and_vocab()[0], torch.tensor([1])), "at least 2 characters"),
    ("evaluate_bpc(ids out of range)", lambda: evaluate_bpc(_lm_and_vocab()[0], torch.arange(9)), "contain id 8"),
    ("evaluate_bpc(not a CharLM)", lambda: evaluate_bpc(nn.Linear(2, 2), torch.arange(5)), "must be a CharLM"),
    ("generate(length=-1)", lambda: generate(*_lm_and_vocab(), "a", -1), "length must be an integer >= 0"),
    ("generate(length=2.5)", lambda: generate(*_lm_and_vocab(), "a", 2.5), "length must be an integer"),
    ("generate(top_k=0)", lambda: generate(*_lm_and_vocab(), "a", 3, top_k=0), "top_k must be a positive"),
    ("generate(temperature=nan)", lambda: generate(*_lm_and_vocab(), "a", 3, temperature=float("nan")),
     "temperature must be > 0"),
    ("generate(short vocab)", lambda: generate(_lm_and_vocab()[0], Vocab("abcd"), "a", 3),
     "vocabulary has 4 characters but the model predicts 5"),
    ("seed_everything(-1)", lambda: seed_everything(-1), r"seed must be an integer in \[0, "),
    ("get_device('meta')", lambda: get_device("meta"), "run on cpu, cuda or mps, not 'meta'"),
    ("get_device('tpu')", lambda: get_device("tpu"), "device 'tpu' is not a device name"),
    ("MNISTConvNet(channels=0)", lambda: __import__("hypernet_lib.nn", fromlist=["x"]).MNISTConvNet(channels=0),
     "channels must be a positive integer"),
    ("cifar_layer_specs(num_classes=2.5)",
     lambda: __import__("hypernet_lib.nn", fromlist=["x"]).cifar_layer_specs(num_classes=2.5),
     "num_classes must be an integer"),
    ("train_multitask(steps=0)", lambda: __import__("hypernet_lib.training", fromlist=["x"]).train_multitask(
        _sep(), _tasks(), steps=0), "steps must be a positive integer"),
    ("train_continual(batch_size=0)", lambda: __import__("hypernet_lib.training", fromlist=["x"]).train_continual(
        _sep(), _tasks(), steps_per_task=1, batch_size=0), "batch_size must be a positive integer"),
    ("task id 1.5", lambda: _sep()(torch.zeros(1, 16), 1.5), "fractional id is not truncated"),
    ("task ids [0, 0.5]", lambda: _sep().thetas([0, 0.5]), "fractional id is not truncated"),
    ("task id 2 of 2", lambda: _sep().thetas([2]), r"task ids must be in 0..1"),
]


def _sep():
    from hypernet_lib.nn import MainMLP, SeparateNets
    return SeparateNets(MainMLP((16, 6, 3)), n_tasks=2)


@pytest.mark.parametrize("call,message", [(c, m) for _, c, m in LIB_BAD], ids=[n for n, _, _ in LIB_BAD])
def test_public_calls_refuse_bad_arguments_with_a_message(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_hypernet_device_names_the_variable(monkeypatch):
    monkeypatch.setenv("HYPERNET_DEVICE", "tpu")
    with pytest.raises(ValueError, match="HYPERNET_DEVICE='tpu' is not a device name; unset HYPERNET_DEVICE"):
        get_device()


def test_tiny_temperature_samples_greedily_instead_of_failing():
    m, vocab = _lm_and_vocab()
    for t in (1e-300, 5e-324):
        out = generate(m, vocab, "a", 5, temperature=t, generator=torch.Generator().manual_seed(0))
        assert len(out) == 6 and set(out) <= set("abcde")


# --------------------------------------------------------------------------- 3. output paths, atomic_save
@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_save_honours_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        p = atomic_save({"a": 1}, tmp_path / "x.pt")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(p).st_mode) == mode and leftovers(tmp_path) == []


def test_atomic_save_keeps_an_existing_files_mode(tmp_path):
    p = tmp_path / "x.pt"
    p.write_bytes(b"old")
    os.chmod(p, 0o640)
    atomic_save({"a": 1}, p)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o640 and torch.load(p) == {"a": 1}


def test_atomic_save_writes_through_a_symlink(tmp_path):
    target = tmp_path / "real" / "model.pt"
    target.parent.mkdir()
    target.write_bytes(b"old")
    link = tmp_path / "latest.pt"
    link.symlink_to(target)
    atomic_save({"v": 2}, link)
    assert link.is_symlink() and os.readlink(link) == str(target) and torch.load(target) == {"v": 2}
    dangling = tmp_path / "dangling.pt"
    dangling.symlink_to(tmp_path / "new" / "made.pt")
    atomic_save({"v": 3}, dangling)
    assert dangling.is_symlink() and torch.load(tmp_path / "new" / "made.pt") == {"v": 3}


def _fifo(tmp_path):
    p = tmp_path / "fifo"
    os.mkfifo(p)
    return p


def _socket(tmp_path):
    p = tmp_path / "sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(p))
    s.close()
    return p


@pytest.mark.parametrize("kind", ["fifo", "socket", "directory", "under a file", "empty", "link to a fifo"])
def test_atomic_save_refuses_what_is_not_a_regular_file_and_leaves_it_alone(tmp_path, kind):
    if kind == "fifo":
        p = _fifo(tmp_path)
    elif kind == "socket":
        p = _socket(tmp_path)
    elif kind == "directory":
        p = tmp_path / "d"
        p.mkdir()
    elif kind == "under a file":
        (tmp_path / "f").write_text("x")
        p = tmp_path / "f" / "x.pt"
    elif kind == "empty":
        p = ""
    else:
        p = tmp_path / "l"
        p.symlink_to(_fifo(tmp_path))
    before = sorted((q.name, stat.S_IFMT(os.lstat(q).st_mode)) for q in tmp_path.iterdir())
    with pytest.raises(ValueError, match="is a directory|not a regular file|is a file, not a folder|is empty"):
        atomic_save({"a": 1}, p)
    assert sorted((q.name, stat.S_IFMT(os.lstat(q).st_mode)) for q in tmp_path.iterdir()) == before


def test_read_only_folder_is_refused_up_front(read_only_dir):
    with pytest.raises(ValueError, match="is not writable"):
        check_output_path(read_only_dir / "m.pt", "--save_model")


def test_a_failed_save_leaves_the_old_file_and_no_temporary_file(tmp_path):
    p = tmp_path / "x.pt"
    atomic_save({"v": 1}, p)
    with pytest.raises(Exception):
        atomic_save({"v": lambda: 0}, p)           # cannot be pickled: fails mid-write
    assert torch.load(p) == {"v": 1} and leftovers(tmp_path) == [] and sorted(os.listdir(tmp_path)) == ["x.pt"]


def test_fit_checks_the_checkpoint_path_before_training(tmp_path):
    (tmp_path / "d").mkdir()
    model = toy_model()
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="checkpoint .* is a directory"):
        fit(model, toy_data(), epochs=1, batch_size=16, lr=1e-2, checkpoint=tmp_path / "d")
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


# ------------------------------------------------------------------------------- 4. resume on other data
def _swap_two_letters(text):
    i = text.index("c")
    j = text.index("m")
    t = list(text)
    t[i], t[j] = t[j], t[i]
    return "".join(t)


def test_resume_on_other_text_of_the_same_size_is_refused(tmp_path):
    state = str(tmp_path / "s")
    data = char_data()

    def stop(hist):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train_char_lm(tiny_lm(len(data.vocab)), data, checkpoint=state, on_eval=stop, **LM_KW)
    other = char_data(_swap_two_letters(TEXT))
    assert other.train.numel() == data.train.numel() and other.vocab.chars == data.vocab.chars
    with pytest.raises(CheckpointError, match=r"interrupted run on another training text \(content hash"):
        train_char_lm(tiny_lm(len(data.vocab)), other, checkpoint=state, **LM_KW)
    # the same data resumes
    hist = train_char_lm(tiny_lm(len(data.vocab)), data, checkpoint=state, **LM_KW)
    assert hist.step == [2, 4, 6]


def test_resume_on_another_vocabulary_is_refused(tmp_path):
    state = str(tmp_path / "s")
    data = char_data()
    train_char_lm(tiny_lm(len(data.vocab)), data, checkpoint=state, **{**LM_KW, "max_steps": 2})
    text = TEXT.replace("t", "T")                # same ids for every character but one
    other = char_data(text)
    assert len(other.vocab) == len(data.vocab)
    with pytest.raises(CheckpointError, match="another (training text|vocabulary)"):
        train_char_lm(tiny_lm(len(data.vocab)), other, checkpoint=state, **{**LM_KW, "max_steps": 2})


# ------------------------------------------------------------------------ 5. well-formed but wrong files
def _good_checkpoint(tmp_path):
    data = char_data()
    m = tiny_lm(len(data.vocab))
    p = tmp_path / "m.pt"
    save_lm(str(p), m, data.vocab)
    return p, torch.load(p, weights_only=True)


WRONG = [
    ("vocabulary shorter than the output layer", lambda ck: ck.update(vocab=ck["vocab"][:-1]),
     r"vocabulary has \d+ characters but the model predicts \d+, so generated text would be shifted"),
    ("unsorted vocabulary", lambda ck: ck.update(vocab=ck["vocab"][::-1]), "not a sorted string"),
    ("unknown config key", lambda ck: ck["config"].update(colour="red"), r"unknown config key\(s\) colour"),
    ("negative size", lambda ck: ck["config"].update(hidden_size=-8), "config is invalid.*hidden_size"),
    ("config not a dict", lambda ck: ck.update(config=[1, 2]), "config, vocab or state_dict is missing"),
    ("no state_dict", lambda ck: ck.pop("state_dict"), "config, vocab or state_dict is missing"),
    ("wrong weight shape", lambda ck: ck["state_dict"].update({"out.bias": torch.zeros(3)}), "weights do not fit"),
]


@pytest.mark.parametrize("edit,message", [(e, m) for _, e, m in WRONG], ids=[n for n, _, _ in WRONG])
def test_a_well_formed_but_wrong_checkpoint_is_refused(tmp_path, edit, message):
    p, ck = _good_checkpoint(tmp_path)
    edit(ck)
    torch.save(ck, p)
    with pytest.raises(CheckpointError, match=message):
        load_lm(str(p))


@pytest.mark.parametrize("what", ["checkpoint", "train_state"])
def test_an_empty_file_is_refused_with_a_message(tmp_path, what):
    p = tmp_path / "empty"
    p.write_bytes(b"")
    if what == "checkpoint":
        with pytest.raises(CheckpointError, match=r"is empty \(0 bytes\), not a hyperlstm language-model"):
            load_lm(str(p))
    else:
        data = char_data()
        with pytest.raises(CheckpointError, match=r"is empty \(0 bytes\), not a hyperlstm training state.*delete"):
            train_char_lm(tiny_lm(len(data.vocab)), data, checkpoint=str(p), **LM_KW)


def test_a_state_file_missing_parts_is_refused(tmp_path):
    p = tmp_path / "s"
    torch.save({"format": TRAIN_STATE_FORMAT, "run": {}}, p)
    data = char_data()
    with pytest.raises(CheckpointError, match="damaged hyperlstm training state .missing step"):
        train_char_lm(tiny_lm(len(data.vocab)), data, checkpoint=str(p), **LM_KW)


def test_a_directory_is_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="is a directory, not a hyperlstm language-model checkpoint file"):
        load_lm(str(tmp_path))
    with pytest.raises(ValueError, match="not a regular file"):
        load_checkpoint(tmp_path)


def test_check_finite_reports_loss_and_weights():
    check_finite(loss=torch.tensor(1.0), model=nn.Linear(2, 2))
    with pytest.raises(TrainingDiverged, match="loss is inf"):
        check_finite(loss=math.inf)
    assert issubclass(TrainingDiverged, FloatingPointError)

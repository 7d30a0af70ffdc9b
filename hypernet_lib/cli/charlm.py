"""The character-level language model's command line: train, generate, eval.

    python -m hypernet_lib.cli train    --data_path input.txt --cell hyperlstm --use_layer_norm ...
    python -m hypernet_lib.cli generate --load_model models/hyperlstm_best.pt --prime_text "The" ...
    python -m hypernet_lib.cli eval     --load_model models/hyperlstm_best.pt --data_path input.txt

The option names are those of the seed project's ``hyperlstm_train.py`` (its ``--mode train`` form is
accepted too).  Text comes from ``--data_path FILE`` or ``--corpus NAME`` (``hypernet_lib.data.load_text``).
Bad input — a bad option value, a missing file, a checkpoint of another model, a prime text with
characters the model has never seen — ends with exit status 2 and a one-line message, no traceback.

Exit status: 0 done; 2 bad input (nothing was trained or written); 3 training diverged (a NaN or
infinite loss: nothing from the diverged steps is written, SAVE_MODEL.train_state keeps the run as of its
last good evaluation); 130 interrupted (the same command resumes); 1 an unexpected error (a bug: please
report the traceback).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from typing import List, Optional

import torch

from ..analysis.memory import count_params
from ..checks import MAX_SEED, TrainingDiverged, check_output_path
from ..data.download import DataUnavailable
from ..data.text import Vocab, load_text, make_char_data, split_text
from ..nn.charlm import CharLM
from ..nn.hyperlstm import CELLS
from ..runtime import get_device
from ..training.checkpoint import CheckpointError
from ..training.lm import evaluate_bpc, generate, load_lm, save_lm, train_char_lm

__all__ = ["EXIT_BAD_INPUT", "EXIT_DIVERGED", "EXIT_INTERRUPTED", "PROG", "UsageError", "build_parser",
           "cmd_train", "train_state_path", "cmd_generate", "cmd_eval", "main"]

EXIT_BAD_INPUT = 2


EXIT_DIVERGED = 3


EXIT_INTERRUPTED = 130


PROG = "python -m hypernet_lib.cli"


class UsageError(Exception):
    """Bad input found after parsing; reported as ``error: ...`` with exit status 2."""


def _int_in(what: str, lo: int, hi: Optional[int] = None, outside: Optional[str] = None):
    """An argparse type: an integer in [lo, hi]; messages say what was expected (``outside`` formats ``v``)."""
    def parse(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {s!r}") from None
        if v < lo or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(outside.format(v=v) if outside else f"expected {what}, got {v}")
        return v
    return parse


_positive_int = _int_in("a positive integer", 1)
_nonneg_int = _int_in("an integer >= 0", 0)
_seed = _int_in("an integer seed", 0, MAX_SEED, "a seed is an integer in [0, 2**64 - 1], got {v}")


def _float_in(lo: float, hi: float, lo_open: bool = False, hi_open: bool = False):
    def parse(s: str) -> float:
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None
        ok = (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
        if not ok:
            raise argparse.ArgumentTypeError(
                f"{v} is outside {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}")
        return v
    return parse


def _positive_float(s: str) -> float:
    return _float_in(0.0, float("inf"), lo_open=True, hi_open=True)(s)


def _add_data(p: argparse.ArgumentParser, required_hint: bool = True) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data_path", help="training text file (UTF-8)")
    g.add_argument("--corpus", help="instead of --data_path: a corpus of hypernet_lib.data.load_text "
                                    "(shakespeare, tiny-shakespeare, ptb-char, enwik8), with its own splits")
    g.add_argument("--seq_length", type=_positive_int, default=100, help="truncated-BPTT length (default 100)")
    g.add_argument("--batch_size", type=_positive_int, default=32, help="parallel text streams (default 32)")
    g.add_argument("--val_split", type=_float_in(0, 1, hi_open=True), default=None,
                   help="fraction of a --data_path text used for validation (default 0.05; the test "
                        "split is another --test_split at the end)")
    g.add_argument("--test_split", type=_float_in(0, 1, hi_open=True), default=None,
                   help="fraction of a --data_path text used for testing (default 0.05)")
    g.add_argument("--max_chars", type=_positive_int, default=None,
                   help="use only the first N characters of each split (quick runs)")
    g.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Character-level language models with LSTM, LN-LSTM and HyperLSTM cells "
                    "(Ha, Dai & Le, 2016, §3.2): train, generate text, evaluate bits per character.")
    sub = parser.add_subparsers(dest="command", metavar="{train,generate,eval}")
    sub.required = True

    tr = sub.add_parser("train", help="train a model and save the best checkpoint",
                        description="Train with Adam and truncated BPTT; the checkpoint with the best "
                                    "validation bpc is written atomically to --save_model. An interrupted "
                                    "run resumes when the same command is run again.")
    _add_data(tr)
    m = tr.add_argument_group("model")
    m.add_argument("--cell", choices=CELLS, default="hyperlstm",
                   help="recurrent cell (default hyperlstm); --use_layer_norm turns lstm into ln-lstm and "
                        "hyperlstm into ln-hyperlstm")
    m.add_argument("--embedding_size", type=_nonneg_int, default=0, help="0 = one-hot input (paper); else embedding size")
    m.add_argument("--hidden_size", type=_positive_int, default=512, help="units of the main cell N_h (default 512)")
    m.add_argument("--num_layers", type=_positive_int, default=1, help="stacked layers (default 1)")
    m.add_argument("--dropout", type=_float_in(0, 1, hi_open=True), default=0.0,
                   help="input/between-layer/output drop probability (paper: 0.1)")
    m.add_argument("--hyper_num_units", type=_positive_int, default=128, help="hyper cell units N_ĥ (default 128)")
    m.add_argument("--hyper_embedding_size", dest="n_z", type=_positive_int, default=4,
                   help="N_z, the size of each embedding z (default 4; paper's large: 16); the library's n_z")
    m.add_argument("--use_layer_norm", action="store_true", help="layer norm in the main and the hyper cell")
    m.add_argument("--use_recurrent_dropout", action="store_true", help="dropout on tanh(g) at every step")
    m.add_argument("--dropout_keep_prob", type=_float_in(0, 1, lo_open=True), default=0.9,
                   help="keep probability of the recurrent dropout (default 0.9)")
    m.add_argument("--z_from", choices=("current", "previous"), default="current",
                   help="z from ĥ_t (Ha's code, default) or ĥ_(t-1) (the paper's equation)")
    m.add_argument("--z_init", choices=("paper", "random"), default="paper",
                   help="ĥ -> z_h, z_x weights: zeros as published (keeps the N_z entries of z equal forever) "
                        "or N(0, 0.01²) to break that symmetry")
    t = tr.add_argument_group("training")
    t.add_argument("--epochs", type=_positive_float, default=1.0, help="passes over the training text (default 1)")
    t.add_argument("--max_steps", type=_positive_int, default=None, help="stop after this many steps")
    t.add_argument("--lr", type=_positive_float, default=1e-3, help="Adam learning rate (default 0.001)")
    t.add_argument("--lr_decay", type=_float_in(0, 1, lo_open=True), default=0.5,
                   help="multiply the lr by this when validation stalls (default 0.5)")
    t.add_argument("--patience", type=_nonneg_int, default=2,
                   help="evaluations without improvement before the lr decays (0 = never; default 2)")
    t.add_argument("--clip", type=_float_in(0, float("inf")), default=1.0, help="gradient-norm clip (0 = off)")
    t.add_argument("--eval_every", type=_positive_int, default=200, help="steps between validations")
    t.add_argument("--seed", type=_seed, default=0, help="seeds the initial weights and the dropout masks")
    t.add_argument("--save_model", default="models/hyperlstm_best.pt",
                   help="checkpoint path; while training, SAVE_MODEL.train_state holds the run as of its last "
                        "evaluation, and running the same command again resumes an interrupted run from it")
    t.add_argument("--no_progress", action="store_true", help="no progress bars")

    ge = sub.add_parser("generate", help="sample text from a checkpoint")
    ge.add_argument("--load_model", required=True, help="checkpoint written by train")
    ge.add_argument("--data_path", help="ignored (the checkpoint carries its vocabulary); accepted for the seed's CLI")
    ge.add_argument("--prime_text", default="The", help="text the sample starts from (default 'The')")
    ge.add_argument("--gen_length", type=_nonneg_int, default=500, help="characters to sample (default 500)")
    ge.add_argument("--temperature", type=_positive_float, default=1.0, help="softmax temperature (> 0)")
    ge.add_argument("--top_k", type=_positive_int, default=None, help="sample among the k likeliest only")
    ge.add_argument("--seed", type=_seed, default=0)
    ge.add_argument("--device", default=None)

    ev = sub.add_parser("eval", help="bits per character of a checkpoint on the validation and test split")
    ev.add_argument("--load_model", required=True, help="checkpoint written by train")
    _add_data(ev)
    ev.add_argument("--warmup", type=_nonneg_int, default=1000,
                    help="characters each stream but the first reads, unscored, before its own piece, so "
                         "that no scored character lacks context (default 1000; 0 = every stream starts "
                         "cold, as the validation during training)")
    ev.add_argument("--no_progress", action="store_true")
    return parser


def _translate_mode(argv: List[str]) -> List[str]:
    """Accept the seed's ``--mode train`` spelling as ``train``."""
    for i, a in enumerate(argv):
        if a == "--mode" and i + 1 < len(argv):
            return [argv[i + 1]] + argv[:i] + argv[i + 2:]
        if a.startswith("--mode="):
            return [a.split("=", 1)[1]] + argv[:i] + argv[i + 1:]
    return argv


def _device(name: Optional[str]) -> torch.device:
    try:
        return get_device(name)
    except (RuntimeError, ValueError) as e:
        msg = str(e)
        raise UsageError(("--" + msg if msg.startswith("device ") else f"--device {name!r}: {msg}") if name
                         else msg) from None


def _check_save_path(path: str) -> None:
    """--save_model and its .train_state must be writable regular files (or new paths): checked before any work."""
    try:
        check_output_path(path, "--save_model")
        check_output_path(train_state_path(path), "--save_model's training state")
    except ValueError as e:
        raise UsageError(str(e)) from None


def _load_splits(args, vocab: Optional[Vocab] = None, splits=None):
    """(train, valid, test) strings from --data_path or --corpus."""
    if bool(args.data_path) == bool(args.corpus):
        raise UsageError("give exactly one of --data_path FILE or --corpus NAME")
    if args.corpus:
        try:
            c = load_text(args.corpus)
        except (ValueError, DataUnavailable) as e:
            raise UsageError(str(e)) from None
        parts, name = (c.train, c.valid, c.test), c.name
        if args.val_split is not None or args.test_split is not None:
            print("note: --corpus has its own splits; --val_split/--test_split are ignored", file=sys.stderr)
    else:
        if not os.path.isfile(args.data_path):
            raise UsageError(f"--data_path {args.data_path!r} does not exist or is not a file")
        try:
            with open(args.data_path, encoding="utf-8") as fh:
                text = fh.read()
        except UnicodeDecodeError as e:
            raise UsageError(f"--data_path {args.data_path!r} is not UTF-8 text ({e.reason} at byte {e.start})") from None
        vs = args.val_split if args.val_split is not None else (splits or {}).get("val_split", 0.05)
        ts = args.test_split if args.test_split is not None else (splits or {}).get("test_split", 0.05)
        try:
            parts = split_text(text, vs, ts)
        except ValueError as e:
            raise UsageError(str(e)) from None
        name = os.path.basename(args.data_path)
    if args.max_chars:
        parts = tuple(p[:args.max_chars] for p in parts)
    if not parts[0] or not parts[1]:
        raise UsageError("the training or validation split is empty; give more text or a larger --val_split")
    return parts, name


def cmd_train(args) -> int:
    device = _device(args.device)
    _check_save_path(args.save_model)
    cell = args.cell
    if args.use_layer_norm and not cell.startswith("ln-"):
        cell = "ln-" + cell
    (train, valid, test), name = _load_splits(args)
    data = make_char_data(train, valid, test, name=name, device=device)
    print(f"data: {data.describe()}")
    torch.manual_seed(args.seed)               # --seed fixes the initial weights too, not only the training
    try:
        model = CharLM(len(data.vocab), cell=cell, hidden_size=args.hidden_size, num_layers=args.num_layers,
                          embedding_size=args.embedding_size, dropout=args.dropout,
                          hyper_num_units=args.hyper_num_units, n_z=args.n_z,
                          use_recurrent_dropout=args.use_recurrent_dropout,
                          dropout_keep_prob=args.dropout_keep_prob, z_from=args.z_from,
                          z_init=args.z_init)
    except ValueError as e:
        raise UsageError(f"--hidden_size {args.hidden_size} --num_layers {args.num_layers} --hyper_num_units "
                         f"{args.hyper_num_units} --embedding_size {args.embedding_size}: {e}") from None
    try:
        model.to(device)
    except (RuntimeError, NotImplementedError) as e:
        raise UsageError(f"--device {device}: the model cannot be placed there "
                         f"({(str(e).splitlines() or [''])[0][:200]})") from None
    try:
        print(f"model: {cell}, {count_params(model):,} parameters, device {device}")
        state_path = args.resume_state = train_state_path(args.save_model)
        if os.path.exists(state_path):
            print(f"resuming the interrupted run saved in {state_path} (delete that file to start over)")
        hist = train_char_lm(model, data, batch_size=args.batch_size, seq_length=args.seq_length, lr=args.lr,
                                epochs=args.epochs, max_steps=args.max_steps, eval_every=args.eval_every,
                                clip=args.clip or None, lr_decay=args.lr_decay, patience=args.patience,
                                seed=args.seed, progress=not args.no_progress, checkpoint=state_path)
    except TrainingDiverged as e:
        print(f"{PROG} train: error: {e}; nothing was saved to {args.save_model}", file=sys.stderr)
        return EXIT_DIVERGED
    except ValueError as e:                    # CheckpointError is a ValueError too
        raise UsageError(str(e)) from None
    splits = {"val_split": args.val_split if args.val_split is not None else 0.05,
              "test_split": args.test_split if args.test_split is not None else 0.05}
    save_lm(args.save_model, model, data.vocab, history=hist.to_dict(), splits=splits)
    os.remove(state_path)                      # the run is complete: nothing left to resume
    print(f"best validation bpc {hist.best_val_bpc:.4f} at step {hist.best_step}; saved {args.save_model}")
    return 0


def train_state_path(save_model: str) -> str:
    """Where ``train`` keeps the state of a run in progress (written at every evaluation)."""
    return f"{save_model}.train_state"


def cmd_generate(args) -> int:
    device = _device(args.device)
    model, vocab, _ = load_lm(args.load_model)
    model.to(device)
    gen = torch.Generator().manual_seed(args.seed)
    try:
        text = generate(model, vocab, args.prime_text, args.gen_length, args.temperature, args.top_k, gen)
    except ValueError as e:
        raise UsageError(f"--prime_text: {e}" if "vocabulary" in str(e) or "prime" in str(e) else str(e)) from None
    print(text)
    return 0


def cmd_eval(args) -> int:
    device = _device(args.device)
    model, vocab, ck = load_lm(args.load_model)
    model.to(device)
    (train, valid, test), name = _load_splits(args, splits=ck.get("splits"))
    try:
        data = make_char_data("", valid, test, name=name, vocab=vocab, device=device)
        res = {}
        for split in ("valid", "test"):
            ids = getattr(data, split)
            if ids.numel() < 2:
                continue
            res[split] = evaluate_bpc(model, ids, batch_size=args.batch_size, seq_length=args.seq_length,
                                      warmup=args.warmup, progress=not args.no_progress)
    except ValueError as e:
        raise UsageError(str(e)) from None
    for k, v in res.items():
        print(f"{k} bpc: {v:.4f}")
    bad = [k for k, v in res.items() if not math.isfinite(v)]
    if bad:
        print(f"{PROG} eval: error: the {' and '.join(bad)} bpc is not finite: the model gives some character "
              "zero probability or its outputs overflow", file=sys.stderr)
        return EXIT_DIVERGED
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    argv = _translate_mode(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    args = parser.parse_args(argv)                 # argparse itself exits 2 on bad options
    try:
        return {"train": cmd_train, "generate": cmd_generate, "eval": cmd_eval}[args.command](args)
    except (UsageError, CheckpointError, FileNotFoundError) as e:
        print(f"{parser.prog} {args.command}: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        state = getattr(args, "resume_state", None)
        if state and os.path.exists(state):
            print(f"interrupted; the run is saved as of its last evaluation in {state}: the same command "
                  "resumes it", file=sys.stderr)
        else:
            print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED

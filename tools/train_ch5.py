"""Train chapter 5's character-level language models at cpu scale and ship them as a checkpoint.

    python tools/train_ch5.py            # writes hypernet_lib/checkpoints/ch5_char_lm.pt (+ manifest entry)

The settings and the training calls are the ones chapter 5's training cell uses at ``cpu`` scale
(``book/05_hyperlstm.ipynb`` builds the same ``ShippedCheckpoint`` and loads this file instead of
training). Run once; it takes about half an hour per 2 CPU cores.
"""
import sys
import time

import torch

from hypernet_lib.analysis import count_params
from hypernet_lib.book import ShippedCheckpoint
from hypernet_lib.data import Vocab, load_text, make_char_data
from hypernet_lib.nn import CharLM
from hypernet_lib.runtime import get_device, machine_line, seed_everything
from hypernet_lib.training import train_char_lm

SCALE = "cpu"
CORPUS, HIDDEN, HYPER_UNITS, N_Z, BATCH, SEQ = "shakespeare", 256, 64, 4, 32, 50
EPOCHS, STEPS, EVAL_EVERY, EVAL_CHARS, LR = 1, None, 250, 30_000, 2e-3
TRAIN = dict(clip=1.0, lr_decay=0.5, patience=3, seed=0)


def matched_hidden(vocab_size: int, target: int) -> int:
    """N_h of a plain LSTM whose parameter count is closest to ``target``."""
    count = lambda n: count_params(CharLM(vocab_size, cell="lstm", hidden_size=n))
    n = 1
    while count(n + 1) <= target:
        n += 1
    return n if target - count(n) <= count(n + 1) - target else n + 1


def main() -> int:
    device = get_device()
    corpus = load_text(CORPUS)
    vocab = Vocab.from_text(corpus.text)
    data = make_char_data(corpus.train, corpus.valid[:EVAL_CHARS], corpus.test[:EVAL_CHARS],
                             name=corpus.name, vocab=vocab, device=device)
    hyper_params = count_params(CharLM(len(vocab), cell="hyperlstm", hidden_size=HIDDEN,
                                          hyper_num_units=HYPER_UNITS, n_z=N_Z))
    n_matched = matched_hidden(len(vocab), hyper_params)
    # name -> (cell, N_h, z_init)
    runs = {"lstm": ("lstm", HIDDEN, "paper"), "ln-lstm": ("ln-lstm", HIDDEN, "paper"),
            "hyperlstm": ("hyperlstm", HIDDEN, "paper"), "ln-hyperlstm": ("ln-hyperlstm", HIDDEN, "paper"),
            "lstm_matched": ("lstm", n_matched, "paper"), "ln-hyperlstm_random_z": ("ln-hyperlstm", HIDDEN, "random")}
    settings = dict(corpus=corpus.name, train_chars=len(corpus.train), vocab="".join(vocab.chars),
                    hidden=HIDDEN, hyper_units=HYPER_UNITS, n_z=N_Z, batch=BATCH, seq=SEQ, epochs=EPOCHS,
                    steps=STEPS, eval_every=EVAL_EVERY, eval_chars=EVAL_CHARS, lr=LR, dropout=0.0,
                    recurrent_dropout=False, **TRAIN, runs={k: list(v) for k, v in runs.items()})
    ckpt = ShippedCheckpoint("ch5_char_lm", settings, SCALE)
    models, histories, seconds = {}, {}, {}
    for name, (cell, n_h, z_init) in runs.items():
        seed_everything(0)
        model = CharLM(len(vocab), cell=cell, hidden_size=n_h, hyper_num_units=HYPER_UNITS,
                          n_z=N_Z, z_init=z_init).to(device)
        t0 = time.perf_counter()
        hist = train_char_lm(model, data, batch_size=BATCH, seq_length=SEQ, lr=LR, epochs=EPOCHS,
                                max_steps=STEPS, eval_every=EVAL_EVERY, progress=False, **TRAIN)
        seconds[name] = time.perf_counter() - t0
        models[name], histories[name] = model, hist.to_dict()
        print(f"{name:22s} {count_params(model):>9,} params  {hist.step[-1]} steps  {seconds[name]:6.0f} s  "
              f"best valid {hist.best_val_bpc:.3f}", flush=True)
    ckpt.save(models, extra={"histories": histories, "seconds": seconds, "threads": torch.get_num_threads()},
              machine=machine_line(device))
    print(ckpt.status)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Published numbers the book compares against, in one place.

These are facts quoted from the literature, not results of this library; chapters render them
from here so that no number is typed twice.  Sources: Ha, Dai & Le (2016/2017), appendix tables
and Tables 2-3; and one widely repeated miscount that chapter 3 teaches as a common mistake.
"""
from __future__ import annotations

#: MNIST (paper §4.1 / Appendix A.3.1): test error in percent, parameter counts, and the set-up
#: (conv2's kernel f×f with ``channels`` in and out is generated from z ∈ R^{n_z}).
MNIST = {
    "test_error_conv": 0.72, "test_error_hyper": 0.76,
    "ha_notebook_test_error_conv": 0.77, "ha_notebook_test_error_hyper": 0.79,
    "kernel_params": 12_544, "hyper_params": 4_244,
    "split": (55_000, 5_000, 10_000), "batch_size": 1000, "lr": 1e-3, "n_z": 4, "f": 7, "channels": 16,
}

#: A miscount of the same hypernetwork that circulates: 4×784 + 784 evaluated as 3,200 (chapter 3).
MNIST_MISCOUNT = {"z": 4, "first_layer": 320, "second_layer": 3_200, "total": 3_524}

#: Character-level Penn Treebank, Table 3: (test bpc, validation bpc, params in millions).  Keyed by
#: the cell's name in ``hypernet_lib.nn.CELLS`` (and the command line's ``--cell``); "_large_embedding": N_z = 16.
PTB = {
    "lstm": (1.312, 1.347, 4.25),
    "ln-lstm": (1.267, 1.300, 4.26),
    "hyperlstm": (1.265, 1.296, 4.91),
    "ln-hyperlstm": (1.250, 1.281, 4.92),
    "ln-hyperlstm_large_embedding": (1.233, 1.263, 5.06),
}

#: The character-level PTB set-up of §4.3 / Appendix A.2.
PTB_SETUP = {"hidden": 1000, "hyper_hidden": 128, "n_z": 4, "n_z_large": 16, "vocab": 50,
             "batch_size": 128, "seq_length": 100, "lr": 1e-3, "clip": 1.0, "keep_prob": 0.9}

#: CIFAR-10 Wide ResNet 40-1 (Table 2): test error (%) and parameters (millions).
CIFAR10_WRN40_1 = {"error_plain": 6.73, "error_hyper": 8.02, "params_m_plain": 0.563, "params_m_hyper": 0.097}

#: Its set-up (§4.2): WRN depth-width for CIFAR-10; the hyper version tiles every 3×3 kernel of the
#: residual groups from tile×tile×3×3 kernels of one Eq. 2 generator with N_z = d = 64.
CIFAR10_WRN_SETUP = {"depth": 40, "width": 1, "num_classes": 10, "n_z": 64, "d": 64, "tile": 16}

#: enwik8 (§4.4): test bits per character of the layer-norm HyperLSTM (1800 units) and the best model.
ENWIK8 = {"ln-hyperlstm_1800": 1.353, "best": 1.340}

#: Headline results of the paper, for the table of chapter 1, built from the dicts above.
HEADLINE = [
    {"task": "MNIST", "metric": "test error (%)", "hyper": MNIST["test_error_hyper"], "baseline": MNIST["test_error_conv"],
     "hyper_params": f"{MNIST['hyper_params']:,} (conv2 generator)", "baseline_params": f"{MNIST['kernel_params']:,} (conv2 kernel)"},
    {"task": "CIFAR-10, WRN 40-1", "metric": "test error (%)", "hyper": CIFAR10_WRN40_1["error_hyper"],
     "baseline": CIFAR10_WRN40_1["error_plain"], "hyper_params": f"{CIFAR10_WRN40_1['params_m_hyper']} M",
     "baseline_params": f"{CIFAR10_WRN40_1['params_m_plain']} M"},
    {"task": "Penn Treebank (characters)", "metric": "test bits per character", "hyper": PTB["ln-hyperlstm"][0],
     "baseline": PTB["lstm"][0], "hyper_params": f"{PTB['ln-hyperlstm'][2]} M (LN HyperLSTM {PTB_SETUP['hidden']})",
     "baseline_params": f"{PTB['lstm'][2]} M (LSTM {PTB_SETUP['hidden']})"},
    {"task": "enwik8 (Hutter Prize)", "metric": "test bits per character", "hyper": ENWIK8["ln-hyperlstm_1800"],
     "baseline": None, "hyper_params": "LN HyperLSTM, 1800 units", "baseline_params": "—"},
]

"""hypernet_lib: the small PyTorch library behind the book "Hypernetworks, hands-on".

The public API is the names below; each sub-package (``nn``, ``data``, ``training``, ``analysis``,
``book``, ``cli``) lists the rest of its public names in its own ``__all__``.  See the README's
"Where things live" for the layout.
"""
from . import paper
from .analysis import count_params
from .data import load_cifar10, load_cifar100, load_fashion_mnist, load_mnist, load_text
from .nn import (CharLM, CifarNet, HyperConvGenerator, HyperFewShot, HyperLSTMLayer, MNISTConvNet, MNISTHyperNet,
                 PerSampleLinear, StaticHyperConv2d, TaskHyperNet, WideResNet, build_cifar_net, build_wrn)
from .runtime import get_device, seed_everything
from .training import fit, train_char_lm, train_continual, train_episodic

__all__ = [
    # models (hypernet_lib.nn)
    "HyperConvGenerator", "StaticHyperConv2d", "MNISTConvNet", "MNISTHyperNet", "CifarNet", "build_cifar_net",
    "WideResNet", "build_wrn", "HyperLSTMLayer", "CharLM", "PerSampleLinear", "TaskHyperNet", "HyperFewShot",
    # data (hypernet_lib.data)
    "load_mnist", "load_fashion_mnist", "load_cifar10", "load_cifar100", "load_text",
    # training (hypernet_lib.training)
    "fit", "train_char_lm", "train_continual", "train_episodic",
    # running and counting
    "get_device", "seed_everything", "count_params", "paper",
]

"""Data as tensors on the device: image sets, character corpora, task streams, batched augmentation,
    offline-safe downloads."""
from .augment import (batch_indices, random_crop, random_flip, make_augment)
from .catalog import (load_images, DATASETS)
from .cifar import (load_cifar100, load_cifar10, write_cifar100_fixture, write_cifar10_fixture,
    to_cifar_shape)
from .download import (DataUnavailable, ChecksumError, Source, SOURCES, data_root, verify, fetch)
from .images import (write_idx, ImageData, load_mnist, load_fashion_mnist)
from .tasks import (PermutedTasks, MNIST_FASHION_NAMES, MNIST_FASHION_TRAIN, MNIST_FASHION_TEST, FewShotData,
    load_mnist_fashion, load_omniglot, Episodes, EpisodeSampler)
from .text import (TextCorpus, split_text, load_text, TEXT_CORPORA, Vocab, CharData, make_char_data,
    stream_batches)

__all__ = ["batch_indices", "random_crop", "random_flip", "make_augment", "load_images", "DATASETS",
           "load_cifar100", "load_cifar10", "write_cifar100_fixture", "write_cifar10_fixture",
           "to_cifar_shape", "DataUnavailable", "ChecksumError", "Source", "SOURCES", "data_root", "verify",
           "fetch", "write_idx", "ImageData", "load_mnist", "load_fashion_mnist", "PermutedTasks",
           "MNIST_FASHION_NAMES", "MNIST_FASHION_TRAIN", "MNIST_FASHION_TEST", "FewShotData",
           "load_mnist_fashion", "load_omniglot", "Episodes", "EpisodeSampler", "TextCorpus", "split_text",
           "load_text", "TEXT_CORPORA", "Vocab", "CharData", "make_char_data", "stream_batches"]

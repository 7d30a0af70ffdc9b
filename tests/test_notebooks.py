"""Facts about the committed notebooks: conventions, fresh outputs, the Colab set-up block."""
import importlib.util
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


def tool(name):
    """A module of the repository's tools/ folder (they are scripts, not part of hypernet_lib)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[name]


colab = tool("colab")
code_hash = tool("execute").code_hash
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


# The Colab start itself (the set-up block installs hypernet_lib into a clean environment, then every
# notebook runs there) is tests/test_colab_cleanroom.py, a stage of its own in `make test`.

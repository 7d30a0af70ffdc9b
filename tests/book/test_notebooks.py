"""Facts about the committed notebooks: conventions, fresh outputs, the Colab set-up block."""
import re
import textwrap

import nbformat
import pytest
from helpers import ROOT, tool

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


CODE_WIDTH = 79      # fits the book's code blocks from 768 px wide windows up (_static/hypernet.css; Chromium)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_shown_code_fits_the_text_column(path):
    """Every line of code the reader sees (cells without remove-input/remove-cell) is at most CODE_WIDTH
    characters: a longer one is cut at the column's edge and scrolls sideways."""
    long = [(k, len(line), line[:40]) for k, c in enumerate(read(path).cells)
            if c.cell_type == "code" and not {"remove-input", "remove-cell"} & set(c.metadata.get("tags", []))
            for line in c.source.splitlines() if len(line) > CODE_WIDTH]
    assert not long, f"{path.name}: code lines over {CODE_WIDTH} characters (cell, length, start): {long[:8]}"


FENCE = re.compile(r"^\s*(```+|~~~+)\s*(\S*)")


def markdown_code(source):
    """The code blocks of a Markdown cell, each dedented as the page shows it: fences with a
    language or none, not MyST directives such as ```{note} (their body is prose)."""
    blocks, lines, lang, fence = [], [], None, None
    for line in source.splitlines():
        m = FENCE.match(line)
        if fence is None and m:
            fence, lang, lines = m.group(1), m.group(2), []
        elif fence is not None and line.strip() == fence:
            if not lang.startswith("{") or lang.startswith("{code"):
                blocks.append(textwrap.dedent("\n".join(lines)))
            fence = None
        elif fence is not None:
            lines.append(line)
    return blocks


def test_markdown_code_finds_code_and_skips_directives():
    src = "x\n   ```python\n   a = 1\n     b\n   ```\n```{note}\nprose\n```\n```bash\nls\n```\n"
    assert markdown_code(src) == ["a = 1\n  b", "ls"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_code_in_the_prose_fits_the_text_column(path):
    """Code blocks in Markdown cells (solutions, shell commands, listings) obey the same width."""
    long = [(k, len(line), line[:40]) for k, c in enumerate(read(path).cells) if c.cell_type == "markdown"
            for block in markdown_code(c.source) for line in block.splitlines() if len(line) > CODE_WIDTH]
    assert not long, f"{path.name}: code lines over {CODE_WIDTH} characters (cell, length, start): {long[:8]}"


def test_colab_block_is_current_in_every_notebook():
    assert colab.main(["--check"]) == 0


def test_colab_block_carries_the_url_from_config():
    url = colab.repository_url()
    assert url.startswith("https://") and f"git+{url}" in colab.setup_block(url)
    cell = colab.first_code_cell(read(NOTEBOOKS[0]))
    assert f"git+{url}" in cell.source


# The Colab start itself (the set-up block installs hypernet_lib into a clean environment, then every
# notebook runs there) is tests/test_colab_cleanroom.py, a stage of its own in `make test`.


def _normalise(text):
    """Lines stripped of indentation, blank lines dropped: displayed code compares with its file."""
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


LIBRARY_SOURCE = "\n".join(_normalise(p.read_text()) for p in sorted((ROOT / "hypernet_lib").rglob("*.py")))


def displayed_library_code(nb):
    """(cell index, function chunk) for every function a cell shows with inspect.getsource."""
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or "getsource" not in cell.source:
            continue
        for o in cell.get("outputs", []):
            text = o.get("data", {}).get("text/plain", "") if o.get("output_type") in (
                "display_data", "execute_result") else ""
            chunks = re.split(r"\n(?=\s*(?:def|class) )", text)
            out += [(i, c) for c in chunks if re.match(r"\s*(?:def|class) ", c)]
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_displayed_library_code_is_the_current_code(path):
    """A page that shows library code with inspect.getsource shows what the library holds now:
    a change to a shown function must be followed by re-executing the notebook."""
    for i, chunk in displayed_library_code(read(path)):
        name = chunk.strip().splitlines()[0]
        assert _normalise(chunk) in LIBRARY_SOURCE, (
            f"{path.name} cell {i} shows `{name}` as it was before the library changed; re-execute the notebook")


def test_displayed_library_code_is_found():
    """The check above looks at something: the chapters show at least these functions."""
    shown = {c.strip().splitlines()[0].split("(")[0] for p in NOTEBOOKS for _, c in displayed_library_code(read(p))}
    assert {"def forward", "def _assemble", "def hyper_step"} <= shown, shown

"""Keep every notebook's Colab set-up block in step with the repository URL in _config.yml.

    python tools/colab.py --check   # exit 1 if a notebook's block is missing or stale
    python tools/colab.py --write   # insert/refresh the block at the top of each
                                    # notebook's first code cell (tagged `parameters`)

The URL lives in one place, ``repository.url`` in _config.yml; this tool copies it into the
notebooks, because a notebook opened in Colab has no checkout to read it from.  The block
installs hypernet_lib only when it is not importable; ``$HYPERNET_REPO`` overrides the source
(the tests point it at the local repository).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]      # tools/ sits in the repository root
BEGIN = "# --- set-up for Colab and fresh machines: installs hypernet_lib if missing ---"
# the marker before code lines were kept to 79 characters; --write replaces a block that starts with it
OLD_BEGINS = ("# --- set-up for Colab and fresh machines: install hypernet_lib if it is missing ---",)
END = "# --- end of set-up ---"


def repository_url(config: Path = ROOT / "_config.yml") -> str:
    import yaml
    with open(config) as fh:
        cfg = yaml.safe_load(fh)
    try:
        return cfg["repository"]["url"].rstrip("/")
    except (KeyError, TypeError):
        raise SystemExit(f"{config} has no repository.url; set it once there") from None


def setup_block(url: str) -> str:
    """The set-up lines at the top of every notebook's first code cell.

    Installs hypernet_lib with pip when it is not importable (Colab, a fresh machine) from
    ``$HYPERNET_REPO`` if set (a pip requirement or a path: a wheel, a checkout), else from the
    repository URL; when pip fails, the cell stops with pip's own reason and what the reader can do."""
    return "\n".join([
        BEGIN,
        "import importlib, importlib.util, os, subprocess, sys",
        'if importlib.util.find_spec("hypernet_lib") is None:',
        '    _source = os.environ.get(',
        '        "HYPERNET_REPO",',
        f'        "git+{url}")',
        "    _pip = subprocess.run(",
        '        [sys.executable, "-m", "pip", "install", "-q", _source],',
        "        capture_output=True, text=True)",
        "    if _pip.returncode:",
        "        raise RuntimeError(",
        '            f"pip could not install hypernet_lib from {_source}:\\n"',
        '            f"{_pip.stderr.strip()[-1500:]}\\n"',
        '            "Set os.environ[\'HYPERNET_REPO\'] to a copy of it (a wheel, "',
        '            "a folder, a pip requirement) and run this cell again.")',
        "    importlib.invalidate_caches()",
        END,
    ])


def first_code_cell(nb):
    for cell in nb.cells:
        if cell.cell_type == "code":
            return cell
    raise ValueError("notebook has no code cell")


def with_block(source: str, block: str) -> str:
    begin = next((b for b in (BEGIN,) + OLD_BEGINS if b in source), None)
    if begin is not None and END in source:
        head, rest = source.split(begin, 1)
        _, tail = rest.split(END, 1)
        return head + block + tail
    return block + "\n" + source


def main(argv=None) -> int:
    import nbformat
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--check", action="store_true")
    g.add_argument("--write", action="store_true")
    p.add_argument("notebooks", nargs="*", type=Path)
    args = p.parse_args(argv)
    block = setup_block(repository_url())
    stale = []
    for path in args.notebooks or sorted((ROOT / "book").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        cell = first_code_cell(nb)
        new = with_block(cell.source, block)
        if new != cell.source:
            stale.append(path)
            if args.write:
                cell.source = new
                nbformat.write(nb, path)
    if args.check and stale:
        print("notebooks whose set-up block is missing or stale (run --write):", *stale, sep="\n  ")
        return 1
    for path in stale:
        print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

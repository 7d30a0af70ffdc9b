"""The library's layout as facts: imports run one way, no cycles, small modules, one public API.

* nn/ uses only torch, checks.py and other nn modules; data/ only checks.py and data; training/ adds nn and data;
  analysis/ adds training and paper.py; book/ may use anything but the command line; cli/ anything but book/.
* the module import graph (imports at module level) has no cycle;
* no module is longer than 500 lines, and each opens with a docstring that says its job;
* every sub-package's ``__all__`` is the union of its modules' ``__all__``, and every listed name exists;
* the notebooks import only public names: from ``hypernet_lib`` or a public sub-package, names in its ``__all__``.
"""
from __future__ import annotations

import ast
import importlib
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "hypernet_lib"
MAX_LINES = 500

# layer of a module -> the layers it may import from (itself always allowed)
ALLOWED = {
    "paper": set(),
    "checks": set(),
    "runtime": {"checks"},
    "nn": {"checks"},
    "data": {"checks"},
    "training": {"checks", "runtime", "nn", "data"},
    "analysis": {"checks", "runtime", "nn", "data", "training", "paper"},
    "cli": {"checks", "runtime", "nn", "data", "training", "analysis", "paper"},
    "book": {"checks", "runtime", "nn", "data", "training", "analysis", "paper"},
    "__init__": {"checks", "runtime", "nn", "data", "training", "analysis", "paper"},
}
PUBLIC_MODULES = ("hypernet_lib", "hypernet_lib.nn", "hypernet_lib.data", "hypernet_lib.training",
                  "hypernet_lib.analysis", "hypernet_lib.book", "hypernet_lib.runtime", "hypernet_lib.paper")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer(name: str) -> str:
    parts = name.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def internal_imports(path: Path, source: str | None = None, top_level_only: bool = False,
                     name: str | None = None) -> list[tuple[int, str]]:
    """(line, module) for every import of a hypernet_lib module in ``path`` (relative imports resolved)."""
    name = name or module_name(path)
    is_pkg = path.name == "__init__.py"
    tree = ast.parse(source if source is not None else path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    out = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_pkg else base[:-1]
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("hypernet_lib"):
                continue
            # `from . import x` imports the sub-module x
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                out.append((node.lineno, sub if _is_module(sub) else mod))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("hypernet_lib")]
    return out


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (ROOT / rel.with_suffix(".py")).exists() or (ROOT / rel / "__init__.py").exists()


def layering_violations(path: Path, source: str | None = None, name: str | None = None) -> list[str]:
    name = name or module_name(path)
    mine = layer(name)
    bad = []
    for line, target in internal_imports(path, source, name=name):
        theirs = layer(target) if target != "hypernet_lib" else "__init__"
        if theirs != mine and theirs not in ALLOWED[mine]:
            bad.append(f"{name}:{line} imports {target} ({mine} may use only {sorted(ALLOWED[mine]) or 'torch'})")
    return bad


LIB_FILES = sorted(p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_has_a_known_layer():
    assert LIB_FILES, "no library files found"
    unknown = [module_name(p) for p in LIB_FILES if layer(module_name(p)) not in ALLOWED]
    assert unknown == [], f"modules outside the known layers: {unknown}"


def test_imports_run_one_way():
    bad = [v for p in LIB_FILES for v in layering_violations(p)]
    assert bad == [], "imports against the layering:\n" + "\n".join(bad)


def test_the_layering_check_catches_a_model_that_reads_data():
    fake = PKG / "nn" / "fake.py"
    src = "from ..data import load_mnist\nfrom ..checks import check_int\nfrom . import mnist\n"
    bad = layering_violations(fake, src, name="hypernet_lib.nn.fake")
    assert len(bad) == 1 and "imports hypernet_lib.data" in bad[0]


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for p in LIB_FILES:
        name = module_name(p)
        graph[name] = {t for _, t in internal_imports(p, top_level_only=True) if t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if m not in graph:
                continue
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                cyc = visit(m)
                if cyc:
                    return cyc
        state[n] = 2
        stack.pop()
        return None

    for n in sorted(graph):
        if n not in state:
            cyc = visit(n)
            if cyc:
                return cyc
    return None


def test_no_import_cycle():
    # a package's __init__ imports its modules; a module imports its siblings by name, not through its package
    packages = {module_name(p) for p in LIB_FILES if p.name == "__init__.py"}
    graph = {n: {m for m in deps if not (m in packages and n.startswith(m + "."))}
             for n, deps in import_graph().items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_check_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("path", LIB_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_are_small_and_say_their_job(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(ROOT)} has {n} lines (at most {MAX_LINES}); split it by concern"
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc and doc.splitlines()[0].strip(), f"{path.relative_to(ROOT)} has no docstring saying its job"


SUBPACKAGES = sorted(p.parent for p in PKG.glob("*/__init__.py") if p.parent.name != "book")


@pytest.mark.parametrize("pkg", SUBPACKAGES, ids=lambda p: p.name)
def test_a_subpackage_exports_exactly_its_modules_public_names(pkg):
    package = importlib.import_module(f"hypernet_lib.{pkg.name}")
    union = []
    for mod in sorted(pkg.glob("*.py")):
        if mod.name in ("__init__.py", "__main__.py"):
            continue
        m = importlib.import_module(f"hypernet_lib.{pkg.name}.{mod.stem}")
        assert hasattr(m, "__all__"), f"{m.__name__} has no __all__"
        union += list(m.__all__)
    assert sorted(package.__all__) == sorted(set(union)), (
        f"hypernet_lib.{pkg.name}.__all__ differs from its modules' __all__: "
        f"missing {sorted(set(union) - set(package.__all__))}, extra {sorted(set(package.__all__) - set(union))}")
    assert len(package.__all__) == len(set(package.__all__)), "a name is exported twice (it means two things)"


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_exported_name_exists(name):
    mod = importlib.import_module(name)
    exported = getattr(mod, "__all__", None)
    if exported is None:            # paper.py: its public names are its constants
        return
    missing = [n for n in exported if not hasattr(mod, n)]
    assert missing == [], f"{name}.__all__ lists names it does not have: {missing}"


def test_the_top_level_api_is_small():
    import hypernet_lib
    assert 15 <= len(hypernet_lib.__all__) <= 30
    readme = (ROOT / "README.md").read_text()
    missing = [n for n in hypernet_lib.__all__ if f"`{n}`" not in readme]
    assert missing == [], f"the README's public API table lacks {missing}"





def notebook_imports(nb_path: Path) -> list[tuple[str, str]]:
    nb = json.loads(nb_path.read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    out = []
    for stmt in ast.walk(ast.parse(_strip_magics(code))):
        if isinstance(stmt, ast.ImportFrom) and (stmt.module or "").startswith("hypernet_lib"):
            out += [(stmt.module, a.name) for a in stmt.names]
        elif isinstance(stmt, ast.Import):
            out += [(a.name, "") for a in stmt.names if a.name.startswith("hypernet_lib")]
    return out


def _strip_magics(code: str) -> str:
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in code.splitlines())


def private_imports(imports) -> list[str]:
    bad = []
    for mod, name in imports:
        if mod not in PUBLIC_MODULES:
            bad.append(f"from {mod} import {name or '...'} (not a public module: use one of {', '.join(PUBLIC_MODULES)})")
            continue
        if mod == "hypernet_lib" and f"hypernet_lib.{name}" in PUBLIC_MODULES:
            continue                                  # a public sub-package: from hypernet_lib import nn
        exported = getattr(importlib.import_module(mod), "__all__", None)
        if name and exported is not None and name not in exported:
            bad.append(f"from {mod} import {name} ({name} is not in {mod}.__all__)")
    return bad


NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_import_only_public_names(nb):
    bad = private_imports(notebook_imports(nb))
    assert bad == [], f"{nb.name}:\n" + "\n".join(bad)


def test_the_public_name_check_catches_internals():
    bad = private_imports([("hypernet_lib.nn.mnist", "MNISTHyperNet"), ("hypernet_lib.training", "_autocast"),
                           ("hypernet_lib.nn", "MNISTHyperNet")])
    assert len(bad) == 2 and "not a public module" in bad[0] and "_autocast is not in" in bad[1]


def test_no_library_file_is_ignored_by_git():
    """A .gitignore pattern that matches a library folder (``data/`` once did) leaves it out of every clone."""
    import shutil
    import subprocess
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    files = [str(p.relative_to(ROOT)) for p in LIB_FILES] + [str(p.relative_to(ROOT)) for p in PKG.rglob("*.js")]
    r = subprocess.run(["git", "check-ignore", "--no-index", *files], cwd=ROOT, capture_output=True, text=True)
    assert r.stdout.strip() == "", f"ignored by .gitignore, so missing from a clone: {r.stdout.split()}"

"""Run every test stage of `make test`, timing each one.

    python tools/run_tests.py                 # every stage
    python tools/run_tests.py --only colab    # stages whose name contains 'colab'

Stages: library tests (pytest tests/), the Colab clean room (every notebook in a fresh venv with
only Colab's preinstalled packages), every notebook at smoke scale (nbval), a strict build of the
book from the committed outputs, and browser tests over the built HTML.  Exits non-zero if any
stage fails; prints each stage's time and a summary.

In CI (``CI=true``) a skipped test fails its stage: the runner lists which tests skipped and why.
On a developer's machine skips are allowed (and listed).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]      # tools/ sits in the repository root
PY = sys.executable


def in_ci(environ=os.environ) -> bool:
    return environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def stages() -> list[tuple[str, list[str], dict]]:
    smoke = {"HYPERNET_SCALE": "smoke", "MPLBACKEND": "Agg"}
    return [
        ("library tests", [PY, "-m", "pytest", "-q", "-m", "not browser and not colab", "tests"], {}),
        ("Colab clean room", [PY, "-m", "pytest", "-q", "-m", "colab", "tests/test_colab_cleanroom.py"], {}),
        ("notebooks (nbval, smoke scale)", [PY, "-m", "pytest", "-q", "--nbval-lax", "-p", "no:cacheprovider",
                                            "--nbval-cell-timeout=600", "book"], smoke),
        ("book build (strict)", [PY, str(ROOT / "tools" / "build_book.py"), "--strict"], {}),
        ("browser tests", [PY, "-m", "pytest", "-q", "-m", "browser", "tests"], {}),
    ]


def skipped_tests(junit_xml: Path) -> list[tuple[str, str]]:
    """(test id, reason) for every test that pytest reported as skipped in a JUnit XML report."""
    if not junit_xml.exists():
        return []
    out = []
    for case in ET.parse(junit_xml).getroot().iter("testcase"):
        for skip in case.findall("skipped"):
            if skip.get("type") == "pytest.xfail":
                continue                    # an expected failure is not a skip
            name = "::".join(x for x in (case.get("classname", ""), case.get("name", "")) if x)
            out.append((name, (skip.get("message") or skip.text or "").strip()))
    return out


def run_stage(name: str, cmd: list[str], env: dict, ci: bool) -> tuple[bool, int, list]:
    is_pytest = cmd[1:3] == ["-m", "pytest"]
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        if is_pytest:
            cmd = cmd + [f"--junitxml={junit}", "-rs"]
        code = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **env}).returncode
        skips = skipped_tests(junit) if is_pytest else []
    ok = code == 0
    if skips:
        print(f"--- {name}: {len(skips)} test(s) skipped:", *(f"  {t}: {why}" for t, why in skips), sep="\n")
        if ci:
            print(f"--- {name}: CI allows no skipped test (CI=true): install what they need in .ci/run", flush=True)
            ok = False
    if is_pytest and code == 5:
        print(f"--- {name}: pytest collected no test", flush=True)
    return ok, code, skips


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", action="append", default=[], help="run only stages whose name contains this")
    args = p.parse_args(argv)
    ci = in_ci()
    results = []
    t_all = time.perf_counter()
    for name, cmd, env in stages():
        if args.only and not any(o.lower() in name.lower() for o in args.only):
            continue
        shown = " ".join(cmd[1:] if cmd[0] == PY else cmd)
        print(f"\n=== {name}: {shown}", flush=True)
        t0 = time.perf_counter()
        ok, code, skips = run_stage(name, cmd, env, ci)
        dt = time.perf_counter() - t0
        results.append((name, ok, dt, code, len(skips)))
        verdict = "ok" if ok else (f"FAILED (exit {code})" if code else f"FAILED ({len(skips)} skipped in CI)")
        print(f"=== {name}: {verdict} in {dt:.1f}s", flush=True)
    print(f"\nstage times{' (CI: skips fail)' if ci else ''}:")
    for name, ok, dt, code, n_skip in results:
        print(f"  {'ok  ' if ok else 'FAIL'} {dt:7.1f}s  {name}" + (f"  ({n_skip} skipped)" if n_skip else ""))
    print(f"  total {time.perf_counter() - t_all:.1f}s")
    return 0 if results and all(r[1] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Run every test stage of `make test`, timing each one.

Stages: library tests (pytest tests/), every notebook at smoke scale (nbval), a strict build of
the book from the committed outputs, and browser tests over the built HTML (when Chromium is
installed).  Exits non-zero if any stage fails; prints a summary line per stage.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def stages() -> list[tuple[str, list[str], dict]]:
    smoke = {"HYPERNET_SCALE": "smoke", "MPLBACKEND": "Agg"}
    out = [
        ("library tests", [PY, "-m", "pytest", "-q", "-m", "not browser", "tests"], {}),
        ("notebooks (nbval, smoke scale)", [PY, "-m", "pytest", "-q", "--nbval-lax", "-p", "no:cacheprovider",
                                            "--nbval-cell-timeout=600", "book"], smoke),
        ("book build (strict)", [PY, "-m", "hypernet_lib.tools.build_book", "--strict"], {}),
        ("browser tests", [PY, "-m", "pytest", "-q", "-m", "browser", "tests"], {}),
    ]
    return out


def main() -> int:
    results = []
    t_all = time.perf_counter()
    for name, cmd, env in stages():
        print(f"\n=== {name}: {' '.join(cmd[2:]) if cmd[0] == PY else ' '.join(cmd)}", flush=True)
        t0 = time.perf_counter()
        code = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **env}).returncode
        dt = time.perf_counter() - t0
        # pytest exits 5 when it collected nothing: only acceptable for the optional browser stage
        ok = code == 0 or (code == 5 and name == "browser tests")
        results.append((name, ok, dt, code))
        print(f"=== {name}: {'ok' if ok else f'FAILED (exit {code})'} in {dt:.1f}s", flush=True)
    print("\nstage times:")
    for name, ok, dt, code in results:
        print(f"  {'ok  ' if ok else 'FAIL'} {dt:7.1f}s  {name}")
    print(f"  total {time.perf_counter() - t_all:.1f}s")
    return 0 if all(ok for _, ok, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())

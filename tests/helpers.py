"""Pieces several test files share: the repository root, its tools/ scripts, a local web server,
headless Chromium, and a toy image data set.  (tests/ is on sys.path through its conftest.py.)"""
import contextlib
import functools
import http.server
import importlib.util
import os
import shutil
import sys
import threading
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# headless and offline: no sandbox (root in a container), no GPU, no background traffic
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]


def tool(name):
    """A module of the repository's tools/ folder (they are scripts, not part of hypernet_lib)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[name]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(folder):
    """Serve ``folder`` on 127.0.0.1 (a free port) for the block; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextlib.contextmanager
def chromium():
    """Debian's chromium through Playwright (its own browser download fails offline); skips the
    test where either is missing."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def toy_data(n=96, seed=0):
    """A 2-class problem on 1×6×6 noise images (the label: is the mean positive?), split 64/16/16."""
    from hypernet_lib.data import ImageData
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 6, 6, generator=g)
    y = (x.mean(dim=(1, 2, 3)) > 0).long()
    return ImageData("toy", "random", x[:64], y[:64], x[64:80], y[64:80], x[80:], y[80:], num_classes=2)

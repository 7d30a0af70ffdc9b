"""The rendered book in a real browser (Debian's chromium, driven by Playwright).

Runs over _build/html, which `make test` builds before this stage.  Checks every chapter page:
it loads without console errors from our code, has its figures, shows no tracebacks or stray
warnings, and its kernel-free sliders change the picture when moved.  Screenshots of every page
are kept in artifacts/screenshots/.
"""
import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHAPTERS = sorted(p.stem for p in (ROOT / "book").glob("*.ipynb"))
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--no-first-run", "--disable-sync", "--disable-quic"]


@pytest.fixture(scope="module")
def site():
    if not (HTML / "index.html").exists():
        pytest.fail(f"{HTML / 'index.html'} is missing: build the book first (`make book`)")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(HTML))
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


def open_page(browser, url):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    # offline: block every request that leaves 127.0.0.1 (CDNs), so the test never waits on them
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url.split("/book")[0])
               or route.request.url.startswith("data:") else route.abort())
    page.goto(url, wait_until="load")
    return page, errors


def ours(errors, base):
    """Console errors that come from our pages, not from blocked third-party requests."""
    return [e for e in errors if "net::ERR_FAILED" not in e and "Failed to load resource" not in e]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_page(site, browser, chapter):
    url = f"{site}/book/{chapter}.html"
    page, errors = open_page(browser, url)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{chapter}.png"), full_page=True)
    assert page.title() and "404" not in page.title()
    assert not ours(errors, site), f"console errors on {chapter}: {errors}"
    main = page.inner_text("main") if page.query_selector("main") else page.inner_text("body")
    assert "Traceback (most recent call last)" not in main
    for marker in ("Warning:", "UserWarning", "DeprecationWarning"):
        assert marker not in main, f"{chapter} shows a stray warning ({marker})"
    outputs = page.query_selector_all("div.cell_output img, div.output img")
    assert outputs or chapter.startswith("03"), f"{chapter} has no figures"
    page.close()


def test_static_z_slider_changes_the_picture(site, browser):
    page, _ = open_page(browser, f"{site}/book/02_static_mnist.html")
    sliders = page.query_selector_all("div.hn-static-slider")
    assert sliders, "the MNIST chapter has no static slider"
    slider = sliders[0]
    visible = lambda: slider.evaluate(
        "el => Array.from(el.querySelectorAll('.hn-frames img')).filter(i => i.style.display !== 'none').map(i => i.src)")
    before, label_before = visible(), slider.query_selector(".hn-label").inner_text()
    assert len(before) == 1
    rng = slider.query_selector("input[type=range]")
    rng.evaluate("el => { el.value = el.max; el.dispatchEvent(new Event('input')); }")
    after, label_after = visible(), slider.query_selector(".hn-label").inner_text()
    assert len(after) == 1 and after != before and label_after != label_before
    slider.screenshot(path=str(SHOTS / "02_static_mnist_slider_end.png"))
    page.close()

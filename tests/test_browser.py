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
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHAPTERS = sorted(p.stem for p in (ROOT / "book").glob("*.ipynb"))
MATHJAX = "3.2.2"          # Sphinx loads mathjax@3 from a CDN; the test serves the npm package locally
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


@pytest.fixture(scope="module")
def mathjax():
    """MathJax 3 from the npm registry (npm pack), cached under artifacts/, served instead of the CDN."""
    folder = ROOT / "artifacts" / f"mathjax-{MATHJAX}"
    if not (folder / "package" / "es5" / "tex-mml-chtml.js").exists():
        if not shutil.which("npm"):
            pytest.skip("npm is needed to fetch MathJax for the offline math check")
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "pack", f"mathjax@{MATHJAX}", "--silent"], cwd=folder, check=True,
                       capture_output=True, timeout=300)
        with tarfile.open(folder / f"mathjax-{MATHJAX}.tgz") as tar:
            tar.extractall(folder, filter="data")
    return folder / "package"


@functools.lru_cache(maxsize=None)
def _notebook(chapter):
    import nbformat
    return nbformat.read(ROOT / "book" / f"{chapter}.ipynb", as_version=4)


def open_page(browser, url, mathjax_dir=None):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    local = url.split("/book")[0]

    def handle(route):
        req = route.request.url
        if req.startswith(local) or req.startswith("data:"):
            return route.continue_()
        if mathjax_dir is not None and "/mathjax@3/" in req:
            path = mathjax_dir / req.split("/mathjax@3/", 1)[1].split("?")[0]
            if path.is_file():
                return route.fulfill(path=str(path))
        return route.abort()            # offline: every other request that leaves 127.0.0.1

    page.route("**/*", handle)
    page.goto(url, wait_until="load")
    return page, errors


#: Console errors that Jupyter Book 1's own theme produces on every page, whatever the content:
#: sphinx-thebe 0.3.1 adds its config script twice ("Identifier 'THEBE_JS_URL' has already been declared").
THEME_ERRORS = ("Identifier 'THEBE_JS_URL' has already been declared",)


def ours(errors, base):
    """Console errors that come from our pages: not blocked third-party requests, not the theme's known ones."""
    return [e for e in errors if "net::ERR_FAILED" not in e and "Failed to load resource" not in e
            and not any(t in e for t in THEME_ERRORS)]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_page(site, browser, mathjax, chapter):
    url = f"{site}/book/{chapter}.html"
    page, errors = open_page(browser, url, mathjax)
    if page.query_selector(".math"):                     # the math renders (MathJax served locally)
        page.wait_for_selector("mjx-container", state="attached", timeout=30_000)
        assert not page.query_selector("mjx-merror"), f"{chapter}: MathJax reports a TeX error"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{chapter}.png"), full_page=True)
    assert page.title() and "404" not in page.title()
    assert not ours(errors, site), f"console errors on {chapter}: {errors}"
    outputs_text = "\n".join(page.eval_on_selector_all("div.cell_output", "els => els.map(e => e.innerText)"))
    assert "Traceback (most recent call last)" not in outputs_text
    for marker in ("Warning:", "UserWarning", "DeprecationWarning", "FutureWarning"):
        assert marker not in outputs_text, f"{chapter} shows a stray warning ({marker}) in its outputs"
    assert "|---" not in outputs_text and "| ---" not in outputs_text, (
        f"{chapter} prints a Markdown table as text instead of rendering it (nb_render_markdown_format)")
    tables = page.eval_on_selector_all("div.cell_output table", "els => els.length")
    md_tables = sum("|---" in "".join(o.get("data", {}).get("text/markdown", "")) for c in _notebook(chapter).cells
                    if c.cell_type == "code" for o in c.outputs)
    assert tables >= md_tables, f"{chapter}: {md_tables} Markdown tables in its outputs but {tables} rendered"
    cut = page.evaluate("""() => Array.from(document.querySelectorAll(
            'div.cell_output table, mjx-container[display="true"]'))
        .filter(e => {
            const column = (e.closest('.bd-article') || document.body).getBoundingClientRect();
            const scrolls = ['auto', 'scroll'].includes(getComputedStyle(e).overflowX);
            return e.getBoundingClientRect().right > column.right + 1
                || (e.scrollWidth > e.clientWidth + 1 && !scrolls); })
        .map(e => e.innerText.slice(0, 60))""")
    assert not cut, f"{chapter}: wide tables or equations cut off at the column edge (not scrollable): {cut}"
    for text_repr in ("HBox(children", "VBox(children", "FloatSlider(", "IntSlider(", "Output()"):
        assert text_repr not in outputs_text, f"{chapter} shows a widget as text ({text_repr}) instead of rendering it"
    ids = page.eval_on_selector_all("div.hn-static-slider", "els => els.map(e => e.id)")
    assert len(ids) == len(set(ids)), f"{chapter}: a static slider is rendered twice"
    outputs = page.query_selector_all("div.cell_output img, div.output img")
    assert outputs, f"{chapter} has no figures"
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


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_page_weight_under_5_mb(chapter):
    """The HTML of a page plus the images it embeds or links stays under 5 MB."""
    import re
    page = HTML / "book" / f"{chapter}.html"
    if not page.exists():
        pytest.fail(f"{page} is missing: build the book first (`make book`)")
    html = page.read_text()
    total = len(html.encode())
    for src in set(re.findall(r'<img[^>]+src="([^"]+)"', html)):
        if not src.startswith(("data:", "http")):
            total += (page.parent / src).resolve().stat().st_size
    assert total < 5_000_000, f"{chapter} weighs {total / 1e6:.1f} MB"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_page_has_a_colab_launch_button(chapter):
    from hypernet_lib.tools.colab import repository_url
    page = HTML / "book" / f"{chapter}.html"
    if not page.exists():
        pytest.fail(f"{page} is missing: build the book first (`make book`)")
    repo = repository_url().split("github.com/", 1)[1]
    assert f"colab.research.google.com/github/{repo}/blob/main/book/{chapter}.ipynb" in page.read_text()

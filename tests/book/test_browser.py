"""The rendered book in a real browser (Debian's chromium, driven by Playwright).

Runs over _build/html, which `make test` builds before this stage.  Checks every chapter page:
it loads without console errors from our code, has its figures, shows no tracebacks or stray
warnings, and its kernel-free sliders change the picture when moved.  Pages are opened offline:
every request that does not go to the local server is blocked, so the math must be typeset by the
book's own copy of MathJax (_static/mathjax).  Screenshots of every page
are kept in artifacts/screenshots/.
"""
import functools
import re

import pytest
from helpers import ROOT, chromium, serve, tool

pytestmark = pytest.mark.browser

HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "artifacts" / "screenshots"
CHAPTERS = sorted(p.stem for p in (ROOT / "book").glob("*.ipynb"))


@pytest.fixture(scope="module")
def site():
    if not (HTML / "index.html").exists():
        pytest.fail(f"{HTML / 'index.html'} is missing: build the book first (`make book`)")
    with serve(HTML) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@functools.lru_cache(maxsize=None)
def _notebook(chapter):
    import nbformat
    return nbformat.read(ROOT / "book" / f"{chapter}.ipynb", as_version=4)


def open_page(browser, url, blocked=None, width=1280):
    """The page with no network: every request not to the local server is aborted (and listed in ``blocked``)."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    local = url.split("/book")[0]

    def handle(route):
        req = route.request.url
        if req.startswith(local + "/") or req.startswith("data:"):
            return route.continue_()
        if blocked is not None:
            blocked.append(req)
        return route.abort()            # offline: every request that leaves 127.0.0.1

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
def test_chapter_page(site, browser, chapter):
    url = f"{site}/book/{chapter}.html"
    page, errors = open_page(browser, url)
    if page.query_selector(".math"):                     # the math renders (the book's own MathJax, offline)
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
    repository_url = tool("colab").repository_url
    page = HTML / "book" / f"{chapter}.html"
    if not page.exists():
        pytest.fail(f"{page} is missing: build the book first (`make book`)")
    repo = repository_url().split("github.com/", 1)[1]
    assert f"colab.research.google.com/github/{repo}/blob/main/book/{chapter}.ipynb" in page.read_text()


def test_math_is_typeset_offline(site, browser):
    """MathJax comes from the book's own _static/mathjax: with every non-local request blocked, each
    piece of math on every page is typeset (no raw ``\\(z\\)`` left) and no MathJax file was asked of the network."""
    with_math = []
    for chapter in CHAPTERS:
        blocked = []
        page, _ = open_page(browser, f"{site}/book/{chapter}.html", blocked)
        if not page.query_selector(".math"):
            page.close()
            continue
        with_math.append(chapter)
        scripts = page.eval_on_selector_all("script[src*='tex-mml' i]", "els => els.map(e => e.src)")
        assert scripts and all(s.startswith(site + "/") and "/_static/mathjax/" in s for s in scripts), (
            f"{chapter}: MathJax is not loaded from the book's _static/mathjax: {scripts}")
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30_000)
        page.evaluate("() => MathJax.startup.promise")
        raw = page.evaluate("""() => Array.from(document.querySelectorAll('.math'))
            .filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.trim().slice(0, 60))""")
        assert not raw, f"{chapter}: math left as raw TeX with no network: {raw[:5]}"
        assert not page.query_selector("mjx-merror"), f"{chapter}: MathJax reports a TeX error"
        wanted = [u for u in blocked if "mathjax" in u.lower() or u.endswith((".woff", ".woff2"))]
        assert not wanted, f"{chapter}: MathJax asked the network for {wanted}"
        page.close()
    assert with_math, "no page of the book has math: the offline MathJax check checked nothing"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_code_blocks_fit_the_column(site, browser, chapter):
    """No code block sticks out of the text column, and none is wider than its box unless it scrolls."""
    page, _ = open_page(browser, f"{site}/book/{chapter}.html")
    bad = page.evaluate("""() => Array.from(document.querySelectorAll('div.highlight pre')).filter(pre => {
            const box = pre.getBoundingClientRect();
            const holder = pre.closest('div.highlight').parentElement.getBoundingClientRect();
            const column = (pre.closest('.bd-article') || document.body).getBoundingClientRect();
            const scrolls = ['auto', 'scroll'].includes(getComputedStyle(pre).overflowX);
            return box.right > Math.min(holder.right, column.right) + 1
                || (pre.scrollWidth > pre.clientWidth + 1 && !scrolls);
        }).map(pre => pre.innerText.split('\\n').sort((a, b) => b.length - a.length)[0].slice(0, 80))""")
    page.close()
    assert not bad, f"{chapter}: {len(bad)} code block(s) overflow the text column; longest lines: {bad[:5]}"


@pytest.mark.parametrize("width", [980, 1200, 1400])
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_nothing_a_reader_reads_scrolls_sideways(site, browser, chapter, width):
    """At window widths where a sidebar leaves the text column narrowest (980 and 1200 px) and at a
    wide one, no code block and no printed output needs a sideways scroll: code lines are at most
    79 characters and the style sheet sets them small enough there; printed lines wrap."""
    page, _ = open_page(browser, f"{site}/book/{chapter}.html", width=width)
    bad = page.evaluate("""() => Array.from(document.querySelectorAll('div.highlight pre, div.cell_output pre'))
        .filter(pre => pre.scrollWidth > pre.clientWidth + 1)
        .map(pre => pre.innerText.split('\\n').sort((a, b) => b.length - a.length)[0].slice(0, 60))""")
    page.close()
    assert not bad, f"{chapter} at {width} px: {len(bad)} block(s) scroll sideways; longest lines: {bad[:4]}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_widget_that_needs_a_kernel(chapter):
    """No ipywidgets control in a page: with no kernel behind it, it is a dead control.

    myst-nb puts each widget output in the page as a ``widget-view+json`` script, which the
    widget manager (loaded from a CDN) draws as a slider or button that nothing answers; offline it
    draws nothing at all.  The book shows kernel-free sliders (div.hn-static-slider) or pictures
    instead, so the page must carry no widget view."""
    page = HTML / "book" / f"{chapter}.html"
    if not page.exists():
        pytest.fail(f"{page} is missing: build the book first (`make book`)")
    html = page.read_text()
    views = re.findall(r'<script type="application/vnd\.jupyter\.widget-view\+json">(.*?)</script>', html, re.S)
    drawn = re.findall(r'class="[^"]*\b(?:jupyter-widgets|widget-(?:slider|hslider|dropdown|button|toggle-buttons|'
                       r'checkbox|text|inline-hbox|readout))\b', html)
    assert not views and not drawn, (
        f"{chapter}: {len(views)} widget(s) that need a kernel are in the page ({len(drawn)} drawn as HTML); "
        f"show a kernel-free slider or a picture instead")


_FILE_NAME = re.compile(r"(^|[/\\])[\w.-]+\.(png|jpe?g|gif|svg|webp)$", re.I)
_HASH = re.compile(r"^[0-9a-f]{16,}", re.I)
_GENERIC = {"image", "img", "figure", "fig", "output", "plot", "png", "picture", "chart", "graph", "svg"}


def alt_problem(alt) -> str:
    """Why an alt text does not serve a reader ('' if it does)."""
    text = (alt or "").strip()
    if not text:
        return "no alt text"
    if _FILE_NAME.search(text) or _HASH.match(text):
        return f"alt is a file name ({text[:50]})"
    if text.lower().strip(".") in _GENERIC:
        return f"alt is a placeholder ({text})"
    return ""


def test_alt_problem_rules():
    assert alt_problem(None) and alt_problem("  ") and alt_problem("image")
    assert alt_problem("../_images/3f2a9c0d4b1e5a6f7d8c9b0a1e2f3d4c5b6a7f8e9d0c1b2a3f4e5d6c7b8a9f0e.png")
    assert alt_problem("0a1b2c3d4e5f60718293a4b5c6d7e8f9")
    assert not alt_problem("Test error against epoch for the three MNIST models")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_images_have_alt_text_for_a_reader(chapter):
    page = HTML / "book" / f"{chapter}.html"
    if not page.exists():
        pytest.fail(f"{page} is missing: build the book first (`make book`)")
    from html.parser import HTMLParser

    class Imgs(HTMLParser):
        def __init__(self):
            super().__init__()
            self.found = []

        def handle_starttag(self, tag, attrs):
            if tag == "img":
                a = dict(attrs)
                self.found.append((a.get("src", "")[:60], a.get("alt")))

    parser = Imgs()
    parser.feed(page.read_text())
    article = [(src, alt) for src, alt in parser.found if "/_static/" not in src]     # not the theme's own
    bad = [(src, why) for src, alt in article if (why := alt_problem(alt))]
    assert not bad, (f"{chapter}: {len(bad)} of {len(article)} images lack alt text written for a reader; "
                     f"first ones: {bad[:4]}")

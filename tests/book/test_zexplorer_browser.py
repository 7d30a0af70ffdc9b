"""The kernel-free z explorer of chapter 2 in a real browser (Debian's chromium, driven by Playwright).

No built book needed: the tests write a standalone page from a seeded MNISTHyperNet, serve it from
127.0.0.1 with every other request refused, and compare what the page computes in JavaScript with
PyTorch: the generated kernel (Eq. 2), the predictions on the embedded digits, the drawn digit's
probabilities.  One test also renders the output through Jupyter Book 1 / myst-nb, as the book does.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import chromium, serve

from hypernet_lib.book.zexplorer import zexplorer, zexplorer_data
from hypernet_lib.nn import MNISTHyperNet

pytestmark = pytest.mark.browser

ROOT_SEL = ".hn-zexplorer"


def _model_and_data():
    """A seeded MNISTHyperNet with a moved z* and a sharpened FC layer (logits of a few units, so the
    probabilities are far from uniform), and 120 sparse 8-bit stroke images normalised like MNIST."""
    from test_zexplorer import mnist_like
    torch.manual_seed(1)
    model = MNISTHyperNet()
    with torch.no_grad():
        model.conv2.z.copy_(torch.tensor([0.8, -0.5, 0.3, 1.1]))
        model.fc.weight.mul_(8.0)
    x, y, _ = mnist_like(seed=3)
    return model.eval(), x, y


def _page(body: str) -> str:
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>z explorer</title></head>"
            f"<body><main style='max-width:690px;margin:auto'>{body}</main></body></html>")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    model, x, y = _model_and_data()
    folder = tmp_path_factory.mktemp("zexplorer")
    one = zexplorer(model, x, y).data
    (folder / "one.html").write_text(_page(one))
    (folder / "two.html").write_text(_page(zexplorer(model, x, y).data + "<p>between</p>" + zexplorer(model, x, y).data))
    return model, x, y, folder, zexplorer_data(model, x, y)


@pytest.fixture(scope="module")
def site(setup):
    with serve(setup[3]) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def open_page(browser, url):
    """The page with every request that leaves 127.0.0.1 refused and recorded; waits for the widgets."""
    page = browser.new_page(viewport={"width": 1000, "height": 1600})
    page.set_default_timeout(120_000)                  # CI machines shared with training jobs can be slow
    errors, outside = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def handle(route):
        if route.request.url.startswith(("http://127.0.0.1", "data:")):
            return route.continue_()
        outside.append(route.request.url)
        return route.abort()

    page.route("**/*", handle)
    page.goto(url, wait_until="load")
    ready_ms = page.evaluate(f"""async () => {{ const t0 = performance.now();
        await Promise.all(Array.from(document.querySelectorAll('{ROOT_SEL}')).map(r => r.hnReady));
        return performance.now() - t0; }}""")
    return page, errors, outside, ready_ms


@pytest.fixture(scope="module")
def page(browser, site):
    page, errors, outside, ready_ms = open_page(browser, f"{site}/one.html")
    print(f"\nthe 100 test digits were ready {ready_ms:.0f} ms after the page's load event")
    yield page
    assert not errors, f"console errors: {errors}"
    assert not outside, f"the widget made requests outside 127.0.0.1: {outside}"
    page.close()


def set_sliders(page, z, index=0):
    """Move the four z sliders to z, one input event each (as a reader's drag does); returns the page's z."""
    return page.evaluate("""([z, index]) => {
        const root = document.querySelectorAll('.hn-zexplorer')[index];
        const sliders = root.querySelectorAll('.hn-zx-z input[type=range]');
        z.forEach((v, j) => { sliders[j].value = v; sliders[j].dispatchEvent(new Event('input', {bubbles: true})); });
        return root.hnZ; }""", [list(map(float, z)), index])


def read_state(page, index=0):
    return page.evaluate("""index => { const r = document.querySelectorAll('.hn-zexplorer')[index];
        return {z: r.hnZ, kernel: Array.from(r.hnKernel), probs: Array.from(r.hnTestProbs),
                predictions: Array.from(r.hnPredictions), accuracy: r.hnAccuracy,
                drawnProbs: r.hnProbs, drawn: r.hnDrawnInput && Array.from(r.hnDrawnInput),
                prediction: r.hnPrediction}; }""", index)


@torch.no_grad()
def python_probs(model, x, z):
    """MNISTHyperNet.forward with conv2's kernel generated from z: (n, 10) probabilities."""
    kernel = model.generator(torch.as_tensor(z, dtype=torch.float32))
    return torch.softmax(model(x, {"conv2": kernel}).double(), dim=1)


def test_kernel_and_predictions_match_pytorch(setup, page):
    model, x, y = setup[:3]
    z_star = model.z.detach()
    report = []
    for z in (z_star + torch.tensor([0.4, -0.3, 0.2, -0.5]), -z_star, torch.tensor([1.7, 0.9, -1.2, -2.0])):
        page_z = set_sliders(page, z)
        assert np.allclose(page_z, z, atol=0.05)                    # the slider's step rounds z a little
        state = read_state(page)
        with torch.no_grad():
            k_py = model.generator(torch.tensor(page_z, dtype=torch.float32)).numpy()
        k_js = np.asarray(state["kernel"], dtype=np.float64).reshape(16, 16, 7, 7)
        dk = float(np.abs(k_js - k_py).max())
        assert dk <= 1e-5, f"kernel at z={page_z}: max |JS - PyTorch| = {dk}"
        p_py = python_probs(model, x[:100], page_z).numpy()
        p_js = np.asarray(state["probs"]).reshape(100, 10)
        dp = float(np.abs(p_js - p_py).max())
        assert np.array_equal(state["predictions"], p_py.argmax(1)), f"argmax differs at z={page_z}"
        assert dp <= 1e-4, f"probabilities at z={page_z}: max |JS - PyTorch| = {dp}"
        acc_py = float((p_py.argmax(1) == y[:100].numpy()).mean())
        assert state["accuracy"] == pytest.approx(acc_py)
        report.append(f"z=[{', '.join(f'{v:+.3f}' for v in page_z)}]: kernel max|diff| {dk:.1e} "
                      f"(max |K| {np.abs(k_py).max():.3f}), probabilities max|diff| {dp:.1e}, "
                      f"accuracy {100 * acc_py:.0f}% on both")
    print("\n" + "\n".join(report))


def test_literal_forward_pass_equals_the_fast_one(setup, page):
    """The drawn digit goes through conv2 with the generated kernel literally; the test digits through
    the affine-in-z precomputation.  Both, on the same digits, agree with each other and with PyTorch."""
    model, x = setup[0], setup[1]
    z = set_sliders(page, [0.5, 0.5, -0.5, 1.0])
    got = page.evaluate("""xs => { const r = document.querySelector('.hn-zexplorer');
        return xs.map((x, n) => [r.hnForward(x), Array.from(r.hnTestProbs.slice(10 * n, 10 * n + 10))]); }""",
                        [x[n, 0].flatten().tolist() for n in range(5)])
    p_py = python_probs(model, x[:5], z).numpy()
    for n, (direct, fast) in enumerate(got):
        assert np.abs(np.asarray(direct) - p_py[n]).max() <= 1e-4
        assert np.abs(np.asarray(direct) - np.asarray(fast)).max() <= 1e-5


def test_drawing_changes_the_prediction(setup, page):
    model, blob = setup[0], setup[4]
    page.click(f"{ROOT_SEL} button:text('Clear')")
    assert read_state(page)["drawnProbs"] is None
    assert page.inner_text(f"{ROOT_SEL} .hn-zx-predtext") == "Draw a digit."
    pad = page.query_selector(f"{ROOT_SEL} canvas.hn-zx-pad")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()

    def stroke(points):
        page.mouse.move(box["x"] + points[0][0] * box["width"], box["y"] + points[0][1] * box["height"])
        page.mouse.down()
        for px, py in points[1:]:
            page.mouse.move(box["x"] + px * box["width"], box["y"] + py * box["height"], steps=4)
        page.mouse.up()

    stroke([(0.5, 0.15), (0.52, 0.5), (0.5, 0.85)])                        # a "1"
    one = read_state(page)
    text_one = page.inner_text(f"{ROOT_SEL} .hn-zx-predtext")
    assert one["drawnProbs"] is not None and text_one.startswith("Prediction:")
    stroke([(0.3, 0.2), (0.7, 0.2), (0.45, 0.85)])                          # make it a "7"
    seven = read_state(page)
    assert np.abs(np.asarray(seven["drawnProbs"]) - np.asarray(one["drawnProbs"])).max() > 1e-3
    bars = page.eval_on_selector_all(f"{ROOT_SEL} .hn-zx-barval", "els => els.map(e => e.textContent)")
    assert len(bars) == 10 and all(b.endswith("%") for b in bars)
    # what the page classified is an MNIST-style image: ink in a 20×20 box, centre of mass near the middle
    pixels = np.asarray(seven["drawn"]).reshape(28, 28) * blob["std"] + blob["mean"]
    rows, cols = np.nonzero(pixels > 1e-4)
    assert max(np.ptp(rows), np.ptp(cols)) + 1 == 20 and pixels.max() == pytest.approx(1.0, abs=1e-4)
    mass = pixels.clip(0)
    cy, cx = (mass.sum(1) @ np.arange(28)) / mass.sum(), (mass.sum(0) @ np.arange(28)) / mass.sum()
    assert abs(cy - 13.5) <= 0.5 and abs(cx - 13.5) <= 0.5
    # and its probabilities are PyTorch's for that image at the page's z
    x_drawn = torch.tensor(seven["drawn"], dtype=torch.float32).reshape(1, 1, 28, 28)
    p_py = python_probs(model, x_drawn, seven["z"]).numpy()[0]
    assert np.abs(np.asarray(seven["drawnProbs"]) - p_py).max() <= 1e-4
    assert seven["prediction"] == int(p_py.argmax())
    # moving z changes the drawn digit's probabilities too
    set_sliders(page, np.asarray(seven["z"]) * -1)
    assert np.abs(np.asarray(read_state(page)["drawnProbs"]) - np.asarray(seven["drawnProbs"])).max() > 1e-4
    page.click(f"{ROOT_SEL} button:text('Clear')")
    assert read_state(page)["drawnProbs"] is None


def test_copy_a_test_digit_with_the_keyboard(page):
    button = page.locator(f"{ROOT_SEL} button", has_text="Copy a test digit")
    button.focus()
    page.keyboard.press("Enter")
    state = read_state(page)
    assert state["drawnProbs"] is not None and page.inner_text(f"{ROOT_SEL} .hn-zx-predtext").startswith("Prediction:")
    page.click(f"{ROOT_SEL} button:text('Clear')")


def test_every_control_is_labelled_and_keyboard_operable(setup, page):
    unlabelled = page.evaluate("""() => Array.from(document.querySelectorAll(
            '.hn-zexplorer input, .hn-zexplorer button, .hn-zexplorer canvas'))
        .filter(e => e.getAttribute('aria-hidden') !== 'true')
        .filter(e => { const name = (e.getAttribute('aria-label') || '') ||
                         (e.labels && Array.from(e.labels).map(l => l.textContent).join('')) ||
                         (e.tagName === 'BUTTON' ? e.textContent : '');
                       return !name.trim(); })
        .map(e => e.outerHTML.slice(0, 80))""")
    assert not unlabelled, f"controls without an accessible name: {unlabelled}"
    not_focusable = page.evaluate("""() => Array.from(document.querySelectorAll('.hn-zexplorer input, .hn-zexplorer button'))
        .filter(e => e.tabIndex < 0 || (e.disabled && e.type !== 'range')).map(e => e.outerHTML.slice(0, 80))""")
    assert not not_focusable, f"controls the keyboard cannot reach: {not_focusable}"
    root = page.locator(ROOT_SEL)
    for j in range(4):                                      # the accessibility tree names the sliders
        assert root.get_by_role("slider", name=f"z[{j}]", exact=True).count() == 1
    assert root.get_by_role("slider", name="t along z* \u2192 \u2212z*").count() == 1
    for name in ("Reset to z*", "z* \u2192 \u2212z*", "Clear", "random direction 1"):
        assert root.get_by_role("button", name=name).count() >= 1, name
    page.locator(f"{ROOT_SEL} button", has_text="Reset to z*").first.press("Enter")
    before = read_state(page)
    np.testing.assert_allclose(before["z"], setup[0].z.detach().numpy(), rtol=1e-6)
    slider = root.get_by_role("slider", name="z[2]", exact=True)
    slider.focus()
    page.keyboard.press("ArrowRight")
    after = read_state(page)
    assert after["z"][2] > before["z"][2] and after["z"][:2] == before["z"][:2]
    assert np.abs(np.asarray(after["kernel"]) - np.asarray(before["kernel"])).max() > 0
    page.keyboard.press("ArrowLeft")
    assert read_state(page)["z"][2] < after["z"][2]


def test_direction_button_walks_to_minus_z_star(setup, page):
    z_star = setup[0].z.detach().numpy()
    page.locator(f"{ROOT_SEL} button", has_text="Reset to z*").first.click()
    walk = page.locator(f"{ROOT_SEL} button", has_text="z* \u2192 \u2212z*").first
    walk.click()
    page.wait_for_function("() => !document.querySelector('.hn-zexplorer').hnAnimating")
    frames = page.evaluate("() => document.querySelector('.hn-zexplorer').hnAnimationFrames")
    assert frames > 1, "the walk should be animated"
    state = read_state(page)
    np.testing.assert_allclose(state["z"], -z_star, rtol=1e-6, atol=1e-7)
    assert page.input_value(f"{ROOT_SEL} .hn-zx-paths input[type=range]") == "1"
    p_py = python_probs(setup[0], setup[1][:100], -z_star).numpy()
    assert np.abs(np.asarray(state["probs"]).reshape(100, 10) - p_py).max() <= 1e-4
    page.locator(f"{ROOT_SEL} button", has_text="Reset to z*").first.click()
    np.testing.assert_allclose(read_state(page)["z"], z_star, rtol=1e-6)
    page.emulate_media(reduced_motion="reduce")                     # a reader who asks for less motion: a jump
    try:
        walk.click()
        assert page.evaluate("() => document.querySelector('.hn-zexplorer').hnAnimationFrames") == 0
        np.testing.assert_allclose(read_state(page)["z"], -z_star, rtol=1e-6, atol=1e-7)
    finally:
        page.emulate_media(reduced_motion="no-preference")
        page.locator(f"{ROOT_SEL} button", has_text="Reset to z*").first.click()


def test_update_time(page):
    """Slider input -> kernel (Eq. 2) + filter grid + 100 test digits + drawn digit recomputed. Printed, not asserted."""
    page.locator(f"{ROOT_SEL} button", has_text="Copy a test digit").click()     # a drawn digit is classified too
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    thread_time = lambda: {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}["ThreadTime"]
    cpu0 = thread_time()
    times = page.evaluate("""() => { const r = document.querySelector('.hn-zexplorer');
        const s = r.querySelectorAll('.hn-zx-z input[type=range]')[1], out = [];
        for (let k = 0; k < 41; k++) {
            const t0 = performance.now();
            s.value = -1 + k / 20; s.dispatchEvent(new Event('input', {bubbles: true}));
            out.push(performance.now() - t0);
        }
        return out.slice(1); }""")
    cpu_ms = 1000 * (thread_time() - cpu0) / (len(times) + 1)    # the renderer's main-thread CPU time per move
    med = float(np.median(times))
    print(f"\none update (slider input -> kernel + grid + 100 digits + drawn digit), headless chromium: "
          f"wall median {med:.1f} ms, min {min(times):.1f}, max {max(times):.1f} ms over {len(times)} moves; "
          f"main-thread CPU {cpu_ms:.1f} ms per move ({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})")
    page.click(f"{ROOT_SEL} button:text('Clear')")


def test_two_widgets_on_one_page_do_not_clash(browser, site, setup):
    page, errors, outside, _ = open_page(browser, f"{site}/two.html")
    try:
        ids = page.eval_on_selector_all("[id]", "els => els.map(e => e.id)")
        assert len(ids) == len(set(ids)), "duplicate element ids"
        assert page.locator(ROOT_SEL).count() == 2
        own = page.evaluate("""() => Array.from(document.querySelectorAll('.hn-zexplorer')).every(r =>
            Array.from(r.querySelectorAll('label[for]')).every(l => r.contains(document.getElementById(l.htmlFor))))""")
        assert own, "a label points into the other widget"
        z0 = read_state(page, 1)["z"]
        set_sliders(page, [2.0, 2.0, 2.0, 2.0], index=0)
        assert read_state(page, 1)["z"] == z0 and read_state(page, 0)["z"] != z0
        assert not errors and not outside
    finally:
        page.close()


@pytest.mark.slow
def test_renders_through_jupyter_book(tmp_path, setup, browser):
    """The output as a notebook cell's text/html, built by Jupyter Book 1 (myst-nb) like the book: the
    script runs in the built page and the widget computes the same kernel as PyTorch."""
    import nbformat
    jb = Path(sys.executable).with_name("jupyter-book")
    if not jb.exists():
        pytest.skip("jupyter-book is not installed")
    model, x, y = setup[:3]
    book = tmp_path / "book"
    book.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Explorer\n\nSome math: $z^\\ast \\in \\mathbb{R}^4$."),
                nbformat.v4.new_code_cell("zexplorer(model, x_test, y_test)", outputs=[nbformat.v4.new_output(
                    "display_data", data={"text/html": zexplorer(model, x, y).data,
                                          "text/plain": "<IPython.core.display.HTML object>"})])]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, book / "page.ipynb")
    (book / "_toc.yml").write_text("format: jb-book\nroot: page\n")
    (book / "_config.yml").write_text(
        "title: test\nexecute:\n  execute_notebooks: 'off'\n"
        "parse:\n  myst_enable_extensions: [dollarmath, amsmath, colon_fence]\n"
        "sphinx:\n  config:\n    nb_merge_streams: true\n    nb_render_markdown_format: myst\n"
        "    html_context:\n      default_mode: light\n")
    res = subprocess.run([str(jb), "build", str(book)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    html_dir = book / "_build" / "html"
    assert "hnZExplorerMount" in (html_dir / "page.html").read_text()
    with serve(html_dir) as url:
        page, errors, _, _ = open_page(browser, f"{url}/page.html")
        page_z = set_sliders(page, [0.1, 0.2, 0.3, 0.4])
        state = read_state(page)
        with torch.no_grad():
            k_py = model.generator(torch.tensor(page_z, dtype=torch.float32)).numpy().ravel()
        assert np.abs(np.asarray(state["kernel"]) - k_py).max() <= 1e-5
        assert state["accuracy"] is not None
        ours = [e for e in errors if "net::ERR_FAILED" not in e and "Failed to load resource" not in e
                and "THEBE_JS_URL" not in e and "theme mode" not in e]
        assert not ours, ours
        page.close()

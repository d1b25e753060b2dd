"""The static page (`edges2shoes web build`) used the way a visitor uses it, in real headless
Chromium (Debian's, driven by Playwright): built from tiny weights (ngf 8, 256x256), served from
127.0.0.1 with and without COOP/COEP headers, a side-view shoe drawn with the mouse. The shoe on the
page is compared with PyTorch's output for the page's own prepared input (and its dropout masks),
the page's clean-up with `prepare_sketch` on the same canvas, and bad input gets a message.

Every test asserts that no request left 127.0.0.1 and that the console had no errors. With
EDGES2SHOES_SCREENSHOTS=1 the page is saved as docs/images/web_page.png for the README.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from app_support import SHOE_OUTLINE, SOLE_LINE
from edges2shoes_utils.apps.web_site import build_site, runtime_folder, serve_site
from edges2shoes_utils.weights import export_generator, load_generator
from edges2shoes_utils.evaluation.metrics import psnr_per_image
from edges2shoes_utils.inference.sketch import prepare_sketch, sample_sketches
from edges2shoes_utils.inference.web_model import MANIFEST, reference_output
from edges2shoes_utils.nets import UNetGenerator
from edges2shoes_utils.util.errors import ConfigError

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
README_SCREENSHOT = REPO / "docs" / "images" / "web_page.png"
WAIT_MS = 120_000
QUALITY_DB = 30.0  # int8 weights against fp32 PyTorch
IOU_GATE = 0.9  # dark pixels of the page's prepared input against prepare_sketch's


@pytest.fixture(scope="module")
def site(tmp_path_factory, require):
    try:
        runtime_folder()
    except ConfigError as error:
        require(f"the page's runtime ({error})")
    folder = tmp_path_factory.mktemp("web")
    torch.manual_seed(0)
    weights = export_generator(UNetGenerator(ngf=8, levels=8), folder / "tiny.safetensors")
    build_site(str(weights), folder / "site")
    return folder / "site", load_generator(weights)


def _serve(folder: Path, isolate: bool):
    server = serve_site(folder, port=0, isolate=isolate)
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture(scope="module")
def isolated_url(site):
    """The site with COOP/COEP headers: WebAssembly on several threads."""
    yield from _serve(site[0], True)


@pytest.fixture(scope="module")
def plain_url(site):
    """The site without headers, as GitHub Pages serves it."""
    yield from _serve(site[0], False)


# The start of a page function that moves typed arrays out as base64 (far faster than JSON lists).
ENCODE = """() => {
    const encode = (array) => {
        const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
        let text = '';
        for (let i = 0; i < bytes.length; i += 32768) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 32768));
        return btoa(text);
    };"""


class Visit:
    """One page in a fresh browser context, with what left 127.0.0.1 and what the console said."""

    def __init__(self, browser, url: str, init_script: str | None = None) -> None:
        self.context = browser.new_context(viewport={"width": 1200, "height": 900})
        self.page = self.context.new_page()
        self.outside: list[str] = []
        self.errors: list[str] = []
        self.context.on("request", lambda r: None if r.url.startswith(("http://127.0.0.1", "data:", "blob:"))
                        else self.outside.append(r.url))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        if init_script:
            self.page.add_init_script(init_script)
        self.page.goto(url)

    def ready(self) -> dict:
        self.page.wait_for_function("() => window.e2s && (e2s.ready || e2s.error)", timeout=WAIT_MS)
        return self.page.evaluate("() => ({ready: e2s.ready, error: e2s.error, backend: e2s.backend,"
                                  " isolated: self.crossOriginIsolated, text: document.getElementById('backend').textContent})")

    def draw(self, points) -> None:
        """One mouse stroke through `points` (fractions of the drawing canvas)."""
        box = self.page.locator("#drawing").bounding_box()
        xy = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in points]
        self.page.mouse.move(*xy[0])
        self.page.mouse.down()
        for x, y in xy[1:]:
            self.page.mouse.move(x, y, steps=4)
        self.page.mouse.up()

    def next_shoe(self, before: int) -> dict:
        self.page.wait_for_function("(n) => e2s.shoes > n || e2s.error", arg=before, timeout=WAIT_MS)
        return self.last()

    def shoes(self) -> int:
        return self.page.evaluate("() => e2s.shoes")

    def last(self) -> dict:
        """The last shoe: its pixels as shown and as computed, its prepared input and its masks
        (byte arrays, moved out of the page as base64)."""
        state = self.page.evaluate(ENCODE + """
            const last = e2s.last, shoe = document.getElementById('shoe');
            const shown = shoe.getContext('2d').getImageData(0, 0, shoe.width, shoe.height).data;
            return {error: e2s.error, size: last.size, mode: last.mode, id: last.id, prepared: encode(last.prepared),
                    rgba: encode(last.rgba), shown: encode(shown), masks: last.masks.map(encode)};
        }""")
        assert state["error"] is None, state["error"]
        for key in ("prepared", "rgba", "shown"):
            state[key] = base64.b64decode(state[key])
        state["masks"] = [np.frombuffer(base64.b64decode(m), np.float32) for m in state["masks"]]
        return state

    def canvas(self) -> np.ndarray:
        data = self.page.evaluate(ENCODE + """ const c = document.getElementById('drawing');
            return encode(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }""")
        return np.frombuffer(base64.b64decode(data), np.uint8).reshape(512, 512, 4)[..., :3]

    def message(self) -> str:
        return self.page.inner_text("#message")

    def close(self) -> None:
        assert not self.outside, f"requests left 127.0.0.1: {self.outside}"
        assert not self.errors, f"console errors: {self.errors}"
        self.context.close()


def _draw_shoe(visit: Visit) -> dict:
    before = visit.shoes()
    visit.draw(SHOE_OUTLINE)
    visit.next_shoe(before)
    before = visit.shoes()
    visit.draw(SOLE_LINE)
    return visit.next_shoe(before)


def _pytorch_shoe(site, state: dict) -> torch.Tensor:
    """PyTorch's fp32 output for the page's prepared input, with the page's dropout masks."""
    folder, generator = site
    size = state["size"]
    gray = np.frombuffer(state["prepared"], np.uint8).reshape(size, size).astype(np.float32) / 127.5 - 1.0
    edges = torch.from_numpy(np.repeat(gray[None, None], 3, axis=1))
    manifest = json.loads((folder / "model" / MANIFEST).read_text())
    shapes = [mask["shape"] for mask in manifest["modes"]["train"]["masks"]]
    masks = [m.reshape(s) for m, s in zip(state["masks"], shapes)]
    return reference_output(generator, edges, state["mode"], masks).clamp(-1, 1)


def _page_shoe(state: dict) -> torch.Tensor:
    size = state["size"]
    rgba = np.frombuffer(state["shown"], np.uint8).reshape(size, size, 4)[..., :3].astype(np.float32)
    return torch.from_numpy(rgba.transpose(2, 0, 1)[None] / 127.5 - 1.0)


def _psnr(page: torch.Tensor, expected: torch.Tensor) -> float:
    return float(psnr_per_image((page + 1) / 2, (expected + 1) / 2))


# --------------------------------------------------------------------------------------------------
# Tests.


@pytest.mark.parametrize("isolated", [True, False], ids=["with-headers", "without-headers"])
def test_drawn_shoe_matches_pytorch(browser, site, isolated, request):
    """Train mode (the default) and eval mode against PyTorch; the clean-up against prepare_sketch."""
    url = request.getfixturevalue("isolated_url" if isolated else "plain_url")
    visit = Visit(browser, url + "?sw=0")  # without the service worker: the headers alone decide
    state = visit.ready()
    assert state["ready"] and state["backend"]["name"] == "wasm"
    assert state["isolated"] == isolated
    if isolated:
        assert "thread" in state["text"] and "not cross-origin isolated" not in state["text"]
    else:
        assert state["backend"]["threads"] == 1 and "one thread" in state["text"]
    shoe = _draw_shoe(visit)
    assert shoe["mode"] == "train" and shoe["masks"]
    assert shoe["shown"] == shoe["rgba"]  # the canvas shows what the worker computed
    assert np.std(np.frombuffer(shoe["rgba"], np.uint8)) > 1  # a picture, not a blank
    psnr = _psnr(_pytorch_shoe(site, shoe), _page_shoe(shoe))
    assert psnr >= QUALITY_DB, psnr
    assert "ms per shoe" in visit.page.inner_text("#timing")

    # The page's clean-up against prepare_sketch on the same canvas.
    size = shoe["size"]
    page_input = np.frombuffer(shoe["prepared"], np.uint8).reshape(size, size)
    python_input = np.asarray(prepare_sketch(visit.canvas(), size=size)[1].convert("L"))
    dark_page, dark_python = page_input < 128, python_input < 128
    iou = (dark_page & dark_python).sum() / (dark_page | dark_python).sum()
    print(f"train PSNR {psnr:.1f} dB, clean-up IoU {iou:.3f}")
    assert iou >= IOU_GATE, iou

    # A new variation: new masks, another shoe for the same drawing, still PyTorch's.
    before = visit.shoes()
    visit.page.click("#variation")
    varied = visit.next_shoe(before)
    assert varied["prepared"] == shoe["prepared"]
    assert any(not np.array_equal(a, b) for a, b in zip(varied["masks"], shoe["masks"]))
    assert varied["rgba"] != shoe["rgba"]
    assert _psnr(_pytorch_shoe(site, varied), _page_shoe(varied)) >= QUALITY_DB
    if isolated and os.environ.get("EDGES2SHOES_SCREENSHOTS") == "1":
        visit.page.screenshot(path=str(README_SCREENSHOT), full_page=True)

    # Eval mode: no masks, deterministic.
    before = visit.shoes()
    visit.page.select_option("#mode", "eval")
    evaluated = visit.next_shoe(before)
    assert evaluated["mode"] == "eval" and evaluated["masks"] == [] and evaluated["prepared"] == shoe["prepared"]
    psnr = _psnr(_pytorch_shoe(site, evaluated), _page_shoe(evaluated))
    print(f"eval PSNR {psnr:.1f} dB")
    assert psnr >= QUALITY_DB, psnr
    visit.close()


def test_tools_samples_and_uploads(browser, isolated_url, tmp_path):
    visit = Visit(browser, isolated_url + "?sw=0")
    visit.ready()
    before = visit.shoes()
    visit.draw(SHOE_OUTLINE)
    first = visit.next_shoe(before)
    after_outline = visit.canvas()
    before = visit.shoes()
    visit.draw(SOLE_LINE)
    shoe = visit.next_shoe(before)
    assert shoe["prepared"] != first["prepared"]
    assert visit.page.get_attribute("#download", "href").startswith("data:image/png;base64,")

    # Drawings posted while one is being generated: only the newest of them is run.
    before = visit.shoes()
    newest = visit.page.evaluate("() => { for (let i = 0; i < 5; i++) e2s.regenerate(); return e2s.posted; }")
    visit.page.wait_for_function("(id) => e2s.last.id === id", arg=newest, timeout=WAIT_MS)
    visit.page.wait_for_timeout(500)
    assert visit.shoes() - before <= 2  # the first may already be running; the three between never run

    # A text file named .png, then a photo of paper: messages, and the shoe stays.
    fake = tmp_path / "shoe.png"
    fake.write_text("this is a text file, not a picture")
    before = visit.shoes()
    visit.page.set_input_files("#upload", str(fake))
    visit.page.wait_for_function("() => document.getElementById('message').textContent.length > 0", timeout=WAIT_MS)
    assert "shoe.png" in visit.message() and "not a picture" in visit.message()
    photo = next(p for p in sample_sketches() if "photo" in p.name)
    visit.page.set_input_files("#upload", str(photo))
    visit.page.wait_for_function("() => document.getElementById('message').textContent.includes('clean drawing')",
                                 timeout=WAIT_MS)
    assert "Python tools" in visit.message()
    visit.page.wait_for_timeout(300)
    assert visit.shoes() == before and visit.last()["rgba"] == shoe["rgba"]

    # Undo takes the last stroke back; clear empties the canvas and the shoe.
    visit.page.click("#undo")
    undone = visit.next_shoe(before)
    assert np.array_equal(visit.canvas(), after_outline) and undone["prepared"] == first["prepared"]
    visit.page.click("#clear")
    visit.page.wait_for_function("() => document.querySelector('#download').classList.contains('disabled')", timeout=WAIT_MS)
    assert visit.canvas().min() == 255

    # A bundled sample, then a clean drawing uploaded: each gives a shoe.
    assert visit.page.locator("#samples img").count() == len(sample_sketches())
    before = visit.shoes()
    visit.page.click("#samples img >> nth=0")
    visit.next_shoe(before)
    assert visit.canvas().min() < 128
    clean = tmp_path / "clean.png"
    prepare_sketch(sample_sketches()[1])[1].save(clean)
    before = visit.shoes()
    visit.page.set_input_files("#upload", str(clean))
    visit.next_shoe(before)
    assert visit.message() == ""
    visit.close()


def test_service_worker_isolates_a_page_served_without_headers(browser, plain_url):
    visit = Visit(browser, plain_url)
    visit.page.wait_for_function("() => self.crossOriginIsolated && window.e2s && e2s.ready", timeout=WAIT_MS)
    assert "not cross-origin isolated" not in visit.page.inner_text("#backend")
    visit.close()


def test_model_that_fails_to_load_gets_a_message(browser, site, tmp_path):
    folder, _ = site
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / "model" / "generator_train.onnx").write_bytes(b"not a model")
    wrong = tmp_path / "wrong"
    shutil.copytree(folder, wrong)
    manifest = (wrong / "model" / "model.json")
    manifest.write_text(manifest.read_text().replace('"format": 1', '"format": 99'))
    for site_folder, expected in ((broken, "failed to load"), (wrong, "format 99")):
        server = serve_site(site_folder, port=0)
        try:
            visit = Visit(browser, f"http://127.0.0.1:{server.server_address[1]}/?sw=0")
            state = visit.ready()
            assert state["error"] and not state["ready"]
            assert "The model failed to load" in visit.message() and expected in visit.message()
            visit.errors.clear()  # the failed load is the point here
            visit.close()
        finally:
            server.shutdown()


def test_browser_without_wasm_simd_gets_a_message(browser, isolated_url):
    url = isolated_url
    no_simd = ("const validate = WebAssembly.validate;"
               "WebAssembly.validate = (bytes) => bytes.length === 31 ? false : validate(bytes);")
    visit = Visit(browser, url + "?sw=0", init_script=no_simd)
    visit.page.wait_for_function("() => window.e2s && e2s.error", timeout=WAIT_MS)
    assert "SIMD" in visit.message()
    visit.close()

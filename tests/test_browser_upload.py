"""The Colab upload notebook, used the way a person uses it: served by Voila, driven by a real
headless Chromium (Debian's package) through Playwright, with a file picked in the browser's own
file chooser. Voila serves a copy of the notebook, up to its drawing app, with tiny weights made on
the spot injected as its `WEIGHTS` parameter, as the notebook tests run it. Screenshots before and after the upload go to the
test's output folder.

Outside CI the test skips when Chromium or Playwright is missing; in CI (CI=true) it fails loudly.
"""

from __future__ import annotations

import base64
import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from PIL import Image

from app_support import TINY_SIZE, tiny_weights
from edges2shoes_utils.util.servers import free_port, logged_process
from notebook_runner import with_parameters

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "colab_sketch_to_shoe.ipynb"
SKETCHES = REPO / "edges2shoes_utils" / "assets" / "sketches"


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    """A socket connect, not an HTTP probe: every Voila page load starts a kernel."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"voila exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"voila did not listen on port {port} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def output_dir() -> Path:
    folder = Path(os.environ.get("EDGES2SHOES_TEST_OUTPUT", REPO / "runs" / "test-output")) / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def voila_url(tmp_path_factory, output_dir):
    work = tmp_path_factory.mktemp("voila")
    notebook = with_parameters(nbformat.read(NOTEBOOK, as_version=4), {"WEIGHTS": str(tiny_weights(work))})
    # Up to the upload widget: the drawing app in the "Draw" section has its own browser test
    # (test_browser_app.py), and inline here it would load the whole gradio page into every visit.
    draw = next(index for index, cell in enumerate(notebook.cells) if cell.source.startswith("## Draw"))
    notebook.cells = notebook.cells[:draw]
    nbformat.write(notebook, work / NOTEBOOK.name)
    port = free_port()
    log = output_dir / "voila.log"
    env = {
        **os.environ,
        "JUPYTER_DATA_DIR": str(work / "jupyter-data"),
        "JUPYTER_RUNTIME_DIR": str(work / "jupyter-runtime"),
        "EDGES2SHOES_OUTPUT": str(work / "runs"),
        "MPLBACKEND": "Agg",
    }
    voila = [sys.executable, "-m", "voila", NOTEBOOK.name, "--no-browser", f"--port={port}",
             "--Voila.ip=127.0.0.1", "--show_tracebacks=True"]
    with logged_process(voila, log, env=env, cwd=work, stop_timeout=10) as process:
        _wait_for_port(port, process, log)
        yield f"http://127.0.0.1:{port}/"


def _image_bytes(page, selector: str) -> bytes:
    """The bytes behind an <img> (ipywidgets gives it a blob: URL)."""
    encoded = page.eval_on_selector(
        selector,
        """async (img) => {
            const blob = await (await fetch(img.src)).blob();
            const buffer = new Uint8Array(await blob.arrayBuffer());
            let text = '';
            for (const byte of buffer) text += String.fromCharCode(byte);
            return btoa(text);
        }""",
    )
    return base64.b64decode(encoded)


def _open_app(browser, url: str):
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(url, timeout=120_000)
    page.wait_for_selector(".e2s-upload", timeout=120_000)
    return page


def _upload(page, path: Path) -> None:
    # ipywidgets 8 never attaches its <input type=file> to the page: click the button and answer
    # the browser's file chooser, as a person would.
    with page.expect_file_chooser(timeout=30_000) as chooser:
        page.click(".e2s-upload")
    chooser.value.set_files(str(path))


def _assert_no_traceback(page) -> None:
    text = page.inner_text("body")
    for sign in ("Traceback", "There was an error when executing cell", "most recent call last"):
        assert sign not in text, text[-2000:]


def test_upload_a_sketch_shows_a_generated_shoe(browser, voila_url, output_dir):
    sketch = sorted(p for p in SKETCHES.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})[0]
    page = _open_app(browser, voila_url)
    page.screenshot(path=str(output_dir / "before_upload.png"), full_page=True)

    _upload(page, sketch)
    page.wait_for_selector(".e2s-done", timeout=120_000)
    page.wait_for_function(
        "document.querySelector('.e2s-generated') && document.querySelector('.e2s-generated').src.length > 0"
    )
    page.screenshot(path=str(output_dir / "after_upload.png"), full_page=True)
    page.locator(".e2s-app").screenshot(path=str(output_dir / "after_upload_app.png"))

    generated = Image.open(io.BytesIO(_image_bytes(page, ".e2s-generated")))
    generated.load()
    assert generated.size == (TINY_SIZE, TINY_SIZE)
    assert page.locator(".e2s-download").count() == 1
    assert sketch.name in page.inner_text(".e2s-status")
    _assert_no_traceback(page)
    page.close()


def test_non_image_upload_shows_a_clear_message(browser, voila_url, output_dir, tmp_path):
    fake = tmp_path / "not_a_drawing.jpg"
    fake.write_text("this is a text file with a .jpg name\n")
    page = _open_app(browser, voila_url)

    _upload(page, fake)
    error = page.wait_for_selector(".e2s-error", timeout=120_000)
    message = error.inner_text()
    page.screenshot(path=str(output_dir / "non_image_upload.png"), full_page=True)

    assert "not_a_drawing.jpg" in message
    assert "image" in message.lower()
    assert page.locator(".e2s-generated").is_hidden()
    _assert_no_traceback(page)
    page.close()

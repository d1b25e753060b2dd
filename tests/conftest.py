"""Fixtures shared by several test files: the tiny synthetic training set, one CPU thread, gradio's
folders kept in the test's tmp, and a headless Chromium driven by Playwright.

Helpers that are plain functions (servers, drawn shoes, the notebook runner) live in the other
modules of this folder, which pytest puts on the import path (`pythonpath` in pyproject.toml).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from edges2shoes_utils.data.synthetic import make_synthetic

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """12 train and 4 val synthetic 64x64 pairs in the edges2shoes layout."""
    return make_synthetic(tmp_path_factory.mktemp("shoes"), n=12, size=64, seed=0, n_val=4)


@pytest.fixture(scope="module")
def one_thread():
    """Bitwise-reproducible CPU maths and no thread oversubscription on a shared machine, for a whole
    module (`pytestmark = pytest.mark.usefixtures("one_thread")`, or a module fixture's argument);
    the thread count is restored afterwards, since tests in other files may depend on it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def gradio_env(tmp_path_factory):
    """No analytics; gradio's folders in this module's tmp (not the machine's shared /tmp/gradio)."""
    folder = tmp_path_factory.mktemp("gradio")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        patch.setenv("GRADIO_TEMP_DIR", str(folder))
        patch.setenv("GRADIO_EXAMPLES_CACHE", str(folder / "examples"))
        yield folder


def _missing(what: str) -> None:
    """Outside CI a missing browser skips the test; in CI (CI=true) it fails."""
    if IN_CI:
        pytest.fail(f"{what} is not installed: .ci/run should have installed it")
    pytest.skip(f"{what} is not installed")


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, driven by Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright")
    chromium = next((found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None)
    if chromium is None:
        _missing("Chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()

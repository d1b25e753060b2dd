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

from edges2shoes_utils.apps.web_bench import CHROMIUM_FLAGS
from edges2shoes_utils.data.synthetic import make_synthetic

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


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


@pytest.fixture(scope="session")
def require():
    """`require(what)` for a tool a test cannot run without: skips outside CI, fails in CI."""
    return _missing


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


# --------------------------------------------------------------------------------------------------
# Publishing: no real credentials, and the Hub's upload calls replaced.


@pytest.fixture
def no_credentials(tmp_path, monkeypatch):
    """Empty Hugging Face and Kaggle homes, offline huggingface_hub, a private Hub cache."""
    import kagglehub
    from huggingface_hub import constants as hf_constants

    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE", "KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # kagglesdk also reads ~/.kaggle/access_token
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(home / "kaggle"))
    # huggingface_hub reads these once, at import: point the module constants at the same places.
    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(home / "hf" / "token"))
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(kagglehub.config, "_kaggle_credentials", None, raising=False)


@pytest.fixture
def hub_uploads(monkeypatch) -> dict:
    """A token, and HfApi.create_repo / upload_folder replaced (the only calls that would reach the
    network): what they were asked, and what the uploaded folder held, land in the returned dict."""
    import huggingface_hub

    from edges2shoes_utils.nets import UNetGenerator

    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    calls: dict = {}

    def create_repo(self, repo_id, **kwargs):
        calls["create_repo"] = (repo_id, kwargs)
        return huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, **kwargs):
        folder = Path(kwargs["folder_path"])
        calls.update(upload_folder=kwargs, files={p.name for p in folder.iterdir()},
                     card=(folder / "README.md").read_text(), model=UNetGenerator.from_pretrained(folder))

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    return calls

"""Shared by the publishing and Hub tests: no real credentials, an offline huggingface_hub with a
private cache, and that cache laid out as huggingface_hub keeps a downloaded repository."""

from __future__ import annotations

import shutil
from pathlib import Path

import huggingface_hub
import kagglehub
import pytest
from huggingface_hub import constants as hf_constants

REVISION = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def no_credentials(tmp_path, monkeypatch):
    """Empty Hugging Face and Kaggle homes, offline huggingface_hub, a private Hub cache."""
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


def hub_cache_entry(cache: Path, repo_id: str, folder: Path, revision: str = REVISION) -> Path:
    """Lay the files of `folder` out as huggingface_hub's cache keeps a downloaded repository at
    `revision` (also what refs/main points to); returns the snapshot folder."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    for path in folder.iterdir():
        shutil.copy(path, snapshot / path.name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    return snapshot


@pytest.fixture
def hub_uploads(monkeypatch) -> dict:
    """A token, and HfApi.create_repo / upload_folder replaced (the only calls that would reach the
    network): what they were asked, and what the uploaded folder held, land in the returned dict."""
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

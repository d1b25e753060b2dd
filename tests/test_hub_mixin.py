"""The networks' Hugging Face Hub methods (`nets.hub`): the real huggingface_hub PyTorchModelHubMixin,
offline. save_pretrained -> from_pretrained from a folder and from a Hub-style cache (one run in a
fresh process under HF_HUB_OFFLINE=1, as a user sets it), push_to_hub with only the calls that would
reach the network replaced, and the package importing without huggingface_hub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import huggingface_hub
import pytest
import torch

from edges2shoes_utils.nets import DiscriminatorConfig, GeneratorConfig, PatchGANDiscriminator, UNetGenerator
from edges2shoes_utils.util.errors import WeightsError

from hub_support import REVISION, hub_cache_entry

REPO = "someone/tiny-unet"


@pytest.fixture(autouse=True)
def offline(no_credentials):  # noqa: F811  (the fixture imported above)
    """Every test here runs without credentials, offline."""


def tiny(cls=UNetGenerator, seed: int = 0, **settings):
    torch.manual_seed(seed)
    config = GeneratorConfig(ngf=8, levels=6, **settings) if cls is UNetGenerator else DiscriminatorConfig(ndf=8, **settings)
    model = cls(config)
    with torch.no_grad():  # running statistics that matter in eval mode
        for name, tensor in model.state_dict().items():
            if name.endswith("running_mean"):
                tensor.normal_()
    return model


def same_tensors(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    x, y = a.state_dict(), b.state_dict()
    return list(x) == list(y) and all(torch.equal(x[k], y[k]) for k in x)


@pytest.mark.parametrize("cls, settings", [(UNetGenerator, {}), (UNetGenerator, {"layout": "tf", "leaky_slope": 0.3}),
                                           (PatchGANDiscriminator, {"n_layers": 2})])
def test_save_pretrained_then_from_pretrained_from_the_folder(tmp_path, cls, settings):
    model = tiny(cls, **settings)
    model.save_pretrained(tmp_path / "saved")
    assert {p.name for p in (tmp_path / "saved").iterdir()} == {"model.safetensors", "config.json", "README.md"}
    config = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert config == {k: v for k, v in vars(model.config).items()}  # the architecture, all of it
    back = cls.from_pretrained(tmp_path / "saved")
    assert type(back) is cls and back.config == model.config and not back.training
    assert same_tensors(back, model) and "_hub_mixin_config" not in vars(back)


def test_from_pretrained_settings_replace_the_saved_ones(tmp_path):
    tiny().save_pretrained(tmp_path)
    assert UNetGenerator.from_pretrained(tmp_path, dropout=False).config.dropout is False
    with pytest.raises(TypeError, match="unknown settings.*'dropuot'"):
        UNetGenerator.from_pretrained(tmp_path, dropuot=False)


def test_the_card_comes_from_the_template(tmp_path):
    tiny().save_pretrained(tmp_path)
    card = huggingface_hub.ModelCard.load(tmp_path / "README.md")
    assert card.data.library_name == "edges2shoes" and card.data.pipeline_tag == "image-to-image"
    assert {"pix2pix", "edges2shoes", "pytorch_model_hub_mixin"} <= set(card.data.tags)
    assert 'UNetGenerator.from_pretrained("USER/NAME")' in card.text and "arXiv 1611.07004" in card.text
    assert "## Training" not in card.text  # nothing to say about a bare network


def test_from_pretrained_reads_a_hub_style_cache_under_hf_hub_offline(tmp_path):
    """A fresh process, HF_HUB_OFFLINE=1 and HF_HUB_CACHE in its environment: the library's own offline mode."""
    model = tiny(seed=3)
    model.save_pretrained(tmp_path / "saved")
    hub_cache_entry(tmp_path / "cache", REPO, tmp_path / "saved")
    code = (f"import torch; from edges2shoes_utils.nets import UNetGenerator\n"
            f"m = UNetGenerator.from_pretrained({REPO!r})\n"
            f"n = UNetGenerator.from_pretrained({REPO!r}, revision={REVISION!r})\n"
            f"torch.save([m.state_dict(), n.state_dict()], {str(tmp_path / 'loaded.pt')!r})\n"
            f"try:\n    UNetGenerator.from_pretrained('someone/not-cached')\n"
            f"except Exception as error:\n    print(type(error).__name__)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "cache"), "HF_HOME": str(tmp_path / "hf"),
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "OfflineModeIsEnabled" in result.stdout or "LocalEntryNotFoundError" in result.stdout
    for state in torch.load(tmp_path / "loaded.pt", weights_only=True):
        assert state.keys() == model.state_dict().keys()
        assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_push_to_hub_uploads_what_save_pretrained_writes(hub_uploads):
    model = tiny(seed=5)
    model.push_to_hub(REPO, private=True, commit_message="tiny")
    assert hub_uploads["create_repo"] == (REPO, {"private": True, "exist_ok": True})
    assert hub_uploads["upload_folder"]["commit_message"] == "tiny"
    assert hub_uploads["files"] == {"model.safetensors", "config.json", "README.md"}
    assert f'UNetGenerator.from_pretrained("{REPO}")' in hub_uploads["card"]  # the card names the repository
    assert same_tensors(hub_uploads["model"], model)


def test_weights_that_do_not_fit_the_config_are_one_line(tmp_path):
    tiny().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "levels": 5}))
    with pytest.raises(WeightsError) as caught:
        UNetGenerator.from_pretrained(tmp_path)
    assert "model.safetensors: does not fit the UNetGenerator" in str(caught.value) and "\n" not in str(caught.value)
    (tmp_path / "config.json").unlink()
    with pytest.raises(WeightsError, match="no config.json"):
        UNetGenerator.from_pretrained(tmp_path)


def test_the_package_imports_without_huggingface_hub(tmp_path):
    """Nothing imports huggingface_hub until a Hub method is called; without it, the call says what
    to install in one line."""
    code = ("import sys\n"
            "import edges2shoes_utils, edges2shoes_utils.apps.cli\n"
            "from edges2shoes_utils.nets import UNetGenerator\n"
            "print('imported:', 'huggingface_hub' in sys.modules)\n"
            "sys.modules['huggingface_hub'] = None  # as if it were not installed\n"
            "try:\n"
            f"    UNetGenerator(ngf=8, levels=6).save_pretrained({str(tmp_path)!r})\n"
            "except Exception as error:\n"
            "    print(type(error).__name__, error)\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "imported: False"
    assert lines[1].startswith("WeightsError") and "pip install 'edges2shoes[publish]'" in lines[1] and len(lines) == 2

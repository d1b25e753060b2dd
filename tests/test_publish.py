"""Publishing a trained generator (`edges2shoes weights publish`) and loading it back by name.

A real run folder comes from a tiny training on the synthetic set, with a real evaluation report.
Only the library calls that would reach the network are replaced (HfApi.create_repo /
upload_folder, kagglehub.model_upload); everything before them, huggingface_hub's PyTorchModelHubMixin
included, runs for real. Credentials and caches point at empty temporary folders and huggingface_hub
is put in offline mode, so nothing here can read a real login or touch the internet.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import huggingface_hub
import kagglehub
import pytest
import torch
from huggingface_hub import constants as hf_constants

from edges2shoes_utils.apps import cli
from edges2shoes_utils.weights.exports import export_generator
from edges2shoes_utils.weights.fetch import fetch_weights
from edges2shoes_utils.weights.load import load_generator, read_weights
from edges2shoes_utils.weights.publish import Target, publish, stage
from edges2shoes_utils.data.synthetic import make_synthetic
from edges2shoes_utils.nets import UNetGenerator
from edges2shoes_utils.training import TrainConfig, train
from edges2shoes_utils.util.errors import ConfigError, WeightsError

from hub_support import REVISION, hub_cache_entry

REPO = "someone/tiny-shoes"
KAGGLE_MODEL = "someone/tiny-shoes/pyTorch/default"
PUBLISHED = {"model.safetensors", "config.json", "README.md"}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A 2-epoch tiny run (generator_0.pt, generator_1.pt) and its evaluation report in run/eval."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = make_synthetic(tmp_path_factory.mktemp("shoes"), n=8, size=64, seed=0, n_val=2)
        out = tmp_path_factory.mktemp("run")
        train(TrainConfig(data=str(data), out=str(out), epochs=2, batch_size=2, image_size=64, ngf=8, ndf=8,
                          num_workers=0, progress=False, sample_count=0, checkpoint_every=0))
        code = cli.main(["evaluate", "--data", str(data), "--weights", str(out), "--out", str(out / "eval"),
                         "--image-size", "64", "--no-fid", "--no-lpips", "--offline", "--plain"])
        assert code == 0
    finally:
        torch.set_num_threads(threads)
    return out


@pytest.fixture(autouse=True)
def offline(no_credentials):  # noqa: F811  (the fixture imported above)
    """Every test here runs without credentials, offline."""


def report_summary(run: Path, epoch: int) -> dict:
    """What the run's evaluation report says about generator_{epoch}.pt, read independently."""
    document = json.loads((run / "eval" / "metrics.json").read_text())
    (result,) = [r for r in document["results"] if r["source"].endswith(f"generator_{epoch}.pt")]
    return result["summary"]


def tensors(path: Path) -> dict[str, torch.Tensor]:
    return load_generator(path).state_dict()


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------------------------------
# The staged folder and its card.


def test_dry_run_writes_the_folder_and_shows_it(run, tmp_path, capsys, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("a dry run uploaded")

    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", never)
    out = tmp_path / "out"
    assert cli.main(["weights", "publish", str(run), "--hub", REPO, "--dry-run", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == PUBLISHED
    for name in PUBLISHED:
        assert name in printed
    card = (out / "README.md").read_text()
    assert card in printed
    # The newest epoch file, saved exactly; the folder is what save_pretrained writes and reads.
    assert_same_weights(UNetGenerator.from_pretrained(out).state_dict(), tensors(run / "generator_1.pt"))
    assert_same_weights(tensors(out / "model.safetensors"), tensors(run / "generator_1.pt"))
    assert json.loads((out / "config.json").read_text())["ngf"] == 8


def test_card_says_how_it_was_trained_scored_and_used(run, tmp_path):
    staged = stage(run, Target("hub", REPO), tmp_path / "out")
    card = staged.card
    front, body = card.split("---\n")[1], card.split("---\n", 2)[2]
    assert "license: mit" in front and "library_name: edges2shoes" in front and "pipeline_tag: image-to-image" in front
    for tag in ("pix2pix", "edges2shoes", "image-to-image", "pytorch_model_hub_mixin"):
        assert f"- {tag}\n" in front
    # Training, from the run's config.json.
    assert "| epochs trained | 2 of 2 |" in body
    assert "| batch size | 2 per process |" in body and "| image size | 64 x 64 |" in body
    assert "| lambda_L1 | 10.0 |" in body and "synthetic mini set" in body
    # Scores of generator_1 (not generator_0) from the run's report, with the protocol.
    summary = report_summary(run, 1)
    assert f"| {summary['l1']:.4f} | {summary['psnr']:.2f} | {summary['ssim']:.4f} | - | - |" in body
    assert summary["l1"] != report_summary(run, 0)["l1"]
    assert "the `val` split, 2 images" in body and "test-time mode `eval`" in body
    assert "FID not computed" in body and "weights `generator_1`" in body
    # How to use it: the Hub's one-liner, the kit, the official code.
    assert f'UNetGenerator.from_pretrained("{REPO}")' in body and f"--weights hub:{REPO}" in body
    assert f"weights convert hub:{REPO} --to official" in body
    # The published config: the architecture (what from_pretrained reads), training and scores; no local paths.
    config = json.loads((staged.folder / "config.json").read_text())
    assert config["ngf"] == 8 and config["training"]["lambda_l1"] == 10.0 and config["epoch"] == 1
    assert config["evaluation"]["summary"]["l1"] == summary["l1"]
    for text in (card, (staged.folder / "config.json").read_text()):
        assert str(run.parent) not in text and str(tmp_path) not in text


def test_report_option_picks_that_report_and_shows_fid(run, tmp_path):
    report = tmp_path / "report"
    shutil.copytree(run / "eval", report)
    document = json.loads((report / "metrics.json").read_text())
    for result in document["results"]:
        result["summary"]["fid"] = 80.123 if result["source"].endswith("generator_0.pt") else 99.0
    (report / "metrics.json").write_text(json.dumps(document))
    card = stage(run / "generator_0.pt", Target("hub", REPO), tmp_path / "out", report=report).card
    summary = report_summary(run, 0)
    assert f"| {summary['l1']:.4f} | {summary['psnr']:.2f} | {summary['ssim']:.4f} | - | 80.12 |" in card
    assert "| epochs trained | 1 of 2 |" in card  # an explicit epoch file of a run still finds the run's config


def test_report_that_did_not_score_the_file_is_refused(run, tmp_path, capsys):
    report = tmp_path / "report"
    shutil.copytree(run / "eval", report)
    document = json.loads((report / "metrics.json").read_text())
    document["results"] = [r for r in document["results"] if r["source"].endswith("generator_0.pt")]
    (report / "metrics.json").write_text(json.dumps(document))
    code = cli.main(["weights", "publish", str(run), "--hub", REPO, "--report", str(report), "--dry-run", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "did not score" in err and "generator_1.pt" in err and len(err.strip().splitlines()) == 1


def test_file_outside_a_run_gets_a_card_without_training_or_scores(run, tmp_path):
    loose = tmp_path / "mine" / "generator_1.pt"
    loose.parent.mkdir()
    shutil.copy(run / "generator_1.pt", loose)
    staged = stage(loose, Target("kaggle-model", KAGGLE_MODEL), tmp_path / "out")
    assert "how they were trained is not recorded" in staged.card
    assert "No evaluation report was published" in staged.card and any("no evaluation report" in n for n in staged.notes)
    assert f"--weights kaggle-model:{KAGGLE_MODEL}" in staged.card
    assert f'UNetGenerator.from_pretrained(kagglehub.model_download("{KAGGLE_MODEL}"))' in staged.card


def test_card_names_the_weights_a_run_started_from_without_local_paths(run, tmp_path):
    moved = tmp_path / "finetune"
    moved.mkdir()
    shutil.copy(run / "generator_1.pt", moved)
    config = json.loads((run / "config.json").read_text())
    config.update(init="kaggle", init_generator="/home/someone/secret/generator_9.pt", init_discriminator="hub:a/b")
    (moved / "config.json").write_text(json.dumps(config))
    staged = stage(moved, Target("hub", REPO), tmp_path / "out")
    assert "| started from (init) | `kaggle` |" in staged.card
    assert "| started from (init_generator) | `generator_9.pt` |" in staged.card
    assert "| started from (init_discriminator) | `hub:a/b` |" in staged.card
    published = json.loads((staged.folder / "config.json").read_text())["training"]
    assert published["init_generator"] == "generator_9.pt" and published["init"] == "kaggle"
    assert "/home/someone" not in staged.card + (staged.folder / "config.json").read_text()


@pytest.mark.parametrize("argv, message", [
    (["--hub", REPO, "--dry-run"], "--out DIR"),
    (["--hub", "no-slash", "--dry-run", "--out", "OUT"], "not a repository name"),
    (["--kaggle-model", "a/b/c", "--dry-run", "--out", "OUT"], "not a repository name"),
    (["--kaggle-model", "a/b/pyTorch/v/3", "--dry-run", "--out", "OUT"], "not a repository name"),
    (["--hub", REPO, "--license", "mit\nevil: yes", "--dry-run", "--out", "OUT"], "not a license id"),
])
def test_bad_options_are_one_line(run, tmp_path, capsys, argv, message):
    argv = [str(tmp_path / "o") if a == "OUT" else a for a in argv]
    assert cli.main(["weights", "publish", str(run), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_out_folder_with_other_files_is_refused(run, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(ConfigError, match="holiday.jpg"):
        stage(run, Target("hub", REPO), out)


def test_folder_without_weights_is_refused(tmp_path):
    with pytest.raises(WeightsError, match="no generator_N.pt or last.pt"):
        stage(tmp_path, Target("hub", REPO), tmp_path / "out")


# --------------------------------------------------------------------------------------------------
# Uploads: everything up to the library call that sends.


def test_hub_upload_is_the_mixins_push_to_hub(run, hub_uploads, capsys):
    assert cli.main(["weights", "publish", str(run), "--hub", REPO, "--private", "--message", "first"]) == 0
    assert hub_uploads["create_repo"] == (REPO, {"private": True, "exist_ok": True})
    assert hub_uploads["upload_folder"]["repo_id"] == REPO and hub_uploads["upload_folder"]["commit_message"] == "first"
    assert hub_uploads["files"] == PUBLISHED
    assert f"{report_summary(run, 1)['l1']:.4f}" in hub_uploads["card"] and f'from_pretrained("{REPO}")' in hub_uploads["card"]
    assert_same_weights(hub_uploads["model"].state_dict(), tensors(run / "generator_1.pt"))
    assert f"https://huggingface.co/{REPO}" in capsys.readouterr().out


def test_kaggle_model_upload_sends_the_staged_folder(run, tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "not-a-real-key")
    calls = {}

    def model_upload(handle, local_model_dir, license_name=None, version_notes="", ignore_patterns=None, *, sigstore=False):
        calls.update(handle=handle, license=license_name, notes=version_notes,
                     files={p.name for p in Path(local_model_dir).iterdir()})

    monkeypatch.setattr(kagglehub, "model_upload", model_upload)
    out = tmp_path / "kept"
    publish(run, Target("kaggle-model", KAGGLE_MODEL), out=out, message="v1")
    assert calls == {"handle": KAGGLE_MODEL, "license": "MIT", "notes": "v1", "files": PUBLISHED}
    assert {p.name for p in out.iterdir()} == PUBLISHED  # --out keeps what was sent


def test_hub_without_a_login_is_one_clear_message(run, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["weights", "publish", str(run), "--hub", REPO, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "needs a login" in err and "hf auth login" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()  # refused before anything was written


def test_hub_offline_is_one_clear_message_from_the_real_library(run, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")  # a token, but HF_HUB_OFFLINE: create_repo refuses
    assert cli.main(["weights", "publish", str(run), "--hub", REPO]) == 2
    err = capsys.readouterr().err
    assert "could not publish to the Hugging Face Hub as someone/tiny-shoes" in err and "HF_HUB_OFFLINE" in err
    assert len(err.strip().splitlines()) == 1


def test_kaggle_without_a_login_is_one_clear_message(run, capsys, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("uploaded without credentials")

    monkeypatch.setattr(kagglehub, "model_upload", never)
    assert cli.main(["weights", "publish", str(run), "--kaggle-model", KAGGLE_MODEL]) == 2
    err = capsys.readouterr().err
    assert "needs a login" in err and "kagglehub.login()" in err and len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------------------------------
# Loading back by name.


def published_by_0_2(folder: Path, generator_file: Path) -> Path:
    """The folder version 0.2's `weights publish` uploaded: our export as generator.safetensors and a
    config.json holding the generator config under `generator` and the file's name under `weights`."""
    folder.mkdir(parents=True)
    loaded = read_weights(generator_file)
    export_generator(loaded.model, folder / "generator.safetensors", metadata={"published_as": f"hub:{REPO}"})
    document = {"format": "edges2shoes/published-generator/v1", "edges2shoes_version": "0.2.0",
                "weights": "generator.safetensors", "load_with": f"hub:{REPO}",
                "generator": dataclasses.asdict(loaded.config), "parameters": 458579, "source_file": generator_file.name,
                "epoch": 1, "training": None, "evaluation": None}
    (folder / "config.json").write_text(json.dumps(document, indent=2) + "\n")
    (folder / "README.md").write_text("---\nlicense: mit\nlibrary_name: edges2shoes\n---\n# 0.2's card\n")
    return folder


def test_hub_name_loads_back_from_the_cache_offline(run, tmp_path, capsys):
    staged = stage(run, Target("hub", REPO), tmp_path / "out")
    snapshot = hub_cache_entry(Path(hf_constants.HF_HUB_CACHE), REPO, staged.folder)
    assert fetch_weights(f"hub:{REPO}") == snapshot / "model.safetensors"
    assert fetch_weights(f"hub:{REPO}@{REVISION}") == snapshot / "model.safetensors"
    loaded = read_weights(f"hub:{REPO}")
    assert "save_pretrained folder" in loaded.container
    assert_same_weights(loaded.model.state_dict(), tensors(run / "generator_1.pt"))
    assert_same_weights(UNetGenerator.from_pretrained(REPO).state_dict(), loaded.model.state_dict())
    assert cli.main(["weights", "info", f"hub:{REPO}"]) == 0
    assert "458,579" in capsys.readouterr().out  # the tiny generator's parameters


def test_what_0_2_published_on_the_hub_still_loads(run, tmp_path):
    snapshot = hub_cache_entry(Path(hf_constants.HF_HUB_CACHE), REPO, published_by_0_2(tmp_path / "old", run / "generator_1.pt"))
    assert fetch_weights(f"hub:{REPO}") == snapshot / "generator.safetensors"
    assert_same_weights(load_generator(f"hub:{REPO}").state_dict(), tensors(run / "generator_1.pt"))
    assert_same_weights(UNetGenerator.from_pretrained(REPO).state_dict(), tensors(run / "generator_1.pt"))


def test_hub_name_not_in_the_cache_offline_is_one_clear_message(tmp_path):
    with pytest.raises(WeightsError) as caught:
        load_generator("hub:someone/never-published")
    message = str(caught.value)
    assert "someone/never-published" in message and "HF_HUB_OFFLINE" in message and "\n" not in message


@pytest.mark.parametrize("name", ["hub:no-slash", "hub:a/b c", "kaggle:a/b@main", "kaggle-model:a/b/c", "kaggle-model:a/b/c/d/x"])
def test_malformed_published_names_are_refused(name):
    with pytest.raises(WeightsError, match="not a published repository"):
        fetch_weights(name)


def kaggle_downloader(mounted: Path, handles: list) -> callable:
    """Like kagglehub.dataset_download / model_download: (handle, path=None) -> the version folder."""

    def download(handle, path=None):
        handles.append(handle)
        return str(mounted / path) if path else str(mounted)

    return download


def test_kaggle_model_name_loads_back_and_pins_the_version(run, tmp_path):
    staged = stage(run, Target("kaggle-model", KAGGLE_MODEL), tmp_path / "out")
    mounted = tmp_path / "kagglehub" / "models" / KAGGLE_MODEL / "3"
    shutil.copytree(staged.folder, mounted)
    handles: list = []
    cache = tmp_path / "cache"
    for _ in range(2):
        generator = load_generator(f"kaggle-model:{KAGGLE_MODEL}", cache_dir=cache, downloader=kaggle_downloader(mounted, handles))
        assert_same_weights(generator.state_dict(), tensors(run / "generator_1.pt"))
    assert handles == [KAGGLE_MODEL, f"{KAGGLE_MODEL}/3"]  # the second fetch asks for the version first seen
    assert_same_weights(UNetGenerator.from_pretrained(mounted).state_dict(), generator.state_dict())


def test_what_0_2_published_on_kaggle_still_loads_and_pins_the_version(run, tmp_path):
    mounted = published_by_0_2(tmp_path / "kagglehub" / "datasets" / REPO / "versions" / "3", run / "generator_1.pt")
    handles: list = []
    cache = tmp_path / "cache"
    for _ in range(2):
        generator = load_generator(f"kaggle:{REPO}", cache_dir=cache, downloader=kaggle_downloader(mounted, handles))
        assert_same_weights(generator.state_dict(), tensors(run / "generator_1.pt"))
    assert handles == [REPO, f"{REPO}/versions/3"]

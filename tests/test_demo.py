"""The offline demo learns for real: held-out L1 well below the untrained generator's and below
copying the edges, with a report folder that links only files that exist."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

from edges2shoes_utils.apps import cli
from edges2shoes_utils.apps.demo import BUDGETS, LearningCheck, run_demo
from edges2shoes_utils.util.errors import ConfigError


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    """One run of the demo's command with the test budget (64x64, ~300 steps), shared by the tests."""
    out = tmp_path_factory.mktemp("demo")
    # One thread: the budget is in steps, not seconds, so this changes speed only; a single thread
    # stays quick on a busy CI machine where several would contend.
    status = cli.main(["demo", "--out", str(out), "--budget", "quick", "--threads", "1", "--no-progress"])
    return out, status, json.loads((out / "metrics.json").read_text())


@pytest.mark.slow
def test_demo_learns(quick_demo):
    out, status, metrics = quick_demo
    l1 = metrics["heldout"]["l1"]
    assert l1["trained"] <= 0.6 * l1["untrained"], l1
    assert l1["trained"] < l1["copy_edges"], l1
    assert metrics["check"]["passed"] is True and status == 0
    assert metrics["heldout"]["n_pairs"] == BUDGETS["quick"].n_val
    assert metrics["heldout"]["psnr"]["trained"] > metrics["heldout"]["psnr"]["copy_edges"]


@pytest.mark.slow
def test_demo_baseline_is_the_edge_maps_themselves(quick_demo):
    """Recompute "copy the edges" from the held-out files: L1 between each edge map and its photo
    (on the [-1, 1] scale, 8-bit images, like the evaluation)."""
    out, _, metrics = quick_demo
    l1 = []
    for path in sorted((out / "data" / "val").glob("*.jpg")):
        pair = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0
        half = pair.shape[1] // 2
        l1.append(np.abs(pair[:, :half] - pair[:, half:]).mean() * 2)
    assert len(l1) == metrics["heldout"]["n_pairs"]
    assert metrics["heldout"]["l1"]["copy_edges"] == pytest.approx(float(np.mean(l1)), rel=0.02)


@pytest.mark.slow
def test_demo_trained_weights_are_the_ones_scored(quick_demo):
    """The last epoch file of the run, loaded afresh, reproduces the reported held-out L1."""
    out, _, metrics = quick_demo
    from edges2shoes_utils.data.pairs import PairsDataset
    from edges2shoes_utils.evaluation.scoring import evaluate
    from edges2shoes_utils.weights.load import load_generator

    settings = metrics["settings"]
    generator = load_generator(out / "run" / f"generator_{settings['epochs'] - 1}.pt")
    val = PairsDataset(out / "data", split="val", image_size=settings["image_size"], jitter=False)
    result = evaluate(generator, val, mode=metrics["heldout"]["mode"], seed=settings["seed"], fid=False, lpips=False)
    assert result.summary["l1"] == pytest.approx(metrics["heldout"]["l1"]["trained"], rel=1e-3)


@pytest.mark.slow
def test_demo_report_links_existing_pictures(quick_demo):
    out, _, metrics = quick_demo
    for page in ("index.html", "report.md"):
        text = (out / page).read_text()
        targets = re.findall(r"(?:src|href)='([^']+)'", text) + re.findall(r"\]\(([^)]+)\)", text)
        assert len(targets) >= 6, page
        for target in targets:
            assert (out / target).is_file(), f"{page} links a missing {target}"
    for key in ("loss curve", "sketches", "samples (last epoch)", "evaluation grid (trained)"):
        assert key in metrics["files"]
    assert (out / "evaluation" / "metrics.json").is_file()


@pytest.mark.slow
def test_demo_sketch_results_are_shoes_not_blank(quick_demo):
    out, _, _ = quick_demo
    from edges2shoes_utils.inference.sketch import sample_sketches

    sketches = sample_sketches()
    results = [out / "sketches" / f"{p.stem}.png" for p in sketches]
    assert sketches and all(p.is_file() for p in results)
    for path in results:
        pixels = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
        generated = pixels[:, pixels.shape[1] // 2 :]  # right column: the generated shoe
        assert generated.std() > 10, f"{path.name} looks blank"


def test_demo_refuses_a_folder_it_did_not_make(tmp_path, capsys):
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    assert cli.main(["demo", "--out", str(tmp_path), "--budget", "quick"]) == 2
    assert "not made by the demo" in capsys.readouterr().err
    assert keep.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_demo_rejects_an_unknown_budget(tmp_path):
    with pytest.raises(ConfigError, match="unknown demo budget"):
        run_demo(tmp_path / "out", "huge")


@pytest.mark.parametrize(
    "trained, expected",
    [(0.15, True), (0.25, False), (0.55, False), (0.21, True)],
)
def test_learning_check(trained, expected):
    # untrained 0.9 (60% = 0.54), copying the edges 0.22
    assert LearningCheck().passed({"untrained": 0.9, "copy_edges": 0.22, "trained": trained}) is expected


def test_budgets_fit_their_models():
    from edges2shoes_utils.training import TrainConfig

    for budget in BUDGETS.values():
        config = TrainConfig(image_size=budget.image_size, ngf=budget.ngf, ndf=budget.ndf, epochs=budget.epochs,
                             batch_size=budget.batch_size, decay_epochs=budget.decay_epochs)
        config.validate()
        assert budget.n_train >= budget.batch_size and budget.steps > 0


def test_torch_threads_are_restored():
    from edges2shoes_utils.apps.demo import torch_threads

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ConfigError):
        with torch_threads(0):
            pass
    assert torch.get_num_threads() == before

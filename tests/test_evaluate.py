"""Evaluation: metric values against formulas and scikit-image, FID/LPIPS code paths and their
skip reasons offline, test-time modes, best/worst selection, the report folder and the CLI."""

from __future__ import annotations

import csv
import functools
import hashlib
import http.server
import json
import math
import sys
import threading
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity
from torch import nn

from edges2shoes_utils.evaluation import (
    REFERENCE_FID,
    epoch_of,
    evaluate,
    evaluate_many,
    expand_sources,
    generator_mode,
    is_real_val_set,
    metrics,
    run_generator,
    source_labels,
    summary_text,
    write_report,
)
from edges2shoes_utils.nets import UNetGenerator
from edges2shoes_utils.util.errors import DataError

# --------------------------------------------------------------------------------------------------
# Helpers.


def random_pairs(n: int, size: int = 64, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(3, size, size, generator=g) * 2 - 1, torch.rand(3, size, size, generator=g) * 2 - 1) for _ in range(n)]


class Constant(nn.Module):
    """A 'generator' painting every pixel `value` (so scores follow from a formula)."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, edges: torch.Tensor) -> torch.Tensor:
        return torch.full_like(edges, self.value)


class PoolFeatures(nn.Module):
    """A tiny FID feature extractor: 2x2 average colour (12 numbers per image)."""

    num_features = 12

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return nn.functional.adaptive_avg_pool2d(images.float() / 255, 2).flatten(1)


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """FID's formula computed independently with scipy."""
    from scipy import linalg

    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * root))


def refuse_download(url, destination, timeout):
    raise urllib.error.URLError("network blocked by the test")


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    """An empty torch hub cache: nothing is downloaded yet."""
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


# --------------------------------------------------------------------------------------------------
# Pixel metrics.


@pytest.mark.parametrize("difference", [0.5, 0.1, 0.01])
def test_psnr_of_known_mse(difference):
    a = torch.zeros(2, 3, 16, 16)
    b = torch.full_like(a, difference)
    expected = 10 * math.log10(1.0 / difference**2)
    assert torch.allclose(metrics.psnr_per_image(a, b), torch.full((2,), expected), atol=1e-4)


def test_psnr_of_identical_images_is_infinite_and_written_as_none():
    a = torch.rand(1, 3, 16, 16)
    value = float(metrics.psnr_per_image(a, a)[0])
    assert math.isinf(value)
    assert metrics.finite_or_none(value) is None
    assert metrics.finite_or_none(21.5) == 21.5


@pytest.mark.parametrize("shape", [(3, 32, 32), (3, 40, 56), (1, 24, 24)])
@pytest.mark.parametrize("noise", [0.05, 0.3])
def test_ssim_matches_scikit_image(shape, noise):
    g = torch.Generator().manual_seed(1)
    a = torch.rand(2, *shape, generator=g)
    b = (a + noise * torch.randn(2, *shape, generator=g)).clamp(0, 1)
    ours = metrics.ssim_per_image(a, b)
    for i in range(2):
        reference = structural_similarity(
            a[i].permute(1, 2, 0).double().numpy(),
            b[i].permute(1, 2, 0).double().numpy(),
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1.0,
            channel_axis=-1,
        )
        assert float(ours[i]) == pytest.approx(reference, abs=1e-5)


def test_ssim_of_identical_images_is_one_and_of_different_images_less():
    a = torch.rand(3, 3, 32, 32)
    assert torch.allclose(metrics.ssim_per_image(a, a), torch.ones(3), atol=1e-5)
    assert (metrics.ssim_per_image(a, 1 - a) < 0.5).all()


def test_ssim_refuses_images_smaller_than_its_window():
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim_per_image(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


def test_pixel_metrics_scale_and_quantisation():
    fake = torch.full((2, 3, 16, 16), -1.0)
    real = torch.ones(2, 3, 16, 16)
    scores = metrics.pixel_metrics(fake, real)
    assert torch.allclose(scores["l1"], torch.full((2,), 2.0))  # L1 on the [-1, 1] scale
    assert torch.allclose(scores["psnr"], torch.zeros(2), atol=1e-5)  # MSE 1 on [0, 1]
    # values between 8-bit levels score as the level they would be saved as
    nearly = real - 0.001
    assert float(metrics.pixel_metrics(nearly, real)["l1"].max()) == 0.0


# --------------------------------------------------------------------------------------------------
# FID and LPIPS.


def test_fid_with_a_tiny_feature_extractor_matches_the_formula():
    pairs = random_pairs(12, size=32)
    real = torch.stack([p for _, p in pairs])
    fake = (real * 0.5 + 0.3).clamp(-1, 1)
    scorer = metrics.make_fid(feature=PoolFeatures())
    assert isinstance(scorer, metrics.FidScorer)
    scorer.add_real(real)
    scorer.add_fake(fake)
    extractor = PoolFeatures()
    x = extractor(metrics.to_uint8(real)).double().numpy()
    y = extractor(metrics.to_uint8(fake)).double().numpy()
    assert scorer.compute() == pytest.approx(frechet_distance(x, y), rel=1e-3)
    # the real statistics survive a reset for the next generator; same photos give ~0
    scorer.reset_fake()
    scorer.add_fake(real)
    assert scorer.n_real == 12 and scorer.compute() == pytest.approx(0.0, abs=1e-6)


def test_fid_skips_with_reason_when_weights_are_missing_and_download_fails(empty_torch_home):
    skipped = metrics.make_fid(downloader=refuse_download)
    assert isinstance(skipped, metrics.Skipped)
    assert skipped.what == "fid"
    assert "could not be downloaded" in skipped.reason and "network blocked" in skipped.reason
    assert str(empty_torch_home) in skipped.reason  # tells the user where to put the file


def test_default_downloader_failure_is_reported_not_raised(empty_torch_home, monkeypatch):
    def blocked(*args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr("edges2shoes_utils.util.download.urllib.request.urlopen", blocked)  # the one network call
    for make in (metrics.make_fid, metrics.make_lpips):
        skipped = make()
        assert isinstance(skipped, metrics.Skipped) and "no route to host" in skipped.reason


@pytest.mark.parametrize(
    "missing, make, reason",
    [
        ("torchmetrics", metrics.make_fid, "torchmetrics is not installed"),
        ("torchmetrics", metrics.make_lpips, "torchmetrics is not installed"),
        ("torch_fidelity.feature_extractor_inceptionv3", metrics.make_fid, "torch-fidelity is not installed"),
    ],
)
def test_missing_metric_packages_are_skipped_with_reason(monkeypatch, missing, make, reason):
    monkeypatch.setitem(sys.modules, missing, None)  # makes `import missing` raise ImportError
    skipped = make(downloader=refuse_download)
    assert isinstance(skipped, metrics.Skipped) and reason in skipped.reason


def test_backbones_are_not_downloaded_when_downloads_are_off(empty_torch_home):
    def must_not_run(*args):
        raise AssertionError("downloader called although downloads are off")

    skipped = metrics.make_lpips(download=False, downloader=must_not_run)
    assert isinstance(skipped, metrics.Skipped) and "downloads are off" in skipped.reason


def test_a_corrupt_cached_backbone_is_skipped_not_fatal(empty_torch_home):
    path = metrics.hub_checkpoint_path(metrics.inception_url())
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    skipped = metrics.make_fid(downloader=refuse_download)
    assert isinstance(skipped, metrics.Skipped) and "could not build the FID metric" in skipped.reason


def test_cached_backbone_is_used_without_a_download(empty_torch_home):
    url = "https://example.invalid/models/backbone-1234.pth"
    path = metrics.hub_checkpoint_path(url)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"weights")

    def must_not_run(*args):
        raise AssertionError("downloaded although cached")

    assert metrics.ensure_backbone(url, "test", downloader=must_not_run) == path


@pytest.fixture
def local_server(tmp_path):
    """An HTTP server on 127.0.0.1 serving the folder it returns (no real network in tests)."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_file_fetches_into_the_hub_cache_and_checks_the_hash(empty_torch_home, local_server):
    served, base = local_server
    content = b"x" * 1000
    prefix = hashlib.sha256(content).hexdigest()[:8]
    (served / f"backbone-{prefix}.pth").write_bytes(content)
    (served / "backbone-00000000.pth").write_bytes(content)  # name promises another hash

    path = metrics.ensure_backbone(f"{base}/backbone-{prefix}.pth", "test", timeout=5)
    assert path.read_bytes() == content
    assert path.parent == empty_torch_home / "hub" / "checkpoints"
    with pytest.raises(metrics.BackboneUnavailable, match="SHA-256"):
        metrics.ensure_backbone(f"{base}/backbone-00000000.pth", "test", timeout=5)
    with pytest.raises(metrics.BackboneUnavailable, match="404|Not Found"):
        metrics.ensure_backbone(f"{base}/missing-11111111.pth", "test", timeout=5)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no partial or bad file left


def test_lpips_scorer_scores_each_image(empty_torch_home):
    """LPIPS on torchmetrics with a randomly initialised SqueezeNet backbone placed in the cache
    (the lightest backbone; the real weights are a download away)."""
    import torchvision

    url = torchvision.models.SqueezeNet1_1_Weights.DEFAULT.url
    path = metrics.hub_checkpoint_path(url)
    path.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.squeezenet1_1(weights=None).state_dict(), path)
    scorer = metrics.LpipsScorer("squeeze")
    real = torch.stack([p for _, p in random_pairs(3, size=64)])
    fake = real.clone()
    fake[1] = -fake[1]
    scores = scorer(fake, real)
    assert scores.shape == (3,)
    assert scores[0] == pytest.approx(0.0, abs=1e-6) and scores[2] == pytest.approx(0.0, abs=1e-6)
    assert scores[1] > 1e-4


# --------------------------------------------------------------------------------------------------
# Test-time modes.


def tiny_generator(seed: int = 0) -> UNetGenerator:
    torch.manual_seed(seed)
    return UNetGenerator(ngf=8, levels=6)


def test_generic_path_eval_mode_is_batch_independent():
    generator = nn.Sequential(tiny_generator())  # not a UNetGenerator: the generic path
    edges = torch.stack([e for e, _ in random_pairs(3)])
    with generator_mode(generator, "eval"), torch.inference_mode():
        batch = run_generator(generator, edges, mode="eval", seed=0, first_index=0)
        single = torch.cat([run_generator(generator, edges[i : i + 1], mode="eval", seed=0, first_index=i) for i in range(3)])
    assert torch.allclose(batch, single, atol=1e-5)


def test_generic_path_train_mode_is_seeded_per_image_and_leaves_the_model_as_it_was():
    generator = nn.Sequential(tiny_generator())
    generator.eval()
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    edges = torch.stack([e for e, _ in random_pairs(3)])
    rng_before = torch.get_rng_state()
    with generator_mode(generator, "train"), torch.inference_mode():
        assert generator.training
        a = run_generator(generator, edges, mode="train", seed=7, first_index=0)
        b = torch.cat([run_generator(generator, edges[i : i + 1], mode="train", seed=7, first_index=i) for i in range(3)])
        c = run_generator(generator, edges, mode="train", seed=8, first_index=0)
    assert torch.equal(a, b)  # same seed, any batching: same pictures
    assert not torch.allclose(a, c)  # dropout is on: another seed, other pictures
    assert not generator.training  # mode restored
    assert torch.equal(torch.get_rng_state(), rng_before)  # caller's random state untouched
    after = generator.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running statistics untouched


@pytest.mark.parametrize("fast", [True, False])
def test_train_mode_scores_do_not_depend_on_batching_or_limit(fast):
    generator = tiny_generator()
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    pairs = random_pairs(5)
    options = dict(mode="train", fid=False, lpips=False, fast=fast)
    whole = evaluate(generator, pairs, seed=3, batch_size=5, **options)
    ones = evaluate(generator, pairs, seed=3, batch_size=1, **options)
    first = evaluate(generator, pairs, seed=3, batch_size=2, limit=2, **options)
    other = evaluate(generator, pairs, seed=4, batch_size=5, **options)
    assert [s.l1 for s in whole.scores] == pytest.approx([s.l1 for s in ones.scores], abs=1e-6)
    assert [s.l1 for s in first.scores] == pytest.approx([s.l1 for s in whole.scores[:2]], abs=1e-6)
    assert [s.l1 for s in other.scores] != pytest.approx([s.l1 for s in whole.scores], abs=1e-6)
    assert whole.mode == "train" and whole.seed == 3
    assert all(torch.equal(before[k], v) for k, v in generator.state_dict().items())


def test_eval_mode_agrees_between_fast_plain_and_generic_paths():
    generator = tiny_generator()
    with torch.no_grad():  # give batch norm running statistics that are not the identity
        for module in generator.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    pairs = random_pairs(4)
    options = dict(mode="eval", fid=False, lpips=False, batch_size=2)
    fast = evaluate(generator, pairs, fast=True, **options)
    plain = evaluate(generator, pairs, fast=False, **options)
    generic = evaluate(nn.Sequential(generator), pairs, **options)
    assert [s.l1 for s in fast.scores] == pytest.approx([s.l1 for s in plain.scores], abs=2e-3)
    assert [s.l1 for s in plain.scores] == pytest.approx([s.l1 for s in generic.scores], abs=1e-6)


def test_train_mode_normalises_each_image_with_its_own_statistics():
    generator = tiny_generator()
    pairs = random_pairs(3)
    train = evaluate(generator, pairs, mode="train", fid=False, lpips=False)
    deterministic = evaluate(generator, pairs, mode="eval", fid=False, lpips=False)
    assert [s.l1 for s in train.scores] != pytest.approx([s.l1 for s in deterministic.scores], abs=1e-4)


def test_unknown_mode_is_a_clear_error():
    from edges2shoes_utils.util.errors import ConfigError

    with pytest.raises(ConfigError, match="test-time mode"):
        with generator_mode(tiny_generator(), "test"):
            pass


# --------------------------------------------------------------------------------------------------
# evaluate().


class GreyLevels(list):
    """Pairs whose photos are flat grey at known levels, with file names."""

    def __init__(self, levels: list[float], size: int = 32) -> None:
        super().__init__((torch.zeros(3, size, size), torch.full((3, size, size), v)) for v in levels)
        self.files = [Path(f"/data/val/{i + 1}_AB.jpg") for i in range(len(levels))]


def test_evaluate_scores_follow_from_the_pictures():
    levels = [-1.0, 0.0, 0.5, 1.0, -0.5]
    result = evaluate(Constant(-1.0), GreyLevels(levels), fid=False, lpips=False, batch_size=2, keep=2, grid_images=3)
    expected_l1 = [abs(-1.0 - v) for v in levels]
    assert [s.name for s in result.scores] == [f"{i + 1}_AB.jpg" for i in range(5)]
    assert [s.l1 for s in result.scores] == pytest.approx(expected_l1, abs=1e-2)
    assert result.summary["l1"] == pytest.approx(sum(expected_l1) / 5, abs=1e-2)
    assert result.summary["psnr"] is None  # image 1 is reproduced exactly: infinite PSNR
    assert result.scores[0].ssim == pytest.approx(1.0, abs=1e-5)
    assert [s.name for s in result.best] == ["1_AB.jpg", "5_AB.jpg"]
    assert [s.name for s in result.worst] == ["4_AB.jpg", "3_AB.jpg"]
    assert len(result.samples) == 3
    assert result.skipped_metrics == {"fid": "turned off", "lpips": "turned off"}
    assert result.summary["fid"] is None and result.mode == "eval" and result.seed == 0


def test_evaluate_respects_limit_and_skips_unreadable_files():
    class OneBad(GreyLevels):
        def __getitem__(self, index):
            if index == 1:
                raise DataError("/data/val/2_AB.jpg: not a JPEG")
            return super().__getitem__(index)

    result = evaluate(Constant(0.0), OneBad([0.0] * 6), limit=4, fid=False, lpips=False, batch_size=3)
    assert [s.index for s in result.scores] == [0, 2, 3]
    assert len(result.skipped_files) == 1 and "not a JPEG" in result.skipped_files[0]


def test_evaluate_with_nothing_readable_is_a_data_error():
    class AllBad(list):
        def __getitem__(self, index):
            raise DataError("broken")

    with pytest.raises(DataError, match="no image"):
        evaluate(Constant(0.0), AllBad([None] * 2), fid=False, lpips=False)


def test_evaluate_offline_records_both_skip_reasons(empty_torch_home, tmp_path):
    result = evaluate(tiny_generator(), random_pairs(3), downloader=refuse_download)
    assert set(result.skipped_metrics) == {"fid", "lpips"}
    assert all("could not be downloaded" in reason for reason in result.skipped_metrics.values())
    files = write_report([result], tmp_path / "report")
    document = json.loads(files.metrics_json.read_text())
    assert set(document["metrics_skipped"]) == {"fid", "lpips"}
    page = files.index.read_text()
    assert "could not be downloaded" in page and "Metrics not computed" in page


def test_evaluate_many_shares_real_fid_statistics():
    pairs = random_pairs(6, size=64)
    results = evaluate_many(
        [("first", tiny_generator(0)), ("second", tiny_generator(1))], pairs, fid=PoolFeatures(), lpips=False, batch_size=4
    )
    assert [r.name for r in results] == ["first", "second"]
    assert all(r.summary["fid"] is not None and r.summary["fid"] > 0 for r in results)
    assert results[0].summary["fid"] != results[1].summary["fid"]
    # the same generator alone gives the same FID: the shared real statistics are the right ones
    alone = evaluate(tiny_generator(1), pairs, fid=PoolFeatures(), lpips=False, batch_size=4)
    assert alone.summary["fid"] == pytest.approx(results[1].summary["fid"], rel=1e-6)


# --------------------------------------------------------------------------------------------------
# Sources, labels, the real val set.


def test_expand_sources_and_labels(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for epoch in (10, 2, 0):
        (run / f"generator_{epoch}.pt").write_bytes(b"")
    (run / "discriminator_0.pt").write_bytes(b"")
    other = tmp_path / "other"
    other.mkdir()
    (other / "generator_2.pt").write_bytes(b"")
    sources = expand_sources([str(run), "pix2pix-official", str(other / "generator_2.pt")])
    assert [Path(s).name for s in sources] == ["generator_0.pt", "generator_2.pt", "generator_10.pt", "pix2pix-official", "generator_2.pt"]
    assert [epoch_of(s) for s in sources] == [0, 2, 10, None, 2]
    labels = source_labels(sources)
    assert labels == ["generator_0", "run/generator_2", "generator_10", "pix2pix-official", "other/generator_2"]


def test_real_val_set_detection(tmp_path):
    class Folder(list):
        def __init__(self, root, n):
            super().__init__([None] * n)
            self.root, self.split = root, "val"

    class Done:
        def __init__(self, n):
            self.n_images = n

    assert is_real_val_set(Folder(tmp_path, 200), [Done(200)])
    assert not is_real_val_set(Folder(tmp_path, 200), [Done(50)])  # --limit 50
    assert not is_real_val_set(Folder(tmp_path, 20), [Done(20)])
    (tmp_path / "SYNTHETIC.json").write_text("{}")
    assert not is_real_val_set(Folder(tmp_path, 200), [Done(200)])


# --------------------------------------------------------------------------------------------------
# Reports.


def test_report_folder_for_several_epochs(tmp_path):
    pairs = random_pairs(5, size=64)
    sources = [(f"generator_{e}", tiny_generator(e)) for e in range(3)] + [("official", tiny_generator(9))]
    results = evaluate_many(sources, pairs, fid=PoolFeatures(), lpips=False, batch_size=4, keep=2, grid_images=3)
    for epoch, r in enumerate(results[:3]):
        r.epoch = epoch
    files = write_report(results, tmp_path / "report")

    document = json.loads(files.metrics_json.read_text())
    assert document["mode"] == "eval" and document["seed"] == 0
    assert [r["name"] for r in document["results"]] == ["generator_0", "generator_1", "generator_2", "official"]
    assert document["reference_fid"] is None  # not the real val set
    with files.per_image_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 * 5 and {r["weights"] for r in rows} == {r.name for r in results}
    assert float(rows[0]["l1"]) == pytest.approx(results[0].scores[0].l1, rel=1e-4)
    with files.comparison_csv.open() as handle:
        table = list(csv.DictReader(handle))
    assert [t["weights"] for t in table] == [r.name for r in results]
    assert float(table[3]["fid"]) == pytest.approx(results[3].summary["fid"], rel=1e-4)
    assert set(files.curves) == {"l1", "psnr", "ssim", "fid"}
    assert files.compare is not None and len(files.grids) == len(files.best) == len(files.worst) == 4

    page = files.index.read_text()
    pictures = [files.compare, *files.curves.values(), *files.grids.values(), *files.best.values(), *files.worst.values()]
    for picture in pictures:
        assert picture.is_file() and picture.stat().st_size > 0
        assert picture.relative_to(files.folder).as_posix() in page
    assert not list(files.folder.rglob("*.tmp"))  # written atomically, nothing left over

    # The same folder reused for one other generator shows that evaluation only.
    again = write_report(evaluate_many([("retrained", tiny_generator(5))], pairs, fid=False, lpips=False,
                                       batch_size=4, keep=2, grid_images=3), tmp_path / "report")
    left = {p.name for p in (again.folder / "pictures").glob("*.png")}
    assert left == {"grid_retrained.png", "best_retrained.png", "worst_retrained.png"}


def test_reference_figures_appear_only_for_the_real_val_set(tmp_path):
    result = evaluate(Constant(0.0), GreyLevels([0.0, 0.5]), fid=False, lpips=False)
    assert "75.8" not in summary_text([result], real_val_set=False)
    text = summary_text([result], real_val_set=True)
    assert all(str(v) in text for v in REFERENCE_FID.values())

    class RealLooking(GreyLevels):
        root, split = tmp_path, "val"

    many = RealLooking([0.0] * 200, size=16)
    result = evaluate(Constant(0.0), many, fid=False, lpips=False, batch_size=100)
    files = write_report([result], tmp_path / "report", dataset=many)
    document = json.loads(files.metrics_json.read_text())
    assert document["reference_fid"] == REFERENCE_FID
    assert "84.4" in files.index.read_text()


# --------------------------------------------------------------------------------------------------
# Command line.


def test_cli_evaluates_a_run_folder(tmp_path, capsys):
    pytest.importorskip("edges2shoes_utils.data.pairs")
    pytest.importorskip("edges2shoes_utils.weights.load")
    from edges2shoes_utils.weights.formats import save_epoch_weights
    from edges2shoes_utils.apps.cli import main
    from edges2shoes_utils.nets import PatchGANDiscriminator
    from edges2shoes_utils.data.synthetic import make_synthetic

    root = make_synthetic(tmp_path / "data", n=2, size=64, n_val=3)
    run = tmp_path / "run"
    for epoch in range(2):
        save_epoch_weights(run, epoch, tiny_generator(epoch), PatchGANDiscriminator(ndf=8))
    out = tmp_path / "report"
    status = main(
        ["evaluate", "--data", str(root), "--weights", str(run), "--out", str(out), "--image-size", "64",
         "--no-fid", "--no-lpips", "--mode", "train", "--seed", "3"]
    )
    assert status == 0
    document = json.loads((out / "metrics.json").read_text())
    assert [r["epoch"] for r in document["results"]] == [0, 1]
    assert document["mode"] == "train" and document["seed"] == 3
    assert all(r["n_images"] == 3 for r in document["results"])
    assert (out / "pictures" / "curve_l1.png").is_file()
    assert "report:" in capsys.readouterr().out


def test_cli_reports_a_missing_weights_file_without_traceback(tmp_path, capsys):
    pytest.importorskip("edges2shoes_utils.data.pairs")
    pytest.importorskip("edges2shoes_utils.weights.load")
    from edges2shoes_utils.apps.cli import main
    from edges2shoes_utils.data.synthetic import make_synthetic

    root = make_synthetic(tmp_path / "data", n=1, size=64, n_val=1)
    status = main(["evaluate", "--data", str(root), "--weights", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "r"),
                   "--image-size", "64", "--no-fid", "--no-lpips"])
    assert status == 2
    assert "nope.pt" in capsys.readouterr().err


def test_the_html_comparison_bolds_the_best_of_each_column():
    """Lower L1 and higher PSNR win; a metric nobody computed gets no column; names are escaped."""
    from edges2shoes_utils.evaluation.report import comparison_table_html
    from edges2shoes_utils.evaluation.results import EvalResult

    def result(name: str, l1: float, psnr: float) -> EvalResult:
        return EvalResult(name, None, "train", 0, 64, [], {"l1": l1, "psnr": psnr, "ssim": None, "lpips": None,
                                                          "fid": None})

    page = comparison_table_html([result("<a>", 0.2, 18.0), result("b", 0.1, 17.0)])
    assert page.startswith("<table><tr><th>weights</th><th>images</th><th>L1</th><th>PSNR (dB)</th><th>images/s</th>")
    assert "<tr><td>&lt;a&gt;</td><td>0</td><td>0.2000</td><td><b>18.00</b></td>" in page
    assert "<tr><td>b</td><td>0</td><td><b>0.1000</b></td><td>17.00</td>" in page

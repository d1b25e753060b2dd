"""Tests for edges2shoes_utils.data (pairs, loader, discovery): layout, ordering, jitter, colour
modes, bad files, the loader, and finding the dataset (with injected downloaders: no test touches
the network)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Subset
from torch.utils.data.distributed import DistributedSampler

from edges2shoes_utils import data
from edges2shoes_utils.data import PairsDataset, make_dataloader, resolve_dataset_root
from edges2shoes_utils.util.errors import DataError

LEFT, RIGHT = (200, 40, 40), (40, 40, 200)


def pair_image(side: int = 32, left=LEFT, right=RIGHT) -> Image.Image:
    image = Image.new("RGB", (2 * side, side), left)
    image.paste(Image.new("RGB", (side, side), right), (side, 0))
    return image


def pattern(side: int) -> np.ndarray:
    """An asymmetric, smooth-ish test picture: flips and crops change it visibly."""
    y, x = np.mgrid[0:side, 0:side]
    return np.stack([x * 255 // side, y * 255 // side, ((x * 7 + y * 3) % side) * 255 // side], axis=2).astype(np.uint8)


def write_split(folder: Path, count: int, side: int = 32, suffix: str = ".jpg") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(1, count + 1):
        path = folder / f"{i}_AB{suffix}"
        pair_image(side).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def root(tmp_path: Path) -> Path:
    write_split(tmp_path / "train", 6)
    write_split(tmp_path / "val", 3)
    return tmp_path


def half_mean(tensor: torch.Tensor) -> np.ndarray:
    return ((tensor.mean(dim=(1, 2)) + 1) * 127.5).numpy()


# --------------------------------------------------------------------------------------------------
# Layout, direction, ordering, transforms


@pytest.mark.parametrize("split,size,jitter", [("train", 32, True), ("val", 32, False), ("train", 16, True),
                                               ("val", 24, False)])
def test_items_are_3_channel_tensors_in_range(root: Path, split: str, size: int, jitter: bool) -> None:
    ds = PairsDataset(root, split, image_size=size)
    assert ds.jitter is jitter
    edges, photo = ds[0]
    for t in (edges, photo):
        assert t.shape == (3, size, size) and t.dtype == torch.float32
        assert -1.0 <= t.min() and t.max() <= 1.0


@pytest.mark.parametrize("direction,first,second", [("AtoB", LEFT, RIGHT), ("BtoA", RIGHT, LEFT)])
def test_direction_picks_the_halves(root: Path, direction: str, first, second) -> None:
    ds = PairsDataset(root, "val", image_size=32, direction=direction)
    a, b = ds[0]
    assert np.allclose(half_mean(a), first, atol=6)
    assert np.allclose(half_mean(b), second, atol=6)


def test_bad_direction_is_refused(root: Path) -> None:
    with pytest.raises(DataError, match="direction"):
        PairsDataset(root, "val", direction="AtoC")


def test_files_are_in_numeric_order_and_non_images_ignored(tmp_path: Path) -> None:
    folder = tmp_path / "val"
    folder.mkdir()
    for name in ["10_AB.jpg", "2_AB.jpg", "1_AB.JPG", "b_AB.png", "100_AB.jpeg", "9_AB.jpg"]:
        pair_image(8).save(folder / name, format="PNG" if name.endswith("png") else "JPEG")
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.jpg").write_bytes(b"")
    (folder / "sub.jpg").mkdir()
    ds = PairsDataset(tmp_path, "val", image_size=8)
    assert [p.name for p in ds.files] == ["1_AB.JPG", "2_AB.jpg", "9_AB.jpg", "10_AB.jpg", "100_AB.jpeg", "b_AB.png"]


@pytest.mark.parametrize("size,load", [(256, 286), (128, 143), (64, 72), (512, 572)])
def test_jitter_load_size_scales_with_image_size(size: int, load: int) -> None:
    assert data.jitter_load_size(size) == load


def _write_same_halves(tmp_path: Path, side: int) -> Path:
    folder = tmp_path / "train"
    folder.mkdir()
    half = pattern(side)
    Image.fromarray(np.concatenate([half, half], axis=1)).save(folder / "1_AB.png")
    return tmp_path


def test_jitter_is_identical_for_both_halves_and_varies(tmp_path: Path) -> None:
    ds = PairsDataset(_write_same_halves(tmp_path, 32), "train", image_size=16)
    outputs, flipped = set(), 0
    for seed in range(24):
        torch.manual_seed(seed)
        edges, photo = ds[0]
        assert torch.equal(edges, photo)  # same crop window and same flip for both halves
        outputs.add(edges.numpy().tobytes())
        red = edges[0].mean(dim=0)  # the red channel rises left to right unless flipped
        flipped += bool(red[0] > red[-1])
    assert len(outputs) >= 6
    assert 3 <= flipped <= 21


def test_jitter_is_resize_then_crop_then_flip(tmp_path: Path) -> None:
    """Every jittered output is a size x size window of the half resized to the load size."""
    side, size = 32, 16
    ds = PairsDataset(_write_same_halves(tmp_path, side), "train", image_size=size)
    load = data.jitter_load_size(size)
    resized = Image.fromarray(pattern(side)).resize((load, load), Image.Resampling.BILINEAR)
    resized = np.asarray(resized, dtype=np.float32)
    windows = [resized[y:y + size, x:x + size] for y in range(load - size + 1) for x in range(load - size + 1)]
    windows += [w[:, ::-1] for w in windows]
    for seed in range(6):
        torch.manual_seed(seed)
        edges, _ = ds[0]
        got = ((edges.permute(1, 2, 0).numpy() + 1) * 127.5)
        best = min(np.abs(got - w).max() for w in windows)
        assert best <= 1.5


def test_eval_transform_is_a_plain_resize(tmp_path: Path) -> None:
    folder = tmp_path / "val"
    folder.mkdir()
    left, right = pattern(32), pattern(32)[::-1].copy()
    Image.fromarray(np.concatenate([left, right], axis=1)).save(folder / "1_AB.png")
    ds = PairsDataset(tmp_path, "val", image_size=20)
    edges, photo = ds[0]
    for tensor, half in ((edges, left), (photo, right)):
        expected = np.asarray(Image.fromarray(half).resize((20, 20), Image.Resampling.BILINEAR), dtype=np.float32)
        assert np.abs((tensor.permute(1, 2, 0).numpy() + 1) * 127.5 - expected).max() <= 1.0
    again = ds[0]
    assert torch.equal(again[0], edges) and torch.equal(again[1], photo)


def test_same_seed_same_jitter(root: Path) -> None:
    ds = PairsDataset(root, "train", image_size=16)
    torch.manual_seed(7)
    a = ds[1]
    torch.manual_seed(7)
    b = ds[1]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_jpeg_draft_decoding_gives_the_same_colours(root: Path) -> None:
    """Small models decode JPEGs at reduced scale; the content must still match a full decode."""
    small = PairsDataset(root, "val", image_size=8)
    full = PairsDataset(root, "val", image_size=32)
    for a, b in zip(small[0], full[0]):
        assert np.allclose(half_mean(a), half_mean(b), atol=4)


# --------------------------------------------------------------------------------------------------
# Colour modes that are valid input


def _save_mode(path: Path, mode: str) -> tuple[float, float]:
    """Write a 2:1 image in `mode`; return the grey levels (0-255) expected for the left/right halves."""
    side = 16
    if mode == "L":
        img = Image.new("L", (2 * side, side), 60)
        img.paste(180, (side, 0, 2 * side, side))
        img.save(path, "JPEG", quality=95)
        return 60, 180
    if mode == "CMYK":
        img = Image.new("CMYK", (2 * side, side), (0, 0, 0, 0))
        img.paste((0, 0, 0, 200), (side, 0, 2 * side, side))
        img.save(path, "JPEG", quality=95)
        reopened = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
        return reopened[:, :side].mean(), reopened[:, side:].mean()
    if mode in ("P", "P-transparent"):
        img = Image.new("P", (2 * side, side), 0)
        img.putpalette([50, 50, 50, 220, 220, 220] + [0] * 762)
        img.paste(1, (side, 0, 2 * side, side))
        if mode == "P-transparent":
            img.save(path, "PNG", transparency=0)
            return 255, 220
        img.save(path, "PNG")
        return 50, 220
    if mode == "RGBA":
        img = Image.new("RGBA", (2 * side, side), (0, 0, 0, 0))  # fully transparent: must become white
        img.paste((30, 30, 30, 255), (side, 0, 2 * side, side))
        img.save(path, "PNG")
        return 255, 30
    if mode == "LA":
        img = Image.new("LA", (2 * side, side), (0, 0))
        img.paste((90, 255), (side, 0, 2 * side, side))
        img.save(path, "PNG")
        return 255, 90
    if mode == "I;16":
        values = np.full((side, 2 * side), 8000, dtype=np.uint16)
        values[:, side:] = 40000
        Image.fromarray(values).save(path, "PNG")
        return 8000 / 65535 * 255, 40000 / 65535 * 255
    if mode == "1":
        img = Image.new("1", (2 * side, side), 0)
        img.paste(1, (side, 0, 2 * side, side))
        img.save(path, "PNG")
        return 0, 255
    raise AssertionError(mode)


@pytest.mark.parametrize("mode", ["L", "CMYK", "P", "P-transparent", "RGBA", "LA", "I;16", "1"])
def test_other_colour_modes_become_rgb(tmp_path: Path, mode: str) -> None:
    folder = tmp_path / "val"
    folder.mkdir()
    path = folder / ("1_AB.jpg" if mode in ("L", "CMYK") else "1_AB.png")
    want_left, want_right = _save_mode(path, mode)
    edges, photo = PairsDataset(tmp_path, "val", image_size=16)[0]
    assert edges.shape == photo.shape == (3, 16, 16)
    assert np.allclose(half_mean(edges), want_left, atol=3), half_mean(edges)
    assert np.allclose(half_mean(photo), want_right, atol=3), half_mean(photo)


# --------------------------------------------------------------------------------------------------
# Bad files: skipped and reported by default, fatal in strict mode


def _jpeg_bytes(width: int = 64, height: int = 32) -> bytes:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray((rng.random((height, width, 3)) * 255).astype(np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def _with_size(jpeg: bytes, width: int, height: int) -> bytes:
    """A JPEG whose header claims another size: a decompression bomb costs nothing to make."""
    out = bytearray(jpeg)
    sof = out.find(b"\xff\xc0")
    out[sof + 5:sof + 7] = height.to_bytes(2, "big")
    out[sof + 7:sof + 9] = width.to_bytes(2, "big")
    return bytes(out)


def _corrupt(jpeg: bytes) -> bytes:
    out = bytearray(jpeg)
    sos = out.find(b"\xff\xda")
    out[sos + 2:sos + 14] = b"\x00" * 12
    return bytes(out)


BAD_FILES = {
    "truncated": (lambda: _jpeg_bytes()[: len(_jpeg_bytes()) // 2], "truncated"),
    "corrupt": (lambda: _corrupt(_jpeg_bytes()), "corrupt"),
    "zero-byte": (lambda: b"", "empty file"),
    "not-an-image": (lambda: b"<html>404 Not Found</html>\n" * 20, "not an image"),
    "not-2-to-1": (lambda: _jpeg_bytes(48, 32), "not an A|B pair"),
    "bomb-huge": (lambda: _with_size(_jpeg_bytes(), 60000, 30000), "decompression bomb"),
    "bomb-large": (lambda: _with_size(_jpeg_bytes(), 12000, 6000), "decompression bomb"),
}


@pytest.fixture(params=sorted(BAD_FILES))
def bad_root(request, tmp_path: Path) -> tuple[Path, Path, str]:
    make, reason = BAD_FILES[request.param]
    write_split(tmp_path / "train", 5)
    bad = tmp_path / "train" / "3_AB.jpg"
    bad.write_bytes(make())
    return tmp_path, bad, reason


def test_bad_file_raises_data_error_naming_path_and_reason(bad_root) -> None:
    root, bad, reason = bad_root
    ds = PairsDataset(root, "train", image_size=16)
    with pytest.raises(DataError) as caught:
        ds[ds.files.index(bad)]
    assert str(bad) in str(caught.value) and reason in str(caught.value)


def test_loader_skips_bad_file_and_reports_it(bad_root) -> None:
    root, bad, reason = bad_root
    loader = make_dataloader(PairsDataset(root, "train", image_size=16), batch_size=2, num_workers=0)
    batches = list(loader)
    assert sum(b.edges.shape[0] for b in batches) == 4
    reported = [s for b in batches for s in b.skipped]
    assert len(reported) == 1 and str(bad) in reported[0] and reason in reported[0]
    assert loader.skipped == reported


def test_strict_loader_stops_with_path_and_reason(bad_root) -> None:
    root, bad, reason = bad_root
    loader = make_dataloader(PairsDataset(root, "train", image_size=16, strict=True), batch_size=2, num_workers=0)
    with pytest.raises(DataError) as caught:
        list(loader)
    assert str(bad) in str(caught.value) and reason in str(caught.value)


def test_skipped_files_are_logged(tmp_path: Path, caplog) -> None:
    write_split(tmp_path / "train", 3)
    (tmp_path / "train" / "2_AB.jpg").write_bytes(b"")
    with caplog.at_level("WARNING", logger="edges2shoes_utils.data.loader"):
        list(make_dataloader(PairsDataset(tmp_path, "train", image_size=16), batch_size=4, num_workers=0))
    text = caplog.text
    assert "2_AB.jpg" in text and "skipped 1 bad file" in text


def test_batches_are_never_empty_skips_carry_over(tmp_path: Path) -> None:
    write_split(tmp_path / "val", 4)
    for name in ("1_AB.jpg", "2_AB.jpg"):
        (tmp_path / "val" / name).write_bytes(b"garbage")
    loader = make_dataloader(PairsDataset(tmp_path, "val", image_size=16), batch_size=1, num_workers=0)
    batches = list(loader)
    assert [b.edges.shape[0] for b in batches] == [1, 1]
    assert len(batches[0].skipped) == 2 and batches[1].skipped == []
    assert len(loader.skipped) == 2


def test_skipped_count_restarts_each_epoch_with_workers(tmp_path: Path) -> None:
    write_split(tmp_path / "train", 6)
    (tmp_path / "train" / "4_AB.jpg").write_bytes(b"")
    loader = make_dataloader(PairsDataset(tmp_path, "train", image_size=16), batch_size=2, shuffle=True,
                             num_workers=1)
    assert loader.persistent_workers and loader.num_workers == 1
    for _ in range(2):
        count = sum(b.edges.shape[0] for b in loader)
        assert count == 5 and len(loader.skipped) == 1 and "4_AB.jpg" in loader.skipped[0]


def test_subset_of_dataset_also_skips(tmp_path: Path) -> None:
    write_split(tmp_path / "train", 4)
    (tmp_path / "train" / "2_AB.jpg").write_bytes(b"")
    ds = PairsDataset(tmp_path, "train", image_size=16, strict=True)
    subset = Subset(ds, [0, 1, 2])
    with pytest.raises(DataError, match="2_AB.jpg"):  # strict is taken from the wrapped dataset
        list(make_dataloader(subset, batch_size=3, num_workers=0))
    lenient = make_dataloader(subset, batch_size=3, num_workers=0, strict=False)
    assert sum(b.edges.shape[0] for b in lenient) == 2


def test_loader_settings(root: Path) -> None:
    ds = PairsDataset(root, "train", image_size=16)
    loader = make_dataloader(ds, batch_size=4, shuffle=True, num_workers=0, drop_last=True)
    assert loader.pin_memory == torch.cuda.is_available()
    assert not loader.persistent_workers
    batch = next(iter(loader))
    assert isinstance(batch, data.PairBatch)
    assert batch.edges.shape == batch.photo.shape == (4, 3, 16, 16)
    assert len(loader) == 1  # 6 files, batch 4, drop_last


def test_distributed_sampler_splits_the_data(root: Path) -> None:
    ds = PairsDataset(root, "val", image_size=16, jitter=False)  # 3 files
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=False)
        loader = make_dataloader(ds, batch_size=1, sampler=sampler, num_workers=0)
        seen.append(sum(b.edges.shape[0] for b in loader))
    assert seen == [2, 2]  # 3 files padded to 4, two per rank


# --------------------------------------------------------------------------------------------------
# Missing and empty splits


def test_missing_split_names_the_path(tmp_path: Path) -> None:
    write_split(tmp_path / "train", 1)
    with pytest.raises(DataError) as caught:
        PairsDataset(tmp_path, "val")
    assert str(tmp_path / "val") in str(caught.value) and "train" in str(caught.value)


def test_empty_split_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "readme.txt").write_text("nothing here")
    with pytest.raises(DataError) as caught:
        PairsDataset(tmp_path, "val")
    assert str(tmp_path / "val") in str(caught.value) and "empty" in str(caught.value)


# --------------------------------------------------------------------------------------------------
# Finding the dataset


@pytest.fixture
def no_env(monkeypatch, tmp_path: Path) -> Path:
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    empty = tmp_path / "kaggle-input"
    empty.mkdir()
    return empty


def _never(handle: str) -> str:
    raise AssertionError("the downloader must not be called")


def test_explicit_path_comes_first(root: Path, tmp_path: Path, monkeypatch, no_env: Path) -> None:
    other = tmp_path / "other"
    write_split(other / "train", 1)
    write_split(other / "val", 1)
    monkeypatch.setenv(data.ENV_VAR, str(other))
    assert resolve_dataset_root(root, downloader=_never, kaggle_input=no_env) == root


def test_explicit_path_may_be_a_parent_folder(root: Path, tmp_path: Path, no_env: Path) -> None:
    outer = tmp_path / "download"
    nested = outer / "edges2shoes"
    write_split(nested / "train", 1)
    write_split(nested / "val", 1)
    assert resolve_dataset_root(outer, downloader=_never, kaggle_input=no_env) == nested


def test_explicit_path_that_is_wrong_is_an_error(tmp_path: Path, no_env: Path) -> None:
    with pytest.raises(DataError, match="missing-folder"):
        resolve_dataset_root(tmp_path / "missing-folder", downloader=_never, kaggle_input=no_env)
    (tmp_path / "no-splits").mkdir()
    with pytest.raises(DataError, match="no train/ or val/"):
        resolve_dataset_root(tmp_path / "no-splits", downloader=_never, kaggle_input=no_env)


def test_environment_variable_is_second(root: Path, monkeypatch, no_env: Path) -> None:
    monkeypatch.setenv(data.ENV_VAR, str(root))
    assert resolve_dataset_root(downloader=_never, kaggle_input=no_env) == root
    monkeypatch.setenv(data.ENV_VAR, str(root / "nope"))
    with pytest.raises(DataError, match=data.ENV_VAR):
        resolve_dataset_root(downloader=_never, kaggle_input=no_env)


def test_kaggle_input_is_searched(tmp_path: Path, no_env: Path) -> None:
    decoy = no_env / "aaa-other-dataset"
    (decoy / "train").mkdir(parents=True)  # train/ and val/ without images: not a match
    (decoy / "val").mkdir()
    (decoy / "val" / "labels.csv").write_text("x")
    target = no_env / "edges2shoes-dataset" / "edges2shoes"
    write_split(target / "train", 2)
    write_split(target / "val", 1)
    assert resolve_dataset_root(downloader=_never, kaggle_input=no_env) == target


def test_downloader_is_last_and_gets_the_pinned_handle(tmp_path: Path, no_env: Path) -> None:
    cache = tmp_path / "cache" / "versions" / "1"
    write_split(cache / "train", 1)
    write_split(cache / "val", 1)
    calls = []

    def fake(handle: str) -> str:
        calls.append(handle)
        return str(cache)

    assert resolve_dataset_root(downloader=fake, kaggle_input=no_env) == cache
    assert calls == [data.KAGGLE_HANDLE]
    assert data.KAGGLE_HANDLE.startswith("balraj98/edges2shoes-dataset/versions/")


@pytest.mark.parametrize("failure", [ConnectionError("no network"), PermissionError("401 Unauthorized"),
                                     SystemExit(1), ImportError("No module named 'kagglehub'")])
def test_failed_download_says_what_to_do(no_env: Path, failure: BaseException) -> None:
    def offline(handle: str) -> str:
        raise failure

    with pytest.raises(DataError) as caught:
        resolve_dataset_root(downloader=offline, kaggle_input=no_env)
    message = str(caught.value)
    for hint in (data.ENV_VAR, "Add Data", "kagglehub.login()", "make-synthetic", type(failure).__name__):
        assert hint in message


def test_download_without_splits_is_an_error(tmp_path: Path, no_env: Path) -> None:
    empty = tmp_path / "dl"
    empty.mkdir()
    with pytest.raises(DataError, match="no train/ and val/"):
        resolve_dataset_root(downloader=lambda handle: str(empty), kaggle_input=no_env)


def test_default_downloader_calls_kagglehub_with_the_pin(root: Path, monkeypatch, no_env: Path) -> None:
    calls = []
    fake = types.ModuleType("kagglehub")
    fake.dataset_download = lambda handle, **kw: calls.append(handle) or str(root)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kagglehub", fake)
    assert resolve_dataset_root(kaggle_input=no_env) == root
    assert calls == [data.KAGGLE_HANDLE]


def test_kagglehub_is_imported_lazily() -> None:
    code = "import sys, edges2shoes_utils.data; print('kagglehub' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------------------------------
# The benchmark runs (its figures are for the notes, not asserted)


def test_bench_data_runs(bench_figures) -> None:
    out, _ = bench_figures["data"]  # --pairs 6 --files 3 --image-size 64
    figures = json.loads(out.read_text())
    assert figures["files"] == 3 and figures["source_size"] == "512x256"
    assert figures["ours"]["pairs_per_s"] > 0 and figures["plain"]["pairs_per_s"] > 0

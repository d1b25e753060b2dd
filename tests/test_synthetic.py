"""Tests for edges2shoes_utils.data.synthetic: the real layout, determinism, edge maps that look like
edges2shoes' (thin dark lines on white, found in the photo), the CLI and its safety checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from edges2shoes_utils.apps import cli
from edges2shoes_utils.data import synthetic
from edges2shoes_utils.data.pairs import PairsDataset
from edges2shoes_utils.util.errors import ConfigError, DataError


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.jpg"))}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    return synthetic.make_synthetic(tmp_path_factory.mktemp("syn") / "set", n=5, size=48, seed=3, n_val=2)


def test_layout_matches_the_real_set(small_set: Path) -> None:
    assert sorted(files(small_set / "train")) == [f"{i}_AB.jpg" for i in range(1, 6)]
    assert sorted(files(small_set / "val")) == ["1_AB.jpg", "2_AB.jpg"]
    for path in (small_set / "train").glob("*.jpg"):
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.mode == "RGB" and image.size == (96, 48)
    assert (small_set / synthetic.MARKER).is_file()
    edges, photo = PairsDataset(small_set, "val", image_size=48)[0]
    assert edges.shape == photo.shape == (3, 48, 48)
    assert edges.mean() > photo.mean()  # edges: a few dark lines on white; photo: a whole shoe


def test_edges_are_on_the_left_photo_on_the_right(small_set: Path) -> None:
    pair = synthetic.make_pair(3, 1, 48, "train")
    with Image.open(small_set / "train" / "1_AB.jpg") as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    for half, expected in ((pixels[:, :48], pair.edges), (pixels[:, 48:], pair.photo)):
        assert np.abs(half - np.asarray(expected, dtype=np.float32)).mean() < 4  # equal up to JPEG loss
    assert np.abs(np.asarray(pair.edges, dtype=np.float32) - np.asarray(pair.photo, dtype=np.float32)).mean() > 10


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a = synthetic.make_synthetic(tmp_path / "a", n=3, size=32, seed=11, n_val=1)
    b = synthetic.make_synthetic(tmp_path / "b", n=3, size=32, seed=11, n_val=1)
    c = synthetic.make_synthetic(tmp_path / "c", n=3, size=32, seed=12, n_val=1)
    assert files(a / "train") == files(b / "train") and files(a / "val") == files(b / "val")
    assert files(a / "train") != files(c / "train")


def test_worker_processes_write_the_same_files(tmp_path: Path) -> None:
    one = synthetic.make_synthetic(tmp_path / "one", n=4, size=32, seed=9, n_val=1, workers=1)
    two = synthetic.make_synthetic(tmp_path / "two", n=4, size=32, seed=9, n_val=1, workers=2)
    assert files(one / "train") == files(two / "train") and files(one / "val") == files(two / "val")


def test_a_larger_set_extends_a_smaller_one(tmp_path: Path) -> None:
    small = synthetic.make_synthetic(tmp_path / "small", n=2, size=32, seed=5, n_val=1)
    large = synthetic.make_synthetic(tmp_path / "large", n=4, size=32, seed=5, n_val=1)
    big = files(large / "train")
    assert all(big[name] == content for name, content in files(small / "train").items())


def test_train_and_val_differ(tmp_path: Path) -> None:
    out = synthetic.make_synthetic(tmp_path / "s", n=2, size=32, seed=0, n_val=2)
    assert files(out / "train") != files(out / "val")


def test_default_val_count() -> None:
    assert [synthetic.default_n_val(n) for n in (1, 9, 64, 500, 50_000)] == [1, 1, 6, 50, 200]


@pytest.mark.parametrize("kind", synthetic.KINDS)
def test_each_kind_is_a_shoe_on_white_with_thin_dark_edges(kind: str) -> None:
    pair = synthetic.make_pair(0, 1, 128, "train", kind)
    assert pair.kind == kind
    photo = np.asarray(pair.photo.convert("L"), dtype=np.int32)
    edges = np.asarray(pair.edges.convert("L"), dtype=np.int32)
    # photo: white background (all four corners), a shoe of reasonable size in the middle
    for corner in (photo[:6, :6], photo[:6, -6:], photo[-6:, :6], photo[-6:, -6:]):
        assert corner.min() >= 245
    assert 0.05 < (photo < 240).mean() < 0.7
    # edges: mostly white, a few per cent dark pixels, in lines at most ~2 pixels wide
    dark = edges < 128
    assert (edges > 240).mean() > 0.8
    assert 0.005 < dark.mean() < 0.12
    core = ndimage.binary_erosion(dark, structure=np.ones((3, 3)))
    assert core.sum() < 0.15 * dark.sum()


@pytest.mark.parametrize("kind", synthetic.KINDS)
def test_edges_lie_where_the_photo_changes(kind: str) -> None:
    pair = synthetic.make_pair(2, 0, 128, "train", kind)
    photo = np.asarray(pair.photo, dtype=np.float32)
    gradient = np.max([np.hypot(ndimage.sobel(photo[..., c], 0), ndimage.sobel(photo[..., c], 1)) for c in range(3)],
                      axis=0)
    changing = ndimage.binary_dilation(gradient > 40, iterations=2)
    dark = np.asarray(pair.edges.convert("L")) < 128
    assert (dark & changing).sum() >= 0.97 * dark.sum()
    # and the outline is found: most of the silhouette boundary has an edge next to it
    shoe = ndimage.binary_fill_holes(np.asarray(pair.photo.convert("L")) < 235)
    outline = shoe & ~ndimage.binary_erosion(shoe)
    near_edge = ndimage.binary_dilation(dark, iterations=2)
    assert (outline & near_edge).sum() >= 0.7 * outline.sum()


def test_edge_detector_works_on_pixels_not_geometry() -> None:
    photo = np.full((64, 64, 3), 255, np.uint8)
    assert (synthetic.extract_edges(photo) == 255).all()  # nothing to find in a blank photo
    photo[20:44, 16:48] = (180, 40, 40)
    edges = synthetic.extract_edges(photo) < 128
    border = np.zeros((64, 64), bool)
    border[20:44, 16:48] = True
    border &= ~ndimage.binary_erosion(border)
    assert edges.sum() > 0.8 * border.sum()
    assert (edges & ~ndimage.binary_dilation(border, iterations=2)).sum() == 0


def test_all_kinds_appear_in_a_set() -> None:
    kinds = {synthetic.make_pair(0, i, 32).kind for i in range(1, 40)}
    assert kinds == set(synthetic.KINDS)


def test_cli_writes_the_same_set_as_the_function(tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli"
    code = cli.main(["make-synthetic", "--out", str(out), "--n", "3", "--n-val", "1", "--size", "32", "--seed", "4",
                     "--preview", str(tmp_path / "preview.png")])
    assert code == 0
    assert "3 train + 1 val" in capsys.readouterr().out
    reference = synthetic.make_synthetic(tmp_path / "ref", n=3, size=32, seed=4, n_val=1)
    assert files(out / "train") == files(reference / "train") and files(out / "val") == files(reference / "val")
    with Image.open(tmp_path / "preview.png") as preview:
        assert preview.width > 2 * 32 and preview.height > 32


def test_refuses_to_overwrite_a_real_dataset(tmp_path: Path, capsys) -> None:
    real = tmp_path / "real"
    (real / "train").mkdir(parents=True)
    (real / "train" / "1_AB.jpg").write_bytes(b"precious")
    with pytest.raises(DataError, match="not made by make-synthetic"):
        synthetic.make_synthetic(real, n=1, size=32)
    assert cli.main(["make-synthetic", "--out", str(real), "--n", "1", "--size", "32"]) == 2
    assert "not made by make-synthetic" in capsys.readouterr().err
    assert (real / "train" / "1_AB.jpg").read_bytes() == b"precious"


def test_rerun_replaces_its_own_output(tmp_path: Path) -> None:
    out = synthetic.make_synthetic(tmp_path / "s", n=4, size=32, seed=0, n_val=2)
    synthetic.make_synthetic(out, n=2, size=32, seed=0, n_val=1)
    assert len(files(out / "train")) == 2 and len(files(out / "val")) == 1
    assert not [p for p in out.iterdir() if p.name.startswith(".synthetic-")]  # no staging left behind


@pytest.mark.parametrize("n,n_val,size,workers", [(0, 1, 64, 1), (2, 0, 64, 1), (2, 1, 8, 1), (2, 1, 4096, 1),
                                                   (2, 1, 64, 0)])
def test_bad_arguments(tmp_path: Path, n: int, n_val: int, size: int, workers: int) -> None:
    with pytest.raises(ConfigError):
        synthetic.make_synthetic(tmp_path / "x", n=n, size=size, n_val=n_val, workers=workers)
    assert not (tmp_path / "x").exists()


def test_unknown_kind() -> None:
    with pytest.raises(ConfigError, match="sandal"):
        synthetic.make_pair(0, 0, 32, kind="clog")

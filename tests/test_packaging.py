"""Packaging: the sdist and wheel hold the whole package, and the Kaggle notebook installs the newest
attached wheel (`apps/notebook_install.py`). tools/check_wheel.sh, run by CI, installs the wheel in a
fresh environment and runs it from outside the checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from edges2shoes_utils.apps.notebook_install import find_wheel, pip_install_args

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "edges2shoes_utils"
STAGES = ["util", "nets", "data", "weights", "training", "inference", "evaluation", "bench", "apps"]
REPO_URL = "git+https://github.com/OWNER/edges2shoes"


# --------------------------------------------------------------------------------------------------
# The sdist and the wheel.


def package_files() -> set[str]:
    """What a distribution must carry: every module of the package and every bundled asset."""
    files = {p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    files |= {p for p in (PACKAGE / "assets").rglob("*") if p.is_file()}
    return {p.relative_to(ROOT).as_posix() for p in files}


@pytest.fixture(scope="module")
def distributions(tmp_path_factory) -> dict[str, Path]:
    """An sdist, and the wheel built from it, made from a copy of the checkout's build inputs (so the
    build writes nothing into the checkout)."""
    work = tmp_path_factory.mktemp("build")
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(PACKAGE, source / PACKAGE.name, ignore=shutil.ignore_patterns("__pycache__"))
    dist = work / "dist"
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(source)],
                   check=True, capture_output=True, text=True)
    (sdist,) = dist.glob("edges2shoes-*.tar.gz")
    (wheel,) = dist.glob("edges2shoes-*-py3-none-any.whl")
    return {"sdist": sdist, "wheel": wheel}


def test_wheel_holds_every_module_asset_and_the_licence(distributions):
    with zipfile.ZipFile(distributions["wheel"]) as wheel:
        names = set(wheel.namelist())
        (dist_info,) = {name.split("/")[0] for name in names if name.split("/")[0].endswith(".dist-info")}
        metadata = wheel.read(f"{dist_info}/METADATA").decode()
        entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode()
    missing = package_files() - names
    assert not missing, f"not in the wheel: {sorted(missing)}"
    for stage in STAGES:
        assert f"edges2shoes_utils/{stage}/__init__.py" in names, stage
    sketches = [n for n in names if n.startswith("edges2shoes_utils/assets/sketches/") and n.endswith(".png")]
    assert len(sketches) >= 3
    assert f"{dist_info}/licenses/LICENSE" in names
    assert "License-Expression: MIT" in metadata.splitlines()
    assert "edges2shoes = edges2shoes_utils.apps.cli:main" in entry_points
    assert not [n for n in names if n.startswith("tests/") or "__pycache__" in n]


def test_sdist_holds_the_package_and_the_licence_but_not_the_tests(distributions):
    with tarfile.open(distributions["sdist"]) as sdist:
        top = sdist.getnames()[0].split("/")[0]
        names = {name.removeprefix(f"{top}/") for name in sdist.getnames()}
    missing = package_files() - names
    assert not missing, f"not in the sdist: {sorted(missing)}"
    assert {"LICENSE", "README.md", "pyproject.toml"} <= names
    assert not [n for n in names if n.startswith("tests")]


# --------------------------------------------------------------------------------------------------
# Finding the wheel attached to a Kaggle notebook.


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def kaggle_input(root: Path) -> dict[str, Path]:
    """A folder laid out like /kaggle/input: the dataset, unrelated files, two wheel datasets (one
    nested two levels deep), and names that look like a newer wheel but are not one."""
    touch(root / "edges2shoes-dataset" / "train" / "1_AB.jpg")
    touch(root / "edges2shoes-dataset" / "val" / "1_AB.jpg")
    touch(root / "other-dataset" / "notes.csv")
    old = touch(root / "edges2shoes-wheel" / "edges2shoes-0.9.0-py3-none-any.whl")
    new = touch(root / "datasets" / "someone" / "edges2shoes-wheel-2" / "edges2shoes-0.10.0-py3-none-any.whl")
    touch(root / "edges2shoes-wheel" / "edges2shoes-0.11.0.tar.gz")  # an sdist, not a wheel
    touch(root / "edges2shoes-wheel" / "edges2shoes-0.12.0-py3-none-any.whl.txt")
    touch(root / "edges2shoes-wheel" / "edges2shoes-latest.whl")  # not a valid wheel name
    (root / "edges2shoes-wheel" / "edges2shoes-0.13.0-py3-none-any.whl").mkdir()  # a folder
    touch(root / "edges2shoes-wheel" / "torch-2.14.1-cp311-cp311-manylinux_2_28_x86_64.whl")
    return {"old": old, "new": new}


def test_find_wheel_takes_the_newest_version_anywhere_under_the_input_folder(tmp_path):
    wheels = kaggle_input(tmp_path / "input")
    assert find_wheel(tmp_path / "input") == wheels["new"]  # 0.10.0 > 0.9.0: versions, not strings
    wheels["new"].unlink()
    assert find_wheel(tmp_path / "input") == wheels["old"]


def test_find_wheel_finds_nothing_without_a_wheel_or_without_the_folder(tmp_path):
    touch(tmp_path / "input" / "edges2shoes-dataset" / "train" / "1_AB.jpg")
    touch(tmp_path / "input" / "edges2shoes-wheel" / "edges2shoes-0.1.0.tar.gz")
    assert find_wheel(tmp_path / "input") is None
    assert find_wheel(tmp_path / "no-such-folder") is None


def test_find_wheel_breaks_a_version_tie_by_path(tmp_path):
    second = touch(tmp_path / "b" / "edges2shoes-0.1.0-py3-none-any.whl")
    first = touch(tmp_path / "a" / "x" / "edges2shoes-0.1.0-py3-none-any.whl")
    assert find_wheel(tmp_path) == first != second


def test_pip_install_args_prefer_the_attached_wheel_offline(tmp_path):
    wheels = kaggle_input(tmp_path / "input")
    new = wheels["new"]
    assert pip_install_args(REPO_URL, tmp_path / "input") == ["--no-index", "--find-links", str(new.parent), str(new)]
    assert pip_install_args(REPO_URL, tmp_path / "empty") == [REPO_URL]


def run_install_cell(kaggle_root: Path) -> tuple[str, str]:
    """Run the training notebook's install cell with /kaggle/input pointing at `kaggle_root`; return
    the `%pip` line it would run and the cell's REPO_URL."""
    notebook = nbformat.read(ROOT / "notebooks" / "train_kaggle.ipynb", as_version=4)
    source = next(c.source for c in notebook.cells if c.cell_type == "code")
    default = 'Path("/kaggle/input")'
    assert source.count(default) == 1
    python = TransformerManager().transform_cell(source.replace(default, f"Path({str(kaggle_root)!r})"))
    magics: list[tuple[str, str]] = []

    class FakeIPython:
        def run_line_magic(self, name: str, line: str) -> None:
            magics.append((name, line))

    namespace = {"get_ipython": FakeIPython}
    exec(compile(python, "install cell", "exec"), namespace)
    ((name, line),) = magics
    assert name == "pip"
    return line.format(**namespace), namespace["REPO_URL"]


def test_the_notebook_install_cell_installs_the_newest_attached_wheel_else_the_repository(tmp_path):
    wheels = kaggle_input(tmp_path / "input")
    new = wheels["new"]
    line, _ = run_install_cell(tmp_path / "input")
    assert line == f"install --quiet --no-index --find-links {new.parent} {new}"
    line, repo_url = run_install_cell(tmp_path / "empty")
    assert line == f"install --quiet {repo_url}" and repo_url.startswith("git+https://")

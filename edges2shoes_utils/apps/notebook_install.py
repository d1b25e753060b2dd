"""How a notebook installs this package: from an `edges2shoes-*.whl` attached under /kaggle/input when
there is one (a Kaggle notebook with the internet off installs packages that way), else from the
repository.

The training notebook's install cell runs a copy of this source, because the package is not installed
yet when it runs; notebooks/build_train_kaggle.py writes that copy, so this file is the one to edit.
Hence it imports nothing from the package and nothing outside the standard library but `packaging`
(pip and matplotlib need it, so every notebook image has it), and has no `from __future__` import,
which would be a syntax error in the middle of a cell.
"""

from pathlib import Path

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

KAGGLE_INPUT = Path("/kaggle/input")  # where Kaggle mounts the datasets attached to a notebook
DISTRIBUTION = "edges2shoes"


def find_wheel(search_root: Path = KAGGLE_INPUT) -> Path | None:
    """The newest edges2shoes wheel anywhere under `search_root` (datasets nest folders), or None.

    Equal versions in two places: the first path in sorted order wins, so the choice never depends on
    the order the file system lists folders in.
    """
    root = Path(search_root)
    if not root.is_dir():
        return None
    versions = {}
    for path in sorted(root.rglob(f"{DISTRIBUTION}-*.whl")):
        try:
            name, version, _build, _tags = parse_wheel_filename(path.name)
        except InvalidWheelFilename:
            continue
        if name == DISTRIBUTION and path.is_file():
            versions[path] = version
    return max(versions, key=versions.__getitem__, default=None)


def pip_install_args(repo_url: str, search_root: Path = KAGGLE_INPUT) -> list[str]:
    """The arguments for `pip install`: the newest attached wheel, offline, with its folder searched
    for dependency wheels attached beside it; without one, `repo_url`."""
    wheel = find_wheel(search_root)
    if wheel is None:
        return [repo_url]
    return ["--no-index", "--find-links", str(wheel.parent), str(wheel)]

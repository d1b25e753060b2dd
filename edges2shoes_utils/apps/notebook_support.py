"""Helpers the notebooks share: where am I running, where do outputs go, which dataset and run.

The notebooks are thin front doors onto the package: every decision a
notebook makes that could be wrong lives here, where it is tested, instead of in a cell.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal, Mapping, Sequence

import torch

from ..weights import export_generator, load_generator
from ..data import PairsDataset, numeric_key, resolve_dataset_root
from ..training import CHECKPOINT_NAME, TrainConfig
from ..training.device import pick_device
from ..util.errors import CheckpointError, ConfigError, DataError
from ..util.images import image_grid

OUTPUT_ENV = "EDGES2SHOES_OUTPUT"  # overrides the default output folder (tests point it at a tmp dir)
KAGGLE_WORKING = Path("/kaggle/working")

Environment = Literal["kaggle", "colab", "local"]

# --------------------------------------------------------------------------------------------------
# Where are we?


def detect_environment(
    environ: Mapping[str, str] | None = None,
    modules: Iterable[str] | None = None,
    kaggle_working: Path = KAGGLE_WORKING,
) -> Environment:
    """'kaggle', 'colab' or 'local'.

    Kaggle sets `KAGGLE_KERNEL_RUN_TYPE` in its notebooks and mounts `/kaggle/working`; Colab
    exposes the `google.colab` module and sets `COLAB_RELEASE_TAG`. The arguments exist so tests
    can describe each machine without being on it.
    """
    environ = os.environ if environ is None else environ
    modules = set(sys.modules if modules is None else modules)
    if "KAGGLE_KERNEL_RUN_TYPE" in environ or "KAGGLE_URL_BASE" in environ or kaggle_working.is_dir():
        return "kaggle"
    if "google.colab" in modules or "COLAB_RELEASE_TAG" in environ or "COLAB_GPU" in environ:
        return "colab"
    return "local"


def default_output_dir(
    environment: Environment | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    """Where a notebook leaves its runs: `/kaggle/working` on Kaggle (the only folder Kaggle keeps
    as the notebook's output), `./runs` elsewhere; `EDGES2SHOES_OUTPUT` overrides both."""
    environ = os.environ if environ is None else environ
    if environ.get(OUTPUT_ENV):
        return Path(environ[OUTPUT_ENV])
    environment = environment or detect_environment(environ)
    return KAGGLE_WORKING if environment == "kaggle" else Path("runs")


# --------------------------------------------------------------------------------------------------
# Accelerator advice.


@dataclass(frozen=True)
class AcceleratorInfo:
    device: str  # "cuda" or "cpu"
    names: tuple[str, ...]  # one entry per visible GPU
    capabilities: tuple[tuple[int, int], ...]

    @property
    def count(self) -> int:
        return len(self.names)

    @property
    def is_pascal(self) -> bool:
        """Compute capability 6.x (Kaggle's P100): the default PyTorch build has no kernels for it."""
        return any(major == 6 for major, _ in self.capabilities)


def accelerator_info() -> AcceleratorInfo:
    """What torch can see, without running a single CUDA kernel (safe on a P100)."""
    if not torch.cuda.is_available():
        return AcceleratorInfo("cpu", (), ())
    count = torch.cuda.device_count()
    names = tuple(torch.cuda.get_device_name(i) for i in range(count))
    caps = tuple(tuple(torch.cuda.get_device_capability(i)) for i in range(count))
    return AcceleratorInfo("cuda", names, caps)  # type: ignore[arg-type]


def accelerator_advice(info: AcceleratorInfo, environment: Environment = "local") -> str:
    """One paragraph telling the user what their accelerator means for this notebook."""
    if info.is_pascal:
        return (
            f"GPU: {', '.join(info.names)} (compute capability 6.x). The PyTorch build in Kaggle's "
            "default image has no kernels for it, so training would fail on the first CUDA call. "
            "Switch the accelerator to 'GPU T4 x2' (Settings -> Accelerator) and run again."
        )
    if info.device == "cpu":
        where = " Turn on a GPU: Settings -> Accelerator -> 'GPU T4 x2'." if environment == "kaggle" else ""
        return "No GPU visible: training runs on the CPU, which only suits tiny runs and the demo." + where
    text = f"{info.count} GPU(s): {', '.join(info.names)}."
    if info.count > 1:
        text += (
            " This notebook's training cell uses one of them; to use all of them run the torchrun "
            "cell in the multi-GPU section instead."
        )
    return text


# --------------------------------------------------------------------------------------------------
# The dataset and the run settings.


def find_dataset(spec: str | os.PathLike | None = None, *, downloader=None) -> Path:
    """The dataset root for a notebook's `DATASET` parameter.

    None: discover it (`data.resolve_dataset_root`: $EDGES2SHOES_DATA, an attached Kaggle input,
    then a kagglehub download). An existing folder: that folder. Otherwise a Kaggle handle such as
    "balraj98/edges2shoes-dataset/versions/1": an attached copy if there is one, else downloaded.
    """
    if spec is None or str(spec).strip() == "":
        return resolve_dataset_root(downloader=downloader)
    text = str(spec).strip()
    path = Path(text).expanduser()
    if path.exists() or not re.fullmatch(r"[\w.-]+/[\w.-]+(/versions/\d+)?", text):
        return resolve_dataset_root(path)
    try:
        return resolve_dataset_root(handle=text, downloader=downloader)
    except DataError as error:
        raise DataError(f"DATASET = {text!r} is not a folder here, and as a Kaggle handle: {error}") from None


def train_config(params: Mapping[str, object]):
    """The TrainConfig for `params`; if the run folder already holds a checkpoint (a Kaggle session
    that timed out, a re-run), the saved run is continued instead, with `epochs` taken from
    `params` so a finished run can be extended. Returns (config, resumed)."""
    out = Path(str(params["out"]))
    if (out / CHECKPOINT_NAME).is_file():
        return TrainConfig.from_run(out, epochs=int(params["epochs"])), True  # type: ignore[arg-type]
    return TrainConfig(**params), False  # type: ignore[arg-type]


def export_final_generator(run_dir: str | Path) -> Path:
    """Export the last epoch's generator of a run as `generator.safetensors` beside it: the file to
    download and use with `Sketch2Shoe.from_weights` (no pickles, config included)."""
    run_dir = Path(run_dir)
    epochs = newest(run_dir.glob("generator_*.pt"), 1)
    if not epochs:
        raise CheckpointError(f"{run_dir}: no generator_<epoch>.pt to export; has an epoch finished?")
    generator = load_generator(epochs[0])
    return export_generator(generator, run_dir / "generator.safetensors", metadata={"source": epochs[0].name})


# --------------------------------------------------------------------------------------------------
# Multi-GPU: torchrun.


def best_device() -> torch.device:
    """The GPU when there is one, else the CPU (what the evaluation notebook runs on)."""
    return pick_device("auto")


def gpu_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def launch_mode(gpus: int | str = "auto", available: int | None = None) -> Literal["single", "torchrun"]:
    """How the notebook trains: "torchrun" (one DDP process per GPU, launched by the torchrun cell)
    when `gpus` is "auto" and more than one GPU is visible, or `gpus` is a number above 1;
    otherwise "single" (in the notebook's own process)."""
    available = gpu_count() if available is None else available
    if gpus == "auto":
        return "torchrun" if available > 1 else "single"
    wanted = int(gpus)
    if wanted > 1 and wanted > available:
        raise ConfigError(f"GPUS = {wanted}, but only {available} GPU(s) are visible")
    return "torchrun" if wanted > 1 else "single"


def processes_for(gpus: int | str = "auto", available: int | None = None) -> int:
    available = gpu_count() if available is None else available
    return available if gpus == "auto" else int(gpus)


def changed_fields(config) -> dict[str, object]:
    """The fields of a TrainConfig that differ from the defaults (what a command line must say)."""
    defaults = TrainConfig()
    return {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if getattr(config, f.name) != getattr(defaults, f.name)
    }


def torchrun_command(
    train_args,
    nproc_per_node: int = 2,
    python_module: str = "edges2shoes_utils",
) -> str:
    """A shell command that trains with DistributedDataParallel on `nproc_per_node` GPUs of this
    machine, e.g. Kaggle's T4 x2.

    `train_args` is a TrainConfig (only the fields that differ from the defaults are written) or a
    mapping of train-command flags (without the dashes, underscores allowed). Booleans become
    `--flag` / `--no-flag`; None is left out. Values are shell-quoted.
    """
    if not isinstance(train_args, Mapping):
        train_args = changed_fields(train_args)
    parts: list[str] = ["torchrun", "--standalone", f"--nproc_per_node={int(nproc_per_node)}"]
    parts += ["-m", python_module, "train"]
    parts += train_flags(train_args)
    return " ".join(shlex.quote(p) for p in parts)


def train_flags(train_args: Mapping[str, object]) -> list[str]:
    """`{"batch_size": 8, "data": "/x", "compile": True}` -> `["--batch-size", "8", "--data", "/x", "--compile"]`."""
    flags: list[str] = []
    for key, value in train_args.items():
        if value is None:
            continue
        flag = key.replace("_", "-")
        if value is True:
            flags.append("--" + flag)
        elif value is False:
            flags.append("--no-" + flag)
        elif isinstance(value, (list, tuple)):
            flags += ["--" + flag, *map(str, value)]
        else:
            flags += ["--" + flag, str(value)]
    return flags


# --------------------------------------------------------------------------------------------------
# Showing results inline.


def show_images(paths: Sequence[str | Path], width: int | None = None) -> None:
    """Display PNG/JPEG files inline in a notebook, each under its file name (returns nothing, so a
    cell ending with this call shows no extra text)."""
    shown = [Path(p) for p in paths]
    try:
        from IPython.display import Image as IPyImage  # lazy: optional, present only in notebooks
        from IPython.display import display  # lazy: optional, present only in notebooks
    except ImportError:  # pragma: no cover - IPython ships with every notebook environment
        for p in shown:
            print(p)
        return
    if not shown:
        print("(no pictures yet)")
    for p in shown:
        print(p.name)
        display(IPyImage(filename=str(p), width=width))


def pairs_picture(root: str | Path, n: int = 4, image_size: int = 256, cell: int = 192):
    """The first `n` pairs of a dataset (val split if there is one) as a grid Edges | Photo, and the
    dataset they came from."""
    try:
        dataset = PairsDataset(root, split="val", image_size=image_size, jitter=False)
    except DataError:
        dataset = PairsDataset(root, split="train", image_size=image_size, jitter=False)
    pairs = [dataset[i] for i in range(min(n, len(dataset)))]
    grid = image_grid({"Edges (input)": [e for e, _ in pairs], "Photo (target)": [p for _, p in pairs]}, cell=cell)
    return grid, dataset


def show_pairs(root: str | Path, n: int = 4, image_size: int = 256, cell: int = 192) -> None:
    """Display the first `n` pairs of a dataset inline (see `pairs_picture`)."""
    from IPython.display import display  # lazy: optional, present only in notebooks

    grid, dataset = pairs_picture(root, n, image_size, cell)
    print(f"{len(dataset)} pairs in {dataset.folder}; the first {min(n, len(dataset))}:")
    display(grid)


def newest(paths: Iterable[Path], count: int) -> list[Path]:
    """The last `count` of `paths` in natural order (epoch 10 after epoch 9)."""
    ordered = sorted(paths, key=lambda p: numeric_key(p.name))
    return ordered[-count:] if count > 0 else []

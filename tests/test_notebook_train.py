"""The Kaggle training notebook and the helpers behind it (`notebook_support`)."""

from __future__ import annotations

import argparse
import json
import re
import shlex
from pathlib import Path

import nbformat
import pytest

from edges2shoes_utils.apps import notebook_support as nbs
from edges2shoes_utils.apps.notebook_support import AcceleratorInfo
from edges2shoes_utils.data.synthetic import make_synthetic
from edges2shoes_utils.training import LOSS_NAMES
from edges2shoes_utils.util.errors import ConfigError
from notebook_runner import assert_built_by, assert_stripped, cells_tagged, output_mimetypes, output_text, run_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "train_kaggle.ipynb"
EPOCHS = 2  # small enough for a CPU, big enough that every cell does real work (2 epochs, 12 steps)
TINY = {"EPOCHS": EPOCHS, "BATCH_SIZE": 4, "IMAGE_SIZE": 64, "NGF": 8, "NDF": 8, "RUN_NAME": "run",
        "OPTIONS": {"device": "cpu", "num_workers": 0}}


# --------------------------------------------------------------------------------------------------
# The committed notebook.


def test_notebook_is_committed_without_outputs():
    assert_stripped(NOTEBOOK)


def test_notebook_is_what_its_generator_writes():
    assert_built_by(NOTEBOOK, NOTEBOOK.parent / "build_train_kaggle.py")


def test_notebook_structure():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    install = code[0]
    assert "skip-execution" in install.metadata.get("tags", [])
    assert "REPO_URL" in install.source and "pip install" in install.source
    (parameters,) = cells_tagged(nb, "parameters")
    assert code.index(parameters) == 1
    for name in ("EPOCHS", "BATCH_SIZE", "LAMBDA_L1", "IMAGE_SIZE", "DATASET", "OUTPUT_DIR", "OPTIONS", *TINY):
        assert f"{name} =" in parameters.source or f"{name}," in parameters.source, name
    torchrun_cells = [c for c in code if "!{TORCHRUN}" in c.source]
    assert len(torchrun_cells) == 1
    assert "skip-execution" in torchrun_cells[0].metadata.get("tags", [])
    text = "\n".join(c.source for c in nb.cells)
    assert "T4 x2" in text and "P100" in text
    # the method by hand on the public core, before `train`: the same step function
    by_hand = next(i for i, c in enumerate(code) if "train_step(nets" in c.source)
    assert by_hand < next(i for i, c in enumerate(code) if "train(config)" in c.source)
    assert "from edges2shoes_utils.training import LOSS_NAMES, build_networks, train_step" in code[by_hand - 1].source


def test_no_cell_a_user_runs_mentions_ci_or_smoke_mode():
    for path in sorted(NOTEBOOK.parent.glob("*.ipynb")):
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            assert not re.search(r"\bCI\b|smoke", cell.source, re.IGNORECASE), f"{path.name}: cell {index}"


@pytest.mark.slow
def test_notebook_runs_end_to_end_with_tiny_settings(tmp_path):
    data = make_synthetic(tmp_path / "data", n=24, size=64, seed=0, n_val=4)
    nb = run_notebook(NOTEBOOK, {**TINY, "DATASET": str(data), "OUTPUT_DIR": str(tmp_path)}, timeout=300)
    run = tmp_path / "run"
    for name in ["last.pt", "config.json", "losses.csv", "losses.png", "generator.safetensors",
                 *[f"generator_{e}.pt" for e in range(EPOCHS)], *[f"samples/epoch_{e}.png" for e in range(EPOCHS)]]:
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["image_size"] == 64 and config["ngf"] == 8 and config["data"] == str(data)
    # Inline pictures: the pairs, the loss curve and one sample grid per epoch.
    assert output_mimetypes(nb).count("image/png") >= 2 + EPOCHS
    text = output_text(nb)
    assert re.search(r"generator G \(U-Net, 6 levels\): [\d,]+ parameters", text)
    assert re.search(r"discriminator D \(PatchGAN\): [\d,]+ parameters", text)
    for name in LOSS_NAMES:  # the step by hand printed its four losses
        assert re.search(rf"{name}: \d+\.\d{{4}}", text), name
    assert "torchrun --standalone --nproc_per_node=2 -m edges2shoes_utils train" in text
    assert f"epoch {EPOCHS}/{EPOCHS}" in text  # the per-epoch summary lines of the training loop

    from edges2shoes_utils.weights import load_generator

    generator = load_generator(run / "generator.safetensors")
    assert generator.config.ngf == 8


# --------------------------------------------------------------------------------------------------
# notebook_support.


@pytest.mark.parametrize(
    "environ, modules, expected",
    [
        ({"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}, [], "kaggle"),
        ({"COLAB_RELEASE_TAG": "release-x"}, [], "colab"),
        ({}, ["google.colab"], "colab"),
        ({}, [], "local"),
    ],
)
def test_detect_environment(tmp_path, environ, modules, expected):
    absent = tmp_path / "no-kaggle-here"
    assert nbs.detect_environment(environ, modules, kaggle_working=absent) == expected


def test_detect_environment_by_the_kaggle_working_folder(tmp_path):
    assert nbs.detect_environment({}, [], kaggle_working=tmp_path) == "kaggle"


@pytest.mark.parametrize(
    "environment, environ, expected",
    [
        ("kaggle", {}, Path("/kaggle/working")),
        ("colab", {}, Path("runs")),
        ("local", {}, Path("runs")),
        ("kaggle", {nbs.OUTPUT_ENV: "/somewhere"}, Path("/somewhere")),
    ],
)
def test_default_output_dir(environment, environ, expected):
    assert nbs.default_output_dir(environment, environ) == expected


@pytest.mark.parametrize(
    "gpus, available, expected",
    [("auto", 0, "single"), ("auto", 1, "single"), ("auto", 2, "torchrun"), (1, 2, "single"), (2, 2, "torchrun")],
)
def test_launch_mode(gpus, available, expected):
    assert nbs.launch_mode(gpus, available) == expected


def test_launch_mode_refuses_more_gpus_than_visible():
    with pytest.raises(ConfigError, match="only 1 GPU"):
        nbs.launch_mode(2, available=1)


def test_accelerator_advice():
    p100 = AcceleratorInfo("cuda", ("Tesla P100-PCIE-16GB",), ((6, 0),))
    assert p100.is_pascal and "T4 x2" in nbs.accelerator_advice(p100, "kaggle")
    t4s = AcceleratorInfo("cuda", ("Tesla T4", "Tesla T4"), ((7, 5), (7, 5)))
    assert not t4s.is_pascal and "torchrun" in nbs.accelerator_advice(t4s, "kaggle")
    cpu = AcceleratorInfo("cpu", (), ())
    assert "No GPU" in nbs.accelerator_advice(cpu, "kaggle") and "Accelerator" in nbs.accelerator_advice(cpu, "kaggle")


def _parse_train_command(command: str):
    """Parse a torchrun command's training arguments with the real train CLI."""
    from edges2shoes_utils.training.command_line import config_from_args, configure_cli

    words = shlex.split(command)
    assert words[:3] == ["torchrun", "--standalone", "--nproc_per_node=2"]
    assert words[3:6] == ["-m", "edges2shoes_utils", "train"]
    parser = argparse.ArgumentParser()
    configure_cli(parser)
    return config_from_args(parser.parse_args(words[6:]))


def test_torchrun_command_round_trips_through_the_train_cli():
    from edges2shoes_utils.training import TrainConfig

    config = TrainConfig(data="/kaggle/input/my data/edges2shoes", out="/kaggle/working/run 1", epochs=10,
                         batch_size=16, lambda_l1=100.0, image_size=128, ngf=32, sync_bn=True,
                         channels_last=False, betas=(0.5, 0.99))
    command = nbs.torchrun_command(config, nproc_per_node=2)
    assert _parse_train_command(command) == config


def test_torchrun_command_from_flags():
    command = nbs.torchrun_command({"data": "/d", "epochs": 3, "compile": True, "progress": False, "levels": None})
    assert command.endswith("train --data /d --epochs 3 --compile --no-progress")


def test_train_config_continues_a_saved_run(tmp_path):
    from edges2shoes_utils.training import TrainConfig

    run = tmp_path / "run"
    run.mkdir()
    saved = TrainConfig(data="/d", out=str(run), epochs=3, ngf=8, image_size=64)
    (run / "config.json").write_text(json.dumps(saved.to_dict()))
    params = {"epochs": 3, "batch_size": 4, "data": "/d", "out": str(run), "ngf": 8, "image_size": 64}
    config, resumed = nbs.train_config(params)
    assert not resumed and config.resume is None  # no checkpoint yet: a fresh start
    (run / "last.pt").write_bytes(b"")
    config, resumed = nbs.train_config({**params, "epochs": 5})
    assert resumed and config.resume == str(run) and config.epochs == 5 and config.ngf == 8


def test_find_dataset_by_folder_and_by_handle(tmp_path, monkeypatch):
    from edges2shoes_utils.data.synthetic import make_synthetic

    monkeypatch.delenv("EDGES2SHOES_DATA", raising=False)
    root = make_synthetic(tmp_path / "set", n=2, size=32, n_val=1)
    assert nbs.find_dataset(str(root)) == root
    asked = []

    def downloader(handle):
        asked.append(handle)
        return root

    found = nbs.find_dataset("someone/some-shoes/versions/3", downloader=downloader)
    assert found == root and asked == ["someone/some-shoes/versions/3"]


def test_newest_orders_epochs_naturally(tmp_path):
    names = [f"epoch_{e}.png" for e in (0, 1, 2, 9, 10, 11)]
    assert [p.name for p in nbs.newest([tmp_path / n for n in reversed(names)], 3)] == names[-3:]
    assert nbs.newest([tmp_path / "a"], 0) == []


def test_export_final_generator_needs_an_epoch(tmp_path):
    from edges2shoes_utils.util.errors import CheckpointError

    with pytest.raises(CheckpointError, match="generator_<epoch>.pt"):
        nbs.export_final_generator(tmp_path)


def test_find_dataset_names_the_parameter_when_nothing_matches(tmp_path, monkeypatch):
    from edges2shoes_utils.util.errors import DataError

    monkeypatch.delenv("EDGES2SHOES_DATA", raising=False)

    def offline(handle):
        raise ConnectionError("no network")

    with pytest.raises(DataError, match="DATASET = 'data/shoes' is not a folder here"):
        nbs.find_dataset("data/shoes", downloader=offline)
    with pytest.raises(DataError, match="missing"):
        nbs.find_dataset(str(tmp_path / "missing"), downloader=offline)

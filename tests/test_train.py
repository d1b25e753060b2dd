"""The training loop: config and command line, the run folder, exact resume, Ctrl-C, NaN, kill -9.

Tiny networks (ngf = ndf = 8, 6 levels) on 64x64 synthetic pairs, one CPU thread, no loader workers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from edges2shoes_utils.weights import formats
from edges2shoes_utils.training.device import check_cuda_supported, resolve_precision
from edges2shoes_utils.training.distributed import DistInfo, ResumableSampler
from edges2shoes_utils.util.errors import ConfigError, DataError
from edges2shoes_utils.nets import GeneratorConfig, UNetGenerator
from edges2shoes_utils.training import TrainConfig, TrainingDiverged, lr_factor, train
from edges2shoes_utils.training.command_line import config_from_args, configure_cli

pytestmark = pytest.mark.usefixtures("one_thread")  # bitwise-reproducible CPU maths (conftest.py)

STEPS_PER_EPOCH = 6  # 12 train pairs, batch 2


def tiny(dataset: Path, out: Path, **overrides) -> TrainConfig:
    settings = dict(
        data=str(dataset), out=str(out), epochs=2, batch_size=2, image_size=64, ngf=8, ndf=8, levels=6,
        num_workers=0, log_interval=2, checkpoint_every=4, progress=False, sample_count=2,
    )
    return TrainConfig(**{**settings, **overrides})


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"differ: {different[:5]}"


def optimizer_tensors(state: dict) -> list[torch.Tensor]:
    return [t for per_param in state["state"].values() for t in per_param.values() if torch.is_tensor(t)]


@pytest.fixture(scope="module")
def straight(one_thread, dataset, tmp_path_factory):
    """Two epochs without stopping; also records the generator before the first step."""
    initial = {}

    def capture(ctx):
        if ctx.step == 0:
            initial.update(snapshot(ctx.networks.generator))

    result = train(tiny(dataset, tmp_path_factory.mktemp("straight")), before_step=[capture])
    return result, initial


# --------------------------------------------------------------------------------------------------
# Config, command line, schedule, device checks.


def test_every_config_field_is_a_flag_with_help():
    parser = argparse.ArgumentParser()
    configure_cli(parser)
    flags = {s for action in parser._actions for s in action.option_strings}
    for spec in dataclasses.fields(TrainConfig):
        assert "--" + spec.name.replace("_", "-") in flags
        assert spec.metadata.get("help"), spec.name
    assert config_from_args(parser.parse_args([])) == TrainConfig()


def test_flags_reach_the_config():
    parser = argparse.ArgumentParser()
    configure_cli(parser)
    args = parser.parse_args(
        ["--data", "D", "--out", "R", "--epochs", "3", "--batch-size", "8", "--image-size", "128",
         "--lambda-l1", "100", "--betas", "0.9", "0.99", "--no-channels-last", "--levels", "7",
         "--precision", "bf16", "--d-loss-halve", "--gan-mode", "lsgan", "--ngf", "16"]
    )
    config = config_from_args(args)
    assert (config.data, config.out, config.epochs, config.batch_size, config.image_size) == ("D", "R", 3, 8, 128)
    assert (config.lambda_l1, config.betas, config.channels_last, config.levels) == (100.0, (0.9, 0.99), False, 7)
    assert (config.precision, config.d_loss_halve, config.gan_mode, config.ngf) == ("bf16", True, "lsgan", 16)
    with pytest.raises(SystemExit):
        parser.parse_args(["--precision", "fp8"])


@pytest.mark.parametrize("size, levels", [(256, 8), (128, 7), (64, 6), (192, 6)])
def test_levels_follow_the_image_size(size, levels):
    assert TrainConfig(image_size=size).resolved_levels() == levels
    assert TrainConfig(image_size=size, levels=5).resolved_levels() == 5


@pytest.mark.parametrize(
    "changes, message",
    [({"image_size": 100, "levels": 6}, "multiple"), ({"image_size": 100}, "too shallow"), ({"batch_size": 0}, "batch_size"),
     ({"epochs": 2, "decay_epochs": 3}, "decay_epochs"), ({"lr": 0.0}, "lr")],
)
def test_bad_settings_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**changes).validate()


def test_linear_decay_over_the_last_epochs():
    assert [lr_factor(e, 4, 0) for e in range(4)] == [1, 1, 1, 1]
    assert [lr_factor(e, 4, 2) for e in range(4)] == pytest.approx([1, 1, 2 / 3, 1 / 3])
    assert [lr_factor(e, 3, 3) for e in range(3)] == pytest.approx([3 / 4, 2 / 4, 1 / 4])


@pytest.mark.parametrize(
    "capability, archs, refused",
    [((6, 0), ["sm_75", "sm_80"], True), ((6, 1), ["sm_75"], True), ((6, 0), ["sm_60", "sm_75"], False),
     ((7, 5), ["sm_75"], False), ((8, 6), ["sm_80", "sm_86"], False)],
)
def test_old_gpu_is_refused_with_advice(capability, archs, refused):
    def check():
        check_cuda_supported(
            torch.device("cuda", 0), capability=lambda d: capability, arch_list=lambda: archs,
            name=lambda d: "Tesla P100-PCIE-16GB",
        )

    if refused:
        with pytest.raises(ConfigError, match="T4"):
            check()
    else:
        check()


@pytest.mark.parametrize(
    "name, device, cpu_auto, capability, expected",
    [("auto", "cpu", "fp32", None, ("fp32", False)), ("auto", "cpu", "bf16", None, ("bf16", False)),
     ("bf16", "cpu", "fp32", None, ("bf16", False)), ("fp32", "cpu", "bf16", None, ("fp32", False)),
     ("fp32", "cuda", "fp32", (8, 0), ("fp32", False)), ("auto", "cuda", "fp32", (7, 5), ("fp16", True)),
     ("auto", "cuda", "bf16", (8, 0), ("bf16", False)), ("fp16", "cuda", "fp32", (9, 0), ("fp16", True)),
     ("bf16", "cuda", "fp32", (7, 5), ("bf16", False))],
)
def test_precision_choice(name, device, cpu_auto, capability, expected):
    precision = resolve_precision(name, torch.device(device), cpu_auto, capability=lambda d: capability)
    assert (precision.name, precision.use_scaler) == expected


def test_fp16_on_cpu_is_refused():
    with pytest.raises(ConfigError, match="bf16"):
        resolve_precision("fp16", torch.device("cpu"))


def test_sampler_order_is_a_function_of_seed_and_epoch_and_can_skip():
    items = list(range(10))

    def order(rank, world, epoch, start=0, seed=3):
        sampler = ResumableSampler(items, DistInfo(rank, rank, world), seed=seed)
        sampler.set_position(epoch, start)
        return list(sampler)

    assert order(0, 1, 1) == order(0, 1, 1)
    assert order(0, 1, 1) != order(0, 1, 2)
    assert order(0, 1, 1, start=4) == order(0, 1, 1)[4:]
    assert sorted(order(0, 1, 5)) == items
    halves = order(0, 2, 1), order(1, 2, 1)
    assert len(halves[0]) == len(halves[1]) == 5 and sorted(halves[0] + halves[1]) == items


# --------------------------------------------------------------------------------------------------
# A run and its folder.


def test_a_run_writes_everything_a_user_looks_at(straight, dataset):
    result, initial = straight
    run = result.run_dir
    assert result.finished and result.epochs_completed == 2 and result.steps == 2 * STEPS_PER_EPOCH
    moved = [k for k, v in result.generator.state_dict().items() if k.endswith("weight") and not torch.equal(v, initial[k])]
    assert moved, "the generator did not train"

    config = json.loads((run / "config.json").read_text())
    assert TrainConfig.from_dict(config) == tiny(dataset, run)

    history = json.loads((run / "losses.json").read_text())
    assert history == result.history and [r["epoch"] for r in history] == [0, 1]
    for record in history:
        for key in ("g_adversarial", "g_l1", "d_real", "d_fake"):
            assert 0 < record[key] < 10
        assert record["images"] == STEPS_PER_EPOCH * 2 and record["skipped"] == 0
    rows = (run / "losses.csv").read_text().splitlines()
    assert rows[0].split(",")[:2] == ["epoch", "steps"] and "g_l1" in rows[0] and len(rows) == 3

    with Image.open(run / "losses.png") as curve:
        assert curve.size[0] > 200
    for epoch in (0, 1):
        with Image.open(run / "samples" / f"epoch_{epoch}.png") as grid:
            assert grid.width > 3 * 64 and grid.height > 2 * 64  # 3 columns, 2 rows

    # Epoch weights rebuild the generator; the last one is the final generator.
    saved = torch.load(run / "generator_1.pt", weights_only=True)
    rebuilt = UNetGenerator(GeneratorConfig(**saved["config"]))
    rebuilt.load_state_dict(saved["state_dict"])
    assert_same_tensors(snapshot(rebuilt), snapshot(result.generator))
    first = torch.load(run / "generator_0.pt", weights_only=True)["state_dict"]
    assert not torch.equal(first["encoder.0.conv.weight"], saved["state_dict"]["encoder.0.conv.weight"])
    assert torch.load(run / "discriminator_1.pt", weights_only=True)["state_dict"]

    state = formats.load_checkpoint(run / "last.pt")
    assert (state["epoch"], state["step"], state["extra"]["samples_done"]) == (2, 2 * STEPS_PER_EPOCH, 0)


def test_sample_grid_does_not_change_training(straight, dataset, tmp_path):
    result, _ = straight
    quiet = train(tiny(dataset, tmp_path / "no-grid", sample_count=0, save_epoch_weights=False))
    assert_same_tensors(snapshot(quiet.generator), snapshot(result.generator))
    assert not (tmp_path / "no-grid" / "samples").exists()


def test_loader_workers_do_not_change_the_result(straight, dataset, tmp_path):
    """Jitter depends on (seed, epoch, index) only, so worker processes give the same training."""
    result, _ = straight
    train(tiny(dataset, tmp_path, num_workers=2, max_steps=STEPS_PER_EPOCH, sample_count=0))
    ours = torch.load(tmp_path / "generator_0.pt", weights_only=True)["state_dict"]
    theirs = torch.load(result.run_dir / "generator_0.pt", weights_only=True)["state_dict"]
    assert_same_tensors(ours, theirs)


@pytest.fixture
def dataset_with_a_bad_file(dataset, tmp_path) -> Path:
    root = tmp_path / "data"
    for split in ("train", "val"):
        (root / split).mkdir(parents=True)
        for path in (dataset / split).iterdir():
            (root / split / path.name).write_bytes(path.read_bytes())
    (root / "train" / "13_AB.jpg").write_bytes(b"\xff\xd8 this is not a JPEG")
    return root


def test_bad_files_are_skipped_and_reported(dataset_with_a_bad_file, tmp_path):
    run = tmp_path / "run"
    result = train(tiny(dataset_with_a_bad_file, run, epochs=1, sample_count=0))
    assert result.history[0]["skipped"] == 1
    assert "13_AB.jpg" in (run / "skipped.txt").read_text()
    assert result.history[0]["images"] <= 12


def test_strict_data_stops_at_a_bad_file(dataset_with_a_bad_file, tmp_path):
    with pytest.raises(DataError, match="13_AB.jpg"):
        train(tiny(dataset_with_a_bad_file, tmp_path / "run", epochs=1, sample_count=0, strict_data=True))


def test_fresh_run_refuses_a_folder_with_a_checkpoint(straight, dataset):
    with pytest.raises(ConfigError, match="--resume"):
        train(tiny(dataset, straight[0].run_dir))


def test_resume_refuses_a_different_network(straight, dataset):
    run = straight[0].run_dir
    with pytest.raises(ConfigError, match="ngf"):
        train(tiny(dataset, run, resume=str(run), ngf=16))


def test_resume_flags_start_from_the_saved_config(straight):
    run = straight[0].run_dir
    parser = argparse.ArgumentParser()
    configure_cli(parser)
    config = config_from_args(parser.parse_args(["--resume", str(run), "--epochs", "5"]))
    assert (config.resume, config.out, config.epochs, config.ngf, config.image_size) == (str(run), str(run), 5, 8, 64)


# --------------------------------------------------------------------------------------------------
# Faults: stop and resume, Ctrl-C, NaN.


@pytest.mark.parametrize("stop_at", [STEPS_PER_EPOCH, STEPS_PER_EPOCH + 3], ids=["epoch-end", "mid-epoch"])
def test_stop_and_resume_equals_never_stopping(straight, dataset, tmp_path, stop_at):
    result, _ = straight
    first = train(tiny(dataset, tmp_path, max_steps=stop_at))
    assert not first.finished and first.steps == stop_at
    resumed = train(tiny(dataset, tmp_path, resume=str(tmp_path)))
    assert resumed.finished and resumed.steps == result.steps
    assert_same_tensors(snapshot(resumed.generator), snapshot(result.generator))
    assert_same_tensors(snapshot(resumed.discriminator), snapshot(result.discriminator))
    ours, theirs = formats.load_checkpoint(tmp_path / "last.pt"), formats.load_checkpoint(result.run_dir / "last.pt")
    for name in ("opt_g", "opt_d"):
        for a, b in zip(optimizer_tensors(ours[name]), optimizer_tensors(theirs[name]), strict=True):
            assert torch.equal(a, b)
    for a, b in zip(resumed.history, result.history, strict=True):
        for key in ("g_adversarial", "g_l1", "d_real", "d_fake", "images", "steps"):
            assert a[key] == pytest.approx(b[key], rel=1e-9)


def test_resume_mid_epoch_refuses_a_different_process_count(dataset, tmp_path):
    train(tiny(dataset, tmp_path, max_steps=STEPS_PER_EPOCH + 3))
    state = formats.load_checkpoint(tmp_path / "last.pt")
    assert state["extra"]["samples_done"] > 0
    state["extra"]["world_size"] = 2  # as if saved by a T4 x2 run
    formats.save_checkpoint(tmp_path / "last.pt", state)
    with pytest.raises(ConfigError, match="same number of GPUs"):
        train(tiny(dataset, tmp_path, resume=str(tmp_path)))


def test_ctrl_c_saves_and_resume_continues_exactly(straight, dataset, tmp_path):
    result, _ = straight

    def interrupt(ctx):
        if ctx.step == 7:  # mid-epoch, with losses not yet synced (log_interval 2)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tiny(dataset, tmp_path), before_step=[interrupt])
    state = formats.load_checkpoint(tmp_path / "last.pt")
    assert (state["epoch"], state["step"], state["extra"]["samples_done"]) == (1, 7, 2)
    resumed = train(tiny(dataset, tmp_path, resume=str(tmp_path)))
    assert_same_tensors(snapshot(resumed.generator), snapshot(result.generator))
    assert [r["g_l1"] for r in resumed.history] == pytest.approx([r["g_l1"] for r in result.history], rel=1e-9)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(dataset, tmp_path, bad):
    def poison(ctx):
        if ctx.step == 5:
            ctx.edges.fill_(bad)

    config = tiny(dataset, tmp_path, checkpoint_every=2, log_interval=1)
    with pytest.raises(TrainingDiverged, match=r"NaN or infinite.*last\.pt"):
        train(config, before_step=[poison])
    state = formats.load_checkpoint(tmp_path / "last.pt")
    assert state["step"] == 4
    for name in ("generator", "discriminator"):
        assert all(torch.isfinite(t).all() for t in state[name].values() if t.is_floating_point())
    assert not list(tmp_path.glob("generator_*.pt"))  # the poisoned epoch never finished


# --------------------------------------------------------------------------------------------------
# Real signals on a real process: the command line as a user runs it.


def _cli(dataset: Path, run: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "edges2shoes_utils", "train", "--data", str(dataset), "--out", str(run),
        "--epochs", "1000", "--batch-size", "2", "--image-size", "64", "--ngf", "8", "--ndf", "8",
        "--num-workers", "0", "--checkpoint-every", "1", "--sample-count", "0", "--no-save-epoch-weights",
        "--no-progress", *extra,
    ]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _wait_for_step(path: Path, step: int, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if path.exists() and formats.load_checkpoint(path)["step"] >= step:
            return
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"no checkpoint at step {step} within {timeout} s")


def test_sigint_saves_and_exits_cleanly(dataset, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(_cli(dataset, run, "--checkpoint-every", "1000"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env())
    # Epoch 0 ends at step 6 and saves; any SIGINT after that must save the exact position.
    _wait_for_step(run / "last.pt", STEPS_PER_EPOCH, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    saved = re.search(r"step (\d+): saved", out)
    assert saved, out
    state = formats.load_checkpoint(run / "last.pt")
    assert state["step"] == int(saved.group(1)) >= STEPS_PER_EPOCH
    assert state["extra"]["samples_done"] == 2 * (state["step"] - STEPS_PER_EPOCH * state["epoch"])


def test_kill_9_loses_at_most_the_last_step_and_resume_works(dataset, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(_cli(dataset, run), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env())
    _wait_for_step(run / "last.pt", 3, proc)
    proc.send_signal(signal.SIGKILL)  # at whatever moment: maybe in a step, maybe mid-write
    proc.wait(timeout=30)
    step = formats.load_checkpoint(run / "last.pt")["step"]  # whole and readable
    assert step >= 3
    resumed = train(TrainConfig.from_run(run, max_steps=step + 2))
    assert resumed.steps == step + 2
    assert formats.load_checkpoint(run / "last.pt")["step"] == step + 2
    assert not list(run.glob(".*.tmp"))  # a write cut short by the kill was cleaned up

"""Checkpoints: exact resume, atomic writes, no code execution on load, epoch files, exports."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import pickle
import random
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import edges2shoes_utils
from edges2shoes_utils.weights import formats
from edges2shoes_utils.weights.exports import export_generator
from edges2shoes_utils.weights.formats import load_checkpoint, save_checkpoint, save_epoch_weights
from edges2shoes_utils.training import Networks, TrainConfig
from edges2shoes_utils.training.checkpointing import (
    RunState,
    checkpoint_state,
    restore_networks,
    rng_states,
    save_run,
    set_rng_states,
)
from edges2shoes_utils.weights.load import load_generator, read_weights
from edges2shoes_utils.util.errors import CheckpointError
from edges2shoes_utils.nets.losses import discriminator_loss, generator_loss
from edges2shoes_utils.nets import DiscriminatorConfig, GeneratorConfig, PatchGANDiscriminator, UNetGenerator

# --------------------------------------------------------------------------------------------------
# A tiny training run (64x64, ngf 8) whose every step uses Python, NumPy and torch randomness.


def make_run(seed: int, scaler: torch.amp.GradScaler | None = None) -> Networks:
    torch.manual_seed(seed)
    generator = UNetGenerator(ngf=8, levels=6)
    discriminator = PatchGANDiscriminator(ndf=8)
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    return Networks(generator, discriminator, opt_g, opt_d, scaler=scaler)


def fixed_batch(index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The same data for a given step however the global RNGs stand."""
    gen = torch.Generator().manual_seed(1000 + index)
    return torch.rand(2, 3, 64, 64, generator=gen) * 2 - 1, torch.rand(2, 3, 64, 64, generator=gen) * 2 - 1


def train_step(nets: Networks, index: int) -> None:
    generator, discriminator, opt_g, opt_d = nets.generator, nets.discriminator, nets.opt_g, nets.opt_d
    edges, photo = fixed_batch(index)
    if random.random() < 0.5:  # paired flip decided by Python's RNG
        edges, photo = edges.flip(-1), photo.flip(-1)
    edges = edges + float(np.random.uniform(0, 0.01))  # NumPy's RNG
    fake = generator(edges)  # dropout: torch's RNG
    opt_d.zero_grad()
    discriminator_loss(discriminator(edges, photo), discriminator(edges, fake.detach())).total.backward()
    opt_d.step()
    opt_g.zero_grad()
    generator_loss(discriminator(edges, fake), fake, photo).total.backward()
    opt_g.step()


def scramble_rngs(seed: int = 999) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def weights(nets: Networks) -> list[torch.Tensor]:
    return [t.detach().clone() for m in (nets.generator, nets.discriminator) for t in m.state_dict().values()]


def optimizer_tensors(nets: Networks) -> list[torch.Tensor]:
    return [v for opt in nets.optimizers for s in opt.state_dict()["state"].values() for v in s.values()]


def test_resume_gives_identical_weights(tmp_path):
    run = make_run(0)
    for index in range(3):
        train_step(run, index)
    config = TrainConfig(out=tmp_path / "run", lr=2e-4, image_size=64, lambda_l1=10.0)
    position = RunState(epoch=1, step=3, samples_done=6, history=[{"epoch": 0, "g_l1": 0.5}])
    path = save_run(tmp_path / "last.pt", run, position, config)
    train_step(run, 3)
    uninterrupted, uninterrupted_opt = weights(run), optimizer_tensors(run)

    resumed = make_run(123)  # different initial weights: everything must come from the file
    scramble_rngs()
    state = load_checkpoint(path)
    restored = restore_networks(state, resumed)
    assert (restored.epoch, restored.step, restored.samples_done) == (1, 3, 6)
    assert restored.history == position.history
    assert state["config"]["out"] == str(tmp_path / "run") and state["config"]["betas"] == [0.5, 0.999]  # plain data
    assert TrainConfig.from_dict(state["config"]) == dataclasses.replace(config, out=str(tmp_path / "run"))
    assert state["version"] == edges2shoes_utils.__version__
    train_step(resumed, 3)
    after = weights(resumed)
    assert len(after) == len(uninterrupted)
    assert all(torch.equal(a, b) for a, b in zip(after, uninterrupted))
    assert all(torch.equal(a, b) for a, b in zip(optimizer_tensors(resumed), uninterrupted_opt))

    # Control: the same resume without the saved RNG state takes a different step (dropout, flip,
    # noise), so the equality above really depends on restoring the RNGs.
    control = make_run(123)
    restore_networks(load_checkpoint(path), control)
    scramble_rngs()
    train_step(control, 3)
    assert not all(torch.equal(a, b) for a, b in zip(weights(control), uninterrupted))


def test_training_checkpoint_contents_load_weights_only(tmp_path):
    scaler = torch.amp.GradScaler("cpu", init_scale=512.0, growth_interval=7)
    path = save_run(tmp_path / "ck.pt", make_run(0, scaler), RunState(), TrainConfig(batch_size=4))
    raw = torch.load(path, weights_only=True)
    for key in ("generator", "discriminator", "opt_g", "opt_d", "epoch", "step", "config", "rng", "scaler", "version"):
        assert key in raw
    assert set(raw["rng"]) >= {"python", "numpy", "torch"}
    assert raw["generator_config"] == {**GeneratorConfig(ngf=8, levels=6).__dict__}
    assert raw["discriminator_config"] == {**DiscriminatorConfig(ndf=8).__dict__}
    assert raw["version"] == edges2shoes_utils.__version__
    assert raw["format"] == formats.TRAINING_FORMAT

    restored_scaler = torch.amp.GradScaler("cpu")
    restore_networks(load_checkpoint(path), make_run(1, restored_scaler))
    assert restored_scaler.state_dict() == scaler.state_dict()
    assert restored_scaler.get_scale() == 512.0


def test_rng_states_round_trip_through_a_file(tmp_path):
    random.gauss(0, 1)  # leave a cached Gaussian in both generators: part of their state
    np.random.randn()
    path = save_checkpoint(tmp_path / "rng.pt", {"rng": rng_states()})
    expected = (random.random(), random.gauss(0, 1), np.random.rand(), np.random.randn(), torch.rand(3))
    scramble_rngs()
    set_rng_states(load_checkpoint(path)["rng"])
    got = (random.random(), random.gauss(0, 1), np.random.rand(), np.random.randn(), torch.rand(3))
    assert got[:4] == expected[:4]
    assert torch.equal(got[4], expected[4])


def test_unsaveable_config_is_refused_before_writing(tmp_path):
    with pytest.raises(CheckpointError, match="weights_only"):
        save_run(tmp_path / "last.pt", make_run(0), RunState(), TrainConfig(data=object()))
    with pytest.raises(CheckpointError, match="object"):
        save_checkpoint(tmp_path / "bad.pt", {"thing": object()})
    assert list(tmp_path.iterdir()) == []


def test_restore_refuses_wrong_files_and_models(tmp_path):
    run = make_run(0)
    state = checkpoint_state(run, RunState(), TrainConfig())
    with pytest.raises(CheckpointError, match="format"):
        restore_networks({"generator": {}}, make_run(1))
    bigger = UNetGenerator(ngf=16, levels=6)
    other = Networks(bigger, run.discriminator, torch.optim.Adam(bigger.parameters()), run.opt_d)
    with pytest.raises(CheckpointError, match="generator"):
        restore_networks(state, other)


# --------------------------------------------------------------------------------------------------
# Atomic writes: a failure half way leaves the previous checkpoint intact and no temporary file.


class FailingWriter:
    """A file wrapper that accepts `limit` bytes, then fails like a full disk (or a Ctrl-C)."""

    def __init__(self, handle, limit: int, error: BaseException, folder: Path) -> None:
        self.handle, self.limit, self.error, self.written, self.folder = handle, limit, error, 0, folder
        self.files_at_failure: list[str] = []

    def write(self, data) -> int:
        if self.written + len(data) > self.limit:
            part = bytes(data[: self.limit - self.written])
            self.handle.write(part)
            self.handle.flush()
            self.written += len(part)
            self.files_at_failure = sorted(p.name for p in self.folder.iterdir())
            raise self.error
        self.written += len(data)
        return self.handle.write(data)

    def flush(self) -> None:
        self.handle.flush()


@pytest.mark.parametrize(
    "error", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()], ids=["disk-full", "ctrl-c"]
)
def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch, error):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"step": 1, "weights": torch.arange(10_000, dtype=torch.float32)})
    before = path.read_bytes()

    real_save = torch.save
    writers: list[FailingWriter] = []

    def failing_save(obj, handle, *args, **kwargs):
        writers.append(FailingWriter(handle, limit=20_000, error=error, folder=tmp_path))
        return real_save(obj, writers[-1], *args, **kwargs)

    monkeypatch.setattr(torch, "save", failing_save)
    expected = CheckpointError if isinstance(error, OSError) else KeyboardInterrupt
    with pytest.raises(expected) as excinfo:
        save_checkpoint(path, {"step": 2, "weights": torch.zeros(50_000)})
    if expected is CheckpointError:
        assert str(path) in str(excinfo.value)
    monkeypatch.undo()

    assert writers and writers[0].written == 20_000  # the failure really happened half way
    # ... into a temporary file beside the target, which is gone now.
    temporary = [name for name in writers[0].files_at_failure if name != "last.pt"]
    assert len(temporary) == 1 and temporary[0].endswith(".tmp")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    assert path.read_bytes() == before
    reloaded = load_checkpoint(path)
    assert reloaded["step"] == 1 and torch.equal(reloaded["weights"], torch.arange(10_000, dtype=torch.float32))


def test_failed_fsync_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"step": 1})

    def failing_fsync(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(CheckpointError, match="could not write"):
        save_checkpoint(path, {"step": 2})
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    assert load_checkpoint(path)["step"] == 1


# --------------------------------------------------------------------------------------------------
# Loading never runs code from the file.


class CreatesFile:
    """A pickle payload: unpickling it calls `function(*args)`."""

    def __init__(self, function, args) -> None:
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def payloads(marker: Path) -> dict:
    found = {"open": CreatesFile(open, (str(marker), "w"))}
    if os.name == "posix":
        found["system"] = CreatesFile(os.system, (f"touch {shlex.quote(str(marker))}",))
    return found


def write_payload(path: Path, payload, container: str) -> None:
    state = {"generator": payload, "epoch": 3}
    if container == "torch.save":
        torch.save(state, path)
    else:
        path.write_bytes(pickle.dumps(state, protocol=int(container.split("-")[1])))


@pytest.mark.parametrize("container", ["torch.save", "pickle-2", "pickle-4"])
@pytest.mark.parametrize("kind", ["open", "system"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, container, kind):
    marker = tmp_path / "marker"
    payload = payloads(marker).get(kind)
    if payload is None:
        pytest.skip("os.system payload uses a POSIX shell")
    # The payload works: plain unpickling does create the marker.
    pickle.loads(pickle.dumps(payload))
    assert marker.exists()
    marker.unlink()

    path = tmp_path / "evil.pt"
    write_payload(path, payload, container)
    assert not marker.exists()
    with pytest.raises(CheckpointError) as excinfo:
        load_checkpoint(path)
    assert str(path) in str(excinfo.value)
    assert "refused" in str(excinfo.value)
    assert not marker.exists()
    assert "weights_only=False" not in str(excinfo.value)  # never advise the unsafe way


def test_pickled_module_is_refused_naming_its_class(tmp_path):
    """A whole nn.Module saved from a notebook needs its class: we refuse rather than import it."""
    path = tmp_path / "whole_model.pt"
    torch.save(UNetGenerator(ngf=8, levels=6), path)
    with pytest.raises(CheckpointError, match="UNetGenerator") as excinfo:
        load_checkpoint(path)
    assert str(path) in str(excinfo.value)


# --------------------------------------------------------------------------------------------------
# Missing, truncated and corrupt files.


def good_checkpoint_bytes(tmp_path: Path) -> bytes:
    return save_checkpoint(tmp_path / "good.pt", {"weights": torch.randn(5000)}).read_bytes()


@pytest.mark.parametrize("damage", ["missing", "directory", "empty", "truncated", "junk", "json", "not-a-dict"])
def test_unreadable_files_raise_checkpoint_error_naming_the_path(tmp_path, damage):
    path = tmp_path / "broken.pt"
    if damage == "directory":
        path.mkdir()
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        data = good_checkpoint_bytes(tmp_path)
        path.write_bytes(data[: len(data) // 2])
    elif damage == "junk":
        path.write_bytes(bytes(range(256)) * 8)
    elif damage == "json":
        path.write_text('{"generator": [1, 2, 3]}')
    elif damage == "not-a-dict":
        torch.save(torch.zeros(3), path)
    with pytest.raises(CheckpointError) as excinfo:
        load_checkpoint(path)
    assert str(path) in str(excinfo.value)


# --------------------------------------------------------------------------------------------------
# Per-epoch files with the original names.


def test_epoch_files_load_weights_only_and_rebuild_the_models(tmp_path):
    torch.manual_seed(0)
    generator, discriminator = UNetGenerator(ngf=8, levels=6), PatchGANDiscriminator(ndf=8)
    generator(torch.randn(2, 3, 64, 64))  # move the batch-norm running statistics off their defaults
    for epoch in (0, 1):
        g_path, d_path = save_epoch_weights(tmp_path / "run", epoch, generator, discriminator)
        assert (g_path.name, d_path.name) == (f"generator_{epoch}.pt", f"discriminator_{epoch}.pt")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "discriminator_0.pt",
        "discriminator_1.pt",
        "generator_0.pt",
        "generator_1.pt",
    ]

    g_file = torch.load(tmp_path / "run" / "generator_0.pt", weights_only=True)
    d_file = torch.load(tmp_path / "run" / "discriminator_0.pt", weights_only=True)
    assert g_file["epoch"] == 0 and g_file["version"] == edges2shoes_utils.__version__
    assert g_file["format"] != d_file["format"]
    rebuilt_g = UNetGenerator(GeneratorConfig(**g_file["config"]))
    rebuilt_d = PatchGANDiscriminator(DiscriminatorConfig(**d_file["config"]))
    rebuilt_g.load_state_dict(g_file["state_dict"])
    rebuilt_d.load_state_dict(d_file["state_dict"])
    x = torch.randn(1, 3, 64, 64)
    generator.eval(), discriminator.eval(), rebuilt_g.eval(), rebuilt_d.eval()
    with torch.no_grad():
        assert torch.equal(rebuilt_g(x), generator(x))
        assert torch.equal(rebuilt_d(x, x), discriminator(x, x))


# --------------------------------------------------------------------------------------------------
# Generator exports (safetensors).


@pytest.mark.parametrize(
    "overrides",
    [{}, {"layout": "tf", "leaky_slope": 0.3}, {"norm": "instance", "dropout": False}, {"in_channels": 1}],
    ids=["official", "tf", "instance", "gray-in"],
)
def test_export_round_trip_gives_identical_outputs(tmp_path, overrides):
    torch.manual_seed(0)
    generator = UNetGenerator(ngf=8, levels=6, **overrides)
    x = torch.randn(2, generator.config.in_channels, 64, 64)
    generator.train()(x)  # update the running statistics so buffers must travel too
    path = export_generator(generator, tmp_path / "g.safetensors", metadata={"epoch": 3, "note": "test"})

    read = read_weights(path)  # load_generator reads an export with the config it carries, inferring nothing
    assert read.container == "edges2shoes export" and read.notes == []
    loaded = load_generator(path)
    assert isinstance(loaded, UNetGenerator)
    assert loaded.config == generator.config
    assert not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded(x), generator.eval()(x))

    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata()
    assert json.loads(meta["config"]) == GeneratorConfig(ngf=8, levels=6, **overrides).__dict__
    assert meta["edges2shoes_version"] == edges2shoes_utils.__version__
    assert meta["epoch"] == "3" and meta["note"] == "test"


def test_an_unreadable_export_is_refused_naming_the_file(tmp_path):
    missing = tmp_path / "missing.safetensors"
    with pytest.raises(CheckpointError, match="missing.safetensors"):
        load_generator(missing)

    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="junk.safetensors"):
        load_generator(junk)

    no_config = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(no_config))
    with pytest.raises(CheckpointError, match="foreign.safetensors.*does not fit a pix2pix U-Net"):
        load_generator(no_config)

    bad_config = tmp_path / "garbled.safetensors"
    save_file({"w": torch.zeros(2)}, str(bad_config), metadata={"config": "{ngf: 8"})
    with pytest.raises(CheckpointError, match="garbled.safetensors.*config is not readable JSON"):
        load_generator(bad_config)

    wrong_weights = tmp_path / "mismatch.safetensors"
    save_file({"w": torch.zeros(2)}, str(wrong_weights), metadata={"config": json.dumps({"ngf": 8, "levels": 6})})
    with pytest.raises(CheckpointError, match="mismatch.safetensors"):
        load_generator(wrong_weights)


def test_export_refuses_a_discriminator(tmp_path):
    with pytest.raises(CheckpointError, match="UNetGenerator"):
        export_generator(PatchGANDiscriminator(ndf=8), tmp_path / "d.safetensors")
    assert list(tmp_path.iterdir()) == []

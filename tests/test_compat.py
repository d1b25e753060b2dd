"""Files written by edges2shoes 0.1.0 (before the stage-folder layout) still load and resume.

tests/fixtures/v0_1_0/ was written by the 0.1.0 code: one epoch of a tiny model (ngf 4, 64x64) on
`make_synthetic(n=4, n_val=2, size=64, seed=0)`, then the epoch file exported to safetensors, and
the eval-mode output of that generator on a fixed random input.

The fixture was written on an Intel Xeon. Float convolutions are not bit-portable between CPUs:
oneDNN picks other kernels on another CPU and rounds differently (on an AMD EPYC the stored
output differs by at most 9.3e-10, in 0.1% of its values). So the checks that hold everywhere
are exact where exactness is a property of the code (every loaded tensor and RNG state, a resume
against the same state written today) and compare outputs with the stored 0.1.0 output to 1e-6,
far above that rounding and far below any change to the network. The comparison with a
never-stopped run needs this CPU to reproduce the fixture's first epoch bit for bit, and runs
wherever it does.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import edges2shoes_utils as e2s
from edges2shoes_utils.weights import save_checkpoint
from edges2shoes_utils.weights.formats import load_checkpoint
from edges2shoes_utils.training import Networks
from edges2shoes_utils.training.checkpointing import restore_networks
from edges2shoes_utils.training.command_line import config_from_args, configure_cli
from edges2shoes_utils.training.config import OLD_SPELLINGS
from edges2shoes_utils.util.seeds import seed_everything

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "v0_1_0"
TINY = dict(image_size=64, ngf=4, ndf=4, batch_size=2, num_workers=0, progress=False, sample_count=0, device="cpu")


@pytest.fixture(scope="module")
def expected() -> dict:
    return torch.load(FIXTURES / "expected_output.pt", weights_only=True)


def _raw(name: str) -> dict:
    """A 0.1.0 file's own contents, read by plain torch.load (the file is ours; not a user's)."""
    return torch.load(FIXTURES / name, weights_only=False, map_location="cpu")


@pytest.mark.parametrize("name", ["generator_0.pt", "generator.safetensors", "last.pt"])
def test_old_weights_give_the_same_output(name, expected):
    generator = e2s.load_generator(FIXTURES / name).eval()
    saved = _raw("generator_0.pt")["state_dict"]  # the epoch file's tensors, as 0.1.0 wrote them
    loaded = generator.state_dict()
    assert loaded.keys() == saved.keys()
    for key, tensor in saved.items():
        assert torch.equal(loaded[key], tensor), key
    with torch.no_grad():
        torch.testing.assert_close(generator(expected["x"]), expected["y"], rtol=0, atol=1e-6)


def test_old_discriminator_epoch_file_loads():
    discriminator = e2s.load_discriminator(FIXTURES / "discriminator_0.pt")
    assert discriminator(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 64)).shape == (1, 1, 6, 6)


@pytest.fixture
def two_threads():
    """The fixture's first epoch ran with 2 torch threads; float sums depend on the thread count, so
    the never-stopped twin must use 2 as well, whatever this machine's default."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _assert_same_networks(a, b) -> None:
    """Both training results' generators and discriminators are bit-identical."""
    for name in ("generator", "discriminator"):
        left, right = getattr(a, name).state_dict(), getattr(b, name).state_dict()
        assert left.keys() == right.keys()
        for key, tensor in left.items():
            assert torch.equal(tensor, right[key]), f"{name}.{key}"


def test_old_last_pt_restores_every_state_it_holds():
    raw = _raw("last.pt")
    generator = e2s.UNetGenerator(e2s.GeneratorConfig(**raw["generator_config"]))
    discriminator = e2s.PatchGANDiscriminator(e2s.DiscriminatorConfig(**raw["discriminator_config"]))
    opt_g = torch.optim.Adam(generator.parameters(), lr=1.0)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=1.0)
    seed_everything(12345)  # torch, NumPy and Python: anything but the saved states
    position = restore_networks(load_checkpoint(FIXTURES / "last.pt"), Networks(generator, discriminator, opt_g, opt_d))
    assert (position.epoch, position.step) == (raw["epoch"], raw["step"])
    assert (position.samples_done, position.history) == (raw["extra"]["samples_done"], raw["extra"]["history"])
    assert torch.equal(torch.get_rng_state(), raw["rng"]["torch"])
    saved_np = raw["rng"]["numpy"]
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    assert (kind, pos, has_gauss, cached) == (saved_np["kind"], saved_np["pos"], saved_np["has_gauss"],
                                              saved_np["cached_gaussian"])
    assert np.array_equal(keys.astype(np.int64), saved_np["keys"].numpy())
    version, internal, gauss_next = random.getstate()
    saved_py = raw["rng"]["python"]
    assert (version, gauss_next) == (saved_py["version"], saved_py["gauss_next"])
    assert list(internal) == saved_py["state"].tolist()
    for module, key in ((generator, "generator"), (discriminator, "discriminator")):
        for name, tensor in raw[key].items():
            assert torch.equal(module.state_dict()[name], tensor), f"{key}.{name}"
    for optimizer, key in ((opt_g, "opt_g"), (opt_d, "opt_d")):
        restored = optimizer.state_dict()
        assert restored["param_groups"] == raw[key]["param_groups"]
        for index, slots in raw[key]["state"].items():
            for slot, tensor in slots.items():
                assert torch.equal(restored["state"][index][slot], tensor), f"{key} state {index}.{slot}"


def test_old_last_pt_resumes_like_the_same_state_written_today(tmp_path, two_threads):
    """Resuming the 0.1.0 file gives, bit for bit, the run that resuming the same state saved by
    today's code gives (which `test_train` shows equals a run that never stopped)."""
    data = tmp_path / "data"
    e2s.make_synthetic(data, n=4, n_val=2, size=64, seed=0)
    runs = {}
    for name in ("old", "today"):
        run = tmp_path / name
        shutil.copytree(FIXTURES, run)
        if name == "today":
            save_checkpoint(run / "last.pt", load_checkpoint(FIXTURES / "last.pt"))
        runs[name] = e2s.train(e2s.TrainConfig(data=str(data), out=str(run), resume=str(run), epochs=2, **TINY))
    old, today = runs["old"], runs["today"]
    assert old.epochs_completed == today.epochs_completed == 2
    _assert_same_networks(old, today)


def test_old_last_pt_resumes_like_a_run_that_never_stopped(tmp_path, two_threads):
    data = tmp_path / "data"
    e2s.make_synthetic(data, n=4, n_val=2, size=64, seed=0)
    first = e2s.train(e2s.TrainConfig(data=str(data), out=str(tmp_path / "first"), epochs=1, **TINY))
    saved = _raw("last.pt")["generator"]
    gap = max(float((first.generator.state_dict()[k].float() - v.float()).abs().max()) for k, v in saved.items())
    if gap:
        pytest.skip(f"this CPU does not reproduce the fixture's first epoch bit for bit (its kernels round "
                    f"differently; largest weight difference {gap:.2e}): no exact never-stopped twin here")
    old_run = tmp_path / "old"
    shutil.copytree(FIXTURES, old_run)
    resumed = e2s.train(e2s.TrainConfig(data=str(data), out=str(old_run), resume=str(old_run), epochs=2, **TINY))
    fresh = e2s.train(e2s.TrainConfig(data=str(data), out=str(tmp_path / "fresh"), epochs=2, **TINY))
    assert resumed.epochs_completed == fresh.epochs_completed == 2
    _assert_same_networks(resumed, fresh)


def test_config_json_keeps_the_0_1_0_types(tmp_path):
    """config.json written today has 0.1.0's keys and JSON types (bools stay bools), except that its
    number format is `precision`, where 0.1.0 wrote `amp` and `cpu_bf16`."""
    data = tmp_path / "data"
    e2s.make_synthetic(data, n=4, n_val=2, size=64, seed=0)
    e2s.train(e2s.TrainConfig(data=str(data), out=str(tmp_path / "run"), epochs=1, **TINY))
    old = json.loads((FIXTURES / "config.json").read_text())
    new = json.loads((tmp_path / "run" / "config.json").read_text())
    kept = set(old) - set(OLD_SPELLINGS)
    assert set(OLD_SPELLINGS) <= set(old) and not set(OLD_SPELLINGS) & set(new)
    assert kept | {"precision"} <= set(new) and new["precision"] == "auto"
    assert {k: type(old[k]) for k in kept} == {k: type(new[k]) for k in kept}


# --------------------------------------------------------------------------------------------------
# 0.1.0's number format: `amp` (auto, fp16, bf16, off) and `cpu_bf16`, now `precision`.


def _old_run(tmp_path: Path, **changes) -> Path:
    """A copy of the 0.1.0 run folder, its config.json edited as 0.1.0 would have written it with other flags."""
    run = tmp_path / "old"
    shutil.copytree(FIXTURES, run)
    config = json.loads((run / "config.json").read_text())
    assert {"amp", "cpu_bf16"} <= set(config) and "precision" not in config  # as 0.1.0 wrote it
    (run / "config.json").write_text(json.dumps({**config, **changes}, indent=2))
    return run


@pytest.mark.parametrize("amp, cpu_bf16, device, precision", [
    ("auto", False, "cpu", "auto"), ("off", False, "cpu", "fp32"), ("off", True, "cpu", "fp32"),
    ("bf16", False, "cuda", "bf16"), ("fp16", False, "cuda", "fp16"), ("auto", True, "cpu", "bf16"),
    ("auto", True, "cuda", "auto"),  # cpu_bf16 said nothing about GPUs
])
def test_old_config_json_reads_as_precision(tmp_path, amp, cpu_bf16, device, precision):
    run = _old_run(tmp_path, amp=amp, cpu_bf16=cpu_bf16, device=device)
    with pytest.warns(FutureWarning, match=f"old spelling of precision '{precision}'"):
        config = e2s.TrainConfig.from_run(run)
    assert config.precision == precision and "amp" not in config.to_dict()


def test_old_last_pt_config_reads_as_precision(tmp_path):
    run = tmp_path / "old"
    shutil.copytree(FIXTURES, run)
    (run / "config.json").unlink()  # from_run falls back to the config inside last.pt
    assert _raw("last.pt")["config"]["amp"] == "auto"
    with pytest.warns(FutureWarning, match="amp 'auto', cpu_bf16 False"):
        assert e2s.TrainConfig.from_run(run).precision == "auto"


def test_resuming_an_old_run_keeps_its_precision(tmp_path):
    """A 0.1.0 run started with `--amp auto --cpu-bf16` on a CPU resumes in bf16, and its config.json
    then says so in today's words."""
    data = tmp_path / "data"
    e2s.make_synthetic(data, n=4, n_val=2, size=64, seed=0)
    run = _old_run(tmp_path, amp="auto", cpu_bf16=True)
    outputs: set = set()

    def watch(ctx) -> None:
        if ctx.step == 2:  # the first step after the resume (0.1.0's epoch had 2)
            ctx.networks.generator.register_forward_hook(lambda module, inputs, output: outputs.add(output.dtype))

    with pytest.warns(FutureWarning, match="precision 'bf16'"):
        config = e2s.TrainConfig.from_run(run, data=str(data), epochs=2)
    result = e2s.train(config, before_step=[watch])
    assert result.epochs_completed == 2 and outputs == {torch.bfloat16}
    written = json.loads((run / "config.json").read_text())
    assert written["precision"] == "bf16" and not set(OLD_SPELLINGS) & set(written)


@pytest.mark.parametrize("flags, precision", [
    (["--amp", "off"], "fp32"), (["--amp", "fp16"], "fp16"), (["--amp", "bf16"], "bf16"),
    (["--cpu-bf16", "--device", "cpu"], "bf16"), (["--amp", "auto", "--cpu-bf16", "--device", "cpu"], "bf16"),
    (["--no-cpu-bf16", "--device", "cpu"], "auto"), (["--amp", "off", "--cpu-bf16", "--device", "cpu"], "fp32"),
])
def test_old_flags_still_read(flags, precision):
    parser = argparse.ArgumentParser()
    configure_cli(parser)
    with pytest.warns(FutureWarning, match="old spelling"):
        assert config_from_args(parser.parse_args(flags)).precision == precision
    assert "--amp" not in parser.format_help() and "--cpu-bf16" not in parser.format_help()
    with pytest.raises(SystemExit):
        parser.parse_args(["--amp", "fp32x"])


def test_an_old_flag_overrides_a_resumed_runs_precision(tmp_path):
    run = _old_run(tmp_path, amp="bf16")
    parser = argparse.ArgumentParser()
    configure_cli(parser)
    with pytest.warns(FutureWarning):
        config = config_from_args(parser.parse_args(["--resume", str(run), "--amp", "off"]))
    assert config.precision == "fp32"

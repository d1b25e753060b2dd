"""fp16 with a GradScaler, the T4's training path, run for real on the CPU.

PyTorch's CPU autocast takes float16 and `torch.amp.GradScaler("cpu")` scales, unscales, skips and
backs off exactly as on CUDA, so the loop's mixed-precision logic is proven here without a GPU.
Users still get `--precision fp16 --device cpu` refused; the tests lift the refusal with the `cpu_fp16`
fixture (`training.device.CPU_FP16_ALLOWED`). fp16 arithmetic on a CPU without fp16 hardware is about ten times slower than
fp32, hence 32x32 images (a 5-level U-Net, ngf = ndf = 8) instead of the usual 64x64.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import pytest
import torch

from edges2shoes_utils.weights import formats
from edges2shoes_utils.training import StepContext, TrainConfig, train
from edges2shoes_utils.training import device
from edges2shoes_utils.training.device import resolve_precision
from edges2shoes_utils.util.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")  # bitwise-reproducible CPU maths (conftest.py)

STEPS_PER_EPOCH = 6  # 12 train pairs, batch 2


def fp16(dataset: Path, out: Path, **overrides) -> TrainConfig:
    settings = dict(
        data=str(dataset), out=str(out), epochs=2, batch_size=2, image_size=32, ngf=8, ndf=8, levels=5,
        num_workers=0, log_interval=1, checkpoint_every=0, progress=False, sample_count=0,
        save_epoch_weights=False, device="cpu", precision="fp16",
    )
    return TrainConfig(**{**settings, **overrides})


@pytest.fixture
def cpu_fp16(monkeypatch):
    """fp16 training allowed on the CPU for this test."""
    monkeypatch.setattr(device, "CPU_FP16_ALLOWED", True)


def network_and_optimizer(ctx: StepContext, name: str) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    nets = ctx.networks
    return (nets.generator, nets.opt_g) if name == "generator" else (nets.discriminator, nets.opt_d)


def parameters(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def adam_state(optimizer: torch.optim.Optimizer) -> list[dict[str, torch.Tensor]]:
    """exp_avg, exp_avg_sq and step of every parameter, copied."""
    return [{k: v.clone() for k, v in optimizer.state[p].items()} for g in optimizer.param_groups for p in g["params"]]


def poison_gradients(name: str, at_step: int) -> Callable[[StepContext], None]:
    """A before_step hook: during step `at_step`, a backward hook on the first parameter of network
    `name` replaces that parameter's gradient with inf (inside the real step's backward pass)."""
    handles = []

    def hook(ctx: StepContext) -> None:
        while handles:
            handles.pop().remove()
        if ctx.step == at_step:
            network, _ = network_and_optimizer(ctx, name)
            first = next(network.parameters())
            handles.append(first.register_hook(lambda grad: torch.full_like(grad, math.inf)))

    return hook


def assert_same(a: dict | list, b: dict | list) -> None:
    """Equal keys and bit-identical tensors, in nested dicts and lists."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
    pairs = zip(a.values(), b.values(), strict=True) if isinstance(a, dict) else zip(a, b, strict=True)
    for x, y in pairs:
        if isinstance(x, dict):
            assert_same(x, y)
        else:
            assert torch.equal(x, y)


# --------------------------------------------------------------------------------------------------


def test_users_are_still_refused_fp16_on_cpu(dataset, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="fp16 is for GPUs"):
        train(fp16(dataset, tmp_path))
    with pytest.raises(ConfigError, match="fp16 is for GPUs"):
        resolve_precision("fp16", torch.device("cpu"))
    monkeypatch.setattr(device, "CPU_FP16_ALLOWED", True)
    precision = resolve_precision("fp16", torch.device("cpu"))
    assert (precision.name, precision.use_scaler, precision.device_type) == ("fp16", True, "cpu")


def test_fp16_losses_stay_finite_over_dozens_of_steps(dataset, tmp_path, cpu_fp16):
    seen: dict = {"dtypes": set(), "scales": []}

    def watch(ctx: StepContext) -> None:
        if ctx.step == 0:
            seen["initial"] = parameters(ctx.networks.generator)
            ctx.networks.generator.register_forward_hook(lambda m, i, out: seen["dtypes"].add(out.dtype))
        seen["scales"].append(ctx.networks.scaler.get_scale())
        seen["enabled"] = ctx.networks.scaler.is_enabled()

    # log_interval 1: the loop checks every step's losses and stops with TrainingDiverged on NaN/inf.
    result = train(fp16(dataset, tmp_path, epochs=4), before_step=[watch])
    assert result.finished and result.steps == 4 * STEPS_PER_EPOCH
    assert seen["dtypes"] == {torch.float16} and seen["enabled"]  # G really ran in fp16, under a live scaler
    for record in result.history:
        for key in ("g_adversarial", "g_l1", "d_real", "d_fake"):
            assert math.isfinite(record[key]) and 0 < record[key] < 10
    assert all(math.isfinite(s) and s >= 1 for s in seen["scales"])
    moved = [k for k, v in parameters(result.generator).items() if not torch.equal(v, seen["initial"][k])]
    assert len(moved) == len(seen["initial"])
    saved = formats.load_checkpoint(tmp_path / "last.pt")["scaler"]
    assert math.isfinite(saved["scale"]) and saved["scale"] >= 1


@pytest.mark.parametrize("poisoned", ["generator", "discriminator"])
def test_inf_gradient_skips_that_networks_step_and_backs_off(dataset, tmp_path, poisoned, cpu_fp16):
    at = 3  # Adam already holds state for every parameter
    other = "discriminator" if poisoned == "generator" else "generator"
    seen: dict = {}

    def record(ctx: StepContext) -> None:
        if ctx.step in (at, at + 1):
            state = {"scale": ctx.networks.scaler.get_scale(), "backoff": ctx.networks.scaler.get_backoff_factor()}
            for name in (poisoned, other):
                network, optimizer = network_and_optimizer(ctx, name)
                state[name] = (parameters(network), adam_state(optimizer))
            seen[ctx.step] = state

    result = train(fp16(dataset, tmp_path, max_steps=at + 2), before_step=[poison_gradients(poisoned, at), record])
    assert result.steps == at + 2  # training went on after the skipped step
    before, after = seen[at], seen[at + 1]

    weights, adam = before[poisoned]
    assert_same(weights, after[poisoned][0])  # the poisoned network did not move...
    assert_same(adam, after[poisoned][1])  # ...and its exp_avg, exp_avg_sq and step are as they were
    assert adam and all(set(s) == {"step", "exp_avg", "exp_avg_sq"} for s in adam)

    other_weights, other_adam = before[other]
    assert all(not torch.equal(v, after[other][0][k]) for k, v in other_weights.items())  # the other one stepped
    assert [s["step"] + 1 for s in other_adam] == [s["step"] for s in after[other][1]]

    assert after["scale"] < before["scale"]
    assert after["scale"] == before["scale"] * before["backoff"]  # 0.5 by default


def test_scaler_state_survives_stop_and_resume_bit_for_bit(dataset, tmp_path, cpu_fp16):
    """An inf at step 2 backs the scale off (on top of the first steps' own overflows), so a resume
    that forgot the scaler (a fresh one: scale 65536, growth tracker 0) would show."""
    straight = train(fp16(dataset, tmp_path / "straight"), before_step=[poison_gradients("discriminator", 2)])
    run = tmp_path / "stopped"
    stop_at = STEPS_PER_EPOCH + 2  # mid-epoch
    train(fp16(dataset, run, max_steps=stop_at), before_step=[poison_gradients("discriminator", 2)])
    at_stop = formats.load_checkpoint(run / "last.pt")["scaler"]
    fresh = torch.amp.GradScaler("cpu").state_dict()
    assert at_stop["scale"] < fresh["scale"] and at_stop["_growth_tracker"] == stop_at - 3  # steps 3.. succeeded

    seen = {}

    def first_scaler(ctx: StepContext) -> None:
        seen.setdefault("scaler", ctx.networks.scaler.state_dict())

    resumed = train(TrainConfig.from_run(run, max_steps=0), before_step=[first_scaler])  # `train --resume RUN --max-steps 0`
    assert resumed.finished and resumed.steps == straight.steps
    assert seen["scaler"] == at_stop  # the resumed run took up the saved scaler

    ours, theirs = formats.load_checkpoint(run / "last.pt"), formats.load_checkpoint(straight.checkpoint)
    assert ours["scaler"] == theirs["scaler"]
    for name in ("generator", "discriminator"):
        assert_same(ours[name], theirs[name])
    for name in ("opt_g", "opt_d"):
        assert_same(ours[name]["state"], theirs[name]["state"])

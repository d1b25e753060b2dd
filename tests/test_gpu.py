"""The CUDA path, on a real GPU: training in each precision, channels_last, torch.compile, exact
resume, the fast inference path and an evaluation, all on tiny networks (ngf = ndf = 8, 64x64).

Marked `gpu` and skipped where `torch.cuda.is_available()` is False, so CI on CPUs stays green;
`edges2shoes bench gpu` runs this file on a GPU machine. Each test takes seconds there, except
torch.compile's (compiling G and D takes tens of seconds). The CPU already proves the logic (fp16
with a GradScaler in test_amp.py, DDP resume in test_ddp.py); here the CUDA kernels, autocast
dtypes, memory formats and CUDA RNG states are the point.
"""

from __future__ import annotations

import copy
import importlib.util
import math
import os
from pathlib import Path

# cuBLAS reads this when it first starts; deterministic mode needs it (before any CUDA work here).
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from edges2shoes_utils.weights import formats  # noqa: E402
from edges2shoes_utils.data.pairs import PairsDataset  # noqa: E402
from edges2shoes_utils.evaluation import evaluate  # noqa: E402
from edges2shoes_utils.evaluation.metrics import psnr_per_image  # noqa: E402
from edges2shoes_utils.inference import Sketch2Shoe  # noqa: E402
from edges2shoes_utils.inference.fastpath import build_runner  # noqa: E402
from edges2shoes_utils.training import StepContext, TrainConfig, train  # noqa: E402
from inference_support import drawn_sketch, edge_batch, tiny_generator  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is False)"),
]

STEPS_PER_EPOCH = 6  # 12 train pairs (the `dataset` fixture), batch 2


@pytest.fixture
def backend_flags():
    """Restore the global cuDNN / TF32 / determinism switches a test (or `train`) changes."""
    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32,
             torch.are_deterministic_algorithms_enabled())
    yield
    torch.use_deterministic_algorithms(saved[3])
    (torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) = saved[:3]


@pytest.fixture
def strict_fp32(backend_flags):
    """True fp32 convolutions and matmuls (no TF32), for comparisons against plain fp32 code."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def tiny(dataset: Path, out: Path, **overrides) -> TrainConfig:
    settings = dict(
        data=str(dataset), out=str(out), epochs=2, batch_size=2, image_size=64, ngf=8, ndf=8, levels=6,
        num_workers=0, log_interval=1, checkpoint_every=0, progress=False, sample_count=0,
        save_epoch_weights=False, device="cuda",
    )
    return TrainConfig(**{**settings, **overrides})


def parameters(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        if isinstance(value, dict):
            assert_same(value, b[key])
        elif torch.is_tensor(value):
            assert torch.equal(value, b[key]), key
        else:
            assert value == b[key], key


def assert_trained(result, initial: dict[str, torch.Tensor]) -> None:
    """Finished, finite epoch losses, every generator weight moved and finite."""
    assert result.finished and result.steps == STEPS_PER_EPOCH * len(result.history)
    for record in result.history:
        assert all(math.isfinite(record[k]) for k in ("g_adversarial", "g_l1", "d_real", "d_fake"))
    final = parameters(result.generator)
    assert all(torch.isfinite(v).all() for v in final.values())
    assert all(not torch.equal(v, initial[k]) for k, v in final.items())


# --------------------------------------------------------------------------------------------------
# Training.


def _autocast_dtype(precision: str) -> torch.dtype:
    if precision == "auto":  # the rule of training.device.resolve_precision
        return torch.bfloat16 if torch.cuda.get_device_capability()[0] >= 8 else torch.float16
    return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[precision]


@pytest.mark.parametrize("precision", ["fp16", "bf16", "fp32", "auto"],
                         ids=["fp16-scaler", "bf16", "fp32-tf32", "auto"])
def test_training_steps_in_each_precision(dataset, tmp_path, backend_flags, precision):
    seen: dict = {"dtypes": set()}

    def watch(ctx: StepContext) -> None:
        if ctx.step == 0:
            seen["initial"] = parameters(ctx.networks.generator)
            ctx.networks.generator.register_forward_hook(lambda m, i, out: seen["dtypes"].add(out.dtype))
            seen["scaler"] = ctx.networks.scaler.is_enabled()
        assert ctx.edges.is_cuda

    result = train(tiny(dataset, tmp_path, precision=precision), before_step=[watch])
    assert_trained(result, seen["initial"])
    expected = _autocast_dtype(precision)
    assert seen["dtypes"] == {expected}
    assert seen["scaler"] == (expected == torch.float16)  # the GradScaler runs for fp16 only
    assert next(result.generator.parameters()).is_cuda
    if precision == "fp32":  # fp32 weights and activations, TF32 tensor-core maths
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
    scaler = formats.load_checkpoint(result.checkpoint)["scaler"]
    if expected == torch.float16:
        assert math.isfinite(scaler["scale"]) and scaler["scale"] >= 1


@pytest.mark.parametrize("channels_last", [True, False], ids=["channels_last", "contiguous"])
def test_channels_last_on_and_off(dataset, tmp_path, backend_flags, channels_last):
    layout = torch.channels_last if channels_last else torch.contiguous_format
    seen: dict = {}

    def watch(ctx: StepContext) -> None:
        if ctx.step == 0:
            seen["initial"] = parameters(ctx.networks.generator)
        seen.setdefault("edges", ctx.edges.is_contiguous(memory_format=layout))
        weight = dict(ctx.networks.generator.named_parameters())["encoder.1.conv.weight"]  # (16, 8, 4, 4): layouts differ
        seen.setdefault("weights", weight.is_contiguous(memory_format=layout))

    result = train(tiny(dataset, tmp_path, channels_last=channels_last), before_step=[watch])
    assert_trained(result, seen["initial"])
    assert seen["edges"] and seen["weights"]
    final = dict(result.generator.named_parameters())["encoder.1.conv.weight"]
    assert final.is_contiguous(memory_format=layout)  # Adam's updates kept the layout


def test_torch_compile_trains(dataset, tmp_path, backend_flags):
    if importlib.util.find_spec("triton") is None:
        pytest.skip("torch.compile on CUDA needs triton, which this torch install lacks")
    from torch._dynamo.utils import counters  # lazy: private API, only this test reads it

    torch._dynamo.reset()
    seen: dict = {}

    def watch(ctx: StepContext) -> None:
        seen.setdefault("initial", parameters(ctx.networks.generator))

    result = train(tiny(dataset, tmp_path, compile=True), before_step=[watch])
    assert counters["stats"]["unique_graphs"] > 0  # the step really ran through compiled graphs
    assert_trained(result, seen["initial"])


@pytest.mark.parametrize("precision", ["fp16", "bf16"], ids=["fp16-scaler", "bf16"])
def test_exact_resume_on_the_gpu(dataset, tmp_path, backend_flags, precision):
    """Stopping mid-epoch and resuming gives bit-identical weights, optimiser and scaler states.

    Deterministic algorithms make each run repeatable (and turn off cuDNN autotuning, see
    `device.configure_backends`); the checkpoint carries the CUDA RNG state, so dropout continues."""
    torch.use_deterministic_algorithms(True)
    straight = train(tiny(dataset, tmp_path / "straight", precision=precision))
    run = tmp_path / "stopped"
    train(tiny(dataset, run, precision=precision, max_steps=STEPS_PER_EPOCH + 1))
    resumed = train(TrainConfig.from_run(run, max_steps=0))
    assert resumed.finished and resumed.steps == straight.steps == 2 * STEPS_PER_EPOCH
    assert not torch.backends.cudnn.benchmark

    ours, theirs = formats.load_checkpoint(resumed.checkpoint), formats.load_checkpoint(straight.checkpoint)
    assert "cuda" in ours["rng"]
    for name in ("generator", "discriminator", "scaler"):
        assert_same(ours[name] or {}, theirs[name] or {})
    for name in ("opt_g", "opt_d"):
        assert_same(ours[name]["state"], theirs[name]["state"])


# --------------------------------------------------------------------------------------------------
# Inference and evaluation.


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_fast_fp32_path_equals_plain_on_cuda_and_cpu(strict_fp32, mode):
    """Without TF32 the fast path only changes the memory layout of fp32 arithmetic: it must match the plain runner on the GPU and the plain runner on the CPU to rounding. cuDNN may
    pick FFT or Winograd convolutions, whose fp32 rounding is about 1e-5 per layer: 2e-4 after the
    twelve layers, on outputs in [-1, 1]."""
    generator, x, seeds = tiny_generator(), edge_batch(), [3, 4, 5]
    fast = build_runner(generator, mode=mode, fast=True, device="cuda", precision="fp32").run(x, seeds)
    plain = build_runner(generator, mode=mode, fast=False, device="cuda").run(x, seeds)
    on_cpu = build_runner(generator, mode=mode, fast=False, device="cpu").run(x, seeds)
    assert fast.is_cuda and plain.is_cuda
    torch.testing.assert_close(fast, plain, atol=2e-4, rtol=0)
    torch.testing.assert_close(plain.cpu(), on_cpu, atol=2e-4, rtol=0)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_fast_autocast_path_is_close_to_plain_on_cuda(backend_flags, mode):
    """The default fast path on CUDA autocasts (bf16 on compute capability >= 8, else fp16): close
    to plain fp32 by the bar the CPU's bf16 path meets (40 dB), and not the same computation."""
    generator, x = tiny_generator(), edge_batch()
    fast = Sketch2Shoe(generator, mode=mode, seed=0, device="cuda")
    plain = Sketch2Shoe(generator, mode=mode, seed=0, device="cuda", fast=False)
    assert fast.precision == ("bf16" if torch.cuda.get_device_capability()[0] >= 8 else "fp16")
    got, expected = fast.generate_batch(x), plain.generate_batch(x)
    assert not torch.equal(got, expected)
    assert psnr_per_image(got.float(), expected.float(), data_range=2.0).min() >= 40.0  # every image
    photo = fast.generate(drawn_sketch())[0]  # the whole path: sketch clean-up, CUDA, picture out
    assert photo.size == (64, 64) and photo.mode == "RGB"


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_evaluation_of_a_tiny_model_on_cuda_matches_the_cpu(dataset, strict_fp32, mode):
    """Scores are computed after 8-bit quantisation; a pixel within rounding of a quantisation
    step can land one level apart on the two devices, hence the small absolute tolerances."""
    generator = tiny_generator()
    pairs = PairsDataset(dataset, split="val", image_size=64, jitter=False)
    options = dict(mode=mode, seed=3, batch_size=2, fid=False, lpips=False)
    on_gpu = evaluate(copy.deepcopy(generator).cuda(), pairs, device="cuda", **options)
    on_cpu = evaluate(generator, pairs, device="cpu", **options)
    assert on_gpu.n_images == on_cpu.n_images == 4
    for metric, tolerance in (("l1", 1e-3), ("psnr", 0.05), ("ssim", 1e-3)):
        gpu_scores = [getattr(s, metric) for s in on_gpu.scores]
        assert all(math.isfinite(v) for v in gpu_scores), metric
        assert gpu_scores == pytest.approx([getattr(s, metric) for s in on_cpu.scores], abs=tolerance), metric

"""One set of words for number formats (`training.device.PRECISIONS`) in every command and in the
GPU plan; the words of earlier versions still read, with a notice."""

from __future__ import annotations

import argparse

import pytest
import torch

from edges2shoes_utils.apps.cli import build_parser
from edges2shoes_utils.bench import train as bench_train
from edges2shoes_utils.bench.gpu_plan import make_plan
from edges2shoes_utils.training.device import PRECISIONS, Precision, read_precision, resolve_precision
from edges2shoes_utils.util.errors import ConfigError


def _precision_options(parser: argparse.ArgumentParser, path: str = "edges2shoes") -> dict[str, tuple]:
    """Every shown option of every (sub-)command that takes a value and whose name says it picks a
    number format, with its choices (switches such as `bench infer --no-fp32-row` pick none)."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(_precision_options(sub, f"{path} {name}"))
        elif (any(_picks_a_format(flag) for flag in action.option_strings) and action.nargs != 0
              and action.help != argparse.SUPPRESS):
            found[f"{path} {action.option_strings[0]}"] = tuple(action.choices or ())
    return found


def _picks_a_format(flag: str) -> bool:
    words = flag.lstrip("-").split("-")
    return bool({"precision", "precisions", "amp", "mixed"} & set(words)) or any(
        word in flag for word in ("bf16", "fp16", "fp32", "tf32"))


def test_every_command_takes_the_same_words():
    options = _precision_options(build_parser())
    assert {"edges2shoes train --precision", "edges2shoes evaluate --precision", "edges2shoes bench infer --precision",
            "edges2shoes bench sketch --precision", "edges2shoes bench train --precisions"} <= set(options)
    for option, choices in options.items():
        assert set(choices) - {"mixed"} == set(PRECISIONS), option  # bench train also reads its old word


def test_the_gpu_plan_uses_the_words():
    for quick in (True, False):
        plan = make_plan(quick, torch.device("cpu"))
        assert set(plan.precisions) <= set(PRECISIONS) and {p for p, _ in plan.compile_rows} <= set(PRECISIONS)


@pytest.mark.parametrize("name, dtype, scaler", [("fp32", None, False), ("bf16", torch.bfloat16, False),
                                                 ("fp16", torch.float16, True)])
def test_each_word_names_one_format(name, dtype, scaler):
    precision = Precision.named(name, "cpu")
    assert (precision.dtype, precision.use_scaler, precision.name) == (dtype, scaler, name)


def test_auto_names_no_single_format():
    with pytest.raises(ConfigError, match="auto"):
        Precision.named("auto", "cuda")


def test_the_old_word_off_reads_as_fp32_with_a_notice():
    with pytest.warns(FutureWarning, match="'off' is the old word for 'fp32'"):
        assert read_precision("off") == "fp32"
    with pytest.warns(FutureWarning):
        assert resolve_precision("off", torch.device("cuda"), capability=lambda d: (8, 0)).dtype is None


def test_an_unknown_word_is_refused_listing_the_words():
    with pytest.raises(ConfigError, match="precision: must be one of auto, fp32, bf16, fp16, not 'tf16'"):
        read_precision("tf16")


@pytest.mark.parametrize("device, capability, asked, expected", [
    ("cpu", None, None, ["fp32", "bf16"]), ("cuda", (7, 5), None, ["fp32", "fp16"]),
    ("cuda", (9, 0), None, ["fp32", "bf16"]), ("cpu", None, ["fp32", "mixed"], ["fp32", "bf16"]),
    ("cuda", (7, 5), ["mixed"], ["fp16"]), ("cpu", None, ["mixed", "fp32", "auto"], ["bf16", "fp32"]),
])
def test_bench_train_times_each_format_once_and_reads_mixed(device, capability, asked, expected, recwarn):
    """As `train --precision` runs them: auto is fp32 on a CPU, so `mixed fp32 auto` times two formats."""
    assert bench_train.precisions_to_time(asked, torch.device(device), lambda d: capability) == expected
    notices = [str(w.message) for w in recwarn if w.category is FutureWarning]
    assert len(notices) == (1 if asked and "mixed" in asked else 0) and all("'mixed'" in n for n in notices)


@pytest.mark.parametrize("cap", ["AVX2", "avx512_core_vnni"])
def test_a_onednn_cap_below_the_bf16_tiers_means_no_native_bf16(monkeypatch, cap):
    """Under `ONEDNN_MAX_CPU_ISA` oneDNN runs as on a CPU of that tier, so auto must pick what such a
    CPU would: fp32 (bf16 there would be emulated, slower than fp32)."""
    from edges2shoes_utils.inference.fastpath import compute_dtype
    from edges2shoes_utils.training.device import cpu_has_native_bf16

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    assert not cpu_has_native_bf16()
    assert compute_dtype("auto", torch.device("cpu")) == torch.float32
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    native = bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    assert cpu_has_native_bf16() == (native and torch.backends.mkldnn.is_available())

"""The fast path is used only where it beats plain: a slower one, or no oneDNN, falls back to plain,
and `describe()` says so and why."""

from __future__ import annotations

import time

import pytest
import torch

from edges2shoes_utils.inference import fastpath
from edges2shoes_utils.inference.layers import PackedConv
from edges2shoes_utils.inference.sketch2shoe import Sketch2Shoe
from inference_support import edge_batch, tiny_generator


@pytest.fixture(autouse=True)
def fresh_timings(monkeypatch):
    """Each test times afresh (the timings are otherwise kept for the process), against plain."""
    monkeypatch.setattr(fastpath, "TIME_AGAINST_PLAIN", True)
    monkeypatch.setattr(fastpath, "TIMINGS", {})


def plain_output(generator, mode, x, seeds):
    return Sketch2Shoe(generator, mode=mode, fast=False).runner.run(x, seeds)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_a_slower_fast_path_falls_back_to_plain(monkeypatch, mode):
    forward = PackedConv.forward

    def slow_forward(self, x):
        time.sleep(0.004)
        return forward(self, x)

    monkeypatch.setattr(PackedConv, "forward", slow_forward)
    generator = tiny_generator()
    model = Sketch2Shoe(generator, mode=mode, seed=3, precision="fp32")
    assert not model.runner.fast
    assert "plain's time" in model.runner.note and "fast path (fp32)" in model.runner.note
    assert "plain fp32" in model.describe() and model.runner.note in model.describe()
    x = edge_batch(2, 64)
    seeds = [3, 4] if mode == "train" else None
    assert torch.equal(model.runner.run(x, seeds), plain_output(generator, mode, x, seeds))


def test_a_faster_fast_path_is_kept(monkeypatch):
    forward = fastpath.PlainRunner.forward

    def slow_plain(self, x):
        if not getattr(self, "fast", False):
            time.sleep(0.02)
        return forward(self, x)

    monkeypatch.setattr(fastpath.PlainRunner, "forward", slow_plain)
    model = Sketch2Shoe(tiny_generator(), mode="eval", precision="fp32")
    assert model.runner.fast and model.runner.note is None
    assert model.describe().startswith("eval mode, fast fp32 on cpu")
    times = fastpath.TIMINGS[("eval", model.generator.config, "fp32")]
    assert times["plain"] >= 20.0 > times["fast"]


def test_without_onednn_the_fast_path_is_plain_with_one_line(monkeypatch):
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    generator = tiny_generator()
    model = Sketch2Shoe(generator, mode="train", seed=1)
    assert not model.runner.fast
    assert "no oneDNN" in model.describe()
    assert not any(isinstance(layer, PackedConv) for layer in model.runner.modules())
    x = edge_batch(1, 64)
    assert torch.equal(model.generate_batch(x), plain_output(generator, "train", x, [1]))

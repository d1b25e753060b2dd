"""Without oneDNN's packed convolutions the fast path falls back to plain, and `describe()` says so."""

from __future__ import annotations

import torch

from edges2shoes_utils.inference.layers import PackedConv
from edges2shoes_utils.inference.sketch2shoe import Sketch2Shoe
from inference_support import edge_batch, tiny_generator


def test_without_onednn_the_fast_path_is_plain_with_one_line(monkeypatch):
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    generator = tiny_generator()
    model = Sketch2Shoe(generator, mode="train", seed=1)
    assert not model.runner.fast
    assert "no oneDNN" in model.describe()
    assert not any(isinstance(layer, PackedConv) for layer in model.runner.modules())
    x = edge_batch(1, 64)
    assert torch.equal(model.generate_batch(x), Sketch2Shoe(generator, mode="train", fast=False).runner.run(x, [1]))

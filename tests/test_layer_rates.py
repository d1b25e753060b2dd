"""tools/layer_rates.py, which puts a floor under the fast path from oneDNN's own per-layer timings:
it must find every convolution of the network and count its arithmetic right, or its floor says
nothing. A tiny generator (ngf 8, 64x64) runs in the tool's capped subprocess; its multiply-adds are
counted independently here, from the shapes each convolution of the plain generator sees."""

from __future__ import annotations

import argparse

import pytest
import torch
from torch import nn

from bench_support import load_tool
from edges2shoes_utils.nets import GeneratorConfig, UNetGenerator


def _multiply_adds(config: GeneratorConfig) -> list[int]:
    """Per convolution, in call order: output pixels x input channels x taps (transposed: input
    pixels x output channels x taps)."""
    counts: list[int] = []

    def count(layer, inputs, output):
        taps = layer.kernel_size[0] * layer.kernel_size[1]
        if isinstance(layer, nn.ConvTranspose2d):
            counts.append(inputs[0].numel() * layer.out_channels * taps)
        else:
            counts.append(output.numel() * layer.in_channels * taps)

    generator = UNetGenerator(config).eval()
    for layer in generator.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            layer.register_forward_hook(count)
    with torch.no_grad():
        generator(torch.zeros(1, 3, config.multiple, config.multiple))
    return counts


@pytest.mark.slow
def test_every_convolution_is_found_and_its_arithmetic_counted():
    tool = load_tool("layer_rates")
    args = argparse.Namespace(tier="none", mode="train", precision="fp32", ngf=8, levels=6, calls=3)
    result = tool.run(args)
    layers = result["layers"]
    assert [layer.kind for layer in layers] == ["convolution"] * 6 + ["deconvolution"] * 6
    assert [layer.multiply_adds for layer in layers] == _multiply_adds(GeneratorConfig(ngf=8, levels=6))
    assert all(layer.milliseconds > 0 for layer in layers)
    assert "Floor: " in tool.markdown(result)


def test_calls_that_ran_different_layers_are_refused():
    tool = load_tool("layer_rates")
    line = "onednn_verbose,v1,primitive,exec,cpu,convolution,brg:avx2,forward_inference,src,attr,alg,{},0.5"
    problem = "mb1_ic3oc8_ih64oh32kh4sh2dh0ph1_iw64ow32kw4sw2dw0pw1"
    output = "\n".join([tool.BEGIN, "CALL", line.format(problem), "CALL", tool.END])
    with pytest.raises(ValueError, match="different numbers of convolutions"):
        tool.layers_from_verbose(output)
    (layer,) = tool.layers_from_verbose(output.replace("CALL\n" + tool.END, "CALL\n" + line.format(problem) + "\n" + tool.END))
    assert layer.multiply_adds == 32 * 32 * 3 * 8 * 16 and layer.milliseconds == 0.5


def test_only_taps_that_meet_the_image_count_as_weights_read():
    tool = load_tool("layer_rates")
    # 4x4 kernels, stride 2, padding 1: a 2x2 map to 1x1 meets 2 taps per axis; 4x4 to 2x2 all 4;
    # a transposed 1x1 map to 2x2 writes through 2 taps per axis.
    assert tool._touched_taps(2, 1, 4, 2, 1, transposed=False) == 2
    assert tool._touched_taps(4, 2, 4, 2, 1, transposed=False) == 4
    assert tool._touched_taps(1, 2, 4, 2, 1, transposed=True) == 2
    inner = tool.Layer("convolution", "k", "mb1_ic512oc512_ih2oh1kh4sh2dh0ph1_iw2ow1kw4sw2dw0pw1", 1.0)
    assert inner.touched_weights == 512 * 512 * 4 and inner.multiply_adds == 512 * 512 * 16

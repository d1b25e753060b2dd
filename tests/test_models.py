"""The pix2pix networks: sizes, shapes, parameter counts, dropout, init and the 70x70 receptive field."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch
from torch import nn

from edges2shoes_utils.util.errors import ConfigError
from edges2shoes_utils.nets import (
    DiscriminatorConfig,
    GeneratorConfig,
    PatchGANDiscriminator,
    UNetGenerator,
    count_parameters,
    pad_to_multiple,
    receptive_field,
)

REFERENCE_KEYS = Path(__file__).parent / "data" / "pix2pix_official_state_dict_keys.json"


def tiny_generator(**overrides) -> UNetGenerator:
    return UNetGenerator(**{"ngf": 8, "levels": 6, **overrides})


@pytest.fixture(scope="module")
def paper_generator() -> UNetGenerator:
    torch.manual_seed(0)
    return UNetGenerator()


@pytest.fixture(scope="module")
def paper_discriminator() -> PatchGANDiscriminator:
    torch.manual_seed(0)
    return PatchGANDiscriminator()


# --------------------------------------------------------------------------------------------------
# Paper-size networks.


def test_paper_size_parameter_counts(paper_generator, paper_discriminator):
    assert count_parameters(paper_generator) == 54_413_955
    assert count_parameters(paper_discriminator) == 2_768_705
    assert paper_generator.config == GeneratorConfig()
    assert paper_discriminator.config == DiscriminatorConfig()


def test_paper_size_shapes_and_patch_grid(paper_generator, paper_discriminator):
    paper_generator.eval()
    paper_discriminator.eval()
    edges = torch.rand(1, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        fake = paper_generator(edges)
        logits = paper_discriminator(edges, fake)
    assert fake.shape == (1, 3, 256, 256)
    assert fake.min() >= -1 and fake.max() <= 1
    assert logits.shape == (1, 1, 30, 30)


def test_generator_state_dict_shapes_match_official(paper_generator):
    """Same tensors (as a multiset of shapes) as the official unet_256: its weights map onto ours."""
    reference = json.loads(REFERENCE_KEYS.read_text())
    ours = Counter(tuple(t.shape) for t in paper_generator.state_dict().values())
    official = Counter(tuple(shape) for _key, shape in reference["generator"]["keys"])
    assert ours == official
    assert reference["generator"]["parameters"] == count_parameters(paper_generator)


def test_discriminator_state_dict_shapes_match_official(paper_discriminator):
    reference = json.loads(REFERENCE_KEYS.read_text())
    ours = [tuple(t.shape) for t in paper_discriminator.state_dict().values()]
    official = [tuple(shape) for _key, shape in reference["discriminator"]["keys"]]
    assert ours == official  # same order too: the official Sequential has the same layer order


def test_paper_generator_dropout_in_three_decoder_blocks(paper_generator):
    dropout_levels = [i for i, block in enumerate(paper_generator.decoder) if any(isinstance(m, nn.Dropout) for m in block)]
    # Official unet_256: the three 8*ngf blocks just outside the innermost one.
    assert dropout_levels == [4, 5, 6]
    assert all(m.p == 0.5 for m in paper_generator.modules() if isinstance(m, nn.Dropout))


def test_init_statistics(paper_generator, paper_discriminator):
    """Convs N(0, 0.02), norm scales N(1, 0.02), biases zero (checked on fresh weights)."""
    for model in (paper_generator, paper_discriminator):
        convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        weights = torch.cat([m.weight.detach().flatten() for m in convs])
        scales = torch.cat([m.weight.detach().flatten() for m in norms])
        assert abs(weights.mean().item()) < 1e-3
        assert weights.std().item() == pytest.approx(0.02, rel=0.02)
        assert scales.mean().item() == pytest.approx(1.0, abs=0.005)
        assert scales.std().item() == pytest.approx(0.02, rel=0.1)
        biases = [m.bias for m in convs + norms if m.bias is not None]
        assert biases and all(torch.count_nonzero(b) == 0 for b in biases)


# --------------------------------------------------------------------------------------------------
# Receptive field: one logit sees exactly a 70x70 window.


def expected_window(index: int, size: int, model: PatchGANDiscriminator) -> tuple[int, int]:
    """Input rows [start, stop) that logit row `index` depends on, walking the conv stack
    (window start = index * jump - accumulated padding), clipped to the image."""
    jump, pad = 1, 0
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    for conv in convs:
        pad += conv.padding[0] * jump
        jump *= conv.stride[0]
    start = index * jump - pad
    return max(start, 0), min(start + receptive_field(model.config.n_layers), size)


@pytest.mark.parametrize(
    "kind, index",
    [("paper", (12, 17)), ("tiny-none", (10, 10)), ("tiny-none", (0, 29)), ("tiny-none", (29, 3))],
)
def test_receptive_field_is_exactly_70x70(kind, index, paper_discriminator):
    assert receptive_field(3) == 70
    if kind == "paper":
        model = paper_discriminator.eval()  # eval: batch statistics would spread gradients everywhere
    else:
        torch.manual_seed(1)
        model = PatchGANDiscriminator(ndf=8, norm="none").double()
    edges = torch.randn(1, 3, 256, 256, dtype=next(model.parameters()).dtype, requires_grad=True)
    photo = torch.randn_like(edges, requires_grad=True)
    logits = model(edges, photo)
    assert logits.shape == (1, 1, 30, 30)
    i, j = index
    logits[0, 0, i, j].backward()
    support = (edges.grad.abs().sum(dim=(0, 1)) + photo.grad.abs().sum(dim=(0, 1))) != 0
    rows, cols = expected_window(i, 256, model), expected_window(j, 256, model)
    expected = torch.zeros(256, 256, dtype=torch.bool)
    expected[rows[0] : rows[1], cols[0] : cols[1]] = True
    assert torch.equal(support, expected)
    # Edges and photo both feed the same window: the discriminator is conditional.
    assert torch.equal(edges.grad.abs().sum(dim=(0, 1)) != 0, expected)
    if kind == "paper":
        assert rows[1] - rows[0] == 70 and cols[1] - cols[0] == 70  # an interior logit: full window


# --------------------------------------------------------------------------------------------------
# Configurable sizes, norms, layouts.


@pytest.mark.parametrize("size, levels", [(64, 6), (128, 7)])
def test_smaller_models_shapes_and_range(size, levels):
    torch.manual_seed(0)
    gen = UNetGenerator(ngf=8, levels=levels)
    disc = PatchGANDiscriminator(ndf=8)
    edges = torch.randn(2, 3, size, size) * 50  # large inputs push tanh towards saturation
    fake = gen(edges)
    assert fake.shape == (2, 3, size, size)
    assert fake.min() >= -1 and fake.max() <= 1
    assert fake.abs().max() > 0.9  # the range check is not vacuous: the output does reach the ends
    assert disc(edges, fake).shape == (2, 1, size // 8 - 2, size // 8 - 2)
    assert gen.config.multiple == size


@pytest.mark.parametrize("channels_in, channels_out", [(1, 3), (3, 1)])
def test_configurable_channels(channels_in, channels_out):
    gen = tiny_generator(in_channels=channels_in, out_channels=channels_out)
    disc = PatchGANDiscriminator(in_channels=channels_in + channels_out, ndf=8)
    x = torch.randn(1, channels_in, 64, 64)
    y = gen(x)
    assert y.shape == (1, channels_out, 64, 64)
    assert disc(x, y).shape == (1, 1, 6, 6)


@pytest.mark.parametrize("norm, norm_type", [("batch", nn.BatchNorm2d), ("instance", nn.InstanceNorm2d), ("none", None)])
def test_norms(norm, norm_type):
    gen = tiny_generator(norm=norm)
    disc = PatchGANDiscriminator(ndf=8, norm=norm)
    for model in (gen, disc):
        norm_layers = [m for m in model.modules() if isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d))]
        if norm_type is None:
            assert norm_layers == []
        else:
            assert norm_layers and all(type(m) is norm_type for m in norm_layers)
    # The official code drops conv biases only before batch norm.
    inner_conv = gen.encoder[1].conv
    assert (inner_conv.bias is None) == (norm == "batch")
    x = torch.randn(2, 3, 64, 64)
    assert gen(x).shape == (2, 3, 64, 64)
    assert disc(x, x).shape == (2, 1, 6, 6)


def test_unknown_norm_and_layout_are_config_errors():
    with pytest.raises(ConfigError, match="norm"):
        tiny_generator(norm="group")
    with pytest.raises(ConfigError, match="layout"):
        tiny_generator(layout="keras")
    with pytest.raises(ConfigError, match="norm"):
        PatchGANDiscriminator(norm="layer")


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_tf_layout_builds_and_runs(mode):
    """The TF tutorial layout (the original notebook's) runs at batch size 1 in both modes,
    although its innermost block normalises a 1x1 map."""
    torch.manual_seed(0)
    gen = tiny_generator(layout="tf", leaky_slope=0.3).train(mode == "train")
    assert gen.config.layout == "tf"
    # TF layout: no conv biases in the encoder, norm on the innermost block, dropout on the innermost three.
    assert all(block.conv.bias is None for block in gen.encoder)
    assert hasattr(gen.encoder[-1], "norm")
    assert [i for i, b in enumerate(gen.decoder) if any(isinstance(m, nn.Dropout) for m in b)] == [3, 4, 5]
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    y = gen(x)
    assert y.shape == (1, 3, 64, 64)
    assert torch.isfinite(y).all() and y.abs().max() <= 1
    y.mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in gen.parameters() if p.grad is not None)
    running_var = gen.encoder[-1].norm.running_var
    assert torch.isfinite(running_var).all()


# --------------------------------------------------------------------------------------------------
# Dropout: the paper's noise source.


def test_dropout_differs_in_train_mode_and_not_in_eval_mode():
    torch.manual_seed(0)
    gen = tiny_generator()
    x = torch.randn(2, 3, 64, 64)
    gen.train()
    with torch.no_grad():
        assert not torch.equal(gen(x), gen(x))
    gen.eval()
    with torch.no_grad():
        assert torch.equal(gen(x), gen(x))


@pytest.mark.parametrize("dropout", [True, False])
def test_dropout_switch_in_train_mode(dropout):
    """With norm none the only randomness in train mode is dropout: off means repeatable."""
    torch.manual_seed(0)
    gen = tiny_generator(norm="none", dropout=dropout).train()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        same = torch.equal(gen(x), gen(x))
    assert same == (not dropout)
    assert any(isinstance(m, nn.Dropout) for m in gen.modules()) == dropout


# --------------------------------------------------------------------------------------------------
# Sizes the U-Net cannot take.


@pytest.mark.parametrize("height, width", [(100, 64), (64, 96), (32, 32), (256, 250)])
def test_bad_input_size_error_names_the_size(height, width):
    gen = tiny_generator()
    with pytest.raises(ConfigError) as excinfo:
        gen(torch.zeros(1, 3, height, width))
    message = str(excinfo.value)
    assert f"{height}x{width}" in message
    assert "multiple of 64" in message
    assert "pad_to_multiple" in message
    with pytest.raises(ConfigError):
        gen.check_size(height, width)


def test_good_sizes_pass_check_size():
    gen = tiny_generator()
    for height, width in [(64, 64), (128, 64), (64, 192)]:
        gen.check_size(height, width)  # no error
        assert gen.eval()(torch.zeros(1, 3, height, width)).shape == (1, 3, height, width)


def test_pad_to_multiple_round_trip():
    gen = tiny_generator().eval()
    x = torch.rand(1, 3, 100, 70) * 2 - 1
    padded, crop = pad_to_multiple(x, gen.config.multiple)
    assert padded.shape == (1, 3, 128, 128)
    assert torch.equal(padded[..., :100, :70], x)
    assert (padded[..., 100:, :] == 1.0).all() and (padded[..., :, 70:] == 1.0).all()  # white background
    out = crop(gen(padded))
    assert out.shape == x.shape
    same, crop_same = pad_to_multiple(torch.zeros(1, 3, 64, 128), 64)
    assert same.shape == (1, 3, 64, 128) and crop_same(same).shape == (1, 3, 64, 128)

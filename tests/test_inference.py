"""Sketch2Shoe, the fast path and the generate CLI, on tiny generators (ngf 8, 6 levels, 64x64)."""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from torch import nn

from edges2shoes_utils.util.errors import ConfigError, SketchError
from edges2shoes_utils.inference.command_line import generate_files
from edges2shoes_utils.evaluation.metrics import psnr_per_image
from edges2shoes_utils.inference.fastpath import build_runner
from edges2shoes_utils.inference.layers import PackedConv
from edges2shoes_utils.nets.runner import per_image_batch_norm
from edges2shoes_utils.inference.sketch2shoe import Sketch2Shoe
from edges2shoes_utils.nets import UNetGenerator
from edges2shoes_utils.util.images import to_pil
from inference_support import drawn_sketch, edge_batch, tiny_generator


def pixels(images) -> np.ndarray:
    return np.stack([np.asarray(im, dtype=np.int16) for im in images])


# --------------------------------------------------------------------------------------------------
# Batch norm at test time.


def test_per_image_batch_norm_equals_train_mode_batch_norm_on_one_image():
    torch.manual_seed(0)
    norm = nn.BatchNorm2d(4).train()
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-1, 1)
    x = torch.randn(3, 4, 5, 5) * 3 + 1
    with torch.no_grad():
        expected = torch.cat([norm(x[i:i + 1]) for i in range(3)])
    got = per_image_batch_norm(x, norm.weight.detach(), norm.bias.detach(), norm.eps)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------------------------------
# Plain and fast runners against the generator itself.


@pytest.mark.parametrize("layout", ["official", "tf"])
def test_plain_eval_runner_is_the_generator_in_eval_mode(layout):
    generator = tiny_generator(layout=layout)
    x = edge_batch()
    with torch.no_grad():
        expected = copy.deepcopy(generator).eval()(x)
    got = build_runner(generator, mode="eval", fast=False).run(x)
    torch.testing.assert_close(got, expected.clamp(-1, 1), atol=1e-6, rtol=0)


def test_plain_train_runner_is_the_generator_in_train_mode_one_image_at_a_time():
    generator = tiny_generator(dropout=False)
    x = edge_batch()
    reference = copy.deepcopy(generator).train()
    with torch.no_grad():
        expected = torch.cat([reference(x[i:i + 1]) for i in range(x.shape[0])])
    got = build_runner(generator, mode="train", fast=False).run(x, seeds=[0, 0, 0])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("layout", ["official", "tf"])
@pytest.mark.parametrize("packed", [True, False])
def test_fast_fp32_equals_plain(mode, layout, packed, monkeypatch):
    if not packed:  # the fallback for builds without oneDNN's pre-packed convolutions
        monkeypatch.setattr("edges2shoes_utils.inference.fastpath._mkldnn_packing_available", lambda: False)
    generator = tiny_generator(layout=layout)
    x = edge_batch()
    seeds = [3, 4, 5]
    plain = build_runner(generator, mode=mode, fast=False).run(x, seeds)
    fast = build_runner(generator, mode=mode, fast=True, precision="fp32").run(x, seeds)
    torch.testing.assert_close(fast, plain, atol=2e-5, rtol=0)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_fast_bf16_is_close_to_fp32(mode):
    generator = tiny_generator()
    x = edge_batch()
    seeds = [3, 4, 5]
    plain = build_runner(generator, mode=mode, fast=False).run(x, seeds)
    fast = build_runner(generator, mode=mode, fast=True, precision="bf16").run(x, seeds)
    assert fast.dtype == torch.float32
    assert not torch.equal(fast, plain)  # it really ran in bf16
    assert psnr_per_image(fast, plain, data_range=2.0).min() >= 40.0  # every image, on the [0, 1] scale


def test_fast_path_on_the_paper_size_generator():
    torch.manual_seed(0)
    generator = UNetGenerator()  # 54.4M parameters, 256x256
    x = edge_batch(1, 256)
    with torch.no_grad():
        expected = copy.deepcopy(generator).eval()(x)
    fast = Sketch2Shoe(generator, mode="eval")  # auto precision: bf16 where the CPU has it
    assert psnr_per_image(fast.generate_batch(x), expected, data_range=2.0).min() >= 40.0
    fp32 = Sketch2Shoe(generator, mode="eval", precision="fp32")
    torch.testing.assert_close(fp32.generate_batch(x), expected, atol=1e-4, rtol=0)


def test_generating_leaves_the_generator_untouched():
    generator = tiny_generator()
    generator.train()
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    for fast in (False, True):
        Sketch2Shoe(generator, mode="train", seed=0, fast=fast).generate(edge_batch())
        Sketch2Shoe(generator, mode="eval", fast=fast).generate(edge_batch())
    after = generator.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running stats not updated
    assert all(m.training for m in generator.modules())


# --------------------------------------------------------------------------------------------------
# Test-time modes, seeds and batching.


@pytest.mark.parametrize("fast", [False, True])
def test_eval_mode_is_deterministic(fast):
    model = Sketch2Shoe(tiny_generator(), mode="eval", fast=fast)
    x = edge_batch()
    assert np.array_equal(pixels(model.generate(x)), pixels(model.generate(x)))


@pytest.mark.parametrize("fast", [False, True])
def test_train_mode_seed_reproduces_and_dropout_varies(fast):
    generator = tiny_generator()
    x = edge_batch(2)
    a = Sketch2Shoe(generator, mode="train", seed=7, fast=fast).generate_batch(x)
    b = Sketch2Shoe(generator, mode="train", seed=7, fast=fast).generate_batch(x)
    c = Sketch2Shoe(generator, mode="train", seed=8, fast=fast).generate_batch(x)
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-2  # dropout is on in train mode
    unseeded = Sketch2Shoe(generator, mode="train", seed=None, fast=fast)
    assert (unseeded.generate_batch(x) - unseeded.generate_batch(x)).abs().max() > 1e-2
    torch.manual_seed(123)
    d = unseeded.generate_batch(x)
    torch.manual_seed(123)
    assert torch.equal(d, unseeded.generate_batch(x))  # seed=None follows torch's global RNG


def test_train_mode_seed_gives_the_same_photo_fast_or_plain():
    generator = tiny_generator()
    x = edge_batch(2)
    plain = Sketch2Shoe(generator, mode="train", seed=11, fast=False).generate_batch(x)
    fast = Sketch2Shoe(generator, mode="train", seed=11, fast=True, precision="fp32").generate_batch(x)
    torch.testing.assert_close(fast, plain, atol=2e-5, rtol=0)


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("fast", [False, True])
def test_batching_gives_the_same_images_as_one_by_one(mode, fast):
    model = Sketch2Shoe(tiny_generator(), mode=mode, seed=5, fast=fast)
    x = edge_batch(5)
    batched = pixels(model.generate(x, batch_size=2))
    single = pixels([model.generate(x[i], batch_size=1)[0] for i in range(5)])
    assert np.abs(batched - single).max() <= 1  # at most one 8-bit level of rounding


def test_translate_adds_each_shoe_and_the_seed_that_made_it():
    generator = tiny_generator()
    x = edge_batch(3)
    model = Sketch2Shoe(generator, mode="train", seed=None, fast=False)
    prepared = [model.prepare(x[i], name=f"edge {i}") for i in range(3)]
    assert all(item.shoe is None and item.seed is None for item in prepared)
    done = model.translate(prepared, seeds=[4, 5, 6], batch_size=2)
    assert [item.seed for item in done] == [4, 5, 6] and [item.label for item in done] == ["edge 0", "edge 1", "edge 2"]
    expected = model.generate_batch(x, [4, 5, 6])
    assert np.abs(pixels([item.shoe for item in done]) - pixels([to_pil(image) for image in expected])).max() <= 1
    again = model.translate([prepared[1]], seeds=[done[1].seed])[0]  # the recorded seed gives the shoe back
    assert np.array_equal(pixels([again.shoe]), pixels([done[1].shoe]))
    unseeded = model.translate(prepared[:2])
    assert all(isinstance(item.seed, int) for item in unseeded)
    with pytest.raises(ConfigError, match="one seed per input"):
        model.translate(prepared, seeds=[1])
    eval_done = Sketch2Shoe(generator, mode="eval").translate(prepared)
    assert [item.seed for item in eval_done] == [None] * 3 and all(item.shoe is not None for item in eval_done)


def test_unknown_mode_and_bad_sizes_are_config_errors():
    generator = tiny_generator()
    with pytest.raises(ConfigError, match="mode"):
        Sketch2Shoe(generator, mode="test")
    model = Sketch2Shoe(generator, mode="eval")
    with pytest.raises(ConfigError, match="48x48"):
        model.generate(torch.zeros(3, 48, 48))
    with pytest.raises(ConfigError):
        model.generate([torch.zeros(2, 3, 64, 64, 1)])


# --------------------------------------------------------------------------------------------------
# Inputs and outputs.


def test_outputs_are_rgb_images_of_the_model_size():
    model = Sketch2Shoe(tiny_generator(), mode="eval")
    images = model.generate(edge_batch(3))
    assert len(images) == 3
    assert all(im.size == (64, 64) and im.mode == "RGB" for im in images)


def test_output_is_clamped_to_the_valid_range():
    generator = tiny_generator()
    generator.decoder[0].tanh = nn.Identity()  # nothing bounds the output any more
    with torch.no_grad():
        generator.decoder[0].conv.bias.copy_(torch.tensor([50.0, -50.0, 0.0]))
    for fast in (False, True):
        out = Sketch2Shoe(generator, mode="eval", fast=fast).generate_batch(edge_batch(1))
        assert out.min() >= -1.0 and out.max() <= 1.0
        assert torch.all(out[:, 0] == 1.0) and torch.all(out[:, 1] == -1.0)


def test_every_input_kind_is_accepted(tmp_path):
    model = Sketch2Shoe(tiny_generator(), mode="eval")
    sketch = drawn_sketch()
    path = tmp_path / "shoe.png"
    sketch.save(path)
    buffer = io.BytesIO()
    sketch.save(buffer, format="JPEG")
    inputs = [path, str(path), buffer.getvalue(), sketch, np.asarray(sketch), edge_batch(1)[0], edge_batch(1)]
    pairs = model.generate_with_previews(inputs)
    assert len(pairs) == len(inputs)
    for preview, photo in pairs:
        assert preview.size == (64, 64) and photo.size == (64, 64)
    from_path = pixels([pairs[0][1]])
    assert np.array_equal(from_path, pixels([pairs[1][1]]))  # str and Path alike
    # the preview is what the model saw: dark lines on white
    preview = np.asarray(pairs[0][0].convert("L"))
    assert preview.min() < 64 and np.median(preview) > 200


def test_no_prepare_only_loads_and_resizes(tmp_path):
    model = Sketch2Shoe(tiny_generator(), mode="eval")
    rgba = Image.new("RGBA", (100, 80), (0, 0, 0, 0))  # transparent: white once composited
    ImageDraw.Draw(rgba).rectangle([10, 10, 30, 30], fill=(200, 0, 0, 255))
    path = tmp_path / "edges.png"
    rgba.save(path)
    prepared = model.prepare(path, prepare=False)
    assert prepared.tensor.shape == (1, 3, 64, 64)
    assert prepared.preview.size == (64, 64)
    array = np.asarray(prepared.preview)
    assert array[-1, -1].tolist() == [255, 255, 255]
    assert array[12, 12, 0] > 150 and array[12, 12, 1] < 60  # the colour survives: no clean-up ran


@pytest.mark.parametrize("prepare", [True, False])
def test_bad_files_raise_a_sketch_error_naming_the_file(tmp_path, prepare):
    model = Sketch2Shoe(tiny_generator(), mode="eval")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image at all")
    with pytest.raises(SketchError, match="broken.jpg"):
        model.generate([broken], prepare=prepare)
    with pytest.raises(SketchError, match="missing.png"):
        model.generate([tmp_path / "missing.png"], prepare=prepare)


def test_generate_files_writes_photos_and_side_by_sides_and_skips_bad_files(tmp_path):
    model = Sketch2Shoe(tiny_generator(), mode="train", seed=0)
    good = []
    for folder in ("a", "b"):  # the same name twice: outputs must not overwrite each other
        (tmp_path / folder).mkdir()
        good.append(tmp_path / folder / "shoe.png")
        drawn_sketch().save(good[-1])
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG broken")
    written, failed = generate_files(model, [good[0], bad, good[1]], tmp_path / "out", batch_size=2)
    assert [w[0] for w in written] == good
    assert len(failed) == 1 and "bad.png" in failed[0]
    photos = {w[1].name for w in written}
    assert photos == {"shoe_shoe.png", "shoe_2_shoe.png"}
    for _, photo, pair in written:
        assert Image.open(photo).size == (64, 64)
        assert Image.open(pair).size[0] > 2 * 64  # two cells side by side


def test_generate_files_never_overwrite_inputs_or_each_other(tmp_path):
    """Writing into the sketches' own folder, with inputs named like outputs, loses nothing."""
    model = Sketch2Shoe(tiny_generator(), mode="eval")
    names = ["x.png", "x_side_by_side.png", "x_shoe.png"]
    for name in names:
        drawn_sketch().save(tmp_path / name)
    before = {name: (tmp_path / name).read_bytes() for name in names}
    written, failed = generate_files(model, [tmp_path / n for n in names], tmp_path)
    assert not failed
    outputs = [p for _, photo, pair in written for p in (photo, pair)]
    assert len(set(outputs)) == len(outputs) == 6
    assert not {p.name for p in outputs} & set(names)
    assert {name: (tmp_path / name).read_bytes() for name in names} == before


def test_generate_cli_end_to_end(tmp_path, capsys):
    pytest.importorskip("edges2shoes_utils.weights.load")
    from edges2shoes_utils.weights.exports import export_generator
    from edges2shoes_utils.apps.cli import main

    weights = export_generator(tiny_generator(), tmp_path / "tiny.safetensors")
    sketch = tmp_path / "my shoe.jpg"
    drawn_sketch().save(sketch)
    out = tmp_path / "out"
    common = ["--weights", str(weights), "--out", str(out), "--device", "cpu"]
    code = main(["generate", str(sketch), *common, "--mode", "eval"])
    printed = capsys.readouterr().out
    assert code == 0
    assert (out / "my shoe_shoe.png").is_file() and (out / "my shoe_side_by_side.png").is_file()
    assert str(out / "my shoe_shoe.png") in printed

    bad = tmp_path / "empty.png"
    bad.write_bytes(b"")
    code = main(["generate", str(sketch), str(bad), *common, "--seed", "1"])
    captured = capsys.readouterr()
    assert code == 2
    assert "empty.png" in captured.err and "Traceback" not in captured.err


def test_compile_is_refused_where_it_cannot_work():
    generator = tiny_generator()
    with pytest.raises(ConfigError, match="compile"):
        Sketch2Shoe(generator, mode="train", compile=True)
    with pytest.raises(ConfigError, match="compile"):
        Sketch2Shoe(generator, mode="eval", fast=False, compile=True)


@pytest.mark.parametrize("kind", ["conv", "transposed"])
def test_packed_weights_are_held_once_and_repacked_for_each_new_input_shape(kind):
    """After the first call the plain weight is dropped; a later input shape repacks from the packed
    copy and still computes the layer exactly."""
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 5, 4, 2, 1) if kind == "conv" else nn.ConvTranspose2d(6, 5, 4, 2, 1)
    layer = PackedConv(conv, torch.float32, torch.device("cpu"), pack=True)
    if not layer.packed:
        pytest.skip("this torch build has no oneDNN packed convolutions")
    seen = set()
    with torch.no_grad():
        for size in (8, 6, 8, 10):
            x = torch.randn(2, 6, size, size).contiguous(memory_format=torch.channels_last)
            torch.testing.assert_close(layer(x), conv(x), atol=1e-5, rtol=0)
            seen.add(size)
            assert layer.weight is None and len(layer._packed) == len(seen)

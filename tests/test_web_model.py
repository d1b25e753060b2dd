"""The browser's model (inference.web_model) against PyTorch, run by onnxruntime in Python: both
test-time modes exactly in fp32 (train mode with the same dropout masks fed to both), the int8
files within the quality gate on the bundled sketches and synthetic edge maps, and the site
builder's refusals. Tiny generators (ngf 8, 64x64)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torch import nn

from edges2shoes_utils.apps import cli
from edges2shoes_utils.apps.web_site import build_site, runtime_folder
from edges2shoes_utils.weights import export_generator
from edges2shoes_utils.evaluation.metrics import psnr_per_image
from edges2shoes_utils.inference.sketch import sample_sketches
from edges2shoes_utils.inference.web_model import (
    WEB_MODES, WebGraph, check_quality, draw_masks, export_web_model, psnr_db, quantize_per_channel,
    reference_output, run_web_model,
)
from edges2shoes_utils.nets import UNetGenerator
from edges2shoes_utils.util.errors import ConfigError

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

SIZE = 64
QUALITY_DB = 30.0  # the int8 files' gate against fp32 PyTorch


def tiny_generator(seed: int = 0, **overrides) -> UNetGenerator:
    torch.manual_seed(seed)
    generator = UNetGenerator(ngf=8, levels=6, **overrides)
    # Running statistics away from (0, 1), as after training, so eval mode differs from train mode.
    for layer in generator.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.running_mean.uniform_(-0.5, 0.5)
            layer.running_var.uniform_(0.5, 2.0)
    return generator


@pytest.fixture(scope="module")
def generator():
    return tiny_generator()


@pytest.fixture(scope="module")
def exact(generator, tmp_path_factory):
    return export_web_model(generator, tmp_path_factory.mktemp("fp32"), quantize=False)


@pytest.fixture(scope="module")
def int8(generator, tmp_path_factory):
    return export_web_model(generator, tmp_path_factory.mktemp("int8"))


def test_eval_graph_equals_pytorch_eval(generator, exact):
    edges = torch.rand(1, 3, SIZE, SIZE) * 2 - 1
    expected = generator.eval()(edges).detach()
    got = run_web_model(exact, "eval", edges)
    assert (got - expected).abs().max() < 1e-4


@pytest.mark.parametrize("seed", [0, 1])
def test_train_graph_equals_pytorch_train_mode_with_the_same_masks(generator, exact, seed):
    edges = torch.rand(1, 3, SIZE, SIZE) * 2 - 1
    masks = draw_masks(exact.mask_shapes("train"), seed)
    assert masks and all(set(np.unique(m)) <= {0.0, 2.0} for m in masks)
    expected = reference_output(generator, edges, "train", masks)
    got = run_web_model(exact, "train", edges, masks)
    assert (got - expected).abs().max() < 1e-4
    # The masks matter: other masks give another shoe, and eval mode yet another.
    other = run_web_model(exact, "train", edges, draw_masks(exact.mask_shapes("train"), seed + 10))
    assert (other - got).abs().max() > 1e-2
    assert (run_web_model(exact, "eval", edges) - got).abs().max() > 1e-2


def test_train_reference_is_the_plain_runners_train_mode(generator):
    """reference_output's train mode is the project's train-mode runner, fed the runner's own masks."""
    from edges2shoes_utils.inference.fastpath import build_runner

    edges = torch.rand(1, 3, SIZE, SIZE) * 2 - 1
    shapes = WebGraph(generator, "train").mask_shapes(SIZE)
    masks = draw_masks(shapes, 5)
    runner = build_runner(generator, mode="train", fast=False, device="cpu")
    expected = runner.run(edges, seeds=[5])
    assert (reference_output(generator, edges, "train", masks).clamp(-1, 1) - expected).abs().max() < 1e-5


def test_every_convolution_weight_is_int8_behind_dequantize(int8, exact, generator):
    for mode in WEB_MODES:
        graph = onnx.load(str(int8.graph(mode)), load_external_data=False).graph
        ops = [node.op_type for node in graph.node]
        assert ops.count("ConvTranspose") == generator.config.levels
        assert ops.count("DequantizeLinear") == ops.count("Conv") + ops.count("ConvTranspose") > 0
        axes = {node.op_type: {n.output[0]: a.i for n in graph.node if n.op_type == "DequantizeLinear"
                               for a in n.attribute if a.name == "axis"}.get(node.input[1])
                for node in graph.node if node.op_type in ("Conv", "ConvTranspose")}
        assert axes == {"Conv": 0, "ConvTranspose": 1}
        norms = {"InstanceNormalization"} if mode == "train" else {"BatchNormalization"}
        assert norms <= set(ops)
    # One shared weights file, a quarter of the fp32 one (int8 against fp32).
    assert int8.manifest["weights_bytes"] < 0.3 * exact.manifest["weights_bytes"]


def test_quantization_error_is_within_half_a_step():
    weight = np.random.default_rng(0).normal(size=(6, 4, 2, 2)).astype(np.float32)
    weight[2] = 0.0  # an all-zero channel keeps a usable scale
    values, scales = quantize_per_channel(weight)
    assert values.dtype == np.int8 and scales.shape == (6,)
    error = np.abs(values * scales[:, None, None, None] - weight)
    assert (error <= scales[:, None, None, None] / 2 + 1e-7).all()
    assert np.abs(values).max() == 127
    # A transposed convolution's output channels are axis 1: one scale per column of that axis.
    values_t, scales_t = quantize_per_channel(weight.transpose(1, 0, 2, 3), axis=1)
    assert np.array_equal(values_t, values.transpose(1, 0, 2, 3)) and np.array_equal(scales_t, scales)


def test_int8_model_meets_the_quality_gate(generator, int8):
    scores = check_quality(generator, int8)
    assert set(scores) == set(WEB_MODES)
    for mode in WEB_MODES:
        assert len(scores[mode]) == len(sample_sketches()) + 3
        assert min(scores[mode].values()) >= QUALITY_DB, scores


def test_psnr_db_matches_the_evaluation_metric():
    a, b = torch.rand(1, 3, 8, 8) * 2 - 1, torch.rand(1, 3, 8, 8) * 2 - 1
    assert psnr_db(a, b) == pytest.approx(float(psnr_per_image((a + 1) / 2, (b + 1) / 2)), rel=1e-5)


@pytest.mark.parametrize("layout", ["tf", "pytorch-gan"])
def test_other_layouts_export_too(tmp_path, layout):
    generator = tiny_generator(layout=layout)
    model = export_web_model(generator, tmp_path, quantize=False)
    edges = torch.rand(1, 3, SIZE, SIZE) * 2 - 1
    masks = draw_masks(model.mask_shapes("train"), 0)
    expected = reference_output(generator, edges, "train", masks)
    assert (run_web_model(model, "train", edges, masks) - expected).abs().max() < 1e-4


# --------------------------------------------------------------------------------------------------
# The builder's refusals.


def test_builder_refuses_weights_it_cannot_read(tmp_path, capsys):
    bad = tmp_path / "weights.pt"
    bad.write_text("not weights")
    code = cli.main(["web", "build", "--weights", str(bad), "--out", str(tmp_path / "site")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and str(bad) in err
    assert not (tmp_path / "site" / "index.html").exists()


def test_builder_needs_the_runtime_installed(tmp_path, capsys):
    web = tmp_path / "web"
    web.mkdir()
    with pytest.raises(ConfigError, match="npm ci"):
        runtime_folder(web)
    weights = export_generator(tiny_generator(), tmp_path / "g.safetensors")
    code = cli.main(["web", "build", "--weights", str(weights), "--out", str(tmp_path / "site"), "--web", str(web)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "npm ci" in err


def test_builder_refuses_a_generator_it_cannot_export(tmp_path):
    with pytest.raises(Exception, match="cannot export"):
        export_web_model(tiny_generator(), tmp_path, image_size=48)


def test_built_site_is_self_contained(tmp_path):
    try:
        runtime_folder()
    except ConfigError as error:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"{error} (.ci/run should have run it)")
        pytest.skip(str(error))
    weights = export_generator(tiny_generator(), tmp_path / "g.safetensors")
    site = build_site(str(weights), tmp_path / "site")
    names = {p.relative_to(site.folder).as_posix() for p in site.folder.rglob("*") if p.is_file()}
    for needed in ("index.html", "app.js", "worker.js", "prepare.js", "sw.js", "ort/ort.min.js",
                   "ort/ort-wasm-simd-threaded.jsep.mjs", "ort/ort-wasm-simd-threaded.jsep.wasm",
                   "model/model.json", "model/generator.weights", "model/generator_train.onnx",
                   "model/generator_eval.onnx", "samples/samples.json"):
        assert needed in names
    # Nothing the page loads points off the site.
    for page_file in ("index.html", "app.js", "worker.js", "coi.js", "sw.js"):
        text = (site.folder / page_file).read_text()
        assert "http://" not in text and "https://" not in text, page_file

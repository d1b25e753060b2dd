"""Reading weights in every known layout: each foreign format is built here from module definitions
written for the test (not from our classes), and our loaded generator must compute what the source
model computes. Pickles that would run code are refused before anything runs."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pickle
import sys
import types
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from edges2shoes_utils import weights as weight_files
from edges2shoes_utils.apps import cli
from edges2shoes_utils.util.errors import ConfigError, WeightsError
from edges2shoes_utils.nets import GeneratorConfig, PatchGANDiscriminator, UNetGenerator, count_parameters
from edges2shoes_utils.weights.load import LoadOptions, load_discriminator, load_generator, read_weights
from edges2shoes_utils.training import Networks, TrainConfig
from edges2shoes_utils.training.checkpointing import RunState, save_run

REFERENCE = Path("/work/shared/reference/pix2pix_official_state_dict_keys.json")
if not REFERENCE.is_file():
    REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "pix2pix_official_state_dict_keys.json"

# --------------------------------------------------------------------------------------------------
# The official implementation's networks, re-written from its state-dict key list: a recursive
# U-Net of skip-connection blocks, and an n-layer PatchGAN in one Sequential.


class OfficialBlock(nn.Module):
    def __init__(self, outer, inner, input_nc=None, sub=None, outermost=False, innermost=False, dropout=False):
        super().__init__()
        self.outermost = outermost
        down = nn.Conv2d(input_nc or outer, inner, 4, 2, 1, bias=False)
        if outermost:
            layers = [down, sub, nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1), nn.Tanh()]
        elif innermost:
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True),
                      nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=False), nn.BatchNorm2d(outer)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down, nn.BatchNorm2d(inner), sub, nn.ReLU(True),
                      nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=False), nn.BatchNorm2d(outer)]
            layers += [nn.Dropout(0.5)] if dropout else []
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class OfficialUnet(nn.Module):
    def __init__(self, num_downs=8, ngf=64, in_nc=3, out_nc=3, dropout=True):
        super().__init__()
        block = OfficialBlock(ngf * 8, ngf * 8, innermost=True)
        for _ in range(num_downs - 5):
            block = OfficialBlock(ngf * 8, ngf * 8, sub=block, dropout=dropout)
        for mult in (4, 2, 1):
            block = OfficialBlock(ngf * mult, ngf * mult * 2, sub=block)
        self.model = OfficialBlock(out_nc, ngf, input_nc=in_nc, sub=block, outermost=True)

    def forward(self, x):
        return self.model(x)


class OfficialPatchGAN(nn.Module):
    def __init__(self, in_nc=6, ndf=64, n_layers=3):
        super().__init__()
        layers = [nn.Conv2d(in_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2 if n < n_layers else 1, 1, bias=False),
                       nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


# --------------------------------------------------------------------------------------------------
# A PyTorch port of the TensorFlow pix2pix tutorial's U-Net, with its own names.


class PortDown(nn.Module):
    def __init__(self, cin, cout, batchnorm=True, slope=0.3, bias=False, eps=1e-5):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 4, 2, 1, bias=bias)
        self.bn = nn.BatchNorm2d(cout, eps=eps) if batchnorm else None
        self.lrelu = nn.LeakyReLU(slope)

    def forward(self, x):
        x = self.conv(x)
        return self.lrelu(self.bn(x) if self.bn is not None else x)


class PortUp(nn.Module):
    def __init__(self, cin, cout, dropout=False, bias=False, eps=1e-5):
        super().__init__()
        self.deconv = nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=bias)
        self.bn = nn.BatchNorm2d(cout, eps=eps)
        self.drop = nn.Dropout(0.5) if dropout else None
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.bn(self.deconv(x))
        return self.relu(self.drop(x) if self.drop is not None else x)


class Generator(nn.Module):
    def __init__(self, ngf=8, levels=6, slope=0.3, bias=False, dropout=True, eps=1e-5, skip_first=False, last_first=False):
        super().__init__()
        ch = [ngf * min(2**i, 8) for i in range(levels)]
        self.skip_first = skip_first
        if last_first:  # registered before the up-sampling stack
            self.last = nn.ConvTranspose2d(ch[0] * 2, 3, 4, 2, 1)
        self.down_stack = nn.ModuleList(
            PortDown(3 if i == 0 else ch[i - 1], ch[i], batchnorm=i > 0, slope=slope, bias=bias, eps=eps) for i in range(levels)
        )
        self.up_stack = nn.ModuleList(
            PortUp(ch[lvl] * (1 if j == 0 else 2), ch[lvl - 1], dropout=dropout and j < 3, bias=bias, eps=eps)
            for j, lvl in enumerate(range(levels - 1, 0, -1))
        )
        if not last_first:
            self.last = nn.ConvTranspose2d(ch[0] * 2, 3, 4, 2, 1)

    def forward(self, x):
        skips = []
        for down in self.down_stack:
            x = down(x)
            skips.append(x)
        for up, skip in zip(self.up_stack, reversed(skips[:-1])):
            x = torch.cat([skip, up(x)] if self.skip_first else [up(x), skip], 1)
        return torch.tanh(self.last(x))


# --------------------------------------------------------------------------------------------------
# Helpers.


def randomise(model: nn.Module, seed: int = 0, norms_only: bool = False) -> nn.Module:
    """Random weights and batch-norm statistics, so that every tensor matters in eval mode
    (`norms_only`: keep PyTorch's random conv init, randomise only the 1-D norm tensors)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.dtype.is_floating_point and not (norms_only and tensor.dim() > 1):
                fresh = torch.rand(tensor.shape, generator=g) + 0.5 if name.endswith("running_var") else \
                    torch.randn(tensor.shape, generator=g) * 0.1
                tensor.copy_(fresh)
    return model


def assert_same_output(ours: nn.Module, theirs: nn.Module, size: int = 64, batch: int = 2, seed: int = 1) -> None:
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))
    ours.eval(), theirs.eval()
    with torch.no_grad():
        difference = (ours(x.clone()) - theirs(x.clone())).abs().max().item()
    assert difference < 1e-5, difference


@contextlib.contextmanager
def notebook_main(*classes: type):
    """Pretend `classes` were defined in a notebook: a module named __main__ holds them while
    torch.save pickles; afterwards the real __main__ (which lacks them) is back."""
    fake = types.ModuleType("__main__")
    saved = [(c, c.__module__, c.__qualname__) for c in classes]
    for cls in classes:
        cls.__module__, cls.__qualname__ = "__main__", cls.__name__
        setattr(fake, cls.__name__, cls)
    real = sys.modules["__main__"]
    sys.modules["__main__"] = fake
    try:
        yield
    finally:
        sys.modules["__main__"] = real
        for cls, module, qualname in saved:
            cls.__module__, cls.__qualname__ = module, qualname


def save_pickled_module(model: nn.Module, path: Path, legacy: bool = False) -> Path:
    with notebook_main(Generator, PortDown, PortUp), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy format's "couldn't retrieve source code"
        torch.save(model, path, _use_new_zipfile_serialization=not legacy)
    return path


# --------------------------------------------------------------------------------------------------
# The official layout.


def test_reference_official_model_matches_published_key_list():
    """The test's official U-Net and PatchGAN are right: same keys, shapes and parameter counts as
    the official implementation's (from the shared reference)."""
    reference = json.loads(REFERENCE.read_text())
    ref_g = [(k, list(v.shape)) for k, v in OfficialUnet().state_dict().items()]
    ref_d = [(k, list(v.shape)) for k, v in OfficialPatchGAN().state_dict().items()]
    assert ref_g == [(k, s) for k, s in reference["generator"]["keys"]]
    assert ref_d == [(k, s) for k, s in reference["discriminator"]["keys"]]
    assert count_parameters(OfficialUnet()) == reference["generator"]["parameters"] == 54_413_955


@pytest.mark.slow
def test_paper_size_official_generator_converts_exactly(tmp_path):
    """The model zoo's edges2shoes file: a plain state dict from old PyTorch (no num_batches_tracked)."""
    torch.manual_seed(0)
    official = randomise(OfficialUnet(), seed=3, norms_only=True)
    state = {k: v for k, v in official.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "latest_net_G.pth")
    loaded = read_weights(tmp_path / "latest_net_G.pth")
    ours = loaded.model
    assert ours.config == GeneratorConfig()  # paper-size, official layout, batch norm, dropout
    assert "official" in loaded.layout
    assert_same_output(ours, official, size=256, batch=1)
    # Train mode (the official test-time default): batch statistics and dropout in the same places.
    x = torch.randn(1, 3, 256, 256)
    ours.train(), official.train()
    with torch.no_grad():
        torch.manual_seed(7)
        a = ours(x.clone())
        torch.manual_seed(7)
        b = official(x.clone())
    assert (a - b).abs().max().item() < 1e-5


def _wrap(state: dict, how: str) -> object:
    if how == "no_num_batches_tracked":
        return {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    if how == "module_prefix":
        return {f"module.{k}": v for k, v in state.items()}
    if how in ("state_dict", "model"):
        return {how: state, "epoch": 3}
    return state


@pytest.mark.parametrize("how", ["plain", "no_num_batches_tracked", "module_prefix", "state_dict", "model", "legacy_format"])
def test_small_official_generator_loads_in_every_wrapping(tmp_path, how):
    official = randomise(OfficialUnet(num_downs=6, ngf=8), seed=4)
    path = tmp_path / "net_G.pth"
    torch.save(_wrap(official.state_dict(), how), path, _use_new_zipfile_serialization=how != "legacy_format")
    ours = load_generator(path)
    assert (ours.config.levels, ours.config.ngf, ours.config.layout) == (6, 8, "official")
    assert_same_output(ours, official)


def test_official_layout_pickled_whole_from_a_notebook(tmp_path):
    official = randomise(OfficialUnet(num_downs=6, ngf=8), seed=15)
    with notebook_main(OfficialUnet, OfficialBlock):
        torch.save(official, tmp_path / "net_G.pt")
    loaded = read_weights(tmp_path / "net_G.pt")
    assert loaded.container == "pickled module" and loaded.model.config.layout == "official"
    assert_same_output(loaded.model, official)


def test_official_state_dict_with_a_wrong_shape_names_the_tensor(tmp_path):
    state = randomise(OfficialUnet(num_downs=6, ngf=8)).state_dict()
    key = "model.model.1.model.3.model.2.weight"
    state[key] = torch.zeros(7)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match=r"model\.model\.1\.model\.3\.model\.2\.weight.*shape \(7,\)"):
        load_generator(tmp_path / "bad.pth")


def test_official_state_dict_with_a_tensor_out_of_place_is_refused(tmp_path):
    state = OfficialUnet(num_downs=6, ngf=8).state_dict()
    state["model.model.1.model.4.weight"] = torch.zeros(3)  # index 4 is a ReLU in the official block
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match=r"'model\.model\.1\.model\.4\.weight' does not fit"):
        load_generator(tmp_path / "bad.pth")


def test_official_discriminator_converts_exactly(tmp_path):
    official = randomise(OfficialPatchGAN(ndf=8), seed=5)
    torch.save({"module." + k: v for k, v in official.state_dict().items()}, tmp_path / "net_D.pth")
    ours = load_discriminator(tmp_path / "net_D.pth")
    assert (ours.config.ndf, ours.config.n_layers, ours.config.in_channels) == (8, 3, 6)
    edges, photo = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64)
    official.eval()
    with torch.no_grad():
        assert (ours(edges, photo) - official(torch.cat([edges, photo], 1))).abs().max() < 1e-5


# --------------------------------------------------------------------------------------------------
# The TF-tutorial layout: a state dict with other names, and a whole pickled notebook module.


@pytest.mark.parametrize("slope", [0.3, 0.2])
def test_tf_port_state_dict_loads_with_documented_slope_option(tmp_path, slope):
    port = randomise(Generator(slope=slope), seed=6)
    torch.save(port.state_dict(), tmp_path / "generator_9.pt")
    loaded = read_weights(tmp_path / "generator_9.pt", leaky_slope=None if slope == 0.3 else slope)
    assert loaded.model.config.layout == "tf" and loaded.model.config.leaky_slope == slope
    assert "TF-tutorial" in loaded.layout
    assert_same_output(loaded.model, port)


def test_tf_port_state_dict_without_the_right_slope_differs(tmp_path):
    """The slope option is real: the file cannot carry it, and the wrong one changes the output."""
    port = randomise(Generator(slope=0.2), seed=6)
    torch.save(port.state_dict(), tmp_path / "generator_9.pt")
    ours = load_generator(tmp_path / "generator_9.pt")  # assumes 0.3
    with pytest.raises(AssertionError):
        assert_same_output(ours, port)


def test_layout_options_as_one_object_or_as_keywords(tmp_path):
    """`LoadOptions` and keyword arguments are one mechanism: keywords override the object's fields;
    an unknown keyword, or a generator-only one given to a discriminator reader, is refused."""
    port = randomise(Generator(slope=0.2, skip_first=True), seed=13)
    torch.save(port.state_dict(), tmp_path / "g.pt")
    options = LoadOptions(leaky_slope=0.2, skip_first=True)
    assert_same_output(load_generator(tmp_path / "g.pt", options), port)
    assert_same_output(load_generator(tmp_path / "g.pt", LoadOptions(leaky_slope=0.2), skip_first=True), port)
    loaded = read_weights(tmp_path / "g.pt", "generator", options, dropout=False)
    assert loaded.model.config.dropout is False and loaded.model.config.leaky_slope == 0.2
    with pytest.raises(TypeError, match="load_generator.*'leaky'"):
        load_generator(tmp_path / "g.pt", leaky=0.2)
    with pytest.raises(TypeError, match="read_weights.*'skip_first'"):
        read_weights(tmp_path / "g.pt", "discriminator", skip_first=True)
    with pytest.raises(ConfigError, match="role must be 'generator' or 'discriminator', not 'critic'"):
        read_weights(tmp_path / "g.pt", "critic")
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.leaky_slope = 0.3


def test_tf_port_concatenating_skip_first_needs_and_honours_the_option(tmp_path):
    port = randomise(Generator(skip_first=True), seed=13)
    torch.save(port.state_dict(), tmp_path / "g.pt")
    assert_same_output(load_generator(tmp_path / "g.pt", skip_first=True), port)
    with pytest.raises(AssertionError):
        assert_same_output(load_generator(tmp_path / "g.pt"), port)


@pytest.mark.parametrize("pickled", [False, True])
def test_tf_port_registering_its_last_layer_first(tmp_path, pickled):
    port = randomise(Generator(last_first=True), seed=14)
    assert next(iter(port.state_dict())).startswith("last.")
    path = save_pickled_module(port, tmp_path / "g.pt") if pickled else tmp_path / "g.pt"
    if not pickled:
        torch.save(port.state_dict(), path)
    assert_same_output(load_generator(path), port)


def test_tf_port_with_conv_biases_folds_them_exactly(tmp_path):
    port = randomise(Generator(bias=True), seed=7)
    torch.save({"model": port.state_dict()}, tmp_path / "g.pt")
    with pytest.raises(WeightsError, match=r"down_stack\.0\.conv\.bias"):
        load_generator(tmp_path / "g.pt")  # the first level has no norm to absorb its bias
    port.down_stack[0].conv.bias = None
    torch.save({"model": port.state_dict()}, tmp_path / "g.pt")
    assert_same_output(load_generator(tmp_path / "g.pt"), port)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("dropout", [True, False])
def test_pickled_notebook_module_loads_with_its_settings(tmp_path, legacy, dropout):
    port = randomise(Generator(slope=0.15, dropout=dropout, eps=1e-3), seed=8)
    path = save_pickled_module(port, tmp_path / "generator_9.pt", legacy=legacy)
    assert "Generator" not in vars(sys.modules["__main__"])  # nothing to import it from now
    loaded = read_weights(path)
    config = loaded.model.config
    assert (config.layout, config.leaky_slope, config.dropout, config.levels, config.ngf) == ("tf", 0.15, dropout, 6, 8)
    assert loaded.container == "pickled module"
    assert_same_output(loaded.model, port)


def test_pickled_module_inside_a_checkpoint_dict(tmp_path):
    port = randomise(Generator(), seed=9)
    with notebook_main(Generator, PortDown, PortUp):
        torch.save({"generator": port, "epoch": 9, "opt": torch.optim.Adam(port.parameters()).state_dict()}, tmp_path / "ckpt.pt")
    assert_same_output(load_generator(tmp_path / "ckpt.pt"), port)


def test_pickled_module_with_another_structure_names_the_first_misfit(tmp_path):
    port = Generator()
    port.up_stack[1].bn = nn.BatchNorm2d(5)  # wrong channel count
    path = save_pickled_module(port, tmp_path / "g.pt")
    with pytest.raises(WeightsError, match=r"'up_stack\.1\.bn\.weight' has shape \(5,\)"):
        load_generator(path)


def test_pickled_module_missing_a_norm_names_the_conv(tmp_path):
    port = Generator()
    port.down_stack[5].bn = None
    path = save_pickled_module(port, tmp_path / "g.pt")
    with pytest.raises(WeightsError, match=r"'down_stack\.5\.conv\.weight'.*needs a batch norm"):
        load_generator(path)


def test_tf_state_dict_with_a_wrong_shape_names_the_tensor(tmp_path):
    state = Generator().state_dict()
    state["up_stack.0.deconv.weight"] = torch.zeros(64, 32, 4, 4)
    torch.save(state, tmp_path / "g.pt")
    with pytest.raises(WeightsError, match=r"'up_stack\.0\.deconv\.weight' has shape \(64, 32, 4, 4\)"):
        load_generator(tmp_path / "g.pt")


# --------------------------------------------------------------------------------------------------
# Pickles that would run code.


class Payload:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.mark.parametrize("container", ["torch_zip", "torch_legacy", "raw_pickle", "inside_notebook_module"])
def test_pickle_that_runs_a_command_is_refused_and_never_runs(tmp_path, container):
    marker = tmp_path / "ran"
    payload = Payload(f"touch {marker}")
    path = tmp_path / "evil.pt"
    if container == "raw_pickle":
        data = pickle.dumps({"state_dict": payload}, protocol=2)
        path.write_bytes(data)
        pickle.loads(data)  # the payload is live: a plain unpickler runs it
        assert marker.exists()
        marker.unlink()
    elif container == "inside_notebook_module":
        port = Generator()
        port.note = payload
        with notebook_main(Generator, PortDown, PortUp):
            torch.save(port, path)
    else:
        torch.save({"state_dict": payload}, path, _use_new_zipfile_serialization=container == "torch_zip")
    with pytest.raises(WeightsError, match=r"refused to load.*system"):
        load_generator(path)
    assert not marker.exists()


def test_pickle_naming_an_importable_class_is_refused(tmp_path):
    import argparse

    torch.save({"model": argparse.Namespace(x=1)}, tmp_path / "odd.pt")
    with pytest.raises(WeightsError, match=r"refused to load.*argparse\.Namespace"):
        load_generator(tmp_path / "odd.pt")


def test_garbage_file_is_a_clear_error(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(WeightsError, match="junk.pt"):
        load_generator(tmp_path / "junk.pt")


# --------------------------------------------------------------------------------------------------
# Our own files.


@pytest.mark.parametrize("layout", ["official", "tf"])
def test_our_files_load(tmp_path, layout):
    generator = randomise(UNetGenerator(ngf=8, levels=6, layout=layout, leaky_slope=0.25), seed=10)
    discriminator = randomise(PatchGANDiscriminator(ndf=8), seed=11)
    g_path, d_path = weight_files.save_epoch_weights(tmp_path, 4, generator, discriminator)
    assert_same_output(load_generator(g_path), generator)
    assert load_generator(g_path).config == generator.config
    export = weight_files.export_generator(generator, tmp_path / "g.safetensors")
    assert_same_output(load_generator(export), generator)
    opts = [torch.optim.Adam(m.parameters()) for m in (generator, discriminator)]
    save_run(tmp_path / "last.pt", Networks(generator, discriminator, *opts), RunState(epoch=4, step=10), TrainConfig())
    assert_same_output(load_generator(tmp_path / "last.pt"), generator)
    for path in (d_path, tmp_path / "last.pt"):
        loaded_d = load_discriminator(path)
        edges, photo = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64)
        discriminator.eval()
        with torch.no_grad():
            assert (loaded_d(edges, photo) - discriminator(edges, photo)).abs().max() < 1e-6
    torch.save(generator.state_dict(), tmp_path / "bare.pt")  # no config: inferred from shapes
    bare = read_weights(tmp_path / "bare.pt", leaky_slope=0.25)
    assert bare.model.config.layout == layout
    assert_same_output(bare.model, generator)


def test_generator_file_is_not_a_discriminator(tmp_path):
    g_path, _ = weight_files.save_epoch_weights(tmp_path, 0, UNetGenerator(ngf=8, levels=6), PatchGANDiscriminator(ndf=8))
    with pytest.raises(WeightsError, match="holds a generator, not a discriminator"):
        load_discriminator(g_path)


# --------------------------------------------------------------------------------------------------
# Command line: convert and info.


def test_convert_writes_export_and_onnx_that_match(tmp_path, capsys):
    onnxruntime = pytest.importorskip("onnxruntime")
    official = randomise(OfficialUnet(num_downs=6, ngf=8), seed=12)
    torch.save(official.state_dict(), tmp_path / "net_G.pth")
    out, onnx_path = tmp_path / "G.safetensors", tmp_path / "G.onnx"
    code = cli.main(["weights", "convert", str(tmp_path / "net_G.pth"), "--out", str(out), "--onnx", str(onnx_path), "--image-size", "64"])
    assert code == 0
    assert_same_output(weight_files.load_generator(out), official)
    assert json.loads(weight_files.read_export_metadata(out)["config"])["levels"] == 6
    x = torch.randn(3, 3, 64, 64)
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    official.eval()
    with torch.no_grad():
        expected = official(x.clone()).numpy()
    assert abs(session.run(None, {"edges": x.numpy()})[0] - expected).max() < 1e-4
    assert "onnxruntime" in capsys.readouterr().out


def test_info_prints_layout_parameters_and_config(tmp_path, capsys):
    port = Generator(slope=0.1)
    path = save_pickled_module(port, tmp_path / "generator_9.pt")
    assert cli.main(["weights", "info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "TF-tutorial U-Net (pickled notebook module)" in out
    assert f"{count_parameters(port):,}" in out
    assert '"leaky_slope": 0.1' in out and '"layout": "tf"' in out


def test_cli_reports_bad_input_without_traceback(tmp_path, capsys):
    assert cli.main(["weights", "info", str(tmp_path / "missing.pt")]) == 2
    err = capsys.readouterr().err
    assert "missing.pt" in err and "Traceback" not in err


# --------------------------------------------------------------------------------------------------
# The TF tutorial's discriminator, as a PyTorch port with its own names.


class TFDownD(nn.Module):
    def __init__(self, cin, cout, batchnorm=True, slope=0.3, eps=1e-5):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 4, 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=eps) if batchnorm else None
        self.lrelu = nn.LeakyReLU(slope)

    def forward(self, x):
        x = self.conv(x)
        return self.lrelu(self.bn(x) if self.bn is not None else x)


class TFDiscriminator(nn.Module):
    def __init__(self, ndf=8, slope=0.3, eps=1e-5, stride4=1):
        super().__init__()
        self.down1 = TFDownD(6, ndf, batchnorm=False, slope=slope, eps=eps)
        self.down2 = TFDownD(ndf, ndf * 2, slope=slope, eps=eps)
        self.down3 = TFDownD(ndf * 2, ndf * 4, slope=slope, eps=eps)
        self.zero_pad1 = nn.ZeroPad2d(1)
        self.conv = nn.Conv2d(ndf * 4, ndf * 8, 4, stride4, bias=False)
        self.batchnorm1 = nn.BatchNorm2d(ndf * 8, eps=eps)
        self.leaky_relu = nn.LeakyReLU(slope)
        self.zero_pad2 = nn.ZeroPad2d(1)
        self.last = nn.Conv2d(ndf * 8, 1, 4, 1)

    def forward(self, inp, tar):
        x = self.down3(self.down2(self.down1(torch.cat([inp, tar], 1))))
        x = self.leaky_relu(self.batchnorm1(self.conv(self.zero_pad1(x))))
        return self.last(self.zero_pad2(x))


def assert_same_logits(ours: nn.Module, theirs: nn.Module, size: int = 64, seed: int = 2) -> None:
    g = torch.Generator().manual_seed(seed)
    edges, photo = torch.randn(2, 3, size, size, generator=g), torch.randn(2, 3, size, size, generator=g)
    ours.eval(), theirs.eval()
    with torch.no_grad():
        mine, reference = ours(edges.clone(), photo.clone()), theirs(edges.clone(), photo.clone())
    assert mine.shape == reference.shape == (2, 1, size // 8 - 2, size // 8 - 2)
    difference = (mine - reference).abs().max().item()
    assert difference < 1e-5, difference


def save_pickled_discriminator(model: nn.Module, path: Path, legacy: bool = False) -> Path:
    with notebook_main(TFDiscriminator, TFDownD), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(model, path, _use_new_zipfile_serialization=not legacy)
    return path


@pytest.mark.parametrize("slope", [0.3, 0.2])
def test_tf_discriminator_state_dict_loads_with_documented_slope(tmp_path, slope):
    port = randomise(TFDiscriminator(slope=slope), seed=21)
    torch.save(port.state_dict(), tmp_path / "discriminator_9.pt")
    loaded = read_weights(tmp_path / "discriminator_9.pt", "discriminator", leaky_slope=None if slope == 0.3 else slope)
    config = loaded.model.config
    assert (config.ndf, config.n_layers, config.first_bias, config.leaky_slope) == (8, 3, False, slope)
    assert "TF-tutorial PatchGAN" in loaded.layout
    assert "model.conv0.bias" not in loaded.model.state_dict()
    assert_same_logits(loaded.model, port)
    if slope != 0.3:  # the option is real: a state dict cannot carry the slope, 0.3 is assumed
        with pytest.raises(AssertionError):
            assert_same_logits(load_discriminator(tmp_path / "discriminator_9.pt"), port)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_tf_discriminator_pickled_module_loads_with_its_slope(tmp_path, legacy):
    port = randomise(TFDiscriminator(slope=0.15, eps=1e-3), seed=22)
    path = save_pickled_discriminator(port, tmp_path / "discriminator_9.pt", legacy=legacy)
    assert "TFDiscriminator" not in vars(sys.modules["__main__"])
    loaded = read_weights(path, "discriminator")
    assert loaded.container == "pickled module" and loaded.model.config.leaky_slope == 0.15
    assert all(m.eps == 1e-3 for m in loaded.model.modules() if isinstance(m, nn.BatchNorm2d))
    assert_same_logits(loaded.model, port)


def test_tf_discriminator_in_one_sequential_is_not_taken_for_the_official_one(tmp_path):
    port = randomise(TFDiscriminator(), seed=23)
    sequential = nn.Sequential(*[m for m in port.modules() if not isinstance(m, (TFDiscriminator, TFDownD))])
    torch.save({"model." + k: v for k, v in sequential.state_dict().items()}, tmp_path / "d.pt")
    assert_same_logits(load_discriminator(tmp_path / "d.pt"), port)


def test_tf_discriminator_state_dict_with_a_wrong_shape_names_the_tensor(tmp_path):
    state = TFDiscriminator().state_dict()
    state["batchnorm1.weight"] = torch.ones(5)
    torch.save(state, tmp_path / "d.pt")
    with pytest.raises(WeightsError, match=r"'batchnorm1\.weight' has shape \(5,\)"):
        load_discriminator(tmp_path / "d.pt")


def test_tf_discriminator_missing_a_norm_names_the_conv(tmp_path):
    port = TFDiscriminator()
    port.down2.bn = None
    path = save_pickled_discriminator(port, tmp_path / "d.pt")
    with pytest.raises(WeightsError, match=r"'down2\.conv\.weight'.*needs a batch norm"):
        load_discriminator(path)


def test_tf_discriminator_with_another_geometry_is_refused(tmp_path):
    path = save_pickled_discriminator(TFDiscriminator(stride4=2), tmp_path / "d.pt")
    with pytest.raises(WeightsError, match=r"layer 'conv' has stride=\(2, 2\)"):
        load_discriminator(path)

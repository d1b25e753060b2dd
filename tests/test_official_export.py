"""`weights convert --to official`: our weights as the official pix2pix code's checkpoint files.

The official networks are defined here again, as junyanz/pytorch-CycleGAN-and-pix2pix builds them
(`UnetGenerator` of nested `UnetSkipConnectionBlock`s, `NLayerDiscriminator`, `get_norm_layer`),
independently of our classes and of our layout mapping. They are built from the options the command
prints, load the written files with strict=True, and must compute what our networks compute.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from edges2shoes_utils.apps import cli
from edges2shoes_utils.weights.exports import export_generator
from edges2shoes_utils.weights.formats import save_epoch_weights
from edges2shoes_utils.training import Networks, TrainConfig
from edges2shoes_utils.training.checkpointing import RunState, save_run
from edges2shoes_utils.weights.load import load_discriminator, load_generator
from edges2shoes_utils.weights.official_layout import to_official_discriminator, to_official_generator
from edges2shoes_utils.nets import DiscriminatorConfig, GeneratorConfig, PatchGANDiscriminator, UNetGenerator

REFERENCE = Path("/work/shared/reference/pix2pix_official_state_dict_keys.json")
if not REFERENCE.is_file():
    REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "pix2pix_official_state_dict_keys.json"

# --------------------------------------------------------------------------------------------------
# The official networks (models/networks.py of the official repository, re-written for this test).


def get_norm_layer(norm_type: str):
    if norm_type == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm_type == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    raise NotImplementedError(norm_type)


def uses_bias(norm_layer) -> bool:
    """Its convolutions carry a bias only when instance norm (which has no shift of its own) follows."""
    return getattr(norm_layer, "func", norm_layer) == nn.InstanceNorm2d


class UnetSkipConnectionBlock(nn.Module):
    """One level: down-sample, the inner levels, up-sample; its input is concatenated to its output."""

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm_layer=nn.BatchNorm2d, use_dropout=False):
        super().__init__()
        self.outermost = outermost
        bias = uses_bias(norm_layer)
        down = nn.Conv2d(outer_nc if input_nc is None else input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=bias)
        if outermost:
            up = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [down, submodule, nn.ReLU(True), up, nn.Tanh()]
        elif innermost:
            up = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            model = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True), up, norm_layer(outer_nc)]
        else:
            up = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            model = [nn.LeakyReLU(0.2, True), down, norm_layer(inner_nc), submodule, nn.ReLU(True), up, norm_layer(outer_nc)]
            if use_dropout:
                model.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """Built from the innermost block outwards: num_downs - 5 blocks at 8 * ngf with dropout, then
    the widths halve to ngf."""

    def __init__(self, input_nc, output_nc, num_downs, ngf=64, norm_layer=nn.BatchNorm2d, use_dropout=False):
        super().__init__()
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=None, norm_layer=norm_layer, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm_layer=norm_layer, use_dropout=use_dropout)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm_layer=norm_layer)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm_layer=norm_layer)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm_layer=norm_layer)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True,
                                             norm_layer=norm_layer)

    def forward(self, x):
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    def __init__(self, input_nc, ndf=64, n_layers=3, norm_layer=nn.BatchNorm2d):
        super().__init__()
        bias = uses_bias(norm_layer)
        sequence = [nn.Conv2d(input_nc, ndf, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            previous, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            sequence += [nn.Conv2d(ndf * previous, ndf * mult, kernel_size=4, stride=stride, padding=1, bias=bias),
                         norm_layer(ndf * mult), nn.LeakyReLU(0.2, True)]
        sequence.append(nn.Conv2d(ndf * mult, 1, kernel_size=4, stride=1, padding=1))
        self.model = nn.Sequential(*sequence)

    def forward(self, x):
        return self.model(x)


def official_networks(options: list[str]) -> tuple[UnetGenerator, NLayerDiscriminator | None]:
    """The networks the official `define_G` / `define_D` build from these command-line options."""
    given = {name: value for name, value in zip(options, options[1:] + [""]) if name.startswith("--")}
    flags = {name for name, value in given.items() if value.startswith("--") or not value}
    norm = get_norm_layer(given.get("--norm", "instance"))
    in_nc, out_nc = int(given.get("--input_nc", 3)), int(given.get("--output_nc", 3))
    downs = {"unet_128": 7, "unet_256": 8}[given["--netG"]]
    generator = UnetGenerator(in_nc, out_nc, downs, int(given.get("--ngf", 64)), norm, "--no_dropout" not in flags)
    if "--netD" not in given:
        return generator, None
    layers = 3 if given["--netD"] == "basic" else int(given["--n_layers_D"])
    return generator, NLayerDiscriminator(in_nc + out_nc, int(given.get("--ndf", 64)), layers, norm)


# --------------------------------------------------------------------------------------------------
# Our side: a tiny run's files with weights and statistics that all matter.


def scrambled(model: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                noise = torch.rand(tensor.shape, generator=g)
                tensor.copy_(noise + 0.5 if name.endswith("running_var") else (noise - 0.5) * 0.3)
    return model


def tiny_pair(norm: str = "batch", dropout: bool = True) -> tuple[UNetGenerator, PatchGANDiscriminator]:
    generator = UNetGenerator(GeneratorConfig(ngf=8, levels=7, norm=norm, dropout=dropout))
    return scrambled(generator, 1), scrambled(PatchGANDiscriminator(DiscriminatorConfig(ndf=8, norm=norm)), 2)


def write_run(folder: Path, kind: str, norm: str = "batch", dropout: bool = True):
    """`kind` "epoch": generator_3.pt + discriminator_3.pt; "last": a training checkpoint."""
    generator, discriminator = tiny_pair(norm, dropout)
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "epoch":
        return save_epoch_weights(folder, 3, generator, discriminator)[0], generator, discriminator
    nets = Networks(generator, discriminator, torch.optim.Adam(generator.parameters()),
                    torch.optim.Adam(discriminator.parameters()))
    return save_run(folder / "last.pt", nets, RunState(epoch=3, step=40), TrainConfig(epochs=5)), generator, discriminator


def convert(source: Path, out: Path, capsys) -> tuple[str, list[str]]:
    assert cli.main(["weights", "convert", str(source), "--to", "official", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    (line,) = [x for x in printed.splitlines() if x.startswith("the official code builds these networks with: ")]
    return printed, line.split(": ", 1)[1].split()


def strictly_loaded(network: nn.Module, path: Path) -> nn.Module:
    """As the official code loads a checkpoint: a plain state dict, every key in its place."""
    network.load_state_dict(torch.load(path, weights_only=True), strict=True)
    return network


def same_output(ours: nn.Module, theirs: nn.Module, *inputs: torch.Tensor) -> float:
    """Largest difference in eval mode; the official PatchGAN takes the pair concatenated."""
    ours.eval(), theirs.eval()
    with torch.no_grad():
        return (ours(*inputs) - theirs(torch.cat(inputs, 1))).abs().max().item()


# --------------------------------------------------------------------------------------------------
# The tests.


@pytest.mark.parametrize("kind", ["epoch", "last"])
def test_official_code_loads_the_files_strictly_and_computes_the_same(tmp_path, capsys, kind):
    source, generator, discriminator = write_run(tmp_path / "run", kind)
    printed, options = convert(source, tmp_path / "official", capsys)
    assert options == ["--netG", "unet_128", "--norm", "batch", "--ngf", "8", "--netD", "basic", "--ndf", "8"]
    assert "python test.py" in printed and "--netG unet_128 --norm batch --ngf 8" in printed
    theirs_g, theirs_d = official_networks(options)
    strictly_loaded(theirs_g, tmp_path / "official" / "latest_net_G.pth")
    strictly_loaded(theirs_d, tmp_path / "official" / "latest_net_D.pth")
    edges, photo = torch.randn(2, 3, 128, 128), torch.randn(2, 3, 128, 128)
    assert same_output(generator, theirs_g, edges) < 1e-6
    assert same_output(discriminator, theirs_d, edges, photo) < 1e-6


def test_train_mode_matches_too(tmp_path, capsys):
    """The official test.py runs the generator in train mode unless --eval: batch statistics and
    dropout at the same places, with the same random masks."""
    source, generator, _ = write_run(tmp_path / "run", "epoch")
    _, options = convert(source, tmp_path / "official", capsys)
    theirs, _ = official_networks(options)
    strictly_loaded(theirs, tmp_path / "official" / "latest_net_G.pth")
    generator.train(), theirs.train()
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        torch.manual_seed(5)
        a = generator(x.clone())
        torch.manual_seed(5)
        b = theirs(x.clone())
    assert (a - b).abs().max().item() < 1e-6


def test_instance_norm_without_dropout_prints_its_options(tmp_path, capsys):
    source, generator, discriminator = write_run(tmp_path / "run", "epoch", norm="instance", dropout=False)
    _, options = convert(source, tmp_path / "official", capsys)
    assert options[:7] == ["--netG", "unet_128", "--norm", "instance", "--ngf", "8", "--no_dropout"]
    theirs_g, theirs_d = official_networks(options)
    strictly_loaded(theirs_g, tmp_path / "official" / "latest_net_G.pth")
    strictly_loaded(theirs_d, tmp_path / "official" / "latest_net_D.pth")
    assert same_output(generator, theirs_g, torch.randn(1, 3, 128, 128)) < 1e-6


@pytest.mark.parametrize("kind", ["epoch", "last"])
def test_round_trip_is_bit_identical(tmp_path, capsys, kind):
    source, generator, discriminator = write_run(tmp_path / "run", kind)
    convert(source, tmp_path / "official", capsys)
    back_g = load_generator(tmp_path / "official" / "latest_net_G.pth")
    back_d = load_discriminator(tmp_path / "official" / "latest_net_D.pth")
    for ours, back in ((generator, back_g), (discriminator, back_d)):
        assert back.config == ours.config
        expected, got = ours.state_dict(), back.state_dict()
        assert list(got) == list(expected)
        assert all(torch.equal(got[k], expected[k]) and got[k].dtype == expected[k].dtype for k in expected)


def test_paper_size_keys_are_the_reference_list_in_order():
    reference = json.loads(REFERENCE.read_text())
    generator, discriminator = UNetGenerator(), PatchGANDiscriminator()
    g = [[k, list(v.shape)] for k, v in to_official_generator(generator, "G").items()]
    d = [[k, list(v.shape)] for k, v in to_official_discriminator(discriminator, "D").items()]
    assert g == reference["generator"]["keys"] and d == reference["discriminator"]["keys"]


def test_a_generator_alone_is_written_alone(tmp_path, capsys):
    generator, _ = tiny_pair()
    torch.save(generator.state_dict(), tmp_path / "g.pt")
    assert cli.main(["weights", "convert", str(tmp_path / "g.pt"), "--to", "official", "--out", str(tmp_path / "o")]) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["latest_net_G.pth"]
    assert "holds no discriminator" in capsys.readouterr().err


@pytest.mark.parametrize("config, words", [
    (GeneratorConfig(ngf=8, levels=6), "6 levels, and --netG offers unet_128 (7) and unet_256 (8)"),
    (GeneratorConfig(ngf=8, levels=7, norm="none"), "norm 'none'"),
    (GeneratorConfig(ngf=8, levels=7, layout="tf"), "layout is 'tf'"),
    (GeneratorConfig(ngf=8, levels=7, layout="pytorch-gan"), "layout is 'pytorch-gan'"),
])
def test_a_layout_the_official_code_cannot_build_is_one_line(tmp_path, capsys, config, words):
    export_generator(UNetGenerator(config), tmp_path / "g.safetensors")  # carries its config (a state dict could not say norm 'none')
    out = tmp_path / "o"
    assert cli.main(["weights", "convert", str(tmp_path / "g.safetensors"), "--to", "official", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "cannot build this generator" in err and str(tmp_path / "g.safetensors") in err
    assert len(err.splitlines()) == 1 and not out.exists()


def test_a_discriminator_the_official_code_cannot_build_writes_nothing(tmp_path, capsys):
    generator, _ = tiny_pair()
    discriminator = PatchGANDiscriminator(DiscriminatorConfig(ndf=8, first_bias=False))
    save_epoch_weights(tmp_path, 0, generator, discriminator)
    assert cli.main(["weights", "convert", str(tmp_path / "generator_0.pt"), "--to", "official", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "discriminator_0.pt" in err and "first convolution has no bias" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()

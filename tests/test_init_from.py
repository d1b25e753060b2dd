"""Training that starts from published weights (`--init`, `--init-generator`, `--init-discriminator`).

The weights files are built here from the test-only definitions of the official, TF-tutorial and
PyTorch-GAN networks (test_weights.py, test_huggan.py), with random weights. The first training step
must start from exactly those weights, with fresh optimisers, and the losses on that step's batch
must equal the losses the independent networks give. Tiny networks, 64x64 (256x256 for the 8-level
PyTorch-GAN U-Net at width 4), one CPU thread.
"""

from __future__ import annotations

import argparse
import copy
import json
import shlex
from pathlib import Path

import nbformat
import pytest
import torch
from torch import nn

from edges2shoes_utils.apps import cli
from edges2shoes_utils.apps import notebook_support as nbs
from edges2shoes_utils.weights import fetch
from edges2shoes_utils.weights.load import load_discriminator, load_generator
from edges2shoes_utils.data.synthetic import make_synthetic
from edges2shoes_utils.nets import PatchGANDiscriminator, discriminator_loss, generator_loss
from edges2shoes_utils.training import TrainConfig, train
from edges2shoes_utils.training.command_line import config_from_args, configure_cli
from edges2shoes_utils.training.initial_weights import init_sources
from edges2shoes_utils.util import kaggle
from edges2shoes_utils.util.errors import ConfigError, WeightsError
from edges2shoes_utils.util.seeds import seed_everything

from test_huggan import HugganUNet, fake_hub
from test_weights import Generator, OfficialPatchGAN, OfficialUnet, TFDiscriminator, randomise, save_pickled_module

pytestmark = pytest.mark.usefixtures("one_thread")  # bitwise-reproducible CPU maths (conftest.py)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("EDGES2SHOES_WEIGHTS", str(tmp_path / "cache"))
    monkeypatch.delenv("EDGES2SHOES_KAGGLE_VERSION", raising=False)
    return tmp_path / "cache"


def config(dataset: Path, out: Path, **overrides) -> TrainConfig:
    """A one-step run that leaves the architecture fields at their defaults (the weights decide)."""
    settings = dict(data=str(dataset), out=str(out), epochs=1, batch_size=2, image_size=64, max_steps=1,
                    num_workers=0, progress=False, sample_count=0, save_epoch_weights=False)
    return TrainConfig(**{**settings, **overrides})


class FirstStep:
    """A before_step hook: copies of the networks and the batch as the first step receives them."""

    def __call__(self, ctx) -> None:
        if ctx.step == 0:
            nets = ctx.networks
            self.generator, self.discriminator = copy.deepcopy(nets.generator), copy.deepcopy(nets.discriminator)
            self.edges, self.photo = ctx.edges.clone(), ctx.photo.clone()
            self.optimizer_state = (len(nets.opt_g.state), len(nets.opt_d.state))


def step_losses(generator, discriminator, edges, photo, *, train_mode: bool, seed: int = 7) -> torch.Tensor:
    """The project's losses for one batch: G adversarial, G L1, D real, D fake."""
    generator.train(train_mode), discriminator.train(train_mode)
    with torch.no_grad():
        torch.manual_seed(seed)
        fake = generator(edges.clone())
        g = generator_loss(discriminator(edges.clone(), fake), fake, photo, lambda_l1=TrainConfig().lambda_l1, mode="bce")
        d = discriminator_loss(discriminator(edges.clone(), photo.clone()), discriminator(edges.clone(), fake), mode="bce")
    return torch.stack([g.adversarial, g.l1, d.real, d.fake])


def assert_starts_from(first: FirstStep, theirs_g: nn.Module, theirs_d) -> None:
    assert first.optimizer_state == (0, 0)  # fresh optimisers: no Adam moments yet
    for train_mode in (False, True):  # train mode: batch statistics, and dropout from the same seed
        ours = step_losses(first.generator, first.discriminator, first.edges, first.photo, train_mode=train_mode)
        reference = step_losses(theirs_g, theirs_d, first.edges, first.photo, train_mode=train_mode)
        assert torch.allclose(ours, reference, rtol=1e-5, atol=1e-6), (train_mode, ours, reference)


class PairInput(nn.Module):
    """The official PatchGAN takes concat(edges, photo); ours and the loss code pass the pair."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, edges: torch.Tensor, photo: torch.Tensor) -> torch.Tensor:
        return self.network(torch.cat([edges, photo], 1))


def same_tensors(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k].to(sa[k].device)) for k in sa)


# --------------------------------------------------------------------------------------------------
# Files in the official layout.


@pytest.fixture(scope="module")
def official_files(tmp_path_factory) -> tuple[Path, Path, OfficialUnet, PairInput]:
    folder = tmp_path_factory.mktemp("official")
    g = randomise(OfficialUnet(num_downs=6, ngf=8), seed=31)
    d = randomise(OfficialPatchGAN(ndf=8), seed=32)
    torch.save(g.state_dict(), folder / "latest_net_G.pth")
    torch.save(d.state_dict(), folder / "latest_net_D.pth")
    return folder / "latest_net_G.pth", folder / "latest_net_D.pth", g, PairInput(d)


def test_first_step_starts_from_official_files(dataset, tmp_path, official_files):
    g_file, d_file, theirs_g, theirs_d = official_files
    first = FirstStep()
    result = train(config(dataset, tmp_path / "run", init_generator=str(g_file), init_discriminator=str(d_file)),
                   before_step=[first])
    assert same_tensors(first.generator, load_generator(g_file)) and same_tensors(first.discriminator, load_discriminator(d_file))
    assert_starts_from(first, theirs_g, theirs_d)
    recorded = json.loads((result.run_dir / "config.json").read_text())
    assert (recorded["init_generator"], recorded["init_discriminator"], recorded["init"]) == (str(g_file), str(d_file), None)
    assert (recorded["ngf"], recorded["ndf"], recorded["norm"]) == (8, 8, "batch")
    assert TrainConfig.from_dict(recorded).resolved_levels() == 6


def test_conflicting_architecture_flags_are_refused(dataset, tmp_path, official_files, capsys):
    g_file = official_files[0]
    with pytest.raises(ConfigError, match=r"--ngf 16 \(the generator weights have 8\).*comes from the weights"):
        train(config(dataset, tmp_path / "a", init_generator=str(g_file), ngf=16))
    with pytest.raises(ConfigError, match=r"--norm instance \(the generator weights have batch\)"):
        train(config(dataset, tmp_path / "b", init_generator=str(g_file), norm="instance"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    # On the command line a flag given is set on purpose even when it equals the default.
    argv = ["train", "--data", str(dataset), "--out", str(tmp_path / "c"), "--image-size", "64",
            "--init-generator", str(g_file), "--ngf", "64"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "--ngf 64 (the generator weights have 8)" in err and "Traceback" not in err


def test_weights_deeper_than_the_image_allows_are_refused(dataset, tmp_path, cache, monkeypatch):
    made = tmp_path / "made" / "pytorch_model.bin"
    made.parent.mkdir()
    torch.save(HugganUNet(w=4).state_dict(), made)
    monkeypatch.setattr(fetch, "hub_download", fake_hub({"pytorch_model.bin": made}, []))
    with pytest.raises(ConfigError, match="8 levels: --image-size must be a multiple of 256, got 64"):
        train(config(dataset, tmp_path / "run", init="huggan"))


# --------------------------------------------------------------------------------------------------
# The original notebook's files (TF-tutorial layout) as the "kaggle" source.


@pytest.fixture
def kaggle_files(tmp_path, cache, monkeypatch) -> tuple[Generator, TFDiscriminator]:
    """generator_9.pt and discriminator_9.pt of the TF-tutorial port, served by a kagglehub stand-in."""
    g = randomise(Generator(ngf=8, levels=6, slope=0.3), seed=41)
    d = randomise(TFDiscriminator(ndf=8, slope=0.3), seed=42)
    folder = tmp_path / "kagglehub" / "versions" / "2"
    folder.mkdir(parents=True)
    torch.save(g.state_dict(), folder / "generator_9.pt")
    torch.save(d.state_dict(), folder / "discriminator_9.pt")
    monkeypatch.setattr(kaggle, "downloader", lambda kind, purpose, error: lambda handle, path=None: str(folder / path))
    return g, d


def test_init_kaggle_starts_both_networks_from_the_original_files(dataset, tmp_path, kaggle_files):
    theirs_g, theirs_d = kaggle_files
    first = FirstStep()
    result = train(config(dataset, tmp_path / "run", init="kaggle"), before_step=[first])
    assert (first.generator.config.layout, first.generator.config.leaky_slope) == ("tf", 0.3)
    assert (first.discriminator.config.first_bias, first.discriminator.config.leaky_slope) == (False, 0.3)
    assert_starts_from(first, theirs_g, theirs_d)
    recorded = json.loads((result.run_dir / "config.json").read_text())
    assert (recorded["init"], recorded["init_generator"], recorded["ngf"], recorded["ndf"]) == ("kaggle", None, 8, 8)


def test_a_pickled_notebook_module_brings_its_batch_norm_epsilon(dataset, tmp_path):
    theirs = randomise(Generator(ngf=8, levels=6, slope=0.25, eps=1e-3), seed=43)
    path = save_pickled_module(theirs, tmp_path / "generator.pt")
    first = FirstStep()
    result = train(config(dataset, tmp_path / "run", init_generator=str(path), ndf=8), before_step=[first])
    norms = [m for net in (first.generator, first.discriminator) for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and {m.eps for m in norms} == {1e-3}  # the fresh D takes the run's epsilon too
    assert first.generator.config.leaky_slope == 0.25
    assert json.loads((result.run_dir / "config.json").read_text())["bn_eps"] == 1e-3
    assert_starts_from(first, theirs, first.discriminator)
    resumed = train(TrainConfig.from_run(result.run_dir, max_steps=2))  # last.pt cannot hold the epsilon
    assert {m.eps for m in resumed.generator.modules() if isinstance(m, nn.BatchNorm2d)} == {1e-3}


def test_a_run_from_published_weights_resumes_with_their_layout(dataset, tmp_path, kaggle_files):
    run = tmp_path / "run"
    stopped = train(config(dataset, run, init="kaggle", max_steps=1))
    assert stopped.steps == 1
    resumed = train(TrainConfig.from_run(run, max_steps=2))
    assert resumed.steps == 2 and resumed.generator.config.layout == "tf"
    assert resumed.discriminator.config.first_bias is False
    with pytest.raises(ConfigError, match="cannot start from other weights: --init huggan"):
        train(TrainConfig.from_run(run, init="huggan", max_steps=3))


def test_a_plain_run_cannot_switch_to_published_weights_on_resume(dataset, tmp_path, official_files):
    run = tmp_path / "run"
    train(config(dataset, run, ngf=8, ndf=8))
    with pytest.raises(ConfigError, match="cannot start from other weights: --init-generator .*latest_net_G.pth"):
        train(TrainConfig.from_run(run, init_generator=str(official_files[0]), max_steps=2))


# --------------------------------------------------------------------------------------------------
# Generator-only sources.


def test_huggan_starts_g_and_a_fresh_instance_norm_d(tmp_path, cache, monkeypatch):
    theirs = randomise(HugganUNet(w=4), seed=51)
    made = tmp_path / "made" / "pytorch_model.bin"
    made.parent.mkdir()
    torch.save(theirs.state_dict(), made)
    monkeypatch.setattr(fetch, "hub_download", fake_hub({"pytorch_model.bin": made}, []))
    data = make_synthetic(tmp_path / "shoes256", n=2, size=256, seed=0, n_val=1)
    first = FirstStep()
    result = train(config(data, tmp_path / "run", init="huggan", image_size=256, ndf=8), before_step=[first])
    assert (first.generator.config.layout, first.generator.config.norm) == ("pytorch-gan", "instance")
    seed_everything(0)  # the run's seed: D is the first network drawn from it
    assert same_tensors(first.discriminator, PatchGANDiscriminator(ndf=8, norm="instance"))
    assert_starts_from(first, theirs, first.discriminator)
    recorded = json.loads((result.run_dir / "config.json").read_text())
    assert (recorded["init"], recorded["norm"], recorded["ngf"], recorded["levels"]) == ("huggan", "instance", 4, None)


@pytest.mark.parametrize("source", ["pix2pix-official", "huggan"])
def test_init_from_a_generator_only_source_leaves_d_fresh(source):
    assert init_sources(TrainConfig(init=source)) == (source, None)
    assert init_sources(TrainConfig(init="kaggle")) == ("kaggle", "kaggle")
    assert init_sources(TrainConfig(init="kaggle", init_discriminator="d.pt")) == ("kaggle", "d.pt")


def test_a_discriminator_from_a_generator_only_source_is_refused(dataset, tmp_path):
    with pytest.raises(WeightsError, match="generators only, no discriminator"):
        train(config(dataset, tmp_path / "run", init_discriminator="pix2pix-official"))


# --------------------------------------------------------------------------------------------------
# Front doors: the command line and the Kaggle notebook.


def test_init_flags_reach_the_config_and_survive_the_torchrun_command():
    parser = argparse.ArgumentParser()
    configure_cli(parser)
    given = config_from_args(parser.parse_args(["--init", "kaggle", "--init-discriminator", "d.pt", "--bn-eps", "0.001"]))
    assert (given.init, given.init_generator, given.init_discriminator, given.bn_eps) == ("kaggle", None, "d.pt", 0.001)
    command = shlex.split(nbs.torchrun_command(given))
    again = config_from_args(parser.parse_args(command[command.index("train") + 1:]))
    assert again == given


def test_the_kaggle_notebook_passes_init_from_to_the_config():
    notebook = nbformat.read(Path(__file__).resolve().parents[1] / "notebooks" / "train_kaggle.ipynb", as_version=4)
    (parameters,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    namespace: dict = {}
    exec(parameters.source, namespace)  # the parameters cell is plain assignments
    assert namespace["INIT_FROM"] is None
    setup = next(c for c in notebook.cells if c.cell_type == "code" and "params = {" in c.source)
    assert '"init": INIT_FROM,' in setup.source
    params = {"epochs": 1, "out": "unused", "init": "pix2pix-official"}
    config, resumed = nbs.train_config(params)
    assert not resumed and init_sources(config) == ("pix2pix-official", None)

"""The `huggan/pix2pix-edge2shoes` generator: PyTorch-GAN's `GeneratorUNet` read into our
`UNetGenerator(layout="pytorch-gan")`, and the "huggan" source fetched through huggingface_hub.

The foreign network is re-stated here from its published description (a test-only definition, not
our classes) at the real depth with a narrow width; its state dict must load through
`load_generator` and compute the same outputs, in eval mode and in train mode with the same dropout
seed. Fetching uses a folder laid out like the Hub cache, or an injected downloader: nothing here
touches the network."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from edges2shoes_utils.apps import cli
from edges2shoes_utils.weights.fetch import HUGGAN_REPO, fetch_weights
from edges2shoes_utils.weights.load import load_discriminator, load_generator, read_weights
from edges2shoes_utils.inference.sketch2shoe import Sketch2Shoe
from edges2shoes_utils.nets import UNetGenerator, count_parameters
from edges2shoes_utils.util.errors import WeightsError

from test_weights import notebook_main, randomise

COMMIT = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c"
HUB_FOLDER = "models--" + HUGGAN_REPO.replace("/", "--")

# --------------------------------------------------------------------------------------------------
# PyTorch-GAN's pix2pix generator, re-stated for the test: 8 down blocks, 7 up blocks and an
# upsample + pad + conv head, with `w` in place of its fixed width 64.


class HDown(nn.Module):
    def __init__(self, cin, cout, norm=True, drop=False):
        super().__init__()
        layers = [nn.Conv2d(cin, cout, 4, 2, 1, bias=False)]
        layers += [nn.InstanceNorm2d(cout)] if norm else []
        layers += [nn.LeakyReLU(0.2)]
        layers += [nn.Dropout(0.5)] if drop else []
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class HUp(nn.Module):
    def __init__(self, cin, cout, drop=False):
        super().__init__()
        layers = [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.InstanceNorm2d(cout), nn.ReLU(inplace=True)]
        layers += [nn.Dropout(0.5)] if drop else []
        self.model = nn.Sequential(*layers)

    def forward(self, x, skip):
        return torch.cat((self.model(x), skip), 1)


class HugganUNet(nn.Module):
    def __init__(self, w=64, cin=3, cout=3):
        super().__init__()
        self.down1 = HDown(cin, w, norm=False)
        self.down2 = HDown(w, 2 * w)
        self.down3 = HDown(2 * w, 4 * w)
        self.down4 = HDown(4 * w, 8 * w, drop=True)
        self.down5 = HDown(8 * w, 8 * w, drop=True)
        self.down6 = HDown(8 * w, 8 * w, drop=True)
        self.down7 = HDown(8 * w, 8 * w, drop=True)
        self.down8 = HDown(8 * w, 8 * w, norm=False, drop=True)
        self.up1 = HUp(8 * w, 8 * w, drop=True)
        self.up2 = HUp(16 * w, 8 * w, drop=True)
        self.up3 = HUp(16 * w, 8 * w, drop=True)
        self.up4 = HUp(16 * w, 8 * w, drop=True)
        self.up5 = HUp(16 * w, 4 * w)
        self.up6 = HUp(8 * w, 2 * w)
        self.up7 = HUp(4 * w, w)
        self.final = nn.Sequential(nn.Upsample(scale_factor=2), nn.ZeroPad2d((1, 0, 1, 0)),
                                   nn.Conv2d(2 * w, cout, 4, padding=1), nn.Tanh())

    def forward(self, x):
        d = [x]
        for k in range(1, 9):
            d.append(getattr(self, f"down{k}")(d[-1]))
        u = self.up1(d[8], d[7])
        for k in range(2, 8):
            u = getattr(self, f"up{k}")(u, d[8 - k])
        return self.final(u)


def saved_huggan(folder: Path, seed: int = 3, w: int = 4) -> tuple[HugganUNet, Path]:
    model = randomise(HugganUNet(w=w), seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    return model, folder / "pytorch_model.bin"


def batch(seed: int = 1, n: int = 2, size: int = 256) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def max_difference(ours: nn.Module, theirs: nn.Module, x: torch.Tensor, *, train: bool, seed: int = 0) -> float:
    ours.train(train), theirs.train(train)
    with torch.no_grad():
        torch.manual_seed(seed)
        mine = ours(x.clone())
        torch.manual_seed(seed)
        reference = theirs(x.clone())
    return (mine - reference).abs().max().item()


# --------------------------------------------------------------------------------------------------
# The layout.


def test_the_published_architecture_has_its_published_size():
    """At the original width both definitions have the Hub file's 54.4M parameters (218 MB in fp32),
    and the test's tensor names and shapes are what our reader expects."""
    with torch.device("meta"):
        theirs = HugganUNet(w=64)
        ours = UNetGenerator(layout="pytorch-gan", norm="instance")
    assert count_parameters(theirs) == count_parameters(ours) == 54_404_099
    assert list(theirs.state_dict())[:2] == ["down1.model.0.weight", "down2.model.0.weight"]
    assert theirs.state_dict()["final.2.weight"].shape == ours.state_dict()["decoder.0.conv.weight"].shape


def test_state_dict_loads_and_matches_in_eval_mode(tmp_path):
    theirs, path = saved_huggan(tmp_path)
    loaded = read_weights(path)
    assert loaded.layout == "PyTorch-GAN U-Net (huggan)"
    assert (loaded.config.layout, loaded.config.norm, loaded.config.levels, loaded.config.ngf) == ("pytorch-gan", "instance", 8, 4)
    assert any("dropout" in note for note in loaded.notes)
    assert max_difference(loaded.model, theirs, batch(), train=False) < 1e-5


def test_train_mode_matches_with_the_same_dropout_seed(tmp_path):
    """Dropout sits in the same places and draws in the same order (encoder, then decoder from the
    bottleneck out), so the same seed gives the same masks; another seed changes the output."""
    theirs, path = saved_huggan(tmp_path)
    ours = load_generator(path)
    x = batch(seed=5)
    assert max_difference(ours, theirs, x, train=True, seed=11) < 1e-5
    ours.train()
    with torch.no_grad():
        torch.manual_seed(11)
        first = ours(x.clone())
        torch.manual_seed(12)
        second = ours(x.clone())
    assert (first - second).abs().max().item() > 1e-3  # dropout is really on: the check above can fail


def test_without_dropout_train_mode_equals_eval_mode(tmp_path):
    _, path = saved_huggan(tmp_path)
    ours = load_generator(path, dropout=False)
    x = batch(seed=2, n=1)
    ours.train()
    with torch.no_grad():
        trained = ours(x)
        ours.eval()
        assert (trained - ours(x)).abs().max().item() == 0.0  # instance norm has no running statistics


def test_pickled_whole_module_loads(tmp_path):
    theirs = randomise(HugganUNet(w=4), seed=4)
    with notebook_main(HugganUNet, HDown, HUp), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(theirs, tmp_path / "generator.pth")
    loaded = read_weights(tmp_path / "generator.pth")
    assert loaded.container == "pickled module" and loaded.config.layout == "pytorch-gan"
    assert max_difference(loaded.model, theirs, batch(seed=3, n=1), train=False) < 1e-5


def test_wrong_shape_and_unknown_tensor_name_the_tensor(tmp_path):
    state = HugganUNet(w=4).state_dict()
    state["up3.model.0.weight"] = torch.zeros(64, 16, 4, 4)
    torch.save(state, tmp_path / "shape.bin")
    with pytest.raises(WeightsError, match=r"shape.bin: tensor 'up3.model.0.weight' has shape \(64, 16, 4, 4\)"):
        load_generator(tmp_path / "shape.bin")
    state = HugganUNet(w=4).state_dict()
    state["down2.model.1.weight"] = torch.ones(8)  # an affine instance norm: not PyTorch-GAN's
    torch.save(state, tmp_path / "affine.bin")
    with pytest.raises(WeightsError, match="tensor 'down2.model.1.weight' does not fit the PyTorch-GAN U-Net"):
        load_generator(tmp_path / "affine.bin")
    state = HugganUNet(w=4).state_dict()
    del state["up4.model.0.weight"]
    torch.save(state, tmp_path / "missing.bin")
    with pytest.raises(WeightsError, match="8 down blocks but no 'up4.model.0.weight'"):
        load_generator(tmp_path / "missing.bin")


def test_both_test_time_paths_of_sketch2shoe_agree(tmp_path):
    """The inference runner (layers swapped for inference versions, dropout seeded per image) takes
    the new blocks: upsample, pad, instance norm and encoder dropout."""
    theirs, path = saved_huggan(tmp_path)
    x = batch(seed=6, n=2)
    for mode in ("eval", "train"):
        plain = Sketch2Shoe(load_generator(path), mode=mode, fast=False).runner.run(x, seeds=[1, 2])
        fast = Sketch2Shoe(load_generator(path), mode=mode, fast=True, precision="fp32").runner.run(x, seeds=[1, 2])
        assert (plain - fast).abs().max().item() < 1e-4, mode
    with torch.no_grad():
        assert (Sketch2Shoe(load_generator(path), mode="eval", fast=False).runner.run(x) - theirs.eval()(x)).abs().max() < 1e-5


# --------------------------------------------------------------------------------------------------
# The "huggan" source.


def hub_cache(root: Path, files: dict[str, bytes], commit: str = COMMIT) -> Path:
    """A folder laid out like huggingface_hub's cache, holding `files` at `commit` (= refs/main)."""
    repo = root / HUB_FOLDER
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    for name, data in files.items():
        (repo / "snapshots" / commit).mkdir(parents=True, exist_ok=True)
        (repo / "snapshots" / commit / name).write_bytes(data)
    return root


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """The real huggingface_hub, offline, reading the cache folder the test lays out."""
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("EDGES2SHOES_HUGGAN_REVISION", raising=False)
    return tmp_path / "hub"


def test_huggan_from_the_hub_cache_offline_pins_the_commit(tmp_path, offline_hub):
    theirs, path = saved_huggan(tmp_path / "made")
    hub_cache(offline_hub, {"pytorch_model.bin": path.read_bytes()})
    ours = load_generator("huggan", cache_dir=tmp_path / "cache")
    assert max_difference(ours, theirs, batch(), train=False) < 1e-5
    pin = tmp_path / "cache" / "huggan" / "huggan__pix2pix-edge2shoes.revision"
    assert pin.read_text().strip() == COMMIT
    # Pinned: later fetches ask for that commit, which the cache still serves after main moves on.
    (offline_hub / HUB_FOLDER / "refs" / "main").write_text("f" * 40)
    assert fetch_weights("huggan", cache_dir=tmp_path / "cache").parent.name == COMMIT


def test_huggan_offline_without_a_cached_copy_is_one_clear_error(tmp_path, offline_hub):
    with pytest.raises(WeightsError) as caught:
        load_generator("huggan", cache_dir=tmp_path / "cache")
    message = str(caught.value)
    for words in ("huggan", HUGGAN_REPO, "HF_HUB_OFFLINE", "pytorch_model.bin", "huggingface.co/huggan/pix2pix-edge2shoes"):
        assert words in message, words
    assert "\n" not in message


def test_cli_generate_offline_without_the_file_exits_2(tmp_path, offline_hub, capsys, monkeypatch):
    monkeypatch.setenv("EDGES2SHOES_WEIGHTS", str(tmp_path / "cache"))
    sketch = tmp_path / "sketch.png"
    from PIL import Image
    Image.new("RGB", (64, 64), "white").save(sketch)
    assert cli.main(["generate", str(sketch), "--weights", "huggan", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "huggan" in err and "HF_HUB_OFFLINE" in err and "Traceback" not in err


def fake_hub(files: dict[str, Path], calls: list):
    """Like fetch.hub_download: (repo_id, filename, revision=None) -> a path in a snapshot folder."""

    def download(repo_id: str, filename: str, *, revision: str | None = None) -> str:
        calls.append((repo_id, filename, revision))
        if filename not in files:
            raise FileNotFoundError(f"404: {filename} is not in {repo_id}")
        return str(files[filename])

    return download


def test_a_repository_holding_safetensors_instead_is_read(tmp_path):
    theirs = randomise(HugganUNet(w=4), seed=8)
    snapshot = tmp_path / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    save_file(theirs.state_dict(), str(snapshot / "model.safetensors"))
    calls: list = []
    download = fake_hub({"model.safetensors": snapshot / "model.safetensors"}, calls)
    ours = load_generator("huggan", cache_dir=tmp_path / "cache", downloader=download)
    assert [c[1] for c in calls] == ["pytorch_model.bin", "model.safetensors"]
    assert calls[0] == (HUGGAN_REPO, "pytorch_model.bin", None)
    assert max_difference(ours, theirs, batch(n=1), train=False) < 1e-5
    fetch_weights("huggan", cache_dir=tmp_path / "cache", downloader=download)
    assert calls[-2] == (HUGGAN_REPO, "pytorch_model.bin", COMMIT)  # the commit recorded at the first fetch


def test_revision_pinned_by_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGES2SHOES_HUGGAN_REVISION", "abc123")
    calls: list = []
    (tmp_path / "g.bin").write_bytes(b"x")
    fetch_weights("huggan", cache_dir=tmp_path, downloader=fake_hub({"pytorch_model.bin": tmp_path / "g.bin"}, calls))
    assert calls == [(HUGGAN_REPO, "pytorch_model.bin", "abc123")]


def test_network_failure_is_one_clear_error(tmp_path):
    def unreachable(repo_id, filename, *, revision=None):
        raise ConnectionError("Name or service not known")

    with pytest.raises(WeightsError, match=r"huggan: could not fetch pytorch_model.bin of huggan/pix2pix-edge2shoes "
                                           r"\(ConnectionError: Name or service not known\)\. Or download"):
        fetch_weights("huggan", cache_dir=tmp_path, downloader=unreachable)


def test_no_discriminator_is_published(tmp_path):
    with pytest.raises(WeightsError, match="publishes a generator only, no discriminator"):
        load_discriminator("huggan", cache_dir=tmp_path)


def test_without_huggingface_hub_the_message_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # makes `import huggingface_hub` fail
    with pytest.raises(WeightsError, match="huggan: .*needs huggingface_hub: pip install"):
        fetch_weights("huggan", cache_dir=tmp_path)


def test_huggingface_hub_is_imported_lazily():
    code = "import sys, edges2shoes_utils.weights.load; print('huggingface_hub' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("command", [["generate"], ["evaluate"], ["weights", "fetch"], ["weights", "info"]])
def test_weights_choices_name_huggan(command, capsys):
    with pytest.raises(SystemExit):
        cli.main([*command, "--help"])
    assert "huggan" in capsys.readouterr().out

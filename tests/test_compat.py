"""Files written by edges2shoes 0.1.0 (before the stage-folder layout) still load and resume.

tests/fixtures/v0_1_0/ was written by the 0.1.0 code: one epoch of a tiny model (ngf 4, 64x64) on
`make_synthetic(n=4, n_val=2, size=64, seed=0)`, then the epoch file exported to safetensors, and
the eval-mode output of that generator on a fixed random input.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import edges2shoes_utils as e2s

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "v0_1_0"
TINY = dict(image_size=64, ngf=4, ndf=4, batch_size=2, num_workers=0, progress=False, sample_count=0, device="cpu")


@pytest.fixture(scope="module")
def expected() -> dict:
    return torch.load(FIXTURES / "expected_output.pt", weights_only=True)


@pytest.mark.parametrize("name", ["generator_0.pt", "generator.safetensors", "last.pt"])
def test_old_weights_give_the_same_output(name, expected):
    generator = e2s.load_generator(FIXTURES / name).eval()
    with torch.no_grad():
        assert torch.equal(generator(expected["x"]), expected["y"])


def test_old_discriminator_epoch_file_loads():
    discriminator = e2s.load_discriminator(FIXTURES / "discriminator_0.pt")
    assert discriminator(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 64)).shape == (1, 1, 6, 6)


@pytest.fixture
def two_threads():
    """The fixture's first epoch ran with 2 torch threads; float sums depend on the thread count, so
    the never-stopped twin must use 2 as well, whatever this machine's default."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_old_last_pt_resumes_like_a_run_that_never_stopped(tmp_path, two_threads):
    data = tmp_path / "data"
    e2s.make_synthetic(data, n=4, n_val=2, size=64, seed=0)
    old_run = tmp_path / "old"
    shutil.copytree(FIXTURES, old_run)
    resumed = e2s.train(e2s.TrainConfig(data=str(data), out=str(old_run), resume=str(old_run), epochs=2, **TINY))
    fresh = e2s.train(e2s.TrainConfig(data=str(data), out=str(tmp_path / "fresh"), epochs=2, **TINY))
    assert resumed.epochs_completed == fresh.epochs_completed == 2
    for a, b in zip(resumed.generator.state_dict().values(), fresh.generator.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(resumed.discriminator.state_dict().values(), fresh.discriminator.state_dict().values()):
        assert torch.equal(a, b)


def test_config_json_keeps_the_0_1_0_types(tmp_path):
    """config.json written today has the same keys and JSON types as 0.1.0's (bools stay bools)."""
    data = tmp_path / "data"
    e2s.make_synthetic(data, n=4, n_val=2, size=64, seed=0)
    e2s.train(e2s.TrainConfig(data=str(data), out=str(tmp_path / "run"), epochs=1, **TINY))
    old = json.loads((FIXTURES / "config.json").read_text())
    new = json.loads((tmp_path / "run" / "config.json").read_text())
    assert set(old) <= set(new)
    assert {k: type(v) for k, v in old.items()} == {k: type(new[k]) for k in old}

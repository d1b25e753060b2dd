"""One test-time generation: the epoch sample grid shows exactly what `generate` gives for the same
pairs and seeds, and no image's output depends on the others in its batch."""

from __future__ import annotations

import pytest
import torch

from edges2shoes_utils.inference.sketch2shoe import Sketch2Shoe
from edges2shoes_utils.nets.runner import plain_runner
from edges2shoes_utils.training.run_log import sample_grid_images
from edges2shoes_utils.util.seeds import image_seed
from inference_support import edge_batch, tiny_generator


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_sample_grid_equals_generate_for_the_same_seeds(mode):
    generator = tiny_generator().train()  # as during training
    edges, photos = edge_batch(4, 64, seed=2), edge_batch(4, 64, seed=3)
    state = {k: v.clone() for k, v in generator.state_dict().items()}
    rng = torch.get_rng_state()
    grid = sample_grid_images(generator, edges, photos, mode=mode, seed=7, device=torch.device("cpu"))
    assert torch.equal(torch.get_rng_state(), rng)  # training's random stream is untouched
    assert all(torch.equal(v, state[k]) for k, v in generator.state_dict().items())
    assert generator.training
    seeds = [image_seed(7, i) for i in range(4)]
    expected = Sketch2Shoe(generator, mode=mode, fast=False).generate_batch(edges, seeds)
    assert torch.equal(torch.stack(grid["Generated"]), expected)
    fast = Sketch2Shoe(generator, mode=mode, precision="fp32").generate_batch(edges, seeds)
    torch.testing.assert_close(torch.stack(grid["Generated"]), fast, atol=2e-5, rtol=0)
    assert [torch.equal(a, b) for a, b in zip(grid["Input"], edges)] == [True] * 4


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_an_image_does_not_depend_on_the_rest_of_its_batch(mode):
    runner = plain_runner(tiny_generator(), mode)
    batch = edge_batch(3, 64, seed=4)
    seeds = [11, 12, 13] if mode == "train" else None
    together = runner.run(batch, seeds)
    other = torch.cat([batch[:1], edge_batch(2, 64, seed=9)])  # same first image, different neighbours
    with_others = runner.run(other, [11, 99, 98] if mode == "train" else None)
    alone = runner.run(batch[:1], [11] if mode == "train" else None)
    # Equal up to float rounding (a batch of 3 may take other convolution kernels than a batch of 1);
    # statistics shared across the batch would move every pixel by far more.
    torch.testing.assert_close(together[:1], alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(with_others[:1], alone, atol=1e-5, rtol=0)
    assert (together[1:2] - with_others[1:2]).abs().max() > 0.01

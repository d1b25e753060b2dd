"""Inputs for the notebooks' smoke mode (CI): a synthetic set and tiny trained generators, made on
the spot in seconds, with no download."""

from __future__ import annotations

from pathlib import Path

import torch

from ..checkpoints import export_generator, save_epoch_weights
from ..data.pairs import PairsDataset
from ..data.synthetic import make_synthetic
from ..nets import PatchGANDiscriminator, UNetGenerator


def smoke_inputs(folder: str | Path, *, size: int = 64, n_train: int = 8, n_val: int = 4, epochs: int = 3) -> tuple[Path, list[str]]:
    """Everything the evaluation notebook needs in smoke mode: a synthetic set, a 'run' folder of
    tiny per-epoch generators (a few L1 steps apart, so the per-epoch curve has something to show)
    and one exported generator. Returns (data root, sources).
    """
    folder = Path(folder)
    root = make_synthetic(folder / "data", n=n_train, size=size, seed=0, n_val=n_val)
    train = PairsDataset(root, split="train", image_size=size, jitter=False)
    edges = torch.stack([train[i][0] for i in range(len(train))])
    photos = torch.stack([train[i][1] for i in range(len(train))])
    torch.manual_seed(0)
    levels = max(2, size.bit_length() - 1)  # 64 -> 6 levels, 256 -> 8
    generator = UNetGenerator(ngf=8, levels=levels)
    optimizer = torch.optim.Adam(generator.parameters(), lr=2e-3, betas=(0.5, 0.999))
    run = folder / "run"
    for epoch in range(epochs):
        for _ in range(5):
            optimizer.zero_grad()
            (generator(edges) - photos).abs().mean().backward()
            optimizer.step()
        save_epoch_weights(run, epoch, generator, PatchGANDiscriminator(ndf=8))
    exported = export_generator(generator, folder / "exported.safetensors")
    return root, [str(run), str(exported)]

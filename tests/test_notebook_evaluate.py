"""The evaluation notebook runs end to end on a synthetic set and tiny generators made on the spot
(injected as its parameters), and shows its tables and pictures."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import torch

from edges2shoes_utils.weights import export_generator, save_epoch_weights
from edges2shoes_utils.data.pairs import PairsDataset
from edges2shoes_utils.data.synthetic import make_synthetic
from edges2shoes_utils.nets import PatchGANDiscriminator, UNetGenerator
from notebook_runner import assert_stripped, cells_tagged, output_mimetypes, output_text, run_notebook

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "evaluate.ipynb"


def evaluation_inputs(folder: str | Path, *, size: int = 64, n_train: int = 8, n_val: int = 4,
                      epochs: int = 3) -> tuple[Path, list[str]]:
    """Everything the evaluation notebook needs for a tiny run: a synthetic set, a 'run' folder of
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


def test_notebook_is_committed_clean_with_install_skipped_and_parameters_tagged():
    assert_stripped(NOTEBOOK)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    installs = [c for c in nb.cells if c.cell_type == "code" and "pip install" in c.source]
    assert installs and all(c in cells_tagged(nb, "skip-execution") for c in installs)
    (parameters,) = cells_tagged(nb, "parameters")
    for name in ("WEIGHTS", "DATA_ROOT", "N_IMAGES", "MODE"):
        assert f"{name} =" in parameters.source


def test_notebook_runs_with_tiny_inputs(tmp_path):
    data, weights = evaluation_inputs(tmp_path / "inputs")
    report = tmp_path / "evaluation"
    parameters = {"WEIGHTS": weights, "DATA_ROOT": str(data), "IMAGE_SIZE": 64, "DOWNLOAD_BACKBONES": False,
                  "OUT": str(report)}
    nb = run_notebook(NOTEBOOK, parameters, timeout=240)
    text = output_text(nb)
    assert "4 weights on 4 images" in text and "test-time mode eval, seed 0" in text
    assert "generator_0" in text and "exported" in text  # the run's epochs and the exported file
    kinds = output_mimetypes(nb)
    assert "text/html" in kinds  # the comparison table
    assert kinds.count("image/png") >= 4  # curves, side by side, grid, best, worst
    document = json.loads((report / "metrics.json").read_text())
    assert [r["name"] for r in document["results"]] == ["generator_0", "generator_1", "generator_2", "exported"]
    assert (report / "index.html").is_file() and (report / "pictures" / "curve_l1.png").is_file()
    # the tiny generators train a little between epochs: the curve goes down
    l1 = [r["summary"]["l1"] for r in document["results"][:3]]
    assert l1[-1] < l1[0]

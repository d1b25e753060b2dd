"""The evaluation notebook runs end to end in smoke mode and shows its tables and pictures."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from notebook_runner import assert_stripped, cells_tagged, output_mimetypes, output_text, run_notebook

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "evaluate.ipynb"


def test_notebook_is_committed_clean_with_install_skipped_and_parameters_tagged():
    assert_stripped(NOTEBOOK)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    installs = [c for c in nb.cells if c.cell_type == "code" and "pip install" in c.source]
    assert installs and all(c in cells_tagged(nb, "skip-execution") for c in installs)
    (parameters,) = cells_tagged(nb, "parameters")
    for name in ("WEIGHTS", "DATA_ROOT", "N_IMAGES", "MODE"):
        assert f"{name} =" in parameters.source


def test_notebook_runs_in_smoke_mode(tmp_path):
    pytest.importorskip("edges2shoes_utils.data.pairs")
    nb = run_notebook(NOTEBOOK, env={"EDGES2SHOES_OUTPUT": str(tmp_path)}, timeout=240)
    text = output_text(nb)
    assert "smoke mode" in text and "test-time mode eval, seed 0" in text
    assert "generator_0" in text and "exported" in text  # the run's epochs and the exported file
    kinds = output_mimetypes(nb)
    assert "text/html" in kinds  # the comparison table
    assert kinds.count("image/png") >= 4  # curves, side by side, grid, best, worst
    report = tmp_path / "evaluation"
    document = json.loads((report / "metrics.json").read_text())
    assert [r["name"] for r in document["results"]] == ["generator_0", "generator_1", "generator_2", "exported"]
    assert (report / "index.html").is_file() and (report / "pictures" / "curve_l1.png").is_file()
    # the tiny generators train a little between epochs: the curve goes down
    l1 = [r["summary"]["l1"] for r in document["results"][:3]]
    assert l1[-1] < l1[0]

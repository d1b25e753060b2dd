"""The Colab sketch notebook runs end to end in smoke mode (tiny weights made on the spot)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from notebook_runner import assert_stripped, cells_tagged, output_mimetypes, run_notebook

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "colab_sketch_to_shoe.ipynb"


def test_notebook_is_committed_stripped():
    assert_stripped(NOTEBOOK)


def test_install_and_colab_only_cells_are_skipped_in_ci():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    skipped = "\n".join(cell.source for cell in cells_tagged(notebook, "skip-execution"))
    assert "pip install" in skipped and "upload_with_colab" in skipped


def test_notebook_runs_in_smoke_mode(tmp_path):
    executed = run_notebook(NOTEBOOK, env={"EDGES2SHOES_OUTPUT": str(tmp_path)})
    kinds = output_mimetypes(executed)
    assert "image/png" in kinds  # the sample sketches' Original | Prepared | Generated pictures
    assert "application/vnd.jupyter.widget-view+json" in kinds  # the upload app

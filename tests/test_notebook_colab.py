"""The Colab sketch notebook runs end to end with tiny weights made on the spot (injected as its
`WEIGHTS` parameter), and is what its builder writes."""

from __future__ import annotations

from pathlib import Path

import nbformat

from app_support import tiny_weights
from notebook_runner import assert_built_by, assert_stripped, cells_tagged, output_mimetypes, output_text, run_notebook

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "colab_sketch_to_shoe.ipynb"


def test_notebook_is_committed_stripped():
    assert_stripped(NOTEBOOK)


def test_notebook_is_what_its_builder_writes():
    assert_built_by(NOTEBOOK, NOTEBOOK.parent / "build_colab_sketch_to_shoe.py")


def test_install_and_colab_only_cells_are_skipped_by_the_test_runner():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    skipped = "\n".join(cell.source for cell in cells_tagged(notebook, "skip-execution"))
    assert "pip install" in skipped and "upload_with_colab" in skipped
    (parameters,) = cells_tagged(notebook, "parameters")
    assert "WEIGHTS =" in parameters.source


def test_notebook_runs_with_tiny_weights(tmp_path):
    weights = tiny_weights(tmp_path)
    executed = run_notebook(NOTEBOOK, {"WEIGHTS": str(weights)},
                            env={"GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(tmp_path / "gradio")})
    kinds = output_mimetypes(executed)
    assert "image/png" in kinds  # the sample sketches' Original | Prepared | Generated pictures
    assert "application/vnd.jupyter.widget-view+json" in kinds  # the upload app
    assert kinds[-1] == "text/html"  # the drawing app, inline (and no Blocks repr after it)
    assert "Running on local URL:  http://127.0.0.1:" in output_text(executed)

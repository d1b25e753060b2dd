"""Run a notebook the way the tests need: with small settings injected, from its own folder, and
failing loudly.

Shared by every notebook test (`from notebook_runner import run_notebook`). As papermill does, the
test's settings go into a cell tagged `injected-parameters` right after the notebook's own cell
tagged `parameters`, so the cells a user reads carry no test plumbing. The notebook runs with
nbclient in a fresh kernel whose working directory is the notebook's folder (as nbmake does),
skipping cells tagged `skip-execution` (installs, multi-GPU launches). It raises on a cell error and
also on traceback text printed into any output, which catches errors a cell catches and prints
instead of raising. The executed notebook is returned in memory and never written over the
committed one.
"""

from __future__ import annotations

import os
import runpy
from pathlib import Path
from typing import Iterator, Mapping

import nbformat
from nbclient import NotebookClient

SKIP_TAG = "skip-execution"
PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"  # papermill's name for the cell it adds
TRACEBACK_MARKERS = ("Traceback (most recent call last)",)


class NotebookFailure(AssertionError):
    """A notebook cell failed or printed a traceback."""


def with_parameters(nb: nbformat.NotebookNode, parameters: Mapping[str, object]) -> nbformat.NotebookNode:
    """`nb` with a cell setting `parameters` (NAME = repr(value)) after its `parameters` cell."""
    (cell,) = cells_tagged(nb, PARAMETERS_TAG)
    source = "# Parameters injected by the test runner\n" + "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    injected = nbformat.v4.new_code_cell(source, metadata={"tags": [INJECTED_TAG]})
    injected["id"] = INJECTED_TAG
    nb.cells.insert(nb.cells.index(cell) + 1, injected)
    return nb


def run_notebook(
    path: str | Path,
    parameters: Mapping[str, object],
    *,
    env: Mapping[str, str] | None = None,
    timeout: int = 300,
) -> nbformat.NotebookNode:
    """Execute the notebook at `path` with `parameters` injected, and return it with its outputs.

    `env` adds or overrides environment variables for the kernel; `timeout` is per cell, in seconds.
    """
    path = Path(path)
    nb = with_parameters(nbformat.read(path, as_version=4), parameters)
    kernel_env = dict(os.environ)
    kernel_env.update(env or {})
    kernel_env.setdefault("MPLBACKEND", "Agg")
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=False,
        skip_cells_with_tag=SKIP_TAG,
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )
    try:
        client.execute(env=kernel_env, cwd=str(path.parent.resolve()))
    except Exception as error:  # CellExecutionError, timeouts, a dead kernel
        raise NotebookFailure(f"{path.name}: {error}") from error
    problems = list(traceback_outputs(nb))
    if problems:
        raise NotebookFailure(f"{path.name}: traceback text in output:\n" + "\n---\n".join(problems))
    return nb


def traceback_outputs(nb: nbformat.NotebookNode) -> Iterator[str]:
    """Every output (stream, error, display text) that contains a Python traceback."""
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                yield f"cell {index}: {output.get('ename')}: {output.get('evalue')}"
                continue
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            if isinstance(text, list):
                text = "".join(text)
            if any(marker in text for marker in TRACEBACK_MARKERS):
                yield f"cell {index}: {text[-2000:]}"


def output_mimetypes(nb: nbformat.NotebookNode) -> list[str]:
    """The MIME types of all rich outputs in execution order (e.g. to count inline images)."""
    kinds: list[str] = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            kinds += list(output.get("data", {}))
    return kinds


def output_text(nb: nbformat.NotebookNode) -> str:
    """All stream and plain-text output of the notebook, joined."""
    parts: list[str] = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            parts.append("".join(text) if isinstance(text, list) else text)
    return "\n".join(parts)


def assert_stripped(path: str | Path) -> None:
    """The committed notebook carries no outputs and no execution counts (clean diffs, no stale
    pictures)."""
    nb = nbformat.read(Path(path), as_version=4)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            raise AssertionError(f"{Path(path).name}: cell {index} has committed outputs")
        if cell.get("execution_count") is not None:
            raise AssertionError(f"{Path(path).name}: cell {index} has an execution count")


def assert_built_by(path: str | Path, builder: str | Path) -> None:
    """The committed notebook has the cells (sources and tags) that its builder script's `build()`
    writes: the builder is how the notebook is edited."""
    committed = nbformat.read(Path(path), as_version=4)
    built = runpy.run_path(str(builder))["build"]()
    assert [c.source for c in committed.cells] == [c.source for c in built.cells]
    assert [c.metadata for c in committed.cells] == [c.metadata for c in built.cells]


def cells_tagged(nb: nbformat.NotebookNode, tag: str) -> list[nbformat.NotebookNode]:
    return [cell for cell in nb.cells if tag in cell.get("metadata", {}).get("tags", [])]

"""Run a notebook the way CI should: in smoke mode, from its own folder, and fail loudly.

Shared by every notebook test (`from notebook_runner import run_notebook`). It executes the
notebook with nbclient in a fresh kernel whose working directory is the notebook's folder (as
nbmake does), with `EDGES2SHOES_SMOKE=1` in the kernel's environment, skipping cells tagged
`skip-execution` (installs, multi-GPU launches). It raises on a cell error and also on traceback
text printed into any output, which catches errors a cell catches and prints instead of raising.
The executed notebook is returned in memory and never written over the committed one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Mapping

import nbformat
from nbclient import NotebookClient

SKIP_TAG = "skip-execution"
TRACEBACK_MARKERS = ("Traceback (most recent call last)",)


class NotebookFailure(AssertionError):
    """A notebook cell failed or printed a traceback."""


def run_notebook(
    path: str | Path,
    *,
    env: Mapping[str, str] | None = None,
    timeout: int = 300,
    smoke: bool = True,
) -> nbformat.NotebookNode:
    """Execute the notebook at `path` and return it with its outputs.

    `env` adds or overrides environment variables for the kernel (for example an output folder);
    `timeout` is per cell, in seconds.
    """
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    kernel_env = dict(os.environ)
    if smoke:
        kernel_env["EDGES2SHOES_SMOKE"] = "1"
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


def cells_tagged(nb: nbformat.NotebookNode, tag: str) -> list[nbformat.NotebookNode]:
    return [cell for cell in nb.cells if tag in cell.get("metadata", {}).get("tags", [])]

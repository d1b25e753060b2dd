"""The benches' tiny settings (the session's `bench_figures` runs each once with them), and
tools/benchmarks_doc.py imported as a module so tests call its `main` in-process."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

TOOLS = Path(__file__).resolve().parents[1] / "tools"

TINY_BENCHES = {
    "infer": ["--ngf", "8", "--levels", "6", "--repeats", "2", "--warmup", "1", "--device", "cpu"],
    "sketch": ["--ngf", "8", "--levels", "6", "--runs", "2", "--warmup", "0", "--photo-size", "400x300",
               "--device", "cpu"],
    "train": ["--batch-size", "1", "--steps", "1", "--warmup", "0", "--image-size", "64", "--ngf", "8", "--ndf", "8",
              "--precisions", "fp32", "--device", "cpu"],
    "data": ["--pairs", "6", "--files", "3", "--image-size", "64"],
}


def load_tool(name: str) -> ModuleType:
    """tools/NAME.py as a module (registered, as an import would, so its dataclasses can find it)."""
    spec = importlib.util.spec_from_file_location(f"tools_{name}", TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def documented(figures: Path, folder: Path) -> str:
    """The document tools/benchmarks_doc.py writes from one bench JSON into a new FOLDER/benchmarks.md."""
    doc = folder / "benchmarks.md"
    doc.write_text("# Benchmarks\n")
    assert load_tool("benchmarks_doc").main([str(figures), "--doc", str(doc)]) == 0
    return doc.read_text()

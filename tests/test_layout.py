"""The package's shape. The stage layering (a stage imports only the stages before it, every module
in a stage folder, nothing importing the package root, no cycles) is an import-linter contract in
pyproject.toml, run here; the rule import-linter cannot express, that imports inside functions are
only for optional extras and say why, is read from the source with `ast`. The public core (the package
root) offers users no test hooks and no internal plumbing.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import edges2shoes_utils

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "edges2shoes_utils"
# Imported inside a function because they are optional extras or only needed on one platform.
OPTIONAL = {
    "kagglehub", "huggingface_hub", "gradio", "gradio_client", "onnx", "onnxruntime", "torchmetrics",
    "torch_fidelity", "IPython", "ipywidgets", "google", "openvino",
    "playwright",  # the page timing drives a browser; a dev tool, not a dependency
    "torchvision",  # torchvision.models pulls in torch._dynamo (seconds); only the optional LPIPS needs it
    "httpx",  # gradio's HTTP client, installed with the [app] extra; only the app soak (`bench app`) uses it
}
LINT_IMPORTS = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def test_the_import_contracts_hold():
    config = REPO / "pyproject.toml"
    contracts = config.read_text().count("[[tool.importlinter.contracts]]")
    # The source tree's package, not an installed copy: the repository comes first on the path.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    lint = subprocess.run([sys.executable, "-c", LINT_IMPORTS, "--no-cache", str(config)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    report = lint.stdout[-6000:] + lint.stderr[-2000:]
    assert lint.returncode == 0, report
    assert re.search(rf"Contracts: {contracts} kept, 0 broken", lint.stdout), report


def test_in_function_imports_are_optional_dependencies_with_a_reason():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text().splitlines()
        tree = ast.parse("\n".join(lines))
        functions = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
        for node in (inner for function in functions for inner in ast.walk(function)):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            roots = [alias.name.split(".")[0] for alias in node.names] if isinstance(node, ast.Import) \
                else [(node.module or "").split(".")[0] if not node.level else PACKAGE.name]
            where = f"{path.relative_to(REPO)}:{node.lineno}"
            if any(root not in OPTIONAL for root in roots):
                bad.append(f"{where} imports {roots} inside a function (only optional extras may be lazy)")
            elif "# lazy:" not in " ".join(lines[node.lineno - 1: node.end_lineno]):
                bad.append(f"{where}: a lazy import needs a '# lazy: ...' comment saying why")
    assert not bad, "\n".join(bad)


def test_the_public_core_has_no_test_hooks_or_plumbing():
    """What `import edges2shoes_utils` offers is for users: no private (underscore) parameters in its
    signatures, the file writers (`save_checkpoint`, `save_epoch_weights`) stay out of it, and one loader
    per network reads every source."""
    hooks = []
    for name in edges2shoes_utils.__all__:
        thing = getattr(edges2shoes_utils, name)
        if callable(thing) and not (isinstance(thing, type) and issubclass(thing, BaseException)):
            hooks += [f"{name}({p})" for p in inspect.signature(thing).parameters if p.startswith("_")]
    assert not hooks, f"test hooks in public signatures: {hooks}"
    assert not {"save_checkpoint", "save_epoch_weights"} & set(edges2shoes_utils.__all__)
    # One way to get a network from any file or named source: a loader per network, nothing beside.
    loaders = sorted(name for name in edges2shoes_utils.__all__ if name.startswith(("load_", "read_")))
    assert loaders == ["load_discriminator", "load_generator"]

"""The package's shape, read from its source: one folder per pipeline stage, imports pointing only
to earlier stages, no cycles, and in-function imports only for optional dependencies.

Data flows util -> nets -> data -> checkpoints -> training -> inference -> evaluation -> bench ->
apps; a module may import its own stage and the stages before it. These tests read the import
statements with `ast` (nothing is imported), so a wrong-way import fails here even when it would
happen to work at run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "edges2shoes_utils"
STAGES = ("util", "nets", "data", "checkpoints", "training", "inference", "evaluation", "bench", "apps")
# Imported inside a function because they are optional extras or only needed on one platform.
OPTIONAL = {
    "kagglehub", "huggingface_hub", "gradio", "gradio_client", "onnx", "onnxruntime", "torchmetrics",
    "torch_fidelity", "IPython", "ipywidgets", "google", "openvino",
    "playwright",  # the page timing drives a browser; a dev tool, not a dependency
    "torchvision",  # torchvision.models pulls in torch._dynamo (seconds); only the optional LPIPS needs it
    "httpx",  # gradio's HTTP client, installed with the [app] extra; only the app soak (`bench app`) uses it
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


MODULES = all_modules()


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def resolve(importer: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The package's own modules an import statement loads (the deepest module each name names)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == PACKAGE.name]
    if node.level:
        base = importer.split(".") if is_package(importer) else importer.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target.split(".")[0] != PACKAGE.name:
        return []
    found = []
    for alias in node.names:
        submodule = f"{target}.{alias.name}"
        found.append(submodule if submodule in MODULES else target)
    return found


def stage_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def imports_of(name: str) -> list[tuple[ast.stmt, str, bool]]:
    """(statement, own module imported, inside a function?) for every import in the module."""
    tree = ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))
    found: list[tuple[ast.stmt, str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for target in resolve(name, child):
                    found.append((child, target, in_function))
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            visit(child, inner)

    visit(tree, False)
    return found


def test_every_module_lives_in_a_stage_folder():
    loose = [name for name in MODULES if stage_of(name) is None and name not in (
        PACKAGE.name, f"{PACKAGE.name}.__main__")]
    assert not loose, f"modules outside the stage folders {STAGES}: {loose}"
    assert {stage_of(name) for name in MODULES} - {None} == set(STAGES)


def test_imports_point_only_to_earlier_stages():
    wrong = []
    for name in MODULES:
        stage = stage_of(name)
        if stage is None:  # the package root and __main__ sit on top of everything
            continue
        for node, target, _ in imports_of(name):
            if target in (PACKAGE.name, f"{PACKAGE.name}.__main__"):
                wrong.append(f"{name}:{node.lineno} imports the package root (the public API sits on top)")
            elif STAGES.index(stage_of(target)) > STAGES.index(stage):
                wrong.append(f"{name}:{node.lineno} ({stage}) imports {target} ({stage_of(target)})")
    assert not wrong, "imports that point the wrong way:\n" + "\n".join(wrong)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, or None (iterative depth-first search with colours)."""
    state: dict[str, int] = {}
    for start in graph:
        if state.get(start):
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return path[path.index(child):] + [child]
            elif not state.get(child):
                state[child] = 1
                stack.append((child, iter(sorted(graph.get(child, ())))))
                path.append(child)
    return None


def test_no_import_cycles():
    graph = {name: {target for _, target, _ in imports_of(name) if target != name} for name in MODULES}
    # a package's __init__ re-exports its modules; a module importing a sibling through the
    # package is a real edge to __init__, so cycles through re-exports are caught too
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_find_cycle_sees_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_in_function_imports_are_optional_dependencies_with_a_reason():
    bad = []
    for name, path in MODULES.items():
        lines = path.read_text().splitlines()
        tree = ast.parse("\n".join(lines))
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if not isinstance(node, (ast.Import, ast.ImportFrom)):
                    continue
                roots = [alias.name.split(".")[0] for alias in node.names] if isinstance(node, ast.Import) \
                    else [(node.module or "").split(".")[0] if not node.level else PACKAGE.name]
                where = f"{name}:{node.lineno}"
                if any(root not in OPTIONAL for root in roots):
                    bad.append(f"{where} imports {roots} inside a function (only optional extras may be lazy)")
                elif "lazy" not in " ".join(lines[node.lineno - 1: node.end_lineno]).lower():
                    bad.append(f"{where}: a lazy import needs a '# lazy: ...' comment saying why")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("text, expected", [
    ("from .atomic import atomic_write_text", ["edges2shoes_utils.util.atomic"]),
    ("from ..nets import UNetGenerator", ["edges2shoes_utils.nets"]),
    ("from . import errors", ["edges2shoes_utils.util.errors"]),
    ("from edges2shoes_utils.util import atomic", ["edges2shoes_utils.util.atomic"]),
    ("import json", []),
])
def test_resolve_reads_relative_imports(text, expected):
    assert resolve("edges2shoes_utils.util.images", ast.parse(text).body[0]) == expected

"""The package's comments and docstrings say what and why, never how fast it was on some machine or
which ticket asked for it: no millisecond figures, no CPU model names, no "issue N". Figures live in
docs/benchmarks.md (with the machine, the date and the command), history in commit messages.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "edges2shoes_utils"
NUMBER = r"\d+(?:,\d{3})*(?:\.\d+)?"
LAB_NOTEBOOK = re.compile(
    rf"\b{NUMBER}(?:\s*[-–]\s*{NUMBER})?\s*(?:ms|milliseconds?)\b"  # a millisecond figure
    r"|\b(?:EPYC|Xeon|Ryzen|Threadripper|Core\s+i[3579]|Apple\s+M\d)\b"  # a CPU model
    r"|\bissues?\s+#?\d+",  # a ticket
    re.IGNORECASE,
)


def comments_and_docstrings(source: str) -> list[tuple[int, str]]:
    """(line, text) of every comment and every module, class and function docstring."""
    found = [(token.start[0], token.string) for token in tokenize.generate_tokens(io.StringIO(source).readline)
             if token.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            docstring = ast.get_docstring(node, clean=False)
            if docstring is not None:
                found.append((node.body[0].lineno, docstring))
    return found


def lab_notebook_entries(source: str) -> list[str]:
    return [f"line {line + text[:match.start()].count(chr(10))}: {match.group(0)!r}"
            for line, text in comments_and_docstrings(source) for match in LAB_NOTEBOOK.finditer(text)]


def test_package_comments_and_docstrings_carry_no_timings_machines_or_tickets():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        offenders += [f"{path.relative_to(PACKAGE.parent)} {entry}" for entry in lab_notebook_entries(path.read_text())]
    assert not offenders, "move these to docs/benchmarks.md or a commit message:\n" + "\n".join(offenders)


@pytest.mark.parametrize("source, caught", [
    ('"""Brought a 256x256 image under 40 ms."""', True),
    ("x = 1  # 0.3-0.6\n", False),
    ('def f():\n    """Took 1.5-2 ms to partition."""\n', True),
    ("# measured on an AMD EPYC\n", True),
    ("class A:\n    '''As on an Intel Core i7 laptop.'''\n", True),
    ("# the goal of issue 12\n", True),
    ('"""Timers (best of 3, ms) of convolutions."""', False),  # a unit, not a figure
    ('"""Every `log_interval` steps; see microsoft/onnxruntime#8988."""', False),  # an upstream bug, cited
    ('label = "12 ms"  # a string the program prints, not a comment\n', False),
])
def test_what_counts_as_a_lab_notebook_entry(source, caught):
    assert bool(lab_notebook_entries(source)) is caught

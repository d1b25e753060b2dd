"""The command line: every documented command is there, and user errors are one clear line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edges2shoes_utils import __version__
from edges2shoes_utils.bench import BENCHMARKS
from edges2shoes_utils.apps.cli import COMMANDS, build_parser


def _subcommands(parser) -> dict:
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return action.choices


def test_every_command_is_registered():
    assert set(_subcommands(build_parser())) == set(COMMANDS)


def test_every_benchmark_is_registered():
    bench = _subcommands(build_parser())["bench"]
    assert set(_subcommands(bench)) == set(BENCHMARKS) | {"all"}


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--version"])
    assert exit_info.value.code == 0
    assert __version__ in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, named",
    [
        (["generate", "sketch.png", "--weights", "missing_weights.pt", "--out", "OUT"], "missing_weights.pt"),
        (["evaluate", "--data", "missing_data_dir", "--weights", "w.pt", "--out", "OUT"], "missing_data_dir"),
        (["train", "--data", "missing_data_dir", "--out", "OUT", "--epochs", "1"], "missing_data_dir"),
    ],
)
def test_user_errors_are_one_clear_message_without_traceback(tmp_path, argv, named):
    argv = [str(tmp_path / a) if a in {"OUT", "missing_data_dir"} else a for a in argv]
    result = subprocess.run(
        [sys.executable, "-m", "edges2shoes_utils", *argv],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert named in result.stderr
    assert "Traceback" not in result.stderr

"""What every bench reports and how: the machine facts its JSON carries, the JSON itself (stamped with
the date and the command that produced it), and its report (a title, tables and notes) as the
terminal shows it. `tools/benchmarks_doc.py` writes the same report as Markdown into
docs/benchmarks.md, so a documented figure always names its machine, date and command."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch

from ..util.atomic import atomic_write_text
from ..util.tables import Table


def cpuinfo_field(name: str) -> str | None:
    """The first CPU's `name` line of /proc/cpuinfo ("model name", "flags"), or None where there is
    no such file (not Linux) or line."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(name):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def cpu_name() -> str:
    """The CPU's model name (Linux), else what the platform module knows."""
    return cpuinfo_field("model name") or platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, or None where the OS has none: a busy machine's figures
    are read with it in mind."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine() -> dict:
    """The facts every bench's JSON starts with."""
    return {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__}


def command_line(args: argparse.Namespace) -> str | None:
    """The command as typed (the CLI keeps its arguments in `args.argv`), or None when a bench was
    called from Python."""
    argv = getattr(args, "argv", None)
    return None if argv is None else shlex.join(["edges2shoes", *argv])


def write_figures(path: str | Path, result: dict, args: argparse.Namespace) -> None:
    """`result` as JSON, atomically, with the date (UTC) and the command that produced it."""
    stamped = {**result, "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "command": command_line(args)}
    atomic_write_text(path, json.dumps(stamped, indent=2) + "\n")
    print(f"figures written to {path}")


@dataclass
class Report:
    """A bench's result as people read it: what was measured, the figures, and what they mean
    (goals met or not, fallbacks, predictions)."""

    title: str
    tables: list[Table]
    notes: list[str] = field(default_factory=list)

    def text(self, result: dict) -> str:
        """The terminal's form: the title, the machine, then each table and note indented."""
        lines = [self.title]
        facts = machine_line(result)
        if facts:
            lines.append(f"  {facts}")
        lines += [table.text() for table in self.tables]
        lines += [f"  {note}" for note in self.notes]
        return "\n".join(lines)


def machine_line(result: dict) -> str:
    """'AMD ..., 2 threads, torch 2.x; load average before/after: ...' from what the JSON holds."""
    parts = [str(result["cpu"])] if result.get("cpu") else []
    if result.get("threads") is not None:
        parts.append(f"{result['threads']} thread{'' if result['threads'] == 1 else 's'}")
    if result.get("torch"):
        parts.append(f"torch {result['torch']}")
    line = ", ".join(parts)
    if "load_average_before" in result or "load_average_after" in result:
        line += (f"; load average before/after: {result.get('load_average_before')} / "
                 f"{result.get('load_average_after')}")
    return line


__all__ = ["Report", "command_line", "cpu_name", "cpuinfo_field", "load_average", "machine", "machine_line", "write_figures"]

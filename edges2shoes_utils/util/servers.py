"""Servers started on 127.0.0.1 by the tests and the app soak (`bench app`): a free port, and a
logged subprocess that is always stopped."""

from __future__ import annotations

import socket
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, Sequence


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def logged_process(command: Sequence[str], log: Path, *, env: Mapping[str, str], cwd: Path | None = None,
                   stop_timeout: float = 20.0) -> Iterator[subprocess.Popen]:
    """Run `command` with its output in `log`; terminate it on exit (kill it if it will not stop)."""
    with open(log, "w") as log_file:
        process = subprocess.Popen(list(command), cwd=cwd, env=dict(env), stdout=log_file, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def resident_mb(pid: int) -> float:
    """The resident memory (VmRSS) of process `pid` in MB, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")

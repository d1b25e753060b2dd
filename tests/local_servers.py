"""Servers the tests start on 127.0.0.1: a free port, and a logged subprocess that is always stopped."""

from __future__ import annotations

import socket
import subprocess
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator, Mapping, Sequence


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler], **state) -> Iterator[ThreadingHTTPServer]:
    """`handler` serving on 127.0.0.1 from a background thread; `state` becomes attributes of the
    server (handlers read them as `self.server.NAME`). Shut down on exit."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    for name, value in state.items():
        setattr(httpd, name, value)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


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

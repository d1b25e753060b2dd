"""A threaded HTTP server the tests start on 127.0.0.1 (a free port and logged subprocesses are in
`edges2shoes_utils.util.servers`, which the app soak uses too)."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator


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

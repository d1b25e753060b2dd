"""Servers the tests start on 127.0.0.1 (the helpers live in the package: `bench app` uses them too)."""

from edges2shoes_utils.util.servers import free_port, logged_process  # noqa: F401 - the tests take them from here

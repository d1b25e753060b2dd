"""Memory settings for a long-running process: the drawing app's server.

glibc's malloc gives each thread that allocates its own arena, up to eight per core. A web server
hands requests to a pool of threads; the sketch clean-up's buffers freed in one arena and allocated
again in another leave every arena holding its own peak, so resident memory keeps growing. Two
arenas keep that growth a fraction of the default's at the same throughput (docs/benchmarks.md).
"""

from __future__ import annotations

import ctypes
import os
import sys

_M_ARENA_MAX = -8  # glibc's mallopt parameter number for the arena limit


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap this process's malloc arenas at `arenas`, unless MALLOC_ARENA_MAX already says how many.

    Arenas made before the call stay; call it before the server starts its threads. Returns
    whether the cap was set (False on other systems, or with a C library without `mallopt`).
    """
    if arenas < 1:
        raise ValueError(f"arenas must be at least 1, got {arenas}")
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already runs on
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt(_M_ARENA_MAX, arenas) == 1

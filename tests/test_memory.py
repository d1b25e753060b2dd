"""The app's malloc arena cap: it takes effect (glibc reports fewer heaps after threads allocate),
and a MALLOC_ARENA_MAX the user set wins."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from edges2shoes_utils.util.memory import limit_malloc_arenas

# Threads allocate blocks below glibc's mmap threshold, so each new thread takes an arena; then
# glibc's own report (malloc_info) is counted: one <heap> element per arena.
_COUNT_ARENAS = textwrap.dedent("""
    import ctypes, sys, tempfile, threading
    from edges2shoes_utils.util.memory import limit_malloc_arenas
    print(limit_malloc_arenas(int(sys.argv[1])) if sys.argv[1] != "0" else "default")
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
    libc.free.argtypes = (ctypes.c_void_p,)
    ready = threading.Barrier(6)

    def allocate():
        blocks = [libc.malloc(4096) for _ in range(50)]
        ready.wait()  # all six threads alive at once: none can inherit another's arena
        for block in blocks:
            libc.free(block)

    threads = [threading.Thread(target=allocate) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    libc.fopen.restype, libc.fopen.argtypes = ctypes.c_void_p, (ctypes.c_char_p, ctypes.c_char_p)
    libc.malloc_info.argtypes = (ctypes.c_int, ctypes.c_void_p)
    libc.fclose.argtypes = (ctypes.c_void_p,)
    with tempfile.NamedTemporaryFile(suffix=".xml") as report:
        stream = libc.fopen(report.name.encode(), b"w")
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        print(open(report.name).read().count("<heap nr="))
""")


def _arenas_after_six_threads(limit: int, **environ: str) -> tuple[str, int]:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | environ
    out = subprocess.run([sys.executable, "-c", _COUNT_ARENAS, str(limit)], capture_output=True, text=True,
                         env=env, check=True, timeout=60).stdout.split()
    return out[0], int(out[1])


glibc_only = pytest.mark.skipif(not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
                                reason="glibc's malloc only")


@glibc_only
def test_the_cap_keeps_threads_to_the_arenas_allowed():
    told, arenas = _arenas_after_six_threads(0)
    assert told == "default" and arenas >= 7  # the main arena and one per thread (and any of torch's)
    assert _arenas_after_six_threads(2) == ("True", 2)
    assert _arenas_after_six_threads(1) == ("True", 1)


@glibc_only
def test_a_malloc_arena_max_the_user_set_wins():
    assert _arenas_after_six_threads(1, MALLOC_ARENA_MAX="4") == ("False", 4)


def test_at_least_one_arena():
    with pytest.raises(ValueError, match="at least 1"):
        limit_malloc_arenas(0)

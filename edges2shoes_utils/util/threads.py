"""A second thread for work that can overlap: the sketch clean-up's polarity check and thinning bands.

The machines this runs on often have two cores; the clean-up's numpy, OpenCV and skimage calls
release the GIL, so two independent pieces of one request can run at once.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

_POOLS: dict[int, ThreadPoolExecutor] = {}


def second_thread() -> ThreadPoolExecutor:
    """This process's one worker thread. Per process: a process forked after the first use (a data
    loader worker) has no thread behind its copy of the parent's pool, so it makes its own. Work
    handed to it must not wait on it in turn."""
    pid = os.getpid()
    if pid not in _POOLS:
        _POOLS[pid] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edges2shoes")
    return _POOLS[pid]

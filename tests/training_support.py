"""Shared by the training tests (`from training_support import dataset, one_thread`): the tiny
synthetic set they train on, and one CPU thread for bitwise-reproducible maths.

`dataset` and `one_thread` are pytest fixtures; importing them into a test module is what makes
them active there (`one_thread` is autouse). `single_thread` is the same for module-scoped fixtures.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import pytest
import torch

from edges2shoes_utils.data.synthetic import make_synthetic


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """12 train and 2 val synthetic 64x64 pairs in the edges2shoes layout."""
    return make_synthetic(tmp_path_factory.mktemp("shoes"), n=12, size=64, seed=0, n_val=2)


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Bitwise-reproducible CPU maths and no thread oversubscription on a shared machine; the
    thread count is restored afterwards (tests in other files may depend on it)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def one_thread():
    with single_thread():
        yield

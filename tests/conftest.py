"""Suite-wide fixtures: one torch thread; cached training views go to a temporary directory,
not the user's cache."""

from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    # The CI machine's 2 cores are shared; intra-op threads then spin against each other
    # (a 10x slowdown measured on tiny models). One thread keeps these tests predictable.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True, scope="session")
def _isolated_view_cache(tmp_path_factory):
    if "TACTKIT_CACHE_DIR" not in os.environ:
        os.environ["TACTKIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("tactkit_cache"))
    yield

"""Shared fixtures: the real data sets of ../shared/data (skipped when absent, an error in CI) and backends."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ._data import DATA, missing


def data_dir(name: str) -> Path:
    """``../shared/data/<name>``; without it the test is skipped with the reason (an error when CI=true)."""
    path = DATA / name
    if not path.is_dir():
        missing(path, "a fresh clone without ../shared")
    return path


def _has_gpu() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001
        return False


HAS_GPU = _has_gpu()


@pytest.fixture(params=["numpy", "cupy"])
def xp(request):
    """Array module to run a test on; CuPy only where a CUDA GPU is present."""
    if request.param == "cupy":
        if not HAS_GPU:
            pytest.skip("CuPy backend: no CUDA GPU/CuPy on this machine")
        import cupy

        return cupy
    return np


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(autouse=True)
def _torch_one_thread():
    """Tests that use torch run it on one thread (a shared 2-core machine); others are untouched."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)

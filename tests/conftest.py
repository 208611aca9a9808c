"""Shared fixtures: the shipped samples, the full data sets and backends.

``samples/`` (in the repository) always exists; the full development data sets live in
``../shared/data`` next to the repository, or wherever the environment variable
``HIFM_DATA`` points (``HIFM_DATA=/nonexistent make test`` runs the suite as a fresh clone).
A test that needs a missing full data set is skipped with the reason — or fails when
``CI=true`` (``tests/_data.py``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ._data import DATA, missing

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"


def data_dir(name: str) -> Path:
    """``DATA/<name>`` (a full data set); without it the test is skipped with the reason (an error when CI=true)."""
    path = DATA / name
    if not path.is_dir():
        missing(path, "a fresh clone; see docs/data.md")
    return path


def sample_dir(name: str) -> Path:
    """``samples/<name>``: shipped with the repository, so a missing folder is a failure, not a skip."""
    path = SAMPLES / name
    assert path.is_dir(), f"shipped sample folder {path} is missing"
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

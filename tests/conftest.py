"""Shared fixtures: the shipped samples, the full data sets and backends.

``samples/`` (in the repository) always exists; the full development data sets live in
``../shared/data`` next to the repository, or wherever the environment variable
``HIFM_DATA`` points (``HIFM_DATA=/nonexistent make test`` runs the suite as a fresh clone).
A test that needs a missing full data set is skipped with the reason — or fails when
``CI=true`` (``tests/_data.py``).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from ._data import DATA, in_ci, missing

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


def sample_pair_counts() -> dict[str, int]:
    """Pairs per shipped sample folder as ``samples/README.md`` states them (its table rows
    ``| `tno/{ir,vi}/` | 5 | ...``): {"tno": 5, "synthetic/mri-pet": 2, ...}."""
    counts: dict[str, int] = {}
    for line in (SAMPLES / "README.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\|\s*`([^`{]+)/\{[^}]*\}/`\s*\|\s*(\d+)\s*\|", line)
        if m:
            counts[m.group(1)] = int(m.group(2))
    assert counts, "no sample table found in samples/README.md"
    return counts


def full_or_sample(name: str, stand_in: str) -> tuple[Path, bool]:
    """(folder, is_full): the full data set ``DATA/<name>`` when present, else the shipped
    sample folder ``samples/<stand_in>`` that a fresh clone checks in its place (in CI, where
    ``CI=true``, a missing full data set is an error instead: tests/_data.py)."""
    path = DATA / name
    if path.is_dir():
        return path, True
    if in_ci():
        missing(path, "CI needs the full development data")
    return sample_dir(stand_in), False


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

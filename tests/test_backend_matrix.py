"""The same solver tests on every backend: NumPy (fused and reference engines) and CuPy (GPU only)."""
from __future__ import annotations

import numpy as np
import pytest

import hifm
from hifm import backend

from .conftest import HAS_GPU


def _arrays(xp, *arrays):
    return [xp.asarray(a) for a in arrays]


@pytest.mark.parametrize("kw", [dict(), dict(mu=0.02, theta=100.0), dict(shrink="value_map", filters_l="dct3")])
def test_backend_matches_numpy_fused(xp, kw, rng):
    a, b = rng.random((2, 37, 45))
    want = hifm.solve(a, b, iters=20, dtype="float64", engine="fused", **kw)
    a_x, b_x = _arrays(xp, a, b)
    got = hifm.solve(a_x, b_x, iters=20, dtype="float64", engine="reference", **kw)
    assert backend.get_xp(got) is xp  # results stay on the inputs' backend
    np.testing.assert_allclose(backend.to_numpy(got), want, atol=1e-9)


def test_backend_colour_and_bit_depth(xp, rng):
    a = (rng.random((30, 40)) * 255).astype(np.uint8)
    b = (rng.random((30, 40, 3)) * 255).astype(np.uint8)
    want = hifm.solve(a, b, iters=10)
    got = hifm.solve(*_arrays(xp, a, b), iters=10)
    assert got.dtype == np.uint8 and got.shape == (30, 40, 3)
    assert np.abs(backend.to_numpy(got).astype(int) - want.astype(int)).max() <= 1


def test_backend_bad_input(xp, rng):
    a, b = _arrays(xp, rng.random((10, 10)), rng.random((10, 10)))
    a[0, 0] = float("nan")
    with pytest.raises(hifm.InputError, match="NaN"):
        hifm.solve(a, b, iters=1)


@pytest.mark.skipif(not HAS_GPU, reason="no CUDA GPU/CuPy on this machine")
def test_numpy_inputs_on_the_gpu_come_back_as_numpy(rng):
    a, b = rng.random((2, 20, 24))
    out = hifm.solve(a, b, iters=5, backend="cupy")
    assert isinstance(out, np.ndarray)


def test_cupy_inputs_with_backend_cupy_reach_the_memory_check_as_gpu(monkeypatch, rng):
    """With CuPy inputs *and* ``backend="cupy"`` the solver's ``gpu`` option must not reach the
    memory estimate (it did: the test of the inputs short-circuited its removal, and
    ``estimate_bytes`` raised TypeError on the GPU machine). Runs on the CPU: the CuPy test and
    the memory check are stand-ins that record what they are given."""
    import hifm.api as api

    seen = {}

    def record(method, shape, **kw):
        seen.update(kw, method=method, shape=shape)
        return 0

    monkeypatch.setattr(api.hifm_backend, "is_cupy", lambda x: True)
    monkeypatch.setattr(api, "check_memory", record)
    a, b = rng.random((2, 12, 16))
    api._check_job_memory("hifm", a, b, dtype="float32", gpu=True)
    assert "gpu" not in seen and seen["device"] == "cuda" and seen["shape"] == (12, 16)
    seen.clear()
    monkeypatch.setattr(api.hifm_backend, "is_cupy", lambda x: False)
    api._check_job_memory("hifm", a, b, dtype="float32", gpu=False)
    assert "gpu" not in seen and seen["device"] == "cpu"

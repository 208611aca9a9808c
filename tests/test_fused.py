"""The fused Numba kernels equal the reference iteration (hifm.iteration.admm_step)."""
from __future__ import annotations

import numpy as np
import pytest

from hifm.params import HIFMParams
from hifm.solver import HIFMSolver

CASES = [
    dict(),  # the defaults (μ > 0, noise-adaptive μ)
    dict(mu=0.0),  # default banks, soft, μ = 0: the row-streaming kernel with the implicit H/G
    dict(mu=0.0, omega=0.9, tau=1.0),  # μ = 0 but ω ≠ 1: H/G stored
    dict(mu=0.05, theta=80.0, eta=0.8, omega=1.2, rho=2.0, tau=0.5),
    dict(shrink="value_map", mu=0.02),  # generic kernel, value map
    dict(filters_l="dct3", mu=0.02),  # generic kernel, different banks
    dict(filters_l="diff4", filters_k="diff4", mu=0.1, h_steps=3),
]


def _sources(rng, shape):
    a, b = rng.random(shape), rng.random(shape)
    return a, b, 0.5 * (a + b)


@pytest.mark.parametrize("target", ["sources", "anchor"])
@pytest.mark.parametrize("kw", CASES)
def test_fused_equals_reference(kw, target, rng):
    a, b, m = _sources(rng, (23, 29))
    p = HIFMParams.from_kwargs(dtype="float64", lam=0.03, target=target, **kw).resolve(0.0)
    fused = HIFMSolver(m, p, engine="fused", sources=(a, b)).run(15)
    ref = HIFMSolver(m, p, engine="reference", sources=(a, b)).run(15)
    np.testing.assert_allclose(fused.result(), ref.result(), atol=1e-12)
    for key in ("objective", "residual_l", "residual_k", "rel_change"):
        np.testing.assert_allclose(getattr(fused.history, key), getattr(ref.history, key), rtol=1e-9, atol=1e-14)


def test_row_kernel_is_used_for_defaults(rng):
    a, b, m = _sources(rng, (8, 8))
    p = HIFMParams.from_kwargs(lam=0.03).resolve(0.0)
    assert HIFMSolver(m, p, sources=(a, b)).diff_kernel
    p = HIFMParams.from_kwargs(lam=0.03, shrink="value_map").resolve(0.0)
    assert not HIFMSolver(m, p, sources=(a, b)).diff_kernel


def test_implicit_hg_only_where_it_is_exact(rng):
    a, b, m = _sources(rng, (8, 8))
    make = lambda **kw: HIFMSolver(m, HIFMParams.from_kwargs(lam=0.03, tau=1.0, **kw).resolve(0.0), sources=(a, b))  # noqa: E731
    assert make(mu=0.0).exact_hg
    assert not make().exact_hg  # the default μ > 0
    assert not make(mu=0.01).exact_hg
    assert not make(mu=0.0, omega=0.5).exact_hg
    assert not make(mu=0.0, sigma_h=0.5).exact_hg


def test_monitoring_does_not_change_the_iterates(rng):
    src_a, src_b, m = _sources(rng, (20, 20))
    p = HIFMParams.from_kwargs(dtype="float64", lam=0.03, mu=0.01).resolve(0.0)
    a = HIFMSolver(m, p, monitor=True, sources=(src_a, src_b)).run(10)
    b = HIFMSolver(m, p, monitor=False, sources=(src_a, src_b)).run(10)
    np.testing.assert_array_equal(a.result(), b.result())

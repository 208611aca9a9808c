"""The ADMM solver (§2.1): convergence to an independent optimum, fixed points, boundaries, precision."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.optimize

import hifm
from hifm import filters, ops
from hifm.params import HIFMParams
from hifm.solver import HIFMSolver


def _solver(m, iters, engine="auto", **kw):
    """The solver on the anchor M alone: the supplement's model (T = ∇M) unless told otherwise."""
    kw.setdefault("target", "anchor")
    p = HIFMParams.from_kwargs(dtype=str(m.dtype), **kw)
    return HIFMSolver(m, p.resolve(0.0), engine=engine).run(iters)


def tv_optimum(m: np.ndarray, lam: float) -> np.ndarray:
    """Independent solver of min ½‖Y − M‖² + λ‖DY‖₁ (circular forward differences):
    the box-constrained dual min_{|z|∞ ≤ λ} ½‖M − Dᵀz‖², by L-BFGS-B; Y = M − Dᵀz."""
    k = filters.differences().kernels
    shape = m.shape

    def fun(zflat):
        z = zflat.reshape((2,) + shape)
        r = m - ops.grad_adjoint(z, k)
        return 0.5 * np.sum(r * r), -ops.grad(r, k).ravel()

    z0 = np.zeros(2 * m.size)
    res = scipy.optimize.minimize(
        fun, z0, jac=True, method="L-BFGS-B", bounds=[(-lam, lam)] * z0.size,
        options=dict(maxiter=20000, ftol=1e-16, gtol=1e-13, maxcor=30),
    )
    return m - ops.grad_adjoint(res.x.reshape((2,) + shape), k)


@pytest.mark.parametrize("engine", ["fused", "reference"])
def test_convex_case_reaches_independent_optimum(engine, rng):
    m = rng.random((16, 16))
    lam = 0.05
    solver = _solver(m, 1500, engine, lam=lam, mu=0.0, pad=0, rho=2.0)
    assert solver.pshape == (16, 16)  # no padding: the same circular problem as the reference
    y_star = tv_optimum(m, lam)
    k = filters.differences().kernels
    j_star = float(ops.objective(y_star, m, k, np.full(2, lam), k[:0], 0.0, 1.0))
    j_admm = float(ops.objective(solver.padded_result, m, k, np.full(2, lam), k[:0], 0.0, 1.0))
    assert abs(j_admm - j_star) <= 1e-6 * j_star
    obj = np.asarray(solver.history.objective)
    # after the first iterations the objective decreases monotonically (to rounding)
    tail = obj[20:]
    assert np.all(np.diff(tail) <= 1e-12 * tail[0])


def test_objective_decreases_with_lorentzian_prior(rng):
    m = np.clip(np.linspace(0, 1, 40)[None] + 0.05 * rng.standard_normal((30, 40)), 0, 1)
    solver = _solver(m, 200, lam=0.02, mu=0.01, theta=100.0)
    obj = solver.history.objective
    assert obj[-1] < obj[0]
    assert solver.history.rel_change[-1] < 1e-4


def test_default_model_converges(rng):
    """The default model (source target, μ > 0, salient anchor) on a synthetic pair: the objective
    decreases after the first iterations and the iterates settle."""
    h, w = 48, 64
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.clip(0.2 + 0.6 * (((yy - 24) ** 2 + (xx - 20) ** 2) < 60) + 0.02 * rng.standard_normal((h, w)), 0, 1)
    b = np.clip(0.3 + 0.4 * (xx > 40) + 0.05 * np.sin(yy / 2.0) + 0.02 * rng.standard_normal((h, w)), 0, 1)
    _, info = hifm.solve(a, b, iters=150, return_info=True, dtype="float64")
    obj = np.asarray(info.history.objective)
    assert info.params.mu > 0 and info.params.target == "sources"
    assert obj[-1] < obj[1]
    tail = obj[10:]
    # monotone after the transient up to tiny bumps of the non-convex ADMM (measured ≤ 3e-7 relative)
    assert np.all(np.diff(tail) <= 1e-6 * tail[0])
    assert info.history.rel_change[-1] < 1e-4


def test_identical_sources_with_tiny_lambda_is_a_fixed_point(rng):
    img = rng.random((21, 17))
    y = hifm.solve(img, img, iters=50, lam=1e-8, dtype="float64")
    np.testing.assert_allclose(y, img, rtol=0, atol=1e-7)  # measured 4.0e-8 (λ = 1e-8)


@pytest.mark.parametrize("shape", [(2, 2), (13, 7), (17, 31), (1 + 2 * 3 * 5, 11)])
def test_constant_images_and_odd_prime_sizes(shape):
    c = np.full(shape, 0.37)
    y = hifm.solve(c, c, iters=30, mu=0.01, dtype="float64")
    np.testing.assert_allclose(y, c, atol=1e-10)
    rng = np.random.default_rng(1)
    a, b = rng.random((2,) + shape)
    y = hifm.solve(a, b, iters=30, dtype="float64")
    assert y.shape == shape and np.all((y >= 0) & (y <= 1))


def test_no_seam_at_the_borders(rng):
    """Circular operators couple opposite borders (a seam); reflective padding must decouple them.

    Two images equal except in their last 4 rows: the first rows of the results must agree.
    """
    base = np.clip(0.5 + 0.2 * rng.standard_normal((48, 64)), 0, 1)
    other = base.copy()
    other[-4:] = 1.0 - other[-4:]
    top_diff = {}
    for pad in (None, 0):
        ya = _solver(base, 100, lam=0.05, mu=0.02, pad=pad).result()
        yb = _solver(other, 100, lam=0.05, mu=0.02, pad=pad).result()
        top_diff[pad] = np.abs(ya[:2] - yb[:2]).max()
    assert top_diff[None] < 1e-4
    assert top_diff[0] > 1e-3  # without padding the seam is there: the test can fail


def test_float32_matches_float64(rng):
    a, b = rng.random((2, 50, 70))
    # the solver's iterations (pure-noise sources: the sources' TV denoising left out here; the whole
    # pipeline on real images: tests/test_api.py::test_float32_matches_float64_on_real_images)
    y64 = hifm.solve(a, b, iters=100, dtype="float64", mu=0.01, denoise_sources=False)
    y32 = hifm.solve(a.astype(np.float32), b.astype(np.float32), iters=100, dtype="float32", mu=0.01, denoise_sources=False)
    assert y32.dtype == np.float32 and y64.dtype == np.float64
    assert np.abs(y32 - y64).max() < 1e-4


def test_tol_stops_early(rng):
    a, b = rng.random((2, 30, 30))
    _, info = hifm.solve(a, b, iters=500, tol=1e-3, return_info=True)
    assert info.iterations < 500
    assert info.history.rel_change[-1] < 1e-3 <= info.history.rel_change[-2]


def test_history_fields(rng):
    a, b = rng.random((2, 30, 40))
    _, info = hifm.solve(a, b, iters=12, return_info=True)
    h = info.history
    assert len(h.objective) == len(h.residual_l) == len(h.residual_k) == len(h.rel_change) == len(h.time) == 12
    assert all(np.diff(h.time) >= 0)
    # a fixed λ is used as given, and the E-step threshold is λ/ρ
    _, info = hifm.solve(a, b, iters=1, lam=0.03, rho=4.0, return_info=True)
    assert info.lam == 0.03 and info.threshold == pytest.approx(0.0075, rel=1e-15)


def test_noise_adaptive_threshold(rng):
    """λ = max(0.001, 0.7·(σ̂ − 0.006)) (the documented defaults), σ̂ = Donoho's estimate on the
    sources (the larger of the two), median(|HH₁|)/0.6745 of PyWavelets' one-level db2 transform;
    t = λ/ρ."""
    pywt = pytest.importorskip("pywt")
    clean = np.clip(np.add.outer(np.linspace(0.2, 0.8, 64), np.zeros(64)), 0, 1)
    noisy = np.clip(clean + 0.05 * rng.standard_normal(clean.shape), 0, 1)
    # the rule itself: without the sources' own TV denoising (after it, σ̂ is the residual noise)
    _, info_clean = hifm.solve(clean, clean, iters=1, return_info=True, dtype="float64", denoise_sources=False)
    _, info_noisy = hifm.solve(clean, noisy, iters=1, return_info=True, dtype="float64", denoise_sources=False)
    assert info_clean.lam == 0.001 and info_clean.threshold == 0.001  # the floor (ρ = 1)
    donoho = lambda x: float(np.median(np.abs(pywt.dwt2(x, "db2")[1][2])) / 0.6745)  # noqa: E731
    sigma = max(donoho(clean), donoho(noisy))
    assert sigma == pytest.approx(0.05, rel=0.35)
    assert info_noisy.sigma_noise == pytest.approx(sigma, rel=1e-12)
    lam = max(0.001, 0.7 * (sigma - 0.006))
    assert lam > 0.01  # above the floor: the affine part of the rule is exercised
    assert info_noisy.lam == pytest.approx(lam, rel=1e-12)
    # λ does not depend on ρ; the E-step threshold is λ/ρ
    _, info_rho = hifm.solve(clean, noisy, iters=1, return_info=True, rho=4.0, dtype="float64", denoise_sources=False)
    assert info_rho.lam == pytest.approx(lam, rel=1e-12)
    assert info_rho.threshold == pytest.approx(lam / 4.0, rel=1e-12)


def test_params_validation():
    with pytest.raises(ValueError, match="sigma_h"):
        HIFMParams(tau=1.0, mu=1.0, theta=10.0, sigma_h=0.5)
    with pytest.raises(TypeError, match="unknown HIFM parameter"):
        HIFMParams.from_kwargs(lamda=0.1)
    with pytest.raises(ValueError, match="rho"):
        HIFMParams(rho=-1.0)
    with pytest.raises(ValueError, match="unknown filter bank"):
        HIFMParams(filters_l="nope")
    p = HIFMParams()
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'rho'"):
        p.rho = 3.0  # frozen
    assert HIFMParams(tau=2.0, mu=0.5, theta=3.0).h_step_size == pytest.approx(1 / 5.0)

"""The gradient target T_k of φ(∇_k Y − T_k) (DESIGN §2.4): definition, solver, kernels.

Independent references: a plain NumPy transcription of the ADMM with np.roll differences,
written here from the equations (not from hifm.ops), and direct evaluations of the definition.
"""
from __future__ import annotations

import numpy as np
import pytest

import hifm
from hifm import ops
from hifm.filters import get_bank
from hifm.params import HIFMParams
from hifm.solver import HIFMSolver


def _dx(x):  # forward differences, circular: ∂x Y[i, j] = Y[i, j+1] − Y[i, j]
    return np.roll(x, -1, 1) - x


def _dy(x):
    return np.roll(x, -1, 0) - x


def _dxt(z):  # adjoints: ∂xᵀ z[i, j] = z[i, j−1] − z[i, j]
    return np.roll(z, 1, 1) - z


def _dyt(z):
    return np.roll(z, 1, 0) - z


def transcription(m, t, lam, mu, theta, iters, rho=1.0, tau=1.0):
    """§2.1 with ∇ = {∂x, ∂y} (both banks), the soft threshold, σ = 1/(τ + 2μθ), η = ω = 1 and the
    target T = (Tx, Ty) (T = ∇M is the supplement's model), written with np.roll on the periodic
    domain; Y⁰ = M, E⁰ = ∇M, F⁰ = G⁰ = 0, H⁰ = ∇M − T."""
    h, w = m.shape
    ky = np.fft.fftfreq(h)[:, None]
    kx = np.fft.fftfreq(w)[None, :]
    lap = np.abs(np.exp(2j * np.pi * kx) - 1) ** 2 + np.abs(np.exp(2j * np.pi * ky) - 1) ** 2
    denom = 1 + (rho + tau) * lap
    g = [_dx(m), _dy(m)]
    e = [g[0].copy(), g[1].copy()]
    f = [np.zeros_like(m), np.zeros_like(m)]
    hh = [g[0] - t[0], g[1] - t[1]]
    gg = [np.zeros_like(m), np.zeros_like(m)]
    sigma = 1.0 / (tau + 2 * mu * theta)
    thr = lam / rho
    y = m
    for _ in range(iters):
        ens = m + tau * (_dxt(t[0] + hh[0] - gg[0]) + _dyt(t[1] + hh[1] - gg[1])) + rho * (
            _dxt(e[0] - f[0]) + _dyt(e[1] - f[1]))
        y = np.real(np.fft.ifft2(np.fft.fft2(ens) / denom))
        gy = [_dx(y), _dy(y)]
        for k in range(2):
            arg = gy[k] + f[k]
            e[k] = np.sign(arg) * np.maximum(np.abs(arg) - thr, 0)
            f[k] = f[k] + (gy[k] - e[k])
            d = gy[k] - t[k]
            hv = hh[k]
            hv = hv - sigma * (-tau * (d - hv + gg[k]) + mu * 2 * theta * hv / (1 + theta * hv * hv))
            hh[k] = hv
            gg[k] = gg[k] + (d - hv)
    return y


def _pair(rng, shape=(24, 30)):
    a = np.clip(0.5 + 0.2 * rng.standard_normal(shape), 0, 1)
    b = np.clip(np.linspace(0.1, 0.9, shape[1])[None] + 0.05 * rng.standard_normal(shape), 0, 1)
    return a, b


def test_source_target_is_the_larger_gradient_per_pixel(rng):
    a, b = _pair(rng)
    k = get_bank("diff").kernels
    t = ops.source_target(a, b, k)
    ga = np.stack([_dx(a), _dy(a)])
    gb = np.stack([_dx(b), _dy(b)])
    pick_a = (ga**2).sum(0) >= (gb**2).sum(0)
    expected = np.where(pick_a[None], ga, gb)
    np.testing.assert_allclose(t, expected, atol=1e-15)
    assert 0.05 < pick_a.mean() < 0.95  # both sources chosen somewhere
    np.testing.assert_allclose(ops.gradient_target("anchor", a, None, None, k), ga, atol=1e-15)
    with pytest.raises(ValueError, match="unknown gradient target"):
        ops.gradient_target("nope", a, a, b, k)


@pytest.mark.parametrize("target", ["anchor", "sources"])
@pytest.mark.parametrize("engine", ["fused", "reference"])
def test_solver_equals_transcription(target, engine, rng):
    """Periodic domain (pad=0, a size the FFT keeps): hifm's iterates equal the transcription."""
    a, b = _pair(rng, (24, 30))
    m = 0.5 * (a + b)
    p = HIFMParams(dtype="float64", lam=0.02, mu=0.05, theta=80.0, tau=1.0, target=target, pad=0, mu_noise_ref=None)
    solver = HIFMSolver(m, p.resolve(0.0), engine=engine, monitor=False, sources=(a, b)).run(12)
    assert solver.pshape == m.shape
    t = [_dx(m), _dy(m)] if target == "anchor" else list(ops.source_target(a, b, get_bank("diff").kernels))
    ref = transcription(m, t, 0.02, 0.05, 80.0, 12)
    np.testing.assert_allclose(solver.result(), ref, atol=1e-10)


def test_target_anchor_equals_sources_when_both_sources_are_the_anchor(rng):
    """With A = B = M the source target is ∇M, so the two models coincide."""
    m = rng.random((20, 26))
    p = dict(dtype="float64", lam=0.01, mu=0.05, theta=100.0, mu_noise_ref=None)
    y1 = HIFMSolver(m, HIFMParams(target="anchor", **p).resolve(0.0), sources=(m, m)).run(10).result()
    y2 = HIFMSolver(m, HIFMParams(target="sources", **p).resolve(0.0), sources=(m, m)).run(10).result()
    np.testing.assert_allclose(y1, y2, atol=1e-12)


def test_source_target_puts_a_missing_edge_into_y():
    """A holds a low-contrast edge, B (and the anchor, which is B) lacks it: only the source target brings it in."""
    h, w = 32, 48
    b = np.full((h, w), 0.5)
    a = np.full((h, w), 0.40)
    a[:, w // 2 :] = 0.44  # a 0.04 step, inside the Lorentzian's quadratic range (θ = 100: 1/√θ = 0.1)
    kw = dict(iters=100, dtype="float64", anchor=lambda x, y: y.copy(), lam=0.0005, mu=0.1, theta=100.0, tau=1.0)
    step = lambda y: float((y[:, w // 2] - y[:, w // 2 - 1]).mean())  # noqa: E731  (Y's jump across the edge)
    y_src = hifm.solve(a, b, target="sources", **kw)
    y_anchor = hifm.solve(a, b, target="anchor", **kw)
    assert abs(step(y_anchor)) < 1e-6  # (S1) cannot add what M lacks
    assert step(y_src) > 0.5 * 0.04  # the edge arrives with most of its contrast
    assert np.abs(np.diff(y_src, axis=1)).argmax() % (w - 1) == w // 2 - 1  # where A has it


def test_noise_adaptive_mu():
    p = HIFMParams(mu=0.05, mu_noise_ref=0.002)
    assert p.effective_mu(0.001) == 0.05  # clean: μ itself
    assert p.effective_mu(0.004) == pytest.approx(0.05 * 0.25)  # (t_c/t)² = 1/4
    assert HIFMParams(mu=0.05, mu_noise_ref=None).effective_mu(0.5) == 0.05  # no reference: no adaptation
    r = p.resolve(0.3)
    assert r.mu_eff < 0.05 and r.h_step_size == pytest.approx(1.0 / (p.tau + 2 * r.mu_eff * p.theta))
    with pytest.raises(ValueError, match="target"):
        HIFMParams(target="edges")
    with pytest.raises(ValueError, match="mu_noise_ref"):
        HIFMParams(mu_noise_ref=-1.0)


def test_solver_needs_the_sources_for_the_source_target(rng):
    m = rng.random((8, 8))
    with pytest.raises(ValueError, match="needs the sources"):
        HIFMSolver(m, HIFMParams(target="sources", mu=0.1).resolve(0.0))


@pytest.mark.parametrize(
    "kw",
    [
        dict(),  # row kernel
        dict(omega=0.8, eta=1.2),
        dict(filters_l="dct3"),  # generic kernel, merged banks off
        dict(filters_l="diff4", filters_k="diff4", h_steps=2, shrink="value_map"),  # generic kernel, merged
    ],
)
def test_fused_kernels_equal_reference_with_the_source_target(kw, rng):
    a, b = _pair(rng, (23, 29))
    m = 0.5 * (a + b)
    p = HIFMParams.from_kwargs(dtype="float64", lam=0.02, mu=0.05, theta=60.0, target="sources", mu_noise_ref=None,
                               **kw).resolve(0.0)
    fused = HIFMSolver(m, p, engine="fused", sources=(a, b)).run(10)
    ref = HIFMSolver(m, p, engine="reference", sources=(a, b)).run(10)
    np.testing.assert_allclose(fused.result(), ref.result(), atol=1e-12)
    for key in ("objective", "residual_l", "residual_k", "rel_change"):
        np.testing.assert_allclose(getattr(fused.history, key), getattr(ref.history, key), rtol=1e-9, atol=1e-14)


def test_benchmark_transcription_equals_the_default_solve():
    """hifm bench's plain NumPy baseline (np.roll, temporaries) runs the same model as hifm.solve:
    the default source target, the solve's λ and μ_eff (measured: 1.4e-15)."""
    from hifm.cli.bench import plain_admm
    from hifm.synthetic import synthetic_pair

    a, b = (x.astype(np.float64) for x in synthetic_pair(60, 80, seed=0, noise=0.03))
    y, info = hifm.solve(a, b, iters=30, dtype="float64", return_info=True, denoise_sources=False)
    p = info.params
    z = plain_admm(hifm.anchor(a, b), 30, info.lam, p.rho, p.tau, info.mu, p.theta, sources=(a, b))
    np.testing.assert_allclose(np.clip(z, 0, 1), y, rtol=0, atol=1e-13)
    z_anchor_target = plain_admm(hifm.anchor(a, b), 30, info.lam, p.rho, p.tau, info.mu, p.theta)
    assert np.abs(np.clip(z_anchor_target, 0, 1) - y).max() > 1e-4  # the target matters: the check can fail

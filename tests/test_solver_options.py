"""Options of hifm.solve that no other test exercises: user-supplied value-map values, the
per-iteration callback, ``workers > 1`` and the torch FFT of the Y-step (``HIFM_FFT=torch``)."""
from __future__ import annotations

import numpy as np
import pytest

import hifm
from hifm import iteration, ops
from hifm.fftengine import fft_library
from hifm.params import HIFMParams
from hifm.solver import pad_reflect, padded_shape
from hifm.synthetic import synthetic_pair

P = np.linspace(-1.0, 1.0, 101)  # the control points p_i = −1 + 0.02 (i − 1) of DESIGN §2.2


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    return synthetic_pair(30, 38, seed=4, noise=0.04)


def soft_values(t: float) -> np.ndarray:
    """q_i = sign(p_i)·max(|p_i| − t, 0)."""
    return np.sign(P) * np.maximum(np.abs(P) - t, 0.0)


# ---------------------------------------------------------------- value maps


@pytest.mark.parametrize("engine", ["fused", "reference"])
def test_user_value_map_values_are_the_e_step(pair, engine):
    """User values q of the soft threshold t₀ = 0.04 (on the grid): the solve equals the exact
    soft E-step with t = 0.04, whatever λ says (the values replace the map made from λ/ρ)."""
    a, b = pair
    q = soft_values(0.04)
    # μ fixed (mu_noise_ref=None): with the noise-adaptive μ the two λ would also give two μ
    got = hifm.solve(a, b, iters=12, dtype="float64", shrink="value_map", value_map=tuple(q), lam=0.001, engine=engine,
                     mu_noise_ref=None)
    want = hifm.solve(a, b, iters=12, dtype="float64", shrink="soft", lam=0.04, mu_noise_ref=None)
    # measured ≤ 7e-16
    np.testing.assert_allclose(got, want, rtol=0, atol=3e-15)
    ignored = hifm.solve(a, b, iters=12, dtype="float64", shrink="value_map", lam=0.001, engine=engine,
                         mu_noise_ref=None)
    assert np.abs(ignored - want).max() > 1e-3  # λ's own map is something else: the check can fail


def manual_solve(m: np.ndarray, thresholds: np.ndarray, iters: int, params: HIFMParams) -> np.ndarray:
    """§2.1 of the supplement's model (T = ∇M, μ as given) on the reflected-padded anchor with the
    per-filter soft thresholds ``thresholds`` (written with np.sign/np.maximum), cropped back."""
    kl, kk = params.filters_l.kernels, params.filters_k.kernels
    margin = params.margin
    pshape = padded_shape(m.shape, margin)
    mp = pad_reflect(m, margin, pshape)
    rho, tau = np.full(len(kl), params.rho), np.full(len(kk), params.tau)
    t = thresholds.reshape(-1, 1, 1)
    w = iteration.StepWeights(
        rho=rho, eta=np.full(len(kl), params.eta), tau=tau, omega=np.full(len(kk), params.omega),
        mu=np.full(len(kk), params.mu), theta=np.full(len(kk), params.theta),
        sigma=np.full(len(kk), params.h_step_size), shrink=lambda x: np.sign(x) * np.maximum(np.abs(x) - t, 0.0),
    )
    denom = ops.denominator(kl, rho, kk, tau, pshape)
    state = iteration.init_state(mp, kl, kk)
    gm = ops.grad(mp, kk)
    for _ in range(iters):
        state = iteration.admm_step(state, mp, gm, denom, kl, kk, w)
    return np.clip(state.y[margin : margin + m.shape[0], margin : margin + m.shape[1]], 0, 1)


@pytest.mark.parametrize("engine", ["fused", "reference"])
def test_user_value_map_one_row_per_filter(pair, engine):
    """Rows (L, I_t): filter l gets its own values (here soft thresholds 0.02 for ∂x, 0.06 for ∂y)."""
    a, b = pair
    params = HIFMParams(dtype="float64", shrink="value_map", value_map=(tuple(soft_values(0.02)), tuple(soft_values(0.06))),
                        mu=0.01, target="anchor", mu_noise_ref=None, denoise_sources=False)
    got = hifm.solve(a, b, iters=10, params=params, engine=engine)
    want = manual_solve(hifm.anchor(a, b), np.array([0.02, 0.06]), 10, params)
    # measured ≤ 6e-16
    np.testing.assert_allclose(got, want, rtol=0, atol=3e-15)
    swapped = manual_solve(hifm.anchor(a, b), np.array([0.06, 0.02]), 10, params)
    assert np.abs(swapped - want).max() > 1e-3


def test_user_value_map_validation():
    with pytest.raises(ValueError, match="value_map has 3 rows, filters_l has 2"):
        HIFMParams(shrink="value_map", value_map=np.zeros((3, 101)))
    with pytest.raises(ValueError, match="finite"):
        HIFMParams(shrink="value_map", value_map=(0.0, float("nan"), 1.0))


# ---------------------------------------------------------------- callback


def test_callback_sees_every_iterate(pair):
    a, b = pair
    seen = []
    hifm.solve(a, b, iters=6, dtype="float64", callback=lambda s: seen.append((s.iteration, s.result().copy())))
    assert [n for n, _ in seen] == [1, 2, 3, 4, 5, 6]
    for n, y in seen:  # the n-th call holds Yⁿ, i.e. what solve returns after n iterations
        np.testing.assert_array_equal(np.clip(y, 0, 1), hifm.solve(a, b, iters=n, dtype="float64"))


def test_callback_stops_with_tol(pair):
    a, b = pair
    calls = []
    _, info = hifm.solve(a, b, iters=300, tol=1e-3, callback=lambda s: calls.append(s.iteration), return_info=True)
    assert info.iterations < 300 and calls == list(range(1, info.iterations + 1))


# ---------------------------------------------------------------- threads and FFT library


@pytest.mark.parametrize("library", ["scipy", "torch"])
def test_workers_change_nothing_but_the_threads(pair, library, monkeypatch):
    if library == "torch":
        torch = pytest.importorskip("torch")
        threads = torch.get_num_threads()
        torch.set_num_threads(3)  # neither 1 nor 2: the solves below must restore it
    monkeypatch.setenv("HIFM_FFT", library)
    a, b = pair
    try:
        one, info = hifm.solve(a, b, iters=20, dtype="float64", workers=1, return_info=True)
        two = hifm.solve(a, b, iters=20, dtype="float64", workers=2)
        if library == "torch":
            assert torch.get_num_threads() == 3  # the solve restores torch's setting
    finally:
        if library == "torch":
            torch.set_num_threads(threads)
    assert info.fft == library
    # measured: 0
    np.testing.assert_allclose(two, one, rtol=0, atol=1e-15)


@pytest.mark.parametrize("dtype,tol", [("float64", 5e-15), ("float32", 2e-6)])
def test_torch_fft_y_step_equals_scipy(pair, dtype, tol, monkeypatch):
    """HIFM_FFT=torch: the same Y = 𝓕⁻¹[𝓕(Ens)/D] with torch.fft (measured ≤ 2.3e-15 in float64,
    ≤ 9.6e-7 in float32 with the default model)."""
    pytest.importorskip("torch")
    a, b = pair
    monkeypatch.setenv("HIFM_FFT", "scipy")
    ref, info_s = hifm.solve(a, b, iters=25, dtype=dtype, mu=0.01, return_info=True, denoise_sources=False)
    monkeypatch.setenv("HIFM_FFT", "torch")
    got, info_t = hifm.solve(a, b, iters=25, dtype=dtype, mu=0.01, return_info=True, denoise_sources=False)
    assert (info_s.fft, info_t.fft) == ("scipy", "torch")
    np.testing.assert_allclose(got, ref, rtol=0, atol=tol)
    assert np.abs(got - hifm.anchor(a, b).astype(dtype)).max() > 1e-3  # the Y-step ran


def test_fft_library_setting(monkeypatch):
    monkeypatch.delenv("HIFM_FFT", raising=False)
    assert fft_library() == "scipy"
    monkeypatch.setenv("HIFM_FFT", "Torch")
    assert fft_library() == "torch"
    monkeypatch.setenv("HIFM_FFT", "fftw")
    with pytest.raises(ValueError, match="HIFM_FFT must be 'scipy' or 'torch', got 'fftw'"):
        fft_library()


def test_workers_reach_the_fft(pair, monkeypatch):
    """``workers`` is the thread count of the Y-step's FFT (scipy.fft.set_workers)."""
    import scipy.fft

    asked = []
    real = scipy.fft.set_workers

    def spy(n):
        asked.append(n)
        return real(n)

    monkeypatch.setenv("HIFM_FFT", "scipy")
    monkeypatch.setattr(scipy.fft, "set_workers", spy)
    a, b = pair
    hifm.solve(a, b, iters=3, workers=2, denoise_sources=False)
    assert asked == [2, 2, 2]
    asked.clear()  # the sources' TV denoising (a noisy pair) uses the same threads
    hifm.solve(np.clip(a + 0.1 * np.sin(np.arange(a.shape[1])), 0, 1), b, iters=3, workers=2)
    assert len(asked) > 3 and set(asked) == {2}

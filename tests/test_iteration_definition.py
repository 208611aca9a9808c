"""One ADMM iteration (hifm.iteration, DESIGN §2.1) against a transcription of its five steps with
sparse matrices: the definition that the solver's reference engine and every DeRUN stage share.

The tests comparing DeRUN with the solver cannot see a bug in this shared definition (both
sides would carry it), so it is checked here on its own, on NumPy and on torch (DeRUN's path,
with its fast kernels), from a random state (not the start, where several terms vanish) and
with a random ∇_k target T (the argument ``grad_m_k``; ∇_k M in the model of the supplement).
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from hifm import filters, iteration, ops

SHAPE = (9, 11)


def circulant(kernel: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """Matrix of the circular convolution (K ⊛ x)[i, j] = Σ_{u,v} K[u, v] x[i − (u − c₀), j − (v − c₁)]."""
    h, w = shape
    kh, kw = kernel.shape
    idx = np.arange(h * w).reshape(h, w)
    rows, cols, vals = [], [], []
    for u in range(kh):
        for v in range(kw):
            if kernel[u, v] != 0:
                rows.append(idx.ravel())
                cols.append(np.roll(idx, (u - kh // 2, v - kw // 2), (0, 1)).ravel())
                vals.append(np.full(h * w, kernel[u, v]))
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(h * w, h * w))


def soft(x: np.ndarray, t: float) -> np.ndarray:
    return np.sign(x) * np.maximum(np.abs(x) - t, 0.0)


def transcription(state, m, target, kl, kk, w, lam):
    """§2.1 steps 1–5 with matrices: C_l, C_k the filters' circulant matrices; vectors are images."""
    y0, e, f, h, g = (np.asarray(x, dtype=np.float64) for x in state)
    cl = [circulant(k, SHAPE) for k in kl]
    ck = [circulant(k, SHAPE) for k in kk]
    vec = lambda x: x.ravel()  # noqa: E731
    # 1. Y-step: (I + Σ ρ_l C_lᵀC_l + Σ τ_k C_kᵀC_k) Y = M + Σ τ_k C_kᵀ(T_k + H_k − G_k) + Σ ρ_l C_lᵀ(E_l − F_l)
    a = sp.identity(m.size, format="csr")
    rhs = vec(m).copy()
    for i, c in enumerate(cl):
        a = a + w["rho"][i] * (c.T @ c)
        rhs += w["rho"][i] * (c.T @ vec(e[i] - f[i]))
    for i, c in enumerate(ck):
        a = a + w["tau"][i] * (c.T @ c)
        rhs += w["tau"][i] * (c.T @ vec(target[i] + h[i] - g[i]))
    y = spla.spsolve(a.tocsc(), rhs)
    # 2. E-step, 3. F-step (per ∇_l filter)
    e_new, f_new = np.empty_like(e), np.empty_like(f)
    for i, c in enumerate(cl):
        gy = (c @ y).reshape(SHAPE)
        e_new[i] = soft(gy + f[i], lam[i] / w["rho"][i])
        f_new[i] = f[i] + w["eta"][i] * (gy - e_new[i])
    # 4. H-step: J gradient steps on τ/2‖C_k Y − T_k − H + G‖² + μ Σ log(1 + θH²); 5. G-step
    h_new, g_new = np.empty_like(h), np.empty_like(g)
    for i, c in enumerate(ck):
        d = (c @ y).reshape(SHAPE) - target[i]
        hh = h[i].copy()
        tau, mu, theta, sigma = (w[k][i] for k in ("tau", "mu", "theta", "sigma"))
        for _ in range(w["h_steps"]):
            grad = -tau * (d - hh + g[i]) + mu * 2 * theta * hh / (1 + theta * hh * hh)
            hh = hh - sigma * grad
        h_new[i] = hh
        g_new[i] = g[i] + w["omega"][i] * (d - hh)
    return y.reshape(SHAPE), e_new, f_new, h_new, g_new


def random_case(bank_l: str, bank_k: str, h_steps: int, seed: int):
    rng = np.random.default_rng(seed)
    kl, kk = filters.get_bank(bank_l).kernels, filters.get_bank(bank_k).kernels
    nl, nk = len(kl), len(kk)
    m = rng.random(SHAPE)
    state = iteration.ADMMState(
        rng.random(SHAPE), 0.2 * rng.standard_normal((nl,) + SHAPE), 0.05 * rng.standard_normal((nl,) + SHAPE),
        0.2 * rng.standard_normal((nk,) + SHAPE), 0.05 * rng.standard_normal((nk,) + SHAPE),
    )
    target = 0.3 * rng.standard_normal((nk,) + SHAPE)
    w = dict(rho=rng.uniform(0.5, 2, nl), eta=rng.uniform(0.5, 1.5, nl), tau=rng.uniform(0.5, 2, nk),
             omega=rng.uniform(0.5, 1.5, nk), mu=rng.uniform(0.01, 0.1, nk), theta=rng.uniform(20, 80, nk),
             h_steps=h_steps)
    w["sigma"] = 0.9 / (w["tau"] + 2 * w["mu"] * w["theta"])
    lam = rng.uniform(0.02, 0.1, nl)
    return m, state, target, kl, kk, w, lam


CASES = [("diff", "diff", 1, 0), ("dct3", "diff", 2, 1), ("diff4", "dct3", 3, 2)]


@pytest.mark.parametrize("bank_l,bank_k,h_steps,seed", CASES)
def test_admm_step_equals_the_transcription_numpy(bank_l, bank_k, h_steps, seed):
    m, state, target, kl, kk, w, lam = random_case(bank_l, bank_k, h_steps, seed)
    shrink = ops.soft_shrink_for(lam, w["rho"])
    weights = iteration.StepWeights(shrink=shrink, **{k: v for k, v in w.items()})
    denom = ops.denominator(kl, w["rho"], kk, w["tau"], SHAPE)
    got = iteration.admm_step(state, m, target, denom, kl, kk, weights)
    want = transcription(state, m, target, kl, kk, w, lam)
    for name, x, y in zip(iteration.ADMMState._fields, got, want):
        # measured ≤ 2e-15
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("bank_l,bank_k,h_steps,seed", CASES)
@pytest.mark.parametrize("autograd", [False, True], ids=["inference", "graph"])
def test_admm_step_equals_the_transcription_torch(bank_l, bank_k, h_steps, seed, autograd):
    """DeRUN's path: torch tensors (fast kernels without a graph, generic ones with one)."""
    torch = pytest.importorskip("torch")
    m, state, target, kl, kk, w, lam = random_case(bank_l, bank_k, h_steps, seed)
    t = lambda x: torch.tensor(x, dtype=torch.float64, requires_grad=autograd)  # noqa: E731
    tw = {k: (v if k == "h_steps" else t(v)) for k, v in w.items()}
    shrink = ops.soft_shrink_for(t(lam), tw["rho"])
    weights = iteration.StepWeights(shrink=shrink, **tw)
    tkl, tkk = t(kl), t(kk)
    denom = ops.denominator(tkl, tw["rho"], tkk, tw["tau"], SHAPE)
    got = iteration.admm_step(iteration.ADMMState(*(t(x) for x in state)), t(m), t(target), denom, tkl, tkk, weights)
    want = transcription(state, m, target, kl, kk, w, lam)
    for name, x, y in zip(iteration.ADMMState._fields, got, want):
        # measured ≤ 2e-15
        np.testing.assert_allclose(x.detach().numpy(), y, rtol=0, atol=1e-14, err_msg=name)


def test_init_state():
    """Y⁰ = M, E⁰ = ∇_l M, F⁰ = 0, H⁰ = 0, G⁰ = 0 (§2.1), with ∇ as circulant matrices."""
    rng = np.random.default_rng(4)
    m = rng.random(SHAPE)
    kl, kk = filters.get_bank("dct3").kernels, filters.get_bank("diff").kernels
    s = iteration.init_state(m, kl, kk)
    np.testing.assert_array_equal(s.y, m)
    want_e = np.stack([(circulant(k, SHAPE) @ m.ravel()).reshape(SHAPE) for k in kl])
    np.testing.assert_allclose(s.e, want_e, rtol=0, atol=1e-15)
    for x, n in ((s.f, len(kl)), (s.h, len(kk)), (s.g, len(kk))):
        assert x.shape == (n,) + SHAPE and not np.any(x)

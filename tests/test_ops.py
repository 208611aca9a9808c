"""The operators of §2.1 against independent references (FFT, sparse direct solves)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from hifm import filters, ops

BANKS = ["diff", "diff4", "dct3"]


def circulant_matrix(kernel: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """Sparse matrix of the circular convolution with ``kernel``, built tap by tap from indices."""
    h, w = shape
    kh, kw = kernel.shape
    idx = np.arange(h * w).reshape(h, w)
    rows, cols, vals = [], [], []
    for u in range(kh):
        for v in range(kw):
            if kernel[u, v] == 0:
                continue
            # out[i, j] += K[u, v] * x[i - (u - c0), j - (v - c1)]
            src = np.roll(idx, (u - kh // 2, v - kw // 2), (0, 1))
            rows.append(idx.ravel())
            cols.append(src.ravel())
            vals.append(np.full(h * w, kernel[u, v]))
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(h * w, h * w))


@pytest.mark.parametrize("bank", BANKS)
def test_grad_matches_fft_and_sparse(bank, rng):
    k = filters.get_bank(bank).kernels
    x = rng.random((9, 13))
    g = ops.grad(x, k)
    k_hat = filters.otf(k, x.shape)
    via_fft = np.fft.irfft2(k_hat * np.fft.rfft2(x), s=x.shape)
    np.testing.assert_allclose(g, via_fft, atol=1e-13)
    for n in range(k.shape[0]):
        np.testing.assert_allclose(g[n].ravel(), circulant_matrix(k[n], x.shape) @ x.ravel(), atol=1e-13)


def test_forward_difference_convention(rng):
    x = rng.random((5, 6))
    g = ops.grad(x, filters.differences().kernels)
    np.testing.assert_allclose(g[0][:, :-1], x[:, 1:] - x[:, :-1])
    np.testing.assert_allclose(g[1][:-1], x[1:] - x[:-1])
    np.testing.assert_allclose(g[0][:, -1], x[:, 0] - x[:, -1])  # circular


@pytest.mark.parametrize("bank", BANKS)
def test_adjoint_is_transpose(bank, rng):
    k = filters.get_bank(bank).kernels
    x = rng.random((7, 11))
    z = rng.standard_normal((k.shape[0], 7, 11))
    lhs = np.sum(ops.grad(x, k) * z)
    rhs = np.sum(x * ops.grad_adjoint(z, k))
    assert abs(lhs - rhs) < 1e-12 * max(1.0, abs(lhs))
    dense = sum(circulant_matrix(k[n], x.shape).T @ z[n].ravel() for n in range(k.shape[0]))
    np.testing.assert_allclose(ops.grad_adjoint(z, k).ravel(), dense, atol=1e-12)


@pytest.mark.parametrize("shape", [(8, 8), (7, 9), (5, 13), (3, 4)])  # (3, 4): the smallest image for 3×3 kernels
@pytest.mark.parametrize("bank_l,bank_k", [("diff", "diff"), ("dct3", "diff"), ("diff4", "dct3")])
def test_y_step_equals_sparse_direct_solve(shape, bank_l, bank_k, rng):
    kl = filters.get_bank(bank_l).kernels
    kk = filters.get_bank(bank_k).kernels
    rho = rng.uniform(0.2, 3.0, kl.shape[0])
    tau = rng.uniform(0.2, 3.0, kk.shape[0])
    n = shape[0] * shape[1]
    system = sp.identity(n, format="csr")
    for i in range(kl.shape[0]):
        c = circulant_matrix(kl[i], shape)
        system = system + rho[i] * (c.T @ c)
    for i in range(kk.shape[0]):
        c = circulant_matrix(kk[i], shape)
        system = system + tau[i] * (c.T @ c)
    ens = rng.standard_normal(shape)
    direct = spla.spsolve(system.tocsc(), ens.ravel()).reshape(shape)
    denom = ops.denominator(kl, rho, kk, tau, shape)
    assert denom.min() >= 1.0
    np.testing.assert_allclose(ops.y_step(ens, denom), direct, atol=1e-9, rtol=0)


def test_y_rhs_matches_matrices(rng):
    shape = (6, 7)
    kl, kk = filters.dct_atoms().kernels, filters.differences().kernels
    m = rng.random(shape)
    e, f = rng.standard_normal((2, 8) + shape)
    h, g = rng.standard_normal((2, 2) + shape)
    rho, tau = rng.uniform(0.5, 2, 8), rng.uniform(0.5, 2, 2)
    gm = ops.grad(m, kk)
    got = ops.y_rhs(m, e, f, h, g, gm, kl, rho, kk, tau)
    want = m.ravel().copy()
    for i in range(2):
        c = circulant_matrix(kk[i], shape)
        want += tau[i] * (c.T @ (c @ m.ravel() + h[i].ravel() - g[i].ravel()))
    for i in range(8):
        c = circulant_matrix(kl[i], shape)
        want += rho[i] * (c.T @ (e[i].ravel() - f[i].ravel()))
    np.testing.assert_allclose(got.ravel(), want, atol=1e-12)


def test_h_step_is_a_gradient_step(rng):
    """H-step equals H − σ ∇_H [τ/2‖d − H + G‖² + μ Σ log(1 + θH²)] by finite differences."""
    d, g, h = rng.standard_normal((3, 1, 4, 5)) * 0.1
    tau, mu, theta, sigma = 1.3, 0.2, 50.0, 0.05

    def energy(hh):
        return 0.5 * tau * np.sum((d - hh + g) ** 2) + mu * np.sum(np.log1p(theta * hh**2))

    grad_fd = np.zeros_like(h)
    eps = 1e-6
    for idx in np.ndindex(h.shape):
        hp, hm = h.copy(), h.copy()
        hp[idx] += eps
        hm[idx] -= eps
        grad_fd[idx] = (energy(hp) - energy(hm)) / (2 * eps)
    np.testing.assert_allclose(ops.h_step(h, d, g, tau, mu, theta, sigma), h - sigma * grad_fd, atol=1e-8)


def test_otf_rejects_kernel_larger_than_image():
    with pytest.raises(ValueError, match="larger than the image"):
        filters.otf(filters.dct_atoms().kernels, (2, 2))


def test_dct_atoms_are_orthonormal_and_zero_mean():
    k = filters.dct_atoms().kernels.reshape(8, 9)
    np.testing.assert_allclose(k @ k.T, np.eye(8), atol=1e-12)
    np.testing.assert_allclose(k.sum(1), 0, atol=1e-12)

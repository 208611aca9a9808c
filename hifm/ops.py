"""The operators and updates of the HIFM ADMM, one definition for all backends (§2.1, §6).

Every function is a pure function of arrays (NumPy, CuPy or torch, with autograd)
and takes its array module from its inputs.  Images are ``(..., H, W)``; the
responses of a bank of n filters are ``(..., n, H, W)``; per-filter scalars
(ρ_l, τ_k, η_l, ω_k, μ_k, λ_l, σ_k) are 1-D arrays of length n (or Python
floats) and broadcast as ``(n, 1, 1)``.

Equation numbers refer to DESIGN.md §2.1 and the supplement's (S1)–(S12).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import backend
from .filters import otf
from .shrink import soft_threshold

__all__ = [
    "as_column",
    "grad",
    "grad_adjoint",
    "denominator",
    "y_rhs",
    "y_step",
    "e_step",
    "dual_update",
    "lorentzian",
    "lorentzian_grad",
    "h_step",
    "h_step_bound",
    "objective",
]


def as_column(v: Any, like: Any) -> Any:
    """Per-filter scalars ``(n,)`` (or a scalar) as an ``(n, 1, 1)`` array broadcasting over images."""
    if isinstance(v, (int, float)):
        return v
    if not (backend.is_torch(v) or backend.is_cupy(v)):
        v = backend.asarray_like(np.asarray(v, dtype=np.float64), like)
    if v.ndim == 0:
        return v
    return v.reshape(tuple(v.shape) + (1, 1))


def _taps(kernels: Any) -> tuple[int, int]:
    return kernels.shape[1] // 2, kernels.shape[2] // 2


def grad(x: Any, kernels: Any) -> Any:
    """∇x: the circular convolutions of ``x (..., H, W)`` with each kernel → ``(..., n, H, W)``.

    (K ⊛ x)[i, j] = Σ_{u,v} K[u, v] x[i − (u − c₀), j − (v − c₁)] = Σ_{u,v} K[u, v] roll(x, (u − c₀, v − c₁)).
    """
    xp = backend.get_xp(x, kernels)
    n, kh, kw = kernels.shape
    c0, c1 = _taps(kernels)
    shifted = xp.stack(
        [xp.roll(x, (u - c0, v - c1), (-2, -1)) for u in range(kh) for v in range(kw)], -3
    )  # (..., kh*kw, H, W)
    return xp.einsum("nt,...thw->...nhw", kernels.reshape(n, kh * kw), shifted)


def grad_adjoint(z: Any, kernels: Any) -> Any:
    """∇ᵀz = Σ_n K_nᵀ z_n: correlation with each kernel, summed over the bank → ``(..., H, W)``."""
    xp = backend.get_xp(z, kernels)
    n, kh, kw = kernels.shape
    c0, c1 = _taps(kernels)
    per_tap = xp.einsum("nt,...nhw->...thw", kernels.reshape(n, kh * kw), z)
    out = 0
    t = 0
    for u in range(kh):
        for v in range(kw):
            out = out + xp.roll(per_tap[..., t, :, :], (c0 - u, c1 - v), (-2, -1))
            t += 1
    return out


def denominator(kernels_l: Any, rho: Any, kernels_k: Any, tau: Any, shape: tuple[int, int]) -> Any:
    """D = 1 + Σ_l ρ_l |K̂_l|² + Σ_k τ_k |K̂_k|², the diagonal of the Y-step (S6); D ≥ 1.

    Shape ``(H, W//2 + 1)``, real.  Precompute once per image size.
    """
    def energy(kernels: Any, weights: Any) -> Any:
        if kernels is None or kernels.shape[0] == 0:
            return 0
        k_hat = otf(kernels, shape)
        power = k_hat.real**2 + k_hat.imag**2
        return (as_column(weights, power) * power).sum(0)

    return 1 + energy(kernels_l, rho) + energy(kernels_k, tau)


def y_rhs(
    m: Any,
    e: Any,
    f: Any,
    h: Any,
    g: Any,
    grad_m: Any,
    kernels_l: Any,
    rho: Any,
    kernels_k: Any,
    tau: Any,
) -> Any:
    """Ens = M + Σ_k τ_k ∇_kᵀ(∇_k M + H_k − G_k) + Σ_l ρ_l ∇_lᵀ(E_l − F_l)  (S5)."""
    out = m
    if kernels_k is not None and kernels_k.shape[0]:
        out = out + grad_adjoint(as_column(tau, m) * (grad_m + h - g), kernels_k)
    if kernels_l is not None and kernels_l.shape[0]:
        out = out + grad_adjoint(as_column(rho, m) * (e - f), kernels_l)
    return out


def y_step(ens: Any, denom: Any) -> Any:
    """Y = 𝓕⁻¹[𝓕(Ens) / D]  (S6), exact for circular operators."""
    fft = backend.fft_module(ens)
    shape = tuple(ens.shape[-2:])
    return fft.irfft2(fft.rfft2(ens, shape) / denom, shape)


def e_step(grad_y: Any, f: Any, shrink: Any) -> Any:
    """E_l = S(∇_l Y + F_l)  (S7); ``shrink`` maps the argument to E (soft threshold or value map)."""
    return shrink(grad_y + f)


def dual_update(dual: Any, residual: Any, step: Any) -> Any:
    """Scaled dual ascent F ← F + η·(∇_l Y − E)  (S9), or G ← G + ω·(∇_k(Y − M) − H)  (S12)."""
    return dual + as_column(step, residual) * residual


def lorentzian(a: Any, theta: Any) -> Any:
    """φ(a) = log(1 + θ a²), elementwise (the prior on ∇_k(Y − M) in (S1))."""
    xp = backend.get_xp(a)
    return xp.log1p(as_column(theta, a) * a * a)


def lorentzian_grad(a: Any, theta: Any) -> Any:
    """φ'(a) = 2θa / (1 + θa²); |φ'| ≤ √θ and the curvature φ'' ≤ 2θ."""
    th = as_column(theta, a)
    return 2 * th * a / (1 + th * a * a)


def h_step_bound(tau: Any, mu: Any, theta: Any) -> Any:
    """Lipschitz constant τ + 2μθ of the H-subproblem's gradient (§2.1 step 4)."""
    return tau + 2 * mu * theta


def h_step(h: Any, grad_ym: Any, g: Any, tau: Any, mu: Any, theta: Any, sigma: Any) -> Any:
    """One gradient step of (S10–S11) on τ/2‖∇_k(Y − M) − H + G‖² + μ φ(H):

    H ← H − σ [ −τ (∇_k(Y − M) − H + G) + μ · 2θH / (1 + θH²) ].
    """
    tau_c, mu_c, sig_c = as_column(tau, h), as_column(mu, h), as_column(sigma, h)
    gradient = -tau_c * (grad_ym - h + g) + mu_c * lorentzian_grad(h, theta)
    return h - sig_c * gradient


def objective(y: Any, m: Any, kernels_l: Any, lam: Any, kernels_k: Any, mu: Any, theta: Any) -> Any:
    """J(Y) of (S1) with ψ = |·|: ½‖Y − M‖² + Σ_l λ_l ‖∇_l Y‖₁ + Σ_k μ_k Σ log(1 + θ (∇_k(Y − M))²).

    Sums over the last two axes (and the filter axis); one value per leading index.
    """
    xp = backend.get_xp(y)
    d = y - m
    total = 0.5 * (d * d).sum((-2, -1))
    if kernels_l is not None and kernels_l.shape[0]:
        total = total + (as_column(lam, y) * xp.abs(grad(y, kernels_l))).sum((-3, -2, -1))
    if kernels_k is not None and kernels_k.shape[0]:
        total = total + (as_column(mu, y) * lorentzian(grad(d, kernels_k), theta)).sum((-3, -2, -1))
    return total


def soft_shrink_for(lam: Any, rho: Any) -> Any:
    """The exact E-step shrinkage for ψ = |·|: a closure applying S_{λ/ρ} per filter."""

    def shrink(a: Any) -> Any:
        t = as_column(np.asarray(lam, dtype=np.float64) / np.asarray(rho, dtype=np.float64), a) if not (
            backend.is_torch(lam) or backend.is_torch(rho)
        ) else as_column(lam / rho, a)
        return soft_threshold(a, t)

    return shrink

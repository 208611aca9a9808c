"""Row-streaming Numba kernel for the default banks ∇_l = ∇_k = {∂x, ∂y} with soft thresholding.

One call performs, for the Y just returned by the FFT, steps 2–5 of §2.1 and the
right-hand side Ens of the next step 1, row by row: each row's differences,
E/F- and H/G-updates run as short loops over row buffers that stay in L1 and
vectorise (few pointers per loop), and the combined adjoint arguments
P = ρ(E − F) + τ(T + H − G) never reach main memory.  The gradient target T
(DESIGN §2.4) is either read from two planes (``use_target``) or, for the
supplement's T = ∇M, derived from M's rows on the fly.  Forward differences
(``hifm.filters.differences``): ∂x Y[i, j] = Y[i, j+1] − Y[i, j],
∂y Y[i, j] = Y[i+1, j] − Y[i, j] (circular), so

    Ens[i, j] = M[i, j] + Px[i, j−1] − Px[i, j] + Py[i−1, j] − Py[i, j].

The arithmetic runs in the arrays' dtype.  Tested against
:func:`hifm.iteration.admm_step` in ``tests/test_fused.py``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["diff_iteration", "constants"]

_FM = True  # reassociation/FMA only; every tested quantity matches the reference to rounding


def constants(t, rho, eta, tau, omega, mu, theta, sigma, lam, dtype) -> np.ndarray:
    """Pack the scalars of one iteration for :func:`diff_iteration` (in the image dtype)."""
    return np.array([t, rho, eta, tau, omega, mu, theta, sigma, lam, 1.0, 2.0 * mu * theta], dtype=dtype)


@njit(cache=True, fastmath=_FM, inline="always", error_model="numpy")
def _ef(g, f, p, e_out, t, eta, rho):
    """E = S_t(∇Y + F) (S7), F ← F + η(∇Y − E) (S9), p = ρ(E − F)."""
    for j in range(p.shape[0]):
        a = g[j] + f[j]
        e = a - min(max(a, -t), t)
        fn = f[j] + eta * (g[j] - e)
        f[j] = fn
        e_out[j] = e
        p[j] = rho * (e - fn)


@njit(cache=True, fastmath=_FM, inline="always", error_model="numpy")
def _hg(d, gm, h, g, p, tau, omega, mu2t, theta, sigma, one):
    """H ← H − σ[−τ(d − H + G) + 2μθH/(1 + θH²)] (S11), G ← G + ω(d − H) (S12), p += τ(T + H − G)
    with d = ∇Y − T and ``gm`` = T."""
    for j in range(p.shape[0]):
        hv = h[j]
        gv = g[j]
        dv = d[j]
        hv = hv - sigma * (-tau * (dv - hv + gv) + mu2t * hv / (one + theta * hv * hv))
        gv = gv + omega * (dv - hv)
        h[j] = hv
        g[j] = gv
        p[j] += tau * (gm[j] + hv - gv)


@njit(cache=True, fastmath=_FM, inline="always", error_model="numpy")
def _exact_hg(g, p, tau):
    """μ = 0, σ = 1/τ, ω = 1: the H-step is exact, H = ∇Y − T + G, so G stays 0 and
    τ(T + H − G) = τ∇Y: p += τ∇Y, and H, G need not be stored (whatever T is)."""
    for j in range(p.shape[0]):
        p[j] += tau * g[j]


@njit(cache=True, fastmath=_FM, error_model="numpy")
def _monitor_row(y0, m0, yp, gx, gy, dx, dy, ex, ey, hx, hy, lam, mu, theta):
    """Row sums of the monitored quantities, in float64 (log1p only when μ > 0)."""
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = 0.0
    for j in range(y0.shape[0]):
        d = float(y0[j]) - float(m0[j])
        a0 += 0.5 * d * d
        a1 += abs(float(gx[j])) + abs(float(gy[j]))
        r = float(gx[j]) - float(ex[j])
        a3 += r * r
        r = float(gy[j]) - float(ey[j])
        a3 += r * r
        r = float(dx[j]) - float(hx[j])
        a4 += r * r
        r = float(dy[j]) - float(hy[j])
        a4 += r * r
        r = float(y0[j]) - float(yp[j])
        a5 += r * r
        a6 += float(yp[j]) * float(yp[j])
    if mu != 0.0:
        th = float(theta)
        for j in range(y0.shape[0]):
            a2 += np.log1p(th * float(dx[j]) ** 2) + np.log1p(th * float(dy[j]) ** 2)
    return a0, float(lam) * a1, float(mu) * a2, a3, a4, a5, a6


@njit(cache=True, fastmath=_FM, error_model="numpy")
def diff_iteration(y, m, f, hh, gg, ens, c, monitor, y_prev, acc, exact_hg, tt, use_target):
    """Steps 2–5 of §2.1 for the Y in ``y`` and Ens for the next Y-step, in place.

    ``f``, ``hh``, ``gg`` are ``(2, H, W)`` (x then y); ``c`` from :func:`constants`.
    ``tt`` ``(2, H, W)``: the gradient target T when ``use_target``; otherwise T = ∇M
    is computed from M's rows.
    ``exact_hg`` (valid for μ = 0, σ = 1/τ, ω = 1 only) skips the H/G arrays: there
    H = ∇Y − T and G = 0 exactly, so the iterates are those of the full update.
    With ``monitor``, ``acc`` (float64) receives [½‖Y−M‖², λΣ|∇Y|, μΣlog(1+θ(∇Y−T)²),
    Σ(∇Y−E)², Σ(∇Y−T−H)², Σ(Y−Y_prev)², ΣY_prev²].
    """
    h, w = y.shape
    t, rho, eta, tau, omega = c[0], c[1], c[2], c[3], c[4]
    mu, theta, sigma, lam, one, mu2t = c[5], c[6], c[7], c[8], c[9], c[10]
    dt = y.dtype
    px = np.empty(w, dt)
    py = np.empty(w, dt)
    py_prev = np.empty(w, dt)
    px0 = np.empty(w, dt)
    py0 = np.empty(w, dt)
    gx = np.empty(w, dt)
    gy = np.empty(w, dt)
    gmx = np.empty(w, dt)
    gmy = np.empty(w, dt)
    dx = np.empty(w, dt)
    dy = np.empty(w, dt)
    ex = np.empty(w, dt)
    ey = np.empty(w, dt)
    s = np.zeros(7)
    for i in range(h):
        ip = i + 1 if i + 1 < h else 0
        y0 = y[i]
        y1 = y[ip]
        m0 = m[i]
        m1 = m[ip]
        for j in range(w - 1):
            gx[j] = y0[j + 1] - y0[j]
        gx[w - 1] = y0[0] - y0[w - 1]
        for j in range(w):
            gy[j] = y1[j] - y0[j]
        if use_target:
            tx = tt[0, i]
            ty = tt[1, i]
            for j in range(w):
                gmx[j] = tx[j]
                gmy[j] = ty[j]
        else:
            for j in range(w - 1):
                gmx[j] = m0[j + 1] - m0[j]
            gmx[w - 1] = m0[0] - m0[w - 1]
            for j in range(w):
                gmy[j] = m1[j] - m0[j]
        for j in range(w):
            dx[j] = gx[j] - gmx[j]
            dy[j] = gy[j] - gmy[j]
        _ef(gx, f[0, i], px, ex, t, eta, rho)
        _ef(gy, f[1, i], py, ey, t, eta, rho)
        if exact_hg:
            _exact_hg(gx, px, tau)
            _exact_hg(gy, py, tau)
            h_x = dx
            h_y = dy
        else:
            _hg(dx, gmx, hh[0, i], gg[0, i], px, tau, omega, mu2t, theta, sigma, one)
            _hg(dy, gmy, hh[1, i], gg[1, i], py, tau, omega, mu2t, theta, sigma, one)
            h_x = hh[0, i]
            h_y = hh[1, i]
        if monitor:
            a0, a1, a2, a3, a4, a5, a6 = _monitor_row(y0, m0, y_prev[i], gx, gy, dx, dy, ex, ey, h_x, h_y, lam, mu, theta)
            s[0] += a0
            s[1] += a1
            s[2] += a2
            s[3] += a3
            s[4] += a4
            s[5] += a5
            s[6] += a6
        if i == 0:
            px0[:] = px
            py0[:] = py
        else:
            e = ens[i]
            e[0] = m0[0] + px[w - 1] - px[0] + py_prev[0] - py[0]
            for j in range(1, w):
                e[j] = m0[j] + px[j - 1] - px[j] + py_prev[j] - py[j]
        py_prev[:] = py
    e = ens[0]
    m0 = m[0]
    e[0] = m0[0] + px0[w - 1] - px0[0] + py_prev[0] - py0[0]
    for j in range(1, w):
        e[j] = m0[j] + px0[j - 1] - px0[j] + py_prev[j] - py0[j]
    for k in range(7):
        acc[k] = s[k]

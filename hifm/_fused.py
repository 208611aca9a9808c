"""Fused Numba kernels for the NumPy solver: one ADMM iteration minus the FFT.

This is a fast transcription of :func:`hifm.iteration.admm_step` (steps 2–5 of
§2.1 and the right-hand side Ens of step 1) for small fixed filter banks: each
pixel's E-, F-, H- and G-updates happen in one pass over memory, with no
temporaries and no ``np.roll`` copies; a second pass applies ∇ᵀ.  It is tested
against the reference functions in ``tests/test_fused.py``.

Kernels are given as tap lists: for filter n, ``taps[n, :count[n]]`` rows of
(du, dv, weight) with (K ⊛ x)[i, j] = Σ weight · x[i − du, j − dv] (circular).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .filters import FilterBank

__all__ = ["tap_table", "pass_update", "pass_rhs"]


def tap_table(bank: FilterBank) -> tuple[np.ndarray, np.ndarray]:
    """Non-zero taps of a bank: ``(n, T, 3)`` float64 rows (du, dv, w) and counts ``(n,)``."""
    n, kh, kw = bank.kernels.shape
    c0, c1 = kh // 2, kw // 2
    rows = []
    for k in bank.kernels:
        rows.append([(u - c0, v - c1, k[u, v]) for u in range(kh) for v in range(kw) if k[u, v] != 0.0])
    t = max(1, max((len(r) for r in rows), default=1))
    table = np.zeros((n, t, 3))
    counts = np.zeros(n, dtype=np.int64)
    for i, r in enumerate(rows):
        counts[i] = len(r)
        if r:
            table[i, : len(r)] = np.asarray(r)
    return table, counts


@njit(cache=True, inline="always", error_model="numpy")
def _conv_at(x, taps, count, i, j, h, w):
    acc = 0.0
    for t in range(count):
        ii = i - int(taps[t, 0])
        jj = j - int(taps[t, 1])
        if ii < 0:
            ii += h
        elif ii >= h:
            ii -= h
        if jj < 0:
            jj += w
        elif jj >= w:
            jj -= w
        acc += taps[t, 2] * x[ii, jj]
    return acc


@njit(cache=True, error_model="numpy")
def pass_update(
    y, m, f, hh, gg, taps_l, count_l, taps_k, count_k,
    thresh, q, use_map, map_p1, map_step, rho, eta,
    tau, omega, mu, theta, sigma, h_steps, lam,
    p_l, p_k, merge, monitor, y_prev, acc, target, use_target,
):
    """Steps 2–5 of §2.1 at every pixel, given the new Y; writes ρ(E − F) into ``p_l`` and
    τ(T_k + H − G) into ``p_k`` (or adds it into ``p_l`` when ``merge``: equal banks).

    T_k is ``target[k]`` when ``use_target`` (DESIGN §2.4), else ∇_k M (computed here).
    With ``monitor`` it accumulates into ``acc``: [½‖Y−M‖², Σλ|∇_lY|, Σμ log(1+θ(∇_kY − T_k)²),
    Σ(∇_lY − E)², Σ(∇_kY − T_k − H)², Σ(Y − Y_prev)², ΣY_prev²].
    """
    h, w = y.shape
    nl = taps_l.shape[0]
    nk = taps_k.shape[0]
    nq = q.shape[1]
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    a4 = 0.0
    a5 = 0.0
    a6 = 0.0
    for i in range(h):
        for j in range(w):
            for l in range(nl):
                gy = _conv_at(y, taps_l[l], count_l[l], i, j, h, w)
                arg = gy + f[l, i, j]
                if use_map:
                    pos = (arg - map_p1) / map_step
                    if pos < 0.0:
                        e = arg - map_p1 + q[l, 0]
                    elif pos > nq - 1:
                        e = arg + map_p1 + q[l, nq - 1]
                    else:
                        k = int(np.floor(pos))
                        if k > nq - 2:
                            k = nq - 2
                        r = pos - k
                        e = q[l, k] + r * (q[l, k + 1] - q[l, k])
                else:
                    t = thresh[l]
                    if arg > t:
                        e = arg - t
                    elif arg < -t:
                        e = arg + t
                    else:
                        e = 0.0
                res = gy - e
                fn = f[l, i, j] + eta[l] * res
                f[l, i, j] = fn
                p_l[l, i, j] = rho[l] * (e - fn)
                if monitor:
                    a1 += lam[l] * abs(gy)
                    a3 += res * res
            for k in range(nk):
                if use_target:
                    gm = target[k, i, j]
                else:
                    gm = _conv_at(m, taps_k[k], count_k[k], i, j, h, w)
                d = _conv_at(y, taps_k[k], count_k[k], i, j, h, w) - gm
                hv = hh[k, i, j]
                gv = gg[k, i, j]
                for _ in range(h_steps):
                    hv = hv - sigma[k] * (-tau[k] * (d - hv + gv) + mu[k] * 2.0 * theta[k] * hv / (1.0 + theta[k] * hv * hv))
                gv = gv + omega[k] * (d - hv)
                hh[k, i, j] = hv
                gg[k, i, j] = gv
                val = tau[k] * (gm + hv - gv)
                if merge:
                    p_l[k, i, j] += val
                else:
                    p_k[k, i, j] = val
                if monitor:
                    a2 += mu[k] * np.log1p(theta[k] * d * d)
                    a4 += (d - hv) * (d - hv)
            if monitor:
                dv = y[i, j] - m[i, j]
                a0 += 0.5 * dv * dv
                dy = y[i, j] - y_prev[i, j]
                a5 += dy * dy
                a6 += y_prev[i, j] * y_prev[i, j]
    acc[0] = a0
    acc[1] = a1
    acc[2] = a2
    acc[3] = a3
    acc[4] = a4
    acc[5] = a5
    acc[6] = a6


@njit(cache=True, inline="always", error_model="numpy")
def _adj_at(p, taps, count, i, j, h, w):
    acc = 0.0
    for t in range(count):
        ii = i + int(taps[t, 0])
        jj = j + int(taps[t, 1])
        if ii < 0:
            ii += h
        elif ii >= h:
            ii -= h
        if jj < 0:
            jj += w
        elif jj >= w:
            jj -= w
        acc += taps[t, 2] * p[ii, jj]
    return acc


@njit(cache=True, error_model="numpy")
def pass_rhs(m, p_l, taps_l, count_l, p_k, taps_k, count_k, merge, out):
    """Ens = M + Σ_l ∇_lᵀ p_l + Σ_k ∇_kᵀ p_k (step 1 of §2.1, with p from :func:`pass_update`)."""
    h, w = m.shape
    nl = taps_l.shape[0]
    nk = taps_k.shape[0]
    for i in range(h):
        for j in range(w):
            s = m[i, j]
            for l in range(nl):
                s += _adj_at(p_l[l], taps_l[l], count_l[l], i, j, h, w)
            if not merge:
                for k in range(nk):
                    s += _adj_at(p_k[k], taps_k[k], count_k[k], i, j, h, w)
            out[i, j] = s

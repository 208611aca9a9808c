"""VIF for image fusion: Han et al.'s VIFF (``VIFF_Public.m``), not Sheikh & Bovik's pixel VIF.

Per-plane kernel takes 2-D float64 planes on the 0..255 scale.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._common import PlaneCache, cached, filter2_valid, gaussian_window
from .protocol import compute

__all__ = ["vif", "vif_plane"]

_SIGMA_N2 = 0.005 * 255.0 * 255.0  # visual-noise variance, 325.125
_C = 1e-7
_WEIGHTS = (1.0 / 2.15, 0.0, 0.15 / 2.15, 1.0 / 2.15)
_WINDOWS = [gaussian_window(2 ** (5 - s) + 1, (2 ** (5 - s) + 1) / 5.0) for s in range(1, 5)]


def _pyramid(x: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per scale: (image at that scale, local mean, local variance before clipping)."""
    out = []
    cur = x
    for s, win in enumerate(_WINDOWS):
        if s > 0:
            cur = np.ascontiguousarray(filter2_valid(cur, win, row_step=2)[:, ::2])
        mu = filter2_valid(cur, win)
        var = filter2_valid(cur * cur, win) - mu * mu
        out.append((cur, mu, var))
    return out


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _gain(cov: float, v1: float, v2: float) -> tuple[float, float, float]:
    """(g, var_S, var_v) of one position with the reference's clipping rules, in its order:
    g = cov/(var_S + 1e-10), var_v = var_F − g cov; var_S < 1e-10: g = 0, var_v = var_F,
    var_S = 0; var_F < 1e-10: g = 0, var_v = 0; g < 0: var_v = var_F, g = 0;
    var_v ≤ 1e-10: var_v = 1e-10 (variances clipped at 0 first)."""
    s1 = max(v1, 0.0)
    s2 = max(v2, 0.0)
    g = cov / (s1 + 1e-10)
    sv = s2 - g * cov
    if s1 < 1e-10:
        g = 0.0
        sv = s2
        s1 = 0.0
    if s2 < 1e-10:
        g = 0.0
        sv = 0.0
    if g < 0.0:
        sv = s2
        g = 0.0
    if sv <= 1e-10:
        sv = 1e-10
    return g, s1, sv


@njit(cache=True, nogil=True, error_model="numpy")
def _scale_log_arguments(cov_a: np.ndarray, v_a: np.ndarray, cov_b: np.ndarray, v_b: np.ndarray,
                         v_f: np.ndarray, u: np.ndarray) -> None:
    """Per position of one scale, for the source with the smaller g (A where g_A < g_B), the
    arguments of VID's and VIND's logarithms: u[0] = 1 + g² var_S/(var_v + σ_n²),
    u[1] = 1 + var_S/σ_n²."""
    m, n = cov_a.shape
    for i in range(m):
        for j in range(n):
            ga, s1a, sva = _gain(cov_a[i, j], v_a[i, j], v_f[i, j])
            gb, s1b, svb = _gain(cov_b[i, j], v_b[i, j], v_f[i, j])
            g, s1, sv = (ga, s1a, sva) if ga < gb else (gb, s1b, svb)
            u[0, i, j] = 1.0 + g * g * s1 / (sv + _SIGMA_N2)
            u[1, i, j] = 1.0 + s1 / _SIGMA_N2


@njit(cache=True, nogil=True, error_model="numpy")
def _scale_row_sums(logs: np.ndarray, num: np.ndarray, den: np.ndarray) -> None:
    """Per row of one scale: sums of VID + C and VIND + C (``logs`` = log10 of the
    arguments of :func:`_scale_log_arguments`)."""
    m, n = logs.shape[1:]
    for i in range(m):
        sn = 0.0
        sd = 0.0
        for j in range(n):
            sn += logs[0, i, j] + _C
            sd += logs[1, i, j] + _C
        num[i] = sn
        den[i] = sd


def _covariance(src: list, fus: list, s: int) -> np.ndarray:
    """cov(S, F) at scale ``s``: filtered product minus the product of the local means."""
    xs, mu1, _ = src[s]
    xf, mu2, _ = fus[s]
    return filter2_valid(xs * xf, _WINDOWS[s]) - mu1 * mu2


def vif_plane(a: np.ndarray, b: np.ndarray, f: np.ndarray,
              cache: PlaneCache | None = None) -> float:
    """VIFF = sum_s p_s F_s over 4 scales (p = [1, 0, 0.15, 1] / 2.15); per scale and
    position the source with the smaller gain g is selected and
    F_s = sum(VID_sel + C) / sum(VIND_sel + C).

    Per scale: one compiled pass over the positions for the logarithms' arguments
    (:func:`_scale_log_arguments`), NumPy's ``log10`` over them (SIMD where NumPy has it for
    the processor, within 1 ulp of the C library's), one compiled pass for the row sums
    (:func:`_scale_row_sums`), then NumPy's pairwise sum of the rows; the same value as the
    array formulas up to rounding."""
    pa = cached(cache, "vif_pyramid", a, _pyramid)
    pb = cached(cache, "vif_pyramid", b, _pyramid)
    pf = cached(cache, "vif_pyramid", f, _pyramid)
    total = 0.0
    for s in range(4):
        if _WEIGHTS[s] == 0.0:
            continue
        cov_a = _covariance(pa, pf, s)  # type: ignore[arg-type]
        cov_b = _covariance(pb, pf, s)  # type: ignore[arg-type]
        u = np.empty((2,) + cov_a.shape)
        _scale_log_arguments(cov_a, pa[s][2], cov_b, pb[s][2], pf[s][2], u)  # type: ignore[index]
        np.log10(u, out=u)
        num = np.empty(cov_a.shape[0])
        den = np.empty(cov_a.shape[0])
        _scale_row_sums(u, num, den)
        total += _WEIGHTS[s] * float(np.sum(num) / np.sum(den))
    return total


# --------------------------------------------------------------------------- public API
def vif(fused: object, a: object, b: object, *, protocol: str = "vifb") -> float:
    """Visual information fidelity for fusion, VIFF (Han et al.), as ``VIFF_Public.m``.

    Four scales (Gaussian windows 33, 17, 9, 5, sigma = N/5; 'valid' filtering, dyadic
    decimation); per source S and position: g = cov(S, F) / var(S),
    var_v = var(F) - g cov(S, F) (with the reference's clipping rules),
    VID = log10(1 + g^2 var_S / (var_v + sigma_n^2)), VIND = log10(1 + var_S / sigma_n^2),
    sigma_n^2 = 0.005 * 255^2; per position the source with the smaller g is kept;
    F_s = sum(VID + 1e-7) / sum(VIND + 1e-7); VIFF = sum_s p_s F_s, p = [1, 0, 0.15, 1] / 2.15.
    This is not Sheikh & Bovik's pixel VIF that many Python scripts call "VIF".

    Range [0, inf) (usually below 1; above 1 for contrast enhancement). Higher is better.
    Source: Y. Han, Y. Cai, Y. Cao, X. Xu, "A new image fusion performance metric based on
    visual information fidelity", Information Fusion 14(2) 127-135, 2013.
    """
    return compute("vif", fused, a, b, protocol)

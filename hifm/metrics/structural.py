"""Structural and edge-preservation metrics: SSIM (VIFB's sum of two), Qabf (Xydeas &
Petrovic), Nabf (Kumar's modified artifact measure), CC and SCD.

Per-plane kernels take 2-D float64 planes on the 0..255 scale (``a`` = visible plane,
``b`` = infrared plane, ``f`` = fused plane).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from numba import njit

from ._common import (
    PlaneCache,
    cached,
    convolve_same_zero,
    filter2_valid,
    gaussian_window,
    pearson,
)
from ._filters import correlate3x3
from .protocol import compute

__all__ = [
    "ssim", "qabf", "nabf", "cc", "scd",
    "ssim_plane", "qabf_plane", "nabf_plane", "cc_plane", "scd_plane",
]

# --------------------------------------------------------------------------- SSIM
_SSIM_WIN = gaussian_window(11, 1.5)
_C1 = (0.01 * 255.0) ** 2
_C2 = (0.03 * 255.0) ** 2


def _ssim_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = filter2_valid(x, _SSIM_WIN)
    return mu, filter2_valid(x * x, _SSIM_WIN) - mu * mu


def _ssim(x: np.ndarray, y: np.ndarray, cache: PlaneCache | None) -> float:
    mx, vx = cached(cache, "ssim_stats", x, _ssim_stats)  # type: ignore[misc]
    my, vy = cached(cache, "ssim_stats", y, _ssim_stats)  # type: ignore[misc]
    cov = filter2_valid(x * y, _SSIM_WIN) - mx * my
    num = (2.0 * mx * my + _C1) * (2.0 * cov + _C2)
    den = (mx * mx + my * my + _C1) * (vx + vy + _C2)
    return float(np.mean(num / den))


def ssim_plane(a: np.ndarray, b: np.ndarray, f: np.ndarray,
               cache: PlaneCache | None = None) -> float:
    """SSIM(A, F) + SSIM(B, F): Wang et al.'s SSIM with an 11×11 Gaussian window
    (sigma 1.5), population moments, L = 255, 'valid' map, plain mean of the map."""
    return _ssim(a, f, cache) + _ssim(b, f, cache)


@njit(cache=True, nogil=True, error_model="numpy")
def _qabf_exponents(ga: np.ndarray, ala: np.ndarray, gb: np.ndarray, alb: np.ndarray,
                    gf: np.ndarray, alf: np.ndarray, e: np.ndarray) -> int:
    """Qabf's sigmoid exponents for every pixel (i, j) at i·n + j, per source S (A: e[0], e[1];
    B: e[2], e[3]): k_g (G_SF − d_g) and k_α (A_SF − d_α) (``_KG``, ``_DG``, ``_KA``, ``_DA``
    of the Qabf section below), with G_SF the smaller strength over the larger (the reference's
    G_SF = gF where gS == gF) and A_SF = 1 − |α_S − α_F| / (π/2). Returns m·n."""
    m, n = ga.shape
    e3 = e.reshape((4, e.shape[1] // n, n))  # the same memory: pixel (i, j) at i·n + j
    for i in range(m):
        for j in range(n):
            f = gf[i, j]
            af = alf[i, j]
            for k in range(2):
                gs = ga[i, j] if k == 0 else gb[i, j]
                dal = (ala[i, j] if k == 0 else alb[i, j]) - af
                if gs > f:
                    rel = f / gs
                elif gs == f:
                    rel = f
                else:
                    rel = gs / f
                e3[2 * k, i, j] = _KG * (rel - _DG)
                e3[2 * k + 1, i, j] = _KA * ((1.0 - abs(dal) / (math.pi / 2.0)) - _DA)
    return m * n


@njit(cache=True, nogil=True, error_model="numpy")
def _nabf_exponents(ga: np.ndarray, ala: np.ndarray, gb: np.ndarray, alb: np.ndarray,
                    gf: np.ndarray, alf: np.ndarray, e: np.ndarray) -> int:
    """Nabf's sigmoid exponents, only for the pixels with n = 1 (gF > gA and gF > gB, the only
    ones whose term is not zero), one after the other in row-major order, per source S (A:
    e[0], e[1]; B: e[2], e[3]): −19 (G_SF − 0.5) and −22 (A_SF − 0.5), with G_SF = min/max
    (0 where either strength is 0) and A_SF = |(|α_S − α_F| − π/2)| · 2/π. Returns how many
    pixels were written."""
    m, n = ga.shape
    q = 0
    for i in range(m):
        for j in range(n):
            f = gf[i, j]
            if not ((f > ga[i, j]) & (f > gb[i, j])):
                continue
            for k in range(2):
                gs = ga[i, j] if k == 0 else gb[i, j]
                dal = (ala[i, j] if k == 0 else alb[i, j]) - alf[i, j]
                rel = 0.0 if (gs == 0.0) | (f == 0.0) else min(gs, f) / max(gs, f)
                e[2 * k, q] = -19.0 * (rel - 0.5)
                e[2 * k + 1, q] = -22.0 * (abs(abs(dal) - math.pi / 2.0) * (2.0 / math.pi) - 0.5)
            q += 1
    return q


#: rows per block of :func:`_edge_ratio` (at most 4 × 32 × 640 exponentials: 640 KB)
_ROW_BLOCK = 32


def _edge_ratio(a: np.ndarray, b: np.ndarray, f: np.ndarray, cache: PlaneCache | None, key: str,
                edges: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
                exponents: Callable[..., int], row_sums: Callable[..., None]) -> float:
    """sum(num) / sum(den) of an edge-preservation metric: the (strength, orientation) maps of
    the three planes (cached under ``key``); ``exponents`` writes the arguments of the
    four sigmoids' exponentials per pixel (strength and orientation terms of A–F and B–F), NumPy's
    ``exp`` evaluates them over the whole array (SIMD where NumPy has it for the processor,
    within 1 ulp of the C library's ``exp``; for Nabf only the pixels that need them),
    ``row_sums`` fills per-row numerator and
    denominator in one compiled pass, and NumPy's pairwise sum adds the rows. Done in blocks
    of :data:`_ROW_BLOCK` rows, so that the exponentials stay in the cache between the passes."""
    ga, ala = cached(cache, key, a, edges)  # type: ignore[misc]
    gb, alb = cached(cache, key, b, edges)  # type: ignore[misc]
    gf, alf = cached(cache, key, f, edges)  # type: ignore[misc]
    m, n = ga.shape
    num = np.empty(m)
    den = np.empty(m)
    e = np.empty((4, min(m, _ROW_BLOCK) * n))
    for i0 in range(0, m, _ROW_BLOCK):
        rows = slice(i0, min(m, i0 + _ROW_BLOCK))
        used = exponents(ga[rows], ala[rows], gb[rows], alb[rows], gf[rows], alf[rows], e)
        np.exp(e[:, :used], out=e[:, :used])
        row_sums(ga[rows], gb[rows], gf[rows], e, num[rows], den[rows])
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.sum(num) / np.sum(den))


# --------------------------------------------------------------------------- Qabf
_QABF_SX = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
_QABF_SY = np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]])
_TG, _KG, _DG = 0.9994, -15.0, 0.5
_TA, _KA, _DA = 0.9879, -22.0, 0.8


@njit(cache=True, nogil=True, error_model="numpy")
def _strength_tangent(gx: np.ndarray, gy: np.ndarray, nabf: bool) -> tuple[np.ndarray, np.ndarray]:
    """Edge strength g = sqrt(gx² + gy²) and t = gy / gx per pixel, in one pass; where gx = 0,
    t is chosen so that atan(t) follows the reference: +inf (α = π/2) for Qabf whatever gy;
    for Nabf ±inf with the sign of gy (the array formula's atan(±inf)) and 0 where gy = 0 too.
    The same operations per pixel as the array formulas (no fused multiply-add), so g and t
    have the same bits."""
    m, n = gx.shape
    g = np.empty((m, n))
    t = np.empty((m, n))
    for i in range(m):
        for j in range(n):
            x = gx[i, j]
            y = gy[i, j]
            g[i, j] = math.sqrt(x * x + y * y)
            if x != 0.0:
                t[i, j] = y / x
            elif nabf:
                t[i, j] = 0.0 if y == 0.0 else math.copysign(math.inf, y)
            else:
                t[i, j] = math.inf
    return g, t


def _strength_angle(gx: np.ndarray, gy: np.ndarray, nabf: bool) -> tuple[np.ndarray, np.ndarray]:
    """Edge strength g = sqrt(gx² + gy²) and angle α = atan(gy / gx) per pixel, with the
    zero-derivative rules of :func:`_strength_tangent`. α is NumPy's ``arctan`` over the whole
    map, as in the array formulas (a SIMD implementation where NumPy has one for the
    processor, e.g. with AVX-512, 8× faster than the C library's ``atan`` per value and
    within 1 ulp of it; the C library's ``atan`` elsewhere)."""
    g, t = _strength_tangent(gx, gy, nabf)
    return g, np.arctan(t, out=t)


def _qabf_edges(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = x * 255.0  # the reference's 255*im2double(double): matters for the gA == gF quirk
    sx = convolve_same_zero(p, _QABF_SX)
    sy = convolve_same_zero(p, _QABF_SY)
    return _strength_angle(sx, sy, False)


@njit(cache=True, nogil=True, error_model="numpy")
def _qabf_row_sums(ga: np.ndarray, gb: np.ndarray, gf: np.ndarray, ex: np.ndarray,
                   num: np.ndarray, den: np.ndarray) -> None:
    """Per row: num = sum of (Q_AF gA + Q_BF gB), den = sum of (gA + gB), with
    Q_SF = t_g / (1 + exp_g) · t_α / (1 + exp_α) from the exponentials ``ex`` of
    :func:`_qabf_exponents` (pixel (i, j) at i·n + j)."""
    m, n = ga.shape
    ex3 = ex.reshape((4, ex.shape[1] // n, n))
    for i in range(m):
        sn = 0.0
        sd = 0.0
        for j in range(n):
            a = ga[i, j]
            b = gb[i, j]
            qaf = (_TG / (1.0 + ex3[0, i, j])) * (_TA / (1.0 + ex3[1, i, j]))
            qbf = (_TG / (1.0 + ex3[2, i, j])) * (_TA / (1.0 + ex3[3, i, j]))
            sn += qaf * a + qbf * b
            sd += a + b
        num[i] = sn
        den[i] = sd


def qabf_plane(a: np.ndarray, b: np.ndarray, f: np.ndarray,
               cache: PlaneCache | None = None) -> float:
    """Qabf = sum(Q_AF gA + Q_BF gB) / sum(gA + gB), Sobel by zero-padded convolution,
    with the reference's quirk G_AF = gF where gA == gF.

    Compiled passes (:func:`_qabf_exponents`, NumPy's ``exp``, :func:`_qabf_row_sums`: row
    sums, then NumPy's pairwise sum of the rows); the same value as the array formula up to
    rounding."""
    return _edge_ratio(a, b, f, cache, "qabf_edges", _qabf_edges, _qabf_exponents, _qabf_row_sums)


# --------------------------------------------------------------------------- Nabf
_NABF_V = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0
_NABF_H = np.array([[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]]) / 8.0
_NABF_TD = 2.0  # weights w = g^1.5 where g >= _NABF_TD, else 0.001


def _nabf_edges(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # per_extn_im_fn: mirror without repeating the edge pixel = ndimage 'mirror'
    gv = correlate3x3(x, _NABF_V, "mirror")  # ndimage.correlate's bits
    gh = correlate3x3(x, _NABF_H, "mirror")
    return _strength_angle(gh, gv, True)  # α = atan(gv / gh)


@njit(cache=True, nogil=True, error_model="numpy")
def _nabf_row_sums(ga: np.ndarray, gb: np.ndarray, gf: np.ndarray, ex: np.ndarray,
                   num: np.ndarray, den: np.ndarray) -> None:
    """Per row: num = sum of n ((1 − Q_AF) w_A + (1 − Q_BF) w_B), den = sum of (w_A + w_B),
    Q_SF = sqrt(0.9999 / (1 + exp_g) · 0.9995 / (1 + exp_α)) from the exponentials ``ex`` of
    :func:`_nabf_exponents`, which holds them for the pixels with n = 1 (the fused gradient
    exceeds both source gradients, the only pixels whose term is not zero) one after the other;
    g^1.5 as g·sqrt(g) (within an ulp of ``pow``, which it spares)."""
    m, n = ga.shape
    q = 0
    for i in range(m):
        sn = 0.0
        sd = 0.0
        for j in range(n):
            a = ga[i, j]
            b = gb[i, j]
            f = gf[i, j]
            wa = a * math.sqrt(a) if a >= _NABF_TD else 0.001  # a^1.5 without pow
            wb = b * math.sqrt(b) if b >= _NABF_TD else 0.001
            sd += wa + wb
            if (f > a) & (f > b):
                qaf = math.sqrt((0.9999 / (1.0 + ex[0, q])) * (0.9995 / (1.0 + ex[1, q])))
                qbf = math.sqrt((0.9999 / (1.0 + ex[2, q])) * (0.9995 / (1.0 + ex[3, q])))
                sn += (1.0 - qaf) * wa + (1.0 - qbf) * wb
                q += 1
        num[i] = sn
        den[i] = sd


def nabf_plane(a: np.ndarray, b: np.ndarray, f: np.ndarray,
               cache: PlaneCache | None = None) -> float:
    """Nabf = sum n ((1 - Q_AF) w_A + (1 - Q_BF) w_B) / sum (w_A + w_B), n = 1 where the
    fused gradient exceeds both source gradients; w = g^1.5 where g >= 2, else 0.001.

    Compiled passes (:func:`_nabf_exponents`, NumPy's ``exp``, :func:`_nabf_row_sums`: row
    sums, then NumPy's pairwise sum of the rows); the same value as the array formula up to
    rounding."""
    return _edge_ratio(a, b, f, cache, "nabf_edges", _nabf_edges, _nabf_exponents, _nabf_row_sums)


# --------------------------------------------------------------------------- CC, SCD
def cc_plane(a: np.ndarray, b: np.ndarray, f: np.ndarray,
             cache: PlaneCache | None = None) -> float:
    """CC = (r(A, F) + r(B, F)) / 2, r = Pearson correlation over all pixels."""
    return (pearson(a, f) + pearson(b, f)) / 2.0


def scd_plane(a: np.ndarray, b: np.ndarray, f: np.ndarray,
              cache: PlaneCache | None = None) -> float:
    """SCD = r(F - B, A) + r(F - A, B) (sum of the correlations of differences)."""
    return pearson(f - b, a) + pearson(f - a, b)


# --------------------------------------------------------------------------- public API
def ssim(fused: object, a: object, b: object, *, protocol: str = "vifb") -> float:
    """SSIM as VIFB reports it (``Ssim``): the **sum** SSIM(A, F) + SSIM(B, F).

    SSIM(x, y) = mean of ((2 mu_x mu_y + C1)(2 s_xy + C2)) /
    ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2)) over the 'valid' positions of an 11×11
    Gaussian window (sigma 1.5), population moments, C1 = (0.01*255)^2,
    C2 = (0.03*255)^2; no downsampling.

    Range [-2, 2] (about 1.2-1.7 on VIFB). Higher is better.
    Source: Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality
    assessment: from error visibility to structural similarity", IEEE Trans. Image
    Processing 13(4) 600-612, 2004.
    """
    return compute("ssim", fused, a, b, protocol)


def qabf(fused: object, a: object, b: object, *, protocol: str = "vifb") -> float:
    """Gradient-based fusion performance Q^{AB/F} (``Qabf``).

    Sobel edges (zero-padded convolution) g, alpha = atan(Sy/Sx); G_AF = gF/gA or gA/gF
    (smaller over larger; gF where gA == gF, the reference's quirk),
    A_AF = 1 - |alpha_A - alpha_F| / (pi/2);
    Q_AF = 0.9994 / (1 + e^{-15 (G_AF - 0.5)}) * 0.9879 / (1 + e^{-22 (A_AF - 0.8)});
    Qabf = sum(Q_AF gA + Q_BF gB) / sum(gA + gB).

    Range [0, 1]. Higher is better.
    Source: C. S. Xydeas, V. Petrovic, "Objective image fusion performance measure",
    Electronics Letters 36(4) 308-309, 2000.
    """
    return compute("qabf", fused, a, b, protocol)


def nabf(fused: object, a: object, b: object, *, protocol: str = "vifb") -> float:
    """Fusion artifacts N^{AB/F}, Kumar's modified measure (``Nabf``).

    Sobel/8 edges on the mirror-extended image, Q_AF = sqrt(Q_g Q_a) (sigmoids with
    0.9999, -19, 0.5 and 0.9995, -22, 0.5), weights w = g^1.5 where g >= 2 else 0.001,
    n = 1 where gF > gA and gF > gB;
    Nabf = sum n ((1 - Q_AF) w_A + (1 - Q_BF) w_B) / sum (w_A + w_B). Scale dependent (the
    threshold 2 is absolute): inputs are on 0..255.

    Range [0, 1]. Lower is better.
    Source: B. K. Shreyamsha Kumar, "Multifocus and multispectral image fusion based on pixel
    significance using discrete cosine harmonic wavelet transform", Signal, Image and Video
    Processing 7(6) 1125-1143, 2013 (after V. Petrovic, C. Xydeas, "Objective image fusion
    performance characterisation", ICCV 2005).
    """
    return compute("nabf", fused, a, b, protocol)


def cc(fused: object, a: object, b: object, *, protocol: str = "vifb") -> float:
    """Correlation coefficient (CC): (r(A, F) + r(B, F)) / 2, r = Pearson correlation over
    all pixels (MATLAB ``corr2``). NaN if an image is constant.

    Range [-1, 1]. Higher is better.
    Source: as used in J. Ma, Y. Ma, C. Li, "Infrared and visible image fusion methods and
    applications: a survey", Information Fusion 45 153-178, 2019 (mean of the two
    correlations, as in common evaluation scripts).
    """
    return compute("cc", fused, a, b, protocol)


def scd(fused: object, a: object, b: object, *, protocol: str = "vifb") -> float:
    """Sum of the correlations of differences (SCD): r(F - B, A) + r(F - A, B).

    Range [-2, 2]. Higher is better.
    Source: V. Aslantas, E. Bendes, "A new image quality metric for image fusion: the sum of
    the correlations of differences", AEU Int. J. Electron. Commun. 69(12) 1890-1896, 2015.
    """
    return compute("scd", fused, a, b, protocol)

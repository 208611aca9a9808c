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


def _edge_ratio(a: np.ndarray, b: np.ndarray, f: np.ndarray, cache: PlaneCache | None, key: str,
                edges: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], row_sums: Callable[..., None]) -> float:
    """sum(num) / sum(den) of an edge-preservation metric: the (strength, orientation) maps of
    the three planes (cached under ``key``), ``row_sums`` fills per-row numerator and
    denominator in one compiled pass, NumPy's pairwise sum adds the rows."""
    ga, ala = cached(cache, key, a, edges)  # type: ignore[misc]
    gb, alb = cached(cache, key, b, edges)  # type: ignore[misc]
    gf, alf = cached(cache, key, f, edges)  # type: ignore[misc]
    num = np.empty(ga.shape[0])
    den = np.empty(ga.shape[0])
    row_sums(ga, ala, gb, alb, gf, alf, num, den)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.sum(num) / np.sum(den))


# --------------------------------------------------------------------------- Qabf
_QABF_SX = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
_QABF_SY = np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]])
_TG, _KG, _DG = 0.9994, -15.0, 0.5
_TA, _KA, _DA = 0.9879, -22.0, 0.8


@njit(cache=True, nogil=True, error_model="numpy")
def _strength_angle(gx: np.ndarray, gy: np.ndarray, nabf: bool) -> tuple[np.ndarray, np.ndarray]:
    """Edge strength g = sqrt(gx² + gy²) and angle α = atan(gy / gx) per pixel, in one pass.

    Where gx = 0: α = π/2 for Qabf (the reference sets it so whatever gy); for Nabf ±π/2
    with the sign of gy (the array formula's atan(±inf)), and 0 where gy = 0 too. The same
    operations per pixel as the array formulas (no fused multiply-add), so g has the same
    bits; α is the C library's ``atan``, which NumPy's ``arctan`` also calls where it has no
    SIMD version."""
    m, n = gx.shape
    g = np.empty((m, n))
    alpha = np.empty((m, n))
    for i in range(m):
        for j in range(n):
            x = gx[i, j]
            y = gy[i, j]
            g[i, j] = math.sqrt(x * x + y * y)
            if x != 0.0:
                alpha[i, j] = math.atan(y / x)
            elif nabf:
                alpha[i, j] = 0.0 if y == 0.0 else math.copysign(math.pi / 2.0, y)
            else:
                alpha[i, j] = math.pi / 2.0
    return g, alpha


def _qabf_edges(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = x * 255.0  # the reference's 255*im2double(double): matters for the gA == gF quirk
    sx = convolve_same_zero(p, _QABF_SX)
    sy = convolve_same_zero(p, _QABF_SY)
    return _strength_angle(sx, sy, False)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _qabf_qpx(gs: float, als: float, gf: float, alf: float) -> float:
    """Q_SF of one pixel: Q_g Q_alpha, with the reference's G_SF = gF where gS == gF."""
    if gs > gf:
        rel = gf / gs
    elif gs == gf:
        rel = gf
    else:
        rel = gs / gf
    ori = 1.0 - abs(als - alf) / (math.pi / 2.0)
    qg = _TG / (1.0 + math.exp(_KG * (rel - _DG)))
    qa = _TA / (1.0 + math.exp(_KA * (ori - _DA)))
    return qg * qa


@njit(cache=True, nogil=True, error_model="numpy")
def _qabf_row_sums(ga: np.ndarray, ala: np.ndarray, gb: np.ndarray, alb: np.ndarray,
                   gf: np.ndarray, alf: np.ndarray, num: np.ndarray, den: np.ndarray) -> None:
    """Per row: num = sum of (Q_AF gA + Q_BF gB), den = sum of (gA + gB)."""
    m, n = ga.shape
    for i in range(m):
        sn = 0.0
        sd = 0.0
        for j in range(n):
            a = ga[i, j]
            b = gb[i, j]
            f = gf[i, j]
            sn += _qabf_qpx(a, ala[i, j], f, alf[i, j]) * a + _qabf_qpx(b, alb[i, j], f, alf[i, j]) * b
            sd += a + b
        num[i] = sn
        den[i] = sd


def qabf_plane(a: np.ndarray, b: np.ndarray, f: np.ndarray,
               cache: PlaneCache | None = None) -> float:
    """Qabf = sum(Q_AF gA + Q_BF gB) / sum(gA + gB), Sobel by zero-padded convolution,
    with the reference's quirk G_AF = gF where gA == gF.

    One compiled pass (:func:`_qabf_row_sums`): row sums, then NumPy's pairwise sum of the
    rows; the same value as the array formula up to rounding."""
    return _edge_ratio(a, b, f, cache, "qabf_edges", _qabf_edges, _qabf_row_sums)


# --------------------------------------------------------------------------- Nabf
_NABF_V = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0
_NABF_H = np.array([[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]]) / 8.0
_NABF_TD = 2.0
_NABF_L = 1.5


def _nabf_edges(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # per_extn_im_fn: mirror without repeating the edge pixel = ndimage 'mirror'
    gv = correlate3x3(x, _NABF_V, "mirror")  # ndimage.correlate's bits
    gh = correlate3x3(x, _NABF_H, "mirror")
    return _strength_angle(gh, gv, True)  # α = atan(gv / gh)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _nabf_qpx(gs: float, als: float, gf: float, alf: float) -> float:
    """Q_SF of one pixel: sqrt(Q_g Q_alpha) with the gradient-strength ratio (0 where either
    strength is 0) and the orientation term |(|α_S − α_F| − π/2)| · 2/π."""
    rel = 0.0 if (gs == 0.0) | (gf == 0.0) else min(gs, gf) / max(gs, gf)
    ori = abs(abs(als - alf) - math.pi / 2.0) * (2.0 / math.pi)
    qg = 0.9999 / (1.0 + math.exp(-19.0 * (rel - 0.5)))
    qa = 0.9995 / (1.0 + math.exp(-22.0 * (ori - 0.5)))
    return math.sqrt(qg * qa)


@njit(cache=True, nogil=True, error_model="numpy")
def _nabf_row_sums(ga: np.ndarray, ala: np.ndarray, gb: np.ndarray, alb: np.ndarray,
                   gf: np.ndarray, alf: np.ndarray, num: np.ndarray, den: np.ndarray) -> None:
    """Per row: num = sum of n ((1 − Q_AF) w_A + (1 − Q_BF) w_B), den = sum of (w_A + w_B).

    Q_AF and Q_BF (two exponentials each) are evaluated only where n = 1 (the fused gradient
    exceeds both source gradients), the only pixels whose term is not zero."""
    m, n = ga.shape
    for i in range(m):
        sn = 0.0
        sd = 0.0
        for j in range(n):
            a = ga[i, j]
            b = gb[i, j]
            f = gf[i, j]
            wa = a**_NABF_L if a >= _NABF_TD else 0.001
            wb = b**_NABF_L if b >= _NABF_TD else 0.001
            sd += wa + wb
            if (f > a) & (f > b):
                qaf = _nabf_qpx(a, ala[i, j], f, alf[i, j])
                qbf = _nabf_qpx(b, alb[i, j], f, alf[i, j])
                sn += (1.0 - qaf) * wa + (1.0 - qbf) * wb
        num[i] = sn
        den[i] = sd


def nabf_plane(a: np.ndarray, b: np.ndarray, f: np.ndarray,
               cache: PlaneCache | None = None) -> float:
    """Nabf = sum n ((1 - Q_AF) w_A + (1 - Q_BF) w_B) / sum (w_A + w_B), n = 1 where the
    fused gradient exceeds both source gradients; w = g^1.5 where g >= 2, else 0.001.

    One compiled pass (:func:`_nabf_row_sums`): row sums, then NumPy's pairwise sum of the
    rows; the same value as the array formula up to rounding."""
    return _edge_ratio(a, b, f, cache, "nabf_edges", _nabf_edges, _nabf_row_sums)


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

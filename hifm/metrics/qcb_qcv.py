"""Human-perception-inspired metrics: Qcb (Chen & Blum) and Qcv (Chen & Varshney), as in
Z. Liu's ``metricChenBlum.m`` / ``metricChen.m`` used by VIFB.

Per-plane kernels take 2-D float64 planes on the 0..255 scale; both metrics first stretch
each plane to integers 0..255 (``normalise1``).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import fft as sfft

from ._common import PlaneCache, cached, correlate_same_zero, freq_grid, normalise1
from ._filters import sep_symmetric_same_zero
from .protocol import compute

__all__ = ["qcb", "qcv", "qcb_plane", "qcv_plane"]


def _norm1(x: np.ndarray) -> np.ndarray:
    return normalise1(x)


def _half_response(resp: np.ndarray, n: int) -> np.ndarray:
    """The columns 0..n//2 of ifftshift(resp): a radial response centred at floor(n/2) laid out
    as ``rfft2``'s half spectrum of an image n columns wide (read-only, cached per shape by
    :func:`_qcb_half` and :func:`_qcv_half`)."""
    half = np.ascontiguousarray(sfft.ifftshift(resp)[:, : n // 2 + 1])
    half.flags.writeable = False
    return half


def _spectrum(x: np.ndarray, cache: PlaneCache | None) -> np.ndarray:
    """``rfft2`` of the plane stretched to 0..255 (``normalise1``), cached per plane: Qcb filters
    it, Qcv filters differences of two of them."""
    return cached(cache, "qc_spectrum", x,  # type: ignore[return-value]
                  lambda y: sfft.rfft2(cached(cache, "normalise1", y, _norm1)))


def _csf_filter(spectrum: np.ndarray, half: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Real part of ifft2(ifftshift(fftshift(fft2(img)) .* resp)) from ``spectrum`` =
    rfft2(img) of a real image and ``half`` = :func:`_half_response` of a radial ``resp``.

    ``resp`` takes the same value at the frequencies k and -k (it depends on |k| only), so the
    product is Hermitian and the reference's complex result is real up to rounding noise
    (~1e-13 of its magnitude): computed here with real-input FFTs. Qcb and Qcv agree with
    the complex form to ~1e-16 relative on VIFB's images, 2e-13 at worst where a Gaussian-
    filtered contrast is near zero (tests/test_metrics_fast_kernels.py)."""
    return sfft.irfft2(spectrum * half, s=shape)


# --------------------------------------------------------------------------- Qcb
_F0, _F1, _A = 15.3870, 1.3456, 0.7622


@lru_cache(maxsize=8)
def _qcb_csf(shape: tuple[int, int]) -> np.ndarray:
    """Chen-Blum CSF S(r), centred at floor(n/2) (shared by the calls with this shape)."""
    m, n = shape
    u, v = freq_grid(shape)
    u = u * n / 30.0
    v = v * m / 30.0
    r = np.sqrt(u * u + v * v)
    out = np.exp(-((r / _F0) ** 2)) - _A * np.exp(-((r / _F1) ** 2))
    out.flags.writeable = False
    return out


@lru_cache(maxsize=8)
def _qcb_half(shape: tuple[int, int]) -> np.ndarray:
    """:func:`_qcb_csf` as an ``rfft2`` half spectrum."""
    return _half_response(_qcb_csf(shape), shape[1])


def _gauss31(s: float) -> np.ndarray:
    """1-D factor of the unnormalised 31×31 Gaussian exp(-(x^2+y^2)/(2 s^2)) / (2 pi s^2)."""
    x = np.arange(-15, 16, dtype=np.float64)
    return np.exp(-(x * x) / (2.0 * s * s)) / math.sqrt(2.0 * math.pi * s * s)


_G2 = _gauss31(2.0)
_G4 = _gauss31(4.0)


def _sep_same_zero(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """filter2(outer(g, g), img, 'same') for a real ``img`` (zero padding): SciPy's
    ``correlate1d`` along axis 0, then axis 1, bit for bit
    (:func:`hifm.metrics._filters.sep_symmetric_same_zero`)."""
    return sep_symmetric_same_zero(img, g)


def _qcb_masked_contrast(x: np.ndarray, cache: PlaneCache | None) -> np.ndarray:
    filtered = _csf_filter(_spectrum(x, cache), _qcb_half(x.shape), x.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.abs(_sep_same_zero(filtered, _G2) / _sep_same_zero(filtered, _G4) - 1.0)
    c2 = c * c
    return c2 * c / (c2 + 1e-4)


def _ratio_min_max(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x < y, x / y, y / x)


def qcb_plane(a: np.ndarray, b: np.ndarray, f: np.ndarray,
              cache: PlaneCache | None = None) -> float:
    """Qcb = mean(lambda_A Q_AF + lambda_B Q_BF): CSF-filtered local contrast (ratio of two
    Gaussians), masked contrast C' = C^3/(C^2 + 1e-4), Q = min/max of the C' of source and
    fused, saliency lambda_A = C'_A^2 / (C'_A^2 + C'_B^2)."""
    ca = cached(cache, "qcb_contrast", a, lambda x: _qcb_masked_contrast(x, cache))
    cb = cached(cache, "qcb_contrast", b, lambda x: _qcb_masked_contrast(x, cache))
    cf = cached(cache, "qcb_contrast", f, lambda x: _qcb_masked_contrast(x, cache))
    qaf = _ratio_min_max(ca, cf)  # type: ignore[arg-type]
    qbf = _ratio_min_max(cb, cf)  # type: ignore[arg-type]
    ca2 = ca * ca  # type: ignore[operator]
    cb2 = cb * cb  # type: ignore[operator]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = (ca2 * qaf + cb2 * qbf) / (ca2 + cb2)
    return float(np.mean(q))


# --------------------------------------------------------------------------- Qcv
_QCV_GX = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
_QCV_GY = np.array([[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]])
_BLOCK = 16
_ALPHA = 5


def _block_sums(x: np.ndarray) -> np.ndarray:
    """Sums over non-overlapping 16×16 blocks, zero-padded at the bottom/right (blkproc)."""
    m, n = x.shape
    pm = -m % _BLOCK
    pn = -n % _BLOCK
    if pm or pn:
        x = np.pad(x, ((0, pm), (0, pn)))
    mb, nb = x.shape[0] // _BLOCK, x.shape[1] // _BLOCK
    return x.reshape(mb, _BLOCK, nb, _BLOCK).sum(axis=(1, 3))


def _qcv_saliency(x: np.ndarray, cache: PlaneCache | None) -> np.ndarray:
    im = cached(cache, "normalise1", x, _norm1)
    gx = correlate_same_zero(im, _QCV_GX)  # type: ignore[arg-type]
    gy = correlate_same_zero(im, _QCV_GY)  # type: ignore[arg-type]
    g = np.sqrt(gx * gx + gy * gy)
    return _block_sums(g**_ALPHA)


@lru_cache(maxsize=8)
def _qcv_csf(shape: tuple[int, int]) -> np.ndarray:
    """Mannos-Sakrison CSF, centred at floor(n/2) (shared by the calls with this shape)."""
    m, n = shape
    u, v = freq_grid(shape)
    u = u * n / 8.0
    v = v * m / 8.0
    r = np.sqrt(u * u + v * v)
    out = 2.6 * (0.0192 + 0.144 * r) * np.exp(-((0.144 * r) ** 1.1))
    out.flags.writeable = False
    return out


@lru_cache(maxsize=8)
def _qcv_half(shape: tuple[int, int]) -> np.ndarray:
    """:func:`_qcv_csf` as an ``rfft2`` half spectrum."""
    return _half_response(_qcv_csf(shape), shape[1])


def _qcv_distortion(spec_s: np.ndarray, spec_f: np.ndarray, csf: np.ndarray,
                    shape: tuple[int, int]) -> np.ndarray:
    """Block means (divisor 256) of D'^2, D' = CSF-filtered (S - F), filtered from the
    difference of the two spectra (the FFT is linear; the spectra are Qcb's)."""
    d = _csf_filter(spec_s - spec_f, csf, shape)
    return _block_sums(d * d) / float(_BLOCK * _BLOCK)  # the reference: real part of D'^2


def qcv_plane(a: np.ndarray, b: np.ndarray, f: np.ndarray,
              cache: PlaneCache | None = None) -> float:
    """Qcv = sum_blocks(lambda_A d_A + lambda_B d_B) / sum_blocks(lambda_A + lambda_B):
    16×16 blocks, saliency lambda = sum of G^5 (Sobel magnitude), d = mean squared
    Mannos-Sakrison-filtered difference. Lower is better."""
    la = cached(cache, "qcv_saliency", a, lambda x: _qcv_saliency(x, cache))
    lb = cached(cache, "qcv_saliency", b, lambda x: _qcv_saliency(x, cache))
    csf = _qcv_half(f.shape)
    sf = _spectrum(f, cache)
    da = _qcv_distortion(_spectrum(a, cache), sf, csf, f.shape)
    db = _qcv_distortion(_spectrum(b, cache), sf, csf, f.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.sum(la * da + lb * db) / np.sum(la + lb))  # type: ignore[operator]


# --------------------------------------------------------------------------- public API
def qcb(fused: object, a: object, b: object, *, protocol: str = "vifb") -> float:
    """Chen-Blum metric (``Qcb``), as Z. Liu's ``metricChenBlum.m``.

    Images stretched to integers 0..255; contrast-sensitivity filtering in the frequency
    domain (S(r) = e^{-(r/15.387)^2} - 0.7622 e^{-(r/1.3456)^2}); local contrast
    C = |G_2 * I / G_4 * I - 1| (31×31 Gaussians, sigma 2 and 4); masked contrast
    C' = C^3 / (C^2 + 1e-4); Q_AF = min(C'_A, C'_F) / max(C'_A, C'_F);
    Qcb = mean(lambda_A Q_AF + lambda_B Q_BF), lambda_A = C'_A^2 / (C'_A^2 + C'_B^2).

    Range [0, 1]. Higher is better.
    Source: Y. Chen, R. S. Blum, "A new automated quality assessment algorithm for image
    fusion", Image and Vision Computing 27(10) 1421-1432, 2009.
    """
    return compute("qcb", fused, a, b, protocol)


def qcv(fused: object, a: object, b: object, *, protocol: str = "vifb") -> float:
    """Chen-Varshney metric (``Qcv``), as Z. Liu's ``metricChen.m``.

    Images stretched to integers 0..255; 16×16 blocks (zero-padded); block saliency
    lambda = sum of G^5 (Sobel magnitude); block distortion d = mean of D'^2 where D' is the
    difference source - fused filtered by the Mannos-Sakrison CSF;
    Qcv = sum(lambda_A d_A + lambda_B d_B) / sum(lambda_A + lambda_B).

    Range [0, inf). Lower is better.
    Source: H. Chen, P. K. Varshney, "A human perception inspired quality metric for image
    fusion based on regional information", Information Fusion 8(2) 193-207, 2007.
    """
    return compute("qcv", fused, a, b, protocol)

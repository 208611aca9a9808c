"""Noise level estimation for the noise-adaptive threshold (DESIGN §2.3), on any backend.

σ̂ = median(|HH₁|) / 0.6745 (Donoho's robust estimator), where HH₁ is the finest
diagonal detail band of a one-level db2 wavelet transform with half-sample
symmetric extension — HH₁ is the same as ``pywt.dwt2(x, "db2")[1][2]`` (tested), written
with ``take`` and sums so that it also runs on CuPy and torch (DeRUN computes it in its
forward pass). :func:`skimage.restoration.estimate_sigma` uses the same band but divides by
Φ⁻¹(3/4) = 0.674490 instead of 0.6745 and leaves out coefficients that are exactly 0: on
images without such zeros its σ̂ is larger by the factor 0.6745/0.674490 (≈ 1 + 1.5e-5; tested).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import backend
from .anchors import _mirror_index

__all__ = ["DB2_HIGHPASS", "diagonal_detail", "estimate_noise", "noise_level", "NOISE_FROM"]

#: Decomposition high-pass filter of Daubechies-2 (as ``pywt.Wavelet("db2").dec_hi``).
_S3 = np.sqrt(3.0)
_LOW = np.array([1 - _S3, 3 - _S3, 3 + _S3, 1 + _S3]) / (4 * np.sqrt(2.0))
DB2_HIGHPASS = np.array([(-1) ** (k + 1) * _LOW[::-1][k] for k in range(4)])


def _highpass_decimate(x: Any, axis: int) -> Any:
    """out[k] = Σ_j h[j] · ext[L + 2k − j], ext = symmetric extension by L − 1 (pywt's 'symmetric' mode)."""
    h = DB2_HIGHPASS
    length = len(h)
    n = x.shape[axis]
    pad = length - 1
    ext_index = _mirror_index(n, pad)  # positions −pad … n + pad − 1
    out_len = (n + length - 1) // 2
    k = np.arange(out_len)
    total = 0
    for j in range(length):
        total = total + float(h[j]) * backend.take(x, ext_index[length + 2 * k - j], axis)
    return total


def diagonal_detail(x: Any) -> Any:
    """HH₁ of ``x (..., H, W)``: high-pass then decimate along rows and columns."""
    return _highpass_decimate(_highpass_decimate(x, -2), -1)


def _median(values: Any) -> Any:
    flat = values.reshape(-1)
    if backend.is_torch(flat):
        s = flat.sort().values
    else:
        s = backend.get_xp(flat).sort(flat)
    n = s.shape[0]
    return 0.5 * (s[(n - 1) // 2] + s[n // 2])


def estimate_noise(image: Any) -> Any:
    """σ̂ of additive white Gaussian noise in a 2-D image in [0, 1] (a 0-d array of the input's backend)."""
    return _median(abs(diagonal_detail(image))) / 0.6745


#: Where the noise level of the noise-adaptive threshold is estimated (DESIGN §2.3).
NOISE_FROM = ("sources", "anchor")


def noise_level(a: Any, b: Any, m: Any, where: str = "sources") -> float:
    """σ̂ that sets the noise-adaptive threshold, as a float.

    ``where="sources"``: max(σ̂(A), σ̂(B)) of the two luminance sources — the sensor noise of
    either source reaches Y through its details and through the gradient target, and the
    anchor hides part of it (it takes some details from the cleaner source);
    ``"anchor"``: σ̂(M) (the rule of the supplement-era solver).
    """
    if where == "anchor":
        return float(estimate_noise(m))
    if where == "sources":
        return max(float(estimate_noise(a)), float(estimate_noise(b)))
    raise ValueError(f"unknown noise_from {where!r}; choose one of {list(NOISE_FROM)}")

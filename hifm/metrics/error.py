"""Error metrics as VIFB defines them: Rmse and Psnr (not the textbook formulas).

Helper e(x, y) = sqrt(sum (x - y)^2) / (M N): the root of the *sum* of squared errors divided
by the pixel count.
"""

from __future__ import annotations

import math

import numpy as np

from ._common import PlaneCache
from .protocol import compute

__all__ = ["rmse", "psnr", "rmse_plane", "psnr_plane"]


def _e(x: np.ndarray, y: np.ndarray) -> float:
    d = x - y
    return math.sqrt(float(np.sum(d * d))) / x.size


def rmse_plane(a: np.ndarray, b: np.ndarray, f: np.ndarray,
               cache: PlaneCache | None = None) -> float:
    """Rmse = (e(A, F) + e(B, F)) / 2 with e = sqrt(SSE) / (M N)."""
    return (_e(a, f) + _e(b, f)) / 2.0


def psnr_plane(a: np.ndarray, b: np.ndarray, f: np.ndarray,
               cache: PlaneCache | None = None) -> float:
    """Psnr = 20 log10(255 / sqrt(E)), E = (e(A, F) + e(B, F)) / 2 (inf when E = 0)."""
    e = (_e(a, f) + _e(b, f)) / 2.0
    if e == 0.0:
        return math.inf
    return 20.0 * math.log10(255.0 / math.sqrt(e))


# --------------------------------------------------------------------------- public API
def rmse(fused: object, a: object, b: object, *, protocol: str = "vifb") -> float:
    """RMSE as VIFB computes it (``Rmse``; not the textbook root mean square error).

    Rmse = (e(A, F) + e(B, F)) / 2 with e(x, y) = sqrt(sum (x - y)^2) / (M N).

    Range [0, 255 / sqrt(M N)]. Lower is better.
    Source: P. Jagalingam, A. V. Hegde, "A review of quality metrics for fused image",
    Aquatic Procedia 4 133-142, 2015 (formula as implemented by VIFB).
    """
    return compute("rmse", fused, a, b, protocol)


def psnr(fused: object, a: object, b: object, *, protocol: str = "vifb") -> float:
    """PSNR as VIFB computes it (``Psnr``).

    Psnr = 20 log10(255 / sqrt(E)), E = (e(A, F) + e(B, F)) / 2, e as in :func:`rmse`
    (so values are about 55-65 dB on VIFB; inf for a fused image equal to both sources).

    Range: dB, size dependent (at least about 51 dB at 640×480). Higher is better.
    Source: P. Jagalingam, A. V. Hegde, "A review of quality metrics for fused image",
    Aquatic Procedia 4 133-142, 2015 (formula as implemented by VIFB).
    """
    return compute("psnr", fused, a, b, protocol)

"""Information-theoretic metrics: entropy (EN), cross entropy (CE), mutual information (MI).

Per-plane kernels take 2-D float64 planes on the 0..255 scale (``a`` = visible plane,
``b`` = infrared plane, ``f`` = fused plane) as the VIFB MATLAB code receives them.
"""

from __future__ import annotations

import numpy as np

from ._common import PlaneCache, cached, round_half_away
from .protocol import compute

__all__ = [
    "entropy", "cross_entropy", "mutual_information",
    "entropy_plane", "cross_entropy_plane", "mutual_information_plane",
]


def _hist256(plane: np.ndarray) -> np.ndarray:
    """Normalised 256-bin histogram of the integer values (value v -> bin v).

    Non-integer input (float images) is rounded half away from zero and clipped to 0..255.
    """
    q = np.clip(round_half_away(plane), 0, 255).astype(np.intp)
    return np.bincount(q.ravel(), minlength=256).astype(np.float64) / plane.size


def _entropy_of(p: np.ndarray, log: np.ufunc) -> float:
    nz = p[p > 0]
    return float(-np.sum(nz * log(nz)))


def entropy_plane(f: np.ndarray, cache: PlaneCache | None = None) -> float:
    """EN(F) = -sum_{p>0} p log2 p over the 256-bin histogram of F (bits)."""
    p = cached(cache, "hist256", f, _hist256)
    return _entropy_of(p, np.log2)


def _kl(ps: np.ndarray, pf: np.ndarray) -> float:
    """D(S || F) over the bins where both histograms have mass (log2)."""
    m = (ps > 0) & (pf > 0)
    return float(np.sum(ps[m] * np.log2(ps[m] / pf[m])))


def cross_entropy_plane(a: np.ndarray, b: np.ndarray, f: np.ndarray,
                        cache: PlaneCache | None = None) -> float:
    """CE = (D(A||F) + D(B||F)) / 2; bins where only one image has mass are skipped."""
    pa = cached(cache, "hist256", a, _hist256)
    pb = cached(cache, "hist256", b, _hist256)
    pf = cached(cache, "hist256", f, _hist256)
    return (_kl(pa, pf) + _kl(pb, pf)) / 2.0


def _mi_quantise(x: np.ndarray) -> np.ndarray:
    """Min-max stretch to [0, 1] (constant -> zeros), then int16(255 x) in 0..255."""
    mn = x.min()
    mx = x.max()
    if mx != mn:
        x = (x - mn) / (mx - mn)
    else:
        x = np.zeros_like(x)
    return round_half_away(x * 255.0).astype(np.intp)


def _mi_marginal(x: np.ndarray) -> tuple[np.ndarray, float]:
    q = _mi_quantise(x)
    p = np.bincount(q.ravel(), minlength=256).astype(np.float64) / x.size
    return q, _entropy_of(p, np.log)


def _mi(x: np.ndarray, y: np.ndarray, cache: PlaneCache | None) -> float:
    qx, hx = cached(cache, "mi_marginal", x, _mi_marginal)  # type: ignore[misc]
    qy, hy = cached(cache, "mi_marginal", y, _mi_marginal)  # type: ignore[misc]
    joint = np.bincount((qx * 256 + qy).ravel(), minlength=65536).astype(np.float64) / x.size
    return hx + hy - _entropy_of(joint, np.log)


def mutual_information_plane(a: np.ndarray, b: np.ndarray, f: np.ndarray,
                             cache: PlaneCache | None = None) -> float:
    """MI = I(A, F) + I(B, F) (a sum, in nats), each image min-max stretched and
    requantised to 256 levels first."""
    return _mi(a, f, cache) + _mi(b, f, cache)


# --------------------------------------------------------------------------- public API
def entropy(fused: object, a: object | None = None, b: object | None = None, *,
            protocol: str = "vifb") -> float:
    """Entropy (EN, VIFB ``Entropy``) of the fused image.

    EN = -sum_{i: p_i > 0} p_i log2 p_i, p = 256-bin histogram of the integer intensities
    of F divided by M N (mean over the planes under the ``vifb`` protocol).

    Range [0, 8] bits. Higher is better (more information).
    Source: J. W. Roberts, J. A. van Aardt, F. B. Ahmed, "Assessment of image fusion
    procedures using entropy, image quality, and multispectral classification",
    J. Appl. Remote Sens. 2(1) 023522, 2008.
    """
    return compute("entropy", fused, a, b, protocol)


def cross_entropy(fused: object, a: object, b: object, *, protocol: str = "vifb") -> float:
    """Cross entropy (CE, VIFB ``Cross_entropy``).

    CE = (D(A||F) + D(B||F)) / 2, D(S||F) = sum_i p_S(i) log2(p_S(i) / p_F(i)) over the
    bins where both 256-bin histograms are non-zero (so it stays finite).

    Range [0, inf) bits. Lower is better.
    Source: D. M. Bulanon, T. F. Burks, V. Alchanatis, "Image fusion of visible and thermal
    images for fruit detection", Biosystems Engineering 103(1) 12-22, 2009.
    """
    return compute("cross_entropy", fused, a, b, protocol)


def mutual_information(fused: object, a: object, b: object, *,
                       protocol: str = "vifb") -> float:
    """Mutual information (MI, VIFB ``Mutinf``), the **sum** I(A, F) + I(B, F) in nats.

    Each image is min-max stretched to [0, 1] and requantised to 256 levels
    (round(255 x)); I(x, y) = H(x) + H(y) - H(x, y) from the joint 256×256 histogram, with
    the natural logarithm.

    Range [0, 2 ln 256 ~ 11.09] nats. Higher is better.
    Source: G. Qu, D. Zhang, P. Yan, "Information measure for performance of image fusion",
    Electronics Letters 38(7) 313-315, 2002.
    """
    return compute("mutual_information", fused, a, b, protocol)

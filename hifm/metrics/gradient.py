"""Metrics of the fused image alone: average gradient (AG), edge intensity (EI), spatial
frequency (SF) and standard deviation (SD, VIFB's "Variance").

Per-plane kernels take 2-D float64 planes on the 0..255 scale.
"""

from __future__ import annotations

import numpy as np

from ._common import PlaneCache, matlab_gradient
from ._filters import correlate3x3
from .protocol import compute

__all__ = [
    "average_gradient",
    "edge_intensity",
    "spatial_frequency",
    "standard_deviation",
    "average_gradient_plane",
    "edge_intensity_plane",
    "spatial_frequency_plane",
    "standard_deviation_plane",
]

# fspecial('sobel'): responds to horizontal edges; its transpose to vertical ones.
_SOBEL = np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]])


def average_gradient_plane(f: np.ndarray, cache: PlaneCache | None = None) -> float:
    """AG = sum over all M N pixels of sqrt((Gx^2 + Gy^2) / 2), divided by (M-1)(N-1);
    (Gx, Gy) = MATLAB ``gradient`` (central inside, one-sided at the border)."""
    m, n = f.shape
    gx, gy = matlab_gradient(f)
    s = np.sqrt((gx * gx + gy * gy) / 2.0)
    return float(s.sum() / ((m - 1) * (n - 1)))


def edge_intensity_plane(f: np.ndarray, cache: PlaneCache | None = None) -> float:
    """EI = mean of sqrt(gx^2 + gy^2), Sobel correlation with replicate padding."""
    gx = correlate3x3(f, _SOBEL, "nearest")  # ndimage.correlate's bits
    gy = correlate3x3(f, _SOBEL.T, "nearest")
    return float(np.mean(np.sqrt(gx * gx + gy * gy)))


def spatial_frequency_plane(f: np.ndarray, cache: PlaneCache | None = None) -> float:
    """SF = sqrt(RF + CF): both sums of squared neighbour differences divided by the full
    size M N (not by the number of differences). The VIFB protocol passes the three fused
    planes side by side (M × 3N), seams included."""
    m, n = f.shape
    dr = np.diff(f, axis=1)
    dc = np.diff(f, axis=0)
    rf = np.sum(dr * dr) / (m * n)
    cf = np.sum(dc * dc) / (m * n)
    return float(np.sqrt(rf + cf))


def standard_deviation_plane(f: np.ndarray, cache: PlaneCache | None = None) -> float:
    """SD = sqrt(sum (F - mean F)^2 / (M N)) (population standard deviation)."""
    d = f - f.mean()
    return float(np.sqrt(np.sum(d * d) / f.size))


# --------------------------------------------------------------------------- public API
def average_gradient(fused: object, a: object | None = None, b: object | None = None, *,
                     protocol: str = "vifb") -> float:
    """Average gradient (AG, VIFB ``Avg_gradient``) of the fused image.

    AG = sum_{all M N pixels} sqrt((Gx^2 + Gy^2) / 2) / ((M - 1)(N - 1)), with (Gx, Gy) from
    MATLAB ``gradient`` (central differences inside, one-sided at the border).

    Range [0, inf) (intensity units per pixel). Higher is better (sharper).
    Source: G. Cui, H. Feng, Z. Xu, Q. Li, Y. Chen, "Detail preserved fusion of visible and
    infrared images using regional saliency extraction and multi-scale image
    decomposition", Optics Communications 341 199-209, 2015.
    """
    return compute("average_gradient", fused, a, b, protocol)


def edge_intensity(fused: object, a: object | None = None, b: object | None = None, *,
                   protocol: str = "vifb") -> float:
    """Edge intensity (EI, VIFB ``Edge_intensity``) of the fused image.

    EI = mean over pixels (and planes) of sqrt(gx^2 + gy^2), gx, gy = correlation with the
    Sobel kernel [1 2 1; 0 0 0; -1 -2 -1] and its transpose, replicate border.

    Range [0, inf). Higher is better.
    Source: B. Rajalingam, R. Priya, "Hybrid multimodality medical image fusion technique
    for feature enhancement in medical diagnosis", Int. J. Eng. Sci. Invention, 2018.
    """
    return compute("edge_intensity", fused, a, b, protocol)


def spatial_frequency(fused: object, a: object | None = None, b: object | None = None, *,
                      protocol: str = "vifb") -> float:
    """Spatial frequency (SF, VIFB ``Spatial_frequency``) of the fused image.

    SF = sqrt(RF + CF), RF = sum (X[i, j] - X[i, j-1])^2 / (M N'),
    CF = sum (X[i, j] - X[i-1, j])^2 / (M N') over the whole M×N' plane X. Under ``vifb`` a
    3-plane fused image is used as X = [R | G | B] (M × 3N, seams included), as VIFB's code
    indexes it; otherwise X = F.

    Range [0, inf). Higher is better.
    Source: A. M. Eskicioglu, P. S. Fisher, "Image quality measures and their performance",
    IEEE Trans. Communications 43(12) 2959-2965, 1995.
    """
    return compute("spatial_frequency", fused, a, b, protocol)


def standard_deviation(fused: object, a: object | None = None, b: object | None = None, *,
                       protocol: str = "vifb") -> float:
    """Standard deviation (SD; VIFB calls it ``Variance`` but computes the SD).

    SD = sqrt(sum (F - mean F)^2 / (M N)) (population), mean over planes under ``vifb``.

    Range [0, 127.5]. Higher is better (more contrast).
    Source: as cited by VIFB: Y.-J. Rao, "In-fibre Bragg grating sensors", Meas. Sci.
    Technol. 8(4) 355, 1997; X. Zhang, P. Ye, G. Xiao, "VIFB: a visible and infrared image
    fusion benchmark", CVPR Workshops 2020.
    """
    return compute("standard_deviation", fused, a, b, protocol)

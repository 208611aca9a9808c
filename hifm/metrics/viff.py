"""VIF for image fusion: Han et al.'s VIFF (``VIFF_Public.m``), not Sheikh & Bovik's pixel VIF.

Per-plane kernel takes 2-D float64 planes on the 0..255 scale.
"""

from __future__ import annotations

import numpy as np

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


def _vif_maps(src: list, fus: list) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per scale: (g, VID, VIND) maps of one source against the fused image."""
    res = []
    for s, win in enumerate(_WINDOWS):
        xs, mu1, v1 = src[s]
        xf, mu2, v2 = fus[s]
        if _WEIGHTS[s] == 0.0:
            res.append(None)
            continue
        cov = filter2_valid(xs * xf, win) - mu1 * mu2
        s1 = np.maximum(v1, 0.0)
        s2 = np.maximum(v2, 0.0)
        g = cov / (s1 + 1e-10)
        sv = s2 - g * cov
        low1 = s1 < 1e-10
        g[low1] = 0.0
        sv[low1] = s2[low1]
        s1 = np.where(low1, 0.0, s1)
        low2 = s2 < 1e-10
        g[low2] = 0.0
        sv[low2] = 0.0
        neg = g < 0
        sv[neg] = s2[neg]
        g[neg] = 0.0
        sv[sv <= 1e-10] = 1e-10
        vid = np.log10(1.0 + g * g * s1 / (sv + _SIGMA_N2))
        vind = np.log10(1.0 + s1 / _SIGMA_N2)
        res.append((g, vid, vind))
    return res


def vif_plane(a: np.ndarray, b: np.ndarray, f: np.ndarray,
              cache: PlaneCache | None = None) -> float:
    """VIFF = sum_s p_s F_s over 4 scales (p = [1, 0, 0.15, 1] / 2.15); per scale and
    position the source with the smaller gain g is selected and
    F_s = sum(VID_sel + C) / sum(VIND_sel + C)."""
    pa = cached(cache, "vif_pyramid", a, _pyramid)
    pb = cached(cache, "vif_pyramid", b, _pyramid)
    pf = cached(cache, "vif_pyramid", f, _pyramid)
    ma = _vif_maps(pa, pf)  # type: ignore[arg-type]
    mb = _vif_maps(pb, pf)  # type: ignore[arg-type]
    total = 0.0
    for s in range(4):
        if _WEIGHTS[s] == 0.0:
            continue
        ga, vida, vinda = ma[s]
        gb, vidb, vindb = mb[s]
        sel_a = ga < gb
        vid = np.where(sel_a, vida, vidb)
        vind = np.where(sel_a, vinda, vindb)
        total += _WEIGHTS[s] * float(np.sum(vid + _C) / np.sum(vind + _C))
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

"""Previous implementations of hifm.metrics kernels, kept verbatim as references for the
tests of their faster replacements (issue 12, evaluation speed). Not used by the package.

* :func:`dwt2_dmey_rows`: the one-row-at-a-time dmey ``dwt2`` that ``hifm.metrics.fmi``
  used before its filter loops were reordered for SIMD; the new one must give the same
  bits (the order of the sums decides the rounding noise that FMI_w sees in flat areas);
* :func:`qcb_plane_complex`, :func:`qcv_plane_complex`: Qcb and Qcv with the complex FFT
  filtering of the reference code, which ``hifm.metrics.qcb_qcv`` replaced by real-input FFTs.

(The one-window-at-a-time Fast-FMI kernel stays in the package, ``hifm.metrics.fmi._fmi_map``:
it serves windows other than 3×3.)
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hifm.metrics.fmi import _DMEY_HI_D, _DMEY_LO_D


@njit(cache=True, nogil=True)
def _conv_down_rows(x: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                    out_lo: np.ndarray, out_hi: np.ndarray) -> None:
    """Along axis 1: MATLAB ``dwt``'s convdown for 'sym' mode. Half-sample symmetric
    extension by L-1 samples, 'valid' convolution (direct sum over the taps), keep samples
    2, 4, ..., n+L-1 (1-based)."""
    m, n = x.shape
    taps = lo.size
    ext = np.empty(n + 2 * (taps - 1))
    e = taps - 1
    nout = out_lo.shape[1]
    for r in range(m):
        for t in range(ext.size):
            # symmetric (half-sample) index into 0..n-1, repeated reflection
            i = t - e
            period = 2 * n
            i = i % period
            if i >= n:
                i = period - 1 - i
            ext[t] = x[r, i]
        for o in range(nout):
            t = 2 * o + 1  # 0-based index into the valid convolution
            s_lo = 0.0
            s_hi = 0.0
            for k in range(taps):
                v = ext[t + taps - 1 - k]
                s_lo += lo[k] * v
                s_hi += hi[k] * v
            out_lo[r, o] = s_lo
            out_hi[r, o] = s_hi


def _dwt_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m, n = x.shape
    nout = (n + _DMEY_LO_D.size - 1) // 2
    lo = np.empty((m, nout))
    hi = np.empty((m, nout))
    _conv_down_rows(np.ascontiguousarray(x), _DMEY_LO_D, _DMEY_HI_D, lo, hi)
    return lo, hi


def dwt2_dmey_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MATLAB ``dwt2(x, 'dmey')``, the previous implementation (see the module docstring)."""
    zl, zh = _dwt_rows(x)
    ca_t, ch_t = _dwt_rows(zl.T)
    cv_t, cd_t = _dwt_rows(zh.T)
    return ca_t.T, ch_t.T, cv_t.T, cd_t.T


# --------------------------------------------------------------------------- Qcb, Qcv
# The complex-FFT forms that hifm.metrics.qcb_qcv used before it switched to real-input FFTs
# (the reference's own arithmetic: complex filtering, complex Gaussian ratios, real part of
# the complex square).

def _csf_filter_complex(img: np.ndarray, resp: np.ndarray) -> np.ndarray:
    from scipy import fft as sfft

    return sfft.ifft2(sfft.fft2(img) * sfft.ifftshift(resp))


def _sep_same_zero_complex(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    def filt(x: np.ndarray) -> np.ndarray:
        y = ndimage.correlate1d(x, g, axis=0, mode="constant")
        return ndimage.correlate1d(y, g, axis=1, mode="constant")

    return filt(np.ascontiguousarray(img.real)) + 1j * filt(np.ascontiguousarray(img.imag))


def qcb_plane_complex(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    """Qcb of one plane triple with complex filtering (the previous implementation)."""
    from hifm.metrics import qcb_qcv as q
    from hifm.metrics._common import normalise1

    def contrast(x: np.ndarray) -> np.ndarray:
        filtered = _csf_filter_complex(normalise1(x), q._qcb_csf(x.shape))
        with np.errstate(divide="ignore", invalid="ignore"):
            c = np.abs(_sep_same_zero_complex(filtered, q._G2) / _sep_same_zero_complex(filtered, q._G4) - 1.0)
        c2 = c * c
        return c2 * c / (c2 + 1e-4)

    ca, cb, cf = contrast(a), contrast(b), contrast(f)
    qaf = q._ratio_min_max(ca, cf)
    qbf = q._ratio_min_max(cb, cf)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.mean((ca * ca * qaf + cb * cb * qbf) / (ca * ca + cb * cb)))


def qcv_plane_complex(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    """Qcv of one plane triple with complex filtering (the previous implementation)."""
    from hifm.metrics import qcb_qcv as q
    from hifm.metrics._common import normalise1

    na, nb, nf = normalise1(a), normalise1(b), normalise1(f)
    csf = q._qcv_csf(f.shape)

    def distortion(s: np.ndarray) -> np.ndarray:
        d = _csf_filter_complex(s - nf, csf)
        return q._block_sums(d.real * d.real - d.imag * d.imag) / 256.0

    la, lb = q._qcv_saliency(a, None), q._qcv_saliency(b, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.sum(la * distortion(na) + lb * distortion(nb)) / np.sum(la + lb))

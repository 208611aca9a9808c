"""Previous implementations of hifm.metrics kernels, kept verbatim as references for the
tests of their faster replacements (issue 12, evaluation speed). Not used by the package.

* :func:`dwt2_dmey_rows`: the one-row-at-a-time dmey ``dwt2`` that ``hifm.metrics.fmi``
  used before its filter loops were reordered for SIMD; the new one must give the same
  bits (the order of the sums decides the rounding noise that FMI_w sees in flat areas).
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

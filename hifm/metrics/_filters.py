"""Compiled 2-D filters of the metrics, with SciPy's arithmetic.

The metrics filter with ``scipy.ndimage``: separable symmetric Gaussians
(``correlate1d`` along axis 0, then along axis 1, zero padding) and 3×3 gradient kernels
(``correlate`` / ``convolve``). The kernels here compute the same outputs with the same
floating-point operations in the same order for every output value, so the results are the
same bits (``tests/test_metrics_fast_kernels.py`` compares them with ``scipy.ndimage``), but
they only compute the samples that are used (the 'valid' part, every second row of a
decimated image) and their inner loops run over contiguous pixels, which the compiler turns
into SIMD instructions.

SciPy's order, which these kernels follow:

* ``correlate1d`` with an odd symmetric filter w (centre c, half-length h):
  ``y[i] = x[i] w[c]``, then for j = h, h-1, ..., 1: ``y[i] += (x[i-j] + x[i+j]) w[c-j]``;
  samples outside the array are 0 (``mode="constant"``);
* ``correlate`` with a 3×3 kernel K: ``y = 0``, then ``y += K[u, v] x[i+u-1, j+v-1]`` over
  the non-zero entries of K in row-major order, samples outside taken from the padding
  (zero; the mirror image without repeating the edge sample for ``mode="mirror"``; the
  edge sample for ``mode="nearest"``);
  ``convolve`` is ``correlate`` with the kernel flipped in both axes.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from scipy import ndimage

__all__ = ["sep_symmetric_valid", "sep_symmetric_same_zero", "correlate3x3", "convolve3x3"]

_MODES = {"constant": 0, "mirror": 1, "nearest": 2}


@njit(cache=True, nogil=True)
def _sep_valid_kernel(x: np.ndarray, w: np.ndarray, row_step: int, out: np.ndarray) -> None:
    """``out[o, q]`` = the separable filter (axis 0, then axis 1) of ``x`` at row
    ``h + row_step o`` and column ``h + q`` (``h`` = half-length of ``w``)."""
    n = x.shape[1]
    k = w.size
    h = k // 2
    no = n - k + 1
    wc = w[h]
    tmp = np.empty(n)
    # Every inner loop indexes a row view with its own loop counter: an index such as
    # ``q + h - j`` could be negative as far as Numba knows, and its wrap-around select made
    # LLVM load through gathers (1.5-2x slower at 480x640); the sums are the same.
    for o in range(out.shape[0]):
        c = h + row_step * o
        xc = x[c]
        for col in range(n):
            tmp[col] = xc[col] * wc
        for j in range(h, 0, -1):
            wj = w[h - j]
            x1 = x[c - j]
            x2 = x[c + j]
            for col in range(n):
                tmp[col] += (x1[col] + x2[col]) * wj
        orow = out[o]
        tc = tmp[h:]
        for q in range(no):
            orow[q] = tc[q] * wc
        for j in range(h, 0, -1):
            wj = w[h - j]
            t1 = tmp[h - j:]
            t2 = tmp[h + j:]
            for q in range(no):
                orow[q] += (t1[q] + t2[q]) * wj


def sep_symmetric_valid(img: np.ndarray, g: np.ndarray, row_step: int = 1) -> np.ndarray:
    """The 'valid' part of ``correlate1d(correlate1d(img, g, axis=0), g, axis=1)``
    (``scipy.ndimage``, ``mode="constant"``), every ``row_step``-th row of it; the same bits.

    ``g`` must be an odd-length filter with g[c-j] == g[c+j] (SciPy then uses the left
    taps for both sides, as here). Rows/columns: ``img.shape - len(g) + 1`` (no rows or
    columns when that is not positive)."""
    x = np.ascontiguousarray(img, dtype=np.float64)
    w = np.ascontiguousarray(g, dtype=np.float64)
    k = w.size
    if k % 2 == 0 or not np.array_equal(w, w[::-1]):
        raise ValueError("sep_symmetric_valid needs an odd, symmetric filter")
    m0 = x.shape[0] - k + 1
    m1 = x.shape[1] - k + 1
    if m0 <= 0 or m1 <= 0:
        return np.zeros((max(m0, 0), max(m1, 0)))
    out = np.empty(((m0 + row_step - 1) // row_step, m1))
    _sep_valid_kernel(x, w, int(row_step), out)
    return out


def sep_symmetric_same_zero(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``correlate1d(correlate1d(img, g, axis=0), g, axis=1)`` (``mode="constant"``, the
    'same' size); the same bits: the valid filter of the zero-padded image."""
    h = np.asarray(g).size // 2
    return sep_symmetric_valid(np.pad(np.asarray(img, dtype=np.float64), h), g)


@njit(cache=True, inline="always")
def _fold(k: int, n: int, mode: int) -> int:
    """Index ``k`` of an axis of length ``n`` one sample outside at most: itself inside;
    outside, −1 for zero padding (mode 0: the term is left out), the mirror without
    repeating the edge (1) or the edge sample (2)."""
    if 0 <= k < n:
        return k
    if mode == 0:
        return -1
    if mode == 1:
        return 1 if k < 0 else n - 2
    return 0 if k < 0 else n - 1


@njit(cache=True, nogil=True)
def _corr3_kernel(x: np.ndarray, wts: np.ndarray, du: np.ndarray, dv: np.ndarray,
                  mode: int, out: np.ndarray) -> None:
    """``out[i, j] = sum_t wts[t] x[i + du[t], j + dv[t]]`` (du, dv in -1, 0, 1), summed
    from 0 in order t; samples outside ``x`` are 0 (``mode`` 0: their terms are left out,
    adding a zero product changes no sum that starts from +0), mirrored without repeating
    the edge sample (1) or the edge sample (2)."""
    m, n = x.shape
    for i in range(m):
        orow = out[i]
        for j in range(n):
            orow[j] = 0.0
        for t in range(wts.size):
            wt = wts[t]
            r = _fold(i + du[t], m, mode)
            if r < 0:
                continue
            src = x[r]
            off = dv[t]
            s_in = src[1 + off:]  # the inner columns as a view: no wrap-around select per sample
            o_in = orow[1:]
            for j in range(n - 2):
                o_in[j] += wt * s_in[j]
            for j in (0, n - 1):
                c = _fold(j + off, n, mode)
                if c >= 0:
                    orow[j] += wt * src[c]


def correlate3x3(img: np.ndarray, kernel: np.ndarray, mode: str = "constant") -> np.ndarray:
    """``scipy.ndimage.correlate(img, kernel, mode=mode)`` for a 3×3 ``kernel`` and a
    float64 ``img``, ``mode`` ``"constant"`` (zero), ``"mirror"`` or ``"nearest"``; the
    same bits."""
    x = np.ascontiguousarray(img, dtype=np.float64)
    kern = np.asarray(kernel, dtype=np.float64)
    if kern.shape != (3, 3):
        raise ValueError("correlate3x3 needs a 3×3 kernel")
    if mode not in _MODES:
        raise ValueError(f"unsupported mode {mode!r}")
    if min(x.shape) < 3:  # edge cases of the index mapping: leave them to SciPy
        return ndimage.correlate(x, kern, mode=mode)
    # SciPy drops the weights with |w| <= DBL_EPSILON and keeps the others in C order
    nz = np.flatnonzero(np.abs(kern.ravel()) > np.finfo(np.float64).eps)
    out = np.empty(x.shape)
    _corr3_kernel(x, kern.ravel()[nz].copy(), (nz // 3 - 1).astype(np.int64),
                  (nz % 3 - 1).astype(np.int64), _MODES[mode], out)
    return out


def convolve3x3(img: np.ndarray, kernel: np.ndarray, mode: str = "constant") -> np.ndarray:
    """``scipy.ndimage.convolve(img, kernel, mode=mode)`` for a 3×3 ``kernel``: the
    correlation with the flipped kernel; the same bits."""
    return correlate3x3(img, np.asarray(kernel, dtype=np.float64)[::-1, ::-1], mode)

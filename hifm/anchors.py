"""Anchors (pre-fusion images M) of DESIGN §4.

Each anchor uses only box filters and elementwise operations, so it runs on
NumPy, CuPy and torch (differentiably).  Sources are luminance images in
[0, 1] of the same shape ``(..., H, W)``.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import backend

__all__ = ["box_blur", "anchor", "ANCHORS", "two_scale", "TIE_TOLERANCE"]

#: |D_A| and |D_B| closer than this count as a tie in two_scale's choice (decided for A), so that
#: float32 and float64 runs choose alike (their rounding differs by ~1e-7 on [0, 1] images).
TIE_TOLERANCE = 1e-5


def _mirror_index(n: int, pad: int) -> np.ndarray:
    """Indices of a half-sample symmetric extension by ``pad`` on both sides (any pad ≥ 0)."""
    idx = np.arange(-pad, n + pad)
    period = 2 * n
    idx = np.mod(idx, period)
    return np.where(idx >= n, period - 1 - idx, idx)


def box_blur(x: Any, radius: int) -> Any:
    """Mean over a (2r+1)×(2r+1) window with half-sample symmetric boundaries (any radius).

    Sums are accumulated in float64 whatever the input's dtype: in float32 a running sum over
    a row loses ~1e-5, enough to flip :func:`two_scale`'s per-pixel choice between float32
    and float64 runs. NumPy: ``scipy.ndimage.uniform_filter1d`` per axis (``mode="reflect"``
    is this extension; it accumulates in double). CuPy and torch: cumulative sums in float64
    (O(HW) whatever the radius; differentiable in torch). The result has the input's dtype.
    """
    if radius <= 0:
        return x
    if backend.get_xp(x) is np:
        import scipy.ndimage

        size = 2 * radius + 1
        y = scipy.ndimage.uniform_filter1d(x, size, axis=-2, mode="reflect")
        return scipy.ndimage.uniform_filter1d(y, size, axis=-1, mode="reflect")
    return _box_blur_cumsum(x, radius)


def _box_blur_cumsum(x: Any, radius: int) -> Any:
    """:func:`box_blur` by float64 cumulative sums of the mirrored rows and columns (any backend)."""
    xp = backend.get_xp(x)
    size = 2 * radius + 1
    dtype = x.dtype
    x = x.double() if backend.is_torch(x) else x.astype(np.float64)
    for axis in (-2, -1):
        n = x.shape[axis]
        padded = backend.take(x, _mirror_index(n, radius + 1), axis)
        c = xp.cumsum(padded, axis)
        hi = backend.take(c, np.arange(size, size + n), axis)
        lo = backend.take(c, np.arange(0, n), axis)
        x = (hi - lo) / size
    return x.to(dtype) if backend.is_torch(x) else x.astype(dtype)


def mean_anchor(a: Any, b: Any) -> Any:
    """M = (A + B) / 2."""
    return 0.5 * (a + b)


def max_anchor(a: Any, b: Any) -> Any:
    """M = max(A, B), pixel by pixel."""
    xp = backend.get_xp(a)
    return xp.maximum(a, b)


def two_scale(a: Any, b: Any, radius: int = 15, choice_radius: int = 1) -> Any:
    """Two-scale anchor **[decision]** (§4).

    Base layers Ā = box_{31}(A), B̄ = box_{31}(B) (radius 15); base = max(Ā, B̄).
    Detail layers D_A = A − Ā, D_B = B − B̄; the choice map c = [|D_A| ≥ |D_B|]
    smoothed by a 3×3 box, w = box_3(c); M = clip(base + w·D_A + (1 − w)·D_B, 0, 1).
    Ties within :data:`TIE_TOLERANCE` go to A.
    """
    xp = backend.get_xp(a)
    base_a = box_blur(a, radius)
    base_b = box_blur(b, radius)
    da, db = a - base_a, b - base_b
    # ties (|D_A| = |D_B| up to rounding, frequent on 8-bit data) go to A in every precision
    choice = (xp.abs(da) >= xp.abs(db) - TIE_TOLERANCE) * 1.0
    if backend.is_torch(choice):
        choice = choice.to(a.dtype)
    else:
        choice = choice.astype(a.dtype, copy=False)
    w = box_blur(choice, choice_radius)
    fused = xp.maximum(base_a, base_b) + w * da + (1 - w) * db
    return xp.clip(fused, 0.0, 1.0)


ANCHORS: dict[str, Callable[[Any, Any], Any]] = {
    "mean": mean_anchor,
    "max": max_anchor,
    "two_scale": two_scale,
}


def anchor(a: Any, b: Any, method: "str | Callable[[Any, Any], Any] | Any" = "two_scale") -> Any:
    """The anchor M(A, B) in [0, 1]: a name of :data:`ANCHORS`, a callable ``f(A, B)``, or an array M.

    A user array must have the sources' shape and lie in [0, 1].
    """
    from .errors import InputError

    if isinstance(method, str):
        try:
            fn = ANCHORS[method]
        except KeyError:
            raise InputError(f"unknown anchor {method!r}; choose one of {sorted(ANCHORS)}, a callable or an array") from None
        return fn(a, b)
    if callable(method):
        m = method(a, b)
    else:
        m = backend.asarray_like(method, a)
    if tuple(m.shape) != tuple(a.shape):
        raise InputError(f"anchor M has shape {tuple(m.shape)}, the sources {tuple(a.shape)}")
    return m

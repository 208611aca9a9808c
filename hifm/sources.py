"""Checking source images and splitting them into luminance and colour (DESIGN §5).

:func:`prepare_sources` turns the two arrays a user passes to :func:`hifm.solve`
or :func:`hifm.fuse` into luminance planes in [0, 1] plus what is needed to
put the fused luminance back into the layout and dtype of the inputs
(:func:`restore_layout`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import backend
from .color import rgb_to_ycbcr, ycbcr_to_rgb
from .errors import DivergenceError, InputError

__all__ = ["Prepared", "check_image", "prepare_sources", "restore_layout"]

_INT_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
_FLOAT_TOL = 1e-4


def _dtype(x: Any) -> np.dtype:
    if backend.is_torch(x):
        raise InputError("torch tensors are not accepted here: pass NumPy or CuPy arrays (DeRUN takes tensors)")
    dt = np.dtype(x.dtype)
    return dt.newbyteorder("=") if dt.byteorder not in ("=", "|") else dt  # big-endian uint16 is uint16


def check_image(x: Any, name: str) -> Any:
    """Validate one source array and return it as ``(H, W)`` or ``(H, W, 3)``.

    Accepts NumPy/CuPy arrays of dtype uint8, uint16 (either byte order), bool or float16/32/64;
    ``(H, W, 1)`` is squeezed and an alpha channel ``(H, W, 4)`` dropped.  Raises
    :class:`~hifm.errors.InputError` naming ``name`` and the problem: not an array,
    a masked array (its hidden pixels would be fused as they are), wrong dtype, empty,
    wrong number of dimensions, NaN/inf, floats outside [0, 1].
    """
    if isinstance(x, np.ma.MaskedArray):
        raise InputError(f"{name}: masked arrays are not accepted (the masked pixels would be fused as stored); "
                         "fill them first, e.g. x.filled(0), or pass x.data")
    if not (hasattr(x, "shape") and hasattr(x, "dtype")):
        if isinstance(x, (list, tuple)):
            x = np.asarray(x)
        else:
            raise InputError(f"{name}: expected an image array, got {type(x).__name__}")
    dt = _dtype(x)
    if dt.kind not in "uifb" or (dt.kind in "ui" and dt not in _INT_SCALE) or dt.kind == "c":
        raise InputError(f"{name}: unsupported dtype {dt} (use uint8, uint16 or float in [0, 1])")
    if x.ndim == 3 and x.shape[2] == 1:
        x = x[..., 0]
    if x.ndim == 3 and x.shape[2] == 4:
        x = x[..., :3]
    if x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[2] != 3):
        raise InputError(f"{name}: expected an H×W or H×W×3 image, got shape {tuple(x.shape)}")
    if x.size == 0:
        raise InputError(f"{name}: the image is empty (shape {tuple(x.shape)})")
    if dt != np.dtype(x.dtype):  # non-native byte order: the same values in native order
        x = x.astype(dt)
    if dt.kind == "f":
        xp = backend.get_xp(x)
        finite = xp.isfinite(x)
        if not bool(finite.all()):
            bad = int(x.size - int(finite.sum()))
            raise InputError(f"{name}: {bad} pixel value(s) are NaN or infinite")
        lo, hi = float(x.min()), float(x.max())
        if lo < -_FLOAT_TOL or hi > 1 + _FLOAT_TOL:
            hint = " (8-bit values? divide by 255)" if hi <= 255.5 and hi > 1.5 else ""
            raise InputError(f"{name}: float images must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]{hint}")
    return x


def _to_unit(x: Any, dtype: np.dtype) -> Any:
    dt = _dtype(x)
    xp = backend.get_xp(x)
    if dt.kind == "b":
        return x.astype(dtype)
    if dt in _INT_SCALE:
        return x.astype(dtype) / dtype.type(_INT_SCALE[dt])
    return xp.clip(x.astype(dtype), 0.0, 1.0)


@dataclass
class Prepared:
    """Luminance sources in [0, 1] and how to restore the input layout."""

    a: Any
    b: Any
    chroma: Any  # (H, W, 2) Cb/Cr of the colour source, or None
    out_dtype: np.dtype
    shape: tuple[int, int]


def _output_dtype(da: np.dtype, db: np.dtype, work: np.dtype) -> np.dtype:
    ints = [d for d in (da, db) if d in _INT_SCALE]
    if len(ints) == 2:
        return max(ints, key=lambda d: d.itemsize)
    return work


def prepare_sources(ir: Any, vis: Any, dtype: str = "float32") -> Prepared:
    """Validate the sources, bring them to [0, 1] luminance (BT.601) and keep the colour.

    The chroma comes from ``vis`` when it is colour, else from ``ir`` when that is
    colour (e.g. PET with a gray MRI passed first), else the result is gray.
    ``dtype`` (the working precision) must be ``"float32"`` or ``"float64"``.
    """
    if str(dtype) not in ("float32", "float64"):
        raise InputError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    a = check_image(ir, "infrared/first source")
    b = check_image(vis, "visible/second source")
    if a.shape[:2] != b.shape[:2]:
        raise InputError(
            f"size mismatch: first source is {a.shape[0]}×{a.shape[1]}, second is {b.shape[0]}×{b.shape[1]} (H×W); "
            "register or resize them first"
        )
    if a.shape[0] < 2 or a.shape[1] < 2:
        raise InputError(f"images must be at least 2×2 pixels, got {a.shape[0]}×{a.shape[1]}")
    work = np.dtype(dtype)
    fa, fb = _to_unit(a, work), _to_unit(b, work)
    chroma = None
    lum = []
    for f in (fa, fb):
        if f.ndim == 3:
            ycc = rgb_to_ycbcr(f)
            lum.append(backend.get_xp(f).ascontiguousarray(ycc[..., 0]))
        else:
            lum.append(f)
    for f in (fb, fa):
        if f.ndim == 3:
            chroma = rgb_to_ycbcr(f)[..., 1:]
            break
    return Prepared(lum[0], lum[1], chroma, _output_dtype(_dtype(a), _dtype(b), work), (a.shape[0], a.shape[1]))


def restore_layout(y: Any, prep: Prepared) -> Any:
    """Fused luminance ``(H, W)`` → output in the input layout and dtype (clipped to range).

    Colour: RGB = YCbCr⁻¹(Y_fused, Cb, Cr) of the colour source, clipped to [0, 1].
    Integer outputs are rounded to the nearest level.
    """
    xp = backend.get_xp(y)
    if not bool(xp.isfinite(y).all()):  # NaN would be cast to 0: never round it into an image
        bad = int(y.size - int(xp.isfinite(y).sum()))
        raise DivergenceError(f"the fused image holds {bad} NaN or infinite value(s); nothing was returned")
    y = xp.clip(y, 0.0, 1.0)
    if prep.chroma is not None:
        ycc = xp.concatenate([y[..., None], prep.chroma.astype(y.dtype)], axis=-1)
        y = xp.clip(ycbcr_to_rgb(ycc), 0.0, 1.0)
    if prep.out_dtype in _INT_SCALE:
        scale = _INT_SCALE[prep.out_dtype]
        return xp.rint(y * scale).astype(prep.out_dtype)
    return y.astype(prep.out_dtype)

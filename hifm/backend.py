"""Array backends: the array module comes from the data (DESIGN §6).

Every numerical function of :mod:`hifm` takes its array namespace from its
inputs, in the style of sigpy's ``get_array_module``.  Three namespaces are
supported: NumPy (with :mod:`scipy.fft`), CuPy and PyTorch.  Only the handful
of operations whose spelling differs between them live here; everything else
is written with operators and the functions the three libraries share
(``abs``, ``sign``, ``clip``, ``floor``, ``roll``, ``log1p``, ``sqrt``,
``where``, ``einsum``).

``torch`` and ``cupy`` are never imported at module import time: an array is
recognised by the name of the module that defines its type.
"""
from __future__ import annotations

from types import ModuleType
from typing import Any, Sequence

import numpy as np

__all__ = [
    "get_xp",
    "is_torch",
    "is_cupy",
    "fft_module",
    "zeros",
    "asarray_like",
    "to_index",
    "take",
    "to_numpy",
    "available_backends",
]


def _type_module(x: Any) -> str:
    return type(x).__module__.split(".")[0]


def is_torch(x: Any) -> bool:
    """True for a ``torch.Tensor``."""
    return _type_module(x) == "torch"


def records_graph(*xs: Any) -> bool:
    """True when torch autograd records a graph through any of ``xs`` (grad mode on and a
    tensor among them that requires a gradient); False for non-torch values, ``None``, or
    under ``torch.no_grad()`` / ``torch.inference_mode()``. Fast paths that update
    temporaries in place (:mod:`hifm.ops`, :mod:`unrolled`) run only when this is False."""
    tensors = [x for x in xs if is_torch(x)]
    if not tensors:
        return False
    import torch

    return torch.is_grad_enabled() and any(x.requires_grad for x in tensors)


def is_cupy(x: Any) -> bool:
    """True for a ``cupy.ndarray``."""
    return _type_module(x) == "cupy"


def get_xp(*arrays: Any) -> ModuleType:
    """The array module (numpy, cupy or torch) of the first array argument.

    Python scalars and ``None`` are skipped; NumPy is the default.
    """
    for x in arrays:
        if x is None or isinstance(x, (int, float, complex)):
            continue
        if is_torch(x):
            import torch

            return torch
        if is_cupy(x):
            import cupy

            return cupy
    return np


def fft_module(x: Any) -> ModuleType:
    """The FFT module for ``x``: ``scipy.fft`` for NumPy, else ``xp.fft``.

    All three offer ``rfft2(a, s)`` and ``irfft2(a, s)`` with the transform over
    the last two axes, which is all the solver uses.
    """
    xp = get_xp(x)
    if xp is np:
        import scipy.fft

        return scipy.fft
    return xp.fft


def zeros(shape: Sequence[int], like: Any) -> Any:
    """Zeros of ``shape`` with the dtype and device of ``like``."""
    if is_torch(like):
        return like.new_zeros(tuple(shape))
    xp = get_xp(like)
    return xp.zeros(tuple(shape), dtype=like.dtype)


def asarray_like(a: Any, like: Any, dtype: Any = None) -> Any:
    """Convert ``a`` (NumPy array, list or scalar) to the namespace/device of ``like``.

    ``dtype=None`` keeps the real floating dtype of ``like`` for float data and
    the natural integer dtype otherwise.
    """
    src = np.asarray(a) if not (is_torch(a) or is_cupy(a)) else a
    if is_torch(like):
        import torch

        if is_torch(src):
            t = src.to(like.device)
        else:
            arr = np.ascontiguousarray(src)
            if not arr.flags.writeable:  # e.g. a broadcast or a frozen constant: torch wants its own copy
                arr = arr.copy()
            t = torch.as_tensor(arr, device=like.device)
        if dtype is None and t.is_floating_point():
            t = t.to(like.dtype if like.is_floating_point() else torch.float64)
        elif dtype is not None:
            t = t.to(dtype)
        return t
    xp = get_xp(like)
    out = xp.asarray(src)
    if dtype is None and out.dtype.kind == "f" and getattr(like, "dtype", None) is not None:
        if like.dtype.kind == "f":
            out = out.astype(like.dtype, copy=False)
    elif dtype is not None:
        out = out.astype(dtype, copy=False)
    return out


def to_index(x: Any) -> Any:
    """Integer index array from a float array holding whole numbers."""
    if is_torch(x):
        return x.long()
    return x.astype(np.intp)


def take(x: Any, index: Any, axis: int) -> Any:
    """``x`` gathered along ``axis`` with a 1-D integer ``index`` (NumPy, CuPy or torch)."""
    if is_torch(x):
        idx = asarray_like(index, x, dtype=None)
        return x.index_select(axis, idx.long())
    xp = get_xp(x)
    return xp.take(x, xp.asarray(index), axis=axis)


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy copy/view of any supported array."""
    if is_torch(x):
        return x.detach().cpu().numpy()
    if is_cupy(x):
        return x.get()
    return np.asarray(x)


def available_backends() -> list[str]:
    """Names of the solver backends usable on this machine (``numpy`` always)."""
    names = ["numpy"]
    try:  # pragma: no cover - depends on the machine
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            names.append("cupy")
    except Exception:  # noqa: BLE001 - any failure means "not available"
        pass
    return names

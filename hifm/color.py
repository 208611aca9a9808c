"""Colour handling (DESIGN §5): ITU-R BT.601 full-range YCbCr, as JPEG and OpenCV.

Y  =  0.299 R + 0.587 G + 0.114 B
Cb = −0.168736 R − 0.331264 G + 0.5 B + ½
Cr =  0.5 R − 0.418688 G − 0.081312 B + ½
(images in [0, 1]); the inverse is the exact matrix inverse.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import backend

__all__ = ["RGB_TO_YCBCR", "YCBCR_TO_RGB", "rgb_to_ycbcr", "ycbcr_to_rgb"]

RGB_TO_YCBCR = np.array(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=np.float64
)
YCBCR_TO_RGB = np.linalg.inv(RGB_TO_YCBCR)
_OFFSET = np.array([0.0, 0.5, 0.5])


def _apply(matrix: np.ndarray, img: Any) -> Any:
    xp = backend.get_xp(img)
    mat = backend.asarray_like(matrix, img)
    return xp.einsum("ij,...j->...i", mat, img)


def rgb_to_ycbcr(rgb: Any) -> Any:
    """``(..., 3)`` RGB in [0, 1] → ``(..., 3)`` YCbCr (Y in [0, 1], Cb/Cr centred on ½)."""
    return _apply(RGB_TO_YCBCR, rgb) + backend.asarray_like(_OFFSET, rgb)


def ycbcr_to_rgb(ycc: Any) -> Any:
    """Inverse of :func:`rgb_to_ycbcr` (not clipped)."""
    return _apply(YCBCR_TO_RGB, ycc - backend.asarray_like(_OFFSET, ycc))

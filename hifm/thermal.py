"""Thermal images as cameras store them: used bit depth, range stretch, pseudo-colour check.

Many thermal cameras deliver 14-bit (or 12-, 10-bit) counts in a 16-bit file: values
0…16383 in a container whose full scale is 65535. Read at face value (``x / 65535``)
such an image fills at most a quarter of [0, 1] and a warm target fades next to the
visible image. :func:`stretch_ir` maps it to the full 16-bit range:

* ``ir_range=(lo, hi)`` given: ``x ↦ clip((x − lo) / (hi − lo), 0, 1)``, in stored units;
* otherwise, for a one-plane ``uint16`` image, the used bit depth ``b`` is the smallest of
  10, 12 and 14 with ``max(x) ≤ 2^b − 1``, and ``x ↦ x / (2^b − 1)``; an image whose
  maximum needs more than 14 bits is left alone (``b = 16``).

The result is ``uint16`` on the full scale (``round(65535 · x')``), so the fused output keeps
16 bits. An image that uses the whole container, an 8-bit image and a float image pass
through unchanged (unless ``ir_range`` is given).

:func:`pseudo_colour_warning` flags a colour infrared image: a thermal palette (iron,
inferno, rainbow...) maps temperature to hue, and the luminance the fusion uses does not
follow temperature monotonically through such a palette.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError

__all__ = ["IRStretch", "stretch_ir", "used_bits", "pseudo_colour_warning"]

_CANDIDATE_BITS = (10, 12, 14)


@dataclass(frozen=True)
class IRStretch:
    """What :func:`stretch_ir` did to one infrared image.

    Attributes:
        stored_bits: 8 or 16 (integer files), ``None`` for float images.
        used_bits: the detected bit depth (``None`` when not applicable).
        range: ``[lo, hi]`` in stored units mapped to [0, full scale].
        stretched: whether the samples were changed.
        how: ``"bit depth"``, ``"--ir-range"`` or ``"none"``.
    """

    stored_bits: int | None
    used_bits: int | None
    range: tuple[float, float] | None
    stretched: bool
    how: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self, name: str | Path = "IR") -> str:
        """One line for the user, e.g. ``"IR a.png: 16-bit file using 14 bits, 0…16383 stretched to the full range"``."""
        if self.how == "--ir-range":
            return f"IR {name}: --ir-range {self.range[0]:g} {self.range[1]:g} stretched to the full range"
        if self.stretched:
            return (f"IR {name}: {self.stored_bits}-bit file using {self.used_bits} bits; "
                    f"0…{self.range[1]:g} stretched to the full range (--ir-range LO HI or --no-stretch to change)")
        return f"IR {name}: used as stored"


def used_bits(image: np.ndarray) -> int | None:
    """The bit depth a ``uint16`` image uses: 10, 12, 14 or 16 (``None`` for other dtypes)."""
    if image.dtype != np.uint16:
        return None
    top = int(image.max()) if image.size else 0
    for bits in _CANDIDATE_BITS:
        if top <= 2**bits - 1:
            return bits
    return 16


def stretch_ir(
    image: np.ndarray, ir_range: tuple[float, float] | None = None, auto: bool = True
) -> tuple[np.ndarray, IRStretch]:
    """The infrared image stretched to its container's full range, and what was done (module docstring).

    Args:
        image: the image as read (``uint8``, ``uint16`` or float, ``H×W`` or ``H×W×3``).
        ir_range: ``(lo, hi)`` in stored units to map to [0, full scale]; overrides the detection.
        auto: detect the used bit depth of one-plane ``uint16`` images (ignored with ``ir_range``).

    Raises:
        InputError: ``ir_range`` with ``hi <= lo``.
    """
    arr = np.asarray(image)
    stored = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(arr.dtype)
    if ir_range is not None:
        lo, hi = float(ir_range[0]), float(ir_range[1])
        if not hi > lo:
            raise InputError(f"--ir-range needs LO < HI, got {lo:g} {hi:g}")
        x = np.clip((arr.astype(np.float64) - lo) / (hi - lo), 0.0, 1.0)
        out = np.rint(x * 65535).astype(np.uint16) if stored else x.astype(arr.dtype)
        return out, IRStretch(stored, used_bits(arr), (lo, hi), True, "--ir-range")
    bits = used_bits(arr)
    if not auto or bits is None or bits == 16 or arr.ndim != 2:
        return arr, IRStretch(stored, bits, None, False, "none")
    top = 2**bits - 1
    out = np.rint(arr.astype(np.float64) * (65535.0 / top)).astype(np.uint16)
    return out, IRStretch(stored, bits, (0.0, float(top)), True, "bit depth")


def pseudo_colour_warning(image: np.ndarray, name: str | Path = "IR") -> str | None:
    """A one-line warning when the infrared image is colour (a thermal palette?), else ``None``."""
    if image.ndim == 3 and image.shape[2] == 3:
        return (f"warning: infrared image {name} is colour, likely a pseudo-colour palette (iron, inferno...); "
                "only its brightness is fused, which does not follow temperature through such a palette; "
                "use the camera's gray (raw) image if you have it")
    return None

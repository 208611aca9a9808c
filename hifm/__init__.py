"""hifm: heterogeneous image fusion with the HIFM model (ADMM solver) and DeRUN.

Main entry points: :func:`solve` (the classical model), :func:`fuse` (any
method on arrays), :func:`anchor`, :class:`HIFMParams`; submodules
:mod:`hifm.metrics`, :mod:`hifm.degrade`, :mod:`hifm.io`, :mod:`hifm.datasets`.
``torch`` is never imported here.
"""
from __future__ import annotations

from .anchors import anchor
from .api import SolveInfo, estimate_noise, fuse, solve
from .errors import HIFMError, ImageReadError, ImageWriteError, InputError, PairingError
from .params import HIFMParams

__version__ = "0.1.0"

__all__ = [
    "solve",
    "fuse",
    "anchor",
    "HIFMParams",
    "SolveInfo",
    "estimate_noise",
    "HIFMError",
    "InputError",
    "ImageReadError",
    "ImageWriteError",
    "PairingError",
    "__version__",
]

"""DeRUN in PyTorch (DESIGN §7): the HIFM ADMM unrolled into learned stages.

``unrolled`` imports ``torch``; :mod:`hifm` never does.  Main entry points:
:class:`DeRUN` (and :meth:`DeRUN.from_hifm`), :func:`load_pretrained`,
:func:`unrolled.inference.fuse_derun`, the losses of :mod:`unrolled.losses` and
the training command :mod:`unrolled.train`.
"""
from __future__ import annotations

from .derun import DeRUN, DeRUNConfig, DeRUNOutput
from .layers import Stage
from .pwsm import AnchorHead, PartialSharing, SobelExtractor, make_extractor

__all__ = [
    "DeRUN",
    "DeRUNConfig",
    "DeRUNOutput",
    "Stage",
    "PartialSharing",
    "SobelExtractor",
    "AnchorHead",
    "make_extractor",
    "load_pretrained",
]


def load_pretrained(task: str = "ivf", device: str = "cpu", dtype=None) -> "DeRUN":
    """The shipped DeRUN weights for ``"ivf"`` or ``"mif"`` (sha256-verified; :mod:`unrolled.weights`)."""
    from .weights import load_pretrained as _load

    return _load(task, device=device, dtype=dtype)

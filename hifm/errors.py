"""Exception classes shared by the ``hifm`` package.

Every error raised on purpose by ``hifm`` derives from :class:`HIFMError`, so a
caller can catch the whole family at once. The subclasses also derive from the
closest built-in exception (``ValueError`` for bad inputs, ``OSError`` for
failed writes) so that generic handlers keep working.

Messages are one line and name the file involved (when there is one) and the
problem, e.g. ``"cannot read image 'a.png': file is empty (0 bytes)"``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "HIFMError",
    "InputError",
    "ImageReadError",
    "ImageWriteError",
    "PairingError",
]


def _one_line(text: str) -> str:
    """Collapse ``text`` to a single line (messages must never span lines)."""
    return " ".join(str(text).split())


class HIFMError(Exception):
    """Base class of every exception raised on purpose by ``hifm``."""


class InputError(HIFMError, ValueError):
    """A bad array or parameter (shape, dtype, range, unknown option...)."""


class ImageReadError(InputError):
    """An image file could not be read (missing, empty, corrupt, unsupported...).

    Attributes:
        path: the file that failed.
        reason: the problem, without the file name.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = _one_line(reason)
        super().__init__(f"cannot read image '{self.path}': {self.reason}")

    def __reduce__(self):  # keep the exception picklable (multiprocessing)
        return (type(self), (self.path, self.reason))


class ImageWriteError(HIFMError, OSError):
    """An image file could not be written (bad folder, disk full, bad array...).

    Attributes:
        path: the target file.
        reason: the problem, without the file name.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = _one_line(reason)
        # OSError.__init__ with a single argument keeps ``str(exc)`` == message.
        super().__init__(f"cannot write image '{self.path}': {self.reason}")

    def __str__(self) -> str:
        return f"cannot write image '{self.path}': {self.reason}"

    def __reduce__(self):  # keep the exception picklable (multiprocessing)
        return (type(self), (self.path, self.reason))


class PairingError(InputError):
    """Paired folders could not be discovered or matched (see ``hifm.datasets``)."""

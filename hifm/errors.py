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
    "OptionError",
    "ImageReadError",
    "ImageWriteError",
    "PairingError",
    "DivergenceError",
    "ResourceError",
    "display_path",
]


def _one_line(text: str) -> str:
    """Collapse ``text`` to a single line (messages must never span lines)."""
    return " ".join(str(text).split())


def display_path(path: str | os.PathLike[str]) -> str:
    """``path`` as text safe for a one-line message: control characters escaped (``\\n``, ``\\x1b``...).

    A file name may hold a newline or an escape sequence; printed as is it would break the
    one-line promise of every message (or rewrite the terminal). Printable characters,
    non-ASCII letters included, are kept as they are.
    """
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


class HIFMError(Exception):
    """Base class of every exception raised on purpose by ``hifm``."""


class InputError(HIFMError, ValueError):
    """A bad array or parameter (shape, dtype, range, unknown option...)."""


class OptionError(InputError, TypeError):
    """An option that does not exist, or does not apply to the chosen method.

    Also a ``TypeError``, what Python raises for an unexpected keyword argument.
    """


class DivergenceError(HIFMError, ArithmeticError):
    """An iterative method produced non-finite values or diverged; nothing is returned."""


class ResourceError(HIFMError, MemoryError):
    """A job would need more memory (or other resources) than the machine has; refused before it starts."""


class ImageReadError(InputError):
    """An image file could not be read (missing, empty, corrupt, unsupported...).

    Attributes:
        path: the file that failed.
        reason: the problem, without the file name.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = _one_line(reason)
        super().__init__(f"cannot read image '{display_path(self.path)}': {self.reason}")

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
        super().__init__(f"cannot write image '{display_path(self.path)}': {self.reason}")

    def __str__(self) -> str:
        return f"cannot write image '{display_path(self.path)}': {self.reason}"

    def __reduce__(self):  # keep the exception picklable (multiprocessing)
        return (type(self), (self.path, self.reason))


class PairingError(InputError):
    """Paired folders could not be discovered or matched (see ``hifm.datasets``)."""

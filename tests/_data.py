"""Where the tests find the real data sets, and what happens when they are missing.

The real data live next to the repository, in ``../shared/data`` (see its README.md).  In a
user's clone without that folder the tests that need it are *skipped*, with the path in the
reason.  In CI (environment variable ``CI=true``, as set by GitHub Actions, GitLab and most
other services) a missing folder is a *failure*: otherwise the checks that only run on the
real data (the metrics' conformance to VIFB, the DeRUN/solver equivalence on real pairs, ...)
would disappear silently and a wrong metric or model would pass.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

#: ``../shared/data`` relative to the repository root, or the folder named by the environment
#: variable ``HIFM_DATA`` (as for the experiment scripts, ``experiments/common.py``).
DATA = Path(os.environ.get("HIFM_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")


def in_ci() -> bool:
    """True when the environment variable ``CI`` is ``true`` (any case) or ``1``."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def missing(what: Path | str, hint: str = "the repository's sibling shared/ folder") -> None:
    """Skip the calling test because ``what`` is missing — or fail it in CI (``CI=true``)."""
    message = f"real data not available: {what} is missing ({hint})"
    if in_ci():
        pytest.fail(f"{message}; CI=true, so missing data is an error, not a skip", pytrace=False)
    pytest.skip(message)


def require(path: Path, hint: str = "the repository's sibling shared/ folder") -> Path:
    """``path`` when it exists (file or folder); otherwise :func:`missing`."""
    if not path.exists():
        missing(path, hint)
    return path

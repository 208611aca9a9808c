"""How much memory a fusion job needs, how much the machine has, and refusing early.

A job that cannot fit must be refused before it allocates anything, with one line that says
how much it needs, how much there is, and what to do — not end in a ``MemoryError``
traceback minutes later, or get the machine's out-of-memory killer.

Estimates (bytes; ``P`` = pixels of the padded FFT domain, ``N`` = pixels of the image,
``s`` = bytes per float of the working dtype, ``n`` = number of filters ∇_l plus ∇_k):

* ``hifm`` (the ADMM solver): ``(32 + 4n + 4c) · P · s`` — the solver's planes (Y, M, the
  F/H/G splits and their right-hand sides, the half spectrum, the denominator) plus the
  transients of its first iteration; ``c`` = 1 for a colour source.
* ``anchor``: ``(32 + 4c) · N · s`` for the ``salient`` anchor (a Gaussian stack and guided filters),
  ``(12 + 8c) · N · s`` for the others (box filters on float64 running sums).
* ``derun`` (inference, no autograd): ``(40 + 12n) · P · s`` per pair of a batch.

The constants were measured and round up: tracemalloc peaks of :func:`hifm.fuse` for NumPy,
and the growth of the peak RSS (``VmHWM``) of :func:`unrolled.inference.fuse_derun` (about 500
bytes per pixel at 512² and 1024²). ``tests/test_hardening.py`` checks that each estimate lies
between the measurement and 2.5 times it.

Available memory: ``MemAvailable`` of ``/proc/meminfo``, lowered to the cgroup's limit minus
its usage when the process runs in a memory-limited container; the environment variable
``HIFM_MEMORY_LIMIT`` (bytes, or with a suffix: ``500M``, ``8G``) caps it further, e.g. to leave
room for other jobs. On a GPU (CuPy or torch ``cuda``), the device's free memory.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from .errors import InputError, ResourceError

__all__ = [
    "estimate_bytes",
    "available_bytes",
    "check_memory",
    "format_bytes",
    "parse_bytes",
    "MEMORY_LIMIT_ENV",
]

MEMORY_LIMIT_ENV = "HIFM_MEMORY_LIMIT"
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_bytes(text: str) -> int:
    """``"500M"`` → 524288000; plain digits are bytes; suffixes K, M, G, T (powers of 1024, optional B)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", str(text).lower())
    if not match:
        raise InputError(f"{MEMORY_LIMIT_ENV}={text!r} is not a size (use bytes or a suffix: 500M, 8G)")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def format_bytes(n: float) -> str:
    """``1.5 GB``-style text (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0
    return f"{n:.1f} TB"  # pragma: no cover


def estimate_bytes(
    method: str,
    shape: tuple[int, int],
    *,
    colour: bool = False,
    dtype: str = "float32",
    n_filters: int = 4,
    margin: int = 8,
    batch: int = 1,
    anchor: str = "salient",
) -> int:
    """Memory (bytes) that fusing one ``shape = (H, W)`` pair with ``method`` needs (module docstring).

    Args:
        method: ``"hifm"``, ``"anchor"`` or ``"derun"``.
        shape: the image's height and width.
        colour: a source is colour (H×W×3).
        dtype: the working precision, ``"float32"`` or ``"float64"``.
        n_filters: filters of ∇_l plus ∇_k (4 for the solver's default ``diff`` banks, 10 for DeRUN's).
        margin: the reflective margin of the padded domain.
        batch: pairs fused together (DeRUN's batches).
        anchor: the anchor's name (``method="anchor"``).
    """
    import numpy as np

    h, w = (int(v) for v in shape)
    s = np.dtype(dtype).itemsize
    c = 1 if colour else 0
    n_px = h * w
    if method == "anchor":
        planes = 32 + 4 * c if anchor == "salient" else 12 + 8 * c
        return int(planes * n_px * s)
    # the padded domain rounded up to a fast FFT length (never much more than + 2·margin + 10 %)
    from .solver import padded_shape

    hp, wp = padded_shape((h, w), margin)
    p_px = hp * wp
    if method == "hifm":
        return int((32 + 4 * n_filters + 4 * c) * p_px * s)
    if method == "derun":
        return int((40 + 12 * n_filters) * p_px * s) * max(int(batch), 1)
    raise InputError(f"unknown method {method!r} for the memory estimate")


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    if not text or text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_available() -> int | None:
    """Limit minus usage of this process's memory cgroup (v2, else v1), or None without a limit."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        limit = _read_int(limit_file)
        if limit is not None and limit < (1 << 60):
            usage = _read_int(usage_file) or 0
            return max(limit - usage, 0)
    return None


def available_bytes(device: str = "cpu") -> int | None:
    """Memory a new job may use now (module docstring); None when it cannot be told."""
    found: list[int] = []
    if device.startswith("cuda"):
        found += [v for v in (_gpu_free(device),) if v is not None]
    else:
        found += [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
        if not found and hasattr(os, "sysconf"):
            try:
                found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
            except (ValueError, OSError):
                pass
    limit = os.environ.get(MEMORY_LIMIT_ENV)
    if limit:
        found.append(parse_bytes(limit))
    return min(found) if found else None


def _gpu_free(device: str) -> int | None:
    try:
        import torch

        if torch.cuda.is_available():
            index = torch.device(device).index or 0
            return int(torch.cuda.mem_get_info(index)[0])
    except Exception:  # noqa: BLE001 - no torch or no CUDA: try CuPy
        pass
    try:
        import cupy

        return int(cupy.cuda.runtime.memGetInfo()[0])
    except Exception:  # noqa: BLE001
        return None


def check_memory(method: str, shape: tuple[int, int], *, device: str = "cpu", **estimate: Any) -> int:
    """Refuse (:class:`~hifm.errors.ResourceError`) a job whose estimate exceeds the available memory.

    Returns the estimate in bytes. The message says how much is needed, how much is free and
    what to do about it.
    """
    need = estimate_bytes(method, shape, **estimate)
    have = available_bytes(device)
    if have is None or need <= have:
        return need
    h, w = shape
    advice = "a smaller image (fuse-dir --max-pixels, or resize it)"
    if method != "anchor":
        anchor_need = estimate_bytes("anchor", shape, colour=estimate.get("colour", False),
                                     dtype=estimate.get("dtype", "float32"))
        advice += f", --method anchor (about {format_bytes(anchor_need)})"
    advice += ", or split the image into tiles"
    where = "GPU memory" if device.startswith("cuda") else "memory"
    limit = f" ({MEMORY_LIMIT_ENV} included)" if os.environ.get(MEMORY_LIMIT_ENV) else ""
    raise ResourceError(
        f"fusing a {w}×{h} pair with method '{method}' needs about {format_bytes(need)} of {where}, "
        f"more than the {format_bytes(have)} available{limit}; use {advice}"
    )


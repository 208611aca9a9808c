"""Batch fusion of a paired data set that never loses work (``hifm fuse-dir``).

:func:`fuse_dir` discovers the pairs of a data set root (:func:`hifm.datasets.find_pairs`),
fuses each with :func:`hifm.api.fuse` in parallel, and writes every output atomically
(:func:`hifm.io.write_image`: temporary file, fsync, rename). The same task function,
:func:`run_pair`, runs in-process (``workers=0``), in a pool of spawned processes, or on
a Dask cluster; it never raises, it returns the pair's manifest record.

The manifest, ``OUTDIR/manifest.jsonl``, is an append-only log written by the client
process only: one JSON object per line, appended, flushed and fsynced as soon as a pair
completes. ``kind`` is ``"run"`` (one header per run), ``"pair"`` (one per pair fused,
skipped or failed) or ``"file"`` (an input that could not be paired). A pair's state is
its *last* ``"pair"`` record. With ``resume=True`` a pair is skipped exactly when that
record says ``"ok"``, its output file exists with the recorded SHA-256, its input files
still have the recorded SHA-256s and the settings (method, options, resize, format,
hifm version) are the same; every other pair is (re)done, so an output written just
before a kill, but not yet recorded, is rewritten. A line cut short by a kill is
ignored when the manifest is read.

Statuses: ``ok``; ``skipped`` (the input is unusable: unreadable, corrupt, mismatched
sizes without ``resize``, NaN/inf, beyond the pixel limit...); ``failed`` (the output
could not be made: write error, disk full, unexpected error). Every non-``ok`` record
carries a one-line ``reason`` naming the file(s), is printed, and goes into the report
``OUTDIR/skipped.csv`` together with unpaired and duplicate input files. A disk-full
write stops the run (the pairs not started are left for ``--resume``).

Processes: the pool is :class:`hifm.workers.ProcessPool` (workers die with this process; a
killed worker fails only its pair). Ctrl-C or SIGTERM stops the run within about a second:
the pairs in flight get :data:`INTERRUPT_GRACE_SECONDS`, the rest are ``not run`` in the
report, and a pair whose output a killed worker had already renamed into place is recorded
by the client, so every output on disk is in the manifest. The output folder is compared
with the input folders by identity (device and inode), the manifest and the lock are never
written through a symbolic link.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import csv
import errno
import glob
import hashlib
import io
import json
import os
import signal
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, api
from .anchors import DEFAULT_ANCHOR, TASK_ANCHORS
from .datasets import Pair, PairSet, find_pairs
from .errors import HIFMError, ImageReadError, ImageWriteError, InputError, display_path
from .io import DEFAULT_MAX_PIXELS, fused_bit_depth, image_orientation, read_image, write_image
from .io import _umask as _io_umask
from .workers import ProcessPool, WorkerLost

__all__ = [
    "BatchError",
    "BatchReport",
    "FuseSettings",
    "PairTask",
    "MANIFEST_NAME",
    "REPORT_NAME",
    "fuse_dir",
    "run_pair",
    "read_manifest",
    "final_pair_records",
    "sha256_file",
]

MANIFEST_NAME = "manifest.jsonl"
"""File name of the manifest inside the output folder."""
REPORT_NAME = "skipped.csv"
"""File name of the report of skipped/failed pairs and unpaired files."""
LOCK_NAME = ".hifm-fuse-dir.lock"
METHODS = ("anchor", "hifm", "derun")
TASKS = ("ivf", "mif")
DASK_CONNECT_TIMEOUT = "20s"
"""How long :func:`fuse_dir` waits for a Dask scheduler."""
INTERRUPT_GRACE_SECONDS = 1.0
"""After Ctrl-C/SIGTERM, how long the pairs in flight may take to finish before their workers are killed."""
FORMATS = ("png", "tif", "same")
_FORMAT_SUFFIX = {"png": ".png", "tif": ".tif"}


class BatchError(HIFMError):
    """The batch as a whole cannot run or continue (bad output folder, manifest write failed...)."""


# --------------------------------------------------------------------------- settings and tasks


@dataclass(frozen=True)
class FuseSettings:
    """Everything that decides how a pair is fused and stored.

    Attributes:
        method: ``"anchor"``, ``"hifm"`` or ``"derun"`` (passed to :func:`hifm.api.fuse`).
        iters: ADMM iterations for ``"hifm"`` (``None``: the solver's default).
        task: ``"ivf"`` or ``"mif"`` (``None``: chosen by :func:`fuse_dir` from the data set's
            layout, medical → ``"mif"``). For ``"derun"`` the shipped weights; for ``"anchor"``
            and ``"hifm"`` the anchor (:data:`hifm.anchors.TASK_ANCHORS`: ``"mif"`` → ``two_scale``).
        weights: ``"derun"`` only: a weights JSON (overrides ``task``); its recorded sha256 is
            part of :meth:`key`, so ``--resume`` redoes pairs fused with other weights.
        device: ``"derun"`` only: ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (not part of :meth:`key`).
        ir_range: ``(lo, hi)``: stretch the infrared samples from this range (stored units) to
            the full range (:func:`hifm.thermal.stretch_ir`).
        stretch: without ``ir_range``, detect the bit depth a 16-bit infrared image uses
            (e.g. 14 bits) and stretch it to the full range.
        resize: when the sources differ in size, resize the infrared image to the
            visible size (bilinear, anti-aliased when shrinking) instead of skipping.
        max_pixels: refuse images with more pixels (decompression-bomb guard);
            ``None`` for no limit. Not part of :meth:`key` (it changes nothing in an
            output, only which inputs are refused).
        out_format: ``"png"``, ``"tif"`` or ``"same"`` (the visible image's extension).
    """

    method: str = "anchor"
    iters: int | None = None
    resize: bool = False
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    out_format: str = "png"
    task: str | None = None
    weights: str | None = None
    device: str = "cpu"
    ir_range: tuple[float, float] | None = None
    stretch: bool = True

    def __post_init__(self) -> None:
        if self.ir_range is not None:
            lo, hi = (float(v) for v in self.ir_range)
            if not hi > lo:
                raise InputError(f"ir_range needs lo < hi, got {lo:g} {hi:g}")
            object.__setattr__(self, "ir_range", (lo, hi))
        if self.method not in METHODS:
            raise InputError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.method != "derun" and (self.weights is not None or self.device != "cpu"):
            raise InputError("weights and device apply to method 'derun' only")
        if self.task is not None and self.task not in TASKS:
            raise InputError(f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        if self.weights is not None:
            object.__setattr__(self, "weights", str(Path(self.weights).resolve()))
        if self.out_format not in FORMATS:
            raise InputError(f"unknown output format {self.out_format!r}; choose one of {', '.join(FORMATS)}")
        if self.iters is not None and self.method != "hifm":
            raise InputError(f"iters applies to method 'hifm' only (this run uses method '{self.method}')")
        if self.iters is not None and not 0 <= self.iters <= api.MAX_ITERS:
            raise InputError(f"iters must lie in [0, {api.MAX_ITERS}], got {self.iters}")
        if self.max_pixels is not None and self.max_pixels <= 0:
            raise InputError(f"max_pixels must be positive (or None for no limit), got {self.max_pixels}")

    def fuse_options(self) -> dict[str, Any]:
        """Keyword arguments for :func:`hifm.api.fuse` besides ``method``."""
        if self.method == "derun":
            which = {"weights": self.weights} if self.weights else {"task": self.task or "ivf"}
            return {**which, "device": self.device}
        options: dict[str, Any] = {} if self.iters is None else {"iters": int(self.iters)}
        if self.task is not None and TASK_ANCHORS[self.task] != DEFAULT_ANCHOR:
            options["anchor"] = TASK_ANCHORS[self.task]
        return options

    def key(self) -> dict[str, Any]:
        """The settings an output depends on (compared on resume)."""
        options = self.fuse_options()
        if self.method == "derun":
            options = {"task": self.task or "ivf"} if not self.weights else {"weights_sha256": _weights_digest(self.weights)}
        return {
            "method": self.method,
            "options": options,
            "resize": self.resize,
            "format": self.out_format,
            "ir_range": list(self.ir_range) if self.ir_range else None,
            "stretch": self.stretch,
            "hifm_version": __version__,
        }

    def key_hash(self) -> str:
        """SHA-256 of :meth:`key` as canonical JSON."""
        return hashlib.sha256(json.dumps(self.key(), sort_keys=True).encode()).hexdigest()

    def output_name(self, pair: Pair) -> str:
        """The output file name of ``pair``: its stem plus the format's extension."""
        suffix = _FORMAT_SUFFIX.get(self.out_format) or pair.vis_path.suffix.lower()
        return pair.name + suffix


def _weights_digest(path: str) -> str | None:
    """The sha256 a DeRUN weights JSON records for its tensors (None when unreadable: loading will say why)."""
    try:
        return str(json.loads(Path(path).read_text())["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class PairTask:
    """One unit of work, picklable for process pools and Dask (paths as strings)."""

    name: str
    ir: str
    vis: str
    output: str
    settings: FuseSettings


class _Skip(Exception):
    """Internal: the pair's input is unusable; the message is the one-line reason."""


# --------------------------------------------------------------------------- the task


def run_pair(task: PairTask) -> dict[str, Any]:
    """Fuse one pair and write its output; return its manifest record (never raises).

    The record holds the input and output SHA-256s, the settings, the status
    (``ok``/``skipped``/``failed``), a one-line reason for the latter two, notes on
    conversions (alpha dropped, palette expanded, gray stored as RGB, resize) and
    the time taken.
    """
    start = time.perf_counter()
    record = _base_record(task)
    try:
        record.update(_fuse_and_write(task))
        record["status"] = "ok"
    except (_Skip, ImageReadError) as exc:
        record.update(status="skipped", reason=_one_line(exc))
    except InputError as exc:
        record.update(status="skipped", reason=f"cannot fuse '{_q(task.ir)}' + '{_q(task.vis)}': {_one_line(exc)}")
    except Exception as exc:  # every failure becomes a record, never a lost pair
        record.update(_failure(exc, task))
    record["seconds"] = round(time.perf_counter() - start, 6)
    record["finished"] = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    return record


def _base_record(task: PairTask) -> dict[str, Any]:
    return {
        "kind": "pair",
        "name": task.name,
        "status": None,
        "reason": None,
        "ir": task.ir,
        "vis": task.vis,
        "ir_sha256": None,
        "vis_sha256": None,
        "output": task.output,
        "output_sha256": None,
        "method": task.settings.method,
        "options": task.settings.fuse_options(),
        "settings_sha256": task.settings.key_hash(),
        "hifm_version": __version__,
        "notes": [],
        "resized": None,
        "host": f"{socket.gethostname()}:{os.getpid()}",
    }


def _fuse_and_write(task: PairTask) -> dict[str, Any]:
    """Hash, read, check, fuse and write one pair; the fields to add to its record."""
    ir_path, vis_path, settings = Path(task.ir), Path(task.vis), task.settings
    hashes = {"ir_sha256": _input_hash(ir_path), "vis_sha256": _input_hash(vis_path)}
    notes: list[str] = []
    ir = _load(ir_path, settings.max_pixels, notes, "ir")
    vis = _load(vis_path, settings.max_pixels, notes, "vis")
    ir = _thermal(ir, ir_path, settings, notes)
    ir, resized = _match_sizes(ir, vis, ir_path, vis_path, settings.resize)
    out = Path(task.output)
    _refuse_input_as_output(out, ir_path, vis_path)
    fused = api.fuse(ir, vis, method=settings.method, **settings.fuse_options())
    out.parent.mkdir(parents=True, exist_ok=True)  # a nested pair keeps its relative path
    depth = fused_bit_depth(fused, out)
    write_image(out, fused, bit_depth=depth)
    if depth is not None:
        notes.append(f"float result stored with {depth} bits per sample")
    return {
        **hashes,
        "output_sha256": sha256_file(out),
        "notes": notes,
        "resized": resized,
        "out_shape": list(fused.shape),
        "out_dtype": str(fused.dtype),
    }


def _refuse_input_as_output(out: Path, *inputs: Path) -> None:
    """Never write over an input: the output name may be the same file under another path (link, mount)."""
    for path in inputs:
        if same_file(out, path):
            raise _Skip(f"output '{_q(out)}' is the same file as input '{_q(path)}' (a link or another path to it); "
                        "refusing to overwrite an input")


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """``a`` and ``b`` are the same file or folder (device and inode), whatever the paths say; False if one is missing."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _input_hash(path: Path) -> str:
    try:
        return sha256_file(path)
    except OSError as exc:
        raise ImageReadError(path, _os_reason(exc)) from exc


def _load(path: Path, max_pixels: int | None, notes: list[str], role: str) -> np.ndarray:
    """Read one source (gray stored as RGB → one plane) and refuse NaN/inf, naming the file."""
    image = read_image(path, max_pixels=max_pixels, gray_if_equal=True)
    notes.extend(f"{role}: {note}" for note in _conversion_notes(path, image))
    if np.issubdtype(image.dtype, np.floating):
        bad = int(image.size - np.count_nonzero(np.isfinite(image)))
        if bad:
            raise _Skip(f"cannot fuse '{_q(path)}': {bad} pixel value(s) are NaN or infinite")
    return image


def _thermal(ir: np.ndarray, path: Path, settings: FuseSettings, notes: list[str]) -> np.ndarray:
    """The infrared image stretched as ``settings`` say (:mod:`hifm.thermal`), with notes on what happened."""
    from .thermal import pseudo_colour_warning, stretch_ir

    ir, info = stretch_ir(ir, settings.ir_range, auto=settings.stretch)
    if info.stretched:
        notes.append(info.describe(path.name))
    warning = pseudo_colour_warning(ir, path.name)
    if warning:
        notes.append(warning)
    return ir


def _conversion_notes(path: Path, image: np.ndarray) -> list[str]:
    """What :func:`read_image` changed, judged from the stored mode (Pillow header only)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            mode = img.mode
    except Exception:  # e.g. a float RGB TIFF Pillow cannot open: nothing to note
        return []
    notes = []
    if mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        notes.append(f"alpha channel dropped (stored mode {mode})")
    if mode in ("P", "PA"):
        notes.append("palette expanded to " + ("gray" if image.ndim == 2 else "RGB"))
    if mode in ("RGB", "RGBA") and image.ndim == 2:
        notes.append("gray image stored as RGB read as one plane")
    orientation = image_orientation(path)
    if orientation != 1:
        notes.append(f"EXIF orientation {orientation} applied (the image is read upright)")
    return notes


def _match_sizes(
    ir: np.ndarray, vis: np.ndarray, ir_path: Path, vis_path: Path, resize: bool
) -> tuple[np.ndarray, dict[str, Any] | None]:
    """Return ``ir`` at the size of ``vis`` (resized when allowed) and what was done."""
    if ir.shape[:2] == vis.shape[:2]:
        return ir, None
    sizes = f"'{_q(ir_path)}' is {_wh(ir)}, '{_q(vis_path)}' is {_wh(vis)} (W×H)"
    if not resize:
        raise _Skip(f"size mismatch: {sizes}; pass --resize to resize the infrared image to the visible size")
    resized = resize_image(ir, vis.shape[:2])
    info = {"what": "ir", "from": list(ir.shape[:2]), "to": list(vis.shape[:2]), "how": "bilinear, anti-aliased"}
    return resized, info


def resize_image(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize ``image`` to ``shape`` (H, W) bilinearly, anti-aliased when shrinking; dtype kept."""
    from skimage.transform import resize

    target = tuple(shape) + image.shape[2:]
    shrink = shape[0] < image.shape[0] or shape[1] < image.shape[1]
    out = resize(image, target, order=1, mode="edge", anti_aliasing=shrink, preserve_range=True)
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        return np.clip(np.rint(out), info.min, info.max).astype(image.dtype)
    return out.astype(image.dtype)


def _failure(exc: Exception, task: PairTask) -> dict[str, Any]:
    """Record fields of a failed pair; ``errno`` is kept so the client can see a full disk."""
    if isinstance(exc, ImageWriteError):
        reason = _one_line(exc)
    else:
        reason = f"fusing '{_q(task.ir)}' + '{_q(task.vis)}' failed: {type(exc).__name__}: {_one_line(exc)}"
    cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
    return {
        "status": "failed",
        "reason": reason,
        "errno": getattr(cause, "errno", None),
        "traceback": traceback.format_exc(limit=-3),
    }


# --------------------------------------------------------------------------- manifest


class Manifest:
    """Append-only JSONL log; each :meth:`append` is flushed and fsynced before it returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: io.TextIOWrapper | None = None

    def open(self) -> Manifest:
        """Open for appending, first ending a line cut short by a kill."""
        try:
            self._fh = open_no_follow(self.path, "a")
            needs_newline = _last_byte(self.path) not in (b"", b"\n")
            if needs_newline:
                self._fh.write("\n")
        except OSError as exc:
            raise BatchError(f"cannot open manifest '{_q(self.path)}': {_os_reason(exc)}") from exc
        return self

    def append(self, record: dict[str, Any]) -> None:
        """Write one record as one line, flush and fsync."""
        assert self._fh is not None, "Manifest.open() first"
        try:
            self._fh.write(json.dumps(record, default=str) + "\n")
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError as exc:
            raise BatchError(
                f"cannot append to manifest '{_q(self.path)}': {_os_reason(exc)}; the outputs written so far are "
                "kept, rerun with --resume"
            ) from exc

    def close(self) -> None:
        """Close the file (records are already on disk)."""
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None


def open_no_follow(path: Path, mode: str = "a") -> io.TextIOWrapper:
    """Open a file this run writes (manifest, lock) without following a symbolic link at its name.

    A link planted at ``OUTDIR/manifest.jsonl`` would make every append land in the file it
    points to; ``O_NOFOLLOW`` makes the open fail instead (reported as a symbolic link).
    """
    # O_NONBLOCK: a FIFO at that name fails at once instead of blocking the run (no effect on files)
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NONBLOCK", 0)
    flags |= os.O_APPEND if mode == "a" else 0
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP or path.is_symlink():
            raise OSError(errno.ELOOP, "it is a symbolic link; hifm never writes through a link it did not "
                                       "create (remove the link)") from None
        raise
    if not _is_regular_fd(fd):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file")
    return open(fd, mode, encoding="utf-8")


def _is_regular_fd(fd: int) -> bool:
    import stat

    return stat.S_ISREG(os.fstat(fd).st_mode)


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() == 0:
            return b""
        fh.seek(-1, os.SEEK_END)
        return fh.read(1)


def read_manifest(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a manifest; lines that are not complete JSON objects (a kill mid-write) are ignored."""
    records = []
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def final_pair_records(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last ``"pair"`` record of each pair name."""
    state: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.get("kind") == "pair" and isinstance(record.get("name"), str):
            state[record["name"]] = record
    return state


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------- resume


def is_done(record: dict[str, Any] | None, task: PairTask) -> bool:
    """True when ``record`` proves ``task`` complete: ok, same settings, inputs and output hashes."""
    if not record or record.get("status") != "ok":
        return False
    # the output by its name in OUTDIR: OUTDIR may be spelled differently (relative, absolute, moved)
    if record.get("settings_sha256") != task.settings.key_hash() or not isinstance(record.get("output"), str) \
            or Path(record["output"]).name != Path(task.output).name:
        return False
    checks = ((task.output, "output_sha256"), (task.ir, "ir_sha256"), (task.vis, "vis_sha256"))
    try:
        return all(record.get(key) == sha256_file(path) for path, key in checks)
    except OSError:
        return False


# --------------------------------------------------------------------------- the run


@dataclass
class BatchReport:
    """What a :func:`fuse_dir` run did.

    Attributes:
        outdir: the output folder; ``manifest`` and ``report`` the files in it.
        total: pairs discovered.
        records: the pair records appended by this run (ok, skipped, failed).
        already_done: names skipped because ``resume`` found them complete.
        input_problems: ``(path(s), reason)`` of unpaired and duplicate files.
        not_run: names left undone because the run stopped early (disk full, interrupted).
        stop_reason: why the run stopped early, or ``None``.
        interrupted: the run was stopped by Ctrl-C or SIGTERM (exit status 130).
        recovered: names whose worker was lost (or killed on an interruption) after it had
            written the output: the client checked and recorded them (status ``ok``).
        seconds: wall time of the run.
    """

    outdir: Path
    manifest: Path
    report: Path
    total: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)
    already_done: list[str] = field(default_factory=list)
    input_problems: list[tuple[str, str]] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)
    stop_reason: str | None = None
    interrupted: bool = False
    recovered: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        """Number of this run's pair records with ``status``."""
        return sum(1 for record in self.records if record["status"] == status)

    @property
    def complete(self) -> bool:
        """True when every discovered pair is done and every input file was paired."""
        return (
            not self.input_problems
            and not self.not_run
            and self.count("ok") + len(self.already_done) == self.total
        )

    @property
    def exit_code(self) -> int:
        """0 when :attr:`complete`, 130 when interrupted, else 1."""
        if self.interrupted:
            return 130
        return 0 if self.complete else 1

    def summary(self) -> str:
        """One line: counts, time and where the report is."""
        rate = self.count("ok") / self.seconds if self.seconds > 0 else 0.0
        text = (
            f"{self.total} pairs: {self.count('ok')} fused, {len(self.already_done)} already done, "
            f"{self.count('skipped')} skipped, {self.count('failed')} failed, {len(self.not_run)} not run; "
            f"{len(self.input_problems)} unpaired/duplicate file(s); {self.seconds:.1f} s ({rate:.2f} pairs/s)"
        )
        if self.interrupted:
            text += f"; interrupted: rerun with --resume to fuse the {len(self.not_run)} pair(s) not run"
        if not self.complete:
            text += f"; report: {_q(self.report)}"
        return text


def fuse_dir(
    root: str | os.PathLike[str],
    outdir: str | os.PathLike[str],
    settings: FuseSettings | None = None,
    *,
    workers: int = 1,
    resume: bool = False,
    dask: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    ir_dir: str | os.PathLike[str] | None = None,
    vis_dir: str | os.PathLike[str] | None = None,
    recursive: bool = False,
) -> BatchReport:
    """Fuse every pair of the data set ``root`` into ``outdir``.

    Args:
        root: data set root (see :mod:`hifm.datasets`).
        outdir: output folder, created if needed; holds the outputs, the manifest
            and the report. It may not be one of the input folders.
        settings: method, options, resize, pixel limit, output format.
        workers: parallel processes (or Dask workers for ``dask="local"``); 0 runs
            the pairs in this process, one after the other.
        resume: skip the pairs the manifest proves complete (see the module docstring).
        dask: ``None`` (local processes), ``"local"`` (start a ``distributed.LocalCluster``
            with ``workers`` worker processes) or a scheduler address (``tcp://host:8786``).
        progress: show a tqdm bar (pairs/s, ETA) on stderr.
        log: called with each one-line message (skips, failures); default: print to stderr.
        ir_dir, vis_dir: the two modality folders, when their names are not the usual ones.
        recursive: pair files in sub-folders too (see :func:`hifm.datasets.find_pairs`);
            an output keeps its pair's relative path (``OUTDIR/day/01.png``).

    Returns:
        A :class:`BatchReport`; the report file is written before returning. After Ctrl-C or
        SIGTERM it returns too (``report.interrupted``, exit code 130), with the pairs not run.

    Raises:
        PairingError: ``root`` has no recognizable pairs.
        BatchError: the output folder is unusable, locked by another run, or the
            manifest cannot be written; or the Dask scheduler cannot be reached.
    """
    settings = settings or FuseSettings()
    log = log or _print_err
    started = time.perf_counter()
    pairset = find_pairs(root, a_dir=ir_dir, b_dir=vis_dir, recursive=recursive)
    if settings.method == "derun":
        settings = _resolve_derun(settings, pairset, log)
    else:
        settings = _resolve_anchor_task(settings, pairset, log)
    out = _prepare_outdir(Path(outdir), pairset)
    report = BatchReport(out, out / MANIFEST_NAME, out / REPORT_NAME, total=len(pairset))
    with _locked(out), contextlib.closing(Manifest(report.manifest)) as manifest:
        previous = final_pair_records(read_manifest(report.manifest)) if resume else {}
        manifest.open()
        tasks = _plan(pairset, out, settings, previous, report)
        manifest.append(_run_header(pairset, out, settings, workers, resume, dask, len(tasks), report))
        _record_input_problems(pairset, manifest, report, log)
        try:
            with _executor(workers, dask, settings) as (executor, slots):
                _execute(executor, tasks, manifest, report, log, progress, window=lambda: 2 * slots())
        except KeyboardInterrupt:  # while the workers were starting or stopping
            report.interrupted = True
            report.stop_reason = "interrupted (Ctrl-C or SIGTERM)"
            seen = {record["name"] for record in report.records} | set(report.not_run)
            report.not_run.extend(task.name for task in tasks if task.name not in seen)
        report.seconds = time.perf_counter() - started
        write_report(report)
    return report


def _resolve_anchor_task(settings: FuseSettings, pairset: PairSet, log: Callable[[str], None]) -> FuseSettings:
    """For ``anchor``/``hifm``: choose the task, hence the anchor, from the layout when no task is given.

    A medical layout gets ``"mif"`` (the ``two_scale`` anchor, :data:`hifm.anchors.TASK_ANCHORS`)
    and says so; an infrared-visible layout keeps the default anchor, and so does a mixed one,
    which says so too (one anchor per run).
    """
    import dataclasses

    if settings.task is not None:
        return settings
    if pairset.kind == "medical":
        settings = dataclasses.replace(settings, task="mif")
        log(f"anchor: {TASK_ANCHORS['mif']} for medical pairs (layout {pairset.layout}; --task ivf for the "
            f"default {DEFAULT_ANCHOR})")
    elif pairset.kind == "mixed":
        log(f"anchor: the default {DEFAULT_ANCHOR} for every pair of this mixed layout ({pairset.layout}); "
            f"--task mif fuses all with {TASK_ANCHORS['mif']}")
    return settings


def _resolve_derun(settings: FuseSettings, pairset: PairSet, log: Callable[[str], None]) -> FuseSettings:
    """Choose the task from the layout when neither task nor weights is given; load the network once here.

    Loading it in this process first turns a bad weights file (missing, a training checkpoint,
    a sha256 mismatch) into one :class:`BatchError` before any worker starts.
    """
    import dataclasses

    if settings.task is None and settings.weights is None:
        if pairset.kind == "mixed":
            raise BatchError(f"'{pairset.root}' holds both medical and infrared-visible sets ({pairset.layout}); "
                             "pass --task ivf or --task mif")
        task = "mif" if pairset.kind == "medical" else "ivf"
        settings = dataclasses.replace(settings, task=task)
        log(f"DeRUN: the shipped '{task}' weights ({pairset.kind} layout {pairset.layout}; --task to choose)")
    try:
        from unrolled.inference import get_model
    except ImportError as exc:
        raise BatchError(f"method 'derun' needs torch and the unrolled package ({exc})") from None
    try:
        get_model(settings.task, settings.weights, settings.device)
    except (ValueError, OSError) as exc:
        raise BatchError(_one_line(exc)) from None
    return settings


def _worker_init(threads: int, settings: FuseSettings | None) -> None:
    """Start of each pool process: ``threads`` BLAS/OpenMP/torch threads; DeRUN's network loaded once."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)
    if settings is not None and settings.method == "derun":
        import torch

        from unrolled.inference import get_model

        torch.set_num_threads(threads)
        get_model(settings.task, settings.weights, settings.device)  # cached for every pair of this process


def _print_err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _prepare_outdir(out: Path, pairset: PairSet) -> Path:
    """Create ``out``, check that it is writable and not an input folder."""
    if out.exists() and not out.is_dir():
        raise BatchError(f"output folder '{_q(out)}' exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BatchError(f"cannot create output folder '{_q(out)}': {_os_reason(exc)}") from exc
    # by identity (device and inode), not by spelling: a bind mount, a symlinked folder or
    # another path to an input folder is that folder
    folders = {pair.ir_path.parent for pair in pairset.pairs} | {pair.vis_path.parent for pair in pairset.pairs}
    for folder in sorted(folders):
        if same_file(out, folder):
            alias = "" if out.resolve() == folder.resolve() else f" (the same folder as '{_q(folder)}')"
            raise BatchError(f"output folder '{_q(out)}' is an input folder{alias}; choose another one")
    try:
        fd, probe = tempfile.mkstemp(dir=out, prefix=".hifm-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise BatchError(f"output folder '{_q(out)}' is not writable: {_os_reason(exc)}") from exc
    return out


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out`` (one run per output folder); released even on a kill."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        yield
        return
    try:
        fh = open_no_follow(out / LOCK_NAME, "a")
    except OSError as exc:
        raise BatchError(f"cannot open the lock file '{_q(out / LOCK_NAME)}': {_os_reason(exc)}") from exc
    with fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise BatchError(f"another fuse-dir run is writing to '{_q(out)}' (lock on '{_q(out / LOCK_NAME)}')") from exc
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _plan(
    pairset: PairSet, out: Path, settings: FuseSettings, previous: dict[str, dict[str, Any]], report: BatchReport
) -> list[PairTask]:
    """The tasks to run; pairs proven complete go to ``report.already_done``."""
    tasks = []
    for pair in pairset:
        output = out / settings.output_name(pair)
        task = PairTask(pair.name, str(pair.ir_path), str(pair.vis_path), str(output), settings)
        _remove_stale_temporaries(output)
        if is_done(previous.get(pair.name), task):
            report.already_done.append(pair.name)
        else:
            tasks.append(task)
    return tasks


def _remove_stale_temporaries(output: Path) -> None:
    """Delete temporary files a killed :func:`write_image` left for ``output``."""
    for tmp in output.parent.glob(f".{glob.escape(output.name)}.*.tmp"):  # names may hold [ ] * ?
        with contextlib.suppress(OSError):
            tmp.unlink()


def _run_header(
    pairset: PairSet,
    out: Path,
    settings: FuseSettings,
    workers: int,
    resume: bool,
    dask: str | None,
    n_tasks: int,
    report: BatchReport,
) -> dict[str, Any]:
    return {
        "kind": "run",
        "started": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "root": str(pairset.root),
        "layout": pairset.layout,
        "outdir": str(out),
        "settings": asdict(settings),
        "settings_sha256": settings.key_hash(),
        "hifm_version": __version__,
        "workers": workers,
        "executor": _executor_name(workers, dask),
        "resume": resume,
        "pairs": len(pairset),
        "to_do": n_tasks,
        "already_done": len(report.already_done),
        "host": f"{socket.gethostname()}:{os.getpid()}",
    }


def _record_input_problems(pairset: PairSet, manifest: Manifest, report: BatchReport, log: Callable[[str], None]) -> None:
    """Log, record and report every unpaired or duplicate input file."""
    problems = [(str(path), f"unpaired file '{_q(path)}': {_one_line(reason)}") for path, reason in pairset.unpaired]
    for stem, paths in pairset.duplicates:
        names = ", ".join(f"'{_q(p)}'" for p in paths)
        problems.append((" ".join(str(p) for p in paths), f"duplicate stem {stem!r}: {names}; rename or remove all but one"))
    for files, reason in problems:
        manifest.append({"kind": "file", "files": files, "status": "skipped", "reason": reason})
        report.input_problems.append((files, reason))
        log(f"skipped: {reason}")


# --------------------------------------------------------------------------- executors


def _executor_name(workers: int, dask: str | None) -> str:
    if dask:
        return f"dask:{dask}"
    return "inline" if workers == 0 else "processes"


@contextlib.contextmanager
def _executor(
    workers: int, dask: str | None, settings: FuseSettings | None = None
) -> Iterator[tuple[cf.Executor, Callable[[], int]]]:
    """An executor for :func:`run_pair` (inline, spawned processes or Dask) and a function giving its slots.

    Pool processes (:class:`hifm.workers.ProcessPool`) share the CPUs (``cpu_count // workers``
    threads each), load DeRUN once each, die with this process, and a lost one fails only its pair.
    """
    if workers < 0 or (dask == "local" and workers == 0):
        raise BatchError(f"workers must be >= 1 with a Dask local cluster and >= 0 otherwise, got {workers}")
    if dask:
        with _dask_executor(dask, workers) as pair:
            yield pair
    elif workers == 0:
        yield _InlineExecutor(), lambda: 1
    else:
        threads = max(1, (os.cpu_count() or 1) // workers)
        pool = ProcessPool(workers, initializer=_worker_init, initargs=(threads, settings))
        try:
            yield pool, lambda: workers
        except BaseException:
            pool.kill()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class _InlineExecutor(cf.Executor):
    """Runs each submitted call at once in this process (``workers=0``); Ctrl-C is not caught."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future


@contextlib.contextmanager
def _dask_executor(address: str, workers: int) -> Iterator[tuple[cf.Executor, Callable[[], int]]]:
    """A concurrent.futures view of a Dask client on a new LocalCluster or a scheduler, and its thread count.

    The count is asked again at each refill, so a cluster that scales up gets more tasks.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise BatchError("Dask is not installed: pip install 'hifm[dask]'") from exc
    with contextlib.ExitStack() as stack:
        if address == "local":
            address = stack.enter_context(_local_cluster(workers, LocalCluster)).scheduler_address
        elif "://" not in address and ":" not in address:
            raise BatchError(f"--dask {address!r} is neither 'local' nor a scheduler address such as tcp://host:8786")
        try:
            client = stack.enter_context(Client(address, timeout=DASK_CONNECT_TIMEOUT))
        except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, ValueError of a bad address...
            raise BatchError(f"cannot connect to the Dask scheduler at {address!r}: {_one_line(exc)}") from exc
        yield client.get_executor(pure=False), lambda: max(1, sum(client.nthreads().values()))


def _local_cluster(workers: int, local_cluster: Any) -> Any:
    """A LocalCluster of ``workers`` single-threaded processes, without the statistical profiler.

    The worker profiler samples the task thread's stack every 10 ms; on this kind of
    task it cost 20-40 % of the throughput (docs/batch.md).
    """
    import dask

    with dask.config.set({"distributed.worker.profile.enabled": False}):
        return local_cluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")


@dataclass
class _InFlight:
    """A submitted pair and what its output file was before (to tell whether a lost worker wrote it)."""

    task: PairTask
    before: tuple[int, int, int, int] | None


def _file_identity(path: str) -> tuple[int, int, int, int] | None:
    """(device, inode, mtime, size) of a file, None when missing. An atomic rename always changes it."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block is done (recording one pair is never cut in half).

    The signals are noted by a temporary handler and raised again, to the previous handlers,
    when the block ends.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: received.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(received):
            signal.raise_signal(sig)


def _execute(
    executor: cf.Executor,
    tasks: list[PairTask],
    manifest: Manifest,
    report: BatchReport,
    log: Callable[[str], None],
    progress: bool,
    window: Callable[[], int],
) -> None:
    """Keep ``window()`` tasks in flight; record each result as it completes.

    Ctrl-C or SIGTERM (a ``KeyboardInterrupt``): nothing new is started, the pairs in flight get
    :data:`INTERRUPT_GRACE_SECONDS` to finish (and are recorded), then their workers are killed;
    a killed pair whose output was already renamed into place is recorded (``recovered``), the
    others and the pairs never started are ``not run``. The caller writes the report.
    """
    from tqdm import tqdm

    queue = iter(tasks)
    pending: dict[cf.Future, _InFlight] = {}
    with tqdm(total=len(tasks), unit="pair", desc="fuse-dir", disable=not progress, file=sys.stderr,
              dynamic_ncols=True, smoothing=0.1) as bar:
        bar_log = _bar_logger(bar, log, progress)
        try:
            _fill(executor, queue, pending, window, report)
            while pending:
                done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                with _signals_deferred():
                    _collect(done, pending, manifest, report, bar_log, bar)
                if report.stop_reason is None:
                    _fill(executor, queue, pending, window, report)
        except KeyboardInterrupt:
            _interrupted(executor, pending, manifest, report, bar_log, bar)
        report.not_run.extend(task.name for task in queue)
    if report.stop_reason:
        log(f"stopped early: {report.stop_reason}; {len(report.not_run)} pair(s) not run, rerun with --resume")


def _collect(done: Iterable[cf.Future], pending: dict[cf.Future, _InFlight], manifest: Manifest,
             report: BatchReport, log: Callable[[str], None], bar: Any) -> None:
    for future in [f for f in pending if f in done and not f.cancelled()]:  # in submission order
        record = _result(future, pending.pop(future), report)
        _accept(record, manifest, report, log)
        bar.update(1)


def _interrupted(executor: cf.Executor, pending: dict[cf.Future, _InFlight], manifest: Manifest,
                 report: BatchReport, log: Callable[[str], None], bar: Any) -> None:
    """Stop after Ctrl-C/SIGTERM: a short grace for the pairs in flight, then kill; record what is on disk."""
    report.interrupted = True
    report.stop_reason = "interrupted (Ctrl-C or SIGTERM)"
    deadline = time.monotonic() + INTERRUPT_GRACE_SECONDS
    with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C ends the grace at once
        while time.monotonic() < deadline:
            live = [f for f in pending if not f.cancelled()]
            if not live:
                break
            done, _ = cf.wait(live, timeout=max(deadline - time.monotonic(), 0), return_when=cf.FIRST_COMPLETED)
            with _signals_deferred():
                _collect(done, pending, manifest, report, log, bar)
    with _signals_deferred():
        if isinstance(executor, ProcessPool):
            executor.kill()
        for future in pending:
            future.cancel()
        for future, flight in list(pending.items()):
            if future.done() and not future.cancelled() and future.exception() is None:
                _accept(future.result(), manifest, report, log)  # finished just before the kill
                continue
            recovered = _recovered_record(flight)
            if recovered is not None:
                report.recovered.append(flight.task.name)
                _accept(recovered, manifest, report, log)
            else:
                report.not_run.append(flight.task.name)
        pending.clear()


def _bar_logger(bar: Any, log: Callable[[str], None], progress: bool) -> Callable[[str], None]:
    """Messages go above the progress bar when it is shown."""
    if progress and log is _print_err:
        return lambda message: bar.write(message, file=sys.stderr)
    return log


def _fill(
    executor: cf.Executor, queue: Iterator[PairTask], pending: dict[cf.Future, _InFlight],
    window: Callable[[], int], report: BatchReport,
) -> None:
    limit = window()
    while len(pending) < limit:
        task = next(queue, None)
        if task is None:
            return
        flight = _InFlight(task, _file_identity(task.output))
        try:
            future = executor.submit(run_pair, task)
        except KeyboardInterrupt:  # inline executor: Ctrl-C inside this pair (it is "not run", or recovered)
            future = cf.Future()
            future.cancel()
            pending[future] = flight
            raise
        except Exception as exc:  # e.g. a broken pool
            report.stop_reason = f"cannot submit pair {task.name!r}: {type(exc).__name__}: {_one_line(exc)}"
            report.not_run.append(task.name)
            return
        pending[future] = flight


def _result(future: cf.Future, flight: _InFlight, report: BatchReport | None = None) -> dict[str, Any]:
    """The task's record, or, when its worker died, a ``failed`` record (or the recovered one, see below).

    A worker can die between renaming the output into place and returning the record; the
    output's identity then differs from the one seen at submission, and the client records
    the pair itself (hashes computed here) so that every output on disk is in the manifest.
    """
    task = flight.task
    try:
        return future.result()
    except BaseException as exc:  # worker killed, pool broken, Dask KilledWorker...
        recovered = _recovered_record(flight)
        if recovered is not None:
            if report is not None:
                report.recovered.append(task.name)
            return recovered
        record = _base_record(task)
        record.update(
            status="failed",
            reason=f"worker lost while fusing '{_q(task.ir)}' + '{_q(task.vis)}': {type(exc).__name__}: "
                   f"{_one_line(exc)}",
            finished=datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        )
        return record


def _recovered_record(flight: _InFlight) -> dict[str, Any] | None:
    """An ``ok`` record for a pair whose output a lost worker finished writing, else None."""
    task = flight.task
    after = _file_identity(task.output)
    if after is None or after == flight.before:
        return None
    record = _base_record(task)
    try:
        record.update(
            ir_sha256=sha256_file(task.ir), vis_sha256=sha256_file(task.vis), output_sha256=sha256_file(task.output),
        )
    except OSError:
        return None
    record.update(
        status="ok",
        notes=["recorded by the client: the worker was lost after writing the output (complete: atomic rename)"],
        finished=datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
    )
    return record


def _accept(record: dict[str, Any], manifest: Manifest, report: BatchReport, log: Callable[[str], None]) -> None:
    """Append a completed pair to the manifest and the report; stop the run on a full disk."""
    manifest.append(record)
    report.records.append(record)
    if record["status"] != "ok":
        log(f"{record['status']}: {record['reason']}")
    if record.get("errno") == errno.ENOSPC and report.stop_reason is None:
        report.stop_reason = f"disk full while writing '{_q(record['output'])}'"


# --------------------------------------------------------------------------- report


def write_report(report: BatchReport) -> Path:
    """Write ``skipped.csv`` (status, name, files, reason) atomically; returns its path.

    A temporary file made with :func:`tempfile.mkstemp` (never a fixed name a link could be
    planted at) is renamed over the report.
    """
    rows = [("skipped", "", files, reason) for files, reason in report.input_problems]
    rows += [
        (r["status"], r["name"], f"{r['ir']} {r['vis']}", r["reason"]) for r in report.records if r["status"] != "ok"
    ]
    rows += [("not run", name, "", report.stop_reason or "") for name in report.not_run]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("status", "name", "files", "reason"))
    writer.writerows(rows)
    tmp: Path | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(dir=report.report.parent, prefix=f".{report.report.name}.", suffix=".tmp")
        tmp = Path(tmp_name)
        with open(fd, "w", encoding="utf-8") as fh:
            fh.write(buffer.getvalue())
        os.chmod(tmp, 0o666 & ~_io_umask())
        os.replace(tmp, report.report)
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise BatchError(f"cannot write report '{_q(report.report)}': {_os_reason(exc)}") from exc
    return report.report


# --------------------------------------------------------------------------- helpers


def _q(path: str | os.PathLike[str]) -> str:
    """A path for a one-line message (control characters escaped)."""
    return display_path(path)


def _wh(image: np.ndarray) -> str:
    return f"{image.shape[1]}×{image.shape[0]}"


def _one_line(exc: BaseException | str) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or _one_line(exc)

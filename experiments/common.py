"""Shared helpers of the experiment scripts (``experiments/*.py``, see ``docs/experiments.md``).

What lives here:

* **data**: :data:`DATASETS` (the full data sets under :data:`DATA_ROOT`, and the samples
  shipped in ``samples/``), :func:`available_datasets` (in ``--quick`` runs a missing full
  set is replaced by its shipped stand-in, with a note), :func:`load_dataset` (pairs as
  stored on disk, optionally a spread subset and centre crops);
* **methods**: :class:`Method` and its constructors :func:`anchor_method`,
  :func:`hifm_method`, :func:`derun_method`; :func:`derun_models` loads DeRUN at
  initialisation and trained, or explains why it cannot (``unrolled`` or the shipped
  weights missing), so that every script degrades to "skipped, with a note";
* **metrics**: :func:`evaluate` (a thin wrapper of :func:`hifm.metrics.evaluate`),
  :func:`higher_is_better`, :func:`mean_ranks`;
* **output**: :class:`Report` (Markdown tables, printed and written), :func:`markdown_table`,
  :func:`new_figure` / :func:`save_figure` (matplotlib, Agg), :func:`display`;
* **command line**: :func:`base_parser` (``--out``, ``--quick``, ``--threads``) and
  :func:`setup_threads`.

Conventions: sources are passed to the fusion methods exactly as read from disk
(uint8, gray ``H×W`` or colour ``H×W×3``; an RGB file with R = G = B is read as one
plane); every method returns the fused image in that layout (colour when a source is
colour), which is what the metrics take (``a`` = visible / CT / PET / SPECT,
``b`` = infrared / MRI, VIFB's order).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
"""The repository root."""
DATA_ROOT = Path(os.environ.get("HIFM_DATA", REPO.parent / "shared" / "data"))
"""The full data sets (default ``../shared/data`` next to the repository; override with the
environment variable HIFM_DATA; layout in docs/data.md)."""
SAMPLES_ROOT = REPO / "samples"
"""The sample pairs shipped with the repository (samples/README.md)."""
DOCS_OUT = REPO / "docs" / "experiments"
"""Default parent folder of the scripts' outputs."""
CACHE_DIR = REPO / "runs" / "experiments-cache"
"""Cache of results that depend on static inputs only (git-ignored)."""

STANDARD_METRICS: tuple[str, ...] = ("EN", "SD", "SF", "AG", "MI", "SCD", "VIF", "Qabf", "SSIM")
"""The metrics of most fusion tables (names as in :mod:`hifm.metrics`' aliases)."""


# ----------------------------------------------------------------------------- data sets
@dataclass(frozen=True)
class DatasetInfo:
    """One paired folder: a full data set under :data:`DATA_ROOT` or a shipped sample set.

    Attributes:
        key: short name used on the command line (``tno``, ``mri-ct``...).
        folder: folder name under :data:`DATA_ROOT` (or under :data:`SAMPLES_ROOT`).
        title: name in tables and figures.
        kind: ``"ivf"`` (infrared–visible) or ``"mif"`` (medical).
        protocol: the metrics protocol (``"gray"`` or ``"vifb"``).
        shipped: the folder is under :data:`SAMPLES_ROOT` (always present).
    """

    key: str
    folder: str
    title: str
    kind: str
    protocol: str = "gray"
    shipped: bool = False

    @property
    def root(self) -> Path:
        return (SAMPLES_ROOT if self.shipped else DATA_ROOT) / self.folder


DATASETS: dict[str, DatasetInfo] = {
    d.key: d
    for d in (
        DatasetInfo("tno", "tno", "TNO", "ivf"),
        DatasetInfo("roadscene-test", "roadscene-test", "RoadScene-test", "ivf"),
        DatasetInfo("roadscene-train", "roadscene-train", "RoadScene-train", "ivf"),
        DatasetInfo("mri-ct", "mri-ct", "MRI-CT", "mif"),
        DatasetInfo("mri-pet", "mri-pet", "MRI-PET", "mif"),
        DatasetInfo("mri-spect", "mri-spect", "MRI-SPECT", "mif"),
        DatasetInfo("vifb-dev", "vifb-dev", "VIFB-dev", "ivf", "vifb"),
        DatasetInfo("tno-samples", "tno", "TNO samples", "ivf", shipped=True),
        DatasetInfo("mri-ct-synthetic", "synthetic/mri-ct", "MRI-CT synthetic", "mif", shipped=True),
        DatasetInfo("mri-pet-synthetic", "synthetic/mri-pet", "MRI-PET synthetic", "mif", shipped=True),
    )
}

STAND_INS: dict[str, str] = {
    "tno": "tno-samples",
    "roadscene-test": "tno-samples",
    "roadscene-train": "tno-samples",
    "mri-ct": "mri-ct-synthetic",
    "mri-pet": "mri-pet-synthetic",
    "mri-spect": "mri-pet-synthetic",
}
"""The shipped sample set a ``--quick`` run uses when a full data set is missing (VIFB-dev has none)."""

DATA_NOTES: list[str] = []
"""Notes of :func:`available_datasets` about substituted or dropped data sets (for the reports)."""


def available_datasets(keys: Sequence[str], quick: bool) -> list[str]:
    """``keys`` with each missing full data set replaced by its shipped stand-in (``quick`` only).

    A ``--quick`` run (a smoke test) must work in a fresh clone: a missing full set is replaced
    by :data:`STAND_INS` (or dropped when it has none, e.g. VIFB-dev), and a note saying so is
    printed and kept in :data:`DATA_NOTES`. A full run needs the real data.

    Raises:
        SystemExit: a full run and a data set is missing (one line naming the folder and HIFM_DATA).
    """
    out: list[str] = []
    for key in keys:
        info = DATASETS[key]
        use = key
        if not info.root.is_dir():
            if not quick:  # one line, no traceback: the script cannot run without its data
                raise SystemExit(f"error: data set {key!r}: folder {info.root} not found; set HIFM_DATA to the "
                                 "folder that holds the full data sets (docs/data.md) or run with --quick")
            use = STAND_INS.get(key)
            note = (f"{info.title}: not found at {info.root}; " + (
                f"using the shipped {DATASETS[use].title} ({DATASETS[use].root.relative_to(REPO)}) instead"
                if use else "left out (no shipped stand-in)"))
            if note not in DATA_NOTES:
                DATA_NOTES.append(note)
                print(f"note: {note}", flush=True)
        if use and use not in out:
            out.append(use)
    return out


@dataclass
class Sample:
    """One pair of sources as stored (uint8), possibly centre-cropped.

    ``ir`` is source A (infrared, or MRI), ``vis`` source B (visible, or CT/PET/SPECT).
    """

    dataset: str
    name: str
    ir: np.ndarray
    vis: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.ir.shape[0]), int(self.ir.shape[1])

    @property
    def pixels(self) -> int:
        return self.shape[0] * self.shape[1]


def spread_indices(n: int, k: int | None) -> list[int]:
    """``k`` indices spread evenly over ``range(n)`` (all when ``k`` is None or ≥ n), first and last included."""
    if k is None or k >= n:
        return list(range(n))
    if k <= 0:
        return []
    if k == 1:
        return [0]
    return sorted({int(round(i * (n - 1) / (k - 1))) for i in range(k)})


def center_crop(img: np.ndarray, size: int | tuple[int, int] | None) -> np.ndarray:
    """The centred ``size × size`` (or ``(h, w)``) window of ``img`` (the whole image where it is smaller)."""
    if size is None:
        return img
    h, w = (size, size) if isinstance(size, int) else size
    H, W = img.shape[:2]
    h, w = min(h, H), min(w, W)
    top, left = (H - h) // 2, (W - w) // 2
    return np.ascontiguousarray(img[top : top + h, left : left + w])


def load_dataset(
    key: str,
    max_pairs: int | None = None,
    crop: int | tuple[int, int] | None = None,
    names: Sequence[str] | None = None,
) -> list[Sample]:
    """The pairs of data set ``key`` (:data:`DATASETS`) as stored on disk.

    Args:
        key: a key of :data:`DATASETS`.
        max_pairs: keep this many pairs, spread evenly over the sorted names
            (:func:`spread_indices`); None keeps all.
        crop: centre crop (pixels) applied to both sources.
        names: keep exactly these pair names (in this order) instead.

    Raises:
        FileNotFoundError: the folder is missing (names the path and HIFM_DATA).
    """
    from hifm.datasets import find_pairs
    from hifm.io import read_image

    info = DATASETS[key]
    if not info.root.is_dir():
        raise FileNotFoundError(f"data set {key!r}: folder {info.root} not found (set HIFM_DATA to the data root; "
                                "docs/data.md)")
    pairs = list(find_pairs(info.root))
    if names is not None:
        by_name = {p.name: p for p in pairs}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise KeyError(f"data set {key!r} has no pair(s) {missing}")
        pairs = [by_name[n] for n in names]
    else:
        pairs = [pairs[i] for i in spread_indices(len(pairs), max_pairs)]
    out = []
    for p in pairs:
        ir = read_image(p.ir_path, gray_if_equal=True)
        vis = read_image(p.vis_path, gray_if_equal=True)
        out.append(Sample(key, p.name, center_crop(ir, crop), center_crop(vis, crop)))
    return out


def heldout_names(key: str, holdout: float = 0.2) -> list[str] | None:
    """Names of the pairs of a medical set that DeRUN's MIF training holds out (its hash split).

    The shipped MIF weights are trained on the ``train`` part of MRI-CT/PET/SPECT
    (:data:`unrolled.train.TASK_PRESETS`); this is the ``test`` part by
    :func:`unrolled.data.holdout_part`.  None when ``unrolled`` cannot be imported.
    """
    try:
        from unrolled.data import holdout_part
    except Exception:  # noqa: BLE001
        return None
    from hifm.datasets import find_pairs

    info = DATASETS[key]
    return [p.name for p in find_pairs(info.root) if holdout_part(info.root, p.name, holdout) == "test"]


def luminance(sample: Sample, dtype: str = "float64") -> tuple[np.ndarray, np.ndarray]:
    """(A, B): the two sources as luminance in [0, 1] (BT.601 for a colour source), as the solver sees them."""
    from hifm.sources import prepare_sources

    prep = prepare_sources(sample.ir, sample.vis, dtype)
    return np.asarray(prep.a), np.asarray(prep.b)


# ------------------------------------------------------------------------------- methods
@dataclass
class Method:
    """A fusion method: ``fuse(ir, vis) -> fused`` on stored arrays (see the module docstring).

    Attributes:
        name: label in tables and figures.
        fuse: the callable.
        family: ``"anchor"``, ``"hifm"`` or ``"derun"``.
        note: one line for the tables' notes (what exactly runs).
    """

    name: str
    fuse: Callable[[np.ndarray, np.ndarray], np.ndarray]
    family: str
    note: str = ""


def anchor_method(name: str = "anchor", anchor: str | None = None) -> Method:
    """The pre-fusion M(A, B) alone (``hifm.fuse(method="anchor")``; the default anchor unless named)."""
    import hifm
    from hifm.anchors import DEFAULT_ANCHOR

    which = anchor or DEFAULT_ANCHOR
    return Method(name, lambda ir, vis: hifm.fuse(ir, vis, method="anchor", anchor=which), "anchor",
                  f"hifm.fuse(method='anchor'): the {which} anchor M")


def hifm_method(iters: int = 200, name: str | None = None, **params: Any) -> Method:
    """``hifm.solve(ir, vis, iters, **params)`` (:class:`hifm.HIFMParams` defaults unless given; one thread)."""
    import hifm

    label = name or f"hifm ({iters} it.)"
    desc = ", ".join(f"{k}={v}" for k, v in params.items()) or "default parameters"
    return Method(label, lambda ir, vis: hifm.solve(ir, vis, iters=iters, **params), "hifm", f"hifm.solve, {iters} iterations, {desc}")


def derun_method(model: Any, name: str, note: str = "") -> Method:
    """DeRUN ``model`` through :func:`unrolled.inference.fuse_derun` (float32, CPU)."""
    from unrolled.inference import fuse_derun

    return Method(name, lambda ir, vis: fuse_derun(ir, vis, weights=model), "derun", note)


@dataclass
class DerunModels:
    """DeRUN for one task at initialisation and trained; ``None`` with a reason when unavailable.

    ``init_params``: the :class:`hifm.params.HIFMParams` overrides that the initial
    network was built from (``DeRUN.from_hifm``): its output equals ``hifm.solve`` with them.
    """

    task: str
    init: Any = None
    trained: Any = None
    init_params: dict[str, Any] = field(default_factory=dict)
    stages: int = 9
    notes: list[str] = field(default_factory=list)

    @property
    def available(self) -> bool:
        return self.init is not None or self.trained is not None


def derun_models(task: str = "ivf", dtype: str = "float32") -> DerunModels:
    """Load DeRUN for ``task`` ("ivf" or "mif"): trained (the shipped weights) and at initialisation.

    The initial network is the one training starts from: :func:`unrolled.train.build_model`
    with the training configuration stored with the shipped weights, or the trainer's
    defaults when no weights are shipped.  Whatever is missing (``unrolled`` not
    importable, no weights) is ``None`` and explained in ``notes``; nothing raises.
    """
    out = DerunModels(task)
    try:
        import torch

        import unrolled  # noqa: F401
        from unrolled.train import TrainConfig, build_model
    except Exception as exc:  # noqa: BLE001 - any import problem means "skip DeRUN"
        out.notes.append(f"DeRUN skipped: the unrolled package cannot be imported ({type(exc).__name__}: {exc}).")
        return out
    torch_dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    train_cfg: dict[str, Any] = {}
    try:
        from unrolled.weights import load_pretrained

        model = load_pretrained(task, dtype=torch_dtype)
        out.trained = model.eval()
        from unrolled.weights import pretrained_path

        meta = json.loads(pretrained_path(task).read_text())
        train_cfg = dict((meta.get("info") or {}).get("train_config") or {})
        out.notes.append(f"DeRUN trained: shipped '{task}' weights ({model.count_parameters()['total']} parameters).")
    except Exception as exc:  # noqa: BLE001
        out.notes.append(f"DeRUN trained skipped: no usable shipped '{task}' weights ({type(exc).__name__}: {exc}).")
    try:
        defaults = TrainConfig().as_dict()
        cfg = TrainConfig.from_dict({k: train_cfg.get(k, defaults[k]) for k in ("init", "model", "seed")} | {"tensorboard": False})
        out.init_params = dict(cfg.init)
        out.stages = int(cfg.model.get("stages", 9))
        out.init = build_model(cfg).to(torch_dtype).eval()
        source = "the shipped weights' training configuration" if train_cfg else "the trainer's default configuration"
        desc = ", ".join(f"{k}={v}" for k, v in out.init_params.items()) or "HIFMParams defaults"
        out.notes.append(
            f"DeRUN init: unrolled.train.build_model with {source} (DeRUN.from_hifm({desc}), "
            f"{out.stages} stages): equals hifm.solve({desc}) at {out.stages} iterations."
        )
    except Exception as exc:  # noqa: BLE001
        out.notes.append(f"DeRUN init skipped: cannot build the initial network ({type(exc).__name__}: {exc}).")
    return out


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """``(fn(*args, **kwargs), seconds)`` by ``time.perf_counter``."""
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - t0


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] → uint8 (rounded, clipped); uint8 unchanged."""
    if x.dtype == np.uint8:
        return x
    return np.rint(np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)


def to_unit(x: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / float image → float64 in [0, 1]."""
    if x.dtype == np.uint8:
        return x.astype(np.float64) / 255.0
    if x.dtype == np.uint16:
        return x.astype(np.float64) / 65535.0
    return np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)


@dataclass
class Result:
    """Metrics and time of one method on one pair."""

    dataset: str
    pair: str
    method: str
    values: dict[str, float]
    seconds: float
    pixels: int


def warm_up(methods: Sequence[Method], sample: Sample, size: int = 48) -> None:
    """Run every method once on a small crop (Numba compilation, torch start-up) before timing."""
    ir, vis = center_crop(sample.ir, size), center_crop(sample.vis, size)
    for m in methods:
        m.fuse(ir, vis)


def run_methods(
    samples: Sequence[Sample],
    methods: Sequence[Method],
    metrics: Sequence[str] = STANDARD_METRICS,
    protocol: str = "gray",
    keep: Callable[[Sample], bool] | None = None,
    log: str = "",
) -> tuple[list[Result], dict[tuple[str, str], np.ndarray]]:
    """Fuse every sample with every method, time the fusion, evaluate the metrics.

    Returns the results and the fused images of the samples for which ``keep(sample)`` is
    true (keyed by (pair name, method name)).
    """
    results: list[Result] = []
    kept: dict[tuple[str, str], np.ndarray] = {}
    if samples and methods:
        warm_up(methods, samples[0])
    for i, s in enumerate(samples):
        t_pair = time.perf_counter()
        for m in methods:
            fused, sec = timed(m.fuse, s.ir, s.vis)
            vals = evaluate(fused, s, metrics=metrics, protocol=protocol) if metrics else {}
            results.append(Result(s.dataset, s.name, m.name, vals, sec, s.pixels))
            if keep is not None and keep(s):
                kept[(s.name, m.name)] = fused
        print(f"[{log or s.dataset}] {i + 1}/{len(samples)} {s.name} {s.shape}: {time.perf_counter() - t_pair:.1f} s", flush=True)
    return results, kept


def summarize(results: Sequence[Result], metrics: Sequence[str], methods: Sequence[str] | None = None,
              pairs: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Per method: the mean of each metric, ``time_ms`` (mean per image) and ``ms_per_mpx``, over ``pairs`` (all when None)."""
    names = list(methods) if methods is not None else list(dict.fromkeys(r.method for r in results))
    out: dict[str, dict[str, float]] = {}
    for name in names:
        sel = [r for r in results if r.method == name and (pairs is None or r.pair in pairs)]
        if not sel:
            continue
        row = {m: float(np.nanmean([r.values.get(m, np.nan) for r in sel])) for m in metrics}
        row["time_ms"] = 1000.0 * float(np.mean([r.seconds for r in sel]))
        row["ms_per_mpx"] = 1000.0 * float(np.sum([r.seconds for r in sel]) / (np.sum([r.pixels for r in sel]) / 1e6))
        row["n"] = float(len(sel))
        out[name] = row
    return out


# ------------------------------------------------------------------------------- metrics
def evaluate(fused: np.ndarray, sample_or_vis: Sample | np.ndarray, ir: np.ndarray | None = None,
             metrics: Sequence[str] = STANDARD_METRICS, protocol: str = "gray") -> dict[str, float]:
    """Metrics of a fused image: :func:`hifm.metrics.evaluate` (``a`` = visible/CT/PET/SPECT, ``b`` = infrared/MRI).

    ``sample_or_vis``: a :class:`Sample` (its sources are used), or the visible source
    (then ``ir`` is the infrared one).  Images are converted to uint8 first (the metrics
    work on the 0..255 scale).
    """
    from hifm.metrics import evaluate as _evaluate

    if isinstance(sample_or_vis, Sample):
        vis, ir_ = sample_or_vis.vis, sample_or_vis.ir
    else:
        vis, ir_ = sample_or_vis, ir
    return _evaluate(to_uint8(fused), to_uint8(vis), to_uint8(ir_), metrics=list(metrics), protocol=protocol)


def higher_is_better(metric: str) -> bool:
    """Direction of a metric (by :func:`hifm.metrics.get_metric`; PSNR-like names default to True)."""
    try:
        from hifm.metrics import get_metric

        return bool(get_metric(metric).higher_is_better)
    except Exception:  # noqa: BLE001
        return True


def rank_values(values: Sequence[float], higher: bool) -> list[float]:
    """Ranks (1 = best) of ``values``; ties share their average rank; NaN ranks last."""
    vals = np.asarray(values, dtype=np.float64)
    key = np.where(np.isnan(vals), -np.inf if higher else np.inf, vals)
    key = -key if higher else key
    order = np.argsort(key, kind="mergesort")
    ranks = np.empty(len(vals))
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and key[order[j + 1]] == key[order[i]]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks.tolist()


def mean_ranks(table: Mapping[str, Mapping[str, float]], metrics: Sequence[str]) -> dict[str, float]:
    """Mean rank of each row (method) over ``metrics``, each ranked in its direction."""
    rows = list(table)
    total = np.zeros(len(rows))
    for m in metrics:
        total += np.asarray(rank_values([table[r][m] for r in rows], higher_is_better(m)))
    return {r: float(t / max(len(metrics), 1)) for r, t in zip(rows, total)}


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value) ignoring NaN."""
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def gray(z: np.ndarray) -> np.ndarray:
    """Luminance in [0, 1] (BT.601 weights for RGB)."""
    z = to_unit(z)
    return z @ np.array([0.299, 0.587, 0.114]) if z.ndim == 3 else z


def psnr(x: np.ndarray, ref: np.ndarray) -> float:
    """PSNR in dB between the luminances of two images (uint8 or [0, 1] float), peak 1."""
    d = gray(x) - gray(ref)
    mse = float(np.mean(d * d))
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


def ssim(x: np.ndarray, ref: np.ndarray) -> float:
    """SSIM (scikit-image, Gaussian window σ = 1.5, data range 1) between the luminances of two images."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(gray(x), gray(ref), data_range=1.0, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


# --------------------------------------------------------------------------- formatting
def fmt(value: Any, digits: int = 3) -> str:
    """A table cell: floats with ``digits`` significant decimals, NaN as '–'."""
    if value is None:
        return "–"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return "–"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        if digits == 0 and abs(v) < 10:
            return f"{v:.1f}"
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 10 ** (-digits)):
            return f"{v:.{max(digits - 1, 1)}e}"
        return f"{v:.{digits}f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int | Sequence[int] = 3,
                   align: str | None = None) -> str:
    """A GitHub Markdown table; numbers formatted by :func:`fmt` (``digits`` per column or for all).

    ``align``: one character per column, ``l`` or ``r`` (default: first column left, others right).
    """
    n = len(headers)
    digs = [digits] * n if isinstance(digits, int) else list(digits)
    al = align or ("l" + "r" * (n - 1))
    lines = ["| " + " | ".join(str(h) for h in headers) + " |",
             "|" + "|".join("---" if a == "l" else "---:" for a in al) + "|"]
    for row in rows:
        cells = [c if isinstance(c, str) else fmt(c, digs[i] if i < len(digs) else 3) for i, c in enumerate(row)]
        cells = [c.replace("|", "\\|") for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bold_best(table: Mapping[str, Mapping[str, float]], metrics: Sequence[str], digits: int = 3) -> dict[str, dict[str, str]]:
    """Formatted cells with the best value of each metric (column) in bold."""
    out: dict[str, dict[str, str]] = {r: {} for r in table}
    for m in metrics:
        vals = {r: table[r].get(m, float("nan")) for r in table}
        finite = [v for v in vals.values() if v is not None and not math.isnan(v)]
        best = (max if higher_is_better(m) else min)(finite) if finite else None
        for r, v in vals.items():
            cell = fmt(v, digits)
            out[r][m] = f"**{cell}**" if best is not None and v == best else cell
    return out


def metric_header(metric: str) -> str:
    """Column header with the direction arrow."""
    return f"{metric} {'↑' if higher_is_better(metric) else '↓'}"


# -------------------------------------------------------------------------------- report
def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return out.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")
    except Exception:  # noqa: BLE001
        return "unknown"


def machine_line() -> str:
    """CPU count, load average and library versions, for the reports."""
    try:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    parts = [f"{os.cpu_count()} CPUs", f"load average {load} at the start", f"Python {platform.python_version()}",
             f"NumPy {np.__version__}"]
    if "torch" in sys.modules:
        parts.append(f"torch {sys.modules['torch'].__version__} ({sys.modules['torch'].get_num_threads()} thread(s))")
    return "; ".join(parts)


class Report:
    """A Markdown document built section by section; printed as it grows and written by :meth:`write`.

    Args:
        title: the H1 title.
        command: the command line that made it (shown at the top).
        out: output folder (figures are linked relative to it).
    """

    def __init__(self, title: str, command: str, out: Path, quiet: bool = False) -> None:
        self.out = Path(out)
        self.quiet = quiet
        self.t0 = time.perf_counter()
        self.parts: list[str] = [f"# {title}\n", "Generated by `" + command + "` (do not edit by hand; rerun the command).\n",
                                 f"Code: {_git_commit()}; machine: {machine_line()}.\n"]

    def _emit(self, text: str) -> None:
        self.parts.append(text.rstrip() + "\n")
        if not self.quiet:
            print(text.rstrip() + "\n", flush=True)

    def heading(self, text: str, level: int = 2) -> None:
        self._emit("#" * level + " " + text)

    def text(self, text: str) -> None:
        self._emit(text)

    def bullets(self, items: Iterable[str]) -> None:
        items = list(items)
        if items:
            self._emit("\n".join(f"- {s}" for s in items))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int | Sequence[int] = 3,
              caption: str | None = None) -> None:
        if caption:
            self._emit(caption)
        self._emit(markdown_table(headers, rows, digits))

    def figure(self, path: Path, caption: str) -> None:
        rel = os.path.relpath(Path(path), self.out)
        self._emit(f"![{caption}]({rel})\n\n*{caption}*")

    def write(self, name: str = "results.md") -> Path:
        """Write the document (with the elapsed time and any data notes) to ``out/name``; returns the path."""
        elapsed = time.perf_counter() - self.t0
        self.parts.insert(3, f"Run time: {elapsed:.0f} s.\n")
        if DATA_NOTES:
            self.parts.insert(4, "Data: " + "; ".join(DATA_NOTES) + ".\n")
        path = self.out / name
        path.write_text("\n".join(self.parts))
        print(f"wrote {path}", flush=True)
        return path


# ------------------------------------------------------------------------------- figures
def pyplot() -> Any:
    """matplotlib.pyplot with the Agg backend and a readable default style."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
                         "xtick.labelsize": 8, "ytick.labelsize": 8, "figure.dpi": 100})
    return plt


QUICK_FIGURES = False
"""Set by the scripts' ``--quick``: figures at low resolution without layout passes (CI speed)."""


def set_quick(quick: bool) -> None:
    """Make figures cheap (``--quick``) or full quality."""
    global QUICK_FIGURES
    QUICK_FIGURES = bool(quick)


def tight(fig: Any, **kwargs: Any) -> None:
    """``fig.tight_layout(**kwargs)``, skipped in quick mode."""
    if not QUICK_FIGURES:
        fig.tight_layout(**kwargs)


def save_figure(fig: Any, path: Path, dpi: int = 110) -> Path:
    """Save ``fig`` as PNG (tight bounding box; quick mode: 50 dpi, no layout pass) and close it; returns the path."""
    plt = pyplot()
    path = Path(path)
    if QUICK_FIGURES:
        fig.savefig(path, dpi=50)
    else:
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {path}", flush=True)
    return path


def display(img: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """(image in [0, 1], imshow keyword arguments) for a gray or RGB image."""
    x = to_unit(img)
    if x.ndim == 2:
        return x, {"cmap": "gray", "vmin": 0.0, "vmax": 1.0}
    return x, {}


def show(ax: Any, img: np.ndarray, title: str | None = None, fontsize: int = 8) -> None:
    """Draw an image on ``ax`` without axes, with an optional title."""
    x, kw = display(img)
    ax.imshow(x, interpolation="nearest", **kw)
    if title:
        ax.set_title(title, fontsize=fontsize)
    ax.set_xticks([])
    ax.set_yticks([])


def textured_window(img: np.ndarray, size: int) -> tuple[int, int]:
    """(top, left) of the ``size × size`` window with the largest gradient energy (a detail crop for figures)."""
    from scipy import ndimage

    g = to_unit(img)
    if g.ndim == 3:
        g = g.mean(-1)
    h, w = g.shape
    size = min(size, h, w)
    energy = np.hypot(ndimage.sobel(g, 0), ndimage.sobel(g, 1))
    box = ndimage.uniform_filter(energy, size=size, mode="constant")
    half = size // 2
    inner = box[half : h - (size - half) + 1, half : w - (size - half) + 1]
    if inner.size == 0:
        return 0, 0
    i, j = np.unravel_index(int(np.argmax(inner)), inner.shape)
    return int(i), int(j)


# --------------------------------------------------------------------------- command line
def base_parser(name: str, description: str) -> argparse.ArgumentParser:
    """A parser with ``--out`` (default ``docs/experiments/<name>``), ``--quick`` and ``--threads``.

    Called once at the start of each script's ``main``, so it also starts a new :data:`DATA_NOTES`.
    """
    DATA_NOTES.clear()
    p = argparse.ArgumentParser(prog=f"python experiments/{name}.py", description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=None,
                   help=f"output folder (default: docs/experiments/{name}; with --quick: runs/experiments-quick/{name})")
    p.add_argument("--quick", action="store_true", help="tiny run for CI: 1–2 pairs, small crops, few iterations")
    p.add_argument("--threads", type=int, default=1, help="threads for torch and the FFTs (default 1: a shared machine)")
    return p


def setup_threads(threads: int = 1) -> None:
    """Limit BLAS/OpenMP/torch threads (the machine is shared; timings are single-thread by default)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    if "torch" in sys.modules or _torch_importable():
        try:
            import torch

            torch.set_num_threads(int(threads))
        except Exception:  # noqa: BLE001
            pass


def _torch_importable() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def command_line(name: str, argv: Sequence[str] | None) -> str:
    """The command that reproduces a run (for the reports)."""
    args = list(sys.argv[1:] if argv is None else argv)
    return " ".join(["python", f"experiments/{name}.py", *args])


def output_dir(args: argparse.Namespace, name: str) -> Path:
    """Also switches the figures to quick mode with ``--quick``.

    ``--out``, or the default: ``docs/experiments/<name>``, or ``runs/experiments-quick/<name>`` with ``--quick``
    (so that a quick run never overwrites the documented results); created and resolved."""
    set_quick(args.quick)
    out = args.out if args.out is not None else (REPO / "runs" / "experiments-quick" / name if args.quick else DOCS_OUT / name)
    return prepare_out(out)


def prepare_out(out: Path) -> Path:
    """Create the output folder; returns it resolved."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return out.resolve()


def files_digest(paths: Iterable[Path]) -> str:
    """sha256 over the bytes of ``paths`` (sorted): the version of code a cached result depends on."""
    h = hashlib.sha256()
    for p in sorted(Path(x) for x in paths):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]

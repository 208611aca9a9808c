"""Benchmark tables: our methods against VIFB's 25 published methods, old against new defaults.

``python experiments/benchmark.py [--quick] [--out DIR] [--max-pairs N] [--datasets ...] [--old-weights DIR]
[--ivf-weights JSON] [--mif-weights JSON]``

Methods of ours (◆): the anchor M alone (the default anchor), ``hifm.solve`` with the default
parameters, and trained DeRUN (the shipped ``ivf`` weights for the infrared–visible sets,
``mif`` for the medical ones; skipped with a note while ``unrolled`` or the weights are missing;
``--ivf-weights`` / ``--mif-weights`` put other weights, e.g. a network of your own exported
with ``python -m unrolled.weights export``, in their place, with ``--out`` elsewhere than the
committed page).
The defaults before issue 10 (◇, "old"): the ``two_scale`` anchor, ``hifm.solve`` with the
supplement's model (:data:`OLD_HIFM`), and DeRUN with the previous release's ``ivf`` weights
when ``--old-weights DIR`` names a folder holding them (``ivf.json`` + ``ivf.safetensors``).

The page (``docs/experiments/benchmark/results.md``):

1. **VIFB-dev, per-image mean rank** (:mod:`vifb_rank`): each method of ours, old and new, is
   inserted *alone* among the 25 published methods' fused images; per image and per VIFB
   metric (13, protocol ``vifb``) it gets a rank (1 = best, ties averaged), averaged over the
   metrics and the images.  The published methods' own score is the same mean rank among the
   other 24 and itself.  Next to it the halo H and target-contrast retention TCR of
   :mod:`hifm.metrics` (mean over the pairs with a hot target) and the time; a bar figure
   (``vifb_mean_rank.png``) and the 13 metrics' means.
2. **Old and new defaults on TNO and RoadScene-test**: the six (five without
   ``--old-weights``) methods with the standard metrics (protocol ``gray``), their mean rank
   among each other (rank of the means per metric, and the per-image mean rank), H and TCR as
   extra unranked columns, times; then both side by side per data set.
3. **Hot targets** (``hot_target_crops.png``): crops around the main hot target of VIFB-dev
   labMan, walkingnight and running and of the TNO pair with the strongest upright target (a
   person, found by :func:`hifm.metrics.halo_analysis`'s detector): infrared, visible, anchor,
   hifm, DeRUN and Hybrid_MSD's published image (VIFB only), each with its H and TCR on the pair.
4. **Medical sets** (MRI-CT, MRI-PET, MRI-SPECT): our new methods as before, also on the pairs
   held out from DeRUN's MIF training.

Full mode: TNO all 25 pairs, RoadScene-test 25 of 50, MRI-CT all 21, MRI-PET 21 of 42,
MRI-SPECT 21 of 73 (spread evenly over the sorted names), VIFB all 6; ``--max-pairs N``
caps every set.  The published methods' VIFB values depend only on the images and the metric
code, so they are cached in ``runs/experiments-cache/`` (keyed by a digest of
``hifm/metrics/*.py``); ``--no-cache`` recomputes them.  ``--quick``: one pair per set,
96-pixel centre crops, 20 iterations, 3 published methods, crops of two targets fused on the
crop window only (CI; in a fresh clone the shipped samples stand in, and VIFB-dev is left out).
"""
from __future__ import annotations

import inspect
import math
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import common  # noqa: E402

NAME = "benchmark"
DATASETS = ("tno", "roadscene-test", "mri-ct", "mri-pet", "mri-spect", "vifb-dev")
QUICK_DATASETS = ("tno", "mri-ct", "vifb-dev")
FULL_PAIRS = {"tno": 25, "roadscene-test": 25, "mri-ct": 21, "mri-pet": 21, "mri-spect": 21, "vifb-dev": 6}
OURS_MARK = "◆ "
OLD_MARK = "◇ "
TARGET_METRICS = ("Halo", "TCR")
EXTRA_HEADERS = {"Halo": "H ↓", "TCR": "TCR"}
CROP_PAIRS = ("labMan", "walkingnight", "running")
QUICK_PUBLISHED = ("ADF", "HMSD_GF", "Hybrid_MSD")
PUBLISHED_PANEL = "Hybrid_MSD"

OLD_HIFM: dict[str, Any] = dict(anchor="two_scale", target="anchor", mu=0.0, tau=1.0, theta=100.0, noise_from="anchor",
                                denoise_sources=False, mu_noise_ref=None, chroma_denoise=False)
"""The :class:`hifm.HIFMParams` defaults before issue 10 (the supplement's model; no source or chroma denoising)."""


# ----------------------------------------------------------------------------- methods
def solve_default_iters() -> int:
    """The iteration count of ``hifm.solve`` when none is given."""
    import hifm

    return int(inspect.signature(hifm.solve).parameters["iters"].default)


def new_methods(task: str, iters: int, notes: list[str], weights: tuple[Any, Path] | None = None) -> list[common.Method]:
    """The default anchor, ``hifm.solve`` with its defaults and (when available) trained DeRUN for ``task``:
    the shipped weights, or ``weights`` = (model, file) given with ``--ivf-weights`` / ``--mif-weights``."""
    methods = [common.anchor_method(f"{OURS_MARK}anchor"), common.hifm_method(iters, name=f"{OURS_MARK}hifm")]
    if weights is not None:
        model, source = weights[0], f"the '{task}' weights {weights[1]}"
    else:
        models = common.derun_models(task)
        notes.extend(f"{task}: {n}" for n in models.notes if not n.startswith("DeRUN init"))
        model, source = models.trained, f"the shipped '{task}' weights"
    if model is not None:
        anchor = getattr(model.config, "anchor", "?")
        methods.append(common.derun_method(model, f"{OURS_MARK}DeRUN", f"trained DeRUN, {source} (learned anchor from '{anchor}')"))
    return methods


def load_derun_file(path: Path, option: str, notes: list[str]) -> Any:
    """DeRUN from a weights JSON named by ``option``, or None with a note when ``unrolled`` cannot be imported.

    Raises:
        SystemExit: the file is missing or not usable weights (one line naming the option and the file).
    """
    # checked before torch is imported, so that a typo fails at once; what exists (the JSON, the
    # .safetensors file or a folder, as load_weights takes them) is left to load_weights
    if not Path(path).exists():
        raise SystemExit(f"error: {option} {path}: no such file")
    try:
        import torch

        from unrolled.weights import load_weights
    except Exception as exc:  # noqa: BLE001 - no unrolled: skip DeRUN, as for the shipped weights
        notes.append(f"{option}: skipped, the unrolled package cannot be imported ({type(exc).__name__}: {exc}).")
        return None
    try:
        return load_weights(path, dtype=torch.float32)
    except Exception as exc:  # noqa: BLE001 - any load failure is a bad option value
        raise SystemExit(f"error: {option} {path}: {' '.join(str(exc).split())}") from None


def load_old_derun(folder: Path | None, notes: list[str]) -> Any:
    """DeRUN with ``folder/ivf.json`` (the previous release's weights), or None with a note.

    Raises:
        SystemExit: ``folder`` is given but holds no usable ``ivf.json`` (one line naming the file).
    """
    if folder is None:
        notes.append("old DeRUN: not run (pass --old-weights DIR, a folder with the previous release's ivf.json and "
                     "ivf.safetensors, e.g. written by `git show REV:unrolled/weights/ivf.json`).")
        return None
    path = Path(folder) / "ivf.json"
    if not Path(folder).is_dir():
        raise SystemExit(f"error: --old-weights {folder}: not a folder")
    if not path.is_file():
        raise SystemExit(f"error: --old-weights {folder}: no ivf.json in it (the previous release's "
                         "unrolled/weights/ivf.json and ivf.safetensors)")
    model = load_derun_file(path, "--old-weights", notes)
    if model is None:
        return None
    notes.append(f"old DeRUN: {path} ({model.count_parameters()['total']} parameters, anchor "
                 f"'{getattr(model.config, 'anchor', '?')}', target '{getattr(model.config, 'target', '?')}').")
    return model


def old_methods(iters: int, old_derun: Any) -> list[common.Method]:
    """The defaults before issue 10: ``two_scale`` anchor, ``hifm.solve(**OLD_HIFM)``, old DeRUN when given."""
    methods = [common.anchor_method(f"{OLD_MARK}anchor (old)", anchor="two_scale"),
               common.hifm_method(iters, name=f"{OLD_MARK}hifm (old)", **OLD_HIFM)]
    if old_derun is not None:
        methods.append(common.derun_method(old_derun, f"{OLD_MARK}DeRUN (old)", "DeRUN, the previous release's 'ivf' weights"))
    return methods


def is_ours(name: str) -> bool:
    return name.startswith(OURS_MARK) or name.startswith(OLD_MARK)


def plain(name: str) -> str:
    """A method's name without its mark."""
    return name.replace(OURS_MARK, "").replace(OLD_MARK, "")


def label(name: str) -> str:
    """Table label: ours in bold."""
    return f"**{name}**" if is_ours(name) else name


# ----------------------------------------------------------------------------- tables
def short_name(metric: str) -> str:
    """The shortest alias of a metric, capitals first (``average_gradient`` → ``AG``, ``ssim`` → ``SSIM``)."""
    try:
        from hifm.metrics import get_metric

        names = list(get_metric(metric).aliases) or [metric]
    except Exception:  # noqa: BLE001
        return metric
    return min(names, key=lambda n: (len(n), -sum(c.isupper() for c in n)))


def nanmean(values: Sequence[float]) -> float:
    """Mean over the finite values (NaN when none: H and TCR do not apply without a hot target)."""
    v = [float(x) for x in values if x is not None and not math.isnan(float(x))]
    return float(np.mean(v)) if v else float("nan")


def per_image_mean_ranks(results: Sequence[common.Result], methods: Sequence[str], metrics: Sequence[str]) -> dict[str, float]:
    """Mean over pairs and ``metrics`` of each method's rank among ``methods`` on that pair (ties averaged)."""
    by = {(r.pair, r.method): r.values for r in results}
    pairs = list(dict.fromkeys(r.pair for r in results))
    ranks: dict[str, list[float]] = {m: [] for m in methods}
    for p in pairs:
        for k in metrics:
            col = common.rank_values([by[(p, m)].get(k, float("nan")) for m in methods], common.higher_is_better(k))
            for m, r in zip(methods, col):
                ranks[m].append(r)
    return {m: float(np.mean(v)) for m, v in ranks.items()}


def ranked_table(rep: common.Report, summ: dict[str, dict[str, float]], metrics: Sequence[str], with_time: bool,
                 extra: Sequence[str] = (), per_image: dict[str, float] | None = None,
                 caption: str | None = None) -> dict[str, float]:
    """A table sorted by mean rank over ``metrics`` (bold: best per metric); ``extra`` metrics are
    shown after the ranked ones without entering the rank; returns the mean ranks."""
    ranks = common.mean_ranks(summ, metrics)
    cells = common.bold_best(summ, metrics)
    order = sorted(summ, key=lambda m: ranks[m])
    headers = (["method"] + [common.metric_header(m) for m in metrics] + [f"{EXTRA_HEADERS.get(m, m)} (unranked)" for m in extra]
               + (["ms / image"] if with_time else []) + ["mean rank"] + (["per-image mean rank"] if per_image else []))
    rows = []
    for m in order:
        t = [summ[m]["time_ms"] if np.isfinite(summ[m]["time_ms"]) else "–"] if with_time else []
        rows.append([label(m)] + [cells[m][k] for k in metrics] + [summ[m].get(k, float("nan")) for k in extra] + t
                    + [ranks[m]] + ([per_image[m]] if per_image else []))
    digits = ([0] + [3] * len(metrics) + [3] * len(extra) + ([0] if with_time else []) + [2] + ([2] if per_image else []))
    rep.table(headers, rows, digits=digits, caption=caption)
    return ranks


def summarize(results: Sequence[common.Result], metrics: Sequence[str], pairs: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """:func:`common.summarize` without NumPy's warning for a metric that is NaN on every pair (H, TCR)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return common.summarize(results, metrics, pairs=pairs)


# ----------------------------------------------------------------------------- VIFB
@dataclass
class VifbRanks:
    """Per method: per-image mean ranks, their mean, H, TCR (means over the pairs with a target), time (ms)."""

    images: list[str]
    per_image: dict[str, dict[str, float]]
    values: dict[str, dict[str, dict[str, float]]]  # method -> image -> metric -> value (13 metrics, H, TCR)
    time_ms: dict[str, float]

    def mean(self, method: str) -> float:
        return float(np.mean([self.per_image[method][i] for i in self.images]))

    def metric_mean(self, method: str, metric: str) -> float:
        return nanmean([self.values[method][i].get(metric, float("nan")) for i in self.images])

    def order(self) -> list[str]:
        return sorted(self.per_image, key=self.mean)


def vifb_ranks(samples: Sequence[common.Sample], results: Sequence[common.Result], ours: Sequence[str],
               use_cache: bool, published_subset: Sequence[str] | None) -> VifbRanks:
    """Our methods inserted alone among the published ones, and the published ones among each other."""
    import vifb_rank

    metrics = list(vifb_rank.vifb13())
    pub = vifb_rank.published_values(samples, use_cache=use_cache, methods=published_subset)
    pub_ht = vifb_rank.published_values(samples, use_cache=use_cache, methods=published_subset, metrics=TARGET_METRICS)
    images = [s.name for s in samples]
    per_image: dict[str, dict[str, float]] = {}
    values: dict[str, dict[str, dict[str, float]]] = {}
    time_ms: dict[str, float] = {}
    for m in ours:
        vals = {r.pair: r.values for r in results if r.method == m}
        per_image[m] = vifb_rank.per_image_ranks(vals, pub, metrics)
        values[m] = vals
        time_ms[m] = 1000.0 * float(np.mean([r.seconds for r in results if r.method == m]))
    for m, ranks in vifb_rank.published_self_ranks(pub, metrics).items():
        per_image[m] = ranks
        values[m] = {i: {**pub[i][m], **pub_ht[i][m]} for i in images}
        time_ms[m] = float("nan")
    return VifbRanks(images, per_image, values, time_ms)


def vifb_section(rep: common.Report, out: Path, vr: VifbRanks, n_published: int) -> None:
    """The per-image rank table with H, TCR and times, the bar figure, and the 13 metrics' means."""
    import vifb_rank

    metrics = list(vifb_rank.vifb13())
    with_target = [i for i in vr.images if any(not math.isnan(vr.values[m][i].get("Halo", float("nan"))) for m in vr.values)]
    rep.text(f"Per-image mean rank (protocol 'vifb', VIFB's {len(metrics)} metrics: "
             + ", ".join(short_name(k) for k in metrics) + "): each method of ours is inserted **alone** among the "
             f"{n_published} published methods' fused images (as shipped with VIFB, 3-channel JPEGs, evaluated with "
             f"the same code); per image and metric it gets a rank among those {n_published + 1} entries in the "
             "metric's direction (1 = best, ties averaged), then the mean over the metrics and the images. A "
             f"published method's score is the same mean rank among the other {n_published - 1} and itself "
             f"({n_published} entries; `python experiments/vifb_rank.py --method published`). H ↓: halo around the "
             "infrared's hot targets (0 = no ring), TCR: share of the infrared target contrast kept (1 = all); "
             "`hifm.metrics.evaluate(..., metrics=['Halo', 'TCR'])`, docs/metrics.md; mean over the "
             f"{len(with_target)} of {len(vr.images)} pairs with a detected target; not part of the rank.")
    order = vr.order()
    headers = ["method"] + list(vr.images) + ["mean rank", "H ↓", "TCR", "ms / image"]
    rows = [[label(m)] + [vr.per_image[m][i] for i in vr.images]
            + [vr.mean(m), vr.metric_mean(m, "Halo"), vr.metric_mean(m, "TCR"),
               vr.time_ms[m] if np.isfinite(vr.time_ms[m]) else "–"] for m in order]
    rep.table(headers, rows, digits=[0] + [2] * len(vr.images) + [2, 3, 2, 0])
    fig = plot_vifb_ranks({m: vr.mean(m) for m in order}, out, len(metrics), n_published, len(vr.images))
    rep.figure(fig, "Per-image mean rank on the VIFB development pairs: new defaults of ours dark red, old defaults "
                    "light red, published methods grey")
    rep.text(f"VIFB's {len(metrics)} metrics, means over the {len(vr.images)} pairs (rows in the order above; "
             "bold: best per column).")
    summ = {m: {k: vr.metric_mean(m, k) for k in metrics} for m in order}
    cells = common.bold_best(summ, metrics)
    rep.table(["method"] + [common.metric_header(short_name(k)) for k in metrics],
              [[label(m)] + [cells[m][k] for k in metrics] for m in order])


def plot_vifb_ranks(ranks: dict[str, float], out: Path, n_metrics: int, n_published: int, n_images: int) -> Path:
    """Horizontal bars of the per-image mean rank on VIFB, ours highlighted."""
    plt = common.pyplot()
    order = sorted(ranks, key=lambda m: ranks[m])
    fig, ax = plt.subplots(figsize=(6.5, 0.24 * len(order) + 1.2))
    colors = ["tab:red" if m.startswith(OURS_MARK) else "lightsalmon" if m.startswith(OLD_MARK) else "0.6" for m in order]
    ax.barh(range(len(order)), [ranks[m] for m in order], color=colors)
    ax.set_yticks(range(len(order)))
    ax.set_yticklabels([plain(m).replace(" (old)", "") + (" (ours, old)" if m.startswith(OLD_MARK) else
                                                          " (ours)" if is_ours(m) else "") for m in order], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"mean rank over {n_metrics} metrics and {n_images} images, inserted alone among "
                  f"{n_published} published methods (1 = best)")
    ax.set_title("VIFB development pairs: per-image mean rank, protocol 'vifb'")
    ax.grid(True, axis="x", alpha=0.3)
    common.tight(fig)
    return common.save_figure(fig, out / "vifb_mean_rank.png")


# ----------------------------------------------------------------------------- crops
@dataclass
class CropRow:
    """One row of the crop figure: a whole pair, the crop box (top, bottom, left, right), the published image."""

    title: str
    sample: common.Sample
    box: tuple[int, int, int, int]
    protocol: str
    published: np.ndarray | None = None


def person_pair(samples: Sequence[common.Sample]) -> tuple[common.Sample, tuple[int, int, int, int]] | None:
    """The pair whose infrared holds the strongest upright hot target (a standing person), and
    the crop box around that target (:func:`halo_validation.square_box`).

    Targets of :func:`hifm.metrics.halo_analysis` (the infrared against itself); upright: at
    least 40 px tall and 1.8 times as tall as wide; strength: its infrared contrast Δ_k times
    its area.  None when no pair has one.
    """
    from scipy import ndimage

    from halo_validation import luma, square_box
    from hifm.metrics import halo_analysis

    best, best_score = None, 0.0
    for s in samples:
        i = luma(s.ir)
        r = halo_analysis(i, luma(s.vis), i)
        if not r.n_targets:
            continue
        areas = np.bincount(r.labels.ravel())[1:]
        for k, sl in enumerate(ndimage.find_objects(r.labels)):
            if sl is None or not r.counted[k]:
                continue
            h, w = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
            score = float(r.ir_contrast[k]) * float(areas[k])
            if h >= 40 and h >= 1.8 * w and score > best_score:
                best, best_score = (s, square_box(sl, s.shape)), score
    return best


def crop_tiles(row: CropRow, methods: Sequence[common.Method], kept: dict[tuple[str, str], np.ndarray]
               ) -> tuple[list[tuple[str, np.ndarray | None, float, float]], bool]:
    """(name, crop, H, TCR) of every method and of the published panel, and whether the row was fused
    on the crop window only (when the whole pair's fused images were not kept: quick mode)."""
    t, b, l, r = row.box
    whole = all((row.sample.name, m.name) in kept for m in methods)
    window = common.Sample(row.sample.dataset, row.sample.name, row.sample.ir[t:b, l:r], row.sample.vis[t:b, l:r])
    tiles = []

    def add(name: str, fused: np.ndarray, ref: common.Sample) -> None:
        v = common.evaluate(fused, ref, metrics=TARGET_METRICS, protocol=row.protocol)
        img = fused[t:b, l:r] if ref is row.sample else fused
        tiles.append((name, img, v["Halo"], v["TCR"]))

    for m in methods:
        if whole:
            add(m.name, common.to_uint8(kept[(row.sample.name, m.name)]), row.sample)
        else:
            add(m.name, common.to_uint8(m.fuse(window.ir, window.vis)), window)
    if row.published is not None:
        add(PUBLISHED_PANEL, row.published if whole else row.published[t:b, l:r], row.sample if whole else window)
    else:
        tiles.append((PUBLISHED_PANEL, None, float("nan"), float("nan")))
    return tiles, not whole


def crops_figure(rows: Sequence[CropRow], methods: Sequence[common.Method], kept: dict[tuple[str, str], np.ndarray],
                 path: Path) -> tuple[Path, list[list[Any]], bool]:
    """The figure; returns its path, a table of the H and TCR values shown, and whether any row was windowed."""
    from halo_validation import draw_rings

    plt = common.pyplot()
    ncol = 3 + len(methods)
    fig, axes = plt.subplots(len(rows), ncol, figsize=(1.9 * ncol, 2.4 * len(rows)), squeeze=False)
    table: list[list[Any]] = []
    windowed = False
    for ax_row, row in zip(axes, rows):
        t, b, l, r = row.box
        tiles, win = crop_tiles(row, methods, kept)
        windowed |= win
        common.show(ax_row[0], row.sample.ir[t:b, l:r], f"{row.title}:\ninfrared", fontsize=7)
        draw_rings(ax_row[0], row.sample, row.box)
        common.show(ax_row[1], row.sample.vis[t:b, l:r], "visible", fontsize=7)
        for ax, (name, img, h, tcr) in zip(ax_row[2:], tiles):
            if img is None:
                ax.axis("off")
                ax.text(0.5, 0.5, f"{name}:\n–\n(no published image)", ha="center", va="center", fontsize=7,
                        transform=ax.transAxes)
                continue
            common.show(ax, img, f"{plain(name)}\nH {common.fmt(h)}  TCR {common.fmt(tcr, 2)}", fontsize=7)
        table.append([row.title] + [v for _, img, h, tcr in tiles for v in (h, tcr)])
    common.tight(fig, pad=0.3)
    return common.save_figure(fig, path, dpi=130), table, windowed


def crop_rows(vifb_full: Sequence[common.Sample], person: tuple[common.Sample, tuple[int, int, int, int]] | None,
              person_title: str) -> list[CropRow]:
    """The rows: the VIFB pairs of :data:`CROP_PAIRS` present in ``vifb_full`` and the person pair."""
    from halo_validation import main_target_box
    from hifm.io import read_image

    rows = []
    for s in vifb_full:
        box = main_target_box(s)
        if box is None:
            continue
        pub = common.DATASETS["vifb-dev"].root / "fused" / PUBLISHED_PANEL / f"{s.name}.jpg"
        rows.append(CropRow(f"VIFB-dev {s.name}", s, box, "vifb", read_image(pub) if pub.is_file() else None))
    if person is not None:
        rows.append(CropRow(f"{person_title} {person[0].name}", person[0], person[1], "gray"))
    return rows


# ----------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    """Run the experiment (see the module docstring); returns the exit status."""
    parser = common.base_parser(NAME, __doc__)
    parser.add_argument("--max-pairs", type=int, help="cap on the pairs per data set (full defaults: see the docstring)")
    parser.add_argument("--crop", type=int, help="centre crop in pixels (default: whole images; quick 96)")
    parser.add_argument("--datasets", nargs="+", choices=list(common.DATASETS),
                        help=f"data sets (default: {' '.join(DATASETS)}; quick: {' '.join(QUICK_DATASETS)})")
    parser.add_argument("--iters", type=int, help="hifm.solve iterations (default: hifm.solve's own; quick: 20)")
    parser.add_argument("--old-weights", type=Path, metavar="DIR",
                        help="folder with the previous release's DeRUN ivf.json + ivf.safetensors (the old DeRUN rows)")
    parser.add_argument("--ivf-weights", type=Path, metavar="JSON",
                        help="DeRUN weights (e.g. runs/weights/my_ivf.json) for the ◆ DeRUN rows of the infrared-visible "
                             "sets instead of the shipped ones, to see your own network on this page")
    parser.add_argument("--mif-weights", type=Path, metavar="JSON",
                        help="the same for the medical sets")
    parser.add_argument("--no-cache", action="store_true", help="recompute the published VIFB methods' metrics")
    args = parser.parse_args(argv)
    q = args.quick
    if args.max_pairs is not None and args.max_pairs < 1:
        parser.error(f"--max-pairs must be at least 1, got {args.max_pairs}")
    datasets = common.available_datasets(args.datasets or (QUICK_DATASETS if q else DATASETS), q)
    crop = args.crop if args.crop is not None else (96 if q else None)
    common.setup_threads(args.threads)
    iters = 20 if q else (args.iters or solve_default_iters())
    metrics = list(common.STANDARD_METRICS)
    from hifm.datasets import find_pairs

    notes: list[str] = []
    old_derun = load_old_derun(args.old_weights, notes)  # a bad --old-weights fails before any work
    own: dict[str, tuple[Any, Path]] = {}
    for task, path in (("ivf", args.ivf_weights), ("mif", args.mif_weights)):
        if path is not None and (model := load_derun_file(path, f"--{task}-weights", notes)) is not None:
            own[task] = (model, path)  # noted as the shipped weights are (common.derun_models)
            notes.append(f"{task}: DeRUN trained: {path} ({model.count_parameters()['total']} parameters).")
    out = common.output_dir(args, NAME)
    rep = common.Report("Benchmark tables", common.command_line(NAME, argv), out)

    tasks = {common.DATASETS[d].kind for d in datasets}
    new = {task: new_methods(task, iters, notes, own.get(task)) for task in ("ivf", "mif") if task in tasks}
    old = old_methods(iters, old_derun) if "ivf" in tasks else []
    descr = {}
    for task, ms in new.items():
        for m in ms:
            descr.setdefault(plain(m.name), []).append(m.note)
    rep.text("Methods of ours, new defaults (◆): " + "; ".join(
        f"**{n}**: " + " / ".join(dict.fromkeys(d)) for n, d in descr.items())
        + (" (infrared–visible / medical sets)" if len(new) == 2 else "") + ".")
    if old:
        rep.text("The defaults before issue 10 (◇, old; infrared–visible sets only): " + "; ".join(
            f"**{plain(m.name)}**: {m.note}" for m in old) + ".")
    rep.bullets(notes)
    rep.text("Metrics: hifm.metrics (reproduces VIFB's MATLAB code, docs/metrics.md); ↑ higher is better, ↓ lower; best "
             "value per column in bold; ours in bold. Times: the fusion call on one thread (shared machine), "
             "mean per image.")

    def n_pairs(ds: str) -> int:
        key = next((k for k, v in common.STAND_INS.items() if v == ds and k in FULL_PAIRS), ds)
        return 1 if q else min(FULL_PAIRS.get(key, 25), args.max_pairs or FULL_PAIRS.get(key, 25))

    overview: list[tuple[str, int, dict[str, str]]] = []
    kept: dict[tuple[str, str], np.ndarray] = {}
    ivf_new = new.get("ivf", [])
    whole_images = crop is None

    # 1. VIFB-dev
    vifb_full: list[common.Sample] = []
    if "vifb-dev" in datasets:
        info = common.DATASETS["vifb-dev"]
        samples = common.load_dataset("vifb-dev", max_pairs=n_pairs("vifb-dev"), crop=crop)
        rep.heading(f"1. VIFB-dev: per-image mean rank among the published methods ({len(samples)} of "
                    f"{len(find_pairs(info.root))} pairs)", 3)
        import vifb_rank

        ours = ivf_new + old
        crop_names = set(CROP_PAIRS[:1] if q else CROP_PAIRS)
        results, k = common.run_methods(samples, ours, list(vifb_rank.vifb13()) + list(TARGET_METRICS), "vifb",
                                        keep=lambda s: whole_images and s.name in crop_names, log=f"{NAME}/vifb-dev")
        kept.update(k)
        subset = QUICK_PUBLISHED if q else None
        vr = vifb_ranks(samples, results, [m.name for m in ours], use_cache=not args.no_cache, published_subset=subset)
        n_pub = len(vr.per_image) - len(ours)
        vifb_section(rep, out, vr, n_pub)
        overview.append((info.title, len(samples), {m.name: f"{vr.mean(m.name):.2f} of {n_pub + 1}" for m in ours}))
        if whole_images:
            vifb_full = sorted((s for s in samples if s.name in crop_names), key=lambda s: CROP_PAIRS.index(s.name))
        else:
            vifb_full = common.load_dataset("vifb-dev", names=[n for n in CROP_PAIRS if n in crop_names])

    # 2. Old and new defaults on the infrared–visible sets
    compare = [d for d in datasets if common.DATASETS[d].kind == "ivf" and d != "vifb-dev"]
    person: tuple[common.Sample, tuple[int, int, int, int]] | None = None
    person_title = ""
    if compare:
        rep.heading("2. Old and new defaults: " + ", ".join(common.DATASETS[d].title for d in compare), 3)
        rep.text(f"Each table ranks its {len(ivf_new) + len(old)} methods against each other over the standard metrics "
                 f"({', '.join(metrics)}; protocol 'gray'): **mean rank** = rank of the per-metric means (ties averaged) "
                 "averaged over the metrics; **per-image mean rank** = rank on each pair and metric, averaged over both. "
                 "H and TCR (halo, target-contrast retention; docs/metrics.md) are extra columns, not ranked: mean over "
                 "the pairs with a detected hot target.")
    side: list[tuple[str, int, dict[str, float], dict[str, float]]] = []
    for ds in compare:
        info = common.DATASETS[ds]
        samples = common.load_dataset(ds, max_pairs=n_pairs(ds), crop=crop)
        total = len(find_pairs(info.root))
        if person is None:
            candidates = samples if whole_images else common.load_dataset(ds, max_pairs=5 if q else None)
            person = person_pair(candidates)
            person_title = info.title
        methods = old + ivf_new
        keep_name = person[0].name if person is not None and person_title == info.title else None
        results, k = common.run_methods(samples, methods, metrics + list(TARGET_METRICS), info.protocol,
                                        keep=lambda s: whole_images and s.name == keep_name, log=f"{NAME}/{ds}")
        kept.update(k)
        n_target = sum(1 for s in samples if any(not math.isnan(r.values.get("Halo", float("nan")))
                                                  for r in results if r.pair == s.name))
        rep.heading(f"{info.title} ({len(samples)} of {total} pairs, protocol '{info.protocol}'; H, TCR over the "
                    f"{n_target} pairs with a hot target)", 4)
        summ = summarize(results, metrics + list(TARGET_METRICS))
        pim = per_image_mean_ranks(results, [m.name for m in methods], metrics)
        ranks = ranked_table(rep, summ, metrics, with_time=True, extra=TARGET_METRICS, per_image=pim)
        side.append((info.title, len(samples), ranks, pim))
        overview.append((info.title, len(samples), {m: f"{ranks[m]:.2f} of {len(methods)}" for m in ranks}))
    if side:
        rep.heading("Old and new side by side", 4)
        names = [m.name for m in old + ivf_new]
        order = [n for pair in zip(old, ivf_new) for n in (pair[0].name, pair[1].name)]
        order += [n for n in names if n not in order]
        rep.text("Mean rank among the methods of each table (rank of the means; per-image mean rank in brackets; "
                 "1 = best).")
        rep.table(["data set", "pairs"] + [plain(n) + (" (new)" if n.startswith(OURS_MARK) else "") for n in order],
                  [[t, n] + [f"{r[m]:.2f} ({p[m]:.2f})" if m in r else "–" for m in order] for t, n, r, p in side])

    # 3. Crops of hot targets
    rows = crop_rows(vifb_full, person, person_title)
    if rows and ivf_new:
        rep.heading("3. Hot targets: crops", 3)
        path, table, windowed = crops_figure(rows, ivf_new, kept, out / "hot_target_crops.png")
        where = ("fused on the crop window only (quick mode: the values are those of the window)" if windowed
                 else "cut from the fused whole images; H and TCR of the whole pair")
        rep.figure(path, "Crops around the main hot target of each pair (infrared: target outline red, near ring's "
                         "outer edge yellow at 10 px, surrounding ring cyan at 20–40 px); columns: the sources, our "
                         f"anchor, hifm and DeRUN (new defaults), {PUBLISHED_PANEL}'s published image (VIFB only); "
                         f"{where}.")
        rep.table(["pair"] + [f"{plain(m.name)} {k}" for m in ivf_new for k in ("H ↓", "TCR")]
                  + [f"{PUBLISHED_PANEL} {k}" for k in ("H ↓", "TCR")], table,
                  digits=[0] + [3, 2] * (len(ivf_new) + 1))
    elif ivf_new:
        rep.text("Hot-target crops: skipped (no VIFB-dev pair and no infrared–visible pair with an upright hot target "
                 "among the data sets of this run).")

    # 4. Medical sets
    medical = [d for d in datasets if common.DATASETS[d].kind == "mif"]
    if medical:
        rep.heading("4. Medical sets (new defaults)", 3)
    for ds in medical:
        info = common.DATASETS[ds]
        samples = common.load_dataset(ds, max_pairs=n_pairs(ds), crop=crop)
        total = len(find_pairs(info.root))
        results, _ = common.run_methods(samples, new["mif"], metrics, info.protocol, log=f"{NAME}/{ds}")
        rep.heading(f"{info.title} ({len(samples)} of {total} pairs, protocol '{info.protocol}')", 4)
        summ = summarize(results, metrics)
        ranks = ranked_table(rep, summ, metrics, with_time=True)
        overview.append((info.title, len(samples), {m: f"{ranks[m]:.2f} of {len(summ)}" for m in ranks}))
        if not q:
            held = common.heldout_names(ds)
            sel = [s.name for s in samples if held and s.name in held]
            if sel:
                rep.text(f"Pairs held out from DeRUN's MIF training ({len(sel)}: {', '.join(sel)}); DeRUN saw the others.")
                ranked_table(rep, summarize(results, metrics, pairs=sel), metrics, with_time=False)

    rep.heading("Overview: mean rank of our methods per data set", 3)
    rep.text("VIFB-dev: per-image mean rank, inserted alone among the published methods; the other sets: mean rank "
             "(of the means) among the methods of that set's table.")
    names = list(dict.fromkeys(m for _, _, d in overview for m in d))
    names = [n for n in names if n.startswith(OLD_MARK)] + [n for n in names if n.startswith(OURS_MARK)]
    rep.table(["data set", "pairs"] + [plain(m) + (" (new)" if m.startswith(OURS_MARK) and old else "") for m in names],
              [[t, n] + [d.get(m, "–") for m in names] for t, n, d in overview])
    rep.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())

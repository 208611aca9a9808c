"""Validation of the halo and target-contrast measures on VIFB's published fused images.

``python experiments/halo_validation.py [--quick] [--out DIR] [--no-ours]``

For the 6 VIFB development pairs (``../shared/data/vifb-dev``) and the fused images of the 25
published methods shipped with them, plus our own methods (the two_scale anchor
``hifm.fuse(method="anchor")``, ``hifm.solve`` with its defaults, and trained DeRUN when
``unrolled`` and its weights are available; ``--no-ours`` keeps only the anchor), the script
computes :func:`hifm.metrics.halo` (H, lower is better) and
:func:`hifm.metrics.target_contrast` (TCR, 1 = the infrared's target contrast kept) through
``hifm.metrics.evaluate(..., metrics=["Halo", "TCR"])``, and writes to
``docs/experiments/halo/``:

- ``results.md``: per method the mean H, signed H and TCR over the 6 images, the per-image
  values, the detected targets, and how stable the method ranking is when the detector and
  ring parameters change (Spearman correlation of the per-method mean H);
- ``halo_crops.png``: crops around the main detected target of every pair (the one that
  weighs most in H): the infrared with the target outline and the rings, the visible image,
  and a fixed set of methods (lowest and highest mean H, Hybrid_MSD, HMSD_GF, GFF, the
  anchor), each annotated with its H and TCR on that pair;
- ``halo_ranked.png``: for walkingnight and labMan, the three methods with the lowest and the
  three with the highest H on that pair.

``--quick``: two pairs (labMan, walkingnight), five published methods and the anchor, no
sensitivity study, small figures (CI). Without VIFB-dev (a fresh clone), ``--quick`` scores
our anchor on two of the shipped TNO sample pairs (``samples/tno``) instead and says in the
report that the published methods' images are not available; a full run needs VIFB-dev.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import common  # noqa: E402

NAME = "halo_validation"
OUT_NAME = "halo"
OURS_MARK = "◆ "
KEY_PAIRS = ("walkingnight", "labMan")
SHOWN = ("Hybrid_MSD", "HMSD_GF", "GFF")
QUICK_METHODS = ("DLF", "Hybrid_MSD", "HMSD_GF", "GFF", "NSCT_SR")
STAND_IN = "tno-samples"  # shipped pairs scored by --quick without VIFB-dev (our methods only)
STAND_IN_PAIRS = 2
SENSITIVITY = {
    "near ring (1, 6]": {"near": (1.0, 6.0)},
    "near (1, 15], surround (25, 45]": {"near": (1.0, 15.0), "surround": (25.0, 45.0)},
    "surround (30, 60]": {"surround": (30.0, 60.0)},
    "window 31": {"window": 31},
    "window 127": {"window": 127},
    "alpha 0.2": {"alpha": 0.2},
    "alpha 0.4": {"alpha": 0.4},
}


@dataclass
class Scores:
    """H, signed H and TCR of every (method, pair), with the fused images kept for figures."""

    halo: dict[tuple[str, str], float] = field(default_factory=dict)
    signed: dict[tuple[str, str], float] = field(default_factory=dict)
    tcr: dict[tuple[str, str], float] = field(default_factory=dict)
    fused: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)

    def mean(self, table: dict[tuple[str, str], float], method: str, pairs: Sequence[str]) -> float:
        vals = [table[(method, p)] for p in pairs if not math.isnan(table[(method, p)])]
        return float(np.mean(vals)) if vals else float("nan")


def luma(img: np.ndarray) -> np.ndarray:
    """The luminance plane the measures use (the ``gray`` protocol's plane)."""
    from hifm.metrics.protocol import _to_plane

    return _to_plane(img)


def our_methods(include_solvers: bool, notes: list[str]) -> list[common.Method]:
    """The anchor, and (unless ``--no-ours``) hifm.solve and trained DeRUN when available."""
    methods = [common.anchor_method(f"{OURS_MARK}anchor")]
    if include_solvers:
        methods.append(common.hifm_method(200, name=f"{OURS_MARK}hifm"))
        models = common.derun_models("ivf")
        notes.extend(n for n in models.notes if not n.startswith("DeRUN init"))
        if models.trained is not None:
            methods.append(common.derun_method(models.trained, f"{OURS_MARK}DeRUN", "shipped 'ivf' weights"))
    return methods


def score_all(samples: Sequence[common.Sample], published: Sequence[str], ours: Sequence[common.Method]) -> Scores:
    """Evaluate H and TCR for every published method and every method of ours on every pair."""
    from hifm.io import read_image
    from hifm.metrics import evaluate

    root = common.DATASETS["vifb-dev"].root
    sc = Scores()
    for s in samples:
        images: dict[str, np.ndarray] = {m: read_image(root / "fused" / m / f"{s.name}.jpg") for m in published}
        for m in ours:
            images[m.name] = common.to_uint8(m.fuse(s.ir, s.vis))
        for m, fused in images.items():
            r = evaluate(fused, s.vis, s.ir, metrics=["Halo", "TCR"])
            sc.halo[(m, s.name)] = r["Halo"]
            sc.tcr[(m, s.name)] = r["TCR"]
            sc.signed[(m, s.name)] = signed_halo(fused, s)
            sc.fused[(m, s.name)] = fused
        print(f"[{NAME}] {s.name}: {len(images)} fused images scored", flush=True)
    return sc


def signed_halo(fused: np.ndarray, s: common.Sample) -> float:
    from hifm.metrics import halo_analysis

    return halo_analysis(luma(fused), luma(s.vis), luma(s.ir)).halo_signed


def sensitivity(samples: Sequence[common.Sample], sc: Scores, methods: Sequence[str]) -> list[list[Any]]:
    """Spearman ρ between the per-method mean H with the defaults and with each variant."""
    from scipy.stats import spearmanr

    from hifm.metrics import HaloParams, halo_analysis

    pairs = [s.name for s in samples]
    base = [sc.mean(sc.halo, m, pairs) for m in methods]
    base_t = [sc.mean(sc.tcr, m, pairs) for m in methods]
    planes = {s.name: (luma(s.vis), luma(s.ir)) for s in samples}
    rows: list[list[Any]] = []
    for label, kw in SENSITIVITY.items():
        p = HaloParams(**kw)
        h_means, t_means = [], []
        for m in methods:
            hs, ts = [], []
            for name in pairs:
                v, i = planes[name]
                r = halo_analysis(luma(sc.fused[(m, name)]), v, i, p)
                hs.append(r.halo)
                ts.append(r.tcr)
            h_means.append(float(np.nanmean(hs)) if not all(math.isnan(x) for x in hs) else float("nan"))
            t_means.append(float(np.nanmean(ts)) if not all(math.isnan(x) for x in ts) else float("nan"))
        rows.append([label, float(spearmanr(base, h_means)[0]), float(spearmanr(base_t, t_means)[0])])
        print(f"[{NAME}] sensitivity {label}: done", flush=True)
    return rows


# ----------------------------------------------------------------------------- figures
_BOXES: dict[str, tuple[int, int, int, int] | None] = {}


def main_target_box(sample: common.Sample, pad: int = 30, min_size: int = 72) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of a square crop around the target that weighs most in H
    (near-ring pixels × infrared contrast) among the compact ones (bounding box at most a third
    of the image's smaller side, or 64 px); None without a target."""
    if sample.name in _BOXES:
        return _BOXES[sample.name]
    from scipy import ndimage

    from hifm.metrics import HaloParams, halo_analysis

    i = luma(sample.ir)
    r = halo_analysis(i, luma(sample.vis), i)  # F = I: only the targets and Δ_k are used here
    box = None
    if r.n_targets:
        p = HaloParams()
        dist, (iy, ix) = ndimage.distance_transform_edt(~r.targets, return_indices=True)
        owner = r.labels[iy, ix]
        near = (dist > p.near[0]) & (dist <= p.near[1])
        n_near = np.bincount(owner[near], minlength=r.labels.max() + 1)[1:]
        h, w = i.shape
        limit = max(64, min(h, w) // 3)
        slices = ndimage.find_objects(r.labels)
        compact = np.array([max(sl[0].stop - sl[0].start, sl[1].stop - sl[1].start) <= limit for sl in slices])
        weight = np.where(r.counted & compact, n_near * np.nan_to_num(r.ir_contrast), 0.0)
        if not weight.any():
            weight = np.where(r.counted, n_near * np.nan_to_num(r.ir_contrast), 0.0)
        box = square_box(slices[int(np.argmax(weight))], (h, w), pad, min_size)
    _BOXES[sample.name] = box
    return box


def square_box(sl: tuple[slice, slice], shape: tuple[int, int], pad: int = 30,
               min_size: int = 72) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the square crop centred on the bounding box ``sl`` grown by
    ``pad`` pixels (at least ``min_size``, at most the image), shifted to lie inside the image."""
    h, w = shape
    top, bottom = sl[0].start - pad, sl[0].stop + pad
    left, right = sl[1].start - pad, sl[1].stop + pad
    size = min(max(bottom - top, right - left, min_size), h, w)
    cy, cx = (top + bottom) // 2, (left + right) // 2
    top, left = max(0, min(cy - size // 2, h - size)), max(0, min(cx - size // 2, w - size))
    return (top, top + size, left, left + size)


def draw_rings(ax: Any, sample: common.Sample, box: tuple[int, int, int, int]) -> None:
    """Target outline (red), near ring's outer edge (yellow), surrounding ring (cyan)."""
    from scipy import ndimage

    from hifm.metrics import HaloParams, hot_targets

    p = HaloParams()
    mask = hot_targets(luma(sample.ir), p)
    dist = ndimage.distance_transform_edt(~mask)
    t, b, l, r = box
    d = dist[t:b, l:r]
    ax.contour(d, levels=[0.5], colors=["red"], linewidths=0.8)
    ax.contour(d, levels=[p.near[1]], colors=["yellow"], linewidths=0.6)
    ax.contour(d, levels=list(p.surround), colors=["cyan"], linewidths=0.6, linestyles="dashed")


def tile(ax: Any, img: np.ndarray, box: tuple[int, int, int, int], title: str) -> None:
    t, b, l, r = box
    common.show(ax, img[t:b, l:r], title, fontsize=7)


def crops_figure(samples: Sequence[common.Sample], sc: Scores, columns: Sequence[str], path: Path) -> Path:
    plt = common.pyplot()
    rows = [s for s in samples if main_target_box(s) is not None]
    ncol = 2 + len(columns)
    fig, axes = plt.subplots(max(len(rows), 1), ncol, figsize=(1.9 * ncol, 2.35 * max(len(rows), 1)), squeeze=False)
    if not rows:
        for ax in axes[0]:
            ax.axis("off")
        axes[0][0].text(0.0, 0.5, "no hot target detected on these pairs", fontsize=8)
    for ax_row, s in zip(axes, rows):
        box = main_target_box(s)
        assert box is not None
        tile(ax_row[0], s.ir, box, f"{s.name}: infrared")
        draw_rings(ax_row[0], s, box)
        tile(ax_row[1], s.vis, box, "visible")
        for ax, m in zip(ax_row[2:], columns):
            tile(ax, sc.fused[(m, s.name)], box,
                 f"{m}\nH {common.fmt(sc.halo[(m, s.name)])}  TCR {common.fmt(sc.tcr[(m, s.name)], 2)}")
    common.tight(fig, pad=0.3)
    return common.save_figure(fig, path, dpi=130)


def ranked_figure(samples: Sequence[common.Sample], sc: Scores, methods: Sequence[str], path: Path, k: int = 3,
                  key_pairs: Sequence[str] = KEY_PAIRS) -> Path:
    plt = common.pyplot()
    rows = [s for s in samples if s.name in key_pairs and main_target_box(s) is not None]
    chosen: dict[str, list[str]] = {}
    for s in rows:
        order = sorted((m for m in methods if not math.isnan(sc.halo[(m, s.name)])), key=lambda m: sc.halo[(m, s.name)])
        chosen[s.name] = order[:k] + order[-k:] if len(order) > 2 * k else order
    ncol = 2 + max((len(c) for c in chosen.values()), default=0)
    fig, axes = plt.subplots(max(len(rows), 1), ncol, figsize=(1.9 * ncol, 2.35 * max(len(rows), 1)), squeeze=False)
    for ax_row, s in zip(axes, rows):
        box = main_target_box(s)
        assert box is not None
        tile(ax_row[0], s.ir, box, f"{s.name}: infrared")
        draw_rings(ax_row[0], s, box)
        tile(ax_row[1], s.vis, box, "visible")
        few = len(chosen[s.name]) <= 2 * k
        for j, (ax, m) in enumerate(zip(ax_row[2:], chosen[s.name])):
            tag = f"rank {j + 1} by H" if few else ("lowest H" if j < k else "highest H")
            tile(ax, sc.fused[(m, s.name)], box,
                 f"{m} ({tag})\nH {common.fmt(sc.halo[(m, s.name)])}  TCR {common.fmt(sc.tcr[(m, s.name)], 2)}")
        for ax in ax_row[2 + len(chosen[s.name]):]:
            ax.axis("off")
    if not rows:
        for ax in axes[0]:
            ax.axis("off")
        axes[0][0].text(0.0, 0.5, "no hot target detected on these pairs", fontsize=8)
    common.tight(fig, pad=0.3)
    return common.save_figure(fig, path, dpi=130)


# ----------------------------------------------------------------------------- report
def main(argv: Sequence[str] | None = None) -> int:
    parser = common.base_parser(NAME, (__doc__ or "").split("\n\n")[0])
    for action in parser._actions:  # the output folder is docs/experiments/halo
        if "--out" in action.option_strings:
            action.help = f"output folder (default: docs/experiments/{OUT_NAME}; with --quick: runs/experiments-quick/{OUT_NAME})"
    parser.add_argument("--no-ours", action="store_true", help="score only the anchor among our methods (no hifm.solve, no DeRUN)")
    args = parser.parse_args(argv)
    common.setup_threads(args.threads)
    out = common.output_dir(args, OUT_NAME)
    title = "Halo and target-contrast measures: validation on VIFB"

    have_vifb = bool(common.available_datasets(["vifb-dev"], args.quick))  # a full run stops here without it
    if have_vifb:
        samples = common.load_dataset("vifb-dev", names=list(KEY_PAIRS) if args.quick else None)
        root = common.DATASETS["vifb-dev"].root
        published = sorted(p.name for p in (root / "fused").iterdir() if p.is_dir())
        if args.quick:
            published = [m for m in published if m in QUICK_METHODS]
        key_pairs: Sequence[str] = KEY_PAIRS
    else:  # --quick in a fresh clone: our methods on shipped pairs, no published images
        samples = common.load_dataset(STAND_IN, max_pairs=STAND_IN_PAIRS)
        published = []
        key_pairs = [s.name for s in samples]
        common.DATA_NOTES.append(f"our methods scored on {len(samples)} pairs of the shipped "
                                 f"{common.DATASETS[STAND_IN].title} instead, without the published methods' images")
        title = "Halo and target-contrast measures: VIFB-dev not available, our methods on shipped samples"
    rep = common.Report(title, common.command_line(NAME, argv), out)
    notes: list[str] = []
    ours = our_methods(include_solvers=not (args.quick or args.no_ours), notes=notes)
    sc = score_all(samples, published, ours)
    pairs = [s.name for s in samples]
    methods = published + [m.name for m in ours]

    rep.text(
        "Measures: `hifm.metrics.halo` (**H**, lower is better: depth of the rings around the infrared's hot "
        "targets that neither source shows, as a fraction of the infrared target contrast; its signed variant "
        "is negative for dark rings) and `hifm.metrics.target_contrast` (**TCR**: the fused image's "
        "target-over-surroundings contrast as a fraction of the infrared's; 1 = kept, 0 = lost, < 0 = inverted), "
        "both on luminance with the default parameters; definitions in `docs/metrics.md`. "
        + (f"Images: VIFB's published fused images of {len(published)} methods on the {len(pairs)} development pairs "
           "(VIFB-dev, `$HIFM_DATA/vifb-dev`), and ours (◆): " if have_vifb else
           f"Images: ours (◆) on {len(pairs)} pairs of the shipped {common.DATASETS[STAND_IN].title} "
           f"(`{common.DATASETS[STAND_IN].root.relative_to(common.REPO)}`: {', '.join(pairs)}); "
           "**the published methods' fused images are not available** (they come with VIFB-dev, which was not "
           "found: see the Data line above and docs/data.md), so this run validates nothing against them. Ours: ")
        + "; ".join(f"**{m.name.replace(OURS_MARK, '')}**: {m.note}" for m in ours) + "."
    )
    rep.bullets(notes)

    # targets found per pair
    from hifm.metrics import halo_analysis

    trow = []
    for s in samples:
        i = luma(s.ir)
        r = halo_analysis(i, luma(s.vis), i)
        trow.append([s.name, f"{s.shape[0]}×{s.shape[1]}", r.n_targets, int(r.targets.sum()),
                     float(np.nanmean(r.ir_contrast[r.counted])) if r.n_targets else float("nan")])
    rep.heading("Detected hot targets")
    rep.table(["pair", "size", "targets", "target pixels", "mean IR contrast Δ_k"], trow, digits=[0, 0, 0, 0, 1])

    # summary table
    summary = []
    for m in methods:
        summary.append([m, sc.mean(sc.halo, m, pairs), sc.mean(sc.signed, m, pairs), sc.mean(sc.tcr, m, pairs)])
    summary.sort(key=lambda r: (math.isnan(r[1]), r[1]))
    rep.heading(f"Per-method means over the {len(pairs)} pairs (sorted by H)")
    rep.table(["method", "H ↓", "signed H", "TCR"], summary, digits=[0, 3, 3, 2])

    rep.text("How to read: H ≈ 0 where F's near ring is what the sources show there; the crops below show which "
             "rings the larger values measure." + (" Points specific to these pairs:" if have_vifb else ""))
    rep.bullets([] if not have_vifb else [
        "labMan: the infrared camera darkens the wall around the warm head (a ring of the source itself). A fusion "
        "that carries that ring at no more than its own infrared gain is not charged for it, although the eye sees a "
        "dark aura (MSVD, HMSD_GF in the crops); only the part beyond that counts.",
        "running: the person is bright in the infrared and dark (black clothes) in the visible image; TCR < 0 means "
        "the fused person is darker than the ground around it.",
        "GFF's published images of running and walkingnight have a green cast as shipped by VIFB; both measures use "
        "luminance.",
        "peopleshadow's infrared holds many warm structures (walls, a kerb, lamp posts) besides the people: all of "
        "them are targets for the detector.",
    ])
    rep.heading("Per pair: H")
    rep.table(["method", *pairs], [[m, *[sc.halo[(m, p)] for p in pairs]] for m, *_ in summary], digits=3)
    rep.heading("Per pair: TCR")
    rep.table(["method", *pairs], [[m, *[sc.tcr[(m, p)] for p in pairs]] for m, *_ in summary], digits=2)

    ranked = [r[0] for r in summary if not math.isnan(r[1]) and not r[0].startswith(OURS_MARK)]
    rings = ("Infrared: target outline red, near ring's outer edge yellow (10 px), surrounding ring cyan (20–40 px). ")
    rep.heading("Crops")
    if ranked:
        columns = list(dict.fromkeys([ranked[0], *[m for m in SHOWN if m in published], ranked[-1], ours[0].name]))
        fig1 = crops_figure(samples, sc, columns, out / "halo_crops.png")
        rep.figure(fig1, "Crops around the main hot target of each pair (the one that weighs most in H). " + rings +
                   f"Methods: lowest mean H ({ranked[0]}), Hybrid_MSD, HMSD_GF, GFF, highest mean H "
                   f"({ranked[-1]}), our anchor; H and TCR of that pair.")
    else:
        fig1 = crops_figure(samples, sc, [m.name for m in ours], out / "halo_crops.png")
        rep.figure(fig1, "Crops around the main hot target of each pair (the one that weighs most in H). " + rings +
                   "Our methods only (no published images in this run); H and TCR of that pair.")
    fig2 = ranked_figure(samples, sc, methods, out / "halo_ranked.png", key_pairs=key_pairs)
    rep.figure(fig2, (f"{' and '.join(key_pairs)}: the three methods with the lowest and the three with the highest "
                      "H on that pair." if have_vifb else
                      f"{', '.join(key_pairs)}: our methods ordered by H on that pair."))

    if not args.quick:
        rep.heading("Stability of the ranking")
        rep.text("Spearman correlation between the per-method mean H (and TCR) with the default parameters and with "
                 f"one parameter changed, over the {len(methods)} methods and {len(pairs)} pairs.")
        rep.table(["variant", "ρ (H)", "ρ (TCR)"], sensitivity(samples, sc, methods), digits=[0, 2, 2])
    rep.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark tables: our methods on the development sets, and against 25 published methods on VIFB.

``python experiments/benchmark.py [--quick] [--out DIR] [--max-pairs N] [--datasets ...]``

For TNO, RoadScene-test, MRI-CT, MRI-PET, MRI-SPECT and the 6 VIFB development pairs, every
method of ours — the anchor M, ``hifm.solve`` (200 iterations, default parameters) and DeRUN
trained (``ivf`` weights for the infrared–visible sets, ``mif`` for the medical ones; skipped
with a note while ``unrolled`` or the weights are missing) — is evaluated with the standard
metrics EN, SD, SF, AG, MI, SCD, VIF, Qabf, SSIM of :mod:`hifm.metrics` (protocol ``gray``;
``vifb`` for VIFB, whose visible images and published results are colour).  For VIFB the
fused images of the 25 published methods shipped in ``vifb-dev/fused/`` are evaluated with the
same code, and every table has a mean-rank column (rank per metric in its direction, ties
averaged, then the mean over the metrics; 1 = best).

Full mode: TNO all 25 pairs, RoadScene-test 25 of 50, MRI-CT all 21, MRI-PET 21 of 42,
MRI-SPECT 21 of 73 (spread evenly over the sorted names), VIFB all 6; ``--max-pairs N``
caps every set at N.  For the medical sets the means over the pairs held out from DeRUN's MIF
training are given as well.  The published methods' VIFB values depend only on the images
and the metric code, so they are cached in ``runs/experiments-cache/`` (keyed by a digest of
``hifm/metrics/*.py``); ``--no-cache`` recomputes them.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import common  # noqa: E402

NAME = "benchmark"
DATASETS = ("tno", "roadscene-test", "mri-ct", "mri-pet", "mri-spect", "vifb-dev")
FULL_PAIRS = {"tno": 25, "roadscene-test": 25, "mri-ct": 21, "mri-pet": 21, "mri-spect": 21, "vifb-dev": 6}
OURS_MARK = "◆ "


def our_methods(task: str, iters: int, notes: list[str]) -> list[common.Method]:
    """anchor, hifm.solve and (when available) trained DeRUN for ``task``."""
    methods = [common.anchor_method(f"{OURS_MARK}anchor"), common.hifm_method(iters, name=f"{OURS_MARK}hifm")]
    models = common.derun_models(task)
    notes.extend(f"{task}: {n}" for n in models.notes if not n.startswith("DeRUN init"))
    if models.trained is not None:
        methods.append(common.derun_method(models.trained, f"{OURS_MARK}DeRUN", f"shipped '{task}' weights"))
    return methods


def published_methods(root: Path) -> list[str]:
    """Names of the published methods with fused images in ``vifb-dev/fused/``."""
    return sorted(p.name for p in (root / "fused").iterdir() if p.is_dir())


def published_results(samples: Sequence[common.Sample], metrics: Sequence[str], use_cache: bool,
                      max_methods: int | None = None) -> list[common.Result]:
    """Metrics of the published methods' fused images (protocol vifb), from the cache when valid."""
    from hifm.io import read_image

    root = common.DATASETS["vifb-dev"].root
    names = published_methods(root)[:max_methods]
    digest = common.files_digest((common.REPO / "hifm" / "metrics").glob("*.py"))
    key = {"digest": digest, "metrics": list(metrics), "pairs": [s.name for s in samples], "methods": names,
           "crop": [list(s.shape) for s in samples]}
    tag = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    cache = common.CACHE_DIR / f"benchmark_vifb_published_{tag}.json"
    if use_cache and cache.is_file():
        data = json.loads(cache.read_text())
        if data.get("key") == key:
            print(f"[{NAME}] published VIFB results from the cache {cache}", flush=True)
            return [common.Result(**r) for r in data["results"]]
    results = []
    for k, m in enumerate(names):
        for s in samples:
            fused = read_image(root / "fused" / m / f"{s.name}.jpg")  # as stored: 3 planes, like VIFB's code reads it
            fused = common.center_crop(fused, s.shape)
            vals = common.evaluate(fused, s, metrics=metrics, protocol="vifb")
            results.append(common.Result("vifb-dev", s.name, m, vals, float("nan"), s.pixels))
        print(f"[{NAME}] published {k + 1}/{len(names)} {m}", flush=True)
    common.CACHE_DIR.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"key": key, "results": [r.__dict__ for r in results]}))
    return results


def ranked_table(rep: common.Report, summ: dict[str, dict[str, float]], metrics: Sequence[str], with_time: bool,
                 caption: str | None = None) -> dict[str, float]:
    """Write a table sorted by mean rank (bold: best per metric); returns the mean ranks."""
    ranks = common.mean_ranks(summ, metrics)
    cells = common.bold_best(summ, metrics)
    order = sorted(summ, key=lambda m: ranks[m])
    headers = ["method"] + [common.metric_header(m) for m in metrics] + (["ms / image"] if with_time else []) + ["mean rank"]
    rows = []
    for m in order:
        label = f"**{m}**" if m.startswith(OURS_MARK) else m
        t = [summ[m]["time_ms"] if np.isfinite(summ[m]["time_ms"]) else "–"] if with_time else []
        rows.append([label] + [cells[m][k] for k in metrics] + t + [ranks[m]])
    rep.table(headers, rows, digits=[0] + [3] * len(metrics) + ([0] if with_time else []) + [2], caption=caption)
    return ranks


def plot_vifb_ranks(ranks: dict[str, float], out: Path, n_metrics: int) -> Path:
    """Horizontal bars of the mean rank on VIFB, ours highlighted."""
    plt = common.pyplot()
    order = sorted(ranks, key=lambda m: ranks[m])
    fig, ax = plt.subplots(figsize=(6.5, 0.24 * len(order) + 1.2))
    colors = ["tab:red" if m.startswith(OURS_MARK) else "0.6" for m in order]
    ax.barh(range(len(order)), [ranks[m] for m in order], color=colors)
    ax.set_yticks(range(len(order)))
    ax.set_yticklabels([m.replace(OURS_MARK, "") + (" (ours)" if m.startswith(OURS_MARK) else "") for m in order], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"mean rank over {n_metrics} metrics among {len(order)} methods (1 = best)")
    ax.set_title("VIFB development pairs (6 images): mean rank, protocol 'vifb'")
    ax.grid(True, axis="x", alpha=0.3)
    common.tight(fig)
    return common.save_figure(fig, out / "vifb_mean_rank.png")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the experiment (see the module docstring); returns the exit status."""
    parser = common.base_parser(NAME, __doc__)
    parser.add_argument("--max-pairs", type=int, help="cap on the pairs per data set (full defaults: see the docstring)")
    parser.add_argument("--crop", type=int, help="centre crop in pixels (default: whole images; quick 96)")
    parser.add_argument("--datasets", nargs="+", choices=list(common.DATASETS), help="data sets (default: all six)")
    parser.add_argument("--iters", type=int, default=200, help="hifm.solve iterations (quick: 20)")
    parser.add_argument("--metrics", nargs="+", default=list(common.STANDARD_METRICS))
    parser.add_argument("--no-cache", action="store_true", help="recompute the published VIFB methods' metrics")
    args = parser.parse_args(argv)
    q = args.quick
    datasets = common.available_datasets(args.datasets or (["mri-ct", "vifb-dev"] if q else list(DATASETS)), q)
    crop = args.crop if args.crop is not None else (96 if q else None)
    iters = 20 if q else args.iters
    metrics = args.metrics
    common.setup_threads(args.threads)
    from hifm.datasets import find_pairs

    out = common.output_dir(args, NAME)
    rep = common.Report("Benchmark tables", common.command_line(NAME, argv), out)

    notes: list[str] = []
    methods = {task: our_methods(task, iters, notes) for task in ("ivf", "mif")
               if any(common.DATASETS[d].kind == task for d in datasets)}
    ours_notes = {}
    for task, ms in methods.items():
        for m in ms:
            ours_notes.setdefault(m.name.replace(OURS_MARK, ""), []).append(m.note if m.family != "derun" else f"'{task}' weights")
    rep.text("Methods of ours (◆, bold): " + "; ".join(
        f"**{name}**: " + (notes[0] if name != "DeRUN" else "trained DeRUN, the shipped " + " / ".join(notes)
                           + " (infrared–visible / medical sets)") for name, notes in ours_notes.items()) + ".")
    rep.bullets(notes)
    rep.text("Metrics: hifm.metrics (reproduces VIFB's MATLAB code, docs/metrics.md); ↑ higher is better, ↓ lower; best "
             "value per column in bold; rows sorted by mean rank. Times: the fusion call on one thread (shared machine).")

    overview = []
    for ds in datasets:
        info = common.DATASETS[ds]
        n = 1 if q else min(FULL_PAIRS[ds], args.max_pairs or FULL_PAIRS[ds])
        samples = common.load_dataset(ds, max_pairs=n, crop=crop)
        total = len(find_pairs(info.root))
        results, _ = common.run_methods(samples, methods[info.kind], metrics, info.protocol, log=f"{NAME}/{ds}")
        rep.heading(f"{info.title} ({len(samples)} of {total} pairs, protocol '{info.protocol}')", 3)
        if ds == "vifb-dev":
            pub = published_results(samples, metrics, use_cache=not args.no_cache, max_methods=3 if q else None)
            results += pub
            rep.text("The 25 published methods' fused images as shipped with VIFB (3-channel JPEGs), evaluated here with "
                     "the same code (not VIFB's stored values: for SwinFusion and YDTR those do not belong to the shipped "
                     "images, see docs/metrics.md).")
        summ = common.summarize(results, metrics)
        ranks = ranked_table(rep, summ, metrics, with_time=True)
        ours = [m.name for m in methods[info.kind]]
        overview.append((info.title, len(samples), {m: (ranks.get(m), len(summ)) for m in ours}))
        if ds == "vifb-dev":
            fig = plot_vifb_ranks(ranks, out, len(metrics))
            rep.figure(fig, "Mean rank on the VIFB development pairs (ours in red)")
        if info.kind == "mif" and not q:
            held = common.heldout_names(ds)
            sel = [s.name for s in samples if held and s.name in held]
            if sel:
                rep.text(f"Pairs held out from DeRUN's MIF training ({len(sel)}: {', '.join(sel)}); DeRUN saw the others.")
                ranked_table(rep, common.summarize(results, metrics, pairs=sel), metrics, with_time=False)

    rep.heading("Overview: mean rank of our methods per data set", 3)
    names = list(dict.fromkeys(m for _, _, d in overview for m in d))
    rep.table(["data set", "pairs"] + [m.replace(OURS_MARK, "") for m in names],
              [[t, n] + [f"{d[m][0]:.2f} of {d[m][1]}" if m in d else "–" for m in names] for t, n, d in overview])
    rep.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Solver vs network: quality against time for the anchor, hifm.solve and DeRUN.

``python experiments/solver_vs_network.py [--quick] [--out DIR] [--max-pairs N]``

Methods: the anchor M alone; ``hifm.solve`` at 10, 50 and 200 iterations (default
parameters); DeRUN at initialisation (``unrolled.train.build_model``: ``DeRUN.from_hifm``
with the trainer's initial parameters, i.e. the solver with those parameters at 9
iterations) and DeRUN trained (the shipped weights: ``ivf`` for TNO/RoadScene, ``mif``
for the medical sets).  Metrics: EN, SD, SF, AG, MI, SCD, VIF, Qabf, SSIM
(:mod:`hifm.metrics`, protocol ``gray``); time per image on one thread (the fusion
call only: anchor, colour conversion and iterations; no file I/O).

Data (full mode): ``--max-pairs`` pairs (default 6) spread over TNO and RoadScene-test,
and over the pairs of MRI-CT, MRI-PET, MRI-SPECT that the MIF training holds out.
DeRUN parts are skipped, with a note, while ``unrolled`` or its weights are missing.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import common  # noqa: E402

NAME = "solver_vs_network"
DATASETS = ("tno", "roadscene-test", "mri-ct", "mri-pet", "mri-spect")


def build_methods(task: str, iters: Sequence[int], notes: list[str]) -> list[common.Method]:
    """anchor, hifm at each iteration count, DeRUN init and trained (when available) for ``task``."""
    methods = [common.anchor_method()] + [common.hifm_method(n) for n in iters]
    models = common.derun_models(task)
    notes.extend(f"{task}: {n}" for n in models.notes)
    if models.init is not None:
        desc = ", ".join(f"{k}={v}" for k, v in models.init_params.items())
        methods.append(common.derun_method(models.init, "DeRUN init", f"DeRUN.from_hifm({desc}), {models.stages} stages"))
    if models.trained is not None:
        methods.append(common.derun_method(models.trained, "DeRUN trained", f"shipped '{task}' weights"))
    return methods


def plot_crops(rows: list[tuple[common.Sample, dict[str, np.ndarray]]], method_names: list[str], out: Path,
               size: int) -> Path:
    """Fused crops side by side: one row per data set, columns IR, VIS, then each method."""
    plt = common.pyplot()
    ncol = 2 + len(method_names)
    fig, axes = plt.subplots(len(rows), ncol, figsize=(1.75 * ncol, 1.95 * len(rows)), squeeze=False)
    for i, (s, fused) in enumerate(rows):
        ref = fused.get("anchor", s.vis)
        top, left = common.textured_window(ref, size)
        h = min(size, s.shape[0])
        w = min(size, s.shape[1])

        def crop(x: np.ndarray) -> np.ndarray:
            return x[top : top + h, left : left + w]

        panels = [("source A (IR / MRI)", s.ir), ("source B (VIS / CT, PET, SPECT)", s.vis)] + \
            [(m, fused[m]) for m in method_names if m in fused]
        for j in range(ncol):
            ax = axes[i, j]
            if j < len(panels):
                common.show(ax, crop(panels[j][1]), panels[j][0] if i == 0 else None, fontsize=7)
            else:
                ax.axis("off")
        axes[i, 0].set_ylabel(f"{common.DATASETS[s.dataset].title}\n{s.name} ({h}×{w} crop)", fontsize=8)
    fig.suptitle("Fused crops (the most textured window of the anchor; same window in every column)", y=1.0, fontsize=10)
    common.tight(fig)
    return common.save_figure(fig, out / "crops.png", dpi=120)


def plot_tradeoff(summaries: dict[str, dict[str, dict[str, float]]], metrics: Sequence[str], out: Path) -> Path:
    """Mean rank over the metrics (lower is better) against time per megapixel, one marker per method and data set."""
    plt = common.pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    markers = ["o", "s", "^", "D", "v", "P", "X"]
    methods = list(dict.fromkeys(m for s in summaries.values() for m in s))
    colors = {m: plt.cm.tab10(i % 10) for i, m in enumerate(methods)}
    for k, (ds, summ) in enumerate(summaries.items()):
        ranks = common.mean_ranks(summ, metrics)
        for m, row in summ.items():
            ax.scatter(row["ms_per_mpx"] / 1000.0, ranks[m], color=colors[m], marker=markers[k % len(markers)], s=36,
                       label=None)
    for m in methods:
        ax.scatter([], [], color=colors[m], marker="o", label=m)
    for k, ds in enumerate(summaries):
        ax.scatter([], [], color="0.4", marker=markers[k % len(markers)], label=common.DATASETS[ds].title)
    ax.set_xscale("log")
    ax.set_xlabel("time per megapixel (s, one thread, log scale)")
    ax.set_ylabel(f"mean rank over {len(metrics)} metrics (1 = best)")
    ax.invert_yaxis()
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.set_title("Quality against time (per data set)")
    common.tight(fig)
    return common.save_figure(fig, out / "quality_vs_time.png")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the experiment (see the module docstring); returns the exit status."""
    parser = common.base_parser(NAME, __doc__)
    parser.add_argument("--max-pairs", type=int, help="pairs per data set (default 6; quick 1)")
    parser.add_argument("--crop", type=int, help="centre crop in pixels (default: whole images; quick 96)")
    parser.add_argument("--datasets", nargs="+", choices=list(common.DATASETS), help="data sets (default: the five development sets)")
    parser.add_argument("--iters", nargs="+", type=int, default=[10, 50, 200], help="hifm.solve iteration counts")
    parser.add_argument("--metrics", nargs="+", default=list(common.STANDARD_METRICS))
    args = parser.parse_args(argv)
    q = args.quick
    datasets = common.available_datasets(args.datasets or (["tno", "mri-ct"] if q else list(DATASETS)), q)
    max_pairs = args.max_pairs or (1 if q else 6)
    crop = args.crop if args.crop is not None else (96 if q else None)
    iters = [min(n, 10) for n in args.iters] if q else args.iters
    iters = list(dict.fromkeys(iters))
    metrics = args.metrics
    common.setup_threads(args.threads)
    out = common.output_dir(args, NAME)
    rep = common.Report("Solver vs network: quality against time", common.command_line(NAME, argv), out)

    notes: list[str] = []
    methods_by_task = {task: build_methods(task, iters, notes) for task in ("ivf", "mif")
                       if any(common.DATASETS[d].kind == task for d in datasets)}
    summaries: dict[str, dict[str, dict[str, float]]] = {}
    crop_rows: list[tuple[common.Sample, dict[str, np.ndarray]]] = []
    data_notes = []
    for ds in datasets:
        info = common.DATASETS[ds]
        names = None
        if info.kind == "mif" and not info.shipped:
            held = common.heldout_names(ds)
            if held:
                names = [held[i] for i in common.spread_indices(len(held), max_pairs)]
        samples = common.load_dataset(ds, max_pairs=max_pairs, crop=crop, names=names)
        data_notes.append(f"{info.title}: {len(samples)} pair(s) ({', '.join(s.name for s in samples)})"
                          + (" — held out from DeRUN's MIF training" if names else ""))
        methods = methods_by_task[info.kind]
        first = samples[0].name
        results, kept = common.run_methods(samples, methods, metrics, info.protocol, keep=lambda s: s.name == first, log=f"{NAME}/{ds}")
        summaries[ds] = common.summarize(results, metrics, [m.name for m in methods])
        crop_rows.append((samples[0], {m: kept[(first, m)] for (p, m) in kept if p == first}))

    rep.text("Methods (one thread each; time = the fusion call alone, mean per image; the machine is shared, "
             "so compare times within this run only):")
    described: dict[str, list[str]] = {}
    for task, ms in methods_by_task.items():
        for m in ms:
            note = m.note if m.name != "DeRUN trained" else f"shipped '{task}' weights ({'infrared–visible' if task == 'ivf' else 'medical'} sets)"
            if note not in described.setdefault(m.name, []):
                described[m.name].append(note)
    rep.bullets([f"**{name}**: {'; '.join(ns)}" for name, ns in described.items()] + notes)
    rep.text("Data: " + "; ".join(data_notes) + f"{'; centre crops of ' + str(crop) + ' px' if crop else '; whole images'}. "
             "Metrics: hifm.metrics, protocol 'gray' (↑ higher is better, ↓ lower); best value per column in bold.")

    headers = ["method"] + [common.metric_header(m) for m in metrics] + ["ms / image", "s / Mpx", "mean rank"]
    for ds, summ in summaries.items():
        rep.heading(common.DATASETS[ds].title, 3)
        cells = common.bold_best(summ, metrics)
        ranks = common.mean_ranks(summ, metrics)
        rows = [[m] + [cells[m][k] for k in metrics] + [row["time_ms"], row["ms_per_mpx"] / 1000.0, ranks[m]]
                for m, row in summ.items()]
        rep.table(headers, rows, digits=[0] + [3] * len(metrics) + [0, 2, 2])

    rep.heading("All development sets (mean of the per-set means)", 3)
    methods_all = list(dict.fromkeys(m for s in summaries.values() for m in s))
    macro: dict[str, dict[str, float]] = {}
    for m in methods_all:
        sets = [s[m] for s in summaries.values() if m in s]
        macro[m] = {k: float(np.mean([x[k] for x in sets])) for k in list(metrics) + ["time_ms", "ms_per_mpx"]}
        macro[m]["sets"] = len(sets)
    cells = common.bold_best(macro, metrics)
    ranks = common.mean_ranks(macro, metrics)
    rep.table(headers + ["sets"], [[m] + [cells[m][k] for k in metrics] + [r["time_ms"], r["ms_per_mpx"] / 1000.0, ranks[m], r["sets"]]
                                   for m, r in macro.items()], digits=[0] + [3] * len(metrics) + [0, 2, 2, 0])

    fig1 = plot_tradeoff(summaries, metrics, out)
    rep.figure(fig1, "Mean rank over the metrics against time per megapixel")
    fig2 = plot_crops(crop_rows, methods_all, out, size=96 if q else 128)
    rep.figure(fig2, "Fused crops side by side (first pair of each data set)")
    rep.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())

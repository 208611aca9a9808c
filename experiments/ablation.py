"""The supplement's ablations of DeRUN, each variant trained with the same small budget.

``python experiments/ablation.py [--quick] [--out DIR] [--steps N] [--seeds 0 1] [--jobs J] [--device cpu|cuda]``

Groups (every other setting at the default: N = 9 stages, 𝔅 = {3, 5}, I = 8, PWSM, joint on):

* stage number N ∈ {5, 7, 9, 11};
* LGDE block sets 𝔅 ∈ {3,7}, {3,5}, {5,7}, {3,5,7};
* LGDE directions I ∈ {4, 8, 16, 32};
* extractor: PWSM vs symmetric two-branch vs Siamese (all 17,712 parameters) vs the fixed
  Sobel edge extractor (no learned extractor parameters);
* joint constraint (deep supervision of every stage plus the anchor term) on / off.

Each distinct variant is trained through the trainer's Python API
(:func:`unrolled.train.train` with a :class:`unrolled.train.TrainConfig`): RoadScene-train,
``--steps`` AdamW steps (default 80) of ``--batch`` (2) random ``--crop`` × ``--crop`` (96)
crops, degradation-aware inputs as the trainer's default, the trainer's default learning
rate schedule, for each seed of ``--seeds`` (default 0 and 1; the seed fixes the initial
network, the data order, the crops and the degradations).  Evaluation: ``--eval-pairs``
(10) RoadScene-test pairs spread over the set, centre crops of ``--eval-crop`` (160) px,
metrics SSIM, PSNR, AG, FMI (pixel) as in the supplement's Table 1, plus Qabf and VIF
(:mod:`hifm.metrics`, protocol ``gray``; PSNR and SSIM are VIFB's definitions: the sum of
the two SSIMs and VIFB's PSNR).  Reported: mean ± standard deviation over the seeds of the
per-seed mean over the pairs; the untrained network (``DeRUN.from_hifm``) and
``hifm.solve`` are given on the same pairs for reference.

Budget: 14 distinct variants × 2 seeds × 80 steps.  On an idle 2-core machine a step takes
about 0.4–0.6 s (about 1.3 s when the machine is loaded): the full run took 11 min with
``--jobs 2`` (two variants at a time) on the 2-core machine, about twice that with one job or
under load.  Finished runs are
kept in ``--work`` (default ``runs/experiments-ablation``) and reused when their
configuration is unchanged, so a rerun only evaluates.
"""
from __future__ import annotations

import copy
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import common  # noqa: E402

NAME = "ablation"
METRICS = ("SSIM", "PSNR", "AG", "FMI_pixel", "Qabf", "VIF")
BASE: dict[str, Any] = {"model": {"stages": 9, "extractor": "pwsm"},
                        "loss": {"lgde_blocks": [3, 5], "lgde_bins": 8, "joint": True}}

GROUPS: list[tuple[str, list[tuple[str, dict[str, Any]]]]] = [
    ("stage number N", [(f"N = {n}", {"model": {"stages": n}}) for n in (5, 7, 9, 11)]),
    ("LGDE block sizes 𝔅", [("{" + ",".join(map(str, b)) + "}", {"loss": {"lgde_blocks": list(b)}})
                            for b in ((3, 7), (3, 5), (5, 7), (3, 5, 7))]),
    ("LGDE directions I", [(f"I = {i}", {"loss": {"lgde_bins": i}}) for i in (4, 8, 16, 32)]),
    ("extractor", [(label, {"model": {"extractor": kind}}) for label, kind in
                   (("PWSM", "pwsm"), ("symmetric", "symmetric"), ("Siamese", "siamese"), ("fixed edges (Sobel)", "sobel"))]),
    ("joint constraint", [("on", {"loss": {"joint": True}}), ("off", {"loss": {"joint": False}})]),
]
QUICK_GROUPS: list[tuple[str, list[tuple[str, dict[str, Any]]]]] = [
    ("stage number N", [("N = 3", {"model": {"stages": 3}}), ("N = 5", {"model": {"stages": 5}})]),
]


def merged(overrides: dict[str, Any], base: dict[str, Any] = BASE) -> dict[str, Any]:
    """BASE with ``overrides`` merged in (one level deep: ``model`` and ``loss``)."""
    out = copy.deepcopy(base)
    for section, values in overrides.items():
        out.setdefault(section, {}).update(values)
    return out


def variant_key(variant: dict[str, Any]) -> str:
    """A short stable name of a variant's configuration."""
    return hashlib.sha256(json.dumps(variant, sort_keys=True).encode()).hexdigest()[:10]


# ------------------------------------------------------------------------------- jobs
_PAIRS_CACHE: dict[str, Any] = {}


def _cached_load_pairs(specs: Any) -> Any:
    """:func:`unrolled.data.load_pairs` memoised per process (every variant reads the same folders)."""
    from unrolled.data import load_pairs

    key = json.dumps([s if isinstance(s, (str, dict)) else s.__dict__ for s in specs], sort_keys=True, default=str)
    if key not in _PAIRS_CACHE:
        _PAIRS_CACHE[key] = load_pairs(specs)
    return _PAIRS_CACHE[key]


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Train one variant for one seed (or reuse a finished identical run) and evaluate it.

    ``job``: ``train`` (TrainConfig fields), ``eval`` (pairs, crop, device), ``key``, ``seed``, ``threads``.
    Returns per-pair metric values, the training time and the parameter counts.
    """
    common.setup_threads(job["threads"])
    import unrolled.train as trainer
    from unrolled.inference import fuse_derun

    cfg = trainer.TrainConfig.from_dict(job["train"])
    final = Path(cfg.out) / "final.json"
    reused = False
    if final.is_file():
        meta = json.loads(final.read_text())
        reused = meta.get("train_config") == cfg.as_dict() and int(meta.get("step", -1)) == cfg.steps
    if not reused:
        original = trainer.load_pairs
        trainer.load_pairs = _cached_load_pairs  # the same data for every variant: read it once per process
        try:
            trainer.train(cfg, resume=None, progress=False)
        finally:
            trainer.load_pairs = original
    model, meta = trainer.load_checkpoint_model(final)
    model.eval()
    ev = job["eval"]
    samples = common.load_dataset(ev["dataset"], max_pairs=ev["pairs"], crop=ev["crop"])
    values = []
    for s in samples:
        fused = fuse_derun(s.ir, s.vis, weights=model, device=ev["device"])
        values.append(common.evaluate(fused, s, metrics=ev["metrics"], protocol="gray"))
    return {"key": job["key"], "seed": job["seed"], "values": values, "seconds": float(meta.get("seconds", float("nan"))),
            "params": model.count_parameters(), "reused": reused}


def quick_training_data(work: Path, pairs: int = 2) -> Path:
    """A tiny paired folder (``pairs`` RoadScene-train pairs, or shipped samples in a fresh clone, copied into
    ``work/data``) for ``--quick``."""
    import shutil

    from hifm.datasets import find_pairs

    root = work / "data"
    for sub in ("ir", "vi"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    source = common.DATASETS[common.available_datasets(["roadscene-train"], True)[0]].root
    for p in list(find_pairs(source))[:pairs]:
        shutil.copy2(p.ir_path, root / "ir" / p.ir_path.name)
        shutil.copy2(p.vis_path, root / "vi" / p.vis_path.name)
    return root


def reference_rows(pairs: int, crop: int | None, metrics: Sequence[str], iters: int,
                   dataset: str = "roadscene-test") -> dict[str, dict[str, float]]:
    """hifm.solve and the untrained DeRUN (trainer's initial network) on the evaluation pairs."""
    samples = common.load_dataset(dataset, max_pairs=pairs, crop=crop)
    methods = [common.hifm_method(iters, name=f"hifm.solve ({iters} it.)")]
    models = common.derun_models("ivf")
    if models.init is not None:
        methods.append(common.derun_method(models.init, "DeRUN untrained (from_hifm)"))
    results, _ = common.run_methods(samples, methods, metrics, "gray", log=f"{NAME}/reference")
    return common.summarize(results, metrics)


def train_all(variants: dict[str, dict[str, Any]], seeds: Sequence[int], work: Path, quick: bool, steps: int, batch: int,
              crop: int, eval_pairs: int, eval_crop: int | None, args: Any) -> tuple[list[dict[str, Any]], float]:
    """Train and evaluate every variant for every seed (``args.jobs`` processes); returns the results and seconds."""
    train_root = quick_training_data(work) if quick else common.DATA_ROOT / "roadscene-train"
    eval_spec = {"pairs": eval_pairs, "crop": eval_crop, "device": args.device, "metrics": list(METRICS),
                 "dataset": common.available_datasets(["roadscene-test"], quick)[0]}
    jobs = []
    for k, v in variants.items():
        for seed in seeds:
            train_cfg = {
                "data": [{"root": str(train_root)}], "out": str(work / f"{k}-seed{seed}"),
                "steps": steps, "batch": batch, "crop": crop, "seed": seed, "ckpt_every": steps, "threads": args.threads,
                "device": args.device, "model": v["model"], "loss": v["loss"], "tensorboard": False,
                "warmup": max(1, min(20, steps // 5)),
            }
            jobs.append({"train": train_cfg, "eval": eval_spec, "key": k, "seed": seed, "threads": args.threads})
    print(f"[{NAME}] {len(variants)} variants × {len(seeds)} seeds = {len(jobs)} trainings of {steps} steps "
          f"(batch {batch}, crop {crop}), {args.jobs} at a time", flush=True)
    t0 = time.perf_counter()
    done: list[dict[str, Any]] = []
    if args.jobs > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=mp.get_context("spawn")) as pool:
            for i, res in enumerate(pool.map(run_job, jobs)):
                done.append(res)
                print(f"[{NAME}] {i + 1}/{len(jobs)} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    else:
        for i, job in enumerate(jobs):
            done.append(run_job(job))
            print(f"[{NAME}] {i + 1}/{len(jobs)} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    return done, time.perf_counter() - t0


# ----------------------------------------------------------------------------- figure
def plot(groups: list[tuple[str, list[tuple[str, str]]]], stats: dict[str, dict[str, tuple[float, float]]],
         refs: dict[str, dict[str, float]], out: Path, budget: str = "", metrics: Sequence[str] = ("Qabf", "VIF")) -> Path:
    """Bars (mean ± std over seeds) of two metrics per group; dashed lines: the references."""
    plt = common.pyplot()
    fig, axes = plt.subplots(len(metrics), len(groups), figsize=(3.3 * len(groups), 2.9 * len(metrics)), squeeze=False)
    ref_styles = [("--", "tab:gray"), (":", "tab:purple")]
    for j, (title, variants) in enumerate(groups):
        for i, m in enumerate(metrics):
            ax = axes[i, j]
            means = [stats[k][m][0] for _, k in variants]
            stds = [stats[k][m][1] for _, k in variants]
            ax.errorbar(range(len(variants)), means, yerr=stds, fmt="o", ms=6, capsize=4, color="tab:blue", lw=1.5)
            for (name, row), (ls, col) in zip(refs.items(), ref_styles):
                ax.axhline(row[m], ls=ls, color=col, lw=1.2, label=name)
            lo = min(np.subtract(means, stds).tolist() + [r[m] for r in refs.values()])
            hi = max(np.add(means, stds).tolist() + [r[m] for r in refs.values()])
            pad = 0.15 * (hi - lo) if hi > lo else 0.05 * abs(hi) + 1e-3
            ax.set_ylim(lo - pad, hi + pad)
            ax.set_xticks(range(len(variants)))
            ax.set_xticklabels([label for label, _ in variants], rotation=20, ha="right", fontsize=8)
            ax.set_ylabel(f"{m} (↑)")
            ax.grid(True, axis="y", alpha=0.3)
            ax.set_xlim(-0.5, len(variants) - 0.5)
            if i == 0:
                ax.set_title(title.replace("𝔅", "B"))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=len(handles), frameon=False, bbox_to_anchor=(0.5, -0.03))
    fig.suptitle("DeRUN ablations on RoadScene-test (mean ± std over seeds; the same training budget per variant"
                 + (f": {budget}" if budget else "") + ")", y=1.0)
    common.tight(fig, rect=(0, 0.03, 1, 0.98))
    return common.save_figure(fig, out / "ablation.png")


# -------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    """Run the experiment (see the module docstring); returns the exit status."""
    parser = common.base_parser(NAME, __doc__)
    parser.add_argument("--steps", type=int, help="training steps per variant (default 80; quick 2)")
    parser.add_argument("--batch", type=int, help="crops per step (default 2; quick 1)")
    parser.add_argument("--crop", type=int, help="training crop (default 96; quick 48)")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default 0 1; quick 0)")
    parser.add_argument("--eval-pairs", type=int, help="RoadScene-test pairs (default 10; quick 1)")
    parser.add_argument("--eval-crop", type=int, help="centre crop of the evaluation pairs (default 160; quick 96; 0: whole)")
    parser.add_argument("--jobs", type=int, default=1, help="variants trained at a time (processes)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (training and evaluation)")
    parser.add_argument("--replot", type=Path, help="render the tables and figure again from a summary.json of an earlier run")
    parser.add_argument("--work", type=Path, help="folder of the training runs (default runs/experiments-ablation; quick: OUT/_runs)")
    args = parser.parse_args(argv)
    q = args.quick
    steps = args.steps or (2 if q else 80)
    batch = args.batch or (1 if q else 2)
    crop = args.crop or (48 if q else 96)
    seeds = args.seeds or ([0] if q else [0, 1])
    eval_pairs = args.eval_pairs or (1 if q else 10)
    eval_crop = args.eval_crop if args.eval_crop is not None else (96 if q else 160)
    eval_crop = eval_crop or None
    common.setup_threads(args.threads)
    out = common.output_dir(args, NAME)
    work = Path(args.work) if args.work else (out / "_runs" if q else common.REPO / "runs" / "experiments-ablation")
    rep = common.Report("Ablations of DeRUN (supplement Table 1 and §ablations)", common.command_line(NAME, argv), out)

    try:
        import unrolled.train  # noqa: F401
    except Exception as exc:  # noqa: BLE001
        rep.text(f"**Skipped**: the unrolled package (DeRUN and its trainer) cannot be imported ({type(exc).__name__}: {exc}). "
                 "Rerun this command once it is in place.")
        rep.write()
        return 0

    groups_def = QUICK_GROUPS if q else GROUPS
    variants: dict[str, dict[str, Any]] = {}
    groups: list[tuple[str, list[tuple[str, str]]]] = []
    for title, entries in groups_def:
        keyed = []
        for label, overrides in entries:
            v = merged(overrides)
            k = variant_key(v)
            variants[k] = v
            keyed.append((label, k))
        groups.append((title, keyed))

    if args.replot:
        summary = json.loads(Path(args.replot).read_text())
        st = summary["settings"]
        steps, batch, crop, seeds = st["steps"], st["batch"], st["crop"], st["seeds"]
        eval_pairs, eval_crop, device = st["eval_pairs"], st["eval_crop"], st["device"]
        done, refs, elapsed = summary["done"], summary["refs"], summary["elapsed"]
        rep.text(f"Rendered with --replot from `{args.replot}`: the results of `{summary['command']}`, "
                 f"run on {summary['machine']}.")
    else:
        device = args.device
        done, elapsed = train_all(variants, seeds, work, q, steps, batch, crop, eval_pairs, eval_crop, args)
        refs = reference_rows(eval_pairs, eval_crop, METRICS, 20 if q else 200,
                              common.available_datasets(["roadscene-test"], q)[0])
        summary = {"command": common.command_line(NAME, argv), "machine": common.machine_line(), "elapsed": elapsed,
                   "settings": {"steps": steps, "batch": batch, "crop": crop, "seeds": seeds, "eval_pairs": eval_pairs,
                                "eval_crop": eval_crop, "device": device},
                   "done": done, "refs": refs}
        work.mkdir(parents=True, exist_ok=True)
        (work / "summary.json").write_text(json.dumps(summary, indent=1))
        print(f"[{NAME}] wrote {work / 'summary.json'} (render again with --replot)", flush=True)

    # per variant: per-seed means, then mean ± std over seeds
    stats: dict[str, dict[str, tuple[float, float]]] = {}
    info: dict[str, dict[str, Any]] = {}
    for k in variants:
        runs = [d for d in done if d["key"] == k]
        per_seed = {m: [float(np.nanmean([v[m] for v in r["values"]])) for r in runs] for m in METRICS}
        stats[k] = {m: common.mean_std(per_seed[m]) for m in METRICS}
        info[k] = {"params": runs[0]["params"], "seconds": float(np.mean([r["seconds"] for r in runs])),
                   "reused": sum(r["reused"] for r in runs)}

    from unrolled.train import TrainConfig

    tc = TrainConfig()
    init = ", ".join(f"{k}={v}" for k, v in tc.init.items())
    rep.text(f"Training (each variant, each seed): {'2 RoadScene-train pairs (quick)' if q else 'RoadScene-train'}, "
             f"{steps} steps × batch {batch} × {crop}² crops, seeds {', '.join(map(str, seeds))}, device {device}, the "
             f"trainer's defaults otherwise (AdamW, lr {tc.lr:g} with warm-up and cosine decay to {tc.lr * tc.lr_min_ratio:g}, "
             f"degradation-aware inputs with p = {tc.degrade.get('p')}, initial network DeRUN.from_hifm({init})). "
             f"Evaluation: {eval_pairs} RoadScene-test pairs, "
             f"{'centre crops of ' + str(eval_crop) + ' px' if eval_crop else 'whole images'}, hifm.metrics protocol 'gray' "
             "(SSIM is VIFB's sum of SSIM(F, VIS) and SSIM(F, IR); PSNR is VIFB's formula). Cells: mean ± std over the "
             "seeds of the mean over the pairs; best mean per column in bold within each group.")
    rep.text("This is a small-budget ablation: differences smaller than the seed spread are not evidence either way.")
    headers = ["variant", "parameters (extractor)", "train s"] + [common.metric_header(m.replace("FMI_pixel", "FMI")) for m in METRICS]
    for title, keyed in groups:
        rep.heading(title, 3)
        best = {m: max(stats[k][m][0] for _, k in keyed) for m in METRICS}
        rows = []
        for label, k in keyed:
            cells = []
            for m in METRICS:
                mu, sd = stats[k][m]
                cell = f"{mu:.3f} ± {sd:.3f}"
                cells.append(f"**{cell}**" if mu == best[m] and len(keyed) > 1 else cell)
            p = info[k]["params"]
            rows.append([label, f"{p['total']:,} ({p['extractor']:,})", info[k]["seconds"]] + cells)
        rep.table(headers, rows, digits=[0, 0, 0] + [3] * len(METRICS))
    rep.heading("References on the same pairs", 3)
    rep.table(["method"] + [common.metric_header(m.replace("FMI_pixel", "FMI")) for m in METRICS],
              [[name] + [row[m] for m in METRICS] for name, row in refs.items()])
    fig = plot(groups, stats, refs, out, budget=f"{steps} steps × batch {batch} × {crop}² crops, {len(seeds)} seeds")
    rep.figure(fig, "Qabf and VIF per ablation group (mean ± std over seeds); dashed: references")
    reused = sum(v["reused"] for v in info.values())
    rep.text(f"Total time of the trainings and evaluations: {elapsed:.0f} s"
             + (f" ({reused} run(s) reused from {work})" if reused else "") + ".")
    rep.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())

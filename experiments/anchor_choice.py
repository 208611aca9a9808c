"""Which anchor is the default (docs/parameters.md §5): ``python experiments/anchor_choice.py``.

Fuses TNO and RoadScene-test pairs with each anchor (``hifm.fuse(method="anchor")``) and with
the default ``hifm.solve`` (200 iterations), evaluates them with ``hifm.metrics`` (protocol
``gray``, images as saved: uint8) and prints the mean of each metric and each method's mean
rank over the metrics (1 = best).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import hifm
from hifm.datasets import find_pairs
from hifm.io import read_image
from hifm.metrics import evaluate, get_metric

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
METRICS = ["EN", "SD", "SF", "AG", "MI", "SCD", "VIF", "Qabf", "SSIM", "FMI_pixel"]


def methods(iters: int) -> dict[str, dict]:
    return {
        "mean": dict(method="anchor", anchor="mean"),
        "max": dict(method="anchor", anchor="max"),
        "two_scale": dict(method="anchor", anchor="two_scale"),
        f"hifm ({iters} it., defaults)": dict(method="hifm", iters=iters),
    }


def run(dataset: str, max_pairs: int, iters: int) -> dict[str, dict[str, float]]:
    pairs = list(find_pairs(DATA / dataset))[:max_pairs]
    scores: dict[str, list[dict[str, float]]] = {m: [] for m in methods(iters)}
    for pair in pairs:
        ir = read_image(pair.ir_path, gray_if_equal=True)
        vis = read_image(pair.vis_path, gray_if_equal=True)
        for name, options in methods(iters).items():
            fused = hifm.fuse(ir, vis, **options)
            scores[name].append(evaluate(fused, vis, ir, metrics=METRICS, protocol="gray"))
    return {m: {k: float(np.mean([s[k] for s in v])) for k in METRICS} for m, v in scores.items()}


def table(title: str, means: dict[str, dict[str, float]]) -> str:
    names = list(means)
    ranks = {n: [] for n in names}
    for k in METRICS:
        higher = get_metric(k).higher_is_better
        order = sorted(names, key=lambda n: -means[n][k] if higher else means[n][k])
        for r, n in enumerate(order, 1):
            ranks[n].append(r)
    lines = [f"**{title}**", "", "| method | " + " | ".join(METRICS) + " | mean rank |",
             "|---|" + "---:|" * (len(METRICS) + 1)]
    for n in names:
        cells = []
        for k in METRICS:
            higher = get_metric(k).higher_is_better
            best = max(means[m][k] for m in names) if higher else min(means[m][k] for m in names)
            v = f"{means[n][k]:.4g}"
            cells.append(f"**{v}**" if means[n][k] == best else v)
        lines.append(f"| {n} | " + " | ".join(cells) + f" | {np.mean(ranks[n]):.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-pairs", type=int, default=25)
    ap.add_argument("--iters", type=int, default=200)
    args = ap.parse_args(argv)
    for dataset in ("tno", "roadscene-test"):
        t0 = time.time()
        means = run(dataset, args.max_pairs, args.iters)
        n = min(args.max_pairs, len(find_pairs(DATA / dataset)))
        print(table(f"{dataset}: {n} pairs, protocol gray, metrics on the uint8 outputs", means))
        print(f"\n({time.time() - t0:.0f} s)\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

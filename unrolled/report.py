"""Loss curves and before/after evaluation of trained DeRUN weights (docs/training.md).

    python -m unrolled.report curves runs/ivf/log.csv docs/figures/training_ivf.png
    python -m unrolled.report evaluate --weights unrolled/weights/ivf.json \\
        --data samples/tno --out runs/eval_ivf.json

``evaluate`` fuses every pair of each folder (the test part of a hash split with
``ROOT:test``) with: the network's anchor, ``hifm.solve`` with N iterations and the training's
initial parameters (its ``init`` overrides, e.g. the ``mif`` preset's ``two_scale`` anchor, but
the solver's own filter banks), DeRUN at the initialisation its training started from,
and the trained DeRUN; on clean inputs and, with ``--noise``, with Gaussian noise on
the second (visible / functional) source.  Metrics: :func:`hifm.metrics.evaluate`
(protocol ``gray``, a = second source, b = first source, on uint8 images), the clean
sources being the references.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .losses import TERMS

__all__ = ["plot_curves", "evaluate_folders", "main", "DEFAULT_METRICS"]

DEFAULT_METRICS = ["entropy", "standard_deviation", "spatial_frequency", "average_gradient",
                   "mutual_information", "qabf", "ssim", "vif", "scd"]


def plot_curves(csv_path: str | Path, png_path: str | Path, title: str | None = None, smooth: int = 20,
                validation: Sequence[tuple[int, float, float]] | None = None) -> Path:
    """Total loss and its terms (final stage, unweighted) against the step, with a running mean,
    and (optionally) the held-out validation losses of :func:`validation_curve`."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"step", "loss"} <= set(rows[0]):
        raise ValueError(f"'{csv_path}' is not a training log (log.csv with step and loss columns)")
    try:
        steps = np.array([int(r["step"]) for r in rows])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"'{csv_path}': a step is not an integer ({exc})") from None

    def series(key: str) -> np.ndarray:
        return np.array([float(r[key]) if r.get(key) not in (None, "") else np.nan for r in rows])

    def run_mean(y: np.ndarray) -> np.ndarray:
        k = max(1, min(smooth, len(y)))
        c = np.cumsum(np.insert(np.nan_to_num(y), 0, 0.0))
        out = np.empty_like(y)
        for i in range(len(y)):
            lo = max(0, i - k + 1)
            out[i] = (c[i + 1] - c[lo]) / (i + 1 - lo)
        return out

    ncol = 3 if validation else 2
    fig, axes = plt.subplots(1, ncol, figsize=(5 * ncol, 3.6))
    y = series("loss")
    axes[0].plot(steps, y, color="0.75", lw=0.8, label="per step")
    axes[0].plot(steps, run_mean(y), color="C0", lw=1.8, label=f"running mean ({smooth})")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("joint loss")
    axes[0].legend(frameon=False)
    for i, key in enumerate((*TERMS, "anchor")):
        v = series(key)
        if np.isfinite(v).any():
            axes[1].plot(steps, run_mean(v), color=f"C{i}", lw=1.5, label=key)
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("term (final stage; anchor: weighted sum)")
    axes[1].legend(frameon=False, fontsize=8)
    if validation:
        vs = np.array(validation, dtype=float)
        axes[2].plot(vs[:, 0], vs[:, 1], "o-", label="degraded inputs")
        axes[2].plot(vs[:, 0], vs[:, 2], "s-", label="clean inputs")
        axes[2].set_xlabel("step (0: initialisation)")
        axes[2].set_ylabel("joint loss, fixed held-out crops")
        axes[2].legend(frameon=False, fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(png_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def validation_curve(run: str | Path, data: Sequence[str], crops: int = 16, crop: int = 128, seed: int = 1234
                     ) -> list[tuple[int, float, float]]:
    """Loss of the initial network and of every checkpoint of ``run`` on one fixed set of
    held-out crops: ``(step, loss on degraded inputs, loss on clean inputs)``.

    The crops and degradations are drawn once (:class:`unrolled.data.CropSampler`, ``seed``),
    so the curve shows the model's progress without the sampling noise of the training log.
    """
    import torch

    from .data import CropSampler, DegradeConfig, load_pairs
    from .losses import FusionLoss, LossConfig
    from .train import TrainConfig, build_model, load_checkpoint

    torch.set_num_threads(1)
    run = Path(run)
    ckpts = sorted(run.glob("ckpt-*.json"))
    if not ckpts:
        raise FileNotFoundError(f"no checkpoints in {run}")
    _, meta = load_checkpoint(ckpts[-1])
    cfg = TrainConfig.from_dict(meta["train_config"])
    pairs = load_pairs([{"root": r.rpartition(":")[0] if r.endswith((":test", ":train")) else r,
                         "part": r.rpartition(":")[2] if r.endswith((":test", ":train")) else "all"} for r in data])
    sampler = CropSampler(pairs, crop=crop, seed=seed, degrade=DegradeConfig(**cfg.degrade))
    a_in, b_in, a_cl, b_cl = (torch.from_numpy(x) for x in sampler.batch(0, 0, crops, 1))
    loss_fn = FusionLoss(LossConfig(**cfg.loss))
    model = build_model(cfg).eval()
    reference = None
    if loss_fn.config.fidelity and loss_fn.config.fidelity_anchor == "teacher":
        with torch.no_grad():  # the teacher of training: the initial network on the clean sources
            reference = model(a_cl, b_cl)

    def loss_of(model: torch.nn.Module, a: torch.Tensor, b: torch.Tensor) -> float:
        with torch.no_grad():
            res = model(a, b, return_all=True)
            anchor = res.anchor if model.extractor is not None else None
            return float(loss_fn(res.stages, anchor, a_cl, b_cl, reference)[0])

    out = []
    out.append((0, loss_of(model, a_in, b_in), loss_of(model, a_cl, b_cl)))
    for c in ckpts:
        tensors, m = load_checkpoint(c)
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        out.append((int(m["step"]), loss_of(model, a_in, b_in), loss_of(model, a_cl, b_cl)))
    return out


def _to_u8(x: np.ndarray) -> np.ndarray:
    if x.dtype == np.uint8:
        return x
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) * 255), 0, 255).astype(np.uint8)


def evaluate_folders(
    weights: str | Path,
    roots: Sequence[str],
    iters: int | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    noise: float = 0.0,
    limit: int | None = None,
) -> dict[str, Any]:
    """Mean metrics per folder and method (see the module docstring)."""
    import torch

    import hifm
    from hifm.datasets import find_pairs
    from hifm.io import read_image
    from hifm.metrics import evaluate

    from .data import holdout_part
    from .inference import fuse_derun
    from .train import TrainConfig, build_model
    from .weights import load_weights

    torch.set_num_threads(1)
    trained = load_weights(weights)
    meta = json.loads(Path(weights).with_suffix(".json").read_text())
    tc = meta.get("info", {}).get("train_config")
    init_cfg = TrainConfig.from_dict(tc) if tc else None
    init = build_model(init_cfg).eval() if init_cfg else None
    # the solver rows use the training's initial parameters (anchor, μ, θ, ...) with the solver's own filters
    solver_kw = {k: v for k, v in (init_cfg.init if init_cfg else {}).items() if k not in ("filters_l", "filters_k")}
    n_iter = int(iters or trained.config.stages)
    result: dict[str, Any] = {"weights": str(weights), "iters": n_iter, "noise": noise, "metrics": list(metrics),
                              "folders": {}}
    for spec in roots:
        root, _, part = spec.rpartition(":") if spec.endswith((":test", ":train")) else (spec, "", "all")
        pairs = [p for p in find_pairs(root) if part == "all" or holdout_part(root, p.name) == part]
        if limit:
            pairs = pairs[:limit]
        sums: dict[str, dict[str, list[float]]] = {}
        t0 = time.perf_counter()
        for k, pair in enumerate(pairs):
            ir = read_image(pair.ir_path, gray_if_equal=True)
            vis = read_image(pair.vis_path, gray_if_equal=True)
            ir_in, vis_in = ir, vis
            if noise > 0:
                from hifm import degrade

                v = vis.astype(np.float32) / 255.0 if vis.dtype == np.uint8 else vis.astype(np.float32)
                vis_in = _to_u8(degrade.gaussian_noise(v, noise, seed=k))
            outputs = {
                "anchor": hifm.fuse(ir_in, vis_in, method="anchor", anchor=trained.config.anchor),
                f"hifm.solve ({n_iter} it.)": hifm.solve(ir_in, vis_in, iters=n_iter, **solver_kw),
                "DeRUN trained": fuse_derun(ir_in, vis_in, weights=trained),
            }
            if init is not None:
                outputs["DeRUN at init"] = fuse_derun(ir_in, vis_in, weights=init)
            for name, fused in outputs.items():
                vals = evaluate(_to_u8(fused), a=vis, b=ir, protocol="gray", metrics=list(metrics))
                for m, v in vals.items():
                    sums.setdefault(name, {}).setdefault(m, []).append(float(v))
        result["folders"][spec] = {
            "pairs": len(pairs),
            "seconds": time.perf_counter() - t0,
            "means": {name: {m: float(np.mean(v)) for m, v in ms.items()} for name, ms in sums.items()},
        }
        print(f"{spec}: {len(pairs)} pairs in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return result


def markdown(result: dict[str, Any]) -> str:
    """The means of :func:`evaluate_folders` as Markdown tables (one per folder)."""
    lines = []
    short = {"entropy": "EN", "standard_deviation": "SD", "spatial_frequency": "SF", "average_gradient": "AG",
             "mutual_information": "MI", "qabf": "Qabf", "ssim": "SSIM", "vif": "VIF", "scd": "SCD"}
    for folder, res in result["folders"].items():
        ms = result["metrics"]
        lines.append(f"**{folder}** ({res['pairs']} pairs{', noise σ = %.3f on the second source' % result['noise'] if result['noise'] else ''})")
        lines.append("")
        lines.append("| method | " + " | ".join(short.get(m, m) for m in ms) + " |")
        lines.append("|---|" + "---|" * len(ms))
        order = [k for k in ("anchor", f"hifm.solve ({result['iters']} it.)", "DeRUN at init", "DeRUN trained")
                 if k in res["means"]]
        for name in order:
            lines.append(f"| {name} | " + " | ".join(f"{res['means'][name][m]:.3f}" for m in ms) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point. Exit status: 0 done; 1 a bad file, folder, weights or value (one line on stderr);
    2 a malformed command line (argparse); 130 interrupted."""
    p = argparse.ArgumentParser(prog="python -m unrolled.report", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("curves", help="loss curves of a training log")
    c.add_argument("csv")
    c.add_argument("png")
    c.add_argument("--title")
    c.add_argument("--run", help="training folder: add the held-out validation curve of its checkpoints")
    c.add_argument("--val-data", nargs="+", help="held-out folders for --run (ROOT or ROOT:test)")
    e = sub.add_parser("evaluate", help="metrics of anchor / solver / DeRUN at init / trained")
    e.add_argument("--weights", required=True)
    e.add_argument("--data", nargs="+", required=True, help="folders (ROOT:test for the hash test part)")
    e.add_argument("--metrics", nargs="+", default=DEFAULT_METRICS)
    e.add_argument("--noise", type=float, default=0.0, help="Gaussian σ on the second source (0: clean)")
    e.add_argument("--limit", type=int)
    e.add_argument("--out", help="JSON output (the Markdown goes to stdout)")
    args = p.parse_args(argv)
    from hifm.errors import HIFMError

    try:
        return _run(args)
    except (HIFMError, ValueError, OSError, KeyError) as exc:
        if isinstance(exc, OSError) and exc.filename and not isinstance(exc, HIFMError):
            text = f"'{exc.filename}': {exc.strerror or exc}"
        else:
            text = " ".join(str(exc).split()) or type(exc).__name__
        print(f"python -m unrolled.report {args.cmd}: error: {text}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"python -m unrolled.report {args.cmd}: interrupted", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    import math

    if args.cmd == "evaluate":
        if args.out:
            _refuse_overwriting_inputs(Path(args.out), [Path(args.weights)])
        if not (math.isfinite(args.noise) and 0.0 <= args.noise <= 1.0):
            raise ValueError(f"--noise must be a σ in [0, 1], got {args.noise}")
        if args.limit is not None and args.limit < 1:
            raise ValueError(f"--limit must be ≥ 1, got {args.limit}")
    if args.cmd == "curves":
        _refuse_overwriting_inputs(Path(args.png), [Path(args.csv)])
        val = validation_curve(args.run, args.val_data) if args.run else None
        if val:
            for step, deg, clean in val:
                print(f"step {step}: held-out loss {deg:.4f} (degraded inputs), {clean:.4f} (clean inputs)")
        print(plot_curves(args.csv, args.png, args.title, validation=val))
        return 0
    res = evaluate_folders(args.weights, args.data, metrics=args.metrics, noise=args.noise, limit=args.limit)
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1))
    print(markdown(res))
    return 0


def _refuse_overwriting_inputs(out: Path, inputs: Sequence[Path]) -> None:
    """``--out`` may not be one of the inputs (under any path: a link, a mount)."""
    import os

    for path in inputs:
        for candidate in (path, path.with_suffix(".json"), path.with_suffix(".safetensors")):
            try:
                same = os.path.samefile(out, candidate)
            except OSError:
                same = False
            if same:
                raise ValueError(f"the output '{out}' is the input '{candidate}'; choose another file")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

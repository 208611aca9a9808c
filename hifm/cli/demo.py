"""``hifm demo``: fuse a built-in synthetic infrared/visible scene and write a figure."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import HIFMError, display_path
from .common import add_derun_options, check_derun_options

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``demo`` sub-command to an argparse sub-parser set."""
    p = subparsers.add_parser(
        "demo", help="fuse a built-in synthetic IR/VIS scene and write the result and a figure",
        description="Fuse a procedurally generated infrared/visible scene (the visible image noisy) "
                    "with the HIFM solver and the DeRUN network (the shipped weights, or --weights), and "
                    "write the sources, the anchor, the fused images and a figure with the convergence "
                    "curve into OUTPUT.")
    p.add_argument("-o", "--output", default="demo_out", help="output folder (default: demo_out)")
    p.add_argument("--iters", type=int, default=200, help="ADMM iterations (default 200)")
    p.add_argument("--noise", type=float, default=0.04,
                   help="σ of the noise on the visible image, in [0, 1] units (default 0.04)")
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-derun", action="store_true", help="skip the DeRUN network (needs torch)")
    add_derun_options(p, guess="ivf (the scene is infrared-visible)", task_sets_anchor=False)
    p.set_defaults(func=run)
    return p


MAX_SIDE = 20_000
"""Largest --height/--width of the synthetic scene (the memory estimate then decides)."""


def _check_args(args: argparse.Namespace) -> None:
    """Refuse bad values before anything is made: noise outside [0, 1] (or NaN), sizes, iterations, memory."""
    import math

    from ..api import MAX_ITERS
    from ..memory import check_memory

    if not (math.isfinite(args.noise) and 0.0 <= args.noise <= 1.0):
        raise HIFMError(f"--noise must be a σ in [0, 1] (image units), got {args.noise}")
    for name in ("height", "width"):
        value = getattr(args, name)
        if not 8 <= value <= MAX_SIDE:
            raise HIFMError(f"--{name} must lie in [8, {MAX_SIDE}] pixels, got {value}")
    if not 0 <= args.iters <= MAX_ITERS:
        raise HIFMError(f"--iters must lie in [0, {MAX_ITERS}], got {args.iters}")
    if args.seed < 0:
        raise HIFMError(f"--seed must be ≥ 0, got {args.seed}")
    args.method = "derun"  # --weights/--task/--device are used by the DeRUN part of the demo
    if args.no_derun:
        given = [opt for opt, v in (("--weights", args.weights), ("--task", args.task)) if v is not None]
        if args.device != "cpu":
            given.append("--device")
        if given:
            raise HIFMError(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} to the DeRUN part, "
                            "which --no-derun skips")
    check_derun_options(args)
    shape = (args.height, args.width)
    # the synthetic scene and the figure add a few float64 planes to the solver's own estimate
    check_memory("hifm", shape, dtype="float64")
    if not args.no_derun:
        check_memory("derun", shape, n_filters=10)


def run(args: argparse.Namespace) -> int:
    """Run ``hifm demo`` from parsed arguments."""
    from .. import api
    from ..io import write_image
    from ..plotting import demo_figure
    from ..synthetic import synthetic_pair

    _check_args(args)
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise HIFMError(f"-o '{display_path(out)}' exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    ir, vis = synthetic_pair(args.height, args.width, seed=args.seed, noise=args.noise)
    ir32, vis32 = ir.astype(np.float32), vis.astype(np.float32)
    fused, info = api.solve(ir32, vis32, iters=args.iters, return_info=True)
    anchor = np.clip(info.anchor, 0, 1)
    paths = {
        "ir": write_image(out / "demo_ir.png", ir32),
        "vis": write_image(out / "demo_vis.png", vis32),
        "anchor": write_image(out / "demo_anchor.png", anchor),
        "fused": write_image(out / "demo_fused.png", fused),
    }
    images = [("infrared", ir), (f"visible (noise σ={args.noise:.3f})", vis), (f"anchor M ({info.params.anchor})", anchor),
              (f"HIFM, {info.iterations} iterations", fused)]
    if not args.no_derun:
        try:
            from unrolled.inference import fuse_derun  # imports torch
        except ImportError as exc:
            print(f"DeRUN skipped ({exc}); install the 'net' extra for it")
        else:
            task = args.task or "ivf"
            derun = fuse_derun(ir32, vis32, task=task, weights=args.weights, device=args.device)
            paths["derun"] = write_image(out / "demo_fused_derun.png", derun)
            label = f"DeRUN ({Path(args.weights).stem})" if args.weights else f"DeRUN (shipped {task})"
            images.append((label, derun))
    fig = demo_figure(images, info.history.as_dict(), out / "demo_figure.png")
    print(f"noise estimate σ̂ = {info.sigma_noise:.4f}, threshold t = λ/ρ = {info.threshold:.4f}")
    print(f"{info.iterations} iterations in {info.seconds:.2f} s ({info.engine} engine, {info.fft} FFT)")
    for name, path in paths.items():
        print(f"wrote {path}")
    print(f"wrote {fig}")
    return 0

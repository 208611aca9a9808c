"""The ``hifm`` command line: ``demo``, ``fuse``, ``fuse-dir``, ``eval``, ``bench`` (and ``train`` with DeRUN).

Every error caused by the user's input ends the command with one readable line
on stderr and a non-zero exit status, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import HIFMError

__all__ = ["main", "build_parser"]

EXIT_USAGE = 2
EXIT_FAILED = 1

_PARAM_OPTIONS = {
    # option: (field, type, help)
    "--lam": ("lam", float, "λ, weight of |∇Y| (default: noise-adaptive λ = max(λ_min, κ(σ̂ − σ₀)))"),
    "--noise-gain": ("noise_gain", float, "κ of the noise-adaptive λ = max(λ_min, κ(σ̂ − σ₀))"),
    "--noise-offset": ("noise_offset", float, "σ₀, the noise estimate that texture alone gives on clean images"),
    "--noise-floor": ("noise_floor", float, "λ_min, the weight on clean images"),
    "--rho": ("rho", float, "ρ, ADMM penalty of E = ∇Y"),
    "--tau": ("tau", float, "τ, ADMM penalty of H = ∇(Y − M)"),
    "--mu": ("mu", float, "μ, weight of the Lorentzian prior on ∇(Y − M) (0: convex model)"),
    "--theta": ("theta", float, "θ of log(1 + θa²)"),
    "--shrink": ("shrink", str, "E-step: soft (exact prox of |·|) or value_map"),
    "--filters-l": ("filters_l", str, "bank of ∇_l: diff, diff4 or dct3"),
    "--filters-k": ("filters_k", str, "bank of ∇_k: diff, diff4 or dct3"),
    "--anchor": ("anchor", str, "anchor M: two_scale, mean or max"),
    "--dtype": ("dtype", str, "float32 (default) or float64"),
    "--workers": ("workers", int, "threads for the FFT (default 1)"),
}


def _add_param_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("HIFM model parameters (docs/parameters.md)")
    for opt, (dest, typ, help_) in _PARAM_OPTIONS.items():
        g.add_argument(opt, dest=f"param_{dest}", type=typ, default=None, help=help_)


def _params_from_args(args: argparse.Namespace) -> dict[str, Any]:
    return {
        dest: getattr(args, f"param_{dest}")
        for _, (dest, _t, _h) in _PARAM_OPTIONS.items()
        if getattr(args, f"param_{dest}", None) is not None
    }


# ----------------------------------------------------------------------------- demo
def run_demo(args: argparse.Namespace) -> int:
    from . import api
    from .io import write_image
    from .plotting import demo_figure
    from .synthetic import synthetic_pair

    out = Path(args.output)
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
    images = [("infrared", ir), (f"visible (noise σ={args.noise:.3f})", vis), ("anchor M (two_scale)", anchor),
              (f"HIFM, {info.iterations} iterations", fused)]
    if not args.no_derun:
        try:
            from unrolled.inference import fuse_derun  # imports torch
        except ImportError as exc:
            print(f"DeRUN skipped ({exc}); install the 'net' extra for it")
        else:
            derun = fuse_derun(ir32, vis32, task="ivf")
            paths["derun"] = write_image(out / "demo_fused_derun.png", derun)
            images.append(("DeRUN (pretrained ivf)", derun))
    fig = demo_figure(images, info.history.as_dict(), out / "demo_figure.png")
    print(f"noise estimate σ̂ = {info.sigma_noise:.4f}, threshold t = λ/ρ = {info.threshold:.4f}")
    print(f"{info.iterations} iterations in {info.seconds:.2f} s ({info.engine} engine, {info.fft} FFT)")
    for name, path in paths.items():
        print(f"wrote {path}")
    print(f"wrote {fig}")
    return 0


# ----------------------------------------------------------------------------- fuse
def run_fuse(args: argparse.Namespace) -> int:
    from . import api
    from .io import read_image, write_image

    ir = read_image(args.ir, gray_if_equal=True)
    vis = read_image(args.vis, gray_if_equal=True)
    options: dict[str, Any] = {}
    params = _params_from_args(args)
    if args.method == "anchor":
        if set(params) - {"anchor", "dtype"}:
            raise HIFMError(f"options {sorted(set(params) - {'anchor', 'dtype'})} apply to --method hifm only")
        options.update(params)
    elif args.method == "hifm":
        options.update(params, iters=args.iters, backend=args.backend)
        if args.info:
            options["return_info"] = True
    elif args.method == "derun":
        options.update(device=args.device)
        if args.task:
            options["task"] = args.task
    try:
        result = api.fuse(ir, vis, method=args.method, **options)
    except HIFMError as exc:
        raise HIFMError(f"{args.ir} + {args.vis}: {exc}") from None
    info = None
    if isinstance(result, tuple):
        result, info = result
    path = write_image(args.output, result)
    print(f"wrote {path}")
    if info is not None:
        Path(args.info).write_text(json.dumps(info.as_dict(), indent=1))
        print(f"wrote {args.info}")
    return 0


# ---------------------------------------------------------------------------- bench
def run_bench(args: argparse.Namespace) -> int:
    from .bench import main as bench_main

    argv = ["--sizes", *args.sizes] if args.sizes else []
    argv += ["--repeats", str(args.repeats), "--iters", str(args.iters)]
    if args.quick:
        argv.append("--quick")
    return bench_main(argv)


# ---------------------------------------------------------------------------- train
def run_train(args: argparse.Namespace) -> int:
    try:
        from unrolled.train import main as train_main  # imports torch
    except ImportError as exc:
        raise HIFMError(f"training needs torch and the unrolled package: {exc}") from None
    return int(train_main(list(args.train_args)) or 0)


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hifm",
        description="Heterogeneous image fusion (infrared + visible, MRI + CT/PET/SPECT) with the HIFM model and DeRUN.",
        epilog="Run 'hifm COMMAND --help' for the options of a command. Start with 'hifm demo'.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("demo", help="fuse a built-in synthetic IR/VIS scene and write the result and a figure",
                       description="Fuse a procedurally generated infrared/visible scene (the visible image noisy) "
                                   "with the HIFM solver and the pretrained DeRUN network, and write the sources, "
                                   "the anchor, the fused images and a figure with the convergence curve into OUTPUT.")
    p.add_argument("-o", "--output", default="demo_out", help="output folder (default: demo_out)")
    p.add_argument("--iters", type=int, default=200, help="ADMM iterations (default 200)")
    p.add_argument("--noise", type=float, default=0.04, help="σ of the noise on the visible image, in [0, 1] units (default 0.04)")
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-derun", action="store_true", help="skip the DeRUN network (needs torch)")
    p.set_defaults(func=run_demo)

    p = sub.add_parser("fuse", help="fuse one infrared (or MRI) image with one visible (or CT/PET/SPECT) image",
                       description="Fuse IR and VIS (PNG/JPEG/BMP/TIFF, 8/16-bit, gray or colour) into OUT. "
                                   "A colour source keeps its colour; the output has the inputs' bit depth.")
    p.add_argument("ir", help="infrared or MRI image")
    p.add_argument("vis", help="visible, CT, PET or SPECT image")
    p.add_argument("-o", "--output", required=True, help="output image (format from the extension)")
    p.add_argument("--method", choices=["anchor", "hifm", "derun"], default="hifm", help="fusion method (default hifm)")
    p.add_argument("--iters", type=int, default=200, help="ADMM iterations for --method hifm (default 200)")
    p.add_argument("--backend", choices=["auto", "numpy", "cupy"], default="auto", help="array backend for --method hifm")
    p.add_argument("--device", default="cpu", help="cpu or cuda, for --method derun")
    p.add_argument("--task", choices=["ivf", "mif"], default=None, help="pretrained DeRUN weights for --method derun: ivf (infrared-visible, the default) "
                        "or mif (medical); not guessed from the images")
    p.add_argument("--info", metavar="JSON", help="also write the solver's history and parameters to JSON")
    _add_param_options(p)
    p.set_defaults(func=run_fuse)

    p = sub.add_parser("bench", help="benchmark the solver (prints a table)",
                       description="Time the anchor and the ADMM solver at several sizes against a plain NumPy "
                                   "transcription and the machine's floor estimate.")
    p.add_argument("--sizes", nargs="*", help="sizes as HxW (default: 256x256 480x640 768x1024 2048x2048)")
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="small sizes and few iterations (a smoke test)")
    p.set_defaults(func=run_bench)

    for module, adder in (("eval_cli", "add_eval_parser"), ("batch_cli", "add_fuse_dir_parser")):
        try:
            mod = __import__(f"hifm.{module}", fromlist=[adder])
            getattr(mod, adder)(sub)
        except (ImportError, AttributeError):  # pragma: no cover - optional parts during development
            pass
    # DeRUN training: its options live in unrolled.train; torch is imported only when it runs.
    p = sub.add_parser("train", add_help=False, help="train DeRUN (options: hifm train --help)",
                       description="Train the DeRUN network; all arguments go to 'python -m unrolled.train'.")
    p.add_argument("train_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=run_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    raw = list(sys.argv[1:] if argv is None else argv)
    if raw[:1] == ["train"]:  # REMAINDER cannot begin with an option: hand everything to unrolled.train
        args = argparse.Namespace(command="train", func=run_train, train_args=raw[1:])
    else:
        args = parser.parse_args(raw)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except (HIFMError, ValueError, OSError) as exc:
        print(f"hifm {args.command}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"hifm {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""``hifm fuse``: fuse one pair of images into one output file."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..anchors import DEFAULT_ANCHOR, TASK_ANCHORS
from ..errors import HIFMError, display_path
from .common import (
    PARAM_OPTIONS,
    add_derun_options,
    add_param_options,
    add_thermal_options,
    check_derun_options,
    check_outputs_are_not_inputs,
    guess_task,
    params_from_args,
    refuse_options,
)

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``fuse`` sub-command to an argparse sub-parser set."""
    p = subparsers.add_parser(
        "fuse", help="fuse one infrared (or MRI) image with one visible (or CT/PET/SPECT) image",
        description="Fuse IR and VIS (PNG/JPEG/BMP/TIFF, 8/16-bit, gray or colour) into OUT. "
                    "A colour source keeps its colour; the output has the inputs' bit depth.")
    p.add_argument("ir", help="infrared or MRI image")
    p.add_argument("vis", help="visible, CT, PET or SPECT image")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output image (format from the extension; missing folders are created)")
    p.add_argument("--method", choices=["anchor", "hifm", "derun"], default="hifm",
                   help="anchor (the anchor image M alone: salient, or as --anchor/--task say), "
                        "hifm (the ADMM solver, default) or derun (the unrolled network)")
    p.add_argument("--iters", type=int, default=None, metavar="N",
                   help="ADMM iterations for --method hifm (default 200, at most 10000)")
    p.add_argument("--backend", choices=["auto", "numpy", "cupy"], default=None,
                   help="array backend for --method hifm (default auto)")
    p.add_argument("--resize", action="store_true",
                   help="resize IR to the size of VIS when they differ (default: refuse the pair)")
    p.add_argument("--info", metavar="JSON",
                   help="also write a JSON with how the infrared input was read (bit depth, stretch) and, for "
                        "--method hifm, the solver's parameters and per-iteration history")
    add_thermal_options(p)
    add_derun_options(p, guess="mif when a file or folder name says MRI, CT, PET or SPECT, else ivf")
    add_param_options(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``hifm fuse`` from parsed arguments."""
    from .. import api
    from ..batch import resize_image
    from ..io import fused_bit_depth, read_image, write_image
    from ..thermal import pseudo_colour_warning, stretch_ir

    check_derun_options(args)
    _check_method_options(args)
    outputs = {"-o": args.output, **({"--info": args.info} if args.info else {})}
    check_outputs_are_not_inputs(outputs, {"IR": args.ir, "VIS": args.vis})
    ir = read_image(args.ir, gray_if_equal=True)
    vis = read_image(args.vis, gray_if_equal=True)
    ir, ir_input = stretch_ir(ir, tuple(args.ir_range) if args.ir_range else None, auto=not args.no_stretch)
    if ir_input.stretched:
        print(ir_input.describe(args.ir))
    warning = pseudo_colour_warning(ir, args.ir)
    if warning:
        print(f"hifm fuse: {warning}", file=sys.stderr)
    ir_q, vis_q = display_path(args.ir), display_path(args.vis)
    if ir.shape[:2] != vis.shape[:2]:
        if not args.resize:
            raise HIFMError(f"size mismatch: '{ir_q}' is {ir.shape[1]}×{ir.shape[0]}, '{vis_q}' is "
                            f"{vis.shape[1]}×{vis.shape[0]} (W×H); pass --resize to resize the infrared image")
        print(f"resized {ir_q} from {ir.shape[1]}×{ir.shape[0]} to {vis.shape[1]}×{vis.shape[0]}")
        ir = resize_image(ir, vis.shape[:2])
    options: dict[str, Any] = {}
    params = params_from_args(args)
    if args.method in ("anchor", "hifm") and "anchor" not in params:
        task, why = (args.task, "--task") if args.task else guess_task(args.ir, args.vis)
        if TASK_ANCHORS[task] != DEFAULT_ANCHOR:
            params["anchor"] = TASK_ANCHORS[task]
            print(f"anchor: {params['anchor']} for task '{task}' ({why}; --anchor to choose)")
    if args.method == "anchor":
        options.update(params)
    elif args.method == "hifm":
        options.update(params, iters=200 if args.iters is None else args.iters, backend=args.backend or "auto")
        if args.info:
            options["return_info"] = True
    elif args.method == "derun":
        options.update(params, device=args.device)
        if args.weights:
            options["weights"] = args.weights
            print(f"DeRUN weights: {display_path(args.weights)}")
        else:
            task, why = (args.task, "--task") if args.task else guess_task(args.ir, args.vis)
            options["task"] = task
            print(f"DeRUN weights: the shipped '{task}' ({why})")
    try:
        result = api.fuse(ir, vis, method=args.method, **options)
    except HIFMError as exc:
        raise HIFMError(f"{ir_q} + {vis_q}: {exc}") from None
    info = None
    if isinstance(result, tuple):
        result, info = result
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    path = write_image(args.output, result, bit_depth=fused_bit_depth(result, args.output))
    print(f"wrote {display_path(path)}")
    if args.info:
        doc = {"method": args.method, "ir_input": ir_input.as_dict(), **(info.as_dict() if info is not None else {})}
        Path(args.info).parent.mkdir(parents=True, exist_ok=True)
        Path(args.info).write_text(json.dumps(doc, indent=1))
        print(f"wrote {display_path(args.info)}")
    return 0


#: Which method each option of ``hifm fuse`` applies to (an option given with another method is refused).
_METHOD_OPTIONS: dict[str, tuple[str, ...]] = {
    "--iters": ("hifm",),
    "--backend": ("hifm",),
    **{opt: ("hifm",) for opt in PARAM_OPTIONS},
    "--anchor": ("hifm", "anchor"),
    "--dtype": ("hifm", "anchor", "derun"),
}


def _check_method_options(args: argparse.Namespace) -> None:
    """Refuse every option given that ``--method`` does not use (never ignore one silently)."""
    given = {opt: methods for opt, methods in _METHOD_OPTIONS.items()
             if getattr(args, _dest(opt), None) is not None}
    refuse_options(given, args.method)


def _dest(option: str) -> str:
    if option in PARAM_OPTIONS:
        return f"param_{PARAM_OPTIONS[option][0]}"
    return option.lstrip("-").replace("-", "_")

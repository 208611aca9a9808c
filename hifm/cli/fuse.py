"""``hifm fuse``: fuse one pair of images into one output file."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import HIFMError
from .common import add_param_options, params_from_args

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``fuse`` sub-command to an argparse sub-parser set."""
    p = subparsers.add_parser(
        "fuse", help="fuse one infrared (or MRI) image with one visible (or CT/PET/SPECT) image",
        description="Fuse IR and VIS (PNG/JPEG/BMP/TIFF, 8/16-bit, gray or colour) into OUT. "
                    "A colour source keeps its colour; the output has the inputs' bit depth.")
    p.add_argument("ir", help="infrared or MRI image")
    p.add_argument("vis", help="visible, CT, PET or SPECT image")
    p.add_argument("-o", "--output", required=True, help="output image (format from the extension)")
    p.add_argument("--method", choices=["anchor", "hifm", "derun"], default="hifm", help="fusion method (default hifm)")
    p.add_argument("--iters", type=int, default=200, help="ADMM iterations for --method hifm (default 200)")
    p.add_argument("--backend", choices=["auto", "numpy", "cupy"], default="auto", help="array backend for --method hifm")
    p.add_argument("--device", default="cpu", help="cpu or cuda, for --method derun")
    p.add_argument("--task", choices=["ivf", "mif"], default=None, help="pretrained DeRUN weights (default: guessed)")
    p.add_argument("--info", metavar="JSON", help="also write the solver's history and parameters to JSON")
    add_param_options(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``hifm fuse`` from parsed arguments."""
    from .. import api
    from ..io import read_image, write_image

    ir = read_image(args.ir, gray_if_equal=True)
    vis = read_image(args.vis, gray_if_equal=True)
    options: dict[str, Any] = {}
    params = params_from_args(args)
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

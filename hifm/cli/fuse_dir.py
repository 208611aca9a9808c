"""``hifm fuse-dir``: fuse every pair of a data set folder (see :mod:`hifm.batch`).

Also runnable alone: ``python -m hifm.cli.fuse_dir ROOT -o OUTDIR [options]``.

Exit status: 0 when every pair is fused (now or in an earlier run) and every input
file was paired; 1 when some pair was skipped, failed or not run, or some file was
unpaired (all listed in ``OUTDIR/skipped.csv``); 2 when the run could not start or
could not go on (bad root, bad option, unusable output folder, manifest write failed, no
Dask); 130 when Ctrl-C or SIGTERM stopped it (the summary is printed and the pairs not
run are in ``skipped.csv``; ``--resume`` continues).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from .common import (
    EXIT_FAILED,
    EXIT_USAGE,
    add_derun_options,
    add_thermal_options,
    check_derun_options,
    print_error,
    run_guarded,
    sigterm_as_interrupt,
)

__all__ = ["add_parser", "run", "build_parser", "main"]

EXIT_INCOMPLETE = EXIT_FAILED
EXIT_ERROR = EXIT_USAGE

_DESCRIPTION = (
    "Fuse every infrared/visible (or MRI/CT/PET/SPECT) pair of ROOT into OUTDIR, in parallel, with a "
    "progress bar. Outputs are written atomically and recorded in OUTDIR/manifest.jsonl (input and output "
    "SHA-256s, parameters, status) as each pair completes, so --resume after an interruption skips exactly "
    "the finished pairs. Unusable inputs are skipped with a one-line reason, printed and listed in "
    "OUTDIR/skipped.csv."
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``fuse-dir`` sub-command (``func=run``) to an argparse sub-parser set."""
    parser = subparsers.add_parser(
        "fuse-dir", help="fuse every pair of a data set folder (resumable, parallel, Dask)", description=_DESCRIPTION
    )
    _add_arguments(parser)
    parser.set_defaults(func=run, command="fuse-dir")
    return parser


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..io import DEFAULT_MAX_PIXELS

    parser.add_argument("root", help="data set root: ir/ + vi/ (or infrared/visible, mri/ + ct|pet|spect/, ...), "
                                     "a flat folder of *_ir + *_vi files, or (--recursive) folders of data sets")
    parser.add_argument("--ir-dir", metavar="DIR", help="folder of the infrared (or MRI) images, relative to ROOT "
                                                         "or absolute, when it has another name")
    parser.add_argument("--vis-dir", metavar="DIR", help="folder of the visible (or CT/PET/SPECT) images, likewise")
    parser.add_argument("--recursive", action="store_true",
                        help="also pair images in sub-folders (ir/day/01.png + vi/day/01.png), or collect the "
                             "data sets below ROOT; outputs keep the relative paths")
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder (created if needed)")
    parser.add_argument("--method", choices=["anchor", "hifm", "derun"], default="hifm",
                        help="anchor, hifm (the ADMM solver, default) or derun (the unrolled network, loaded once "
                             "per worker process)")
    parser.add_argument("--iters", type=int, default=None, metavar="N",
                        help="ADMM iterations for --method hifm (default: 200)")
    parser.add_argument("--workers", type=int, default=None,
                        help="parallel processes (default: the number of CPUs); 0 runs in this process")
    parser.add_argument("--resume", action="store_true",
                        help="skip pairs the manifest proves done (same inputs, settings and output hash)")
    parser.add_argument("--resize", action="store_true",
                        help="resize the infrared image to the visible size when they differ (default: skip the pair)")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help=f"refuse images with more pixels (default {DEFAULT_MAX_PIXELS:,}; 0: no limit)")
    parser.add_argument("--format", dest="out_format", choices=["png", "tif", "same"], default="png",
                        help="output format; 'same' uses the visible image's extension (default png)")
    parser.add_argument("--dask", "--dask-scheduler", dest="dask", metavar="local|ADDRESS", default=None,
                        help="run on Dask: 'local' starts a LocalCluster with --workers processes; "
                             "an address such as tcp://host:8786 uses an existing scheduler")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_derun_options(parser, guess="mif for a medical layout (mri/ + ct/, pet/ or spect/), else ivf")
    add_thermal_options(parser)


def run(args: argparse.Namespace) -> int:
    """Run ``fuse-dir`` from parsed arguments; print the summary; return the exit status."""
    import os

    from ..batch import FuseSettings, fuse_dir
    from ..errors import HIFMError

    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    try:
        check_derun_options(args)
        derun = {"weights": args.weights, "device": args.device} if args.method == "derun" else {}
        settings = FuseSettings(
            **derun,
            task=args.task,
            method=args.method,
            iters=args.iters,
            resize=args.resize,
            max_pixels=args.max_pixels or None,
            out_format=args.out_format,
            ir_range=tuple(args.ir_range) if args.ir_range else None,
            stretch=not args.no_stretch,
        )
        with sigterm_as_interrupt():
            report = fuse_dir(
                args.root, args.output, settings, workers=workers, resume=args.resume, dask=args.dask,
                progress=not args.quiet, ir_dir=args.ir_dir, vis_dir=args.vis_dir, recursive=args.recursive,
            )
    except HIFMError as exc:
        print_error("fuse-dir", exc)
        return EXIT_ERROR
    print(report.summary())
    return report.exit_code


def build_parser() -> argparse.ArgumentParser:
    """A stand-alone parser (``python -m hifm.cli.fuse_dir``)."""
    parser = argparse.ArgumentParser(prog="hifm fuse-dir", description=_DESCRIPTION)
    _add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m hifm.cli.fuse_dir``."""
    args = build_parser().parse_args(argv)
    return run_guarded("fuse-dir", run, args, interrupted="interrupted; rerun with --resume to continue")


if __name__ == "__main__":
    sys.exit(main())

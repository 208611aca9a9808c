"""The ``hifm`` command line: one module per command, one shared layer.

==============  =========================================================
``demo``        :mod:`hifm.cli.demo` — the built-in synthetic scene
``fuse``        :mod:`hifm.cli.fuse` — one pair
``fuse-dir``    :mod:`hifm.cli.fuse_dir` — a data set folder (resumable)
``compare``     :mod:`hifm.cli.compare` — a side-by-side picture
``eval``        :mod:`hifm.cli.eval` — fusion metrics of fused folders
``bench``       :mod:`hifm.cli.bench` — the solver benchmark table
``train``       :mod:`hifm.cli.train` — DeRUN training (``unrolled.train``)
==============  =========================================================

:mod:`hifm.cli.common` holds the exit codes, the one-line error handling and the
model-parameter options they share. Every error caused by the user's input ends
the command with one readable line on stderr and a non-zero exit status, never a
traceback. Importing this package does not import torch.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from .common import EXIT_USAGE, run_guarded

__all__ = ["main", "build_parser", "COMMANDS"]

COMMANDS: tuple[str, ...] = ("demo", "fuse", "fuse_dir", "compare", "eval", "bench", "train")
"""The command modules, in the order ``hifm --help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    """The ``hifm`` parser with every sub-command (each module's ``add_parser``)."""
    parser = argparse.ArgumentParser(
        prog="hifm",
        description="Heterogeneous image fusion (infrared + visible, MRI + CT/PET/SPECT) with the HIFM model and DeRUN.",
        epilog="Run 'hifm COMMAND --help' for the options of a command. Start with 'hifm demo'.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hifm`` console script and ``python -m hifm.cli``."""
    parser = build_parser()
    raw = list(sys.argv[1:] if argv is None else argv)
    if raw[:1] == ["train"]:  # REMAINDER cannot begin with an option: hand everything to unrolled.train
        from .train import run as run_train

        args = argparse.Namespace(command="train", func=run_train, train_args=raw[1:])
    else:
        args = parser.parse_args(raw)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    return run_guarded(args.command, args.func, args)

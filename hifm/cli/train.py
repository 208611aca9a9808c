"""``hifm train``: train DeRUN; every argument goes to ``python -m unrolled.train``.

torch is imported only when the command runs, so ``hifm --help`` stays light.
"""
from __future__ import annotations

import argparse
from typing import Any

from ..errors import HIFMError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``train`` sub-command (its options live in :mod:`unrolled.train`)."""
    p = subparsers.add_parser("train", add_help=False, help="train DeRUN (options: hifm train --help)",
                              description="Train the DeRUN network; all arguments go to 'python -m unrolled.train'.")
    p.add_argument("train_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Hand the arguments to :func:`unrolled.train.main`."""
    try:
        from unrolled.train import main as train_main  # imports torch
    except ImportError as exc:
        raise HIFMError(f"training needs torch and the unrolled package: {exc}") from None
    return int(train_main(list(args.train_args), prog="hifm train") or 0)

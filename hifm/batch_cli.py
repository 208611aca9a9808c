"""Old name of :mod:`hifm.cli.fuse_dir`, kept so ``python -m hifm.batch_cli`` keeps working."""
import sys

from .cli.fuse_dir import build_parser, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())

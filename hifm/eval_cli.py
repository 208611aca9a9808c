"""Old name of :mod:`hifm.cli.eval`, kept so ``python -m hifm.eval_cli`` keeps working."""
import sys

from .cli.eval import evaluate_folders, find_source_dirs, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())

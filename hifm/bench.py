"""Old name of :mod:`hifm.cli.bench`, kept so ``python -m hifm.bench`` and ``hifm.bench.plain_admm`` keep working."""
import os
import sys

from .cli.bench import main, plain_admm  # noqa: F401

if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())

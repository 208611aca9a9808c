"""Benchmark of the HIFM solver: ``python experiments/bench_solver.py [--sizes 480x640 ...]``.

The implementation lives in :mod:`hifm.cli.bench` so that ``hifm bench`` runs the same code.
"""
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from hifm.cli.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())

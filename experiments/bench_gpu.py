"""GPU check: ``hifm.solve`` on CuPy and DeRUN on CUDA against the CPU, in time and in value.

Needs CuPy and a CUDA GPU (``pip install -e ".[gpu]"``); without them it says so in one line
and exits with 2. For each job (the TNO sample pair 05 of ``samples/tno``, and square images
made from its crops or from noise) it prints the CPU and GPU seconds (best of ``--repeats``
after a warm-up; the CPU runs once after a warm-up, since they take long at 2048²) and, for
values, the largest difference of each result from the CPU's float64 one:

* ``hifm.solve``: CuPy float64 against NumPy float64 (the same computation: rounding only),
  and the float32 results of both backends against float64;
* DeRUN with the shipped ``ivf`` weights: CUDA float64 against CPU float64, and the float32
  results of both devices against the CPU's float64.

``python experiments/bench_gpu.py [--iters 50 200] [--repeats 3]``. The numbers of
docs/performance.md ("GPU") were measured on a lent H200 by a scratch predecessor with the same
jobs and measurements; this script itself has run on the CPU with a stand-in GPU only.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import common  # noqa: E402
import hifm  # noqa: E402
from hifm import backend  # noqa: E402


def jobs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(infrared, visible) float32 luminance pairs: the TNO sample pair 05 as the solver sees it
    (:func:`common.luminance`), its 256² crop enlarged 4× (1024²), and uniform noise at 2048²."""
    ir, vi = common.luminance(common.load_dataset("tno-samples", names=["05"])[0], "float32")
    up = np.ones((4, 4), np.float32)
    rng = np.random.default_rng(0)
    return {
        f"TNO 05 ({ir.shape[0]}×{ir.shape[1]})": (ir, vi),
        "1024×1024 (TNO crop ×4)": (np.kron(ir[:256, :256], up), np.kron(vi[:256, :256], up)),
        "2048×2048 (noise)": (rng.random((2048, 2048), dtype=np.float32), rng.random((2048, 2048), dtype=np.float32)),
    }


def best_time(run: Callable[[], Any], repeats: int, sync: Callable[[], None]) -> tuple[Any, float]:
    """(result, best seconds of ``repeats`` runs after one warm-up run)."""
    out = run()
    best = float("inf")
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        out = run()
        sync()
        best = min(best, time.perf_counter() - t0)
    return out, best


def max_diff(x: Any, y: Any) -> float:
    """Largest absolute difference of two results (NumPy or CuPy), in float64."""
    return float(np.abs(backend.to_numpy(x).astype(np.float64) - backend.to_numpy(y).astype(np.float64)).max())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iters", type=int, nargs="+", default=[50, 200], help="solver iterations to time")
    p.add_argument("--repeats", type=int, default=3, help="timed GPU runs after the warm-up (best is kept)")
    args = p.parse_args(argv)
    if "cupy" not in backend.available_backends():
        print("bench_gpu: needs CuPy and a CUDA GPU (pip install -e \".[gpu]\"); none usable here", file=sys.stderr)
        return 2
    import cupy

    sync = cupy.cuda.Device().synchronize
    timing, values = [], []
    pairs = jobs()
    for name, (ir, vi) in pairs.items():
        for iters in args.iters:
            cpu, t_cpu = best_time(lambda: hifm.solve(ir, vi, iters=iters, backend="numpy"), 1, sync)
            gpu, t_gpu = best_time(lambda: hifm.solve(ir, vi, iters=iters, backend="cupy"), args.repeats, sync)
            timing.append([f"hifm.solve, {name}, {iters} it.", t_cpu, t_gpu, t_cpu / t_gpu])
            if iters == args.iters[0]:
                ref = hifm.solve(ir, vi, iters=iters, dtype="float64", backend="numpy")
                g64 = hifm.solve(ir, vi, iters=iters, dtype="float64", backend="cupy")
                values.append([f"hifm.solve, {name}, {iters} it.", max_diff(g64, ref), max_diff(cpu, ref), max_diff(gpu, ref)])
    try:
        import torch

        from unrolled.inference import fuse_derun
    except ImportError as exc:
        print(f"(DeRUN skipped: {exc})")
    else:
        if torch.cuda.is_available():
            for name, (ir, vi) in list(pairs.items())[:2]:
                cpu, t_cpu = best_time(lambda: fuse_derun(ir, vi, task="ivf", device="cpu"), 1, sync)
                gpu, t_gpu = best_time(lambda: fuse_derun(ir, vi, task="ivf", device="cuda"), args.repeats, sync)
                timing.append([f"DeRUN ivf, {name} (CPU: {torch.get_num_threads()} threads)", t_cpu, t_gpu, t_cpu / t_gpu])
                ref = fuse_derun(ir, vi, task="ivf", device="cpu", dtype="float64")
                g64 = fuse_derun(ir, vi, task="ivf", device="cuda", dtype="float64")
                values.append([f"DeRUN ivf, {name}", max_diff(g64, ref), max_diff(cpu, ref), max_diff(gpu, ref)])
    print(common.markdown_table(["job (float32)", "CPU s", "GPU s", "CPU / GPU"], timing, digits=[0, 3, 4, 1]))
    print()
    print(common.markdown_table(["job", "GPU float64 − CPU float64", "CPU float32 − CPU float64", "GPU float32 − CPU float64"],
                         values, digits=[0, 2, 2, 2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

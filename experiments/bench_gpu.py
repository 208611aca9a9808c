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

``python experiments/bench_gpu.py [--iters 50 200] [--repeats 3]``; the numbers of
docs/performance.md ("GPU") were measured with its first version on a lent H200.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hifm  # noqa: E402
from hifm.io import read_image  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def gpu_missing() -> str | None:
    """Why this script cannot run here, or None."""
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            return None
        return "CuPy sees no CUDA GPU"
    except Exception as exc:  # noqa: BLE001 - any import or driver failure means no GPU here
        return f"CuPy with a CUDA GPU is needed ({type(exc).__name__}: {' '.join(str(exc).split())})"


def _gray(path: Path) -> np.ndarray:
    x = read_image(path)
    x = x.mean(axis=-1) if x.ndim == 3 else x
    return (x / 255.0).astype(np.float32)


def jobs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(infrared, visible) float32 pairs: the TNO sample pair 05, its 256² crop enlarged 4× (1024²),
    and uniform noise at 2048²."""
    ir = _gray(REPO / "samples" / "tno" / "ir" / "05.png")
    vi = _gray(REPO / "samples" / "tno" / "vi" / "05.png")
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
    import cupy

    def host(a: Any) -> np.ndarray:
        return np.asarray(cupy.asnumpy(a) if isinstance(a, cupy.ndarray) else a, dtype=np.float64)

    return float(np.abs(host(x) - host(y)).max())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iters", type=int, nargs="+", default=[50, 200], help="solver iterations to time")
    p.add_argument("--repeats", type=int, default=3, help="timed GPU runs after the warm-up (best is kept)")
    args = p.parse_args(argv)
    why = gpu_missing()
    if why is not None:
        print(f"bench_gpu: {why}", file=sys.stderr)
        return 2
    import cupy

    sync = cupy.cuda.Device().synchronize
    timing, values = [], []
    for name, (ir, vi) in jobs().items():
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
            for name, (ir, vi) in list(jobs().items())[:2]:
                cpu, t_cpu = best_time(lambda: fuse_derun(ir, vi, task="ivf", device="cpu"), 1, sync)
                gpu, t_gpu = best_time(lambda: fuse_derun(ir, vi, task="ivf", device="cuda"), args.repeats, sync)
                timing.append([f"DeRUN ivf, {name} (CPU: {torch.get_num_threads()} threads)", t_cpu, t_gpu, t_cpu / t_gpu])
                ref = fuse_derun(ir, vi, task="ivf", device="cpu", dtype="float64")
                g64 = fuse_derun(ir, vi, task="ivf", device="cuda", dtype="float64")
                values.append([f"DeRUN ivf, {name}", max_diff(g64, ref), max_diff(cpu, ref), max_diff(gpu, ref)])
    from common import markdown_table

    print(markdown_table(["job (float32)", "CPU s", "GPU s", "CPU / GPU"], timing, digits=[0, 3, 4, 1]))
    print()
    print(markdown_table(["job", "GPU float64 − CPU float64", "CPU float32 − CPU float64", "GPU float32 − CPU float64"],
                         values, digits=[0, 2, 2, 2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

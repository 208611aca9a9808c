"""Benchmark of hifm.metrics: time per metric and in total, one thread.

    python experiments/bench_metrics.py [--repeats 3] [--set-methods 5 | --full-set]

Part 1: one 640×480 triple (labMan/ADF of shared/data/vifb-dev, or a synthetic scene when the
data are absent), each metric alone (fresh intermediates) and all metrics in one
``evaluate`` call (shared intermediates), for the ``gray`` and ``vifb`` protocols; median of
``--repeats`` runs, wall-clock and CPU time.
Part 2: the vifb-dev set (6 images × the first ``--set-methods`` methods, or all 25 with
``--full-set``), ``vifb`` protocol: per metric alone, summed over the set, and the total of one
``evaluate`` call per triple; one run.

Threads are limited to one (environment variables before NumPy is imported, and
threadpoolctl when installed); Numba's JIT cache is warmed first.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hifm.metrics import REGISTRY, evaluate  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "vifb-dev"


def _limit_threads() -> str:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return "env vars"
    threadpool_limits(1)
    return "env vars + threadpoolctl"


def _read(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im)


def _triple() -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], str]:
    if (DATA / "vi" / "labMan.jpg").is_file():
        return ((_read(DATA / "fused" / "ADF" / "labMan.jpg"), _read(DATA / "vi" / "labMan.jpg"),
                 _read(DATA / "ir" / "labMan.jpg")), "vifb-dev labMan/ADF (480×640)")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:480, 0:640]
    base = 128 + 60 * np.sin(xx / 17.0) * np.cos(yy / 23.0)
    ir = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    vis = np.clip(base[..., None] * [0.8, 1.0, 1.1] + rng.normal(0, 15, (480, 640, 3)), 0,
                  255).astype(np.uint8)
    fused = ((vis.astype(float) + ir[..., None]) / 2).astype(np.uint8)
    return (fused, vis, ir), "synthetic 480×640"


def _timed(fn) -> tuple[float, float]:  # noqa: ANN001
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def _median(fn, repeats: int) -> tuple[float, float]:  # noqa: ANN001
    runs = [_timed(fn) for _ in range(repeats)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def bench_triple(repeats: int) -> None:
    (f, a, b), label = _triple()
    names = list(REGISTRY)
    res: dict[str, dict[str, tuple[float, float]]] = {}
    for protocol in ("gray", "vifb"):
        res[protocol] = {}
        for n in names:
            res[protocol][n] = _median(
                lambda n=n: evaluate(f, a, b, metrics=[n], protocol=protocol), repeats)
        res[protocol]["TOTAL"] = _median(lambda: evaluate(f, a, b, protocol=protocol), repeats)
    print(f"\n### One triple: {label}, median of {repeats} runs, seconds (wall / CPU)\n")
    print("| metric | gray | vifb |")
    print("|---|---:|---:|")
    for n in names + ["TOTAL"]:
        g, v = res["gray"][n], res["vifb"][n]
        label_n = "**all metrics, one evaluate call**" if n == "TOTAL" else n
        print(f"| {label_n} | {g[0]:.3f} / {g[1]:.3f} | {v[0]:.3f} / {v[1]:.3f} |")
    print(f"\nSum of the metrics run alone: gray {sum(res['gray'][n][0] for n in names):.2f} s, "
          f"vifb {sum(res['vifb'][n][0] for n in names):.2f} s (wall).")


def bench_set(n_methods: int | None) -> None:
    if not (DATA / "reference_metrics.csv").is_file():
        print(f"\n(vifb-dev set not found at {DATA}; part 2 skipped)")
        return
    methods = sorted(p.name for p in (DATA / "fused").iterdir() if p.is_dir())
    if n_methods is not None:
        methods = methods[:n_methods]
    images = sorted(p.stem for p in (DATA / "vi").glob("*.jpg"))
    names = list(REGISTRY)
    per = {n: [0.0, 0.0] for n in names}
    total = [0.0, 0.0]
    pixels = 0
    for img in images:
        a, b = _read(DATA / "vi" / f"{img}.jpg"), _read(DATA / "ir" / f"{img}.jpg")
        for m in methods:
            f = _read(DATA / "fused" / m / f"{img}.jpg")
            pixels += f.shape[0] * f.shape[1]
            for n in names:
                w, c = _timed(lambda n=n: evaluate(f, a, b, metrics=[n], protocol="vifb"))
                per[n][0] += w
                per[n][1] += c
            w, c = _timed(lambda: evaluate(f, a, b, protocol="vifb"))
            total[0] += w
            total[1] += c
    k = len(images) * len(methods)
    print(f"\n### vifb-dev set: {len(images)} images × {len(methods)} methods = {k} triples "
          f"({pixels / k / 1e3:.0f} kpixels on average), vifb protocol, one run, "
          "seconds (wall / CPU)\n")
    print("| metric | whole set | per triple |")
    print("|---|---:|---:|")
    for n in names:
        print(f"| {n} | {per[n][0]:.2f} / {per[n][1]:.2f} | {per[n][0] / k:.3f} / "
              f"{per[n][1] / k:.3f} |")
    print(f"| **all metrics, one evaluate call per triple** | {total[0]:.1f} / {total[1]:.1f} "
          f"| {total[0] / k:.2f} / {total[1] / k:.2f} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--set-methods", type=int, default=5,
                   help="methods of the vifb-dev set to run (alphabetical; default 5)")
    p.add_argument("--full-set", action="store_true", help="all 25 methods (150 triples)")
    p.add_argument("--skip-set", action="store_true", help="only the single triple")
    args = p.parse_args(argv)
    how = _limit_threads()
    print(f"hifm.metrics benchmark; Python {platform.python_version()}, NumPy {np.__version__}, "
          f"{platform.machine()}, {os.cpu_count()} CPUs visible, threads limited by {how}.")
    (f, a, b), _ = _triple()
    evaluate(f[:120, :120], a[:120, :120], b[:120, :120])  # JIT cache load / compile
    bench_triple(args.repeats)
    if not args.skip_set:
        bench_set(None if args.full_set else args.set_methods)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Time per triple of the ``vifb`` evaluation protocol (all metrics), one thread: the cost of ``hifm eval``.

    python experiments/bench_eval.py [--repeats 3] [--method ADF] [--synthetic]

Triples: the six VIFB development images (``$HIFM_DATA/vifb-dev``, fused by ``--method``), or,
without that set or with ``--synthetic``, three synthetic colour triples of 480×640.  For each
triple one ``hifm.metrics.evaluate(fused, visible, infrared, protocol="vifb")`` call with every
metric, the median over ``--repeats`` runs of wall-clock and CPU time (``time.process_time``).
Threads are limited to one before NumPy is imported; Numba's compiled code is loaded first.
The first lines say which ``hifm`` was imported, so two code versions can be compared by running
the script with ``PYTHONPATH`` pointing at the other one.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
VIFB = Path(os.environ.get("HIFM_DATA", REPO.parent / "shared" / "data")) / "vifb-dev"


def _read(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im)


def triples(method: str, synthetic: bool) -> list[tuple[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """(label, (fused, visible, infrared)) for each triple."""
    if not synthetic and (VIFB / "fused" / method).is_dir():
        out = []
        for vis in sorted((VIFB / "vi").glob("*.jpg")):
            out.append((f"{vis.stem}/{method}", (_read(VIFB / "fused" / method / vis.name), _read(vis),
                                                 _read(VIFB / "ir" / vis.name))))
        return out
    from hifm.synthetic import synthetic_pair

    out = []
    rng = np.random.default_rng(0)
    for seed in range(3):
        ir, vis = synthetic_pair(480, 640, seed=seed, noise=0.02)
        colour = np.clip(vis[..., None] * rng.uniform(0.7, 1.2, 3), 0, 1)
        fused = np.clip(0.5 * colour + 0.5 * ir[..., None], 0, 1)
        u8 = [np.rint(255 * x).astype(np.uint8) for x in (fused, colour, ir)]
        out.append((f"synthetic {seed}", tuple(u8)))
    return out


def _git_commit(path: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip() or "?"
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--method", default="ADF", help="VIFB method whose fused images are evaluated (default ADF)")
    p.add_argument("--synthetic", action="store_true", help="synthetic triples even when VIFB-dev is present")
    args = p.parse_args(argv)
    import hifm
    from hifm.metrics import evaluate

    code = Path(hifm.__file__).resolve().parents[1]
    print(f"hifm from {code} (commit {_git_commit(code)}); NumPy {np.__version__}; one thread; "
          f"median of {args.repeats} run(s)\n")
    data = triples(args.method, args.synthetic)
    f, a, b = data[0][1]
    evaluate(f[:128, :128], a[:128, :128], b[:128, :128])  # load or compile the Numba code
    print("| triple | size | wall s | CPU s |")
    print("|---|---|---:|---:|")
    walls, cpus, pixels = [], [], 0
    for label, (f, a, b) in data:
        runs = []
        for _ in range(args.repeats):
            w0, c0 = time.perf_counter(), time.process_time()
            evaluate(f, a, b, protocol="vifb")
            runs.append((time.perf_counter() - w0, time.process_time() - c0))
        wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        walls.append(wall)
        cpus.append(cpu)
        pixels += f.shape[0] * f.shape[1]
        print(f"| {label} | {f.shape[0]}×{f.shape[1]} | {wall:.2f} | {cpu:.2f} |", flush=True)
    print(f"| **mean per triple** | {pixels / len(data) / 1e3:.0f} kpx | **{np.mean(walls):.2f}** | "
          f"**{np.mean(cpus):.2f}** |")
    print(f"\nCPU per megapixel: {sum(cpus) / (pixels / 1e6):.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

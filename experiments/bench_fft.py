"""FFT-size and FFT-library study for the Y-step (DESIGN §2.1, §12).

An iteration of ``hifm.solve`` costs one ``rfft2`` + ``irfft2`` pair at the padded size plus one
pass of the element-wise kernel, and the pair is 75–80 % of it. This script measures the pair,
one thread, on the padded size the solver uses (``hifm.solver.padded_shape``), on the unpadded
image, and on the other 7-smooth sizes just above the padded minimum, for every FFT library
installed (scipy.fft, numpy.fft, torch.fft, pyFFTW), and prints:

* the median and the best of ``--repeats`` interleaved rounds (ms per pair);
* ``200 × best``: the FFT alone of a 200-iteration solve, against the 0.5 s target of §12.

    python experiments/bench_fft.py                      # 480×640, float32
    python experiments/bench_fft.py --sizes 480x640 768x1024 --dtype float64
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import scipy.fft  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hifm.params import HIFMParams  # noqa: E402
from hifm.solver import padded_shape  # noqa: E402

Pair = Callable[[], object]


def smooth_sizes(lo: int, count: int, primes: tuple[int, ...] = (2, 3, 5, 7)) -> list[int]:
    """The ``count`` smallest integers ≥ ``lo`` with no prime factor outside ``primes``."""
    out, n = [], lo
    while len(out) < count:
        m = n
        for p in primes:
            while m % p == 0:
                m //= p
        if m == 1:
            out.append(n)
        n += 1
    return out


def pair_makers(dtype: np.dtype) -> dict[str, Callable[[np.ndarray], Pair]]:
    """For each installed library, a function that prepares one rfft2 + irfft2 pair on ``x``."""
    makers: dict[str, Callable[[np.ndarray], Pair]] = {
        "scipy": lambda x: lambda: scipy.fft.irfft2(scipy.fft.rfft2(x, workers=1), s=x.shape, workers=1),
        "numpy": lambda x: lambda: np.fft.irfft2(np.fft.rfft2(x), s=x.shape),
    }
    try:
        import torch

        torch.set_num_threads(1)

        def torch_pair(x: np.ndarray) -> Pair:
            t = torch.from_numpy(x)
            return lambda: torch.fft.irfft2(torch.fft.rfft2(t), s=x.shape)

        makers["torch"] = torch_pair
    except ImportError:
        pass
    try:
        import pyfftw

        def fftw_pair(x: np.ndarray) -> Pair:
            src = pyfftw.empty_aligned(x.shape, dtype=x.dtype)
            src[:] = x
            cdtype = np.result_type(x.dtype, np.complex64)
            spec = pyfftw.empty_aligned((x.shape[0], x.shape[1] // 2 + 1), dtype=cdtype)
            dst = pyfftw.empty_aligned(x.shape, dtype=x.dtype)
            fwd = pyfftw.FFTW(src, spec, axes=(0, 1), flags=("FFTW_MEASURE",), threads=1)
            bwd = pyfftw.FFTW(spec, dst, axes=(0, 1), direction="FFTW_BACKWARD",
                              flags=("FFTW_MEASURE", "FFTW_DESTROY_INPUT"), threads=1)
            src[:] = x  # planning with FFTW_MEASURE overwrites the arrays
            return lambda: (fwd(), bwd())

        makers["pyfftw"] = fftw_pair
    except ImportError:
        pass
    return makers


def candidates(shape: tuple[int, int], per_axis: int) -> list[tuple[tuple[int, int], str]]:
    """(padded size, label): the solver's choice, the unpadded image, and nearby 7-smooth sizes."""
    margin = HIFMParams().margin
    chosen = padded_shape(shape, margin)
    out = [(chosen, "solver"), (shape, "unpadded")]
    rows = smooth_sizes(shape[0] + 2 * margin, per_axis)
    cols = smooth_sizes(shape[1] + 2 * margin, per_axis)
    for r in rows:
        for c in cols:
            if (r, c) != chosen:
                out.append(((r, c), ""))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["480x640"], help="image sizes HxW")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--repeats", type=int, default=7, help="interleaved rounds (median and best reported)")
    ap.add_argument("--per-axis", type=int, default=3, help="7-smooth candidates per axis")
    ap.add_argument("--budget-ms", type=float, default=200.0, help="work per timed round (ms), sets the inner loop")
    args = ap.parse_args(argv)
    dtype = np.dtype(args.dtype)
    makers = pair_makers(dtype)
    rng = np.random.default_rng(0)
    print(f"libraries: {', '.join(makers)} | dtype {dtype} | one thread | load average "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print()
    print("| image | FFT size | library | median ms | best ms | 200 × best s |")
    print("|---|---|---|---:|---:|---:|")
    for text in args.sizes:
        shape = tuple(int(v) for v in text.lower().split("x"))
        rows = []
        for size, label in candidates(shape, args.per_axis):  # type: ignore[arg-type]
            x = rng.random(size).astype(dtype)
            for lib, make in makers.items():
                fn = make(x)
                fn()
                t0 = time.perf_counter()
                fn()
                inner = max(1, int(args.budget_ms / 1e3 / max(time.perf_counter() - t0, 1e-6)))
                rows.append([shape, size, label, lib, fn, inner, []])
        for _ in range(args.repeats):  # interleaved: the machine's load hits every row alike
            for row in rows:
                fn, inner = row[4], row[5]
                t0 = time.perf_counter()
                for _ in range(inner):
                    fn()
                row[6].append((time.perf_counter() - t0) / inner)
        rows.sort(key=lambda r: min(r[6]))
        for shape_, size, label, lib, _, _, times in rows:
            name = f"{size[0]}×{size[1]}" + (f" ({label})" if label else "")
            print(f"| {shape_[0]}×{shape_[1]} | {name} | {lib} | {statistics.median(times) * 1e3:.2f} | "
                  f"{min(times) * 1e3:.2f} | {200 * min(times):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

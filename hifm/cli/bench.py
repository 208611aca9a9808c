"""Solver benchmark (``hifm bench``, ``experiments/bench_solver.py``): prints a Markdown table.

For each size and dtype: the anchor alone, ``hifm.solve`` (200 iterations, no
monitoring) and, in the same run, a plain NumPy transcription of the ADMM (the
baseline kept here, :func:`plain_admm`) and the machine's floor estimate: one
``rfft2`` + ``irfft2`` pair plus the bytes one iteration must move (read Y, M,
the two planes of the gradient target T and the six state arrays F, H, G; write
the state and Ens: 17 planes) over the measured memory bandwidth.  ``iter/floor``
is (solve − anchor) / floor: the iterations against the floor.  Timings are medians over ``--repeats`` runs on one thread; peak
memory is the largest NumPy allocation total seen by :mod:`tracemalloc`
during the solve.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from typing import Any, Callable, Sequence

import numpy as np
import scipy.fft

__all__ = ["plain_admm", "main", "add_parser", "run"]


def plain_admm(m: np.ndarray, iters: int, lam: float, rho: float, tau: float, mu: float, theta: float,
               sources: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """A direct NumPy transcription of the ADMM of docs/model.md (∂x, ∂y banks, soft threshold, η = ω = 1).

    Written the obvious way (``np.roll``, temporaries, ``scipy.fft``) on the same
    reflectively padded domain as the solver; the baseline of the benchmark.  With ``sources``
    the gradient target is the source-driven one (docs/model.md), else T = ∇M.
    """
    from ..ops import source_target
    from ..filters import differences
    from ..params import HIFMParams
    from ..solver import pad_reflect, padded_shape

    h0, w0 = m.shape
    margin = HIFMParams().margin
    pshape = padded_shape(m.shape, margin)
    m = np.ascontiguousarray(pad_reflect(m, margin, pshape))
    def dx(x):
        return np.roll(x, -1, 1) - x

    def dy(x):
        return np.roll(x, -1, 0) - x

    def dxt(x):
        return np.roll(x, 1, 1) - x

    def dyt(x):
        return np.roll(x, 1, 0) - x

    h, w = m.shape
    kx = np.zeros((h, w), m.dtype)
    kx[0, 0], kx[0, -1] = -1, 1
    ky = np.zeros((h, w), m.dtype)
    ky[0, 0], ky[-1, 0] = -1, 1
    # |K̂|² of the forward differences (adjoint kernels; same magnitude)
    power = np.abs(scipy.fft.rfft2(kx)) ** 2 + np.abs(scipy.fft.rfft2(ky)) ** 2
    denom = (1 + (rho + tau) * power).astype(m.dtype)
    sigma = 1.0 / (tau + 2 * mu * theta)
    t = lam / rho
    ex, ey = dx(m), dy(m)
    fx, fy = np.zeros_like(m), np.zeros_like(m)
    gx, gy = np.zeros_like(m), np.zeros_like(m)
    if sources is None:
        mx, my = dx(m), dy(m)
    else:
        pa, pb = (pad_reflect(x.astype(m.dtype), margin, pshape) for x in sources)
        mx, my = source_target(pa, pb, differences().kernels.astype(m.dtype))
    hx, hy = dx(m) - mx, dy(m) - my  # H⁰ = ∇M − T
    y = m
    for _ in range(iters):
        ens = m + tau * (dxt(mx + hx - gx) + dyt(my + hy - gy)) + rho * (dxt(ex - fx) + dyt(ey - fy))
        y = scipy.fft.irfft2(scipy.fft.rfft2(ens) / denom, s=m.shape).astype(m.dtype)
        yx, yy = dx(y), dy(y)
        ex = np.sign(yx + fx) * np.maximum(np.abs(yx + fx) - t, 0)
        ey = np.sign(yy + fy) * np.maximum(np.abs(yy + fy) - t, 0)
        fx = fx + (yx - ex)
        fy = fy + (yy - ey)
        dxm, dym = yx - mx, yy - my
        hx = hx - sigma * (-tau * (dxm - hx + gx) + mu * 2 * theta * hx / (1 + theta * hx**2))
        hy = hy - sigma * (-tau * (dym - hy + gy) + mu * 2 * theta * hy / (1 + theta * hy**2))
        gx = gx + (dxm - hx)
        gy = gy + (dym - hy)
    return y[margin : margin + h0, margin : margin + w0]


def _median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _bandwidth(n_bytes: int = 64 << 20) -> float:
    """Memory bandwidth (bytes/s) of a large copy on one thread (read + write counted)."""
    src = np.ones(n_bytes // 8)
    dst = np.empty_like(src)
    t = _median_time(lambda: np.copyto(dst, src), 5)
    return 2 * src.nbytes / t


def _floor(shape: tuple[int, int], dtype: np.dtype, iters: int, bandwidth: float) -> float:
    from ..solver import padded_shape
    from ..params import HIFMParams

    ps = padded_shape(shape, HIFMParams().margin)
    x = np.random.default_rng(0).random(ps).astype(dtype)
    with scipy.fft.set_workers(1):
        fft_t = _median_time(lambda: scipy.fft.irfft2(scipy.fft.rfft2(x), s=ps), 7)
    itemsize = np.dtype(dtype).itemsize
    # one iteration reads Y, M, T(2), F(2), H(2), G(2) and writes F, H, G, Ens: 17 planes
    mem_t = 17 * ps[0] * ps[1] * itemsize / bandwidth
    return iters * (fft_t + mem_t)


def _has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _parse_size(text: str) -> tuple[int, int]:
    h, w = text.lower().split("x")
    return int(h), int(w)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="*", default=["256x256", "480x640", "768x1024", "2048x2048"], help="HxW")
    parser.add_argument("--dtypes", nargs="*", default=["float32", "float64"])
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-plain", action="store_true", help="skip the plain transcription (slow at 2048²)")
    parser.add_argument("--fft", nargs="*", default=["scipy", "torch"], help="FFT libraries to time the solve with")
    parser.add_argument("--quick", action="store_true", help="64x64, 20 iterations, 1 repeat (smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.iters, args.repeats = ["64x64"], 20, 1

    import hifm
    from ..anchors import anchor
    from ..synthetic import synthetic_pair

    if not args.quick:
        runs = len(args.sizes) * len(args.dtypes)
        print(f"hifm bench: {runs} size/dtype combinations × {args.repeats} repeats × {args.iters} iterations, "
              f"each also with the plain transcription: several minutes (about 8 with the defaults on one core); "
              "--quick runs a few-second smoke test, --sizes 480x640 one size.", flush=True)
    bandwidth = _bandwidth()
    print(f"threads: 1 | memory bandwidth (copy): {bandwidth / 1e9:.1f} GB/s | iterations: {args.iters} | "
          f"median of {args.repeats} | numpy {np.__version__}, scipy {scipy.__version__}")
    print()
    libs = [lib for lib in args.fft if lib == "scipy" or _has_torch()]
    print("| size | dtype | FFT | anchor ms | solve s | ms/iter | floor s | solve/floor | iter/floor | plain s | plain/solve "
          "| peak MiB |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        shape = _parse_size(size)
        ir, vis = synthetic_pair(*shape, seed=0, noise=0.03)
        for dt in args.dtypes:
            a, b = ir.astype(dt), vis.astype(dt)
            hifm.solve(a[:32, :32], b[:32, :32], iters=2, dtype=dt)  # compile/warm up
            t_anchor = _median_time(lambda: anchor(a, b), args.repeats)
            t_solve = {}
            for lib in libs:
                os.environ["HIFM_FFT"] = lib
                # the sources' TV denoising (a separate solve on noisy inputs, before the ADMM) is not
                # timed: the floor and the plain transcription count the ADMM iterations only
                t_solve[lib] = _median_time(lambda: hifm.solve(a, b, iters=args.iters, dtype=dt, workers=1,
                                                               denoise_sources=False), args.repeats)
            os.environ.pop("HIFM_FFT", None)
            tracemalloc.start()
            hifm.solve(a, b, iters=2, dtype=dt)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            floor = _floor(shape, np.dtype(dt), args.iters, bandwidth)
            m = anchor(a, b)
            if args.no_plain or shape[0] * shape[1] > 1_500_000:
                plain = float("nan")
            else:  # the same model and values as the solve: its λ, μ_eff and the source target
                _, info = hifm.solve(a, b, iters=1, dtype=dt, return_info=True, denoise_sources=False)
                pr = info.params
                with scipy.fft.set_workers(1):
                    plain = _median_time(lambda: plain_admm(m, args.iters, info.lam, pr.rho, pr.tau, info.mu, pr.theta,
                                                            sources=(a, b)), args.repeats)
            for lib, ts in t_solve.items():
                plain_cells = "– | –" if np.isnan(plain) else f"{plain:.3f} | {plain / ts:.1f}"
                print(f"| {shape[0]}×{shape[1]} | {dt} | {lib} | {1e3 * t_anchor:.1f} | {ts:.3f} | "
                      f"{1e3 * ts / args.iters:.2f} | {floor:.3f} | {ts / floor:.2f} | {(ts - t_anchor) / floor:.2f} | "
                      f"{plain_cells} | {peak / 2**20:.0f} |", flush=True)
    print("\niter/floor: (solve − anchor) / floor, the iterations' share against the floor (it still counts the "
          "set-up after the anchor: the gradient target, padding, the noise estimate).")
    print("\n–: the plain transcription is not run above 1.5 Mpx (minutes per repeat) or with --no-plain. "
          "The solve runs with denoise_sources=False (the synthetic visible image is noisy: its TV denoising, "
          "a separate 40-iteration solve per noisy source, is not part of the ADMM the floor counts).")
    return 0


# ------------------------------------------------------------------ hifm bench
def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``bench`` sub-command (a subset of :func:`main`'s options)."""
    p = subparsers.add_parser("bench", help="benchmark the solver (prints a table)",
                              description="Time the anchor and the ADMM solver at several sizes against a plain NumPy "
                                          "transcription and the machine's floor estimate.")
    p.add_argument("--sizes", nargs="*", help="sizes as HxW (default: 256x256 480x640 768x1024 2048x2048)")
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="small sizes and few iterations (a smoke test)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``hifm bench`` from parsed arguments (through :func:`main`)."""
    argv = ["--sizes", *args.sizes] if args.sizes else []
    argv += ["--repeats", str(args.repeats), "--iters", str(args.iters)]
    if args.quick:
        argv.append("--quick")
    return main(argv)


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())

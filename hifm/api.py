"""The public one-call API: :func:`solve` (the HIFM model) and :func:`fuse` (any method).

Inputs are NumPy or CuPy arrays, gray ``H×W`` or colour ``H×W×3`` (RGBA: alpha
dropped), uint8/uint16/float in [0, 1]; the first is the infrared (or MRI)
image A, the second the visible (or CT/PET/SPECT) image B.  The output has the
layout of the inputs: colour when a source is colour (its chroma is kept,
§5), the integer dtype of the inputs (the wider of two), or float in [0, 1].
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import backend as hifm_backend
from .anchors import DEFAULT_ANCHOR
from .anchors import anchor as make_anchor
from .chroma import denoise_chroma
from .errors import InputError
from .params import HIFMParams, ResolvedParams
from .solver import History, HIFMSolver
from .noise import noise_level
from .sources import prepare_sources, restore_layout

__all__ = ["solve", "fuse", "SolveInfo", "estimate_noise", "METHODS"]

METHODS = ("anchor", "hifm", "derun")


@dataclass
class SolveInfo:
    """What :func:`solve` did: the per-iteration history and the values it used."""

    history: History
    params: HIFMParams
    lam: float
    threshold: float
    sigma_noise: float
    iterations: int
    seconds: float
    engine: str
    fft: str | None
    anchor: Any = field(repr=False, default=None)
    mu: float = 0.0
    chroma: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "history": self.history.as_dict(),
            "params": self.params.as_dict(),
            "lam": self.lam,
            "threshold": self.threshold,
            "sigma_noise": self.sigma_noise,
            "iterations": self.iterations,
            "seconds": self.seconds,
            "engine": self.engine,
            "fft": self.fft,
            "mu": self.mu,
            "chroma": None if self.chroma is None else {"sigma": list(self.chroma.sigma), "lam": list(self.chroma.lam)},
        }


def estimate_noise(image: Any) -> float:
    """σ̂ of additive Gaussian noise in a luminance image in [0, 1] (:func:`hifm.noise.estimate_noise`)."""
    from .noise import estimate_noise as _estimate

    return float(_estimate(image))


def _to_backend(x: Any, name: str) -> Any:
    if name == "auto":
        return x
    if name == "numpy":
        return hifm_backend.to_numpy(x)
    if name == "cupy":
        import cupy

        return cupy.asarray(x)
    raise InputError(f"unknown backend {name!r}; choose auto, numpy or cupy")


def solve(
    ir: Any,
    vis: Any,
    iters: int = 200,
    *,
    params: HIFMParams | None = None,
    return_info: bool = False,
    backend: str = "auto",
    engine: str = "auto",
    callback: Callable[[HIFMSolver], None] | None = None,
    **param_overrides: Any,
) -> Any:
    """Fuse two images with the HIFM model (S1), solved by the ADMM of §2.1.

    Args:
        ir, vis: the sources (see the module docstring).
        iters: ADMM iterations (fewer when ``tol`` stops earlier).
        params: a :class:`HIFMParams`; keyword arguments override its fields
            (``hifm.solve(a, b, mu=0.01, theta=50)``).
        return_info: also return a :class:`SolveInfo` with the per-iteration history.
        backend: ``"auto"`` (the inputs' array library), ``"numpy"`` or ``"cupy"``.
        engine: ``"auto"``, ``"fused"`` (NumPy only) or ``"reference"``.
        callback: called with the solver after every iteration.

    Returns:
        The fused image, or ``(fused, info)`` with ``return_info=True``.
    """
    if not isinstance(iters, (int, np.integer)) or iters < 0:
        raise InputError(f"iters must be a non-negative integer, got {iters!r}")
    p = HIFMParams.from_kwargs(params, **param_overrides)
    give_back_numpy = backend == "cupy" and not hifm_backend.is_cupy(ir)
    ir, vis = _to_backend(ir, backend), _to_backend(vis, backend)
    prep = prepare_sources(ir, vis, p.dtype)
    chroma_report = None
    if prep.chroma is not None and p.chroma_denoise:
        prep.chroma, chroma_report = denoise_chroma(prep.chroma, p)
    m = make_anchor(prep.a, prep.b, p.anchor)
    sigma = noise_level(prep.a, prep.b, m, p.noise_from) if p.lam is None else 0.0
    resolved: ResolvedParams = p.resolve(sigma)
    monitor = return_info or p.tol is not None
    t0 = time.perf_counter()
    solver = HIFMSolver(m, resolved, engine=engine, monitor=monitor, sources=(prep.a, prep.b))
    for _ in range(int(iters)):
        if solver.done():
            break
        solver.update()
        if callback is not None:
            callback(solver)
    y = solver.result()
    seconds = time.perf_counter() - t0
    out = restore_layout(y, prep)
    if give_back_numpy:  # the caller passed NumPy arrays and asked for the GPU: answer in NumPy
        out = hifm_backend.to_numpy(out)
    if not return_info:
        return out
    info = SolveInfo(
        history=solver.history, params=p, lam=resolved.lam, threshold=resolved.threshold, sigma_noise=sigma,
        iterations=solver.iteration, seconds=seconds, engine=solver.engine,
        fft=getattr(getattr(solver, "fft", None), "library", None), anchor=m, mu=resolved.mu_eff,
        chroma=chroma_report,
    )
    return out, info


def fuse(ir: Any, vis: Any, method: str = "hifm", **options: Any) -> Any:
    """Fuse two images with ``method``: ``"anchor"`` (M only), ``"hifm"`` (:func:`solve`) or ``"derun"``.

    ``options`` go to the method: for ``anchor``, ``anchor=`` (name, callable or
    array) and ``dtype=``; for ``hifm``, everything :func:`solve` takes; for
    ``derun``, ``task=`` ("ivf"/"mif"), ``weights=`` and ``device=``.
    """
    if method == "anchor":
        unknown = set(options) - {"anchor", "dtype"}
        if unknown:
            raise InputError(f"unknown option(s) for method 'anchor': {sorted(unknown)}")
        prep = prepare_sources(ir, vis, options.get("dtype", "float32"))
        m = make_anchor(prep.a, prep.b, options.get("anchor", DEFAULT_ANCHOR))
        return restore_layout(m, prep)
    if method == "hifm":
        return solve(ir, vis, **options)
    if method == "derun":
        try:
            from unrolled.inference import fuse_derun  # type: ignore[import-not-found]
        except ImportError as exc:
            raise InputError(f"method 'derun' needs the unrolled package and torch ({exc})") from None
        return fuse_derun(ir, vis, **options)
    raise InputError(f"unknown method {method!r}; choose one of {list(METHODS)}")

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
from .anchors import ANCHORS, DEFAULT_ANCHOR
from .anchors import anchor as _anchor
from .chroma import denoise_chroma
from .denoise import tv_denoise
from .errors import InputError, OptionError
from .memory import check_memory
from .params import HIFMParams, ResolvedParams
from .solver import History, HIFMSolver
from .noise import noise_level
from .sources import prepare_sources, restore_layout

__all__ = ["solve", "fuse", "SolveInfo", "estimate_noise", "METHODS", "MAX_ITERS", "method_options"]

METHODS = ("anchor", "hifm", "derun")
MAX_ITERS = 10_000
"""Most ADMM iterations :func:`solve` runs (about a minute at 640×480 on one core; the defaults use
200). For longer studies drive :class:`hifm.solver.HIFMSolver` yourself, or pass ``tol``."""
_SOLVE_OPTIONS = ("iters", "params", "return_info", "backend", "engine", "callback")
_ANCHOR_OPTIONS = ("anchor", "dtype")
_DERUN_OPTIONS = ("task", "weights", "device", "dtype", "batch_size")


def method_options(method: str) -> tuple[str, ...]:
    """The keyword options :func:`fuse` accepts with ``method``."""
    import dataclasses

    if method == "anchor":
        return _ANCHOR_OPTIONS
    if method == "hifm":
        return _SOLVE_OPTIONS + tuple(f.name for f in dataclasses.fields(HIFMParams))
    if method == "derun":
        return _DERUN_OPTIONS
    raise InputError(f"unknown method {method!r}; choose one of {list(METHODS)}")


def _check_options(method: str, options: dict[str, Any]) -> None:
    """Refuse, in one line, every option ``method`` does not take (saying which method takes it)."""
    allowed = method_options(method)
    unknown = sorted(set(options) - set(allowed))
    if not unknown:
        return
    owners = []
    for name in unknown:
        takers = [m for m in METHODS if m != method and name in method_options(m)]
        owners.append(f"{name} ({'method ' + '/'.join(takers) + ' only' if takers else 'unknown'})")
    raise OptionError(f"option(s) {', '.join(owners)} do not apply to method '{method}'; "
                      f"it takes: {', '.join(allowed[:12])}{', ...' if len(allowed) > 12 else ''}")


def make_anchor(a: Any, b: Any, method: Any) -> Any:
    """:func:`hifm.anchors.anchor`, refusing a non-finite M (a user's callable or array) before it is used."""
    m = _anchor(a, b, method)
    xp = hifm_backend.get_xp(m)
    if not bool(xp.isfinite(m).all()):
        raise InputError("the anchor M holds NaN or infinite values (a user anchor must lie in [0, 1])")
    return m


def _shape_of(x: Any) -> tuple[int, ...]:
    shape = getattr(x, "shape", None)
    return tuple(shape) if shape is not None else tuple(np.shape(x))


def _check_job_memory(method: str, ir: Any, vis: Any, *, gpu: bool = False, **estimate: Any) -> None:
    """Refuse a job that cannot fit in memory before anything is allocated (:mod:`hifm.memory`);
    on the GPU when ``gpu`` (the solve was asked for ``backend="cupy"``) or the inputs are CuPy arrays."""
    sa, sb = _shape_of(ir), _shape_of(vis)
    if len(sa) < 2 or len(sb) < 2:
        return  # prepare_sources says what is wrong with the arrays
    shape = (max(sa[0], sb[0]), max(sa[1], sb[1]))
    colour = (len(sa) == 3 and sa[2] >= 3) or (len(sb) == 3 and sb[2] >= 3)
    on_gpu = gpu or hifm_backend.is_cupy(ir)
    check_memory(method, shape, colour=colour, device="cuda" if on_gpu else "cpu", **estimate)


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
    sources: Any = None

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
            "sources_denoise": None if self.sources is None else [{"sigma": r.sigma, "lam": r.lam} for r in self.sources],
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
        try:
            import cupy
        except ImportError:
            raise InputError("backend 'cupy' needs CuPy: pip install 'hifm[gpu]' (on a machine with a CUDA GPU)") from None

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
    if not isinstance(iters, (int, np.integer)) or isinstance(iters, bool) or not 0 <= iters <= MAX_ITERS:
        raise InputError(f"iters must be an integer in [0, {MAX_ITERS}], got {iters!r}")
    if backend not in ("auto", "numpy", "cupy"):
        raise InputError(f"unknown backend {backend!r}; choose auto, numpy or cupy")
    p = HIFMParams.from_kwargs(params, **param_overrides)
    _check_job_memory("hifm", ir, vis, dtype=p.dtype, n_filters=len(p.filters_l) + len(p.filters_k),
                      margin=p.margin, gpu=backend == "cupy")
    give_back_numpy = backend == "cupy" and not hifm_backend.is_cupy(ir)
    ir, vis = _to_backend(ir, backend), _to_backend(vis, backend)
    prep = prepare_sources(ir, vis, p.dtype)
    chroma_report = None
    if prep.chroma is not None and p.chroma_denoise:
        prep.chroma, chroma_report = denoise_chroma(prep.chroma, p)
    sources_report = None
    if p.lam is None and p.denoise_sources:
        (prep.a, rep_a), (prep.b, rep_b) = tv_denoise(prep.a, p), tv_denoise(prep.b, p)
        sources_report = (rep_a, rep_b)
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
        chroma=chroma_report, sources=sources_report,
    )
    return out, info


def fuse(ir: Any, vis: Any, method: str = "hifm", **options: Any) -> Any:
    """Fuse two images with ``method``: ``"anchor"`` (M only), ``"hifm"`` (:func:`solve`) or ``"derun"``.

    ``options`` go to the method: for ``anchor``, ``anchor=`` (name, callable or
    array) and ``dtype=``; for ``hifm``, everything :func:`solve` takes; for
    ``derun``, ``task=`` ("ivf"/"mif"), ``weights=``, ``device=``, ``dtype=`` and ``batch_size=``.
    An option the method does not take raises :class:`~hifm.errors.OptionError` (it is never
    silently ignored), as does an unknown one; a job that cannot fit in memory raises
    :class:`~hifm.errors.ResourceError` before it starts (:mod:`hifm.memory`).
    """
    _check_options(method, options)
    if method == "anchor":
        dtype = options.get("dtype", "float32")
        if dtype not in ("float32", "float64"):
            raise InputError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        name = options.get("anchor", DEFAULT_ANCHOR)
        if isinstance(name, str) and name not in ANCHORS:
            raise InputError(f"unknown anchor {name!r}; choose one of {sorted(ANCHORS)}, a callable or an array")
        _check_job_memory("anchor", ir, vis, dtype=dtype, anchor=name if isinstance(name, str) else "salient")
        prep = prepare_sources(ir, vis, dtype)
        m = make_anchor(prep.a, prep.b, name)
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

"""The ADMM solver of the HIFM model (S1) on one luminance anchor M (DESIGN §2.1).

:class:`HIFMSolver` is a small stateful algorithm in the style of sigpy
(``update()`` / ``done()``).  It runs on

* NumPy: fused Numba kernels (:mod:`hifm._fused`) plus the fastest FFT
  (:mod:`hifm.fftengine`);
* any backend (CuPy, torch, or NumPy with ``engine="reference"``): the reference
  iteration :func:`hifm.iteration.admm_step`.

Boundaries: M is padded by half-sample symmetric reflection (margin
``params.margin``, then up to a fast FFT length), solved with circular
operators, and cropped.  Most users call :func:`hifm.solve`, which also handles
sources, colour and bit depth.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.fft

from . import backend, iteration, ops
from .anchors import _mirror_index
from .errors import DivergenceError, InputError
from .params import HIFMParams, ResolvedParams
from .shrink import VALUE_MAP_STEP, soft_threshold, value_map_from_threshold, value_map_shrink

__all__ = ["History", "HIFMSolver", "pad_reflect", "padded_shape", "DIVERGENCE_BOUND", "CHECK_EVERY"]

DIVERGENCE_BOUND = 10.0
"""Yⁿ outside [−B, 1 + B] means the ADMM diverged (sources and M lie in [0, 1]; converging runs
stay within a few hundredths of [0, 1], a diverging one grows geometrically)."""
CHECK_EVERY = 10
"""Iterations between two checks of Yⁿ (a min and a max: about 2 % of an iteration's memory traffic)."""
ENGINES = ("auto", "fused", "reference")


@dataclass
class History:
    """Per-iteration monitoring of §2.1 (lists indexed by iteration, starting at 1).

    objective: J(Yⁿ) of (S1) with ψ = |·|, summed over the padded domain, divided by its pixel count.
    residual_l: RMS per pixel of ∇_l Yⁿ − E_lⁿ; residual_k: RMS of ∇_k Yⁿ − T_k − H_kⁿ.
    rel_change: ‖Yⁿ − Yⁿ⁻¹‖ / ‖Yⁿ⁻¹‖.  time: seconds since the start of the iterations.
    """

    objective: list[float] = field(default_factory=list)
    residual_l: list[float] = field(default_factory=list)
    residual_k: list[float] = field(default_factory=list)
    rel_change: list[float] = field(default_factory=list)
    time: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in self.__dict__.items()}


def padded_shape(shape: tuple[int, int], margin: int) -> tuple[int, int]:
    """Size after a margin on each side, rounded up to a fast real-FFT length."""
    return tuple(scipy.fft.next_fast_len(n + 2 * margin, real=True) for n in shape)  # type: ignore[return-value]


def pad_reflect(x: Any, margin: int, shape: tuple[int, int]) -> Any:
    """Half-sample symmetric extension of ``x (H, W)`` by ``margin`` before and up to ``shape``."""
    out = x
    for axis, n_out in zip((-2, -1), shape):
        n = x.shape[axis]
        idx = _mirror_index(n, max(margin, n_out))[max(margin, n_out) - margin :][:n_out]
        out = backend.take(out, idx, axis)
    return out


class HIFMSolver:
    """ADMM iterations of §2.1 for a 2-D anchor ``m`` in [0, 1].

    Args:
        m: the anchor M, ``(H, W)``, float32/float64 (NumPy, CuPy or torch).
        resolved: parameters with λ fixed (:meth:`HIFMParams.resolve`).
        engine: ``"auto"`` (fused kernels for NumPy, reference otherwise), ``"fused"`` or ``"reference"``.
        monitor: record :class:`History` at every iteration (costs one extra read of Y).
        sources: the luminance sources (A, B) of M, ``(H, W)`` each; needed for the
            source-driven gradient target (``params.target == "sources"``), which is computed
            on the padded domain (:func:`hifm.ops.gradient_target`).
    """

    def __init__(self, m: Any, resolved: ResolvedParams, engine: str = "auto", monitor: bool = True,
                 sources: tuple[Any, Any] | None = None):
        p: HIFMParams = resolved.params
        self.params, self.resolved = p, resolved
        self.xp = backend.get_xp(m)
        is_numpy = self.xp is np
        if engine not in ENGINES:
            raise InputError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
        if engine == "auto":
            engine = "fused" if is_numpy else "reference"
        if engine == "fused" and not is_numpy:
            raise ValueError("the fused engine runs on NumPy arrays only")
        self.engine = engine
        self.monitor = monitor
        self.shape = tuple(m.shape)
        self.margin = p.margin
        self.pshape = padded_shape(self.shape, self.margin)
        self.m = pad_reflect(m, self.margin, self.pshape)
        if is_numpy:
            self.m = np.ascontiguousarray(self.m)
        # With μ_eff = 0 the iterates do not depend on T (substitute H' = H + T): no target then.
        self.uses_target = p.target != "anchor" and resolved.mu_eff != 0.0
        if self.uses_target and sources is None:
            raise ValueError(f"the gradient target {p.target!r} needs the sources: pass sources=(A, B)")
        if sources is not None and any(tuple(x.shape) != self.shape for x in sources):
            raise ValueError(f"sources {[tuple(x.shape) for x in sources]} differ from the anchor's shape {self.shape}")
        self.history = History()
        self.iteration = 0
        self._t0: float | None = None
        self._stop = False
        kl, kk = p.filters_l.kernels, p.filters_k.kernels
        self.nl, self.nk = kl.shape[0], kk.shape[0]
        self.kl = backend.asarray_like(kl, self.m)
        self.kk = backend.asarray_like(kk, self.m)
        rho = np.full(self.nl, p.rho)
        tau = np.full(self.nk, p.tau)
        self.denom = ops.denominator(self.kl, rho, self.kk, tau, self.pshape)
        self.lam = np.full(self.nl, resolved.lam)
        self.threshold = np.full(self.nl, resolved.threshold)
        if p.shrink == "value_map":
            q = np.asarray(p.value_map) if p.value_map is not None else value_map_from_threshold(resolved.threshold)
            self.q = np.ascontiguousarray(np.broadcast_to(q, (self.nl, q.shape[-1])), dtype=np.float64)
        else:
            self.q = None
        self.mu = resolved.mu_eff
        self._weights = dict(
            rho=rho, eta=np.full(self.nl, p.eta), tau=tau, omega=np.full(self.nk, p.omega),
            mu=np.full(self.nk, self.mu), theta=np.full(self.nk, p.theta), sigma=np.full(self.nk, resolved.h_step_size),
        )
        # T_k on the padded domain (None: T_k = ∇_k M, which the kernels derive from M themselves)
        self.target = None
        if self.uses_target and self.nk:
            a_p, b_p = (pad_reflect(x.astype(self.m.dtype) if is_numpy else x, self.margin, self.pshape) for x in sources)
            self.target = ops.gradient_target(p.target, self.m, a_p, b_p, self.kk)
            if is_numpy:
                self.target = np.ascontiguousarray(self.target, dtype=self.m.dtype)
        if engine == "fused":
            self._init_fused()
        else:
            self._init_reference()

    # ------------------------------------------------------------------ reference
    def _init_reference(self) -> None:
        p = self.params
        if self.q is not None:
            q = backend.asarray_like(self.q, self.m)
            shrink = lambda a: value_map_shrink(a, q)  # noqa: E731
        else:
            t = ops.as_column(self.threshold, self.m)
            shrink = lambda a: soft_threshold(a, t)  # noqa: E731
        w = self._weights
        self._step_weights = iteration.StepWeights(
            rho=w["rho"], eta=w["eta"], tau=w["tau"], omega=w["omega"], mu=w["mu"], theta=w["theta"],
            sigma=w["sigma"], shrink=shrink, h_steps=p.h_steps,
        )
        self.target_k = ops.grad(self.m, self.kk) if self.target is None else self.target
        self.state = iteration.init_state(self.m, self.kl, self.kk, self.target)

    def _update_reference(self) -> None:
        prev = self.state.y
        self.state = iteration.admm_step(self.state, self.m, self.target_k, self.denom, self.kl, self.kk, self._step_weights)
        if self.monitor:
            s = self.state
            xp = self.xp
            n_px = float(self.pshape[0] * self.pshape[1])
            obj = ops.objective(s.y, self.m, self.kl, self.lam, self.kk, self._weights["mu"], self._weights["theta"],
                                self.target)
            rl = ops.grad(s.y, self.kl) - s.e
            rk = ops.grad(s.y, self.kk) - self.target_k - s.h if self.nk else None
            self._record(
                float(obj) / n_px,
                float(xp.sqrt((rl * rl).sum() / (n_px * max(self.nl, 1)))),
                float(xp.sqrt((rk * rk).sum() / (n_px * self.nk))) if self.nk else 0.0,
                float(xp.sqrt(((s.y - prev) ** 2).sum())) / max(float(xp.sqrt((prev * prev).sum())), 1e-30),
            )

    # ---------------------------------------------------------------------- fused
    def _init_fused(self) -> None:
        from . import _fused
        from .fftengine import YStepFFT

        p = self.params
        dt = self.m.dtype
        h, w = self.pshape
        self.taps_l, self.count_l = _fused.tap_table(p.filters_l)
        self.taps_k, self.count_k = _fused.tap_table(p.filters_k)
        self.merge = bool(p.filters_l == p.filters_k) and self.nl == self.nk
        self.exact_hg = False
        # The row-streaming kernel covers the default banks with soft thresholding.
        self.diff_kernel = self.merge and p.filters_l.name == "diff" and self.q is None and p.h_steps == 1
        if self.diff_kernel:
            from . import _fused_diff

            # μ = 0 with σ = 1/τ and ω = 1: the H-step is exact and G stays 0 (see _fused_diff)
            sigma = self.resolved.h_step_size
            self.exact_hg = self.mu == 0.0 and p.omega == 1.0 and sigma == 1.0 / p.tau
            self._consts = _fused_diff.constants(
                self.resolved.threshold, p.rho, p.eta, p.tau, p.omega, self.mu, p.theta, sigma, self.resolved.lam, dt
            )
        self.y = self.m.copy()
        self.f = np.zeros((self.nl, h, w), dtype=dt)
        self.g = np.zeros((self.nk, h, w), dtype=dt)
        # H⁰ = ∇_k M − T_k (0 for the supplement's target), as iteration.init_state
        self.h = np.zeros((self.nk, h, w), dtype=dt) if self.target is None else np.ascontiguousarray(
            ops.grad(self.m, self.kk) - self.target, dtype=dt)
        self._use_target = self.target is not None
        self._target_arg = self.target if self._use_target else np.zeros((max(self.nk, 1), 1, 1), dtype=dt)
        self.p_l = np.zeros((self.nl, h, w), dtype=dt)
        self.p_k = np.zeros((self.nk if not self.merge else 1, h, w), dtype=dt)
        self.ens = np.empty((h, w), dtype=dt)
        self.y_prev = np.empty((h, w), dtype=dt) if self.monitor else self.y
        self.acc = np.zeros(7)
        self.fft = YStepFFT(np.asarray(self.denom), self.pshape, dt, workers=p.workers)
        self._q_arg = self.q if self.q is not None else np.zeros((self.nl, 2))
        self._map_p1 = -(self._q_arg.shape[1] - 1) * VALUE_MAP_STEP / 2.0
        # Ens⁰ from Y⁰ = M, E⁰ = ∇_l M, F⁰ = 0, H⁰ = ∇_k M − T_k, G⁰ = 0: the reference definitions, once.
        e0 = ops.grad(self.m, self.kl)
        self.ens[...] = ops.y_rhs(
            self.m, e0, 0.0 * e0, self.h, self.g, ops.grad(self.m, self.kk) if self.target is None else self.target,
            self.kl, self._weights["rho"], self.kk, self._weights["tau"],
        )
        if self.diff_kernel and self.exact_hg:  # H = ∇(Y − M), G = 0 are implicit: free the planes
            self.h = self.g = np.zeros((self.nk, 1, 1), dtype=dt)
        self.p_l = self.p_l if not self.diff_kernel else np.zeros((self.nl, 1, 1), dtype=dt)
        self.p_k = self.p_k if not self.diff_kernel else self.p_l

    def _update_fused(self) -> None:
        from . import _fused

        w = self._weights
        if self.monitor:
            self.y_prev[...] = self.y
        with self.fft.threads():
            self.y = self.fft(self.ens, self.y)
        if self.diff_kernel:
            from . import _fused_diff

            _fused_diff.diff_iteration(
                self.y, self.m, self.f, self.h, self.g, self.ens, self._consts, self.monitor, self.y_prev, self.acc,
                self.exact_hg, self._target_arg, self._use_target,
            )
            self._record_fused()
            return
        p_l = self.p_l
        if self.merge:
            p_l[...] = 0  # the ∇_k terms are added into p_l
        _fused.pass_update(
            self.y, self.m, self.f, self.h, self.g, self.taps_l, self.count_l, self.taps_k, self.count_k,
            self.threshold, self._q_arg, self.q is not None, self._map_p1, VALUE_MAP_STEP,
            w["rho"], w["eta"], w["tau"], w["omega"], w["mu"], w["theta"], w["sigma"], self.params.h_steps, self.lam,
            p_l, self.p_k, self.merge, self.monitor, self.y_prev, self.acc, self._target_arg, self._use_target,
        )
        _fused.pass_rhs(self.m, p_l, self.taps_l, self.count_l, self.p_k, self.taps_k, self.count_k, self.merge, self.ens)
        self._record_fused()

    def _record_fused(self) -> None:
        if self.monitor:
            a = self.acc
            n_px = float(self.pshape[0] * self.pshape[1])
            self._record(
                (a[0] + a[1] + a[2]) / n_px,
                float(np.sqrt(a[3] / (n_px * max(self.nl, 1)))),
                float(np.sqrt(a[4] / (n_px * self.nk))) if self.nk else 0.0,
                float(np.sqrt(a[5]) / max(np.sqrt(a[6]), 1e-30)),
            )

    # ------------------------------------------------------------------- common
    def _record(self, obj: float, res_l: float, res_k: float, rel: float) -> None:
        h = self.history
        h.objective.append(obj)
        h.residual_l.append(res_l)
        h.residual_k.append(res_k)
        h.rel_change.append(rel)
        h.time.append(time.perf_counter() - (self._t0 or time.perf_counter()))
        # Y¹ = M exactly (E⁰ = ∇M), so the first change says nothing: test from n = 2 on.
        if self.params.tol is not None and len(h.rel_change) > 1 and rel < self.params.tol:
            self._stop = True

    def update(self) -> None:
        """Run one ADMM iteration (§2.1 steps 1–5)."""
        if self._t0 is None:
            self._t0 = time.perf_counter()
        if self.engine == "fused":
            self._update_fused()
        else:
            self._update_reference()
        self.iteration += 1
        if self.iteration % CHECK_EVERY == 0:
            self.check_iterate()

    def check_iterate(self) -> None:
        """Raise :class:`~hifm.errors.DivergenceError` when Yⁿ holds NaN/inf or left [−B, 1 + B].

        B = :data:`DIVERGENCE_BOUND`. Called every :data:`CHECK_EVERY` iterations and by
        :meth:`result`, so a diverged iterate is never rounded into an image.
        """
        y = self.padded_result
        lo, hi = float(y.min()), float(y.max())
        if np.isfinite(lo) and np.isfinite(hi) and -DIVERGENCE_BOUND <= lo and hi <= 1.0 + DIVERGENCE_BOUND:
            return
        p = self.params
        what = "produced NaN or infinite values" if not (np.isfinite(lo) and np.isfinite(hi)) else (
            f"diverged (Y spans [{lo:.3g}, {hi:.3g}], the sources [0, 1])")
        raise DivergenceError(
            f"the ADMM iterate {what} by iteration {self.iteration}: the parameters (rho={p.rho:g}, tau={p.tau:g}, "
            f"eta={p.eta:g}, omega={p.omega:g}, mu={self._weights['mu'][0] if self.nk else 0:g}, theta={p.theta:g}, "
            f"sigma_h={self._weights['sigma'][0] if self.nk else 0:.4g}, {p.dtype}) are unstable for this image; "
            "use smaller dual steps (eta, omega ≤ 1.6) or the defaults"
        )

    def done(self) -> bool:
        """True once the relative change fell below ``tol`` (only when monitoring)."""
        return self._stop

    def run(self, iters: int) -> "HIFMSolver":
        """Iterate up to ``iters`` times (fewer when ``tol`` is reached)."""
        for _ in range(int(iters)):
            if self.done():
                break
            self.update()
        return self

    @property
    def padded_result(self) -> Any:
        """Yⁿ on the padded domain."""
        return self.y if self.engine == "fused" else self.state.y

    def result(self) -> Any:
        """Yⁿ cropped to the input size (not clipped); checked first (:meth:`check_iterate`)."""
        self.check_iterate()
        mg = self.margin
        h, w = self.shape
        return self.padded_result[mg : mg + h, mg : mg + w]

"""The parameters of the HIFM model and its ADMM, in one immutable object (DESIGN §2.3).

Images are in [0, 1], so thresholds and noise levels are in those units
(σ = 10/255 ≈ 0.039).  The defaults were chosen by measurement; the evidence
is in ``docs/parameters.md``.
"""
from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .errors import InputError, OptionError
from .filters import FilterBank, get_bank

__all__ = ["HIFMParams", "ResolvedParams", "PARAM_RANGES", "in_interval", "MAX_H_STEPS", "MAX_WORKERS"]

#: Closed ranges of the scalar parameters, beyond "finite" and the sign (``HIFMParams`` refuses
#: values outside with :class:`~hifm.errors.InputError`).  Why each bound (docs/robustness.md):
#:
#: * η, ω ∈ (0, 2): steps of the dual updates.  η = 2.5 already diverges on a test scene, η ≤ 1.99
#:   converges there; (1 + √5)/2 ≈ 1.618 is the proven bound for convex ADMM (Glowinski), values
#:   between it and 2 are allowed and watched by the solver's divergence check.
#: * ρ, τ ∈ [1e-6, 1e6]: beyond 1e6 float32 loses the data term (measured: 5e-3 off float64 at 1e7,
#:   a constant image at 1e30, NaN at 1e39 where ρ overflows float32).
#: * μ ≤ 1e6, θ ≤ 1e8: 2μθ must stay far from float32's overflow (1e300 overflowed the H-step size).
#: * λ, λ_min, κ, t_c (mu_noise_ref) ≤ 1e3 and σ₀ ≤ 1: thresholds in [0, 1] image units; beyond that
#:   every gradient is zeroed long before.
PARAM_RANGES: dict[str, str] = {
    "rho": "[1e-6, 1e6]",
    "tau": "[1e-6, 1e6]",
    "eta": "(0, 2)",
    "omega": "(0, 2)",
    "mu": "[0, 1e6]",
    "theta": "(0, 1e8]",
    "lam": "[0, 1e3]",
    "noise_gain": "[0, 1e3]",
    "noise_offset": "[0, 1]",
    "noise_floor": "[0, 1e3]",
    "tol": "(0, 1]",
    "mu_noise_ref": "(0, 1e3]",
    "mu_noise_power": "[0, 16]",
}


def in_interval(value: float, interval: str) -> bool:
    """``value`` lies in ``interval``, written ``"[a, b]"``, ``"(a, b]"``, ``"(a, b)"``..."""
    low, high = (float(x) for x in interval[1:-1].split(","))
    above = value >= low if interval[0] == "[" else value > low
    below = value <= high if interval[-1] == "]" else value < high
    return above and below


MAX_H_STEPS = 100
"""Largest ``h_steps`` (J): each is a pass over K gradient planes per iteration."""
MAX_WORKERS = 1024
MAX_PAD = 4096

ShrinkKind = Literal["soft", "value_map"]


@dataclass(frozen=True)
class HIFMParams:
    """Parameters of (S1) and its ADMM (§2.1).

    Model (DESIGN §2.4): ``min_Y ½‖Y − M‖² + Σ_l λ ψ(∇_l Y) + Σ_k μ φ(∇_k Y − T_k)``,
    φ(a) = Σ log(1 + θa²); the supplement's (S1) is the special case T_k = ∇_k M (``target="anchor"``).

    Attributes:
        lam: λ, weight of ψ = |·| on ∇_l Y.  ``None`` (default) makes it noise-adaptive:
            λ = max(λ_min, κ · (σ̂ − σ₀)) where σ̂ is the noise level estimated where
            ``noise_from`` says (:func:`hifm.noise.estimate_noise`).  The E-step threshold is λ/ρ.
        noise_from: where σ̂ is estimated: ``"sources"`` (max of the two luminance sources) or
            ``"anchor"`` (on M, the former rule).
        noise_gain: κ of the noise-adaptive λ.
        noise_offset: σ₀, the σ̂ that texture alone produces on clean images (subtracted).
        noise_floor: λ_min, the weight used on clean images.
        rho: ρ, ADMM penalty of the E_l = ∇_l Y split.
        tau: τ, ADMM penalty of the H_k = ∇_k Y − T_k split.
        eta: η, step of the F dual update (S9); 1 is standard scaled ADMM.
        omega: ω, step of the G dual update (S12).
        mu: μ, weight of the Lorentzian prior φ (0 makes the model convex).
        theta: θ of φ(a) = log(1 + θa²); the prior's curvature at 0 is 2θ.
        target: the gradient target T_k of φ: ``"sources"`` (per pixel, the responses of the
            source with the larger gradient magnitude, :func:`hifm.ops.source_target`) or
            ``"anchor"`` (T_k = ∇_k M: the supplement's (S1), which cannot move Y beyond a
            smoothed M).
        mu_noise_ref: t_c of the noise-adaptive μ: μ_eff = μ · min(1, (t_c/t)^p) with t = λ/ρ the
            E-step threshold, so that φ does not pull noisy source gradients back into Y.
            ``None`` uses μ as given.
        mu_noise_power: p of that rule.
        sigma_h: σ, H-step size; ``None`` uses 1/(τ + 2μθ).  Values ≥ 2/(τ + 2μθ) are refused.
        h_steps: J, gradient steps per H-step.
        filters_l: bank of ∇_l (name in :data:`hifm.filters.BANKS` or a FilterBank).
        filters_k: bank of ∇_k.
        shrink: ``"soft"`` (exact prox of |·|) or ``"value_map"`` (§2.2, initialised from t).
        value_map: optional values q (I_t,) or (L, I_t) for ``shrink="value_map"``.
        anchor: anchor method of :func:`hifm.anchors.anchor` (name).
        pad: reflective margin in pixels; ``None`` = max(8, 4 × largest filter radius).
        dtype: ``"float32"`` or ``"float64"``.
        workers: threads of the Y-step's FFT (1 by default: a shared machine); the fused
            Numba kernels run single-threaded.
        tol: stop when ‖Yⁿ − Yⁿ⁻¹‖/‖Yⁿ⁻¹‖ < tol (``None``: run all iterations).
        chroma_denoise: TV-denoise the Cb/Cr planes of a colour source whose chroma is noisy
            (:func:`hifm.chroma.denoise_chroma`; clean chroma is left untouched).
        denoise_sources: with the noise-adaptive λ (``lam=None``), TV-denoise each luminance
            source at its own noise level before the anchor and the target are made
            (:func:`hifm.denoise.tv_denoise`; a clean source is left untouched).  σ̂ of the
            model is then that of the denoised sources.
    """

    lam: float | None = None
    noise_from: str = "sources"
    noise_gain: float = 0.7
    noise_offset: float = 0.006
    noise_floor: float = 0.001
    rho: float = 1.0
    tau: float = 10.0
    eta: float = 1.0
    omega: float = 1.0
    mu: float = 0.1
    theta: float = 500.0
    target: str = "sources"
    mu_noise_ref: float | None = 0.002
    mu_noise_power: float = 2.0
    sigma_h: float | None = None
    h_steps: int = 1
    filters_l: Any = "diff"
    filters_k: Any = "diff"
    shrink: ShrinkKind = "soft"
    value_map: tuple | None = None
    anchor: str = "salient"
    pad: int | None = None
    dtype: str = "float32"
    workers: int = 1
    tol: float | None = None
    chroma_denoise: bool = True
    denoise_sources: bool = True

    def __post_init__(self) -> None:
        """Validate every field; a bad one raises :class:`~hifm.errors.InputError` naming it."""
        try:
            self._validate()
            self._check_ranges()
        except InputError:
            raise
        except (ValueError, TypeError) as exc:
            raise InputError(str(exc)) from None

    def _check_ranges(self) -> None:
        """The ranges of :data:`PARAM_RANGES`, the caps on J, workers and pad, and the anchor name."""
        for name, interval in PARAM_RANGES.items():
            v = getattr(self, name)
            if v is None:
                continue
            if not in_interval(v, interval):
                why = " (a step of the dual update; 2 and above diverge)" if name in ("eta", "omega") else ""
                raise InputError(f"parameter {name} must lie in {interval}{why}, got {v!r}")
            object.__setattr__(self, name, float(v))  # np.float32(0.01) → 0.01: JSON and kernels take floats
        for name in ("h_steps", "workers", "pad"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, int(getattr(self, name)))
        if self.h_steps > MAX_H_STEPS:
            raise InputError(f"parameter h_steps must be at most {MAX_H_STEPS} (gradient steps per H-step), "
                             f"got {self.h_steps!r}")
        if self.workers > MAX_WORKERS:
            raise InputError(f"parameter workers must be at most {MAX_WORKERS}, got {self.workers!r}")
        if self.pad is not None and self.pad > MAX_PAD:
            raise InputError(f"parameter pad must be at most {MAX_PAD} pixels, got {self.pad!r}")
        if self.sigma_h is not None:
            object.__setattr__(self, "sigma_h", float(self.sigma_h))
        if isinstance(self.anchor, str):
            from .anchors import ANCHORS

            if self.anchor not in ANCHORS:
                raise InputError(f"parameter anchor must be one of {sorted(ANCHORS)}, got {self.anchor!r}")

    def _validate(self) -> None:
        def positive(name: str, allow_zero: bool = False) -> None:
            v = getattr(self, name)
            ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and (v >= 0 if allow_zero else v > 0)
            if not (ok and np.isfinite(v)):
                raise ValueError(f"parameter {name} must be a finite {'non-negative' if allow_zero else 'positive'} number, got {v!r}")

        for name in ("rho", "tau", "eta", "omega", "theta"):
            positive(name)
        for name in ("mu", "noise_gain", "noise_offset", "noise_floor"):
            positive(name, allow_zero=True)
        if self.lam is not None:
            positive("lam", allow_zero=True)
        if not _is_int(self.h_steps) or self.h_steps < 1:
            raise ValueError(f"parameter h_steps must be an integer ≥ 1, got {self.h_steps!r}")
        if self.shrink not in ("soft", "value_map"):
            raise ValueError(f"parameter shrink must be 'soft' or 'value_map', got {self.shrink!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"parameter dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if not _is_int(self.workers) or self.workers < 1:
            raise ValueError(f"parameter workers must be an integer ≥ 1, got {self.workers!r}")
        if self.pad is not None and (not _is_int(self.pad) or self.pad < 0):
            raise ValueError(f"parameter pad must be a non-negative integer, got {self.pad!r}")
        if self.tol is not None:
            positive("tol")
        for flag in ("chroma_denoise", "denoise_sources"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"parameter {flag} must be True or False, got {getattr(self, flag)!r}")
        if self.noise_from not in ("sources", "anchor"):
            raise ValueError(f"parameter noise_from must be 'sources' or 'anchor', got {self.noise_from!r}")
        if self.mu_noise_ref is not None:
            positive("mu_noise_ref")
        from .ops import TARGETS

        if self.target not in TARGETS:
            raise ValueError(f"parameter target must be one of {list(TARGETS)}, got {self.target!r}")
        bound = 2.0 / (self.tau + 2.0 * self.mu * self.theta)
        if self.sigma_h is not None:
            positive("sigma_h")
            if self.sigma_h >= bound:
                raise ValueError(
                    f"parameter sigma_h={self.sigma_h} is unstable: it must be below 2/(tau + 2*mu*theta) = {bound:.4g}"
                )
        # Validate the banks now, so that a bad name fails at construction.
        object.__setattr__(self, "filters_l", get_bank(self.filters_l))
        object.__setattr__(self, "filters_k", get_bank(self.filters_k))
        if self.value_map is not None:
            q = np.asarray(self.value_map, dtype=np.float64)
            if q.ndim not in (1, 2) or q.shape[-1] < 2 or not np.all(np.isfinite(q)):
                raise ValueError("parameter value_map must be a finite (I_t,) or (L, I_t) sequence")
            if q.ndim == 2 and q.shape[0] != len(self.filters_l):
                raise ValueError(f"value_map has {q.shape[0]} rows, filters_l has {len(self.filters_l)} filters")
            object.__setattr__(self, "value_map", tuple(map(tuple, q)) if q.ndim == 2 else tuple(q))

    @classmethod
    def from_kwargs(cls, params: "HIFMParams | None" = None, **kwargs: Any) -> "HIFMParams":
        """``params`` (or the defaults) with the fields in ``kwargs`` replaced; unknown names are refused."""
        base = params if params is not None else cls()
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise OptionError(f"unknown HIFM parameter(s) {unknown}; valid names: {sorted(names)}")
        return dataclasses.replace(base, **kwargs) if kwargs else base

    @property
    def h_step_size(self) -> float:
        """σ actually used: ``sigma_h`` or 1/(τ + 2μθ)."""
        return self.sigma_h if self.sigma_h is not None else 1.0 / (self.tau + 2.0 * self.mu * self.theta)

    @property
    def margin(self) -> int:
        """Reflective padding margin (§2.1 Boundaries)."""
        if self.pad is not None:
            return self.pad
        radius = max(self.filters_l.radius, self.filters_k.radius)
        return max(8, 4 * radius)

    def weight(self, sigma_noise: float) -> float:
        """λ for a noise level σ̂: ``lam`` if given, else max(λ_min, κ(σ̂ − σ₀))."""
        if self.lam is not None:
            return float(self.lam)
        return max(self.noise_floor, self.noise_gain * (float(sigma_noise) - self.noise_offset))

    def threshold(self, sigma_noise: float) -> float:
        """The E-step threshold t = λ/ρ for a noise level σ̂."""
        return self.weight(sigma_noise) / self.rho

    def effective_mu(self, threshold: float) -> float:
        """μ_eff = μ · min(1, (t_c/t)^p) for the E-step threshold t (μ itself when ``mu_noise_ref`` is None)."""
        if self.mu_noise_ref is None or threshold <= 0:
            return float(self.mu)
        return float(self.mu) * min(1.0, (self.mu_noise_ref / float(threshold)) ** self.mu_noise_power)

    def resolve(self, sigma_noise: float) -> "ResolvedParams":
        """Concrete λ, E-step threshold t = λ/ρ and μ_eff for an estimated noise level."""
        lam = self.weight(sigma_noise)
        t = lam / self.rho
        return ResolvedParams(self, lam=lam, threshold=t, sigma_noise=float(sigma_noise), mu=self.effective_mu(t))

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly dictionary (banks by name and kernels)."""
        out = dataclasses.asdict(self)
        for key in ("filters_l", "filters_k"):
            bank: FilterBank = getattr(self, key)
            out[key] = {"name": bank.name, "kernels": bank.kernels.tolist()}
        return out


def _is_int(v: Any) -> bool:
    """An integer (Python or NumPy), not a bool."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


@dataclass(frozen=True)
class ResolvedParams:
    """Parameters with the noise-adaptive λ (and μ) fixed for one image."""

    params: HIFMParams
    lam: float
    threshold: float
    sigma_noise: float
    mu: float | None = None

    @property
    def mu_eff(self) -> float:
        """The μ the iterations use (``params.mu`` unless made noise-adaptive)."""
        return float(self.params.mu if self.mu is None else self.mu)

    @property
    def h_step_size(self) -> float:
        """σ used with μ_eff: ``sigma_h`` or 1/(τ + 2μ_eff θ)."""
        p = self.params
        return p.sigma_h if p.sigma_h is not None else 1.0 / (p.tau + 2.0 * self.mu_eff * p.theta)

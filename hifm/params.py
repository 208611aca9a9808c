"""The parameters of the HIFM model and its ADMM, in one immutable object (DESIGN §2.3).

Images are in [0, 1], so thresholds and noise levels are in those units
(σ = 10/255 ≈ 0.039).  The defaults were chosen by measurement; the evidence
is in ``docs/parameters.md``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .filters import FilterBank, get_bank

__all__ = ["HIFMParams", "ResolvedParams"]

ShrinkKind = Literal["soft", "value_map"]


@dataclass(frozen=True)
class HIFMParams:
    """Parameters of (S1) and its ADMM (§2.1).

    Model (DESIGN §2.4): ``min_Y ½‖Y − M‖² + Σ_l λ ψ(∇_l Y) + Σ_k μ φ(∇_k Y − T_k)``,
    φ(a) = Σ log(1 + θa²); the supplement's (S1) is the special case T_k = ∇_k M (``target="anchor"``).

    Attributes:
        lam: λ, weight of ψ = |·| on ∇_l Y.  ``None`` (default) makes it noise-adaptive:
            λ = max(λ_min, κ · (σ̂ − σ₀)) where σ̂ is the noise level estimated on the
            anchor M (:func:`hifm.noise.estimate_noise`).  The E-step threshold is λ/ρ.
        noise_from: where σ̂ is estimated: ``"sources"`` (max of the two luminance sources) or
            ``"anchor"`` (on M, the former rule).
        noise_gain: κ of the noise-adaptive λ.
        noise_offset: σ₀, the σ̂ that texture alone produces on clean images (subtracted).
        noise_floor: λ_min, the weight used on clean images.
        rho: ρ, ADMM penalty of the E_l = ∇_l Y split.
        tau: τ, ADMM penalty of the H_k = ∇_k(Y − M) split.
        eta: η, step of the F dual update (S9); 1 is standard scaled ADMM.
        omega: ω, step of the G dual update (S12).
        mu: μ, weight of the Lorentzian prior φ (0 makes the model convex).
        theta: θ of φ(a) = log(1 + θa²); the prior's curvature at 0 is 2θ.
        target: the gradient target T_k of φ: ``"sources"`` (per pixel, the responses of the
            source with the larger gradient magnitude, :func:`hifm.ops.source_target`) or
            ``"anchor"`` (T_k = ∇_k M: the supplement's (S1), which cannot move Y beyond a
            smoothed M).
        mu_noise_ref: t_c of the noise-adaptive μ: μ_eff = μ · min(1, (t_c/t)²) with t = λ/ρ the
            E-step threshold, so that φ does not pull noisy source gradients back into Y.
            ``None`` uses μ as given.
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
    mu: float = 0.05
    theta: float = 300.0
    target: str = "sources"
    mu_noise_ref: float | None = 0.002
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

    def __post_init__(self) -> None:
        def positive(name: str, allow_zero: bool = False) -> None:
            v = getattr(self, name)
            ok = v >= 0 if allow_zero else v > 0
            if not (isinstance(v, (int, float)) and np.isfinite(v) and ok):
                raise ValueError(f"parameter {name} must be a finite {'non-negative' if allow_zero else 'positive'} number, got {v!r}")

        for name in ("rho", "tau", "eta", "omega", "theta"):
            positive(name)
        for name in ("mu", "noise_gain", "noise_offset", "noise_floor"):
            positive(name, allow_zero=True)
        if self.lam is not None:
            positive("lam", allow_zero=True)
        if not isinstance(self.h_steps, int) or self.h_steps < 1:
            raise ValueError(f"parameter h_steps must be an integer ≥ 1, got {self.h_steps!r}")
        if self.shrink not in ("soft", "value_map"):
            raise ValueError(f"parameter shrink must be 'soft' or 'value_map', got {self.shrink!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"parameter dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if not isinstance(self.workers, int) or self.workers < 1:
            raise ValueError(f"parameter workers must be an integer ≥ 1, got {self.workers!r}")
        if self.pad is not None and (not isinstance(self.pad, int) or self.pad < 0):
            raise ValueError(f"parameter pad must be a non-negative integer, got {self.pad!r}")
        if self.tol is not None:
            positive("tol")
        if not isinstance(self.chroma_denoise, bool):
            raise ValueError(f"parameter chroma_denoise must be True or False, got {self.chroma_denoise!r}")
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
            raise TypeError(f"unknown HIFM parameter(s) {unknown}; valid names: {sorted(names)}")
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
        """μ_eff = μ · min(1, (t_c/t)²) for the E-step threshold t (μ itself when ``mu_noise_ref`` is None)."""
        if self.mu_noise_ref is None or threshold <= 0:
            return float(self.mu)
        return float(self.mu) * min(1.0, (self.mu_noise_ref / float(threshold)) ** 2)

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

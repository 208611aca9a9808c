"""Removing the noise each source really has, before it is fused (the "noise that is really there" rule).

The fused image inherits the sensor noise of both sources: through the anchor's detail layers
and through the gradient target.  The noise is best removed where it is, source by source and
at that source's own level, with the model's TV term alone (μ = 0: anisotropic TV denoising,
:class:`hifm.solver.HIFMSolver` with the plane itself as M):

    P' = argmin_Y ½‖Y − P‖² + λ_P ‖∇Y‖₁,   λ_P = max(λ_min, κ·(σ̂(P) − σ₀)),

with σ̂(P) the noise level of that plane (:func:`hifm.noise.estimate_noise`) and κ, σ₀, λ_min the
noise rule of :class:`hifm.params.HIFMParams`.  A plane whose λ_P is at the floor (a clean
image) is returned unchanged — clean inputs stay exactly as sharp as they are.  Used for the
two luminance sources (``HIFMParams.denoise_sources``) and for the chroma of a colour source
(:mod:`hifm.chroma`).  Works on NumPy, CuPy and torch planes (no gradient is recorded).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from . import backend
from .noise import estimate_noise
from .params import HIFMParams

__all__ = ["PlaneDenoise", "tv_denoise", "DENOISE_ITERS"]

#: ADMM iterations of a plane's TV solve (μ = 0: the fast exact-H path; 40 iterations reach a
#: relative change below 1e-4 on noisy planes).
DENOISE_ITERS = 40


@dataclass
class PlaneDenoise:
    """What :func:`tv_denoise` did to one plane: its noise estimate σ̂ and the λ used (0: untouched)."""

    sigma: float
    lam: float

    @property
    def applied(self) -> bool:
        return self.lam > 0


def tv_denoise(plane: Any, params: HIFMParams | None = None, iters: int = DENOISE_ITERS) -> tuple[Any, PlaneDenoise]:
    """TV-denoise a 2-D plane in [0, 1] when its noise level calls for it (see the module docstring).

    ``params`` supplies the noise rule (κ, σ₀, λ_min), ρ and the FFT threads; everything else is the default TV
    model (banks ∂x, ∂y, μ = 0), so that the solver and DeRUN (which stores only the noise rule)
    denoise alike.  Returns the plane (the same object when untouched, else a new one clipped
    to [0, 1]) and a :class:`PlaneDenoise`.
    """
    from .solver import HIFMSolver

    p = params if params is not None else HIFMParams()
    if backend.is_torch(plane):
        plane = plane.detach()
    sigma = float(estimate_noise(plane))
    rule = {f.name: getattr(p, f.name) for f in dataclasses.fields(p)
            if f.name in ("rho", "workers") or f.name.startswith("noise_")}
    tv = HIFMParams(mu=0.0, target="anchor", **rule)
    lam = tv.weight(sigma)
    if lam <= p.noise_floor:
        return plane, PlaneDenoise(sigma, 0.0)
    resolved = dataclasses.replace(tv, lam=lam).resolve(sigma)
    y = HIFMSolver(plane, resolved, monitor=False).run(iters).result()
    xp = backend.get_xp(y)
    return xp.clip(y, 0.0, 1.0), PlaneDenoise(sigma, lam)

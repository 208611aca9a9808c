"""Denoising the chroma of a colour source (DESIGN §5; the "noise that is really there" rule).

The fused luminance is recombined with the Cb/Cr planes of the colour source (§5).  When
that source is noisy, its chroma noise would go straight into the result, so each chroma
plane C gets the same TV model the solver uses with μ = 0 (anisotropic TV denoising,
:class:`hifm.solver.HIFMSolver` with the anchor M = C):

    min_Y ½‖Y − C‖² + λ_c ‖∇Y‖₁,   λ_c = max(λ_min, κ·(σ̂(C) − σ₀)),

with σ̂(C) the noise level of that plane (:func:`hifm.noise.estimate_noise`) and κ, σ₀, λ_min
the noise rule of :class:`hifm.params.HIFMParams`.  A plane whose λ_c is at the floor (a
clean image) is returned unchanged, so clean inputs keep their colours exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import backend
from .denoise import DENOISE_ITERS, tv_denoise
from .params import HIFMParams

__all__ = ["ChromaDenoise", "denoise_chroma", "CHROMA_ITERS"]

#: ADMM iterations of the chroma TV solve (:data:`hifm.denoise.DENOISE_ITERS`).
CHROMA_ITERS = DENOISE_ITERS


@dataclass
class ChromaDenoise:
    """What :func:`denoise_chroma` did per plane (Cb, Cr): the noise estimates and λ_c used (0: untouched)."""

    sigma: tuple[float, float]
    lam: tuple[float, float]

    @property
    def applied(self) -> bool:
        return any(v > 0 for v in self.lam)


def denoise_chroma(chroma: Any, params: HIFMParams | None = None, iters: int = CHROMA_ITERS) -> tuple[Any, ChromaDenoise]:
    """TV-denoise each plane of ``chroma (H, W, 2)`` (Cb, Cr in [0, 1]) whose noise level calls for it
    (:func:`hifm.denoise.tv_denoise`).

    Returns the (possibly new) chroma array and a :class:`ChromaDenoise` report.  ``params``
    supplies the noise rule (κ, σ₀, λ_min), ρ, the padding and the dtype; its μ, target and
    anchor are not used (μ = 0 here).
    """
    xp = backend.get_xp(chroma)
    planes, sigmas, lams = [], [], []
    for c in range(chroma.shape[-1]):
        plane = xp.ascontiguousarray(chroma[..., c]) if not backend.is_torch(chroma) else chroma[..., c].contiguous()
        out, rep = tv_denoise(plane, params, iters)
        planes.append(out)
        sigmas.append(rep.sigma)
        lams.append(rep.lam)
    report = ChromaDenoise(tuple(sigmas), tuple(lams))  # type: ignore[arg-type]
    if not report.applied:
        return chroma, report
    return xp.stack(planes, axis=-1), report

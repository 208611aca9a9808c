"""One ADMM iteration of §2.1 as a pure function: the solver and DeRUN's stages share it.

This is the reference definition (any backend, differentiable under torch).  The
NumPy solver runs a fused Numba kernel instead (:mod:`hifm._fused`), tested
against this function.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

from . import ops

__all__ = ["ADMMState", "StepWeights", "init_state", "admm_step"]


class ADMMState(NamedTuple):
    """The iterates of §2.1: Y, E_l, F_l (ψ part) and H_k, G_k (φ part)."""

    y: Any
    e: Any
    f: Any
    h: Any
    g: Any


@dataclass(frozen=True)
class StepWeights:
    """Per-filter scalars of one iteration (floats, arrays or torch tensors).

    ``rho, eta`` are per ∇_l filter; ``tau, omega, mu, theta, sigma`` per ∇_k filter.
    ``shrink`` is the E-step map (soft threshold S_{λ/ρ} or a value map).
    """

    rho: Any
    eta: Any
    tau: Any
    omega: Any
    mu: Any
    theta: Any
    sigma: Any
    shrink: Callable[[Any], Any]
    h_steps: int = 1


def init_state(m: Any, kernels_l: Any, kernels_k: Any, target_k: Any = None) -> ADMMState:
    """Y⁰ = M, E⁰ = ∇_l M, F⁰ = 0, H⁰ = ∇_k M − T_k, G⁰ = 0 (§2.1, §2.4).

    Both splits start consistent with Y⁰ = M (E⁰ = ∇_l Y⁰, H⁰ = ∇_k Y⁰ − T_k), so Y¹ = M
    whatever the target.  ``target_k`` None means T_k = ∇_k M (the supplement's model: H⁰ = 0).
    """
    e = ops.grad(m, kernels_l)
    nk = kernels_k.shape[0]
    if not nk:
        return ADMMState(m, e, e * 0, None, None)
    gm = ops.grad(m, kernels_k)
    h = gm * 0 if target_k is None else gm - target_k
    return ADMMState(m, e, e * 0, h, gm * 0)


def admm_step(
    state: ADMMState,
    m: Any,
    target_k: Any,
    denom: Any,
    kernels_l: Any,
    kernels_k: Any,
    w: StepWeights,
) -> ADMMState:
    """One iteration: Y-step (S5–S6), E-step (S7), F-step (S9), J H-steps (S10–S11), G-step (S12).

    ``target_k`` = T_k, the gradient target of φ (precomputed; ∇_k M in the supplement's
    model, :func:`hifm.ops.gradient_target`), ``denom`` = :func:`hifm.ops.denominator`.
    The φ split is H_k = ∇_k Y − T_k.
    """
    ens = ops.y_rhs(m, state.e, state.f, state.h, state.g, target_k, kernels_l, w.rho, kernels_k, w.tau)
    y = ops.y_step(ens, denom)
    grad_y = ops.grad(y, kernels_l)
    e = ops.e_step(grad_y, state.f, w.shrink)
    f = ops.dual_update(state.f, grad_y - e, w.eta)
    h, g = state.h, state.g
    if kernels_k.shape[0]:
        grad_ym = ops.grad(y, kernels_k) - target_k
        for _ in range(w.h_steps):
            h = ops.h_step(h, grad_ym, g, w.tau, w.mu, w.theta, w.sigma)
        g = ops.dual_update(g, grad_ym - h, w.omega)
    return ADMMState(y, e, f, h, g)

"""One DeRUN stage: the ADMM iteration of DESIGN §2.1 with learned parameters (§7).

A :class:`Stage` holds ``nn.Parameter`` objects and turns them into the arguments of
the *one* definition of the iteration, :func:`hifm.iteration.admm_step`
(Y-step (S5–S6), E-step (S7–S8), F-step (S9), H-step (S10–S11), G-step (S12));
it contains no copy of that math.  Parametrisations:

* ∇_l (L filters): ``K_l = Σ_a C[l, a] · A_a`` over the 8 non-constant 3×3 DCT atoms
  A_a (Deep ADMM-Net); C = identity for the DCT bank, the projection of the
  solver's kernels otherwise (exact for zero-mean kernels).
* ∇_k (K filters): free 3×3 kernels (initialised as the solver's, e.g. ∂x, ∂y).
* ρ_l, η_l, τ_k, ω_k, μ_k, θ_k: ``softplus(raw)`` (always positive).
* σ_k of the H-step: ``s_k / (τ_k + 2 μ_k θ_k)`` with ``s_k = 2·sigmoid(raw_s) ∈ (0, 2)``,
  i.e. a learned factor times the step bound of §2.1 step 4, so every stage is
  stable whatever τ, μ, θ become.
* the value maps q_l (I_t = 101 points each) of the E-step (§2.2, (S8)), used through
  :func:`hifm.shrink.value_map_shrink` in one of two noise-adaptive modes
  (:func:`make_shrink`):

  ``"scaled"``   S(a) = (t/t₀) · V(a · t₀/t; q),   q⁰ = soft_{t₀}(p)  ⇒ S = soft_t exactly;
  ``"absolute"`` S(a) = V(a; soft_t(p) + δq),      δq⁰ = 0          ⇒ S = the solver's value map.

  t = λ/ρ with λ = max(λ_min, κ(σ̂ − σ₀)) is the solver's noise-adaptive threshold of each image
  (:meth:`hifm.params.HIFMParams.threshold`; σ̂ from the sources or the anchor, ``noise_from``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Collection

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from hifm import backend, iteration, ops
from hifm.filters import dct_atoms
from hifm.shrink import control_points, soft_threshold, value_map_shrink

__all__ = [
    "POSITIVE_FLOOR",
    "value_map_torch",
    "softplus_inverse",
    "StageInit",
    "Stage",
    "make_shrink",
    "VALUE_MAP_MODES",
    "STAGE_PARAMETERS",
    "live_parameters",
]

#: Smallest value a softplus-parametrised scalar is initialised to (μ = 0 in the
#: solver becomes μ = 1e-12: its Lorentzian term is then below 1e-11·√θ per step).
POSITIVE_FLOOR = 1e-12

VALUE_MAP_MODES = ("scaled", "absolute")

#: The learnable tensors of a stage (all of them in a tied network or a middle stage).
STAGE_PARAMETERS = ("coef_l", "kernels_k", "raw_rho", "raw_tau", "raw_eta", "raw_omega", "raw_mu", "raw_theta", "raw_s", "q")


def live_parameters(n: int, stages: int) -> frozenset[str]:
    """The tensors of stage ``n`` (0-based) of an untied N-stage network that reach its output.

    * Stage 1: Y¹ = M whatever its Y-step (Ens = M + Σ τ∇ᵀ∇M + Σ ρ∇ᵀ∇M = D·M, since E⁰ = ∇_l M and
      F⁰ = H⁰ = G⁰ = 0), so then H¹ = G¹ = 0 too: only ∇_l (E¹ = S(∇_l M)), η and q act.
    * Stage N: its E-, F-, H-, G-updates come after Yᴺ: only the Y-step (∇_l, ∇_k, ρ, τ) acts.
    * N = 1: nothing acts (Y¹ = M_θ).
    """
    live = set(STAGE_PARAMETERS)
    if stages == 1:
        return frozenset()
    if n == 0:
        live &= {"coef_l", "raw_eta", "q"}
    if n == stages - 1:
        live &= {"coef_l", "kernels_k", "raw_rho", "raw_tau"}
    return frozenset(live)


def softplus_inverse(x: "float | np.ndarray") -> np.ndarray:
    """raw with ``torch.nn.functional.softplus(raw) == x`` (float64; x > 0).

    torch's softplus returns its input unchanged above 20, so large values map to themselves.
    """
    x = np.maximum(np.asarray(x, dtype=np.float64), POSITIVE_FLOOR)
    with np.errstate(over="ignore"):
        return np.where(x > 20.0, x, x + np.log(-np.expm1(-x)))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    return np.log(p) - np.log1p(-p)


@dataclass
class StageInit:
    """Initial values of one stage (float64 NumPy arrays).

    ``coef_l`` (L, 8): ∇_l in the DCT basis; ``kernels_k`` (K, 3, 3); per-∇_l ``rho, eta`` (L,);
    per-∇_k ``tau, omega, mu, theta, sigma`` (K,); ``q`` (L, I_t): the value maps
    (mode "scaled": the maps themselves; mode "absolute": the residual δq).
    """

    coef_l: np.ndarray
    kernels_k: np.ndarray
    rho: np.ndarray
    eta: np.ndarray
    tau: np.ndarray
    omega: np.ndarray
    mu: np.ndarray
    theta: np.ndarray
    sigma: np.ndarray
    q: np.ndarray


def _shrink_tables(q: torch.Tensor, step: float) -> tuple[torch.Tensor, torch.Tensor]:
    """d_i = q_i − p_i (the shrinkage amount at the control points) and its forward
    differences s_i = d_{i+1} − d_i with s_{I_t} = 0, both ``(..., I_t)``."""
    n = q.shape[-1]
    p1 = -(n - 1) * step / 2.0
    p = p1 + step * torch.arange(n, dtype=q.dtype, device=q.device)
    d = q - p
    slope = torch.cat([d[..., 1:] - d[..., :-1], torch.zeros_like(d[..., :1])], -1)
    return d, slope


def value_map_torch(
    a: torch.Tensor, q: torch.Tensor, step: float, scale: torch.Tensor | None = None, addend: torch.Tensor | None = None
) -> torch.Tensor:
    """:func:`hifm.shrink.value_map_shrink` (S8, §2.2) as a fast torch kernel (DESIGN §6).

    The same function, written as the input plus the *shrinkage amount* d_i = q_i − p_i
    interpolated with constant extension (slope 1 outside [p₁, p_{I_t}] means d is
    constant there):

        u = clip((a − p₁)/V, 0, I_t − 1),  k = ⌊u⌋,  r = u − k,
        S(a) = a + d_k + r·s_k,   s_k = d_{k+1} − d_k  (s_{I_t} = 0, so k = I_t − 1 needs no clamp).

    With ``scale`` (a tensor constant over the last two axes, e.g. ``(B, 1, 1, 1)``) it
    returns scale·S(a/scale) = a + scale·(d_k + r·s_k) with u computed from a/scale: the
    "scaled" value map of :func:`make_shrink` in one call.  With ``addend`` (the shape of
    ``a``) the argument is a + addend (the E-step's ∇_l Y + F_l, (S7)) without forming the sum
    as a separate whole-image tensor.

    ``q``'s leading axes broadcast against ``a``'s leading axes (as in the reference).
    With an autograd graph the tables are read by ``gather`` along the control-point axis
    (differentiable in ``a``, ``q``, ``scale`` and ``addend``).  Without one (inference) the
    tables are made per row of ``a`` (pre-multiplied by its scale) and, on the CPU,
    evaluated in chunks through a few reused buffers (:func:`_value_map_chunked`: no
    whole-image temporaries), elsewhere by whole-tensor in-place steps
    (:func:`_value_map_whole`).  Tested against
    the reference (values and gradients); they agree to rounding (≤ 1e-14 in float64).
    """
    n = q.shape[-1]
    lead, tail = tuple(q.shape[:-1]), tuple(a.shape[:-2])
    if len(lead) > len(tail):
        raise ValueError(f"value map rows {lead} do not broadcast against the input {tuple(a.shape)}")
    if scale is not None and (scale.ndim > a.ndim or tuple(scale.shape[-2:]) not in ((1, 1), (1,), ())):
        raise ValueError(f"scale {tuple(scale.shape)} must be constant over the last two axes of the input")
    if addend is not None and addend.shape != a.shape:
        raise ValueError(f"addend {tuple(addend.shape)} differs from the input {tuple(a.shape)}")
    d, slope = _shrink_tables(q, step)
    if not backend.records_graph(a, q, scale, addend):
        return _value_map_no_graph(a, d, slope, step, scale, addend)
    if addend is not None:
        a = a + addend
    p1 = -(n - 1) * step / 2.0
    u = torch.clamp(((a if scale is None else a / scale) - p1) / step, 0, n - 1)
    k = u.detach().floor()
    r = u - k
    idx = k.long()
    if lead:
        idx = idx.reshape(tail + (-1,))
        dk = torch.gather(d.expand(tail + (n,)), -1, idx).view(a.shape)
        sk = torch.gather(slope.expand(tail + (n,)), -1, idx).view(a.shape)
    else:
        idx = idx.reshape(-1)
        dk = d.index_select(0, idx).view(a.shape)
        sk = slope.index_select(0, idx).view(a.shape)
    amount = dk + r * sk
    return a + (amount if scale is None else scale * amount)


#: Elements per chunk of the CPU inference path of :func:`value_map_torch`: five reused
#: buffers of this many elements (a few MB) instead of whole-image temporaries.  Measured on
#: 8×500×675 values: 2¹⁶ to 2¹⁸ within noise of each other, 2¹³ 2.5× slower (call overhead).
VALUE_MAP_CHUNK = 1 << 17


def _value_map_no_graph(
    a: torch.Tensor,
    d: torch.Tensor,
    slope: torch.Tensor,
    step: float,
    scale: torch.Tensor | None,
    addend: torch.Tensor | None = None,
    chunked: bool | None = None,
) -> torch.Tensor:
    """:func:`value_map_torch` without autograd: tables ``(rows, I_t)``, one row per leading
    index of ``a``, times its scale; ``chunked`` (default: on the CPU) picks the kernel."""
    n = d.shape[-1]
    tail = tuple(a.shape[:-2])
    rows = 1
    for t in tail:
        rows *= int(t)
    if scale is not None:
        col = scale.reshape(tuple(scale.shape[:-2]) + (1,)) if scale.ndim >= 2 else scale.reshape(-1)[:1]
        d, slope = d * col, slope * col
    td = d.expand(tail + (n,)).reshape(rows, n)
    ts = slope.expand(tail + (n,)).reshape(rows, n)
    if chunked if chunked is not None else a.device.type == "cpu":
        return _value_map_chunked(a, td, ts, step, scale, addend)
    return _value_map_whole(a, td, ts, step, scale, addend)


def _value_map_whole(
    a: torch.Tensor, td: torch.Tensor, ts: torch.Tensor, step: float, scale: torch.Tensor | None,
    addend: torch.Tensor | None,
) -> torch.Tensor:
    """Whole-tensor kernel: u = ((a/scale) − p₁)/V, int32 indices offset by row·I_t into the
    flattened tables, one ``index_select`` per table, in-place arithmetic."""
    rows, n = td.shape
    p1 = -(n - 1) * step / 2.0
    x = a if addend is None else a + addend
    u = x - p1 if scale is None else (x / scale).sub_(p1)
    u.div_(step).clamp_(0, n - 1)
    k = u.to(torch.int32)  # ⌊u⌋ (u ≥ 0)
    r = u.frac_()  # u − ⌊u⌋
    if rows > 1:
        k.add_((torch.arange(rows, dtype=torch.int32, device=a.device) * n).reshape(tuple(a.shape[:-2]) + (1, 1)))
    k = k.reshape(-1)
    out = td.reshape(-1).index_select(0, k).view(a.shape)
    out.addcmul_(r, ts.reshape(-1).index_select(0, k).view(a.shape))
    return out.add_(x)


def _value_map_chunked(
    a: torch.Tensor, td: torch.Tensor, ts: torch.Tensor, step: float, scale: torch.Tensor | None,
    addend: torch.Tensor | None,
) -> torch.Tensor:
    """CPU kernel: row by row of ``a`` (one table row each), in chunks of
    :data:`VALUE_MAP_CHUNK` elements through reused buffers; u = ((a/scale) − p₁)/V as in
    the reference."""
    rows, n = td.shape
    p1 = -(n - 1) * step / 2.0
    tail = tuple(a.shape[:-2])
    a2 = a.reshape(rows, -1)
    b2 = addend.reshape(rows, -1) if addend is not None else None
    out = torch.empty_like(a2)
    scales = None
    if scale is not None:
        scales = torch.broadcast_to(scale.reshape(tuple(scale.shape[:-2])), tail).reshape(-1).tolist()
    size = a2.shape[1]
    chunk = min(VALUE_MAP_CHUNK, size)
    ub, db, sb, xb = (a2.new_empty(chunk) for _ in range(4))
    kb = torch.empty(chunk, dtype=torch.int64)
    for r in range(rows):
        for j in range(0, size, chunk):
            m = min(chunk, size - j)
            u, k, dk, sk = ub[:m], kb[:m], db[:m], sb[:m]
            x = a2[r, j : j + m] if b2 is None else torch.add(a2[r, j : j + m], b2[r, j : j + m], out=xb[:m])
            if scales is None:
                torch.sub(x, p1, out=u)
            else:
                torch.div(x, scales[r], out=u).sub_(p1)
            u.div_(step).clamp_(0, n - 1)
            k.copy_(u)  # ⌊u⌋ (u ≥ 0)
            u.frac_()  # r = u − ⌊u⌋
            torch.index_select(td[r], 0, k, out=dk)
            torch.index_select(ts[r], 0, k, out=sk)
            torch.add(x, dk.addcmul_(u, sk), out=out[r, j : j + m])
    return out.view(a.shape)


def make_shrink(
    q: torch.Tensor,
    threshold: torch.Tensor,
    mode: str,
    t_ref: float,
    step: float,
    base: torch.Tensor | None = None,
    fast: bool = True,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The E-step map S of (S7–S8) for a batch, as a callable ``a (B, L, H, W) → E``.

    With ``fast`` it is a :class:`_FastShrink`, which also offers ``of_sum(a, b)`` = S(a + b)
    for :func:`hifm.ops.e_step`.

    Args:
        q: ``(L, I_t)`` learned values.
        threshold: ``(B,)`` noise-adaptive t of each image.
        mode: ``"scaled"``: S(a) = (t/t₀)·V(a·t₀/t; q) (a value map on t-normalised
            inputs; with q = soft_{t₀}(p) it is exactly soft_t); ``"absolute"``:
            S(a) = V(a; q_base + q) with q_base = soft_t(p) (the solver's
            ``value_map_from_threshold(t)``) or the fixed ``base``.
        t_ref: t₀ of the scaled mode.
        step: V, the spacing of the control points.
        base: ``(L, I_t)`` fixed base values for the absolute mode (a user value map),
            or None for soft_t(p).
        fast: use :func:`value_map_torch` instead of the reference
            :func:`hifm.shrink.value_map_shrink` (same function).
    """
    b = threshold.shape[0]
    vm = value_map_torch if fast else value_map_shrink
    if mode == "scaled":
        scale = (threshold / t_ref).reshape(b, 1, 1, 1)
        if fast:
            return _FastShrink(q, step, scale)
        return lambda a: scale * vm(a / scale, q, step)
    if mode == "absolute":
        if base is None:
            p = torch.as_tensor(control_points(q.shape[-1], step), dtype=q.dtype, device=q.device)
            base_b = soft_threshold(p, threshold.reshape(b, 1, 1))  # (B, 1, I_t)
        else:
            base_b = base.unsqueeze(0)
        q_eff = (base_b + q).expand(b, *q.shape)  # (B, L, I_t)
        if fast:
            return _FastShrink(q_eff, step, None)
        return lambda a: vm(a, q_eff, step)
    raise ValueError(f"value map mode must be one of {VALUE_MAP_MODES}, got {mode!r}")


class _FastShrink:
    """S of :func:`make_shrink` by :func:`value_map_torch`: ``S(a)``, and ``S.of_sum(a, b)`` =
    S(a + b) without a whole-image a + b (called by :func:`hifm.ops.e_step`)."""

    def __init__(self, q: torch.Tensor, step: float, scale: torch.Tensor | None):
        self.q, self.step, self.scale = q, step, scale

    def __call__(self, a: torch.Tensor) -> torch.Tensor:
        return value_map_torch(a, self.q, self.step, self.scale)

    def of_sum(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.shape != b.shape:
            return self(a + b)
        return value_map_torch(a, self.q, self.step, self.scale, addend=b)


class Stage(nn.Module):
    """One unrolled ADMM iteration (§2.1 steps 1–5) with its own parameters.

    Args:
        init: initial values (:class:`StageInit`).
        h_steps: J, H-step gradient steps per stage.
        value_map: ``"scaled"`` or ``"absolute"`` (see :func:`make_shrink`).
        t_ref: t₀ of the scaled mode.
        step: V of the value maps.
        base_q: optional fixed base values for the absolute mode.
        fast_value_map: the E-step by :func:`value_map_torch` (default) or by the reference.
        learn: names of :data:`STAGE_PARAMETERS` that are ``nn.Parameter`` objects (default: all);
            the others are fixed buffers.  An untied DeRUN uses this for values that cannot
            reach its output (:func:`live_parameters`).
    """

    def __init__(
        self,
        init: StageInit,
        h_steps: int = 1,
        value_map: str = "scaled",
        t_ref: float = 0.1,
        step: float = 0.02,
        base_q: np.ndarray | None = None,
        fast_value_map: bool = True,
        learn: "Collection[str] | None" = None,
    ):
        super().__init__()
        self.learn = frozenset(STAGE_PARAMETERS if learn is None else learn)
        if not self.learn <= set(STAGE_PARAMETERS):
            raise ValueError(f"unknown stage parameter(s) {sorted(self.learn - set(STAGE_PARAMETERS))}")
        self.fast_value_map = bool(fast_value_map)
        self._denom_cache: tuple[tuple, torch.Tensor] | None = None
        if value_map not in VALUE_MAP_MODES:
            raise ValueError(f"value_map must be one of {VALUE_MAP_MODES}, got {value_map!r}")
        f64 = lambda x: torch.tensor(np.asarray(x, dtype=np.float64))  # noqa: E731
        self.h_steps = int(h_steps)
        self.value_map = value_map
        self.t_ref = float(t_ref)
        self.step = float(step)
        self.register_buffer("atoms", f64(dct_atoms().kernels), persistent=False)
        if base_q is not None:
            self.register_buffer("base_q", f64(base_q))
        else:
            self.base_q = None
        def learned(name: str, value: np.ndarray) -> None:
            if name in self.learn:
                setattr(self, name, nn.Parameter(f64(value)))
            else:
                self.register_buffer(name, f64(value))

        learned("coef_l", init.coef_l)
        learned("kernels_k", init.kernels_k)
        learned("raw_rho", softplus_inverse(init.rho))
        learned("raw_tau", softplus_inverse(init.tau))
        learned("raw_eta", softplus_inverse(init.eta))
        learned("raw_omega", softplus_inverse(init.omega))
        mu = np.maximum(np.asarray(init.mu, dtype=np.float64), POSITIVE_FLOOR)
        learned("raw_mu", softplus_inverse(mu))
        learned("raw_theta", softplus_inverse(init.theta))
        # s = σ·(τ + 2μθ) with the μ actually used, so that σ equals the solver's σ at init.
        bound = ops.h_step_bound(np.asarray(init.tau, np.float64), mu, np.asarray(init.theta, np.float64))
        s = np.asarray(init.sigma, dtype=np.float64) * bound
        if np.any(s <= 0) or np.any(s >= 2):
            raise ValueError(f"H-step size σ must lie in (0, 2/(τ + 2μθ)); got factors {s}")
        learned("raw_s", _logit(s / 2.0))
        learned("q", init.q)

    # ------------------------------------------------------------- parameters
    @property
    def n_l(self) -> int:
        return self.coef_l.shape[0]

    @property
    def n_k(self) -> int:
        return self.kernels_k.shape[0]

    def filters_l(self) -> torch.Tensor:
        """∇_l kernels ``(L, 3, 3)``: learned combinations of the DCT atoms."""
        return torch.einsum("la,ahw->lhw", self.coef_l, self.atoms.to(self.coef_l.dtype))

    def filters_k(self) -> torch.Tensor:
        """∇_k kernels ``(K, 3, 3)``."""
        return self.kernels_k

    def scalars(self) -> dict[str, torch.Tensor]:
        """ρ, η (L,) and τ, ω, μ, θ, σ, s (K,) as positive tensors."""
        tau, mu, theta = F.softplus(self.raw_tau), F.softplus(self.raw_mu), F.softplus(self.raw_theta)
        s = 2.0 * torch.sigmoid(self.raw_s)
        return dict(
            rho=F.softplus(self.raw_rho), eta=F.softplus(self.raw_eta), tau=tau, omega=F.softplus(self.raw_omega),
            mu=mu, theta=theta, s=s, sigma=s / ops.h_step_bound(tau, mu, theta),
        )

    def step_weights(self, threshold: torch.Tensor, mu_factor: torch.Tensor | None = None) -> iteration.StepWeights:
        """The :class:`hifm.iteration.StepWeights` of this stage for per-image thresholds ``(B,)``.

        ``mu_factor`` ``(B,)``: the noise adaptation min(1, (t_c/t)²) of μ; then μ_eff = μ·factor
        and σ = s/(τ + 2μ_eff θ) are per image, ``(B, K)``.
        """
        sc = self.scalars()
        shrink = make_shrink(self.q, threshold, self.value_map, self.t_ref, self.step, self.base_q, self.fast_value_map)
        mu, sigma = sc["mu"], sc["sigma"]
        if mu_factor is not None:
            mu = mu_factor.reshape(-1, 1) * mu  # (B, K)
            sigma = sc["s"] / ops.h_step_bound(sc["tau"], mu, sc["theta"])
        return iteration.StepWeights(
            rho=sc["rho"], eta=sc["eta"], tau=sc["tau"], omega=sc["omega"], mu=mu, theta=sc["theta"],
            sigma=sigma, shrink=shrink, h_steps=self.h_steps,
        )

    # ---------------------------------------------------------------- forward
    def forward(
        self, state: iteration.ADMMState, m: torch.Tensor, threshold: torch.Tensor, target: torch.Tensor | None = None,
        mu_factor: torch.Tensor | None = None,
    ) -> iteration.ADMMState:
        """One iteration (§2.1) on the padded anchor ``m (B, H, W)``.

        ``target`` ``(B, K, H, W)``: the gradient target T_k (§2.4), None for ∇_k M (made here
        with :func:`hifm.ops.grad`); ``mu_factor`` ``(B,)``: see :meth:`step_weights`.  The OTFs of
        the learned filters and the Y-step's D (S6) are built with :func:`hifm.ops.denominator`
        (differentiable).
        """
        kl, kk = self.filters_l(), self.filters_k()
        w = self.step_weights(threshold, mu_factor)
        denom = self.denominator(kl, w.rho, kk, w.tau, tuple(m.shape[-2:]))
        target_k = ops.grad(m, kk) if target is None else target
        return iteration.admm_step(state, m, target_k, denom, kl, kk, w)

    def denominator(self, kl: torch.Tensor, rho: torch.Tensor, kk: torch.Tensor, tau: torch.Tensor,
                    shape: tuple[int, int]) -> torch.Tensor:
        """D of (S6) by :func:`hifm.ops.denominator`; without autograd it is computed once per
        image size and parameter version (DESIGN §2.1: "precompute it once per size")."""
        if backend.records_graph(*self.parameters()):
            return ops.denominator(kl, rho, kk, tau, shape)
        key = (shape, kl.dtype, kl.device) + tuple(
            p._version for p in (self.coef_l, self.kernels_k, self.raw_rho, self.raw_tau)
        ) + tuple(id(p) for p in (self.coef_l, self.kernels_k, self.raw_rho, self.raw_tau))
        if self._denom_cache is None or self._denom_cache[0] != key:
            self._denom_cache = (key, ops.denominator(kl, rho, kk, tau, shape))
        return self._denom_cache[1]

    def extra_repr(self) -> str:
        return (f"L={self.n_l}, K={self.n_k}, I_t={self.q.shape[-1]}, value_map={self.value_map!r}, J={self.h_steps}"
                + ("" if self.learn == set(STAGE_PARAMETERS) else f", learn={sorted(self.learn)}"))

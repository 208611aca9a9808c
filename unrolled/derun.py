"""DeRUN: the HIFM ADMM (DESIGN §2.1) unrolled into N learned stages, with a learned anchor (§7).

Forward pass for sources A, B ``(B, H, W)`` in [0, 1] (luminance):

0. with ``denoise_sources`` (the default, as :func:`hifm.solve`), each source is TV-denoised at
   its own noise level (:func:`hifm.denoise.tv_denoise`);
1. base = anchor(A, B) (the solver's anchor, :func:`hifm.anchors.anchor`);
   t = λ/ρ with λ = max(λ_min, κ·(σ̂ − σ₀)) per image, σ̂ from the sources or the base as the
   solver (:func:`hifm.noise.noise_level`), or λ/ρ with the fixed λ; μ_eff = μ·min(1, (t_c/t)^p);
2. M_θ = base + R(extractor(A, B)) (R's last layer is zero at init, so M_θ = base);
3. M_θ, A and B are padded by half-sample reflection to a fast FFT size
   (:func:`hifm.solver.pad_reflect`, :func:`hifm.solver.padded_shape`), exactly as
   :class:`hifm.solver.HIFMSolver` does;
4. Y⁰ = M, E⁰ = ∇_l M, F⁰ = 0, H⁰ = ∇_k M − T_k, G⁰ = 0 (:func:`hifm.iteration.init_state`, with
   stage 1's filters), then N stages (:class:`unrolled.layers.Stage`, each one
   :func:`hifm.iteration.admm_step`), each with its gradient target T_k
   (:func:`hifm.ops.gradient_target` with the stage's own ∇_k: ∇_k M_θ or the source-driven target);
5. every stage's Y is cropped back to H×W; the last one is the fused image (not clipped).

:meth:`DeRUN.from_hifm` builds the network at the solver's handcrafted parameters:
its output then equals ``hifm.solve(A, B, iters=N)`` (tested to 1e-6 in float64).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from hifm import backend, iteration
from hifm.anchors import anchor as make_anchor
from hifm.filters import dct_atoms, get_bank
from hifm.denoise import tv_denoise
from hifm.noise import noise_level
from hifm.ops import TARGETS, gradient_target
from hifm.params import HIFMParams
from hifm.shrink import VALUE_MAP_POINTS, VALUE_MAP_STEP, control_points, soft_threshold
from hifm.solver import pad_reflect, padded_shape

from .layers import VALUE_MAP_MODES, Stage, StageInit, live_parameters
from .pwsm import EXTRACTORS, AnchorHead, banded, make_extractor

__all__ = ["DeRUNConfig", "DeRUN", "DeRUNOutput"]


@dataclass
class DeRUNConfig:
    """Architecture and initial values of DeRUN (JSON-serialisable; saved with the weights).

    The scalar fields are the *initial* values of every stage (HIFM units, DESIGN §2.3).

    Attributes:
        stages: N, unrolled iterations.
        tied: one set of stage parameters shared by all stages.
        filters_l / filters_k: initial ∇_l / ∇_k: a bank name of :data:`hifm.filters.BANKS`
            or a nested list of kernels ``(n, 3, 3)``.  ∇_l must be zero-mean (it is a
            combination of the 8 non-constant DCT atoms).
        rho, tau, eta, omega, mu, theta: ρ, τ, η, ω, μ, θ (μ = 0 is initialised as 1e-12).
        target: the gradient target of φ (:data:`hifm.ops.TARGETS`): ``"sources"`` or ``"anchor"``
            (T_k = ∇_k M_θ, the supplement's model).
        mu_noise_ref, mu_noise_power: t_c and p of the noise-adaptive μ_eff = μ·min(1, (t_c/t)^p)
            (None: μ as learned).
        denoise_sources: TV-denoise each source at its own noise level before anything else, as
            :func:`hifm.solve` does (:func:`hifm.denoise.tv_denoise`, with the noise rule of
            ``threshold``; only with the noise-adaptive λ).
        sigma_h: H-step size; None = 1/(τ + 2μθ) (the learned factor s then starts at 1).
        h_steps: J, H-step gradient steps per stage.
        threshold: the :class:`hifm.params.HIFMParams` fields that fix the E-step threshold t
            (``lam``, ``rho`` and every ``noise_*`` field; missing ones take the HIFMParams
            defaults when the configuration is made, so saved weights keep their values).
            t of an image is ``HIFMParams(**threshold).threshold(σ̂(anchor))`` — the solver's
            own definition (noise-adaptive when ``lam`` is None).
        value_map: ``"scaled"`` or ``"absolute"`` (:func:`unrolled.layers.make_shrink`).
        value_map_ref: t₀ of the scaled mode (a multiple of V: then q⁰ = soft_{t₀}(p) is exact).
        value_map_init: optional fixed base values (I_t,) or (L, I_t) of the absolute mode
            (the solver's ``params.value_map``).
        anchor: the base anchor (name of :data:`hifm.anchors.ANCHORS`).
        margin: reflective padding (pixels) before the FFT domain is rounded up.
        extractor: ``pwsm`` | ``symmetric`` | ``siamese`` | ``sobel`` | ``none`` (no learned anchor).
        head_width: channels of R's hidden layer.
        fast_value_map: evaluate the value maps with :func:`unrolled.layers.value_map_torch`
            (the same function as :func:`hifm.shrink.value_map_shrink`, several times faster on
            the CPU: about 6× at 8×500×675 without autograd).
    """

    stages: int = 9
    tied: bool = False
    filters_l: Any = "dct3"
    filters_k: Any = "diff"
    # initial scalars: the solver's defaults (one place defines them: hifm.params.HIFMParams)
    rho: float = HIFMParams.rho
    tau: float = HIFMParams.tau
    eta: float = HIFMParams.eta
    omega: float = HIFMParams.omega
    mu: float = HIFMParams.mu
    theta: float = HIFMParams.theta
    sigma_h: float | None = HIFMParams.sigma_h
    h_steps: int = HIFMParams.h_steps
    target: str = HIFMParams.target
    mu_noise_ref: float | None = HIFMParams.mu_noise_ref
    mu_noise_power: float = HIFMParams.mu_noise_power
    denoise_sources: bool = HIFMParams.denoise_sources
    threshold: dict[str, Any] = field(default_factory=dict)
    value_map: str = "scaled"
    value_map_ref: float = 0.1
    value_map_points: int = VALUE_MAP_POINTS
    value_map_step: float = VALUE_MAP_STEP
    value_map_init: Any = None
    anchor: str = HIFMParams.anchor
    margin: int = 8
    extractor: str = "pwsm"
    head_width: int = 12
    fast_value_map: bool = True

    def __post_init__(self) -> None:
        defaults = HIFMParams()
        names = [f.name for f in dataclasses.fields(HIFMParams) if f.name in ("lam", "rho") or f.name.startswith("noise_")]
        unknown = sorted(set(self.threshold) - set(names))
        if unknown:
            raise ValueError(f"unknown threshold field(s) {unknown}; valid: {names}")
        full = {k: self.threshold.get(k, getattr(defaults, k)) for k in names}
        if "rho" not in self.threshold:
            full["rho"] = self.rho
        self.threshold = full
        HIFMParams(**full)  # validates the values
        if int(self.stages) < 1:
            raise ValueError(f"stages must be ≥ 1, got {self.stages}")
        if self.value_map not in VALUE_MAP_MODES:
            raise ValueError(f"value_map must be one of {VALUE_MAP_MODES}, got {self.value_map!r}")
        if self.extractor not in EXTRACTORS:
            raise ValueError(f"extractor must be one of {EXTRACTORS}, got {self.extractor!r}")
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {list(TARGETS)}, got {self.target!r}")
        if self.mu_noise_ref is not None and not (np.isfinite(self.mu_noise_ref) and self.mu_noise_ref > 0):
            raise ValueError(f"mu_noise_ref must be a positive number or None, got {self.mu_noise_ref!r}")
        for name in ("filters_l", "filters_k"):
            v = getattr(self, name)
            if isinstance(v, np.ndarray):
                setattr(self, name, v.tolist())

    def bank(self, which: str) -> np.ndarray:
        """Kernels ``(n, kh, kw)`` of ``filters_l`` or ``filters_k``."""
        v = getattr(self, f"filters_{which}")
        return get_bank(v if isinstance(v, str) else np.asarray(v, dtype=np.float64)).kernels

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if isinstance(d["value_map_init"], np.ndarray):
            d["value_map_init"] = d["value_map_init"].tolist()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DeRUNConfig":
        """The configuration saved as ``d``.  A saved configuration that predates the gradient
        target (no ``target`` field) describes the supplement's model it was trained with:
        its missing fields take those values (:data:`LEGACY_FIELDS`), not today's defaults."""
        d = dict(d)
        if "target" not in d:
            for key, value in LEGACY_FIELDS.items():
                d.setdefault(key, value)
            d["threshold"] = {"noise_from": "anchor", **dict(d.get("threshold") or {})}
        return dataclass_from_dict(cls, d, "DeRUN configuration")

    @classmethod
    def from_hifm(cls, params: HIFMParams | None = None, stages: int = 9, **overrides: Any) -> "DeRUNConfig":
        """The configuration whose initial network equals the solver with ``params`` (defaults when None).

        The E-step: ``shrink="soft"`` → value map mode ``"scaled"`` (exactly soft_t for every t);
        ``shrink="value_map"`` → ``"absolute"`` (exactly the solver's value map).
        """
        p = params if params is not None else HIFMParams()
        kw: dict[str, Any] = dict(
            stages=stages, filters_l=p.filters_l.kernels.tolist(), filters_k=p.filters_k.kernels.tolist(),
            rho=p.rho, tau=p.tau, eta=p.eta, omega=p.omega, mu=p.mu, theta=p.theta, sigma_h=p.sigma_h,
            h_steps=p.h_steps, target=p.target, mu_noise_ref=p.mu_noise_ref, mu_noise_power=p.mu_noise_power,
            denoise_sources=p.denoise_sources,
            threshold={f.name: getattr(p, f.name) for f in dataclasses.fields(p)
                       if f.name in ("lam", "rho") or f.name.startswith("noise_")},
            value_map="absolute" if p.shrink == "value_map" else "scaled",
            value_map_init=np.asarray(p.value_map).tolist() if p.value_map is not None else None,
            anchor=p.anchor, margin=p.margin,
        )
        kw.update(overrides)
        return cls(**kw)


#: Values of the fields that configurations saved before the gradient target (§2.4) lack.
LEGACY_FIELDS: dict[str, Any] = {"target": "anchor", "mu_noise_ref": None, "denoise_sources": False}


class DeRUNOutput(NamedTuple):
    """``fused`` (B, H, W); ``stages``: every stage's Y (B, H, W), the last is ``fused``;
    ``anchor``: M_θ (B, H, W); ``threshold``: t per image (B,)."""

    fused: torch.Tensor
    stages: list[torch.Tensor]
    anchor: torch.Tensor
    threshold: torch.Tensor


def dataclass_from_dict(cls: type, d: dict[str, Any], what: str) -> Any:
    """``cls(**d)``, or a ValueError naming the unknown fields and the valid ones."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"unknown {what} field(s) {unknown}; valid: {sorted(names)}")
    return cls(**d)


def _stage_init(cfg: DeRUNConfig) -> StageInit:
    """Initial values of a stage from the configuration (float64)."""
    kl, kk = cfg.bank("l"), cfg.bank("k")
    if kl.shape[1:] != (3, 3) or kk.shape[1:] != (3, 3):
        raise ValueError(f"DeRUN learns 3×3 filters; got ∇_l {kl.shape[1:]} and ∇_k {kk.shape[1:]}")
    atoms = dct_atoms().kernels.reshape(8, 9)
    if kl.shape == (8, 3, 3) and np.array_equal(kl.reshape(8, 9), atoms):
        coef = np.eye(8)  # the DCT bank itself: exactly the identity
    else:
        coef = kl.reshape(len(kl), 9) @ atoms.T  # the atoms are orthonormal
    resid = np.abs(coef @ atoms - kl.reshape(len(kl), 9)).max()
    if resid > 1e-12:
        raise ValueError("∇_l must be zero-mean 3×3 kernels (combinations of the 8 non-constant DCT atoms)")
    nl, nk = len(kl), len(kk)
    tau, mu, theta = cfg.tau, max(cfg.mu, 0.0), cfg.theta
    sigma = cfg.sigma_h if cfg.sigma_h is not None else 1.0 / (tau + 2.0 * mu * theta)
    p = control_points(cfg.value_map_points, cfg.value_map_step)
    if cfg.value_map == "scaled":
        q = np.broadcast_to(soft_threshold(p, cfg.value_map_ref), (nl, p.size)).copy()
    else:
        q = np.zeros((nl, p.size))
    return StageInit(
        coef_l=coef, kernels_k=kk.copy(), rho=np.full(nl, cfg.rho), eta=np.full(nl, cfg.eta),
        tau=np.full(nk, tau), omega=np.full(nk, cfg.omega), mu=np.full(nk, mu), theta=np.full(nk, theta),
        sigma=np.full(nk, sigma), q=q,
    )


class DeRUN(nn.Module):
    """Degradation-resistant unfolding network: N stages of the HIFM ADMM with learned parameters.

    Args:
        config: a :class:`DeRUNConfig` (defaults when None); keyword arguments override its fields.
        dtype: parameter dtype (float32 by default; float64 for the equivalence with the solver).

    Call ``net(a, b)`` with ``(B, H, W)``, ``(B, 1, H, W)`` or ``(H, W)`` tensors in [0, 1]
    (A: infrared/MRI, B: visible/CT/PET/SPECT luminance) for the fused image (same shape
    as the input, not clipped); ``net(a, b, return_all=True)`` gives a :class:`DeRUNOutput`.
    """

    def __init__(self, config: DeRUNConfig | None = None, dtype: torch.dtype = torch.float32, **overrides: Any):
        super().__init__()
        cfg = config if config is not None else DeRUNConfig()
        if overrides:
            cfg = dataclasses.replace(cfg, **overrides)
        self.config = cfg
        self._threshold_params = HIFMParams(**cfg.threshold)
        init = _stage_init(cfg)
        base_q = None
        if cfg.value_map == "absolute" and cfg.value_map_init is not None:
            base_q = np.broadcast_to(np.asarray(cfg.value_map_init, np.float64), init.q.shape).copy()
        n_modules = 1 if cfg.tied else int(cfg.stages)
        # untied: values that cannot reach the output (stage 1's Y-, H-, G-steps, stage N's
        # E-, F-, H-, G-steps; unrolled.layers.live_parameters) are buffers, not parameters
        self.stages = nn.ModuleList(
            Stage(init, cfg.h_steps, cfg.value_map, cfg.value_map_ref, cfg.value_map_step, base_q, cfg.fast_value_map,
                  learn=None if cfg.tied else live_parameters(i, n_modules))
            for i in range(n_modules)
        )
        self.extractor = make_extractor(cfg.extractor)
        self.head = AnchorHead(2 * self.extractor.out_channels, cfg.head_width) if self.extractor is not None else None
        self.to(dtype)

    # ------------------------------------------------------------- constructors
    @classmethod
    def from_hifm(
        cls, params: HIFMParams | None = None, stages: int = 9, dtype: torch.dtype = torch.float32, **overrides: Any
    ) -> "DeRUN":
        """The network at the solver's handcrafted parameters (HIFMParams defaults when None).

        Its output equals ``hifm.solve(A, B, iters=stages, params=params)`` before the final
        clip (tested to 1e-6 in float64).  ``overrides`` change configuration fields
        (e.g. ``extractor="siamese"``, ``value_map="absolute"``).
        """
        return cls(DeRUNConfig.from_hifm(params, stages, **overrides), dtype=dtype)

    # ---------------------------------------------------------------- helpers
    @property
    def dtype(self) -> torch.dtype:
        """The floating dtype of the network (of its value maps, present in every configuration)."""
        return self.stages[0].q.dtype

    @property
    def n_stages(self) -> int:
        return int(self.config.stages)

    @property
    def noise_rule(self) -> HIFMParams:
        """The solver parameters of the noise rule (λ or κ, σ₀, λ_min, ρ, ``noise_from``): the
        thresholds, the sources' denoising and, in :func:`unrolled.inference.fuse_derun`, the chroma's."""
        return self._threshold_params

    def stage(self, n: int) -> Stage:
        """The module of stage ``n`` (0-based); the same module for every n when tied."""
        return self.stages[0 if self.config.tied else n]

    def count_parameters(self) -> dict[str, int]:
        """Learned parameters: total, stages, extractor, head."""
        def count(mod: nn.Module | None) -> int:
            return 0 if mod is None else sum(p.numel() for p in mod.parameters())

        out = {"stages": count(self.stages), "extractor": count(self.extractor), "head": count(self.head)}
        out["total"] = sum(out.values())
        return out

    def thresholds(self, base: torch.Tensor, a: torch.Tensor | None = None, b: torch.Tensor | None = None) -> torch.Tensor:
        """t per image ``(B,)`` by the solver's rule :meth:`hifm.params.HIFMParams.threshold`
        (λ/ρ when λ is fixed, else the noise-adaptive t of σ̂, DESIGN §2.3, estimated where
        ``threshold["noise_from"]`` says: the sources A, B or the base anchor); no gradient."""
        p = self._threshold_params
        if p.lam is not None:
            return base.new_full((base.shape[0],), p.threshold(0.0))
        if p.noise_from == "sources" and (a is None or b is None):
            raise ValueError("the noise-adaptive threshold is estimated on the sources: pass a and b")
        with torch.no_grad():
            values = [
                p.threshold(noise_level(a[i].detach() if a is not None else None, b[i].detach() if b is not None else None,
                                        base[i].detach(), p.noise_from))
                for i in range(base.shape[0])
            ]
        return torch.tensor(values, dtype=base.dtype, device=base.device)

    def denoised_sources(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each source image TV-denoised at its own noise level (:func:`hifm.denoise.tv_denoise`, the
        solver's rule; clean images are returned as they are); no gradient flows through it."""
        p = self._threshold_params
        with torch.no_grad():
            out = [torch.stack([tv_denoise(x, p)[0] for x in src]) for src in (a, b)]
        return out[0], out[1]

    def mu_factor(self, threshold: torch.Tensor) -> torch.Tensor | None:
        """min(1, (t_c/t)²) per image ``(B,)``: the noise adaptation of μ (:meth:`HIFMParams.effective_mu`),
        or None when ``mu_noise_ref`` is None."""
        tc = self.config.mu_noise_ref
        if tc is None:
            return None
        return torch.clamp((tc / threshold) ** self.config.mu_noise_power, max=1.0)

    def learned_anchor(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(M_θ, base): M_θ = anchor(A, B) + R(extractor(A, B)), shapes ``(B, H, W)``.

        Without autograd, R ∘ extractor runs in row bands (:func:`unrolled.pwsm.banded`; the same values)."""
        base = make_anchor(a, b, self.config.anchor)
        if self.extractor is None:
            return base, base
        extractor, head = self.extractor, self.head

        def correction(a_: torch.Tensor, b_: torch.Tensor) -> torch.Tensor:
            return head(extractor(a_, b_))

        if backend.records_graph(a, b, *self.parameters()):
            r = correction(a[:, None], b[:, None])
        else:  # inference: row bands (exact: R ∘ extractor is a stack of zero-padded 3×3 convolutions)
            r = banded(correction, (a[:, None], b[:, None]), extractor.radius + head.radius)
        return base + r[:, 0], base

    # ---------------------------------------------------------------- forward
    def forward(self, a: torch.Tensor, b: torch.Tensor, return_all: bool = False) -> "torch.Tensor | DeRUNOutput":
        """Fuse ``a`` and ``b``; see the class docstring for shapes."""
        if a.shape != b.shape:
            raise ValueError(f"sources differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
        squeeze = None
        if a.ndim == 2:
            a, b, squeeze = a[None], b[None], "hw"
        elif a.ndim == 4:
            if a.shape[1] != 1:
                raise ValueError(f"expected one channel (luminance), got {a.shape[1]}")
            a, b, squeeze = a[:, 0], b[:, 0], "b1hw"
        elif a.ndim != 3:
            raise ValueError(f"expected (H, W), (B, H, W) or (B, 1, H, W) tensors, got {tuple(a.shape)}")
        dtype = self.dtype
        a, b = a.to(dtype), b.to(dtype)
        if self.config.denoise_sources and self._threshold_params.lam is None:
            a, b = self.denoised_sources(a, b)
        h, w = a.shape[-2:]
        m, base = self.learned_anchor(a, b)
        t = self.thresholds(base, a, b)
        mu_factor = self.mu_factor(t)
        margin = int(self.config.margin)
        pshape = padded_shape((h, w), margin)
        mp = pad_reflect(m, margin, pshape)
        kind = self.config.target
        sources = (pad_reflect(a, margin, pshape), pad_reflect(b, margin, pshape)) if kind != "anchor" else (None, None)

        def target_of(stage: Stage) -> torch.Tensor:
            return gradient_target(kind, mp, sources[0], sources[1], stage.filters_k())

        first = self.stage(0)
        state = iteration.init_state(mp, first.filters_l(), first.filters_k(), None if kind == "anchor" else target_of(first))
        outs = []
        for n in range(self.n_stages):
            stage = self.stage(n)
            state = stage(state, mp, t, target_of(stage), mu_factor)
            outs.append(state.y[..., margin : margin + h, margin : margin + w])

        def shape_back(x: torch.Tensor) -> torch.Tensor:
            if squeeze == "hw":
                return x[0]
            if squeeze == "b1hw":
                return x[:, None]
            return x

        if not return_all:
            return shape_back(outs[-1])
        return DeRUNOutput(shape_back(outs[-1]), [shape_back(o) for o in outs], shape_back(m), t)

    def extra_repr(self) -> str:
        c = self.config
        return f"stages={c.stages}, tied={c.tied}, value_map={c.value_map!r}, extractor={c.extractor!r}"

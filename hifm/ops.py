"""The operators and updates of the HIFM ADMM, one definition for all backends (§2.1, §6).

Every function is a pure function of arrays (NumPy, CuPy or torch, with autograd)
and takes its array module from its inputs.  Images are ``(..., H, W)``; the
responses of a bank of n filters are ``(..., n, H, W)``; per-filter scalars
(ρ_l, τ_k, η_l, ω_k, μ_k, λ_l, σ_k) are 1-D arrays of length n (or Python
floats) and broadcast as ``(n, 1, 1)``.

Equation numbers refer to DESIGN.md §2.1 and the supplement's (S1)–(S12).

Torch fast paths (DESIGN §6, "backend-specific fast kernels", §12).  When torch records
no autograd graph (inference; :func:`hifm.backend.records_graph` is False), :func:`grad` runs as a circularly padded
``conv2d`` (or tap by tap for banks of ≤ 4 filters on the CPU), :func:`grad_adjoint` and
:func:`y_rhs` as one matrix product over the taps followed by shifted block additions
(on the CPU band of rows by band of rows, so the tap sums live in one small reused buffer
instead of a whole-image temporary) instead of per-tap ``roll`` copies, and
:func:`y_step` / :func:`h_step` update their own temporaries in place.  With a
graph (training) the generic definitions run (``_grad_generic``,
``_grad_adjoint_generic``, ``_y_rhs_generic``): measured at 128×128 training crops they
are faster forward + backward than ``conv2d``.  :func:`dual_update` is one ``addcmul`` on
torch either way.  The fast paths compute the same expressions (only the rounding
differs); ``tests/test_torch_fastpaths.py`` checks them against the generic ones in
float64.  Inputs are never modified: the functions stay pure.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import backend
from .filters import otf
from .shrink import soft_threshold

__all__ = [
    "as_column",
    "grad",
    "grad_adjoint",
    "denominator",
    "y_rhs",
    "y_step",
    "e_step",
    "dual_update",
    "lorentzian",
    "lorentzian_grad",
    "h_step",
    "h_step_bound",
    "objective",
    "TARGETS",
    "source_target",
    "gradient_target",
]


def as_column(v: Any, like: Any) -> Any:
    """Per-filter scalars ``(n,)`` (or a scalar) as an ``(n, 1, 1)`` array broadcasting over images."""
    if isinstance(v, (int, float)):
        return v
    if not (backend.is_torch(v) or backend.is_cupy(v)):
        v = backend.asarray_like(np.asarray(v, dtype=np.float64), like)
    if v.ndim == 0:
        return v
    return v.reshape(tuple(v.shape) + (1, 1))


def _taps(kernels: Any) -> tuple[int, int]:
    return kernels.shape[1] // 2, kernels.shape[2] // 2


def _torch_conv_ok(x: Any, kernels: Any) -> bool:
    """The torch fast path applies: torch data and kernels of the same dtype and device, a
    non-empty bank, an image at least as large as the kernel radius (circular padding wraps
    once), and no autograd graph to record."""
    if not (backend.is_torch(x) and backend.is_torch(kernels)) or x.ndim < 2 or kernels.shape[0] == 0:
        return False
    c0, c1 = _taps(kernels)
    return (
        x.dtype == kernels.dtype and x.device == kernels.device and not x.is_complex()
        and c0 <= x.shape[-2] and c1 <= x.shape[-1] and not backend.records_graph(x, kernels)
    )


def grad(x: Any, kernels: Any) -> Any:
    """∇x: the circular convolutions of ``x (..., H, W)`` with each kernel → ``(..., n, H, W)``.

    (K ⊛ x)[i, j] = Σ_{u,v} K[u, v] x[i − (u − c₀), j − (v − c₁)] = Σ_{u,v} K[u, v] roll(x, (u − c₀, v − c₁)).

    Torch fast path (no autograd graph): the same sum as ``conv2d`` (a correlation) of the
    circularly padded image with the flipped kernels, Σ_{u,v} K[kh−1−u, kw−1−v] x_pad[i + u, j + v].
    """
    if _torch_conv_ok(x, kernels):
        return _grad_torch(x, kernels)
    return _grad_generic(x, kernels)


def _grad_generic(x: Any, kernels: Any) -> Any:
    """:func:`grad` by rolls and one contraction over the taps (any backend: the reference)."""
    xp = backend.get_xp(x, kernels)
    n, kh, kw = kernels.shape
    c0, c1 = _taps(kernels)
    shifted = xp.stack(
        [xp.roll(x, (u - c0, v - c1), (-2, -1)) for u in range(kh) for v in range(kw)], -3
    )  # (..., kh*kw, H, W)
    return xp.einsum("nt,...thw->...nhw", kernels.reshape(n, kh * kw), shifted)


#: Banks up to this size take the tap-by-tap path of :func:`_grad_torch` on the CPU without
#: autograd (oneDNN's convolution is slow for so few output channels).
_FEW_FILTERS = 4


def _grad_torch(x: Any, kernels: Any) -> Any:
    """:func:`grad` on torch tensors: ``conv2d`` of the circularly padded image with the flipped
    kernels, or (CPU, no autograd, ≤ :data:`_FEW_FILTERS` filters) the same sum tap by tap."""
    from torch.nn import functional as F

    n, kh, kw = kernels.shape
    c0, c1 = _taps(kernels)
    h, w = x.shape[-2:]
    xpad = F.pad(x.reshape(-1, 1, h, w), (c1, c1, c0, c0), mode="circular")[:, 0]
    flipped = kernels.flip(-2, -1)
    if n <= _FEW_FILTERS and x.device.type == "cpu" and not backend.records_graph(x, kernels):
        # out_n = Σ_{u,v} K_n[kh−1−u, kw−1−v] · x_pad[i + u, j + v], accumulated tap by tap
        taps = flipped.tolist()
        out = xpad.new_empty((xpad.shape[0], n, h, w))
        for i in range(n):
            acc = out[:, i]
            acc.copy_(xpad[:, :h, :w]).mul_(taps[i][0][0])
            for u in range(kh):
                for v in range(kw):
                    if (u or v) and taps[i][u][v] != 0.0:
                        acc.add_(xpad[:, u : u + h, v : v + w], alpha=taps[i][u][v])
    else:
        out = F.conv2d(xpad.unsqueeze(1), flipped.unsqueeze(1))
    return out.reshape(tuple(x.shape[:-2]) + (n, h, w))


def grad_adjoint(z: Any, kernels: Any) -> Any:
    """∇ᵀz = Σ_n K_nᵀ z_n: correlation with each kernel, summed over the bank → ``(..., H, W)``.

    (∇ᵀz)[i, j] = Σ_{u,v} P_{uv}[i + u − c₀, j + v − c₁] (circular) with the per-tap sums
    P_{uv} = Σ_n K_n[u, v] z_n (torch fast path without an autograd graph: one matrix
    product for P, then shifted block additions).
    """
    if _torch_conv_ok(z, kernels) and z.ndim >= 3 and z.shape[-3] == kernels.shape[0]:
        shape = tuple(z.shape[:-3]) + tuple(z.shape[-2:])
        return _adjoint_of_taps(_tap_sums(z, kernels), kernels.shape[1], kernels.shape[2], shape)
    return _grad_adjoint_generic(z, kernels)


def _grad_adjoint_generic(z: Any, kernels: Any) -> Any:
    """:func:`grad_adjoint` by one contraction over the bank and rolls (any backend: the reference)."""
    xp = backend.get_xp(z, kernels)
    n, kh, kw = kernels.shape
    c0, c1 = _taps(kernels)
    per_tap = xp.einsum("nt,...nhw->...thw", kernels.reshape(n, kh * kw), z)
    out = 0
    t = 0
    for u in range(kh):
        for v in range(kw):
            out = out + xp.roll(per_tap[..., t, :, :], (c0 - u, c1 - v), (-2, -1))
            t += 1
    return out


def _tap_sums(z: Any, kernels: Any) -> Any:
    """P = Σ_n K_n[u, v] z_n for every tap, ``(B', kh·kw, H·W)`` with B' the flattened leading axes (torch)."""
    n, kh, kw = kernels.shape
    h, w = z.shape[-2:]
    zf = z.reshape(-1, n, h * w)
    return kernels.reshape(n, kh * kw).t().matmul(zf)


def _add_rolled(out: Any, src: Any, shift: tuple[int, int]) -> None:
    """``out += roll(src, shift, (-2, -1))`` in place, as up to four block additions (no rolled copy)."""
    h, w = src.shape[-2:]
    su, sv = shift[0] % h, shift[1] % w
    for o_rows, s_rows in (((su, h), (0, h - su)), ((0, su), (h - su, h))):
        if o_rows[0] == o_rows[1]:
            continue
        for o_cols, s_cols in (((sv, w), (0, w - sv)), ((0, sv), (w - sv, w))):
            if o_cols[0] == o_cols[1]:
                continue
            out[..., o_rows[0] : o_rows[1], o_cols[0] : o_cols[1]].add_(
                src[..., s_rows[0] : s_rows[1], s_cols[0] : s_cols[1]]
            )


def _adjoint_of_taps(per_tap: Any, kh: int, kw: int, shape: tuple[int, ...], start: Any = None) -> Any:
    """Σ_{u,v} roll(P_{uv}, (c₀ − u, c₁ − v)) of tap sums ``(B', kh·kw, H·W)`` → ``shape`` ``(..., H, W)``,
    plus ``start`` (same shape) when given (torch).  The shifts are block additions into one
    fresh tensor (``add_`` on it saves nothing for autograd)."""
    c0, c1 = kh // 2, kw // 2
    h, w = shape[-2:]
    b = per_tap.shape[0]
    taps = per_tap.reshape(b, kh * kw, h, w)
    out = taps.new_zeros((b, h, w)) if start is None else start.reshape(b, h, w).clone()
    for u in range(kh):
        for v in range(kw):
            _add_rolled(out, taps[:, u * kw + v], (c0 - u, c1 - v))
    return out.reshape(tuple(shape))


def denominator(kernels_l: Any, rho: Any, kernels_k: Any, tau: Any, shape: tuple[int, int]) -> Any:
    """D = 1 + Σ_l ρ_l |K̂_l|² + Σ_k τ_k |K̂_k|², the diagonal of the Y-step (S6); D ≥ 1.

    Shape ``(H, W//2 + 1)``, real.  Precompute once per image size.
    """
    def energy(kernels: Any, weights: Any) -> Any:
        if kernels is None or kernels.shape[0] == 0:
            return 0
        k_hat = otf(kernels, shape)
        power = k_hat.real**2 + k_hat.imag**2
        return (as_column(weights, power) * power).sum(0)

    return 1 + energy(kernels_l, rho) + energy(kernels_k, tau)


def y_rhs(
    m: Any,
    e: Any,
    f: Any,
    h: Any,
    g: Any,
    grad_m: Any,
    kernels_l: Any,
    rho: Any,
    kernels_k: Any,
    tau: Any,
) -> Any:
    """Ens = M + Σ_k τ_k ∇_kᵀ(T_k + H_k − G_k) + Σ_l ρ_l ∇_lᵀ(E_l − F_l)  (S5, with the gradient target of §2.4).

    ``grad_m`` is the gradient target T_k: ∇_k M in the supplement's model (S1), or a
    source-driven target (:func:`gradient_target`).

    Torch fast path (no autograd graph, banks of one kernel size): both sums share one set
    of tap sums P_{uv} = Σ_l ρ_l K_l[u, v] (E_l − F_l) + Σ_k τ_k K_k[u, v] (∇_k M + H_k − G_k)
    (the weights folded into the kernels; ∇ᵀ is linear) and one circular shift-and-add
    (:func:`grad_adjoint`); on the CPU band of rows by band of rows.
    """
    if _y_rhs_torch_ok(m, e, f, h, g, grad_m, kernels_l, rho, kernels_k, tau):
        return _y_rhs_torch(m, e, f, h, g, grad_m, kernels_l, rho, kernels_k, tau, banded=m.device.type == "cpu")
    return _y_rhs_generic(m, e, f, h, g, grad_m, kernels_l, rho, kernels_k, tau)


def _y_rhs_generic(
    m: Any, e: Any, f: Any, h: Any, g: Any, grad_m: Any, kernels_l: Any, rho: Any, kernels_k: Any, tau: Any
) -> Any:
    """:func:`y_rhs` term by term (any backend: the reference)."""
    out = m
    if kernels_k is not None and kernels_k.shape[0]:
        out = out + grad_adjoint(as_column(tau, m) * (grad_m + h - g), kernels_k)
    if kernels_l is not None and kernels_l.shape[0]:
        out = out + grad_adjoint(as_column(rho, m) * (e - f), kernels_l)
    return out


def _y_rhs_torch_ok(
    m: Any, e: Any, f: Any, h: Any, g: Any, grad_m: Any, kernels_l: Any, rho: Any, kernels_k: Any, tau: Any
) -> bool:
    """The torch fast path of :func:`y_rhs` applies: no autograd graph, one dtype and device,
    banks of one kernel size, and every image stack of the shape ``(..., n, H, W)`` of M's."""
    banks = [k for k in (kernels_l, kernels_k) if k is not None and k.shape[0]]
    if not banks or not backend.is_torch(m) or m.ndim < 2:
        return False
    if not not backend.records_graph(m, e, f, h, g, grad_m, kernels_l, rho, kernels_k, tau):
        return False
    used = [m, rho] + ([e, f] if kernels_l is not None and kernels_l.shape[0] else [])
    used += [tau, grad_m, h, g] if kernels_k is not None and kernels_k.shape[0] else []
    if any(backend.is_torch(x) and (x.dtype != m.dtype or x.device != m.device) for x in used + banks):
        return False
    if any(not _torch_conv_ok(m, k) or k.shape[1:] != banks[0].shape[1:] for k in banks):
        return False
    lead = tuple(m.shape[:-2])
    for parts, k in (((e, f), kernels_l), ((grad_m, h, g), kernels_k)):
        if k is not None and k.shape[0]:
            want = lead + (k.shape[0],) + tuple(m.shape[-2:])
            if any(not backend.is_torch(z) or tuple(z.shape) != want for z in parts):
                return False
    return True


def _weighted_taps(kernels: Any, weights: Any, like: Any) -> Any:
    """w_n K_n as an ``(n, kh·kw)`` tensor (torch)."""
    k2 = kernels.reshape(kernels.shape[0], -1)
    c = as_column(weights, like)
    if isinstance(c, (int, float)):
        return c * k2
    return c.reshape(-1, 1) * k2


def _y_rhs_torch(
    m: Any, e: Any, f: Any, h: Any, g: Any, grad_m: Any, kernels_l: Any, rho: Any, kernels_k: Any, tau: Any,
    banded: bool = True,
) -> Any:
    """The torch fast path of :func:`y_rhs` (also differentiable when called with a graph)."""
    import torch

    no_graph = not backend.records_graph(m, e, f, h, g, grad_m, kernels_l, rho, kernels_k, tau)
    terms = []  # (w_n K_n as (kh·kw, n), z (..., n, H, W)): P = Σ_terms W z
    kh, kw = 0, 0
    for z_parts, kernels, weights in (((e, f, None), kernels_l, rho), ((grad_m, h, g), kernels_k, tau)):
        if kernels is None or not kernels.shape[0]:
            continue
        _, kh, kw = kernels.shape
        wt = _weighted_taps(kernels, weights, m).t()
        a, b, c = z_parts
        if c is None:  # Σ w K (E − F) = Σ w K E − Σ w K F: two products, no E − F temporary
            terms += [(wt, a), (-wt, b)]
        else:  # ∇M + H − G (K is small)
            z = a + b
            terms.append((wt, z.sub_(c) if no_graph else z - c))
    if banded and no_graph:
        return _y_rhs_banded(m, terms, kh, kw)
    hw = m.shape[-2] * m.shape[-1]
    per_tap = None
    for wt, z in terms:
        z = z.reshape(-1, z.shape[-3], hw)
        if per_tap is None:
            per_tap = wt.matmul(z)
        elif no_graph:
            per_tap.baddbmm_(wt.expand(z.shape[0], -1, -1), z)
        else:
            per_tap = torch.baddbmm(per_tap, wt.expand(z.shape[0], -1, -1), z)
    return _adjoint_of_taps(per_tap, kh, kw, tuple(m.shape), start=m)


#: Rows per band of the CPU inference path of :func:`y_rhs` (tap sums of 9 × 128 × W values;
#: measured at 500×675: 64 to 256 rows within noise of each other, 8 rows 1.7× slower).
_RHS_BAND_ROWS = 128


def _y_rhs_banded(m: Any, terms: list, kh: int, kw: int) -> Any:
    """M + Σ_{u,v} roll(P_{uv}, (c₀ − u, c₁ − v)) with P = Σ_terms W z, band of rows by band of
    rows: each band's tap sums (one small reused buffer) are added, shifted, into the result."""
    import torch

    h, w = m.shape[-2:]
    c0, c1 = kh // 2, kw // 2
    out = m.reshape(-1, h, w).clone()
    zs = [(wt, z.reshape(-1, z.shape[-3], h, w)) for wt, z in terms]
    rows = min(_RHS_BAND_ROWS, h)
    buf = m.new_empty(kh * kw * rows * w)
    for b in range(out.shape[0]):
        for r0 in range(0, h, rows):
            nb = min(rows, h - r0)
            taps = buf[: kh * kw * nb * w].view(kh * kw, nb * w)
            for i, (wt, z) in enumerate(zs):
                zb = z[b, :, r0 : r0 + nb, :].reshape(z.shape[1], nb * w)
                if i == 0:
                    torch.mm(wt, zb, out=taps)
                else:
                    taps.addmm_(wt, zb)
            taps = taps.view(kh * kw, nb, w)
            for u in range(kh):
                for v in range(kw):
                    _add_band_rolled(out[b], taps[u * kw + v], r0 + c0 - u, c1 - v)
    return out.reshape(m.shape)


def _add_band_rolled(out: Any, band: Any, row: int, shift: int) -> None:
    """``out[(row + i) mod H, (j + shift) mod W] += band[i, j]`` in place (``out`` is ``(H, W)``)."""
    h, w = out.shape
    nb = band.shape[0]
    start = row % h
    first = min(nb, h - start)
    sc = shift % w
    for dst, src in (((start, start + first), (0, first)), ((0, nb - first), (first, nb))):
        if dst[0] == dst[1]:
            continue
        o, s_ = out[dst[0] : dst[1]], band[src[0] : src[1]]
        if sc:
            o[:, sc:].add_(s_[:, : w - sc])
            o[:, :sc].add_(s_[:, w - sc :])
        else:
            o.add_(s_)


def y_step(ens: Any, denom: Any) -> Any:
    """Y = 𝓕⁻¹[𝓕(Ens) / D]  (S6), exact for circular operators."""
    fft = backend.fft_module(ens)
    shape = tuple(ens.shape[-2:])
    spectrum = fft.rfft2(ens, shape)
    if backend.is_torch(spectrum) and not backend.records_graph(ens, denom):
        spectrum.div_(denom)  # the spectrum is a temporary of this function
    else:
        spectrum = spectrum / denom
    return fft.irfft2(spectrum, shape)


def e_step(grad_y: Any, f: Any, shrink: Any) -> Any:
    """E_l = S(∇_l Y + F_l)  (S7); ``shrink`` maps the argument to E (soft threshold or value map).

    A ``shrink`` with an ``of_sum(x, y)`` method (returning S(x + y)) is handed the two terms
    instead, so that it need not form the sum as a whole-image temporary (DeRUN's value-map
    kernel, :func:`unrolled.layers.make_shrink`).
    """
    of_sum = getattr(shrink, "of_sum", None)
    if of_sum is not None:
        return of_sum(grad_y, f)
    return shrink(grad_y + f)


def dual_update(dual: Any, residual: Any, step: Any) -> Any:
    """Scaled dual ascent F ← F + η·(∇_l Y − E)  (S9), or G ← G + ω·(∇_k Y − T_k − H)  (S12; T_k = ∇_k M in the supplement).

    On torch tensors one fused ``addcmul`` (no temporary for η·residual).
    """
    c = as_column(step, residual)
    if backend.is_torch(dual) and backend.is_torch(residual):
        import torch

        if isinstance(c, (int, float)):
            return torch.add(dual, residual, alpha=c)
        if backend.is_torch(c):
            return torch.addcmul(dual, c, residual)
    return dual + c * residual


def lorentzian(a: Any, theta: Any) -> Any:
    """φ(a) = log(1 + θ a²), elementwise (the prior on ∇_k Y − T_k, §2.4; ∇_k(Y − M) in (S1))."""
    xp = backend.get_xp(a)
    return xp.log1p(as_column(theta, a) * a * a)


def lorentzian_grad(a: Any, theta: Any) -> Any:
    """φ'(a) = 2θa / (1 + θa²); |φ'| ≤ √θ and the curvature φ'' ≤ 2θ."""
    th = as_column(theta, a)
    return 2 * th * a / (1 + th * a * a)


def h_step_bound(tau: Any, mu: Any, theta: Any) -> Any:
    """Lipschitz constant τ + 2μθ of the H-subproblem's gradient (§2.1 step 4)."""
    return tau + 2 * mu * theta


def h_step(h: Any, grad_ym: Any, g: Any, tau: Any, mu: Any, theta: Any, sigma: Any) -> Any:
    """One gradient step of (S10–S11) on τ/2‖∇_k Y − T_k − H + G‖² + μ φ(H):

    H ← H − σ [ −τ (∇_k Y − T_k − H + G) + μ · 2θH / (1 + θH²) ],

    with ``grad_ym`` = ∇_k Y − T_k (= ∇_k(Y − M) for the supplement's target T_k = ∇_k M).
    """
    tau_c, mu_c, sig_c = as_column(tau, h), as_column(mu, h), as_column(sigma, h)
    th = as_column(theta, h)
    if backend.is_torch(h) and not backend.records_graph(h, grad_ym, g, tau, mu, theta, sigma) and _inplace_ok(
        h, grad_ym, g, tau_c, mu_c, sig_c, th
    ):
        # the same expression, evaluated into two temporaries of this function
        phi = (2 * th) * h
        den = th * h
        phi.div_(den.mul_(h).add_(1))  # φ'(H) = 2θH / (1 + θH²)
        gradient = (grad_ym - h).add_(g).mul_(-tau_c).add_(phi.mul_(mu_c))
        return gradient.mul_(sig_c).neg_().add_(h)
    gradient = -tau_c * (grad_ym - h + g) + mu_c * lorentzian_grad(h, theta)
    return h - sig_c * gradient


def _inplace_ok(target: Any, *xs: Any) -> bool:
    """Every torch tensor among ``xs`` has ``target``'s dtype and broadcasts to its shape, so that
    updating a temporary of that shape in place gives what the out-of-place expression gives."""
    import torch

    tensors = [x for x in xs if isinstance(x, torch.Tensor)]
    if any(x.dtype != target.dtype or x.device != target.device for x in tensors):
        return False
    try:
        shape = torch.broadcast_shapes(tuple(target.shape), *(tuple(x.shape) for x in tensors))
    except RuntimeError:
        return False
    return tuple(shape) == tuple(target.shape)


def objective(
    y: Any, m: Any, kernels_l: Any, lam: Any, kernels_k: Any, mu: Any, theta: Any, target: Any = None
) -> Any:
    """J(Y) of the model with ψ = |·|: ½‖Y − M‖² + Σ_l λ_l ‖∇_l Y‖₁ + Σ_k μ_k Σ log(1 + θ (∇_k Y − T_k)²).

    ``target`` is T (``(..., K, H, W)``); None means T_k = ∇_k M, the supplement's (S1).
    Sums over the last two axes (and the filter axis); one value per leading index.
    """
    xp = backend.get_xp(y)
    d = y - m
    total = 0.5 * (d * d).sum((-2, -1))
    if kernels_l is not None and kernels_l.shape[0]:
        total = total + (as_column(lam, y) * xp.abs(grad(y, kernels_l))).sum((-3, -2, -1))
    if kernels_k is not None and kernels_k.shape[0]:
        dev = grad(d, kernels_k) if target is None else grad(y, kernels_k) - target
        total = total + (as_column(mu, y) * lorentzian(dev, theta)).sum((-3, -2, -1))
    return total


#: Gradient targets T_k of φ(∇_k Y − T_k) (DESIGN §2.4): ``"anchor"`` is the supplement's
#: T_k = ∇_k M; ``"sources"`` takes, per pixel, the responses of the source whose gradient is larger.
TARGETS = ("anchor", "sources")

#: Squared gradient magnitudes closer than this count as a tie in :func:`source_target`
#: (decided for A), so that float32 and float64 runs choose alike on quantised images.
TARGET_TIE_TOLERANCE = 1e-7


def source_target(a: Any, b: Any, kernels: Any) -> Any:
    """The source-driven gradient target (DESIGN §2.4), ``(..., K, H, W)``:

        T_k(p) = ∇_k A(p)  if  Σ_k (∇_k A(p))² ≥ Σ_k (∇_k B(p))² − ε,   else ∇_k B(p),

    i.e. at every pixel the whole response vector of the source with the larger gradient
    magnitude over the bank (the edge of whichever source has it, with its direction and
    sign); ties (ε = :data:`TARGET_TIE_TOLERANCE`) go to A.
    """
    xp = backend.get_xp(a, kernels)
    ga, gb = grad(a, kernels), grad(b, kernels)
    ea, eb = (ga * ga).sum(-3), (gb * gb).sum(-3)
    choose_a = (ea >= eb - TARGET_TIE_TOLERANCE)[..., None, :, :]
    return xp.where(choose_a, ga, gb)


def gradient_target(kind: str, m: Any, a: Any, b: Any, kernels: Any) -> Any:
    """T_k for φ(∇_k Y − T_k): ``"anchor"`` → ∇_k M (S1); ``"sources"`` → :func:`source_target` (A, B)."""
    if kind == "anchor":
        return grad(m, kernels)
    if kind == "sources":
        return source_target(a, b, kernels)
    raise ValueError(f"unknown gradient target {kind!r}; choose one of {list(TARGETS)}")


def soft_shrink_for(lam: Any, rho: Any) -> Any:
    """The exact E-step shrinkage for ψ = |·|: a closure applying S_{λ/ρ} per filter."""

    def shrink(a: Any) -> Any:
        t = as_column(np.asarray(lam, dtype=np.float64) / np.asarray(rho, dtype=np.float64), a) if not (
            backend.is_torch(lam) or backend.is_torch(rho)
        ) else as_column(lam / rho, a)
        return soft_threshold(a, t)

    return shrink

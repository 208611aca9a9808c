"""Anchors (pre-fusion images M) of DESIGN §4.

Each anchor uses only separable filters (box, Gaussian, guided) and elementwise
operations, so it runs on NumPy, CuPy and torch (differentiably).  Sources are
luminance images in [0, 1] of the same shape ``(..., H, W)``: A the infrared (or
MRI) image, B the visible (or CT/PET/SPECT) image.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import backend

__all__ = [
    "box_blur",
    "gaussian_blur",
    "guided_filter",
    "guide_statistics",
    "anchor",
    "ANCHORS",
    "DEFAULT_ANCHOR",
    "TASK_ANCHORS",
    "two_scale",
    "salient",
    "TIE_TOLERANCE",
]

#: |D_A| and |D_B| closer than this count as a tie in two_scale's choice (decided for A), so that
#: float32 and float64 runs choose alike (their rounding differs by ~1e-7 on [0, 1] images).
TIE_TOLERANCE = 1e-5


def _mirror_index(n: int, pad: int) -> np.ndarray:
    """Indices of a half-sample symmetric extension by ``pad`` on both sides (any pad ≥ 0)."""
    idx = np.arange(-pad, n + pad)
    period = 2 * n
    idx = np.mod(idx, period)
    return np.where(idx >= n, period - 1 - idx, idx)


def box_blur(x: Any, radius: int) -> Any:
    """Mean over a (2r+1)×(2r+1) window with half-sample symmetric boundaries (any radius).

    Sums are accumulated in float64 whatever the input's dtype: in float32 a running sum over
    a row loses ~1e-5, enough to flip :func:`two_scale`'s per-pixel choice between float32
    and float64 runs. NumPy: ``scipy.ndimage.uniform_filter1d`` per axis (``mode="reflect"``
    is this extension; it accumulates in double). CuPy and torch: cumulative sums in float64
    (O(HW) whatever the radius; differentiable in torch). The result has the input's dtype.
    """
    if radius <= 0:
        return x
    if backend.get_xp(x) is np:
        import scipy.ndimage

        size = 2 * radius + 1
        y = scipy.ndimage.uniform_filter1d(x, size, axis=-2, mode="reflect")
        return scipy.ndimage.uniform_filter1d(y, size, axis=-1, mode="reflect")
    return _box_blur_cumsum(x, radius)


def _box_blur_cumsum(x: Any, radius: int) -> Any:
    """:func:`box_blur` by float64 cumulative sums of the mirrored rows and columns (any backend)."""
    xp = backend.get_xp(x)
    size = 2 * radius + 1
    dtype = x.dtype
    x = x.double() if backend.is_torch(x) else x.astype(np.float64)
    for axis in (-2, -1):
        n = x.shape[axis]
        padded = backend.take(x, _mirror_index(n, radius + 1), axis)
        c = xp.cumsum(padded, axis)
        hi = backend.take(c, np.arange(size, size + n), axis)
        lo = backend.take(c, np.arange(0, n), axis)
        x = (hi - lo) / size
    return x.to(dtype) if backend.is_torch(x) else x.astype(dtype)


def gaussian_kernel(sigma: float, truncate: float = 3.0) -> np.ndarray:
    """The sampled, normalised Gaussian g_j ∝ exp(−j²/(2σ²)), j = −r…r, r = ⌊truncate·σ + ½⌋ (float64)."""
    r = int(truncate * float(sigma) + 0.5)
    j = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-0.5 * (j / float(sigma)) ** 2)
    return g / g.sum()


def gaussian_blur(x: Any, sigma: float, truncate: float = 3.0) -> Any:
    """Separable Gaussian blur of ``x (..., H, W)`` with :func:`gaussian_kernel` along both axes
    and half-sample symmetric boundaries (the extension of :func:`box_blur`), any backend.

    NumPy: ``scipy.ndimage.gaussian_filter1d`` (``mode="reflect"`` is this extension; the same
    kernel); CuPy: ``cupyx.scipy.ndimage.gaussian_filter1d``; torch: ``conv1d`` of the mirrored
    rows and columns (differentiable).  ``sigma <= 0`` returns ``x``.
    """
    if sigma <= 0:
        return x
    xp = backend.get_xp(x)
    if xp is np:
        import scipy.ndimage

        y = scipy.ndimage.gaussian_filter1d(x, sigma, axis=-2, mode="reflect", truncate=truncate)
        return scipy.ndimage.gaussian_filter1d(y, sigma, axis=-1, mode="reflect", truncate=truncate)
    if backend.is_cupy(x):
        import cupyx.scipy.ndimage as cnd

        y = cnd.gaussian_filter1d(x, sigma, axis=-2, mode="reflect", truncate=truncate)
        return cnd.gaussian_filter1d(y, sigma, axis=-1, mode="reflect", truncate=truncate)
    if x.device.type == "cpu" and not backend.records_graph(x):
        # no graph to record: SciPy's filter on the same memory (the same kernel; several times
        # faster than conv1d with these long kernels on the CPU)
        import torch

        return torch.from_numpy(gaussian_blur(x.detach().contiguous().numpy(), sigma, truncate))
    return _gaussian_blur_torch(x, gaussian_kernel(sigma, truncate))


def _gaussian_blur_torch(x: Any, g: np.ndarray) -> Any:
    """:func:`gaussian_blur` on torch tensors: mirrored padding by index, then ``conv1d`` per axis."""
    import torch
    from torch.nn import functional as F

    r = (len(g) - 1) // 2
    k = torch.as_tensor(g, dtype=x.dtype, device=x.device).reshape(1, 1, -1)
    h, w = x.shape[-2:]
    lead = tuple(x.shape[:-2])
    out = x.reshape(-1, h, w)
    for axis in (-1, -2):
        n = out.shape[axis]
        padded = backend.take(out, _mirror_index(n, r), axis)
        if axis == -2:
            padded = padded.transpose(-1, -2)
        rows = padded.reshape(-1, 1, padded.shape[-1])
        res = F.conv1d(rows, k).reshape(padded.shape[:-1] + (n,))
        out = res.transpose(-1, -2) if axis == -2 else res
    return out.reshape(lead + (h, w))


def guide_statistics(guide: Any, radius: int) -> tuple[Any, Any]:
    """(mean_r(I), var_r(I)) of a guide image: what :func:`guided_filter` needs of it, reusable."""
    mean_i = box_blur(guide, radius)
    return mean_i, box_blur(guide * guide, radius) - mean_i * mean_i


def guided_filter(guide: Any, src: Any, radius: int, eps: float, stats: tuple[Any, Any] | None = None) -> Any:
    """The guided filter of He et al. (ECCV 2010) with box windows of radius r (:func:`box_blur`):

        a = cov_r(I, p) / (var_r(I) + ε),  b = mean_r(p) − a·mean_r(I),  q = mean_r(a)·I + mean_r(b).

    Edge-preserving smoothing of ``src`` (p) along the edges of ``guide`` (I); any backend.
    ``stats``: :func:`guide_statistics` of the guide, when several images share it.
    """
    mean_i, var = stats if stats is not None else guide_statistics(guide, radius)
    mean_p = box_blur(src, radius)
    cov = box_blur(guide * src, radius) - mean_i * mean_p
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    return box_blur(a, radius) * guide + box_blur(b, radius)


def mean_anchor(a: Any, b: Any) -> Any:
    """M = (A + B) / 2."""
    return 0.5 * (a + b)


def max_anchor(a: Any, b: Any) -> Any:
    """M = max(A, B), pixel by pixel."""
    xp = backend.get_xp(a)
    return xp.maximum(a, b)


def two_scale(a: Any, b: Any, radius: int = 15, choice_radius: int = 1) -> Any:
    """Two-scale anchor **[decision]** (§4).

    Base layers Ā = box_{31}(A), B̄ = box_{31}(B) (radius 15); base = max(Ā, B̄).
    Detail layers D_A = A − Ā, D_B = B − B̄; the choice map c = [|D_A| ≥ |D_B|]
    smoothed by a 3×3 box, w = box_3(c); M = clip(base + w·D_A + (1 − w)·D_B, 0, 1).
    Ties within :data:`TIE_TOLERANCE` go to A.
    """
    xp = backend.get_xp(a)
    base_a = box_blur(a, radius)
    base_b = box_blur(b, radius)
    da, db = a - base_a, b - base_b
    # ties (|D_A| = |D_B| up to rounding, frequent on 8-bit data) go to A in every precision
    choice = (xp.abs(da) >= xp.abs(db) - TIE_TOLERANCE) * 1.0
    if backend.is_torch(choice):
        choice = choice.to(a.dtype)
    else:
        choice = choice.astype(a.dtype, copy=False)
    w = box_blur(choice, choice_radius)
    fused = xp.maximum(base_a, base_b) + w * da + (1 - w) * db
    return xp.clip(fused, 0.0, 1.0)


def _smooth_box3(x: Any, radius: int) -> Any:
    """Three passes of :func:`box_blur` (radius r): a smooth, nearly Gaussian window of variance
    r(r + 1) per axis, at a cost independent of r."""
    for _ in range(3):
        x = box_blur(x, radius)
    return x


def _amax_image(x: Any) -> Any:
    """max over the last two axes, kept as ``(..., 1, 1)`` (per image of a batch)."""
    xp = backend.get_xp(x)
    if backend.is_torch(x):
        return x.amax(dim=(-2, -1), keepdim=True)
    return xp.max(x, axis=(-2, -1), keepdims=True)


def salient(  # noqa: PLR0913 (each parameter is a documented design value)
    a: Any,
    b: Any,
    sigmas: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0),
    lam: float = 30.0,
    weight_sigma: float = 1.0,
    guide_radius: int = 4,
    guide_eps: float = 1e-2,
    base_radius: int = 64,
    hot_from: int = 3,
    choice_eps: float = 5e-4,
    dark_weight: float = 0.75,
) -> Any:
    """Multi-scale salient anchor **[decision, measured]** (DESIGN §4; docs/model.md "Anchors").

    The visible image B carries the scene; the infrared image A is added where it is more
    salient, scale by scale, in the spirit of Hybrid-MSD (Zhou et al., Information Fusion 2016):

    1. Gaussian stacks L₀ = X, L_i = G_{σ_i} * L_{i−1} (σ = 2, 4, 8, 16: :func:`gaussian_blur`),
       detail layers D_i = L_{i−1} − L_i (i = 1…n), base L_n, for X = A and X = B.
    2. Finest level: the detail of larger magnitude, by a choice that is a linear ramp of width
       2ε around the tie, c = clip(½ + (|D₁ᴬ| − |D₁ᴮ|)/(2ε), 0, 1) (ε = ``choice_eps``, an eighth
       of a grey level: hard everywhere but at near-ties, which float32 and float64 then decide
       alike): F₁ = c·D₁ᴬ + (1 − c)·D₁ᴮ (texture of both sources, sharp).
    3. Coarser levels i ≥ 2: the infrared's saliency excess R_i = max(S_iᴬ − S_iᴮ, 0) with
       S_iᴬ = |D_iᴬ|, S_iᴮ = |D_iᴮ| at level 2 and, from level ``hot_from`` (3: σ ≥ 8) on,
       S_iᴬ = max(D_iᴬ, 0) and S_iᴮ = max(D_iᴮ, 0) + κ max(−D_iᴮ, 0) (κ = ``dark_weight``: a hot
       structure of A competes with B's dark structure at κ of its strength, so a warm target
       in front of a dark visible object keeps part of its thermal contrast),
       P_i = R_i / max(R_i) per image, C_i = atan(λ P_i) / atan(λ); C_i is smoothed (Gaussian
       σ = ``weight_sigma``) and made edge-aware by the guided filter with A as guide
       (:func:`guided_filter`, radius ``guide_radius``, ε = ``guide_eps``; clipped to [0, 1]);
       F_i = C_i D_iᴬ + (1 − C_i) D_iᴮ.  Counting only positive infrared detail at the coarse
       levels keeps the negative lobes of a hot target's band-pass response (the wide ring
       around it, which no source has) out of M: no dark halo.
    4. Base: C_b = the coarsest C_n before refinement, smoothed by three box passes of radius
       ``base_radius`` (≈ Gaussian σ = 64); F_b = C_b Lₙᴬ + (1 − C_b) Lₙᴮ.
    5. M = clip(F_b + Σ_i F_i, 0, 1).

    With C ≡ 0 this returns B and with C ≡ 1 (and c ≡ 1) A: the decomposition is exact.
    """
    xp = backend.get_xp(a)
    la, lb = a, b
    details = []
    for s in sigmas:
        na, nb = gaussian_blur(la, s), gaussian_blur(lb, s)
        details.append((la - na, lb - nb))
        la, lb = na, nb
    fused = 0
    c_base = None
    atan_lam = float(np.arctan(lam))
    stats = guide_statistics(a, guide_radius) if guide_radius > 0 and len(details) > 1 else None
    for i, (da, db) in enumerate(details):
        if i == 0:
            c = xp.clip(0.5 + (xp.abs(da) - xp.abs(db)) / (2.0 * choice_eps), 0.0, 1.0)
        else:
            hot = i + 1 >= hot_from
            sa = xp.maximum(da, 0 * da) if hot else xp.abs(da)
            sb = xp.maximum(db, 0 * db) + dark_weight * xp.maximum(-db, 0 * db) if hot else xp.abs(db)
            r = xp.maximum(sa - sb, 0 * da)
            p = r / (_amax_image(r) + 1e-12)
            c = xp.arctan(lam * p) / atan_lam
            if i == len(details) - 1:
                c_base = c
            c = gaussian_blur(c, weight_sigma)
            if guide_radius > 0:
                c = xp.clip(guided_filter(a, c, guide_radius, guide_eps, stats), 0.0, 1.0)
        fused = fused + c * da + (1 - c) * db
    if c_base is None:  # a single level: no coarse weight, the base of B
        base = lb
    else:
        cb = _smooth_box3(c_base, base_radius)
        base = cb * la + (1 - cb) * lb
    return xp.clip(base + fused, 0.0, 1.0)


ANCHORS: dict[str, Callable[[Any, Any], Any]] = {
    "mean": mean_anchor,
    "max": max_anchor,
    "two_scale": two_scale,
    "salient": salient,
}

#: The anchor :func:`anchor` and :class:`hifm.params.HIFMParams` use unless told otherwise.
DEFAULT_ANCHOR = "salient"

#: The anchor the command line uses for each task when ``--anchor`` is not given: infrared-visible
#: pairs (``ivf``) the default; medical pairs (``mif``: MRI + CT/PET/SPECT) ``two_scale``, which ranks
#: better there for the anchor and for ``hifm.solve`` (docs/parameters.md, "Medical pairs prefer
#: two_scale"; the ``mif`` DeRUN weights start from it too). :func:`hifm.solve` itself never guesses.
TASK_ANCHORS: dict[str, str] = {"ivf": DEFAULT_ANCHOR, "mif": "two_scale"}


def anchor(a: Any, b: Any, method: "str | Callable[[Any, Any], Any] | Any" = DEFAULT_ANCHOR) -> Any:
    """The anchor M(A, B) in [0, 1]: a name of :data:`ANCHORS`, a callable ``f(A, B)``, or an array M.

    A user array must have the sources' shape and lie in [0, 1].
    """
    from .errors import InputError

    if isinstance(method, str):
        try:
            fn = ANCHORS[method]
        except KeyError:
            raise InputError(f"unknown anchor {method!r}; choose one of {sorted(ANCHORS)}, a callable or an array") from None
        return fn(a, b)
    if callable(method):
        m = method(a, b)
    else:
        m = backend.asarray_like(method, a)
    if tuple(m.shape) != tuple(a.shape):
        raise InputError(f"anchor M has shape {tuple(m.shape)}, the sources {tuple(a.shape)}")
    return m

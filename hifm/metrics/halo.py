"""Halo and target-contrast measures: dark or bright rings that a fusion method draws around
the hot targets of the infrared image, and how much of the infrared's target contrast the
fused image keeps.

Both are computed on one luminance plane per image (whatever the protocol) from three
steps, each documented on its function:

1. :func:`hot_targets` finds the hot targets in the infrared image alone (white top-hat
   along lines, a threshold relative to the infrared's own dynamic range, morphological
   cleaning).
2. Every pixel outside the targets is assigned to its nearest target; its Euclidean distance
   ``d`` to that target defines, per target, a *near ring* (``1 < d <= 10`` px by default,
   in bands of 3 px) and a *surrounding ring* (``20 < d <= 40`` px), the local background.
3. :func:`halo_analysis` compares the fused image with the sources on the target, the near
   ring's bands and the surrounding ring (formulas there); :func:`halo` and
   :func:`target_contrast` return its two numbers.

An image pair without a detectable hot target gives NaN for both measures ("does not
apply"), never an exception. See ``docs/metrics.md`` (section "Halo and target contrast").
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.filters import apply_hysteresis_threshold
from skimage.restoration import estimate_sigma
from skimage.segmentation import clear_border

from ._common import PlaneCache, as_plane, cached
from .protocol import compute

__all__ = [
    "HaloParams",
    "HaloResult",
    "hot_targets",
    "halo_analysis",
    "halo",
    "target_contrast",
    "halo_plane",
    "target_contrast_plane",
]


@dataclass(frozen=True)
class HaloParams:
    """Parameters of the target detector and of the rings (pixels, 0..255 intensities).

    ``window``: length W of the line openings that estimate the infrared background
    (a target must be shorter than W along rows and along columns: :func:`hot_targets`);
    ``alpha``: seed threshold as a fraction of the infrared's robust dynamic range;
    ``noise_k``: smallest seed threshold, in multiples of the infrared's noise level;
    ``grow``: the hysteresis threshold that sets a target's extent, as a fraction of the
    seed threshold; ``min_area``: smallest target kept (pixels); ``close_radius``: radius of
    the closing that joins the parts of one target;
    ``near``: (r0, r1], the near ring; ``surround``: (s0, s1], the surrounding ring;
    ``band``: width of the bands the near ring is compared in; ``max_gain``: bound of the
    fitted visible and infrared gains (see :func:`halo_analysis`)."""

    window: int = 63
    alpha: float = 0.3
    noise_k: float = 5.0
    grow: float = 0.5
    min_area: int = 20
    close_radius: int = 2
    near: tuple[float, float] = (1.0, 10.0)
    surround: tuple[float, float] = (20.0, 40.0)
    band: float = 3.0
    max_gain: float = 2.0

    def __post_init__(self) -> None:
        if int(self.window) < 3:
            raise ValueError(f"HaloParams.window must be >= 3 pixels, got {self.window}")
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"HaloParams.alpha must lie in (0, 1], got {self.alpha}")
        if not self.noise_k >= 0.0:
            raise ValueError(f"HaloParams.noise_k must be >= 0, got {self.noise_k}")
        if not 0.0 < self.grow <= 1.0:
            raise ValueError(f"HaloParams.grow must lie in (0, 1], got {self.grow}")
        r0, r1 = self.near
        s0, s1 = self.surround
        if not self.band > 0:
            raise ValueError(f"HaloParams.band must be > 0 pixels, got {self.band}")
        if not (0.0 <= r0 < r1 <= s0 < s1):
            raise ValueError(
                "HaloParams rings must satisfy 0 <= near[0] < near[1] <= surround[0] < "
                f"surround[1], got near={self.near}, surround={self.surround}"
            )


DEFAULT_PARAMS = HaloParams()


@dataclass
class HaloResult:
    """Everything :func:`halo_analysis` measured on one (fused, visible, infrared) triple.

    ``halo``: the halo measure H (>= 0, lower is better, NaN without targets);
    ``halo_signed``: the same with signs kept (negative: dark rings, positive: bright);
    ``tcr``: the target contrast retention (1 = the infrared's contrast kept, NaN without
    targets); ``n_targets``: number of targets used; ``targets``: boolean mask of every
    detected target; ``gain_visible``, ``gain_infrared``: the fitted gains a and b (NaN
    without targets); ``labels``: the targets numbered 1..K (0 elsewhere); per target
    (index k − 1): ``ir_contrast`` Δ_k, ``ring_excess`` h_k (grey levels, signed; NaN where
    not counted) and ``counted``."""

    halo: float
    halo_signed: float
    tcr: float
    n_targets: int
    targets: np.ndarray
    gain_visible: float
    gain_infrared: float
    labels: np.ndarray
    ir_contrast: np.ndarray
    ring_excess: np.ndarray
    counted: np.ndarray


# --------------------------------------------------------------------------- targets
def _disk(radius: int) -> np.ndarray:
    r = int(radius)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return (yy * yy + xx * xx) <= r * r


def hot_targets(ir: np.ndarray, params: HaloParams = DEFAULT_PARAMS) -> np.ndarray:
    """Boolean mask of the hot targets of an infrared plane (2-D, 0..255 scale).

    With Ĩ = 3×3 median of I (sensor and JPEG noise):

    - background B = max(γ_h(Ĩ), γ_v(Ĩ)), γ_h / γ_v the grey openings with a horizontal /
      vertical line of W pixels (``window``); the contrast map R = Ĩ − B >= 0 is large only
      on structures that are brighter than their surroundings and shorter than W along
      *both* directions (a long bright line such as a road edge or a horizon band is its
      own background along its length);
    - s = P99.5(Ĩ) − P0.5(Ĩ), the infrared's robust dynamic range, and σ̂ its noise level
      (:func:`skimage.restoration.estimate_sigma`, wavelet median rule);
      τ = max(``alpha``·s, ``noise_k``·σ̂) (the second term keeps noise peaks out when the
      image holds nothing but noise);
    - targets grow from the seeds R > τ to the connected pixels with R >
      ``grow``·τ (hysteresis); then a 3×3 opening (drops lines thinner than 3 px), a closing
      with a disk of ``close_radius`` (joins the parts of one target), hole filling, and
      every component smaller than ``min_area`` pixels or touching the image border
      (whose rings would be cut) is dropped.

    A constant image (s = 0) has no target. Targets wider than W in both directions are
    only found in part.
    """
    ir = np.asarray(ir, dtype=np.float64)
    if ir.ndim != 2:
        raise ValueError(f"hot_targets: expected one plane (H×W), got shape {ir.shape}")
    h, w = ir.shape
    empty = np.zeros((h, w), dtype=bool)
    if min(h, w) < 3:
        return empty
    smooth = ndimage.median_filter(ir, size=3, mode="nearest")
    lo, hi = np.percentile(smooth, [0.5, 99.5])
    spread = float(hi - lo)
    if not spread > 0.0:
        return empty
    win = int(params.window)
    background = np.maximum(ndimage.grey_opening(smooth, size=(1, win), mode="nearest"),
                            ndimage.grey_opening(smooth, size=(win, 1), mode="nearest"))
    contrast = smooth - background
    with warnings.catch_warnings():  # skimage warns about a last axis of <= 4 pixels
        warnings.simplefilter("ignore", UserWarning)
        sigma = float(estimate_sigma(ir))
    tau = max(params.alpha * spread, params.noise_k * sigma)
    mask = apply_hysteresis_threshold(contrast, params.grow * tau, tau)
    mask = ndimage.binary_opening(mask, structure=np.ones((3, 3), bool))
    if params.close_radius > 0:
        # pad so that the closing does not glue a target to the image border
        r = int(params.close_radius)
        padded = np.pad(mask, r)
        padded = ndimage.binary_closing(padded, structure=_disk(r))
        mask = padded[r : r + h, r : r + w]
    mask = ndimage.binary_fill_holes(mask)
    mask = clear_border(mask)
    labels, n = ndimage.label(mask)
    if n == 0:
        return empty
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    keep = areas >= params.min_area
    keep[0] = False
    return keep[labels]


# --------------------------------------------------------------------------- analysis
def _cell_means(values: np.ndarray, owner: np.ndarray, region: np.ndarray,
                n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-target mean of ``values`` over ``region`` (pixels grouped by ``owner``) and the
    pixel counts; targets without a pixel get mean 0."""
    idx = owner[region]
    count = np.bincount(idx, minlength=n).astype(np.float64)
    total = np.bincount(idx, weights=values[region], minlength=n)
    return total / np.maximum(count, 1.0), count


def _nan_result(targets: np.ndarray, labels: np.ndarray, delta: np.ndarray) -> HaloResult:
    nan = float("nan")
    k = delta.size
    return HaloResult(nan, nan, nan, 0, targets, nan, nan, labels, delta,
                      np.full(k, nan), np.zeros(k, dtype=bool))


def halo_analysis(fused: np.ndarray, vis: np.ndarray, ir: np.ndarray,
                  params: HaloParams = DEFAULT_PARAMS,
                  targets: np.ndarray | None = None) -> HaloResult:
    """Halo H and target contrast retention TCR of a fused plane F, given the visible plane V
    and the infrared plane I (2-D arrays of one size, one intensity scale).

    Targets T_k (k = 1..K) come from :func:`hot_targets` on I (or ``targets``, a boolean
    mask). Every other pixel x belongs to its nearest target k(x), at Euclidean distance
    d(x). Per target: the near ring N_k = {k(x) = k, r0 < d <= r1} (``near``), cut into
    bands N_kj of width w (``band``: (r0, r0 + w], (r0 + w, r0 + 2w], ...), and the
    surrounding ring S_k = {k(x) = k, s0 < d <= s1} (``surround``), the local background.
    X̄_k is the mean of X over S_k, and f = F − F̄_k, v = V − V̄_k, i = I − Ī_k are the levels
    relative to that background (k = k(x)); ⟨·⟩_R is a mean over the pixels of R.

    - Infrared target contrast Δ_k = ⟨i⟩_{T_k}. A target counts if N_k and S_k have pixels
      and Δ_k > 0; the sums below run over the counted targets.
    - Visible gain a = Σ f v / Σ v² over the surrounding rings (how strongly F carries the
      visible background) and infrared gain b = Σ_k |T_k| ⟨f − a v⟩_{T_k} / Σ_k |T_k| Δ_k
      (how much of the infrared target contrast F carries beyond its visible part), both
      clipped to [0, ``max_gain``].
    - Per band: ρ_kj = ⟨f − a v⟩_{N_kj}, F's level there after removing what the visible
      image shows at F's own visible gain, and β_kj = b ⟨i⟩_{N_kj}, what the infrared
      shows there at F's infrared gain (its blurred target edge, or a ring of the camera's
      own). The part that neither source explains is
      h_kj = ρ_kj − clip(ρ_kj, min(0, β_kj), max(0, β_kj)).
    - **H** = Σ_kj |N_kj| |h_kj| / Σ_k |N_k| Δ_k; the signed variant keeps the signs of h_kj
      (negative: dark rings, positive: bright rings).
    - **TCR** = Σ_k |T_k| ⟨f⟩_{T_k} / Σ_k |T_k| Δ_k.

    H is the mean depth of the rings that are in neither source, as a fraction of the
    infrared target contrast (0.1: on average over the near ring, F is a tenth of the
    target contrast darker or brighter than its sources explain). TCR is F's
    target-over-background contrast as a fraction of the infrared's (1 = kept, 0 = the
    target is gone, < 0 = it turned darker than its background, > 1 = exaggerated). Both
    are unchanged when one constant is added to F, V and I, or when all three are scaled
    by one positive factor. Without a counted target both are NaN (the measures do not
    apply to the pair).
    """
    f_img = as_plane(fused, "fused")
    v_img = as_plane(vis, "vis")
    i_img = as_plane(ir, "ir")
    if not (f_img.shape == v_img.shape == i_img.shape):
        raise ValueError(
            f"size mismatch: fused {f_img.shape}, visible {v_img.shape}, infrared {i_img.shape}"
        )
    if targets is None:
        mask = hot_targets(i_img, params)
    else:
        mask = np.asarray(targets, dtype=bool)
        if mask.shape != i_img.shape:
            raise ValueError(f"targets mask has shape {mask.shape}, the images {i_img.shape}")
    labels, n_lab = ndimage.label(mask)
    if n_lab == 0:
        return _nan_result(mask, labels, np.zeros(0))
    n = n_lab + 1
    dist, (iy, ix) = ndimage.distance_transform_edt(~mask, return_indices=True)
    owner = labels[iy, ix]  # nearest target of every pixel (its own label on a target)
    r0, r1 = params.near
    s0, s1 = params.surround
    near = (dist > r0) & (dist <= r1)
    surround = (dist > s0) & (dist <= s1)

    f_bg, n_s = _cell_means(f_img, owner, surround, n)
    v_bg, _ = _cell_means(v_img, owner, surround, n)
    i_bg, _ = _cell_means(i_img, owner, surround, n)
    f = f_img - f_bg[owner]
    v = v_img - v_bg[owner]
    i = i_img - i_bg[owner]

    on_target = labels > 0
    delta, n_t = _cell_means(i, labels, on_target, n)
    _, n_n = _cell_means(f, owner, near, n)
    ok = (n_n > 0) & (n_s > 0) & (delta > 0)
    ok[0] = False
    if not ok.any():
        return _nan_result(mask, labels, delta[1:])

    s_used = surround & ok[owner]
    vv = float(np.sum(v[s_used] * v[s_used]))
    a = float(np.sum(f[s_used] * v[s_used]) / vv) if vv > 0 else 0.0
    a = min(max(a, 0.0), params.max_gain)
    resid = f - a * v
    t_resid, _ = _cell_means(resid, labels, on_target, n)
    t_f, _ = _cell_means(f, labels, on_target, n)
    t_den = float(np.sum((n_t * delta)[ok]))
    b = float(np.sum((n_t * t_resid)[ok]) / t_den)
    b = min(max(b, 0.0), params.max_gain)

    nb = int(np.ceil((r1 - r0) / params.band - 1e-9))
    j = np.clip(np.ceil((dist - r0) / params.band).astype(np.int64) - 1, 0, nb - 1)
    cell = owner * nb + j  # (target, band) of every near-ring pixel
    rho_b, n_b = _cell_means(resid, cell, near, n * nb)
    i_b, _ = _cell_means(i, cell, near, n * nb)
    beta_b = b * i_b
    h_b = rho_b - np.clip(rho_b, np.minimum(beta_b, 0.0), np.maximum(beta_b, 0.0))
    h_abs = np.bincount(np.arange(n * nb) // nb, weights=n_b * np.abs(h_b), minlength=n)
    h_sum = np.bincount(np.arange(n * nb) // nb, weights=n_b * h_b, minlength=n)
    h = h_sum / np.maximum(n_n, 1.0)
    h_den = float(np.sum((n_n * delta)[ok]))
    halo_val = float(np.sum(h_abs[ok]) / h_den)
    halo_sgn = float(np.sum(h_sum[ok]) / h_den)
    tcr = float(np.sum((n_t * t_f)[ok]) / t_den)
    excess = np.where(ok, h, np.nan)[1:]
    return HaloResult(halo_val, halo_sgn, tcr, int(ok.sum()), mask, a, b, labels, delta[1:],
                      excess, ok[1:].copy())


# --------------------------------------------------------------------------- registry kernels
def _analysis_cached(a: np.ndarray, b: np.ndarray, f: np.ndarray,
                     cache: PlaneCache | None) -> HaloResult:
    targets = cached(cache, "halo_targets", b, hot_targets)
    tag = f"halo_analysis:{id(a)}:{id(b)}"
    return cached(cache, tag, f,  # type: ignore[return-value]
                  lambda plane: halo_analysis(plane, a, b, targets=targets))  # type: ignore[arg-type]


def halo_plane(a: np.ndarray, b: np.ndarray, f: np.ndarray,
               cache: PlaneCache | None = None) -> float:
    """H of :func:`halo_analysis` on luminance planes (``a`` visible, ``b`` infrared)."""
    return _analysis_cached(a, b, f, cache).halo


def target_contrast_plane(a: np.ndarray, b: np.ndarray, f: np.ndarray,
                          cache: PlaneCache | None = None) -> float:
    """TCR of :func:`halo_analysis` on luminance planes (``a`` visible, ``b`` infrared)."""
    return _analysis_cached(a, b, f, cache).tcr


# --------------------------------------------------------------------------- public API
def halo(fused: object, a: object, b: object, *, protocol: str = "vifb") -> float:
    """Halo measure H (``Halo``): depth of the dark or bright rings around the infrared's hot
    targets that are in neither source, as a fraction of the infrared target contrast.

    H = Σ_kj |N_kj| |h_kj| / Σ_k |N_k| Δ_k: h_kj is the part of F's level in band j of the
    near ring of target k (1 < d <= 10 px, bands of 3 px; relative to the surrounding ring
    20 < d <= 40 px, after removing the visible image's content at F's visible gain) that
    the infrared's own level there at F's infrared gain does not explain, Δ_k the infrared
    contrast of target k (full definition: :func:`halo_analysis`). ``a`` is
    the visible image, ``b`` the infrared image (VIFB's order); always computed on one
    luminance plane per image, whatever ``protocol``.

    Range [0, inf), 0 = no ring; NaN when the infrared image has no hot target (the
    measure does not apply). Lower is better.
    Source: this project (hifm), ``docs/metrics.md``; rings measured against the local
    background as in the halo-artifact discussion of base/detail fusion methods.
    """
    return compute("halo", fused, a, b, protocol)


def target_contrast(fused: object, a: object, b: object, *, protocol: str = "vifb") -> float:
    """Target contrast retention TCR (``TCR``): the fused image's contrast between the
    infrared's hot targets and their surrounding ring, as a fraction of the infrared's.

    TCR = Σ_k |T_k| (⟨F⟩_{T_k} − ⟨F⟩_{S_k}) / Σ_k |T_k| (⟨I⟩_{T_k} − ⟨I⟩_{S_k}), targets
    T_k and surrounding rings S_k (20 < d <= 40 px) as in :func:`halo_analysis`. ``a`` is
    the visible image, ``b`` the infrared image; always on one luminance plane per image.

    Range about [-1, 2]: 1 = the infrared target contrast kept, 0 = the target is gone,
    < 0 = it became darker than its surroundings; NaN when the infrared image has no hot
    target. Higher is better up to 1 (values above 1 exaggerate the target).
    Source: this project (hifm), ``docs/metrics.md``.
    """
    return compute("target_contrast", fused, a, b, protocol)

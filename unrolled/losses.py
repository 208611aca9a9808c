"""Training losses of DeRUN (DESIGN §7.1) **[decision]**.

All functions take ``(B, H, W)`` or ``(B, 1, H, W)`` tensors in [0, 1]: the fused
image F and the *clean* sources A (infrared / MRI) and B (visible / CT, PET, SPECT).

* intensity  ‖F − max(A, B)‖₁ (mean absolute error);
* gradient   ‖ |∇F| − max(|∇A|, |∇B|) ‖₁ with the Sobel kernels of :func:`hifm.filters.sobel`;
* SSIM       1 − ½(SSIM(F, A) + SSIM(F, B)) (Gaussian window 11, σ = 1.5, C₁ = 0.01², C₂ = 0.03²);
* LGDE       local gradient directional entropy (:func:`lgde_entropy`, :func:`lgde_loss`);
* Qabf       1 − Q^{AB/F}, a differentiable form of Xydeas and Petrović's edge-preservation metric
  (:func:`qabf`, :func:`qabf_loss`): the loss agrees with the metric it is judged by;
* histogram  ½(D(A‖F) + D(B‖F)) in bits between soft intensity histograms
  (:func:`soft_histogram`, :func:`histogram_loss`): the differentiable form of the cross-entropy
  metric CE; small when F keeps the intensity distributions of both sources;
* SCD        1 − ½ SCD, SCD = r(F − B, A) + r(F − A, B) (:func:`scd`): the sum of the
  correlations of differences (Aslantas and Bendes), one of the standard metrics; high when
  F carries the part of each source the other lacks;
* MI         1 − (I(A; F) + I(B; F)) / (2 ln K) (:func:`soft_mutual_information`): the
  mutual-information metric MI between K-bin histograms, F's soft (linear bin assignment), so
  it has a gradient; high when F's intensities follow those of each source;
* contrast   mean of max(0, max(s_A, s_B) − s_F), s the local standard deviation in a Gaussian
  window (σ = ``contrast_sigma``, :func:`contrast_loss`): F keeps at least the larger local
  contrast of the two sources at a scale above the gradient term's;
* fidelity   ‖F − M(A, B)‖₁ to the solver's anchor of the clean sources (:func:`fidelity_loss`):
  keeps the anchor's thermal targets and halo-free layout while the other terms sharpen;
* the joint constraint (:class:`FusionLoss`): every stage's output with weights growing with
  the stage index (deep supervision) plus a small term on the learned anchor M_θ.

Borders are handled by reflection (gradients, LGDE) or ignored (SSIM's valid window).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from hifm.filters import sobel

__all__ = [
    "sobel_gradients",
    "gradient_magnitude",
    "intensity_loss",
    "gradient_loss",
    "ssim",
    "ssim_loss",
    "qabf",
    "qabf_loss",
    "fidelity_loss",
    "scd",
    "contrast_loss",
    "soft_mutual_information",
    "soft_histogram",
    "histogram_loss",
    "direction_weights",
    "box_mean",
    "lgde_entropy",
    "lgde_target",
    "lgde_loss",
    "LossConfig",
    "FusionLoss",
    "BLOCK_SETS",
]

#: The block sets 𝔅 of the supplement's ablation.
BLOCK_SETS: dict[str, tuple[int, ...]] = {"3,5": (3, 5), "3,7": (3, 7), "5,7": (5, 7), "3,5,7": (3, 5, 7)}

_EPS = 1e-6


def _as4(x: torch.Tensor) -> torch.Tensor:
    if x.ndim == 2:
        return x[None, None]
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[1] == 1:
        return x
    raise ValueError(f"expected (H, W), (B, H, W) or (B, 1, H, W), got {tuple(x.shape)}")


def sobel_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel responses (gx, gy) of ``x``, each ``(B, 1, H, W)``, reflective borders.

    gx responds to a horizontal change (a vertical edge); a unit step gives 4.
    """
    x4 = _as4(x)
    k = torch.tensor(sobel().kernels, dtype=x4.dtype, device=x4.device)[:, None]
    g = F.conv2d(F.pad(x4, (1, 1, 1, 1), mode="reflect"), k)
    return g[:, :1], g[:, 1:]


def gradient_magnitude(x: torch.Tensor, eps: float = _EPS) -> torch.Tensor:
    """|∇x| = √(gx² + gy² + ε²) (Sobel), ``(B, 1, H, W)``; ε keeps the square root differentiable."""
    gx, gy = sobel_gradients(x)
    return torch.sqrt(gx * gx + gy * gy + eps * eps)


def intensity_loss(f: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """mean |F − max(A, B)|."""
    f4, a4, b4 = _as4(f), _as4(a), _as4(b)
    return (f4 - torch.maximum(a4, b4)).abs().mean()


def gradient_loss(f: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """mean | |∇F| − max(|∇A|, |∇B|) | (Sobel magnitudes)."""
    return (gradient_magnitude(f) - torch.maximum(gradient_magnitude(a), gradient_magnitude(b))).abs().mean()


def _gaussian_window(size: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    x = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-(x * x) / (2 * sigma * sigma))
    return g / g.sum()


def _blur(z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter of every channel of ``z (N, C, H, W)``, valid region."""
    c = z.shape[1]
    z = F.conv2d(z, g.reshape(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(z, g.reshape(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _window(x4: torch.Tensor, window: int) -> int:
    h, w = x4.shape[-2:]
    return min(window, h - (1 - h % 2), w - (1 - w % 2))


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM of each image pair ``(B,)`` (Wang et al. 2004; Gaussian window, valid region).

    SSIM = (2 μx μy + C₁)(2 σxy + C₂) / ((μx² + μy² + C₁)(σx² + σy² + C₂)); images smaller
    than the window use a window of their size (odd).
    """
    x4, y4 = _as4(x), _as4(y)
    g = _gaussian_window(_window(x4, window), sigma, x4)
    mx, my, xx, yy, xy = _blur(torch.cat([x4, y4, x4 * x4, y4 * y4, x4 * y4], 1), g).unbind(1)
    return _ssim_map(mx, my, xx - mx * mx, yy - my * my, xy - mx * my, data_range).mean(dim=(1, 2))


def _ssim_map(mx, my, sxx, syy, sxy, data_range: float = 1.0):  # type: ignore[no-untyped-def]
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    return ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))


def ssim_loss(f: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 − ½(SSIM(F, A) + SSIM(F, B)), averaged over the batch."""
    return 1 - 0.5 * (ssim(f, a) + ssim(f, b)).mean()


# ---------------------------------------------------------------------------- Qabf
#: The constants of Q^{AB/F} (Xydeas and Petrović 2000, as in VIFB's code).
QABF_TG, QABF_KG, QABF_DG = 0.9994, -15.0, 0.5
QABF_TA, QABF_KA, QABF_DA = 0.9879, -22.0, 0.8


def _orientation(gx: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:
    """α = atan(gy/gx) ∈ (−π/2, π/2], with α = π/2 where gx = 0 (the metric's convention)."""
    alpha = torch.atan2(gy, gx)
    alpha = torch.where(alpha > math.pi / 2, alpha - math.pi, alpha)
    alpha = torch.where(alpha <= -math.pi / 2, alpha + math.pi, alpha)
    return torch.where(gx == 0, torch.full_like(alpha, math.pi / 2), alpha)


def _edge_preservation(g_s: torch.Tensor, a_s: torch.Tensor, g_f: torch.Tensor, a_f: torch.Tensor) -> torch.Tensor:
    """Q^{SF} per pixel: the sigmoids of the strength ratio G = min(g_S, g_F)/max(g_S, g_F) and of
    the orientation agreement A = 1 − |α_S − α_F|/(π/2)."""
    ratio = torch.minimum(g_s, g_f) / (torch.maximum(g_s, g_f) + _EPS)
    agree = 1 - (a_s - a_f).abs() / (math.pi / 2)
    q_g = QABF_TG / (1 + torch.exp(QABF_KG * (ratio - QABF_DG)))
    q_a = QABF_TA / (1 + torch.exp(QABF_KA * (agree - QABF_DA)))
    return q_g * q_a


def qabf(f: torch.Tensor, a: torch.Tensor, b: torch.Tensor, padding: str = "reflect") -> torch.Tensor:
    """Q^{AB/F} of each image ``(B,)``: Σ (Q^{AF} g_A + Q^{BF} g_B) / Σ (g_A + g_B) over the pixels,
    with Sobel strengths g and orientations α (:func:`sobel_gradients`).

    The metric of :func:`hifm.metrics.qabf` (VIFB's definition) up to two details: the strength
    ratio is min/max everywhere (VIFB's code returns g_F where g_S = g_F exactly, which never
    happens on real-valued images) and the borders are reflected (``padding="zeros"`` gives the
    metric's zero padding; tested against the metric).
    """
    f4, a4, b4 = _as4(f), _as4(a), _as4(b)
    grads = [_sobel_padded(x, padding) for x in (f4, a4, b4)]
    (fx, fy), (ax, ay), (bx, by) = grads
    gf, ga, gb = (torch.sqrt(x * x + y * y + _EPS * _EPS) for x, y in grads)
    af, aa, ab = (_orientation(x, y) for x, y in grads)
    num = _edge_preservation(ga, aa, gf, af) * ga + _edge_preservation(gb, ab, gf, af) * gb
    return num.sum((1, 2, 3)) / (ga + gb).sum((1, 2, 3))


def _sobel_padded(x4: torch.Tensor, padding: str) -> tuple[torch.Tensor, torch.Tensor]:
    k = torch.tensor(sobel().kernels, dtype=x4.dtype, device=x4.device)[:, None]
    xp = F.pad(x4, (1, 1, 1, 1), mode="reflect") if padding == "reflect" else F.pad(x4, (1, 1, 1, 1))
    g = F.conv2d(xp, k)
    return g[:, :1], g[:, 1:]


def qabf_loss(f: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 − Q^{AB/F} (:func:`qabf`), averaged over the batch."""
    return 1 - qabf(f, a, b).mean()


def fidelity_loss(f: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """mean |F − M| to a reference M (the anchor of the clean sources)."""
    return (_as4(f) - _as4(m)).abs().mean()


def _pearson(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of each image's pixels, ``(N, 1, H, W)`` → ``(N,)``."""
    xc = x - x.mean((1, 2, 3), keepdim=True)
    yc = y - y.mean((1, 2, 3), keepdim=True)
    num = (xc * yc).sum((1, 2, 3))
    return num / torch.sqrt((xc * xc).sum((1, 2, 3)) * (yc * yc).sum((1, 2, 3)) + _EPS**2)


def scd(f: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """SCD = r(F − B, A) + r(F − A, B) per image ``(N,)``, r the Pearson correlation over the
    pixels (:func:`hifm.metrics.scd` on one plane; 1e-12 under the square root keeps a flat
    difference finite)."""
    f4, a4, b4 = _as4(f), _as4(a), _as4(b)
    return _pearson(f4 - b4, a4) + _pearson(f4 - a4, b4)


def _local_std(x4: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Standard deviation of ``x4 (N, 1, H, W)`` in the window ``g`` (valid region)."""
    m, mm = _blur(torch.cat([x4, x4 * x4], 1), g).unbind(1)
    return torch.sqrt(torch.clamp(mm - m * m, min=0.0) + _EPS**2)


def contrast_loss(f: torch.Tensor, a: torch.Tensor, b: torch.Tensor, sigma: float = 4.0,
                  source: str = "max") -> torch.Tensor:
    """mean max(0, s_T − s_F) per image ``(N,)``, s the standard deviation in a Gaussian window of
    σ = ``sigma`` and 6σ + 1 pixels (valid region; sources without gradient), s_T = max(s_A, s_B)
    (``source="max"``) or s_B alone (``"b"``: the visible image's contrast, not the infrared's)."""
    if source not in ("max", "b"):
        raise ValueError(f"contrast source must be 'max' or 'b', got {source!r}")
    f4, a4, b4 = _as4(f), _as4(a), _as4(b)
    g = _gaussian_window(_window(f4, 2 * int(3 * sigma) + 1), sigma, f4)
    with torch.no_grad():
        target = _local_std(b4, g) if source == "b" else torch.maximum(_local_std(a4, g), _local_std(b4, g))
    reps = f4.shape[0] // a4.shape[0]
    if reps > 1:
        target = target.repeat(reps, 1, 1)
    return torch.relu(target - _local_std(f4, g)).mean((1, 2))


def soft_histogram(x: torch.Tensor, bins: int = 64) -> torch.Tensor:
    """Per-image intensity histogram of ``x`` (values clipped to [0, 1]) with linear bin
    assignment: a value at t = x (bins − 1) adds 1 − (t − ⌊t⌋) to bin ⌊t⌋ and t − ⌊t⌋ to the
    next, so the histogram is differentiable in x.  Returns ``(N, bins)``, each row summing to 1."""
    idx, frac = _linear_bins(x, bins)
    h = frac.new_zeros(idx.shape[0], bins).scatter_add(1, idx, 1.0 - frac).scatter_add(1, idx + 1, frac)
    return h / idx.shape[1]


def _linear_bins(x: torch.Tensor, bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, the lower bin ⌊t⌋ (≤ bins − 2) of each pixel's t = x (bins − 1), x clipped to
    [0, 1], and its share t − ⌊t⌋ of the next bin (differentiable): ``(N, H·W)`` each."""
    x4 = _as4(x)
    t = x4.clamp(0.0, 1.0).reshape(x4.shape[0], -1) * (bins - 1)
    lo = t.detach().floor().clamp(max=bins - 2)
    return lo.long(), t - lo


def _entropy_nats(p: torch.Tensor, eps: float) -> torch.Tensor:
    """−sum_k p_k ln(p_k + eps) per row (eps keeps the gradient of an empty bin finite)."""
    return -torch.xlogy(p, p + eps).sum(1)


def soft_mutual_information(f: torch.Tensor, s: torch.Tensor, bins: int = 32, eps: float = 1e-10) -> torch.Tensor:
    """I(S; F) = H(F) − H(S, F) + H(S) in nats per image ``(N,)``, from K = ``bins`` level
    histograms of values clipped to [0, 1]: S (no gradient) to its nearest level, F with the
    linear assignment of :func:`soft_histogram`, the joint histogram from both.  For F on the
    levels k/(K − 1) it is the plain histogram estimate of the mutual information."""
    f4, s4 = _as4(f), _as4(s).detach()
    n = f4.shape[0]
    if s4.shape[0] != n:
        s4 = s4.repeat(n // s4.shape[0], 1, 1, 1)
    lo, frac = _linear_bins(f4, bins)
    idx = lo + torch.round(s4.clamp(0.0, 1.0).reshape(n, -1) * (bins - 1)).long() * bins
    joint = frac.new_zeros(n, bins * bins).scatter_add(1, idx, 1.0 - frac).scatter_add(1, idx + 1, frac) / idx.shape[1]
    p_s = joint.detach().reshape(n, bins, bins).sum(2)
    p_f = joint.reshape(n, bins, bins).sum(1)
    return _entropy_nats(p_f, eps) + _entropy_nats(p_s, eps) - _entropy_nats(joint, eps)


def _kl_bits(p: torch.Tensor, q: torch.Tensor, eps: float) -> torch.Tensor:
    """sum_k p_k log2((p_k + eps) / (q_k + eps)) per row."""
    return (p * (torch.log(p + eps) - torch.log(q + eps))).sum(1) / math.log(2.0)


def histogram_loss(f: torch.Tensor, a: torch.Tensor, b: torch.Tensor, bins: int = 64,
                   eps: float = 1e-3) -> torch.Tensor:
    """½ (D(A‖F) + D(B‖F)) in bits between :func:`soft_histogram` s, per image ``(N,)``.

    The cross-entropy metric CE in a form with a gradient: it is lowest when F's intensity
    distribution matches the mixture ½(p_A + p_B) of the sources'; ``eps`` keeps bins that F
    leaves empty finite (the metric skips them instead)."""
    with torch.no_grad():
        ha, hb = soft_histogram(a, bins), soft_histogram(b, bins)
    hf = soft_histogram(f, bins)
    reps = hf.shape[0] // ha.shape[0]
    if reps > 1:
        ha, hb = ha.repeat(reps, 1), hb.repeat(reps, 1)
    return 0.5 * (_kl_bits(ha, hf, eps) + _kl_bits(hb, hf, eps))


# ---------------------------------------------------------------------------- LGDE
def concentration(bins: int, leak: float = 5.0) -> float:
    """κ of the soft direction assignment: a direction on a bin centre gives its neighbours
    weight e^{−leak} relative to that bin (κ (1 − cos 2π/I) = leak)."""
    return leak / (1.0 - math.cos(2 * math.pi / bins))


def direction_weights(gx: torch.Tensor, gy: torch.Tensor, bins: int, eps: float = _EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft assignment of each pixel's gradient direction to I bins, and the magnitude.

    Bin j is centred at c_j = 2πj/I; w_j = softmax_j(κ cos(φ − c_j)) with
    cos(φ − c_j) = (gx cos c_j + gy sin c_j)/m, m = √(gx² + gy² + ε²) (smooth everywhere).
    Returns ``(w (B, I, H, W), m (B, 1, H, W))``.
    """
    m = torch.sqrt(gx * gx + gy * gy + eps * eps)
    c = 2 * math.pi * torch.arange(bins, dtype=gx.dtype, device=gx.device) / bins
    cos = (gx * torch.cos(c).reshape(1, -1, 1, 1) + gy * torch.sin(c).reshape(1, -1, 1, 1)) / m
    return torch.softmax(concentration(bins) * cos, dim=1), m


def box_mean(x: torch.Tensor, block: int) -> torch.Tensor:
    """Mean over a block×block window (stride 1, reflective borders) of ``(N, C, H, W)``.

    Separable running sums by cumulative sums (O(1) per pixel; 2–3× faster than
    ``avg_pool2d`` on the CPU, forward and backward).
    """
    r = block // 2
    x = F.pad(x, (r, r, r, r), mode="reflect")
    for dim in (-2, -1):
        c = torch.cumsum(x, dim)
        c = torch.cat([torch.zeros_like(c.narrow(dim, 0, 1)), c], dim)
        n = c.shape[dim] - block
        x = c.narrow(dim, block, n) - c.narrow(dim, 0, n)
    return x / (block * block)


def _entropies(
    gx: torch.Tensor, gy: torch.Tensor, bins: int, blocks: Sequence[int], delta: float
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    w, m = direction_weights(gx, gy, bins)
    weighted = torch.cat([m * w, m], 1)  # histograms and energy pooled together
    out = []
    for block in blocks:
        pooled = box_mean(weighted, block)
        hist, energy = pooled[:, :bins], pooled[:, bins:]
        p = hist / (hist.sum(1, keepdim=True) + delta)
        ent = -(p * torch.log(p + 1e-12)).sum(1, keepdim=True) / math.log(bins)
        out.append((ent, energy))
    return out


def lgde_entropy(
    x: torch.Tensor, bins: int = 8, block: int = 5, delta: float = 1e-3
) -> tuple[torch.Tensor, torch.Tensor]:
    """Local gradient directional entropy e_B ∈ [0, 1] and the local gradient energy.

    The magnitude-weighted direction histogram of each B×B block (mean over the block,
    stride 1), h_j = box_B(m·w_j), is normalised as p_j = h_j / (Σ_j h_j + δ) and

        e_B = −Σ_j p_j log p_j / log I.

    A straight edge (one direction) gives e ≈ 0, isotropic texture e ≈ 1, and a flat
    region e → 0 (Σ h ≪ δ: no directional information).  The energy is box_B(m).
    Returns ``(e (B, 1, H, W), energy (B, 1, H, W))``.
    """
    gx, gy = sobel_gradients(x)
    return _entropies(gx, gy, bins, (block,), delta)[0]


def lgde_target(a: torch.Tensor, b: torch.Tensor, bins: int = 8, blocks: Sequence[int] = (3, 5)
                ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per block size: the target entropy (that of the source with the larger local gradient
    energy) and its weight max(energy_A, energy_B), each ``(B, 1, H, W)``, without gradient."""
    with torch.no_grad():
        ea = _entropies(*sobel_gradients(a), bins, blocks, 1e-3)
        eb = _entropies(*sobel_gradients(b), bins, blocks, 1e-3)
        return [(torch.where(na >= nb, xa, xb), torch.maximum(na, nb)) for (xa, na), (xb, nb) in zip(ea, eb)]


def _lgde_per_image(gx: torch.Tensor, gy: torch.Tensor, targets: Sequence[tuple[torch.Tensor, torch.Tensor]],
                    bins: int, blocks: Sequence[int]) -> torch.Tensor:
    total = gx.new_zeros(gx.shape[0])
    for (e_f, _), (target, weight) in zip(_entropies(gx, gy, bins, blocks, 1e-3), targets):
        total = total + (weight * (e_f - target).abs()).sum((1, 2, 3)) / (weight.sum((1, 2, 3)) + 1e-12)
    return total / len(blocks)


def lgde_loss(
    f: torch.Tensor, a: torch.Tensor, b: torch.Tensor, bins: int = 8, blocks: Sequence[int] = (3, 5)
) -> torch.Tensor:
    """Energy-weighted L1 between e_B(F) and the entropy of the source with the larger local
    gradient energy, averaged over the block sizes 𝔅 and the batch (DESIGN §7.1):

        L = 1/|𝔅| Σ_B Σ_x w_B(x) |e_B(F)(x) − e_B*(x)| / Σ_x w_B(x)   (per image).

    Targets and weights come from the (clean) sources and carry no gradient.
    """
    targets = lgde_target(a, b, bins, blocks)
    return _lgde_per_image(*sobel_gradients(f), targets, bins, blocks).mean()


# ---------------------------------------------------------------------------- joint
@dataclass
class LossConfig:
    """Weights of the loss terms and the joint constraint (JSON-serialisable).

    Attributes:
        intensity, gradient, ssim, lgde, qabf, fidelity, histogram, scd, mi, contrast: weights of
            the terms
            (:data:`TERMS`).
        fidelity_anchor: what the fidelity term compares with: an anchor of
            :func:`hifm.anchors.anchor` computed on the clean sources, or ``"teacher"``: the
            reference images the caller passes (:meth:`FusionLoss.forward`'s ``reference``; the
            trainer passes the initial network's output on the clean sources, i.e. the classical
            solver at N iterations: self-distillation for degraded inputs).
        histogram_bins: bins of the histogram term (:func:`histogram_loss`).
        mi_bins: levels K of the MI term (:func:`soft_mutual_information`).
        contrast_sigma, contrast_source: σ of the contrast term's window and whose contrast it
            asks for (``"max"``: the larger of the sources', ``"b"``: B's; :func:`contrast_loss`).
        lgde_bins: I (4, 8, 16 or 32).
        lgde_blocks: 𝔅, e.g. (3, 5) (default), (3, 7), (5, 7), (3, 5, 7).
        joint: deep supervision of every stage (weights ∝ (n/N) ** stage_power, normalised)
            plus ``anchor_weight`` × the loss of M_θ; False: the final output only.
        stage_power: growth of the stage weights (1: linear).
        anchor_weight: weight of the term on the learned anchor M_θ.
        lgde_stages: ``"last"`` (default): the LGDE term on the final output and M_θ only, the
            other terms on every stage; ``"all"``: every term on every stage.  (LGDE on all
            ten supervised images doubles the CPU time of a training step.)
    """

    intensity: float = 1.0
    gradient: float = 1.0
    ssim: float = 1.0
    lgde: float = 0.5
    qabf: float = 0.0
    fidelity: float = 0.0
    fidelity_anchor: str = "salient"
    histogram: float = 0.0
    histogram_bins: int = 64
    scd: float = 0.0
    mi: float = 0.0
    mi_bins: int = 32
    contrast: float = 0.0
    contrast_sigma: float = 4.0
    contrast_source: str = "max"
    lgde_bins: int = 8
    lgde_blocks: Sequence[int] = (3, 5)
    joint: bool = True
    stage_power: float = 1.0
    anchor_weight: float = 0.1
    lgde_stages: str = "last"

    def __post_init__(self) -> None:
        self.lgde_blocks = tuple(int(b) for b in self.lgde_blocks)
        if int(self.lgde_bins) < 2:
            raise ValueError("lgde_bins must be ≥ 2")
        if any(b < 1 or b % 2 == 0 for b in self.lgde_blocks) or not self.lgde_blocks:
            raise ValueError(f"lgde_blocks must be odd sizes ≥ 1, got {self.lgde_blocks}")
        if self.lgde_stages not in ("last", "all"):
            raise ValueError(f"lgde_stages must be 'last' or 'all', got {self.lgde_stages!r}")
        if self.contrast_source not in ("max", "b"):
            raise ValueError(f"contrast_source must be 'max' or 'b', got {self.contrast_source!r}")
        if not self.contrast_sigma > 0:
            raise ValueError(f"contrast_sigma must be > 0, got {self.contrast_sigma!r}")
        if int(self.mi_bins) < 2:
            raise ValueError(f"mi_bins must be ≥ 2, got {self.mi_bins!r}")


TERMS = ("intensity", "gradient", "ssim", "lgde", "qabf", "fidelity", "histogram", "scd", "mi", "contrast")


class FusionLoss(nn.Module):
    """The DeRUN training loss: weighted terms, joint over the stages (deep supervision).

    ``forward(stages, anchor, a, b)`` takes the list of stage outputs (the last is the fused
    image), the learned anchor (or None) and the clean sources; returns ``(total, terms)``
    where ``terms`` holds the unweighted terms of the final output (and ``"anchor"``: the
    weighted loss of M_θ when it is used).  All supervised images are evaluated in one
    batch; the values equal those of the module functions (tested).
    """

    def __init__(self, config: LossConfig | None = None):
        super().__init__()
        self.config = config if config is not None else LossConfig()

    def stage_weights(self, n: int) -> list[float]:
        """Normalised deep-supervision weights (∝ (i/N)^power, i = 1…N), or [0, …, 0, 1]."""
        if not self.config.joint:
            return [0.0] * (n - 1) + [1.0]
        w = [((i + 1) / n) ** self.config.stage_power for i in range(n)]
        s = sum(w)
        return [x / s for x in w]

    def per_image(
        self, f: torch.Tensor, a: torch.Tensor, b: torch.Tensor, terms: Sequence[str] = TERMS,
        reference: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """The unweighted ``terms`` (with a non-zero weight) of each image of ``f (N, 1, H, W)``
        against ``a, b`` (N images, or a divisor of N: repeated): a dict of ``(N,)`` tensors."""
        c = dataclasses.replace(self.config, **{k: 0.0 for k in TERMS if k not in terms})
        a4, b4, f4 = _as4(a), _as4(b), _as4(f)
        reps = f4.shape[0] // a4.shape[0]
        rep = (lambda t: t.repeat(reps, *([1] * (t.ndim - 1)))) if reps > 1 else (lambda t: t)  # noqa: E731
        out: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            src_max = torch.maximum(a4, b4)
            ga, gb = sobel_gradients(a4), sobel_gradients(b4)
        gx, gy = sobel_gradients(f4)
        if c.intensity:
            out["intensity"] = (f4 - rep(src_max)).abs().mean((1, 2, 3))
        if c.gradient:
            with torch.no_grad():
                gmax = torch.maximum(torch.sqrt(ga[0] ** 2 + ga[1] ** 2 + _EPS**2), torch.sqrt(gb[0] ** 2 + gb[1] ** 2 + _EPS**2))
            mag = torch.sqrt(gx * gx + gy * gy + _EPS * _EPS)
            out["gradient"] = (mag - rep(gmax)).abs().mean((1, 2, 3))
        if c.ssim:
            g = _gaussian_window(_window(f4, 11), 1.5, f4)
            with torch.no_grad():
                ma, mb, aa, bb = _blur(torch.cat([a4, b4, a4 * a4, b4 * b4], 1), g).unbind(1)
                saa, sbb = aa - ma * ma, bb - mb * mb
            ar, br = rep(a4), rep(b4)
            mf, ff, fa, fb = _blur(torch.cat([f4, f4 * f4, f4 * ar, f4 * br], 1), g).unbind(1)
            ma_, mb_, saa_, sbb_ = rep(ma), rep(mb), rep(saa), rep(sbb)
            sff = ff - mf * mf
            s_a = _ssim_map(mf, ma_, sff, saa_, fa - mf * ma_).mean((1, 2))
            s_b = _ssim_map(mf, mb_, sff, sbb_, fb - mf * mb_).mean((1, 2))
            out["ssim"] = 1 - 0.5 * (s_a + s_b)
        if c.qabf:
            out["qabf"] = 1 - qabf(f4, rep(a4), rep(b4))
        if c.fidelity:
            if c.fidelity_anchor == "teacher":
                if reference is None:
                    raise ValueError("fidelity_anchor='teacher' needs the reference images (FusionLoss(..., reference=))")
                ref = _as4(reference).detach()
            else:
                from hifm.anchors import anchor as make_anchor

                with torch.no_grad():
                    ref = make_anchor(a4[:, 0], b4[:, 0], c.fidelity_anchor)[:, None]
            out["fidelity"] = (f4 - rep(ref)).abs().mean((1, 2, 3))
        if c.histogram:
            out["histogram"] = histogram_loss(f4, a4, b4, c.histogram_bins)
        if c.scd:
            out["scd"] = 1 - 0.5 * scd(f4, rep(a4), rep(b4))
        if c.mi:
            mi = soft_mutual_information(f4, a4, c.mi_bins) + soft_mutual_information(f4, b4, c.mi_bins)
            out["mi"] = 1 - mi / (2 * math.log(c.mi_bins))
        if c.contrast:
            out["contrast"] = contrast_loss(f4, a4, b4, c.contrast_sigma, c.contrast_source)
        if c.lgde:
            targets = lgde_target(a4, b4, c.lgde_bins, c.lgde_blocks)
            targets = [(rep(t), rep(w)) for t, w in targets]
            out["lgde"] = _lgde_per_image(gx, gy, targets, c.lgde_bins, c.lgde_blocks)
        return out

    def forward(
        self, stages: Sequence[torch.Tensor], anchor: torch.Tensor | None, a: torch.Tensor, b: torch.Tensor,
        reference: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``reference``: the images of ``fidelity_anchor="teacher"`` (one per source pair)."""
        c = self.config
        weights = self.stage_weights(len(stages))
        images = [(w, y) for w, y in zip(weights, stages) if w != 0.0]
        use_anchor = c.joint and anchor is not None and c.anchor_weight > 0
        if use_anchor:
            images.append((c.anchor_weight, anchor))
        n, batch = len(images), _as4(a).shape[0]
        last = n - (2 if use_anchor else 1)
        # every term on every supervised image, LGDE on all of them or on the last ones
        lgde_sets = list(range(n)) if c.lgde_stages == "all" else list(range(last, n))
        other = [k for k in TERMS if k != "lgde"]
        terms = self.per_image(torch.cat([_as4(y) for _, y in images], 0), a, b, other, reference)
        per_set_terms = {k: v.reshape(n, batch).mean(1) for k, v in terms.items()}
        if c.lgde:
            lg = self.per_image(torch.cat([_as4(images[i][1]) for i in lgde_sets], 0), a, b, ("lgde",))["lgde"]
            lg_sets = lg.reshape(len(lgde_sets), batch).mean(1)
            per_set_terms["lgde"] = torch.stack(
                [lg_sets[lgde_sets.index(i)] if i in lgde_sets else lg_sets.new_zeros(()) for i in range(n)]
            )
        per_set = sum(getattr(c, k) * v for k, v in per_set_terms.items())  # (n,)
        w = torch.tensor([w for w, _ in images], dtype=per_set.dtype, device=per_set.device)
        total = (w * per_set).sum()
        report = {k: v[last].detach() for k, v in per_set_terms.items()}
        if use_anchor:
            report["anchor"] = per_set[-1].detach()
        return total, report

"""The losses of DESIGN §7.1 on cases with known answers."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from unrolled.losses import (  # noqa: E402
    contrast_loss,
    soft_mutual_information,
    scd,
    BLOCK_SETS,
    FusionLoss,
    LossConfig,
    box_mean,
    gradient_loss,
    gradient_magnitude,
    histogram_loss,
    intensity_loss,
    lgde_entropy,
    lgde_loss,
    sobel_gradients,
    soft_histogram,
    ssim,
    ssim_loss,
)

H = 48


def weighted_entropy(x: torch.Tensor, bins: int = 8, block: int = 5) -> float:
    """Energy-weighted mean of e_B over the image."""
    e, en = lgde_entropy(x, bins, block)
    return float((e * en).sum() / en.sum())


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(H), torch.arange(H), indexing="ij")
    edge = (xx >= H // 2).to(torch.float64)[None]  # one straight vertical edge
    diag = ((xx + yy) >= H).to(torch.float64)[None]  # a 45° edge (on a bin centre for I = 8)
    noise = torch.rand(1, H, H, generator=g, dtype=torch.float64)  # isotropic texture
    flat = torch.full((1, H, H), 0.4, dtype=torch.float64)
    return dict(edge=edge, diag=diag, noise=noise, flat=flat)


@pytest.mark.parametrize("bins", [4, 8, 16, 32])
def test_lgde_entropy_known_answers(images, bins):
    e_edge = weighted_entropy(images["edge"], bins)
    e_noise = weighted_entropy(images["noise"], bins)
    e_flat, _ = lgde_entropy(images["flat"], bins, 5)
    assert e_edge < 0.07  # one direction: ≈ 0
    assert e_noise > 0.75  # isotropic texture: high
    assert float(e_flat.max()) < 0.01  # no gradient: no directional information
    assert 0 <= float(lgde_entropy(images["noise"], bins, 3)[0].min()) <= float(lgde_entropy(images["noise"], bins, 3)[0].max()) <= 1
    if bins == 8:
        assert weighted_entropy(images["diag"], bins) < 0.07


def test_lgde_entropy_of_two_directions_is_in_between(images):
    """The corner of a bright quadrant: two edge directions (plus the corner's diagonal) meet,
    so the entropy there lies between one direction (≈ 0) and isotropic texture (≈ 1)."""
    yy, xx = torch.meshgrid(torch.arange(H), torch.arange(H), indexing="ij")
    corner = ((xx >= H // 2) & (yy >= H // 2)).to(torch.float64)[None]
    e, _ = lgde_entropy(corner, 8, 5)
    centre = float(e[0, 0, H // 2, H // 2])
    assert 0.3 < centre < 0.7
    assert centre > 5 * weighted_entropy(images["edge"]) and centre < weighted_entropy(images["noise"])


def test_lgde_loss_values(images):
    a, b = images["edge"], images["noise"]
    # F = the source that wins everywhere it matters → small; a flat F → large
    assert float(lgde_loss(a, a, images["flat"])) < 1e-6
    assert float(lgde_loss(images["flat"], a, b)) > 0.3
    for blocks in BLOCK_SETS.values():
        assert float(lgde_loss(images["flat"], a, b, 8, blocks)) > 0.3


def test_intensity_and_gradient_losses(images):
    a, b = images["noise"], images["diag"]
    assert float(intensity_loss(torch.maximum(a, b), a, b)) == 0.0
    assert float(intensity_loss(torch.zeros_like(a), a, b)) == pytest.approx(float(torch.maximum(a, b).mean()))
    # F = A when B is flat: |∇F| = max(|∇A|, |∇B|) exactly
    assert float(gradient_loss(a, a, images["flat"])) == pytest.approx(0.0, abs=1e-12)
    # a unit vertical step: Sobel magnitude 4 on the two columns beside the edge
    gx, gy = sobel_gradients(images["edge"])
    assert float(gx.abs().max()) == pytest.approx(4.0) and float(gy.abs().max()) == 0.0
    # |∇flat| = ε = 1e-6 everywhere (the smoothing of the square root) and |∇edge| ≥ ε
    assert float(gradient_loss(images["flat"], images["edge"], images["flat"])) == pytest.approx(
        float(gradient_magnitude(images["edge"]).mean()) - 1e-6, abs=1e-13
    )


def test_ssim_known_answers(images):
    a, b = images["noise"], images["diag"]
    assert float(ssim(a, a)[0]) == pytest.approx(1.0, abs=1e-12)
    assert float(ssim(a, 1 - a)[0]) < 0  # inverted contrast
    assert float(ssim_loss(a, a, a)) == pytest.approx(0.0, abs=1e-12)
    assert 0 < float(ssim_loss(a, a, b)) < 1
    # against scikit-image (gaussian weights, σ = 1.5, population moments, no downsampling; its
    # mean over the map without the 5-pixel border is the mean over our valid region)
    skm = pytest.importorskip("skimage.metrics")
    x = a[0].numpy()
    rng = np.random.default_rng(0)
    for y, data_range in (
        (np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1), 1.0),
        (0.5 + 0.05 * (x - 0.5) + rng.normal(0, 0.01, x.shape), 1.0),  # low contrast: C₁, C₂ dominate
        (np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1), 2.0),
    ):
        ref = skm.structural_similarity(x, y, data_range=data_range, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False)
        ours = float(ssim(torch.tensor(x)[None], torch.tensor(y)[None], data_range=data_range)[0])
        assert ours == pytest.approx(ref, rel=0, abs=1e-12)  # measured: 0 (same float64 operations)


def test_box_mean_is_the_mean_over_the_window():
    x = torch.rand(2, 3, 11, 13, dtype=torch.float64)
    for block in (3, 5, 7):
        r = block // 2
        ref = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(x, (r, r, r, r), mode="reflect"), block, stride=1)
        assert torch.allclose(box_mean(x, block), ref, atol=1e-12)


def test_joint_constraint_weights_and_switch(images):
    a, b = images["noise"], images["diag"]
    stages = [images["flat"], 0.5 * (a + b), torch.maximum(a, b)]
    joint = FusionLoss(LossConfig())
    w = joint.stage_weights(3)
    assert w == pytest.approx([1 / 6, 2 / 6, 3 / 6]) and sorted(w) == w
    final_only = FusionLoss(LossConfig(joint=False))
    assert final_only.stage_weights(3) == [0.0, 0.0, 1.0]
    total_f, terms_f = final_only(stages, None, a, b)
    single, _ = final_only(stages[-1:], None, a, b)
    assert float(total_f) == pytest.approx(float(single))
    assert float(terms_f["intensity"]) == 0.0  # F = max(A, B)
    total_j, terms_j = joint(stages, images["flat"], a, b)
    assert float(total_j) > float(total_f)  # the early (flat) stage and the anchor are penalised
    assert "anchor" in terms_j and "anchor" not in terms_f
    # the batched terms equal the module functions
    cfg = LossConfig(lgde_stages="all", anchor_weight=0.0)
    f = 0.5 * (a + b)
    total, terms = FusionLoss(cfg)([f], None, a, b)
    assert float(terms["intensity"]) == pytest.approx(float(intensity_loss(f, a, b)), rel=1e-10)
    assert float(terms["gradient"]) == pytest.approx(float(gradient_loss(f, a, b)), rel=1e-10)
    assert float(terms["ssim"]) == pytest.approx(float(ssim_loss(f, a, b)), rel=1e-10)
    assert float(terms["lgde"]) == pytest.approx(float(lgde_loss(f, a, b)), rel=1e-10)
    assert float(total) == pytest.approx(sum(float(terms[k]) * getattr(cfg, k) for k in terms), rel=1e-10)


def test_loss_gradients_are_finite_on_flat_images(images):
    f = images["flat"].clone().requires_grad_()
    total, _ = FusionLoss()([f], None, images["flat"], images["flat"])
    total.backward()
    assert torch.isfinite(f.grad).all()
    with pytest.raises(ValueError, match="lgde_blocks must be odd sizes"):
        LossConfig(lgde_blocks=(4,))
    with pytest.raises(ValueError, match="lgde_stages must be 'last' or 'all'"):
        LossConfig(lgde_stages="some")
    assert math.isfinite(float(total.detach()))


def test_soft_histogram_known_answers():
    bins = 5  # bin centres 0, 0.25, 0.5, 0.75, 1
    x = torch.tensor([[0.0, 0.25, 0.25, 1.0], [0.125, 0.125, 0.9375, 2.0]], dtype=torch.float64)
    h = soft_histogram(x.reshape(2, 1, 2, 2), bins)
    assert h[0].tolist() == pytest.approx([0.25, 0.5, 0.0, 0.0, 0.25])
    # 0.125 is half-way between bins 0 and 1; 0.9375 is 3/4 of the way from bin 3 to bin 4;
    # 2.0 is clipped to 1
    assert h[1].tolist() == pytest.approx([0.25, 0.25, 0.0, 0.0625, 0.4375])
    assert h.sum(1).tolist() == pytest.approx([1.0, 1.0])


def test_histogram_loss_is_the_cross_entropy_metric_on_full_histograms():
    from hifm.metrics import information

    rng = np.random.default_rng(3)
    # every grey level present in each image, so the metric skips no bin
    levels = np.arange(256)
    a, b, f = (rng.permutation(np.concatenate([levels, rng.integers(lo, hi, 1792)])).reshape(32, 64).astype(np.uint8)
               for lo, hi in ((0, 120), (100, 256), (40, 220)))
    t = lambda x: torch.from_numpy(x / 255.0)[None, None]  # noqa: E731
    loss = float(histogram_loss(t(f), t(a), t(b), bins=256, eps=1e-15)[0])
    assert loss == pytest.approx(information.cross_entropy(f, a, b, protocol="gray"), rel=1e-9)


def test_histogram_loss_values_and_gradient():
    half = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    half[..., :4] = 1.0
    a = torch.zeros_like(half)  # all 0
    b = torch.ones_like(half)  # all 1
    # F's histogram is the mixture of the sources': the minimum, 1 bit (eps shifts it a little)
    assert float(histogram_loss(half, a, b, bins=2, eps=1e-12)[0]) == pytest.approx(1.0, abs=1e-9)
    assert float(histogram_loss(a, a, a, bins=16)[0]) == pytest.approx(0.0, abs=1e-12)
    # the mean of the sources has neither source's levels: much larger
    assert float(histogram_loss(torch.full_like(half, 0.5), a, b, bins=3)[0]) > 5.0
    # the gradient is that of the piecewise-linear histogram (values away from bin centres)
    g = torch.Generator().manual_seed(1)
    f = (0.05 + 0.9 * torch.rand(1, 1, 6, 6, generator=g, dtype=torch.float64)).requires_grad_()
    src = torch.rand(2, 1, 6, 6, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda y: histogram_loss(y, src[:1], src[1:], bins=7), (f,), eps=1e-7)
    # the joint loss reports the same value
    cfg = LossConfig(intensity=0, gradient=0, ssim=0, lgde=0, histogram=1.0, histogram_bins=7, joint=False)
    total, terms = FusionLoss(cfg)([f], None, src[:1], src[1:])
    assert float(terms["histogram"]) == pytest.approx(float(histogram_loss(f, src[:1], src[1:], bins=7)[0].detach()), rel=1e-12)
    assert float(total.detach()) == pytest.approx(float(terms["histogram"]), rel=1e-12)


def test_scd_term_is_the_scd_metric_and_has_a_gradient():
    from hifm.metrics.structural import scd_plane

    g = torch.Generator().manual_seed(3)
    src = torch.rand(3, 1, 12, 10, generator=g, dtype=torch.float64)
    a, b, f = src[:1], src[1:2], src[2:]
    want = scd_plane(a[0, 0].numpy(), b[0, 0].numpy(), f[0, 0].numpy())
    assert float(scd(f, a, b)[0]) == pytest.approx(want, abs=1e-10)
    # F = A + B: each difference is the other source, SCD = 2 (its maximum)
    assert float(scd(a + b, a, b)[0]) == pytest.approx(2.0, abs=1e-10)
    # a copy of one source keeps none of the other: r(A − B, A) + r(0, B) < that
    assert float(scd(a, a, b)[0]) < 1.0
    fr = f.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda y: scd(y, a, b), (fr,), eps=1e-7)
    cfg = LossConfig(intensity=0, gradient=0, ssim=0, lgde=0, scd=1.0, joint=False)
    total, terms = FusionLoss(cfg)([f], None, a, b)
    assert float(terms["scd"]) == pytest.approx(1 - want / 2, abs=1e-10)
    assert float(total) == pytest.approx(1 - want / 2, abs=1e-10)


def _mi_by_counting(s: np.ndarray, f: np.ndarray, k: int) -> float:
    """The plain histogram estimate of I(S; F) in nats, levels round(x (k − 1))."""
    qs = np.rint(np.clip(s, 0, 1) * (k - 1)).astype(int).ravel()
    qf = np.rint(np.clip(f, 0, 1) * (k - 1)).astype(int).ravel()
    joint = np.zeros((k, k))
    np.add.at(joint, (qs, qf), 1.0)
    joint /= joint.sum()
    ps, pf = joint.sum(1), joint.sum(0)
    nz = joint > 0
    return float(np.sum(joint[nz] * np.log(joint[nz] / np.outer(ps, pf)[nz])))


def test_soft_mutual_information_is_the_histogram_estimate_on_levels_and_has_a_gradient():
    k = 8
    rng = np.random.default_rng(5)
    s = rng.random((2, 1, 10, 12))
    levels = rng.integers(0, k, (2, 1, 10, 12)) / (k - 1)
    f = np.where(rng.random(levels.shape) < 0.6, np.rint(s * (k - 1)) / (k - 1), levels)  # F follows S in part
    got = soft_mutual_information(torch.from_numpy(f), torch.from_numpy(s), bins=k, eps=0.0)
    for i in range(2):
        assert float(got[i]) == pytest.approx(_mi_by_counting(s[i, 0], f[i, 0], k), abs=1e-12)
    # a copy of S carries all of its information, an F independent of S about none
    copy = torch.from_numpy(np.rint(s * (k - 1)) / (k - 1))
    h_s = -sum(p * math.log(p) for p in np.bincount(np.rint(s[0, 0] * (k - 1)).astype(int).ravel()) / 120.0 if p > 0)
    assert float(soft_mutual_information(copy, torch.from_numpy(s), bins=k)[0]) == pytest.approx(h_s, abs=1e-8)
    flat = torch.full((1, 1, 10, 12), 0.5, dtype=torch.float64)
    assert float(soft_mutual_information(flat, torch.from_numpy(s[:1]), bins=k)[0]) == pytest.approx(0.0, abs=1e-8)
    # the gradient is that of the piecewise-linear histograms (values away from the levels)
    g = torch.Generator().manual_seed(2)
    x = (0.05 + 0.9 * torch.rand(1, 1, 6, 6, generator=g, dtype=torch.float64)).requires_grad_()
    src = torch.rand(1, 1, 6, 6, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda y: soft_mutual_information(y, src, bins=5), (x,), eps=1e-7)
    # the joint loss: 1 − (I(A; F) + I(B; F)) / (2 ln K)
    a, b = src, torch.rand(1, 1, 6, 6, generator=g, dtype=torch.float64)
    cfg = LossConfig(intensity=0, gradient=0, ssim=0, lgde=0, mi=1.0, mi_bins=5, joint=False)
    total, terms = FusionLoss(cfg)([x], None, a, b)
    want = 1 - float((soft_mutual_information(x, a, 5)[0] + soft_mutual_information(x, b, 5)[0]).detach()) / (2 * math.log(5))
    assert float(terms["mi"].detach()) == pytest.approx(want, abs=1e-12)


def test_contrast_loss_is_the_local_contrast_shortfall():
    from scipy.signal import convolve2d

    rng = np.random.default_rng(7)
    a = 0.5 + 0.3 * (rng.random((1, 1, 30, 34)) - 0.5)  # texture
    b = np.full_like(a, 0.4)  # flat: the larger local contrast is A's everywhere
    sigma = 2.0
    x = np.arange(13) - 6.0
    g1 = np.exp(-x * x / (2 * sigma * sigma))
    k = np.outer(g1, g1) / g1.sum() ** 2

    def local_std(img: np.ndarray) -> np.ndarray:
        m = convolve2d(img, k, mode="valid")
        return np.sqrt(np.maximum(convolve2d(img * img, k, mode="valid") - m * m, 0) + 1e-12)

    t = torch.from_numpy
    flat = np.full_like(a, 0.7)
    assert float(contrast_loss(t(flat), t(a), t(b), sigma)[0]) == pytest.approx(local_std(a[0, 0]).mean() - 1e-6, rel=1e-6)
    assert float(contrast_loss(t(a), t(a), t(b), sigma)[0]) == pytest.approx(0.0, abs=1e-12)  # A itself: nothing short
    assert float(contrast_loss(t(1.5 * a), t(a), t(b), sigma)[0]) == pytest.approx(0.0, abs=1e-12)  # more: no penalty
    half = 0.5 + 0.5 * (a - 0.5)  # half the contrast: half of it short
    want = np.maximum(local_std(a[0, 0]) - local_std(half[0, 0]), 0).mean()
    assert float(contrast_loss(t(half), t(a), t(b), sigma)[0]) == pytest.approx(want, rel=1e-9)
    f = t(half).clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda y: contrast_loss(y, t(a), t(b), sigma), (f,), eps=1e-7)
    # source "b": only B's contrast is asked for (here B is flat: nothing; with the roles swapped: A's)
    assert float(contrast_loss(t(flat), t(a), t(b), sigma, source="b")[0]) == pytest.approx(0.0, abs=1e-12)
    assert float(contrast_loss(t(flat), t(b), t(a), sigma, source="b")[0]) == pytest.approx(
        local_std(a[0, 0]).mean() - 1e-6, rel=1e-6)
    with pytest.raises(ValueError, match="contrast source"):
        contrast_loss(t(flat), t(a), t(b), sigma, source="a")


@pytest.mark.parametrize("field, value, message", [
    ("contrast_source", "a", "contrast_source must be 'max' or 'b'"),
    ("contrast_sigma", 0.0, "contrast_sigma must be > 0"),
    ("mi_bins", 1, "mi_bins must be ≥ 2"),
])
def test_loss_config_refuses_bad_new_term_settings(field, value, message):
    with pytest.raises(ValueError, match=message):
        LossConfig(**{field: value})

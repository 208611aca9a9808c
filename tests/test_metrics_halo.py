"""Known-answer tests of the halo and target-contrast measures (hifm.metrics.halo).

Most scenes are a hot square on a textured background whose texture is odd about the square's
centre (its mean over any region symmetric about that centre is zero), so that the analytic
values hold to rounding: pasting the infrared target into the visible image gives H = 0 and
TCR = 1, a ring of depth d around it gives H = d / (target contrast), and so on. Distances to
the square are computed here from its geometry, independently of the code under test; one
test compares the whole computation with a plain loop transcription of the definition.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

import hifm.metrics as M
from hifm.metrics import HaloParams, evaluate, get_metric, halo_analysis, hot_targets
from hifm.metrics.protocol import rgb2gray_matlab

N = 161          # image size (odd: the square's centre is the image centre)
C = 80           # centre
HALF = 12        # the square covers C - 12 .. C + 12 (25 × 25 pixels)
BG, HOT = 100.0, 180.0
CONTRAST = HOT - BG
YY, XX = np.mgrid[0:N, 0:N]
SQUARE = (np.abs(YY - C) <= HALF) & (np.abs(XX - C) <= HALF)
# Euclidean distance of every pixel to the square (0 inside)
DIST = np.hypot(np.maximum(0, np.abs(YY - C) - HALF), np.maximum(0, np.abs(XX - C) - HALF))
RING = (DIST > 0) & (DIST <= 15)  # covers the near ring (1, 10] whatever the mask's corners
CORNERS = 4  # a 3×3 median removes the square's four corner pixels


def odd_texture(amplitude: float = 15.0) -> np.ndarray:
    """A texture whose two terms are odd in x and in y about the centre (zero mean over any
    region symmetric about it)."""
    u, v = (XX - C).astype(float), (YY - C).astype(float)
    return amplitude * (np.sin(2 * np.pi * u / 7.0) * np.cos(2 * np.pi * v / 11.0)
                        + 0.6 * np.sin(2 * np.pi * v / 5.0) * np.cos(2 * np.pi * u / 13.0))


def symmetric_scene(ir_ring: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(visible, infrared): V = 100 + odd texture (the target is not visible); I = 100 on the
    background, 180 on the square, plus ``ir_ring`` on RING (a ring of the camera's own)."""
    vis = BG + odd_texture()
    ir = BG + CONTRAST * SQUARE + ir_ring * RING
    return vis, ir


def paste(vis: np.ndarray, ir: np.ndarray) -> np.ndarray:
    return np.where(SQUARE, ir, vis)


# --------------------------------------------------------------------------- targets
def test_detector_finds_the_square_and_ignores_specks_lines_and_border_blobs() -> None:
    ir = np.full((N, N), BG)
    ir[SQUARE] = HOT
    ir[10:13, 10:13] = HOT             # 9-pixel speck: below min_area after the cleaning
    ir[150:153, 5:155] = HOT           # a 150-pixel bright line: its own background along it
    ir[0:20, 130:150] = HOT            # a blob touching the border
    mask = hot_targets(ir)
    assert not (mask & ~SQUARE).any()
    assert int((SQUARE & ~mask).sum()) == CORNERS
    assert ndimage.label(mask)[1] == 1


def test_detector_threshold_follows_the_infrared_contrast() -> None:
    """A square 0.25 of the dynamic range above its background is found, 0.1 is not
    (alpha = 0.3 of the range, hysteresis down to half of it)."""
    base = np.full((N, N), BG)
    base[5:25, 5:25] = BG + 100.0  # sets the dynamic range s = 100 (the reference blob)
    weak, strong = base.copy(), base.copy()
    weak[SQUARE] = BG + 10.0
    strong[SQUARE] = BG + 35.0
    assert not (hot_targets(weak) & SQUARE).any()
    assert int((hot_targets(strong) & SQUARE).sum()) == SQUARE.sum() - CORNERS


def test_detector_grows_targets_by_hysteresis_and_drops_small_ones() -> None:
    """A dimmer part attached to a hot square (contrast 18: between the growth threshold 12
    and the seed threshold 24 of a range of 80) belongs to the target; the same part alone is
    no target. A 6×6 blob is kept by default (>= 20 px) and dropped with min_area = 40."""
    ir = np.full((N, N), BG)
    ir[SQUARE] = HOT
    part = (np.abs(YY - C) <= HALF) & (XX > C + HALF) & (XX <= C + HALF + 10)
    ir[part] = BG + 18.0
    assert hot_targets(ir)[part].sum() >= part.sum() - 2  # all but the outer corners (median)
    alone = np.full((N, N), BG)
    alone[5:30, 5:30] = HOT  # sets the same range
    alone[part] = BG + 18.0
    assert not hot_targets(alone)[part].any()
    blob = np.full((N, N), BG)
    blob[SQUARE] = HOT
    blob[20:26, 20:26] = HOT
    assert hot_targets(blob)[20:26, 20:26].any()
    assert not hot_targets(blob, HaloParams(min_area=40))[20:26, 20:26].any()


@pytest.mark.parametrize("ir", [
    np.full((N, N), BG),                                              # constant
    BG + np.random.default_rng(0).normal(0, 3.0, (N, N)),             # noise only
    BG + np.random.default_rng(1).normal(0, 10.0, (N, N)),
])
def test_no_target_gives_nan_not_an_error(ir: np.ndarray) -> None:
    vis = BG + odd_texture()
    r = halo_analysis(vis, vis, ir)
    assert r.n_targets == 0 and not r.targets.any()
    assert math.isnan(r.halo) and math.isnan(r.tcr) and math.isnan(r.halo_signed)
    v = evaluate(vis.astype(np.uint8), vis.astype(np.uint8), np.clip(ir, 0, 255).astype(np.uint8),
                 metrics=["Halo", "TCR"])
    assert math.isnan(v["Halo"]) and math.isnan(v["TCR"])


def test_tiny_images_give_nan() -> None:
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert math.isnan(M.halo(img, img, img, protocol="gray"))
    assert math.isnan(M.target_contrast(img, img, img, protocol="gray"))


# --------------------------------------------------------------------------- known answers
def test_perfect_fusion_has_no_halo_and_keeps_the_contrast() -> None:
    vis, ir = symmetric_scene()
    r = halo_analysis(paste(vis, ir), vis, ir)
    assert r.n_targets == 1
    assert r.halo == pytest.approx(0.0, abs=1e-12)
    assert r.tcr == pytest.approx(1.0, abs=1e-12)
    assert r.gain_visible == pytest.approx(1.0, abs=1e-12)
    assert r.gain_infrared == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("depth", [-20.0, -5.0, 12.0])
def test_ring_of_known_depth(depth: float) -> None:
    """A ring of depth d on 0 < d_square <= 15 px: H = |d| / 80, signed H = d / 80."""
    vis, ir = symmetric_scene()
    fused = paste(vis, ir) + depth * RING
    r = halo_analysis(fused, vis, ir)
    assert r.halo == pytest.approx(abs(depth) / CONTRAST, abs=1e-12)
    assert r.halo_signed == pytest.approx(depth / CONTRAST, abs=1e-12)
    assert r.tcr == pytest.approx(1.0, abs=1e-12)  # the surrounding ring is untouched


def test_bands_are_compared_separately() -> None:
    """With the square itself as the target mask, a bright rim (+10 on 0 < d <= 4) next to a
    dark ring (-10 on 4 < d <= 15) gives H = 10/80 (the bands' excesses do not cancel) and
    signed H = 10 (n1 - n2 - n3) / (n 80), n_j the pixels of band j."""
    vis, ir = symmetric_scene()
    fused = paste(vis, ir) + 10.0 * ((DIST > 0) & (DIST <= 4)) - 10.0 * ((DIST > 4) & (DIST <= 15))
    r = halo_analysis(fused, vis, ir, targets=SQUARE)
    n1 = int(((DIST > 1) & (DIST <= 4)).sum())
    n23 = int(((DIST > 4) & (DIST <= 10)).sum())
    assert r.halo == pytest.approx(10.0 / CONTRAST, abs=1e-12)
    assert r.halo_signed == pytest.approx(10.0 * (n1 - n23) / ((n1 + n23) * CONTRAST), abs=1e-12)


def test_ring_outside_the_near_ring_is_not_counted() -> None:
    vis, ir = symmetric_scene()
    fused = paste(vis, ir) - 30.0 * ((DIST > 12) & (DIST <= 18))
    assert halo_analysis(fused, vis, ir).halo == pytest.approx(0.0, abs=1e-12)


def test_target_removed_keeps_no_contrast() -> None:
    vis, ir = symmetric_scene()
    r = halo_analysis(vis.copy(), vis, ir)
    assert r.tcr == pytest.approx(0.0, abs=1e-12)
    assert r.halo == pytest.approx(0.0, abs=1e-12)


def test_half_contrast() -> None:
    vis, ir = symmetric_scene()
    added = halo_analysis(vis + 0.5 * (ir - BG), vis, ir)
    averaged = halo_analysis(0.5 * (vis + ir), vis, ir)
    for r in (added, averaged):
        assert r.tcr == pytest.approx(0.5, abs=1e-12)
        assert r.halo == pytest.approx(0.0, abs=1e-12)
    assert averaged.gain_visible == pytest.approx(0.5, abs=1e-12)


def test_a_ring_of_the_infrared_itself_is_excused_at_the_fused_gain_only() -> None:
    """The infrared has its own dark ring (-10 on RING). A fusion carrying 60 % of the
    infrared everywhere has no halo; one carrying the ring fully but only 60 % of the target
    has a ring 4 levels deeper than its sources explain: H = 4/80; an extra ring of -12 gives
    12/80; a bright ring of +12 over the infrared's dark one gives (12 - 6)/80."""
    vis, ir = symmetric_scene(ir_ring=-10.0)
    cases = {
        "gain": (vis + 0.6 * (ir - BG), 0.0),
        "full ring": (vis + 0.6 * CONTRAST * SQUARE - 10.0 * RING, -4.0),
        "extra dark": (vis + 0.6 * (ir - BG) - 12.0 * RING, -12.0),
        "bright": (vis + 0.6 * (ir - BG) + 12.0 * RING, 6.0),
    }
    for name, (fused, excess) in cases.items():
        r = halo_analysis(fused, vis, ir)
        assert r.gain_infrared == pytest.approx(0.6, abs=1e-12), name
        assert r.halo == pytest.approx(abs(excess) / CONTRAST, abs=1e-12), name
        assert r.halo_signed == pytest.approx(excess / CONTRAST, abs=1e-12), name
        assert r.tcr == pytest.approx(0.6, abs=1e-12), name


def test_ring_in_the_visible_image_is_not_a_halo() -> None:
    """A dark ring that the visible image has (a dark coat around a warm face) is carried into
    F by the paste: not a halo."""
    vis, ir = symmetric_scene()
    vis = vis - 25.0 * ((DIST > 0) & (DIST <= 6))
    assert halo_analysis(paste(vis, ir), vis, ir).halo == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------- random scenes
def random_scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    tex = ndimage.gaussian_filter(rng.normal(0, 1, (N, N)), 2.0)
    vis = BG + 15.0 * tex / tex.std()
    ir = BG + rng.normal(0, 2.0, (N, N)) + CONTRAST * SQUARE
    return vis, ir


def test_random_texture_ring_depth_and_tcr() -> None:
    """Textured visible image, noisy infrared: the ring depth is recovered to the infrared
    noise's share in the band means and in Δ (N(0, 2) over hundreds of pixels: 0.06 grey
    levels for this seed, under 0.09 for seeds 0-5), and
    TCR equals the direct transcription on the true square's geometry up to the four corner
    pixels the detector drops."""
    vis, ir = random_scene()
    fused = paste(vis, ir) - 20.0 * RING
    r = halo_analysis(fused, vis, ir)
    assert r.halo == pytest.approx(20.0 / CONTRAST, abs=0.15 / CONTRAST)  # measured: 0.06 levels
    surround = (DIST > 20) & (DIST <= 40)
    ref = (fused[SQUARE].mean() - fused[surround].mean()) / (ir[SQUARE].mean() - ir[surround].mean())
    assert r.tcr == pytest.approx(ref, abs=2e-3)
    assert r.tcr == pytest.approx(1.0, abs=0.03)


def _reference(fused: np.ndarray, vis: np.ndarray, ir: np.ndarray, mask: np.ndarray,
               p: HaloParams) -> tuple[float, float, float]:
    """H, signed H and TCR by loops over the definition; nearest target by brute force."""
    labels, k = ndimage.label(mask)
    ty, tx = np.nonzero(mask)
    h, w = mask.shape
    dist = np.empty((h, w))
    owner = np.empty((h, w), int)
    for y in range(h):
        for x in range(w):
            d2 = (ty - y) ** 2 + (tx - x) ** 2
            j = int(np.argmin(d2))
            dist[y, x] = math.sqrt(d2[j])
            owner[y, x] = labels[ty[j], tx[j]]
    cells = []
    for t in range(1, k + 1):
        s = (owner == t) & (dist > p.surround[0]) & (dist <= p.surround[1])
        near = (owner == t) & (dist > p.near[0]) & (dist <= p.near[1])
        f, v, i = fused - fused[s].mean(), vis - vis[s].mean(), ir - ir[s].mean()
        cells.append(dict(T=labels == t, S=s, N=near, f=f, v=v, i=i))
    a = sum((c["f"] * c["v"])[c["S"]].sum() for c in cells) / sum((c["v"] ** 2)[c["S"]].sum() for c in cells)
    a = min(max(a, 0.0), p.max_gain)
    den_t = sum(c["T"].sum() * c["i"][c["T"]].mean() for c in cells)
    b = sum(c["T"].sum() * (c["f"] - a * c["v"])[c["T"]].mean() for c in cells) / den_t
    b = min(max(b, 0.0), p.max_gain)
    num_abs = num_sgn = den_n = 0.0
    for c in cells:
        den_n += c["N"].sum() * c["i"][c["T"]].mean()
        lo = p.near[0]
        while lo < p.near[1] - 1e-9:
            band = c["N"] & (dist > lo) & (dist <= lo + p.band)
            lo += p.band
            if not band.any():
                continue
            rho = (c["f"] - a * c["v"])[band].mean()
            beta = b * c["i"][band].mean()
            excess = rho - min(max(rho, min(0.0, beta)), max(0.0, beta))
            num_abs += band.sum() * abs(excess)
            num_sgn += band.sum() * excess
    tcr = sum(c["T"].sum() * c["f"][c["T"]].mean() for c in cells) / den_t
    return num_abs / den_n, num_sgn / den_n, tcr


def test_matches_a_loop_transcription_with_two_targets() -> None:
    rng = np.random.default_rng(5)
    h, w = 72, 130  # the targets are 55 px apart: their Voronoi border lies beyond every ring
    yy, xx = np.mgrid[0:h, 0:w]
    mask = ((np.abs(yy - 36) <= 5) & (np.abs(xx - 30) <= 4)) | ((yy - 30) ** 2 + (xx - 95) ** 2 <= 36)
    vis = 90 + 20 * ndimage.gaussian_filter(rng.normal(0, 1, (h, w)), 1.5)
    ir = 60 + 3 * rng.normal(0, 1, (h, w)) + 90 * mask - 8 * ndimage.binary_dilation(mask, iterations=4) * ~mask
    fused = 0.7 * vis + 0.4 * ir + 6 * ndimage.gaussian_filter(rng.normal(0, 1, (h, w)), 4) \
        - 15 * (ndimage.binary_dilation(mask, iterations=6) & ~mask)
    p = HaloParams(near=(1.0, 8.0), surround=(12.0, 20.0), band=2.5)
    r = halo_analysis(fused, vis, ir, p, targets=mask)
    ref = _reference(fused, vis, ir, mask, p)
    assert r.n_targets == 2
    assert r.halo == pytest.approx(ref[0], rel=1e-10)
    assert r.halo_signed == pytest.approx(ref[1], rel=1e-10)
    assert r.tcr == pytest.approx(ref[2], rel=1e-10)


# --------------------------------------------------------------------------- invariances
@pytest.mark.parametrize("offset,scale", [(23.0, 1.0), (0.0, 0.55), (-40.0, 1.3)])
def test_invariant_to_a_common_offset_and_scale(offset: float, scale: float) -> None:
    vis, ir = random_scene(3)
    fused = 0.8 * paste(vis, ir) + 0.2 * vis - 9.0 * RING
    r0 = halo_analysis(fused, vis, ir)
    t = (lambda x: scale * x + offset)
    r1 = halo_analysis(t(fused), t(vis), t(ir))
    assert r0.halo > 0.05
    assert r1.halo == pytest.approx(r0.halo, rel=1e-9)
    assert r1.tcr == pytest.approx(r0.tcr, rel=1e-9)
    assert np.array_equal(r1.targets, r0.targets)


def test_fused_scale_scales_the_halo() -> None:
    """Doubling F's deviations from its background doubles its ring depth (not invariant)."""
    vis, ir = symmetric_scene()
    fused = paste(vis, ir) - 10.0 * RING
    r1 = halo_analysis(fused, vis, ir)
    r2 = halo_analysis(BG + 2.0 * (fused - BG), vis, ir)
    assert r2.halo == pytest.approx(2.0 * r1.halo, rel=1e-9)
    assert r2.tcr == pytest.approx(2.0 * r1.tcr, rel=1e-9)


# --------------------------------------------------------------------------- API and registry
def test_registry_and_evaluate_on_gray_and_colour() -> None:
    assert get_metric("Halo").name == "halo" and not get_metric("halo").higher_is_better
    assert get_metric("TCR").name == "target_contrast" and get_metric("tcr").higher_is_better
    assert "halo" not in M.DEFAULT_METRICS and "target_contrast" not in M.DEFAULT_METRICS
    assert set(M.TARGET_METRICS) == {"halo", "target_contrast"}

    vis, ir = random_scene(1)
    fused = paste(vis, ir) - 16.0 * RING
    tint = np.array([0.9, 1.0, 1.15])
    vis_rgb = np.clip(vis[..., None] * tint, 0, 255)
    fused_rgb = np.clip(fused[..., None] * tint, 0, 255)
    expected = halo_analysis(rgb2gray_matlab(fused_rgb), rgb2gray_matlab(vis_rgb), ir)
    for protocol in ("vifb", "gray"):
        v = evaluate(fused_rgb, vis_rgb, ir, metrics=["Halo", "TCR", "Qabf"], protocol=protocol)
        assert v["Halo"] == pytest.approx(expected.halo, rel=1e-12)
        assert v["TCR"] == pytest.approx(expected.tcr, rel=1e-12)
    assert M.halo(fused_rgb, vis_rgb, ir) == pytest.approx(expected.halo, rel=1e-12)
    assert M.target_contrast(fused_rgb, vis_rgb, ir) == pytest.approx(expected.tcr, rel=1e-12)
    assert expected.halo == pytest.approx(16.0 / CONTRAST, abs=0.3 / CONTRAST)
    assert "halo" not in evaluate(fused, vis, ir)


def test_bad_inputs() -> None:
    vis, ir = symmetric_scene()
    with pytest.raises(ValueError, match="size mismatch"):
        halo_analysis(vis, vis[:-1], ir)
    with pytest.raises(ValueError, match="targets mask"):
        halo_analysis(vis, vis, ir, targets=np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match="needs both source images"):
        evaluate(vis, vis, metrics=["Halo"])
    with pytest.raises(ValueError, match="rings must satisfy"):
        HaloParams(near=(1.0, 30.0), surround=(20.0, 40.0))
    with pytest.raises(ValueError, match="alpha"):
        HaloParams(alpha=0.0)

"""Noise that is really there (issue "fusion quality", item 3): σ̂ on the sources, chroma denoising."""
from __future__ import annotations

import numpy as np
import pytest

import hifm
from hifm.chroma import denoise_chroma
from hifm.color import rgb_to_ycbcr
from hifm.noise import estimate_noise, noise_level
from hifm.params import HIFMParams


def smooth_scene(shape=(192, 256), seed=0):
    """A piecewise-smooth scene (ramps, a disc, a bar): little energy in the finest diagonal band."""
    rng = np.random.default_rng(seed)
    h, w = shape
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    img = 0.3 + 0.3 * x + 0.1 * y
    img += 0.25 * ((x - rng.uniform(0.3, 0.7)) ** 2 + (y - 0.5) ** 2 < 0.04)
    img[int(0.7 * h) : int(0.8 * h), int(0.1 * w) : int(0.6 * w)] -= 0.2
    return np.clip(img, 0, 1)


@pytest.mark.parametrize("sigma_a,sigma_b", [(0.0, 10 / 255), (15 / 255, 0.0), (5 / 255, 20 / 255)])
def test_noise_estimates_on_seeded_noisy_sources_within_15_percent(sigma_a, sigma_b):
    rng = np.random.default_rng(7)
    a = smooth_scene(seed=1) + sigma_a * rng.standard_normal((192, 256))
    b = smooth_scene(seed=2) + sigma_b * rng.standard_normal((192, 256))
    for est, truth in ((float(estimate_noise(a)), sigma_a), (float(estimate_noise(b)), sigma_b)):
        if truth == 0:
            assert est < 0.002
        else:
            assert abs(est - truth) < 0.15 * truth, (est, truth)
    # the solver's σ̂ is the larger of the two, whatever the anchor hides
    m = hifm.anchor(a.clip(0, 1), b.clip(0, 1), "max")
    assert noise_level(a, b, m, "sources") == pytest.approx(max(estimate_noise(a), estimate_noise(b)))
    assert abs(noise_level(a, b, m, "sources") - max(sigma_a, sigma_b)) < 0.15 * max(sigma_a, sigma_b)


def test_noise_seen_on_the_source_that_the_anchor_hides():
    """The noisy visible image's noise is under-estimated on an anchor that takes most of its
    detail from a textured, clean infrared image; the sources rule sees it."""
    rng = np.random.default_rng(3)
    a = np.clip(smooth_scene(seed=4) + 0.08 * np.sin(np.arange(256) * 1.3)[None, :], 0, 1)  # strong clean texture
    b = np.clip(smooth_scene(seed=5) + 12 / 255 * rng.standard_normal((192, 256)), 0, 1)
    _, info = hifm.solve(a, b, iters=2, return_info=True, noise_from="sources", denoise_sources=False)
    _, info_m = hifm.solve(a, b, iters=2, return_info=True, noise_from="anchor", denoise_sources=False)
    assert info.sigma_noise == pytest.approx(12 / 255, rel=0.15)
    assert info.threshold > info_m.threshold
    # with the default source denoising, the visible image's own estimate is the one reported
    _, info_d = hifm.solve(a, b, iters=2, return_info=True)
    assert info_d.sources[1].sigma == pytest.approx(12 / 255, rel=0.15) and info_d.sources[1].applied


def _colour(seed, noise):
    rng = np.random.default_rng(seed)
    base = smooth_scene(seed=seed)
    rgb = np.stack([base, 0.6 * base + 0.2, 0.9 - 0.5 * base], -1)
    return np.clip(rgb + noise * rng.standard_normal(rgb.shape), 0, 1), rgb


def test_chroma_denoised_when_noisy_and_untouched_when_clean():
    noisy, clean = _colour(1, 10 / 255)
    ch_noisy, ch_clean = rgb_to_ycbcr(noisy)[..., 1:], rgb_to_ycbcr(clean)[..., 1:]
    out, rep = denoise_chroma(ch_noisy, HIFMParams(dtype="float64"))
    assert rep.applied and all(l > 0 for l in rep.lam)
    err_before = np.sqrt(np.mean((ch_noisy - ch_clean) ** 2))
    err_after = np.sqrt(np.mean((out - ch_clean) ** 2))
    assert err_after < 0.5 * err_before  # most of the chroma noise removed
    same, rep0 = denoise_chroma(ch_clean, HIFMParams(dtype="float64"))
    assert not rep0.applied and same is ch_clean


def test_solve_recombines_the_denoised_chroma():
    noisy, _ = _colour(2, 12 / 255)
    ir = smooth_scene(seed=9)
    y_on, info = hifm.solve(ir, noisy, iters=5, return_info=True, dtype="float64")
    y_off = hifm.solve(ir, noisy, iters=5, dtype="float64", chroma_denoise=False)
    assert info.chroma is not None and info.chroma.applied
    cb_on, cb_off = rgb_to_ycbcr(y_on)[..., 1], rgb_to_ycbcr(y_off)[..., 1]
    hp = lambda z: z - 0.25 * (np.roll(z, 1, 0) + np.roll(z, -1, 0) + np.roll(z, 1, 1) + np.roll(z, -1, 1))  # noqa: E731
    # off: the chroma noise of the visible image as it is (up to the [0, 1] clip of the recombination)
    assert np.std(hp(cb_off)) == pytest.approx(np.std(hp(rgb_to_ycbcr(noisy)[..., 1])), rel=0.1)
    assert np.std(hp(cb_on)) < 0.5 * np.std(hp(cb_off))


def test_noisy_source_is_denoised_at_its_own_level_and_clean_inputs_are_untouched():
    rng = np.random.default_rng(11)
    a = smooth_scene(seed=3)
    b_clean = smooth_scene(seed=4)
    b = np.clip(b_clean + 12 / 255 * rng.standard_normal(b_clean.shape), 0, 1)
    y, info = hifm.solve(a, b, iters=30, return_info=True, dtype="float64")
    rep_a, rep_b = info.sources
    assert not rep_a.applied and rep_b.applied  # only the noisy source
    assert rep_b.sigma == pytest.approx(12 / 255, rel=0.15)
    y_off = hifm.solve(a, b, iters=30, dtype="float64", denoise_sources=False)
    y_clean = hifm.solve(a, b_clean, iters=30, dtype="float64")
    err_on = np.sqrt(np.mean((y - y_clean) ** 2))
    err_off = np.sqrt(np.mean((y_off - y_clean) ** 2))
    assert err_on < 0.75 * err_off  # closer to the clean pair's result (measured ratio 0.67)
    # clean inputs: nothing is denoised, the flag changes nothing
    y1, info1 = hifm.solve(a, b_clean, iters=10, return_info=True, dtype="float64")
    assert not any(r.applied for r in info1.sources)
    np.testing.assert_array_equal(y1, hifm.solve(a, b_clean, iters=10, dtype="float64", denoise_sources=False))

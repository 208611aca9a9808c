"""hifm.solve / hifm.fuse: layouts, colour, bit depth, anchors and bad input."""
from __future__ import annotations

import numpy as np
import pytest

import hifm
from hifm.color import rgb_to_ycbcr, ycbcr_to_rgb
from hifm.errors import InputError


@pytest.fixture
def pair(rng):
    from hifm.synthetic import synthetic_pair

    return synthetic_pair(40, 56, seed=3)


def test_gray_ir_colour_vis_keeps_chroma(pair, rng):
    ir, vis_lum = pair
    # a colour visible image whose colours stay well inside the gamut
    chroma = 0.5 + 0.08 * np.stack([np.sin(np.arange(56) / 7.0)[None].repeat(40, 0), np.cos(np.arange(40) / 5.0)[:, None].repeat(56, 1)], -1)
    vis = np.clip(ycbcr_to_rgb(np.concatenate([0.25 + 0.5 * vis_lum[..., None], chroma], -1)), 0, 1)
    fused = hifm.solve(ir, vis, iters=20, dtype="float64")
    assert fused.shape == vis.shape and fused.dtype == np.float64
    inside = np.all((fused > 1e-9) & (fused < 1 - 1e-9), axis=-1)
    assert inside.mean() > 0.95
    np.testing.assert_allclose(rgb_to_ycbcr(fused)[inside][:, 1:], rgb_to_ycbcr(vis)[inside][:, 1:], atol=1e-12)
    # ... and the luminance is the fused one, not the visible one
    assert np.abs(rgb_to_ycbcr(fused)[..., 0] - rgb_to_ycbcr(vis)[..., 0]).max() > 0.1


def test_colour_first_source_gives_colour_output(pair):
    ir, vis = pair
    pet = np.stack([ir, 0.5 * ir, 0.2 + 0.0 * ir], -1)
    out = hifm.solve(pet, vis, iters=5)
    assert out.shape == pet.shape


def test_sixteen_bit_in_sixteen_bit_out(pair):
    ir, vis = pair
    a16 = np.round(ir * 65535).astype(np.uint16)
    b16 = np.round(vis * 65535).astype(np.uint16)
    out = hifm.solve(a16, b16, iters=10)
    assert out.dtype == np.uint16 and out.shape == a16.shape
    # it uses the 16-bit range, not a coarse 8-bit one
    assert len(np.unique(out)) > 256
    out8 = hifm.solve(np.round(ir * 255).astype(np.uint8), np.round(vis * 255).astype(np.uint8), iters=10)
    assert out8.dtype == np.uint8
    diff = np.abs(out.astype(float) / 65535 - out8.astype(float) / 255)
    assert diff.mean() < 0.005 and diff.max() < 0.05  # same result up to the 8-bit quantization


def test_mixed_bit_depths_give_the_wider_one(pair):
    ir, vis = pair
    out = hifm.solve(np.round(ir * 255).astype(np.uint8), np.round(vis * 65535).astype(np.uint16), iters=3)
    assert out.dtype == np.uint16


@pytest.mark.parametrize("method", ["mean", "max", "two_scale"])
def test_anchors(method, pair):
    a, b = pair
    m = hifm.anchor(a, b, method)
    assert m.shape == a.shape and m.min() >= 0 and m.max() <= 1
    if method == "mean":
        np.testing.assert_allclose(m, (a + b) / 2)
    if method == "max":
        np.testing.assert_allclose(m, np.maximum(a, b))
    if method == "two_scale":
        np.testing.assert_allclose(hifm.anchor(a, a, "two_scale"), a, atol=1e-12)


def test_two_scale_keeps_the_hot_target_and_the_texture():
    from hifm.synthetic import synthetic_pair

    ir, vis = synthetic_pair(120, 160, seed=0)
    m = hifm.anchor(ir, vis, "two_scale")
    hot = ir > 0.85
    assert m[hot].mean() > 0.7  # IR targets survive
    tex = np.abs(np.diff(vis, axis=1)).mean()
    assert np.abs(np.diff(m, axis=1)).mean() > 0.6 * tex  # VIS texture survives


def test_user_anchor_array_and_callable(pair):
    a, b = pair
    m = np.full_like(a, 0.5)
    np.testing.assert_array_equal(hifm.anchor(a, b, m), m)
    np.testing.assert_allclose(hifm.anchor(a, b, lambda x, y_: 0.25 * x + 0.75 * y_), 0.25 * a + 0.75 * b)
    with pytest.raises(ValueError, match="shape"):
        hifm.anchor(a, b, m[:-1])
    with pytest.raises(ValueError, match="unknown anchor"):
        hifm.anchor(a, b, "median")


def test_fuse_methods(pair):
    a, b = pair
    # float32 (fuse's default dtype) against float64: measured 1.1e-6 (the salient anchor's steep
    # finest-level choice multiplies float32 rounding near ties; two_scale: 8.6e-8)
    np.testing.assert_allclose(hifm.fuse(a, b, method="anchor"), hifm.anchor(a, b), rtol=0, atol=3e-6)
    np.testing.assert_allclose(hifm.fuse(a, b, method="anchor", anchor="two_scale"), hifm.anchor(a, b, "two_scale"),
                               rtol=0, atol=2e-7)
    np.testing.assert_array_equal(hifm.fuse(a, b, method="hifm", iters=7), hifm.solve(a, b, iters=7))
    with pytest.raises(InputError, match="unknown method"):
        hifm.fuse(a, b, method="gtf")
    with pytest.raises(InputError, match="iters .method hifm only. do not apply to method .anchor."):
        hifm.fuse(a, b, method="anchor", iters=3)


BAD = [
    (lambda a: a[:-1], "size mismatch"),
    (lambda a: np.where(a > 0.5, np.nan, a), "NaN or infinite"),
    (lambda a: np.where(a > 0.5, np.inf, a), "NaN or infinite"),
    (lambda a: a[:0], "empty"),
    (lambda a: a[0], "H×W"),
    (lambda a: a.astype(np.int32), "unsupported dtype"),
    (lambda a: a.astype(np.complex128), "unsupported dtype"),
    (lambda a: a * 255.0, "divide by 255"),
    (lambda a: np.stack([a] * 5, -1), "H×W"),
    (lambda a: "not an array", "expected an image array"),
]


@pytest.mark.parametrize("make_bad,message", BAD)
def test_bad_input_raises_clear_error(make_bad, message, pair):
    a, b = pair
    with pytest.raises(InputError, match=message):
        hifm.solve(make_bad(a), b, iters=2)


def test_tiny_and_bad_iterations(pair):
    a, b = pair
    with pytest.raises(InputError, match="at least 2×2"):
        hifm.solve(a[:1, :5], b[:1, :5])
    with pytest.raises(InputError, match="iters"):
        hifm.solve(a, b, iters=-1)
    with pytest.raises(TypeError, match="unknown HIFM parameter"):
        hifm.solve(a, b, iters=1, lamb=0.1)


def test_float32_matches_float64_on_real_images():
    """8-bit data makes |D_A| = |D_B| ties frequent; both precisions must decide them alike (§6: 1e-4)."""
    from hifm.io import read_image, to_float

    from .conftest import sample_dir

    root = sample_dir("tno")  # real TNO pairs shipped with the repository
    for name in ("05", "13", "25"):
        a = to_float(read_image(root / "ir" / f"{name}.png", gray_if_equal=True), dtype=np.float64)[0]
        b = to_float(read_image(root / "vi" / f"{name}.png", gray_if_equal=True), dtype=np.float64)[0]
        m64 = hifm.anchor(a, b)
        m32 = hifm.anchor(a.astype(np.float32), b.astype(np.float32))
        assert np.abs(m64 - m32).max() < 1e-4, name
    f64 = hifm.solve(a, b, iters=100, dtype="float64")
    f32 = hifm.solve(a, b, iters=100, dtype="float32")
    assert f32.dtype == np.float32 and np.abs(f64 - f32).max() < 1e-4


@pytest.mark.parametrize("shape,radius", [((2, 2), 15), ((1, 5), 1), ((3, 7), 15), ((17, 4), 2), ((40, 33), 15), ((2, 9, 11), 3)])
def test_box_blur_equals_a_direct_window_mean(shape, radius):
    """Both implementations (NumPy's ndimage and the float64 cumulative sums used by CuPy and
    torch) against an explicit mean over windows of the symmetrically padded image."""
    from numpy.lib.stride_tricks import sliding_window_view

    from hifm.anchors import _box_blur_cumsum, box_blur

    x = np.random.default_rng(1).random(shape)
    pad = [(0, 0)] * (x.ndim - 2) + [(radius, radius)] * 2
    windows = sliding_window_view(np.pad(x, pad, mode="symmetric"), (2 * radius + 1,) * 2, axis=(-2, -1))
    ref = windows.mean(axis=(-2, -1))
    assert np.abs(box_blur(x, radius) - ref).max() < 1e-12
    assert np.abs(_box_blur_cumsum(x, radius) - ref).max() < 1e-12
    x32 = x.astype(np.float32)
    for out in (box_blur(x32, radius), _box_blur_cumsum(x32, radius)):
        assert out.dtype == np.float32 and np.abs(out - ref).max() < 1e-7  # measured 4.3e-8

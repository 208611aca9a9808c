"""Tests of hifm.degrade: each model's formula, statistics and seeding."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hifm import degrade
from hifm.degrade import (
    FOG_PRESETS,
    PRESETS,
    RANDOM_RANGES,
    apply,
    fog,
    gaussian_blur,
    gaussian_noise,
    low_light,
    poisson_noise,
    random_degradation,
    smooth_field,
    stripe_noise,
    synthetic_depth,
    transmission,
)
from hifm.errors import InputError


def ramp(shape=(48, 64), dtype=np.float64) -> np.ndarray:
    """A smooth image in [0.1, 0.9]."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    plane = 0.1 + 0.8 * (xx + yy) / (shape[0] + shape[1] - 2)
    if len(shape) == 3:
        plane = np.stack([plane * (0.6 + 0.2 * c) for c in range(shape[2])], axis=-1)
    return plane.astype(dtype)


SEEDED = [
    lambda x, s: gaussian_noise(x, 0.05, s),
    lambda x, s: poisson_noise(x, 20.0, s),
    lambda x, s: stripe_noise(x, 0.03, s),
    lambda x, s: fog(x, uneven=0.5, seed=s),
    lambda x, s: apply(x, "noise_sigma10", s),
]


@pytest.mark.parametrize("func", SEEDED)
def test_same_seed_same_output_different_seed_different_output(func):
    x = ramp()
    a, b, c = func(x, 7), func(x, 7), func(x, 8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("func", SEEDED)
def test_generator_seed_is_advanced(func):
    x = ramp()
    rng = np.random.default_rng(3)
    first, second = func(x, rng), func(x, rng)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, func(x, np.random.default_rng(3)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(40, 50), (40, 50, 3)])
def test_dtype_shape_and_range_are_kept(dtype, shape):
    x = ramp(shape, dtype)
    outputs = [
        gaussian_noise(x, 0.3, 0),
        poisson_noise(x, 2.0, 0),
        low_light(x),
        gaussian_blur(x, 1.0),
        stripe_noise(x, 0.3, 0),
        fog(x, preset="heavy"),
    ]
    for out in outputs:
        assert out.dtype == dtype and out.shape == shape
        assert out.min() >= 0.0 and out.max() <= 1.0
    assert outputs[0].min() == 0.0 and outputs[0].max() == 1.0  # clipped, not wrapped


# ----------------------------------------------------------------- noise


def test_gaussian_noise_std_matches_sigma():
    x = np.full((256, 256), 0.5)
    noise = gaussian_noise(x, 0.04, 0) - x
    assert abs(noise.std() - 0.04) < 0.04 * 0.02
    assert abs(noise.mean()) < 0.001


def test_gaussian_noise_sigma_zero_is_identity():
    x = ramp()
    np.testing.assert_array_equal(gaussian_noise(x, 0.0, 1), x)


def test_poisson_noise_mean_and_variance():
    x, peak = np.full((256, 256), 0.3), 50.0
    y = poisson_noise(x, peak, 0)
    counts = y * peak
    np.testing.assert_allclose(counts, np.rint(counts), atol=1e-9)  # multiples of 1/peak
    assert abs(y.mean() - 0.3) < 0.003
    assert abs(y.var() - 0.3 / peak) < 0.05 * 0.3 / peak


def test_stripe_noise_is_constant_down_each_column():
    x = np.full((64, 4096), 0.5)
    offsets = stripe_noise(x, 0.02, 0) - x
    np.testing.assert_allclose(offsets, np.broadcast_to(offsets[0], offsets.shape), atol=1e-15)
    assert abs(offsets[0].std() - 0.02) < 0.02 * 0.05


def test_stripe_noise_rows_and_channels():
    x = np.full((512, 8, 3), 0.5)
    offsets = stripe_noise(x, 0.02, 1, axis=0) - x
    np.testing.assert_allclose(offsets, np.broadcast_to(offsets[:, :1, :1], offsets.shape), atol=1e-15)
    assert offsets[:, 0, 0].std() > 0.01


def test_stripe_noise_gain():
    x = np.full((16, 2048), 0.5)
    y = stripe_noise(x, 0.0, 0, gain_sigma=0.1)
    assert abs((y[0] / 0.5 - 1).std() - 0.1) < 0.01
    np.testing.assert_array_equal(stripe_noise(np.zeros((16, 32)), 0.0, 0, gain_sigma=0.1), 0.0)


# ----------------------------------------------------------------- photometric


def test_low_light_formula():
    x = ramp()
    np.testing.assert_allclose(low_light(x, gamma=2.2, scale=0.4), 0.4 * x**2.2, rtol=1e-12)
    np.testing.assert_allclose(low_light(x, gamma=1.0, scale=1.0), x, rtol=1e-15)


def test_gaussian_blur_of_a_delta_is_a_normalized_gaussian():
    x = np.zeros((61, 61))
    x[30, 30] = 1.0
    kernel = gaussian_blur(x, 2.0)
    assert abs(kernel.sum() - 1.0) < 1e-9
    yy, xx = np.mgrid[0:61, 0:61]
    var_x = (kernel * (xx - 30) ** 2).sum()
    var_y = (kernel * (yy - 30) ** 2).sum()
    assert abs(np.sqrt(var_x) - 2.0) < 0.02 and abs(np.sqrt(var_y) - 2.0) < 0.02


def test_gaussian_blur_keeps_channels_apart_and_sigma_zero_is_identity():
    x = np.zeros((21, 21, 3))
    x[10, 10, 1] = 1.0
    y = gaussian_blur(x, 1.5)
    assert np.all(y[..., 0] == 0) and np.all(y[..., 2] == 0) and y[..., 1].sum() > 0.999
    np.testing.assert_array_equal(gaussian_blur(ramp(), 0.0), ramp())


# ----------------------------------------------------------------- fog


def test_synthetic_depth_is_a_ground_plane_ramp():
    d = synthetic_depth((50, 7), near=0.1, far=1.0)
    assert d.shape == (50, 7)
    np.testing.assert_array_equal(d, np.broadcast_to(d[:, :1], d.shape))  # same in every column
    assert d[0, 0] == 1.0 and abs(d[-1, 0] - 0.1) < 1e-12
    assert np.all(np.diff(d[:, 0]) <= 0) and d[25, 0] < 0.5
    v = np.linspace(0, 1, 50)[25]
    assert abs(d[25, 0] - 0.1 / v) < 1e-12


def test_synthetic_depth_horizon_puts_sky_at_far():
    d = synthetic_depth((100, 3), near=0.2, far=5.0, horizon=0.4)
    assert np.all(d[:40, 0] == 5.0) and abs(d[-1, 0] - 0.2) < 1e-12


def test_fog_with_zero_beta_is_identity():
    for x in (ramp(), ramp((20, 30, 3), np.float32)):
        np.testing.assert_array_equal(fog(x, beta=0.0, airlight=0.9), x)


def test_fog_transmission_follows_exp_minus_beta_d():
    depth = np.linspace(0.0, 3.0, 40 * 50).reshape(40, 50)
    black = np.zeros((40, 50))
    foggy = fog(black, depth=depth, beta=1.3, airlight=0.8)
    np.testing.assert_allclose(foggy, 0.8 * (1 - np.exp(-1.3 * depth)), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(transmission(depth, 1.3), np.exp(-1.3 * depth), rtol=1e-15)


def test_fog_scattering_model_on_an_image():
    x = ramp((30, 40, 3))
    depth = synthetic_depth(x.shape)
    t = np.exp(-0.7 * depth)[..., None]
    light = np.array([0.9, 0.8, 0.7])
    expected = x * t + light * (1 - t)
    np.testing.assert_allclose(fog(x, beta=0.7, airlight=light), expected, rtol=1e-12)


def test_fog_presets_and_overrides():
    x = ramp()
    misty, heavy = fog(x, preset="misty"), fog(x, preset="heavy")
    assert heavy[:10].std() < misty[:10].std() < x[:10].std()  # less contrast far away
    assert not np.array_equal(fog(x, preset="misty", beta=0.1), misty)
    np.testing.assert_array_equal(
        fog(x, preset="misty", uneven=0.0),
        fog(x, beta=FOG_PRESETS["misty"]["beta"], airlight=FOG_PRESETS["misty"]["airlight"]),
    )


def test_uneven_fog_varies_across_a_row_of_equal_depth():
    depth = np.ones((64, 64))
    even = transmission(depth, 1.0)
    patchy = transmission(depth, 1.0, uneven=0.5, seed=4)
    assert np.all(even == np.exp(-1.0))
    assert patchy.std() > 0.02 and abs(np.log(patchy).mean() + 1.0) < 1e-9  # field has zero mean
    assert not np.array_equal(patchy, transmission(depth, 1.0, uneven=0.5, seed=5))


def test_smooth_field_is_smooth_and_bounded():
    field = smooth_field((80, 120), 0)
    assert abs(np.abs(field).max() - 1.0) < 1e-12 and abs(field.mean()) < 1e-12
    assert np.abs(np.diff(field, axis=1)).max() < 0.1  # no pixel-scale jumps


@pytest.mark.parametrize(
    "kwargs",
    [{"depth": np.ones((3, 3))}, {"airlight": 1.5}, {"airlight": [0.5, 0.5]}, {"beta": -1.0}, {"preset": "smog"}],
)
def test_fog_rejects_bad_arguments(kwargs):
    with pytest.raises(InputError):
        fog(ramp(), **kwargs)


# ----------------------------------------------------------------- specs


def test_apply_matches_the_direct_call():
    x = ramp()
    np.testing.assert_array_equal(
        apply(x, {"kind": "gaussian_noise", "sigma": 0.04}, 11), gaussian_noise(x, 0.04, 11)
    )
    np.testing.assert_array_equal(apply(x, {"kind": "low_light", "gamma": 1.5}, 0), low_light(x, gamma=1.5))
    np.testing.assert_array_equal(apply(x, "misty", 0), fog(x, preset="misty", seed=np.random.default_rng(0)))


def test_apply_a_list_in_order():
    x = ramp()
    steps = [{"kind": "gaussian_blur", "sigma": 1.0}, {"kind": "low_light", "gamma": 2.0, "scale": 0.5}]
    np.testing.assert_allclose(apply(x, steps, 0), low_light(gaussian_blur(x, 1.0), 2.0, 0.5), rtol=1e-15)
    np.testing.assert_array_equal(apply(x, [{"kind": "identity"}], 0), x)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_changes_the_image(name):
    x = ramp()
    out = apply(x, name, 0)
    assert out.shape == x.shape and not np.array_equal(out, x)


@pytest.mark.parametrize(
    "spec",
    [{"kind": "sharpen"}, {"kind": "gaussian_noise", "sigma": 0.1, "mean": 1}, {"sigma": 0.1}, "nope",
     {"kind": "identity", "x": 1}],
)
def test_apply_rejects_bad_specs(spec):
    with pytest.raises(InputError):
        apply(ramp(), spec, 0)


def test_random_degradation_is_seeded_and_covers_every_kind():
    specs = [random_degradation(np.random.default_rng(i)) for i in range(300)]
    assert specs == [random_degradation(np.random.default_rng(i)) for i in range(300)]
    assert {s["kind"] for s in specs} == set(RANDOM_RANGES)
    for spec in specs:
        for name, (low, high) in RANDOM_RANGES[spec["kind"]].items():
            assert low <= spec[name] <= high and type(spec[name]) is float
    json.dumps(specs)


def test_random_degradation_specs_apply():
    x = ramp((24, 32, 3), np.float32)
    rng = np.random.default_rng(0)
    for kind in RANDOM_RANGES:
        spec = random_degradation(rng, kinds=[kind])
        assert spec["kind"] == kind
        out = apply(x, spec, rng)
        assert out.dtype == np.float32 and out.shape == x.shape and 0 <= out.min() <= out.max() <= 1
        assert not np.array_equal(out, x)
    assert random_degradation(0, p_identity=1.0) == {"kind": "identity"}


# ----------------------------------------------------------------- input checks


@pytest.mark.parametrize(
    "img",
    [
        np.zeros((8, 8), np.uint8),
        np.full((8, 8), 1.5),
        np.full((8, 8), np.nan),
        np.zeros(8),
        np.zeros((8, 8), np.float16),
    ],
)
def test_bad_images_are_refused(img):
    with pytest.raises(InputError):
        gaussian_noise(img, 0.1, 0)


@pytest.mark.parametrize("seed", [None, 1.5, "abc"])
def test_bad_seeds_are_refused(seed):
    with pytest.raises(InputError, match="seed"):
        gaussian_noise(ramp(), 0.1, seed)


def test_bad_parameters_are_refused():
    x = ramp()
    for call in (
        lambda: gaussian_noise(x, -0.1, 0),
        lambda: poisson_noise(x, 0.0, 0),
        lambda: low_light(x, scale=2.0),
        lambda: stripe_noise(x, 0.1, 0, axis=2),
        lambda: random_degradation(0, kinds=["teleport"]),
    ):
        with pytest.raises(InputError):
            call()


def test_module_exports_exist():
    for name in degrade.__all__:
        assert hasattr(degrade, name), name

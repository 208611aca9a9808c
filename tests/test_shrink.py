"""Soft threshold, value map (S7–S8, §2.2) and the Lorentzian prior."""
from __future__ import annotations

import numpy as np
import pytest

from hifm import ops, shrink


@pytest.mark.parametrize("t", [0.0, 0.02, 0.1, 0.5])
def test_value_map_from_threshold_equals_soft_threshold(t):
    """For t on the grid of control points the value map IS the soft threshold, everywhere."""
    q = shrink.value_map_from_threshold(t)
    a = np.linspace(-3.0, 3.0, 6001)  # inside [-1, 1] and beyond
    np.testing.assert_allclose(shrink.value_map_shrink(a, q), shrink.soft_threshold(a, t), atol=1e-12)


@pytest.mark.parametrize("t", [0.013, 0.0371])
def test_value_map_off_grid_threshold(t):
    """Off the grid it differs only on the two segments holding ±t, by at most V/4."""
    q = shrink.value_map_from_threshold(t)
    a = np.linspace(-3.0, 3.0, 60001)
    diff = np.abs(shrink.value_map_shrink(a, q) - shrink.soft_threshold(a, t))
    v = shrink.VALUE_MAP_STEP
    near_kink = np.abs(np.abs(a) - t) < v
    assert diff[~near_kink].max() < 1e-12
    assert diff.max() <= v / 4 + 1e-12


def test_soft_threshold_definition():
    a = np.array([-2.0, -0.3, -0.1, 0.0, 0.05, 0.2, 1.5])
    np.testing.assert_allclose(shrink.soft_threshold(a, 0.1), np.sign(a) * np.maximum(np.abs(a) - 0.1, 0))


def test_value_map_is_continuous_with_slope_one_outside(rng):
    q = np.cumsum(rng.uniform(0.0, 0.05, shrink.VALUE_MAP_POINTS)) - 1.3  # arbitrary increasing values
    p = shrink.control_points()
    eps = 1e-9
    for x in np.concatenate([p, [-1.0, 1.0]]):
        lo, hi = shrink.value_map_shrink(np.array([x - eps, x + eps]), q)
        assert abs(hi - lo) < 1e-6
    # passes through the control points
    np.testing.assert_allclose(shrink.value_map_shrink(p, q), q, atol=1e-12)
    # slope 1 beyond [p_1, p_It]
    a = np.array([-5.0, -2.0, 1.5, 4.0])
    out = shrink.value_map_shrink(a, q)
    np.testing.assert_allclose(out[:2], a[:2] - p[0] + q[0], atol=1e-12)
    np.testing.assert_allclose(out[2:], a[2:] - p[-1] + q[-1], atol=1e-12)


def test_value_map_per_filter_rows(rng):
    t = np.array([0.02, 0.2])
    q = shrink.value_map_from_threshold(t)
    a = rng.uniform(-1.5, 1.5, (2, 6, 7))
    want = shrink.soft_threshold(a, t[:, None, None])
    np.testing.assert_allclose(shrink.value_map_shrink(a, q), want, atol=1e-12)


def test_lorentzian_gradient_matches_finite_differences():
    a = np.linspace(-0.5, 0.5, 101)
    theta = 37.0
    eps = 1e-6
    fd = (ops.lorentzian(a + eps, theta) - ops.lorentzian(a - eps, theta)) / (2 * eps)
    np.testing.assert_allclose(ops.lorentzian_grad(a, theta), fd, atol=1e-7)
    # curvature bound used by the H-step size: φ'' ≤ 2θ
    curv = (ops.lorentzian_grad(a + eps, theta) - ops.lorentzian_grad(a - eps, theta)) / (2 * eps)
    assert curv.max() <= 2 * theta + 1e-4

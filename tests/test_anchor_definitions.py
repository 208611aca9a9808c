"""Every anchor of :data:`hifm.anchors.ANCHORS` against a direct transcription of its definition.

The transcriptions below restate the definitions of DESIGN §4 / the anchors' docstrings in
plain NumPy (explicit window sums over ``np.pad(..., mode="symmetric")``, no code of
``hifm``), on small arrays.  Each registered anchor must have one: a new anchor without a
transcription fails :func:`test_every_registered_anchor_has_a_transcription` (add it to
:data:`TRANSCRIPTIONS`, in terms of its definition, not of its implementation).

Each anchor is compared on NumPy float64 and float32 and on torch float64 (DeRUN computes the
anchor in its forward pass with torch; its box filter is another implementation).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pytest

from hifm import anchors

#: |D_A| − |D_B| ≥ −tie counts as "A wins" in two_scale (the documented tie rule).
TIE = 1e-5


def window_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2r+1)×(2r+1) window centred on each pixel of the half-sample symmetric
    extension (the image mirrored with its edge pixel repeated, as often as needed)."""
    if radius == 0:
        return x.copy()
    lead = x.shape[:-2]
    h, w = x.shape[-2:]
    pad = [(0, 0)] * len(lead) + [(radius, radius), (radius, radius)]
    xp = np.pad(x.astype(np.float64), pad, mode="symmetric")
    out = np.zeros(lead + (h, w))
    size = 2 * radius + 1
    for du in range(size):
        for dv in range(size):
            out += xp[..., du : du + h, dv : dv + w]
    return out / size**2


def mean_definition(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """M = (A + B)/2."""
    return (a + b) / 2


def max_definition(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """M = max(A, B) pixel by pixel."""
    return np.where(a >= b, a, b)


def two_scale_definition(a: np.ndarray, b: np.ndarray, radius: int = 15, choice_radius: int = 1) -> np.ndarray:
    """Base Ā = box₃₁(A), B̄ = box₃₁(B), base = max(Ā, B̄); details D = source − base layer;
    c = 1 where |D_A| ≥ |D_B| (ties to A), w = box₃(c); M = clip(base + w D_A + (1 − w) D_B, 0, 1)."""
    base_a, base_b = window_mean(a, radius), window_mean(b, radius)
    da, db = a - base_a, b - base_b
    c = (np.abs(da) - np.abs(db) >= -TIE).astype(np.float64)
    w = window_mean(c, choice_radius)
    m = np.where(base_a >= base_b, base_a, base_b) + w * da + (1 - w) * db
    return np.minimum(np.maximum(m, 0.0), 1.0)


def line_filter(x: np.ndarray, weights: np.ndarray, axis: int) -> np.ndarray:
    """Σ_j w_j x[i + j − r] along ``axis`` on the half-sample symmetric extension (any r)."""
    r = (len(weights) - 1) // 2
    x = np.moveaxis(x.astype(np.float64), axis, -1)
    n = x.shape[-1]
    pad = [(0, 0)] * (x.ndim - 1) + [(r, r)]
    xp = np.pad(x, pad, mode="symmetric")
    out = np.zeros_like(x)
    for j, wj in enumerate(weights):
        out += wj * xp[..., j : j + n]
    return np.moveaxis(out, -1, axis)


def gaussian_definition(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian: weights ∝ exp(−j²/2σ²), |j| ≤ ⌊3σ + ½⌋, summing to 1, both axes."""
    r = int(3 * sigma + 0.5)
    j = np.arange(-r, r + 1)
    g = np.exp(-(j**2) / (2.0 * sigma**2))
    g /= g.sum()
    return line_filter(line_filter(x, g, -2), g, -1)


def box_definition(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2r+1)-wide window along each axis (separable form of :func:`window_mean`)."""
    w = np.full(2 * radius + 1, 1.0 / (2 * radius + 1))
    return line_filter(line_filter(x, w, -2), w, -1)


def guided_definition(guide: np.ndarray, p: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.: a = cov(I, p)/(var(I) + ε), b = mean(p) − a mean(I), q = mean(a) I + mean(b)."""
    mi, mp = box_definition(guide, radius), box_definition(p, radius)
    cov = box_definition(guide * p, radius) - mi * mp
    var = box_definition(guide * guide, radius) - mi * mi
    a = cov / (var + eps)
    b = mp - a * mi
    return box_definition(a, radius) * guide + box_definition(b, radius)


def salient_definition(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The multi-scale salient anchor, as its docstring and docs/model.md state it: Gaussian stacks
    (σ = 2, 4, 8, 16, each level blurring the previous), details D_i = L_{i−1} − L_i; level 1 by a
    ramp choice c = clip(½ + (|D_A| − |D_B|)/(2·5e-4), 0, 1); level 2 by |D|, levels 3–4 by
    max(D_A, 0) against max(D_B, 0) + 0.75 max(−D_B, 0): R = max(S_A − S_B, 0), P = R/max R,
    C = atan(30 P)/atan(30), Gaussian σ = 1, guided filter (guide A, r = 4, ε = 0.01), clip;
    base weight: level 4's unrefined C, three box passes of radius 64; clip of the sum."""
    la, lb = a.astype(np.float64), b.astype(np.float64)
    total = 0.0
    c_base = None
    for level, sigma in enumerate((2.0, 4.0, 8.0, 16.0), start=1):
        na, nb = gaussian_definition(la, sigma), gaussian_definition(lb, sigma)
        da, db = la - na, lb - nb
        la, lb = na, nb
        if level == 1:
            c = np.minimum(np.maximum(0.5 + (np.abs(da) - np.abs(db)) / 1e-3, 0.0), 1.0)
        else:
            if level >= 3:
                s_a = np.where(da > 0, da, 0.0)
                s_b = np.where(db > 0, db, 0.0) + 0.75 * np.where(db < 0, -db, 0.0)
            else:
                s_a, s_b = np.abs(da), np.abs(db)
            r = np.where(s_a > s_b, s_a - s_b, 0.0)
            p = r / (r.max(axis=(-2, -1), keepdims=True) + 1e-12)
            c = np.arctan(30.0 * p) / np.arctan(30.0)
            if level == 4:
                c_base = c
            c = np.minimum(np.maximum(guided_definition(a, gaussian_definition(c, 1.0), 4, 1e-2), 0.0), 1.0)
        total = total + c * da + (1 - c) * db
    cb = box_definition(box_definition(box_definition(c_base, 64), 64), 64)
    return np.minimum(np.maximum(cb * la + (1 - cb) * lb + total, 0.0), 1.0)


#: One transcription per registered anchor (name → f(A, B) on float64 NumPy arrays).
TRANSCRIPTIONS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "mean": mean_definition,
    "max": max_definition,
    "two_scale": two_scale_definition,
    "salient": salient_definition,
}


def sources(shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two float64 sources in [0, 1] with structure at several scales and saturated patches
    (so that the clip of an anchor is exercised)."""
    rng = np.random.default_rng(seed)
    h, w = shape[-2:]
    yy, xx = np.mgrid[0:h, 0:w]
    smooth = 0.5 + 0.45 * np.sin(xx / 3.0 + seed) * np.cos(yy / 4.0)
    a = np.clip(smooth + 0.25 * rng.standard_normal(shape), 0, 1)
    b = np.clip(1.0 - 0.8 * smooth + 0.15 * rng.standard_normal(shape), 0, 1)
    a[..., : h // 3, : w // 3] = 1.0
    b[..., -2:, :] = 0.0
    return a, b


SHAPES = [(7, 9), (23, 31), (40, 37), (2, 12, 10)]

#: Per-anchor tolerances (float64/torch, float32), just above the measured error.  salient's finest
#: choice is a ramp of slope 1/(2·5e-4) = 1000 around a tie, which multiplies the rounding of
#: |D_A| − |D_B| by up to 1000 (measured: 1.5e-13 in float64, 4.7e-6 in float32).
TOLERANCE = {"salient": (5e-13, 1e-5)}
DEFAULT_TOLERANCE = (1e-14, 2e-7)


def test_every_registered_anchor_has_a_transcription():
    missing = sorted(set(anchors.ANCHORS) - set(TRANSCRIPTIONS))
    assert not missing, (
        f"anchor(s) {missing} are registered in hifm.anchors.ANCHORS but have no direct transcription "
        "of their definition in tests/test_anchor_definitions.py (TRANSCRIPTIONS)"
    )


@pytest.mark.parametrize("name", sorted(anchors.ANCHORS))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_anchor_equals_its_definition_float64(name, shape):
    assert name in TRANSCRIPTIONS, f"no transcription of anchor {name!r}"
    a, b = sources(shape, seed=len(shape) + shape[-1])
    got = anchors.anchor(a, b, name)
    want = TRANSCRIPTIONS[name](a, b)
    assert got.shape == want.shape and got.dtype == np.float64
    # measured: ≤ 2.5e-15 (summation order of the box filters); salient: see TOLERANCE
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE.get(name, DEFAULT_TOLERANCE)[0])


@pytest.mark.parametrize("name", sorted(anchors.ANCHORS))
def test_anchor_equals_its_definition_float32(name):
    assert name in TRANSCRIPTIONS, f"no transcription of anchor {name!r}"
    a, b = sources((23, 31), seed=5)
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    got = anchors.anchor(a32, b32, name)
    assert got.dtype == np.float32
    want = TRANSCRIPTIONS[name](a32.astype(np.float64), b32.astype(np.float64))
    # measured: ≤ 1e-7 (float32 rounding of the result); salient: see TOLERANCE
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE.get(name, DEFAULT_TOLERANCE)[1])


@pytest.mark.parametrize("name", sorted(anchors.ANCHORS))
def test_anchor_equals_its_definition_on_torch(name):
    torch = pytest.importorskip("torch")
    assert name in TRANSCRIPTIONS, f"no transcription of anchor {name!r}"
    a, b = sources((2, 19, 26), seed=7)
    got = anchors.anchor(torch.from_numpy(a), torch.from_numpy(b), name)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    # measured: ≤ 1.7e-15; salient: see TOLERANCE
    np.testing.assert_allclose(got.numpy(), TRANSCRIPTIONS[name](a, b), rtol=0, atol=TOLERANCE.get(name, DEFAULT_TOLERANCE)[0])


def test_two_scale_ties_go_to_the_first_source():
    """B = 1 − A: |D_A| = |D_B| everywhere (up to rounding), so w = 1 and M = clip(base + D_A)."""
    a, _ = sources((20, 24), seed=3)
    b = 1.0 - a
    base = np.maximum(window_mean(a, 15), window_mean(b, 15))
    want = np.clip(base + a - window_mean(a, 15), 0, 1)
    np.testing.assert_allclose(anchors.two_scale(a, b), want, rtol=0, atol=1e-14)
    # and not the other source's detail: the two differ by far more than the tolerance
    other = np.clip(base + b - window_mean(b, 15), 0, 1)
    assert np.abs(want - other).max() > 0.1


@pytest.mark.parametrize("radius,choice_radius", [(2, 0), (4, 2), (15, 1)])
def test_two_scale_radii(radius, choice_radius):
    a, b = sources((17, 22), seed=11)
    np.testing.assert_allclose(
        anchors.two_scale(a, b, radius=radius, choice_radius=choice_radius),
        two_scale_definition(a, b, radius, choice_radius), rtol=0, atol=1e-14,
    )


def test_transcriptions_are_not_trivially_equal():
    """The anchors differ from each other on these sources: a swapped registry entry would fail."""
    a, b = sources((23, 31), seed=1)
    values = {name: f(a, b) for name, f in TRANSCRIPTIONS.items()}
    names = sorted(values)
    for i, x in enumerate(names):
        for y in names[i + 1 :]:
            assert np.abs(values[x] - values[y]).max() > 0.05, (x, y)

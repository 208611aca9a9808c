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


#: One transcription per registered anchor (name → f(A, B) on float64 NumPy arrays).
TRANSCRIPTIONS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "mean": mean_definition,
    "max": max_definition,
    "two_scale": two_scale_definition,
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
    # measured: ≤ 2.5e-15 (summation order of the box filters)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-14)


@pytest.mark.parametrize("name", sorted(anchors.ANCHORS))
def test_anchor_equals_its_definition_float32(name):
    assert name in TRANSCRIPTIONS, f"no transcription of anchor {name!r}"
    a, b = sources((23, 31), seed=5)
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    got = anchors.anchor(a32, b32, name)
    assert got.dtype == np.float32
    want = TRANSCRIPTIONS[name](a32.astype(np.float64), b32.astype(np.float64))
    # measured: ≤ 1e-7 (float32 rounding of the result)
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-7)


@pytest.mark.parametrize("name", sorted(anchors.ANCHORS))
def test_anchor_equals_its_definition_on_torch(name):
    torch = pytest.importorskip("torch")
    assert name in TRANSCRIPTIONS, f"no transcription of anchor {name!r}"
    a, b = sources((2, 19, 26), seed=7)
    got = anchors.anchor(torch.from_numpy(a), torch.from_numpy(b), name)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    # measured: ≤ 1.7e-15
    np.testing.assert_allclose(got.numpy(), TRANSCRIPTIONS[name](a, b), rtol=0, atol=1e-14)


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

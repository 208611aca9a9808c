"""A procedural infrared/visible scene for the demo and tests (no downloads).

The visible image has texture (a tiled road, a fence, foliage-like noise
texture, a building with windows) and dark regions; the infrared image is
smooth but has warm targets (people, a car engine) that are invisible or
hidden in shadow in the visible image.  Everything is generated from a seed.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["synthetic_pair", "synthetic_medical_pair", "MEDICAL_PARTNERS"]


def _ellipse(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    return (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2) <= 1.0


def synthetic_pair(height: int = 240, width: int = 320, seed: int = 0, noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``(ir, vis)`` float64 images in [0, 1] of shape ``(height, width)``.

    ``noise`` adds Gaussian noise of that σ to the visible image (a degraded
    camera); the infrared image stays clean.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    v, u = yy / height, xx / width
    # visible: sky gradient, ground, building with windows, fence, textured foliage
    vis = 0.75 - 0.35 * v
    horizon = v > 0.55
    vis = np.where(horizon, 0.35 + 0.1 * np.sin(2 * np.pi * 12 * u) * (v - 0.55), vis)
    tile = ((np.floor(xx / 12) + np.floor(yy / 12)) % 2) * 0.08
    vis = np.where(v > 0.8, 0.3 + tile, vis)
    building = (u > 0.55) & (u < 0.9) & (v > 0.2) & (v < 0.55)
    vis = np.where(building, 0.55, vis)
    windows = building & ((xx % 18) > 8) & ((yy % 20) > 10)
    vis = np.where(windows, 0.85, vis)
    fence = (v > 0.5) & (v < 0.7) & (((xx % 10) < 2) | (np.abs(yy - 0.53 * height) < 1.5))
    vis = np.where(fence & (u < 0.5), 0.15, vis)
    foliage = ndimage.gaussian_filter(rng.standard_normal((height, width)), 1.2)
    tree = _ellipse(yy, xx, 0.4 * height, 0.2 * width, 0.18 * height, 0.12 * width)
    vis = np.where(tree, 0.3 + 0.35 * foliage, vis)
    shadow = (u > 0.3) & (u < 0.5) & (v > 0.55) & (v < 0.95)
    vis = np.where(shadow, 0.4 * vis, vis)
    # infrared: cool background following the geometry loosely, warm targets
    ir = 0.25 + 0.15 * (1 - v) * 0.5 + 0.05 * ndimage.gaussian_filter(vis, 6)
    ir = np.where(building, 0.35, ir)
    ir = np.where(windows, 0.5, ir)
    for cy, cx in ((0.72, 0.38), (0.70, 0.45), (0.62, 0.1)):
        body = _ellipse(yy, xx, cy * height, cx * width, 0.1 * height, 0.025 * width)
        head = _ellipse(yy, xx, (cy - 0.13) * height, cx * width, 0.03 * height, 0.02 * width)
        ir = np.where(body | head, 0.92, ir)
    car = (u > 0.62) & (u < 0.82) & (v > 0.78) & (v < 0.9)
    ir = np.where(car, 0.6, ir)
    engine = _ellipse(yy, xx, 0.84 * height, 0.78 * width, 0.03 * height, 0.03 * width)
    ir = np.where(engine, 0.97, ir)
    ir = ndimage.gaussian_filter(ir, 1.0) + 0.01 * rng.standard_normal((height, width))
    vis = vis + (noise * rng.standard_normal((height, width)) if noise > 0 else 0.0)
    return np.clip(ir, 0.0, 1.0), np.clip(vis, 0.0, 1.0)


# ----------------------------------------------------------------------------- medical
MEDICAL_PARTNERS = ("ct", "pet", "spect")


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise scaled to unit standard deviation."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return field / (field.std() + 1e-12)


def synthetic_medical_pair(size: int = 256, seed: int = 0, partner: str = "pet") -> tuple[np.ndarray, np.ndarray]:
    """A procedural axial head slice: ``(mri, partner)`` float64 images in [0, 1].

    The phantom is a head ellipse with scalp, skull, a folded cortex (gray matter over white
    matter, sulci from thresholded smooth noise), two ventricles and a small lesion.

    * ``mri``: T1-like, ``size × size``: white matter brighter than gray matter, CSF and
      bone dark, scalp fat bright, fine texture and a little noise.
    * ``partner="ct"``: ``size × size`` gray: bone bright, soft tissue flat and dim.
    * ``partner="pet"`` or ``"spect"``: ``size × size × 3`` pseudo-colour (the ``jet``
      colour map on black): smooth, low-resolution uptake in the cortex and the lesion,
      none outside the brain (SPECT: coarser blur and more noise).

    Everything is generated from ``seed``; the same call gives the same arrays.
    """
    if partner not in MEDICAL_PARTNERS:
        raise ValueError(f"partner must be one of {MEDICAL_PARTNERS}, got {partner!r}")
    rng = np.random.default_rng(seed)
    n = int(size)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    cy, cx = 0.5 * n + rng.uniform(-0.02, 0.02) * n, 0.5 * n
    ry, rx = 0.42 * n, 0.34 * n
    # a slightly irregular head outline: radius modulated by a few low harmonics
    angle = np.arctan2(yy - cy, xx - cx)
    wobble = 1.0 + sum(0.015 * rng.standard_normal() * np.cos(k * angle + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
    r = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2) / wobble
    head, skull_out, brain = r <= 1.0, r <= 0.93, r <= 0.86
    scalp, skull = head & ~skull_out, skull_out & ~brain
    # cortex: a band inside the brain edge whose inner border folds; sulci are CSF lines
    folds = _smooth_noise(rng, (n, n), 0.025 * n)
    white = brain & (r <= 0.62 + 0.1 * np.tanh(folds))
    sulci = brain & ~white & (np.abs(_smooth_noise(rng, (n, n), 0.012 * n)) < 0.18)
    ventricles = np.zeros((n, n), bool)
    for side in (-1, 1):
        vy, vx = cy - 0.03 * n, cx + side * 0.06 * n
        ventricles |= (((yy - vy) / (0.11 * n)) ** 2 + ((xx - vx) / (0.035 * n)) ** 2) <= 1.0
    ly, lx = cy + rng.uniform(-0.15, 0.15) * n, cx + rng.choice([-1, 1]) * rng.uniform(0.12, 0.2) * n
    lesion = (((yy - ly) ** 2 + (xx - lx) ** 2) <= (0.045 * n) ** 2) & brain

    texture = _smooth_noise(rng, (n, n), 1.0)
    mri = np.zeros((n, n))
    mri[scalp] = 0.8
    mri[skull] = 0.12
    mri[brain] = 0.45  # gray matter
    mri[white] = 0.68
    mri[sulci] = 0.15
    mri[ventricles] = 0.1
    mri[lesion] = 0.55
    mri = ndimage.gaussian_filter(mri, 0.7) + brain * 0.03 * texture
    mri = mri + 0.01 * rng.standard_normal((n, n)) * head

    if partner == "ct":
        ct = np.zeros((n, n))
        ct[scalp] = 0.3
        ct[skull] = 0.97
        ct[brain] = 0.36
        ct[white] = 0.33
        ct[ventricles | sulci] = 0.24
        ct[lesion] = 0.45
        ct = ndimage.gaussian_filter(ct, 0.8) + 0.012 * rng.standard_normal((n, n)) * head
        return np.clip(mri, 0, 1), np.clip(ct, 0, 1)

    import matplotlib

    cortex = brain & ~white & ~sulci
    uptake = 0.5 * cortex + 0.25 * (white & ~ventricles) + 1.0 * lesion
    uptake = uptake * (1.0 + 0.35 * _smooth_noise(rng, (n, n), 0.05 * n))
    blur, grain = (0.025, 0.03) if partner == "pet" else (0.04, 0.08)
    uptake = ndimage.gaussian_filter(np.clip(uptake, 0, None), blur * n)
    uptake = np.clip(uptake / (uptake.max() + 1e-12) + grain * rng.standard_normal((n, n)) * (uptake > 0.05), 0, 1)
    rgb = matplotlib.colormaps["jet"](uptake)[..., :3]
    rgb = rgb * np.clip((uptake - 0.08) / 0.12, 0, 1)[..., None]  # black background, as in PET/SPECT atlases
    return np.clip(mri, 0, 1), np.clip(rgb, 0, 1)

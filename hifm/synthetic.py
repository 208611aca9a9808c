"""A procedural infrared/visible scene for the demo and tests (no downloads).

The visible image has texture (a tiled road, a fence, foliage-like noise
texture, a building with windows) and dark regions; the infrared image is
smooth but has warm targets (people, a car engine) that are invisible or
hidden in shadow in the visible image.  Everything is generated from a seed.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["synthetic_pair"]


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

"""Synthetic degradations of float images in [0, 1] (DESIGN §9).

Every function takes an ``H×W`` or ``H×W×C`` float32/float64 array in [0, 1] and
returns a new array of the same shape and dtype. Random ones take ``seed``: an
``int`` (the same int gives the same output) or a :class:`numpy.random.Generator`
(which is advanced, so a training loop can pass one generator around). Results are
clipped to [0, 1] where the model can leave it (noise, stripes); the others stay
inside by construction.

Models (x: the clean image, n: standard normal noise, pixels p, columns j):

================  ===========================================================
gaussian_noise    y = clip(x + σ n)
poisson_noise     y = clip(Poisson(peak · x) / peak)       (shot noise, peak photons at 1)
low_light         y = scale · x^γ
gaussian_blur     y = G_σ * x                              (per channel, reflect borders)
stripe_noise      y = clip(x + o_j),  o_j ~ N(0, σ²)       (one offset per column)
fog               y = x t + A (1 − t),  t = exp(−β d)      (atmospheric scattering)
================  ===========================================================

:func:`apply` runs a spec such as ``{"kind": "gaussian_noise", "sigma": 0.04}``, a
list of specs, or a preset name (:data:`PRESETS`); :func:`random_degradation` draws a
spec for degradation-aware training.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Union

import numpy as np
from scipy import ndimage

from .errors import InputError

__all__ = [
    "SeedLike",
    "gaussian_noise",
    "poisson_noise",
    "low_light",
    "gaussian_blur",
    "stripe_noise",
    "fog",
    "transmission",
    "synthetic_depth",
    "smooth_field",
    "apply",
    "random_degradation",
    "FOG_PRESETS",
    "PRESETS",
    "RANDOM_RANGES",
]

SeedLike = Union[int, np.integer, np.random.Generator, np.random.SeedSequence]
"""An int, a SeedSequence, or a Generator (used as is)."""

_RANGE_TOLERANCE = 1e-4


# --------------------------------------------------------------------------- helpers


def _rng(seed: SeedLike) -> np.random.Generator:
    """A Generator from ``seed`` (a Generator is returned unchanged)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, (bool, float)):
        raise InputError(f"seed must be an int or a numpy Generator, got {seed!r} (results must be reproducible)")
    if isinstance(seed, (int, np.integer, np.random.SeedSequence)):
        return np.random.default_rng(seed)
    raise InputError(f"seed must be an int or a numpy Generator, got {type(seed).__name__}")


def _image(img: np.ndarray) -> np.ndarray:
    """Check that ``img`` is a float H×W or H×W×C image in [0, 1]."""
    arr = np.asarray(img)
    if not np.issubdtype(arr.dtype, np.floating) or arr.dtype.itemsize < 4:
        raise InputError(
            f"degradations take float32/float64 images in [0, 1], got {arr.dtype} "
            "(use hifm.io.to_float)"
        )
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise InputError(f"expected an H×W or H×W×C image, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError("image holds NaN or infinity")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -_RANGE_TOLERANCE or hi > 1 + _RANGE_TOLERANCE:
        raise InputError(f"image values span [{lo:.4g}, {hi:.4g}], outside [0, 1]")
    return arr


def _nonnegative(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise InputError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def _positive(name: str, value: float) -> float:
    value = _nonnegative(name, value)
    if value == 0:
        raise InputError(f"{name} must be > 0")
    return value


def _spatial(arr: np.ndarray, plane: np.ndarray) -> np.ndarray:
    """Broadcast an H×W ``plane`` against ``arr`` (H×W or H×W×C)."""
    return plane[..., None] if arr.ndim == 3 else plane


def _clip(arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.clip(arr, 0.0, 1.0).astype(dtype, copy=False)


# --------------------------------------------------------------------------- noise


def gaussian_noise(img: np.ndarray, sigma: float, seed: SeedLike) -> np.ndarray:
    """Additive white Gaussian noise: ``y = clip(x + σ n, 0, 1)``, ``n ~ N(0, 1)`` i.i.d.

    Args:
        img: float image in [0, 1].
        sigma: standard deviation in [0, 1] units (10/255 ≈ 0.039 is "σ = 10").
        seed: int or Generator.
    """
    x = _image(img)
    sigma = _nonnegative("sigma", sigma)
    noise = _rng(seed).standard_normal(x.shape, dtype=x.dtype)
    return _clip(x + x.dtype.type(sigma) * noise, x.dtype)


def poisson_noise(img: np.ndarray, peak: float, seed: SeedLike) -> np.ndarray:
    """Shot noise: ``y = clip(Poisson(peak · x) / peak, 0, 1)``.

    ``peak`` is the photon count of a white pixel; the variance of ``y`` is
    ``x / peak`` (lower peak, noisier image).
    """
    x = _image(img)
    peak = _positive("peak", peak)
    counts = _rng(seed).poisson(x.astype(np.float64) * peak)
    return _clip(counts / peak, x.dtype)


def stripe_noise(
    img: np.ndarray,
    sigma: float,
    seed: SeedLike,
    *,
    axis: int = 1,
    gain_sigma: float = 0.0,
) -> np.ndarray:
    """Fixed-pattern stripe noise of uncooled thermal cameras.

    ``y = clip((1 + g_j) x + o_j, 0, 1)`` with one offset ``o_j ~ N(0, σ²)`` and one
    gain error ``g_j ~ N(0, gain_sigma²)`` per column ``j`` (``axis=1``: vertical
    stripes, the usual column readout pattern) or per row (``axis=0``). All colour
    channels share the pattern.
    """
    x = _image(img)
    sigma = _nonnegative("sigma", sigma)
    gain_sigma = _nonnegative("gain_sigma", gain_sigma)
    if axis not in (0, 1):
        raise InputError(f"axis must be 0 (rows) or 1 (columns), got {axis!r}")
    rng = _rng(seed)
    count = x.shape[axis]
    offsets = sigma * rng.standard_normal(count)
    gains = 1.0 + gain_sigma * rng.standard_normal(count)
    shape = (1, count) if axis == 1 else (count, 1)
    offsets, gains = _spatial(x, offsets.reshape(shape)), _spatial(x, gains.reshape(shape))
    return _clip(gains * x + offsets, x.dtype)


# --------------------------------------------------------------------------- photometric


def low_light(img: np.ndarray, gamma: float = 2.0, scale: float = 0.3) -> np.ndarray:
    """Under-exposure: ``y = scale · x^γ`` (γ > 1 darkens the shadows most).

    Args:
        gamma: exponent > 0.
        scale: overall gain in (0, 1].
    """
    x = _image(img)
    gamma = _positive("gamma", gamma)
    scale = _nonnegative("scale", scale)
    if scale > 1:
        raise InputError(f"scale must be in [0, 1], got {scale}")
    return (scale * np.power(np.clip(x, 0.0, 1.0), gamma)).astype(x.dtype, copy=False)


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur: ``y = G_σ * x`` per channel, kernel truncated at 4σ, reflected borders.

    ``sigma`` is in pixels; 0 returns a copy.
    """
    x = _image(img)
    sigma = _nonnegative("sigma", sigma)
    if sigma == 0:
        return x.copy()
    sigmas = (sigma, sigma, 0.0)[: x.ndim]
    out = ndimage.gaussian_filter(x, sigma=sigmas, mode="reflect", truncate=4.0)
    return _clip(out, x.dtype)


# --------------------------------------------------------------------------- fog

FOG_PRESETS: dict[str, dict[str, float]] = {
    "misty": {"beta": 1.0, "airlight": 0.8, "uneven": 0.3},
    "heavy": {"beta": 2.5, "airlight": 0.9, "uneven": 0.3},
}
"""Fog settings for :func:`fog` with the default :func:`synthetic_depth` (d in [0.1, 1]):
"misty" leaves t ≈ 0.37 at the horizon, "heavy" t ≈ 0.08."""

_FOG_DEFAULTS = {"beta": 1.0, "airlight": 0.8, "uneven": 0.0}


def synthetic_depth(
    shape: Sequence[int],
    *,
    near: float = 0.1,
    far: float = 1.0,
    horizon: float = 0.0,
) -> np.ndarray:
    """Depth of a flat ground plane seen by a level camera: far at the top, near at the bottom.

    With ``v`` the row position in [0, 1] (0 = top row, 1 = bottom row) and the
    horizon at ``v_h = horizon``, a ground point's distance is proportional to
    ``1 / (v − v_h)``: ``d(v) = min(far, near · (1 − v_h) / (v − v_h))`` below the
    horizon and ``far`` (sky) above it. The bottom row is at ``near``; every
    column is the same.

    Args:
        shape: ``(H, W)`` or ``(H, W, C)`` (only H and W are used).
        near: depth of the bottom row, > 0.
        far: largest depth (horizon and sky), >= near.
        horizon: horizon row position in [0, 1).

    Returns:
        A float64 ``H×W`` array, non-increasing down every column.
    """
    height, width = int(shape[0]), int(shape[1])
    near, far = _positive("near", near), _positive("far", far)
    if far < near or not 0 <= horizon < 1:
        raise InputError(f"need 0 < near <= far and 0 <= horizon < 1, got {near}, {far}, {horizon}")
    v = np.linspace(0.0, 1.0, height) if height > 1 else np.ones(1)
    below = v > horizon
    rows = np.full(height, far)
    rows[below] = np.minimum(far, near * (1 - horizon) / (v[below] - horizon))
    return np.repeat(rows[:, None], width, axis=1)


def smooth_field(shape: Sequence[int], seed: SeedLike, *, scale: float = 0.125) -> np.ndarray:
    """A smooth random field in [−1, 1] with zero mean.

    White Gaussian noise blurred by a Gaussian of ``scale · max(H, W)`` pixels
    (wrap-around borders), centred and divided by its largest magnitude.
    """
    height, width = int(shape[0]), int(shape[1])
    white = _rng(seed).standard_normal((height, width))
    field = ndimage.gaussian_filter(white, sigma=max(1.0, scale * max(height, width)), mode="wrap")
    field -= field.mean()
    peak = np.abs(field).max()
    return field / peak if peak > 0 else field


def transmission(
    depth: np.ndarray,
    beta: float,
    *,
    uneven: float = 0.0,
    seed: SeedLike = 0,
) -> np.ndarray:
    """Transmission map ``t = exp(−β(p) d(p))`` of the scattering model.

    ``β(p) = β · max(0, 1 + uneven · f(p))`` with ``f`` a :func:`smooth_field` (patchy
    fog); ``uneven = 0`` gives a uniform ``β``.
    """
    d = np.asarray(depth, dtype=np.float64)
    if d.ndim != 2 or not np.all(np.isfinite(d)) or (d.size and d.min() < 0):
        raise InputError(f"depth must be a finite, non-negative H×W array (shape {d.shape})")
    beta = _nonnegative("beta", beta)
    uneven = _nonnegative("uneven", uneven)
    beta_map: float | np.ndarray = beta
    if uneven > 0:
        beta_map = beta * np.maximum(0.0, 1.0 + uneven * smooth_field(d.shape, seed))
    return np.exp(-beta_map * d)


def fog(
    img: np.ndarray,
    depth: np.ndarray | None = None,
    beta: float | None = None,
    airlight: float | Sequence[float] | None = None,
    uneven: float | None = None,
    seed: SeedLike = 0,
    preset: str | None = None,
) -> np.ndarray:
    """Fog by the atmospheric scattering model: ``I = J t + A (1 − t)``, ``t = exp(−β d)``.

    Args:
        img: the clean image ``J`` in [0, 1].
        depth: scene depth ``d`` (H×W, >= 0); default :func:`synthetic_depth`
            (a ground plane, d from 1 at the top to 0.1 at the bottom).
        beta: scattering coefficient β (per depth unit); 0 leaves the image unchanged.
        airlight: atmospheric light ``A`` in [0, 1], a scalar or one per channel.
        uneven: relative spatial variation of β (see :func:`transmission`).
        seed: int or Generator for the uneven field.
        preset: ``"misty"`` or ``"heavy"`` (:data:`FOG_PRESETS`): defaults for
            ``beta``, ``airlight`` and ``uneven``; explicit arguments win. Without a
            preset the defaults are β = 1, A = 0.8, uneven = 0.
    """
    x = _image(img)
    params = _fog_params(preset, beta=beta, airlight=airlight, uneven=uneven)
    d = synthetic_depth(x.shape) if depth is None else np.asarray(depth, dtype=np.float64)
    if d.shape != x.shape[:2]:
        raise InputError(f"depth shape {d.shape} does not match the image's {x.shape[:2]}")
    t = _spatial(x, transmission(d, params["beta"], uneven=params["uneven"], seed=seed))
    light = _airlight(params["airlight"], x)
    return _clip(x * t + light * (1.0 - t), x.dtype)


def _fog_params(preset: str | None, **given: Any) -> dict[str, Any]:
    if preset is not None and preset not in FOG_PRESETS:
        raise InputError(f"unknown fog preset {preset!r}; choose from {sorted(FOG_PRESETS)}")
    params = dict(_FOG_DEFAULTS, **(FOG_PRESETS[preset] if preset else {}))
    params.update({key: value for key, value in given.items() if value is not None})
    return params


def _airlight(value: float | Sequence[float], x: np.ndarray) -> np.ndarray:
    light = np.asarray(value, dtype=np.float64)
    channels = x.shape[2] if x.ndim == 3 else 1
    if light.ndim > 1 or (light.ndim == 1 and (x.ndim != 3 or light.size != channels)):
        raise InputError(f"airlight must be a scalar or one value per channel, got {value!r}")
    if np.any(light < 0) or np.any(light > 1):
        raise InputError(f"airlight must lie in [0, 1], got {value!r}")
    return light


# --------------------------------------------------------------------------- specs

_KINDS: dict[str, Callable[..., np.ndarray]] = {
    "gaussian_noise": gaussian_noise,
    "poisson_noise": poisson_noise,
    "low_light": low_light,
    "gaussian_blur": gaussian_blur,
    "stripe_noise": stripe_noise,
    "fog": fog,
}

PRESETS: dict[str, dict[str, Any]] = {
    "noise_sigma10": {"kind": "gaussian_noise", "sigma": 10 / 255},
    "noise_sigma25": {"kind": "gaussian_noise", "sigma": 25 / 255},
    "poisson_peak30": {"kind": "poisson_noise", "peak": 30.0},
    "low_light": {"kind": "low_light", "gamma": 2.0, "scale": 0.3},
    "blur_sigma1.5": {"kind": "gaussian_blur", "sigma": 1.5},
    "stripes": {"kind": "stripe_noise", "sigma": 0.03},
    "misty": {"kind": "fog", "preset": "misty"},
    "heavy_fog": {"kind": "fog", "preset": "heavy"},
}
"""Named specs for :func:`apply` (the robustness experiments use these)."""

RANDOM_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "gaussian_noise": {"sigma": (0.01, 0.1)},
    "poisson_noise": {"peak": (5.0, 200.0)},
    "low_light": {"gamma": (1.5, 3.0), "scale": (0.15, 0.6)},
    "gaussian_blur": {"sigma": (0.5, 2.0)},
    "stripe_noise": {"sigma": (0.01, 0.05)},
    "fog": {"beta": (0.5, 3.0), "airlight": (0.7, 1.0), "uneven": (0.0, 0.5)},
}
"""Uniform ranges drawn by :func:`random_degradation` (``peak``: log-uniform)."""


def apply(
    img: np.ndarray,
    spec: str | Mapping[str, Any] | Sequence[str | Mapping[str, Any]],
    seed: SeedLike,
) -> np.ndarray:
    """Apply a degradation spec, a preset name, or a list of them in order.

    A spec is a mapping with ``"kind"`` (a function name of this module, or
    ``"identity"``) and that function's keyword arguments, e.g.
    ``{"kind": "fog", "beta": 1.5}``. Random kinds draw from one generator made from
    ``seed``, so a list gives independent noise per step and the same ``seed`` gives
    the same result.

    Raises:
        InputError: unknown kind or preset, or an argument the kind does not take.
    """
    rng = _rng(seed)
    steps = [spec] if isinstance(spec, (str, Mapping)) else list(spec)
    out = _image(img)
    for step in steps:
        out = _apply_one(out, _resolve(step), rng)
    return out


def _resolve(step: str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(step, str):
        if step not in PRESETS:
            raise InputError(f"unknown degradation preset {step!r}; choose from {sorted(PRESETS)}")
        return dict(PRESETS[step])
    if not isinstance(step, Mapping) or "kind" not in step:
        raise InputError(f"a degradation spec is a mapping with a 'kind', got {step!r}")
    return dict(step)


def _apply_one(img: np.ndarray, spec: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    kind = spec.pop("kind")
    if kind == "identity":
        if spec:
            raise InputError(f"'identity' takes no arguments, got {sorted(spec)}")
        return img.copy()
    func = _KINDS.get(kind)
    if func is None:
        raise InputError(f"unknown degradation kind {kind!r}; choose from {sorted(_KINDS) + ['identity']}")
    accepted = set(inspect.signature(func).parameters) - {"img", "seed"}
    unknown = sorted(set(spec) - accepted)
    if unknown:
        raise InputError(f"degradation {kind!r} takes {sorted(accepted)}, not {unknown}")
    if "seed" in inspect.signature(func).parameters:
        spec["seed"] = rng
    return func(img, **spec)


def random_degradation(
    rng: SeedLike,
    *,
    kinds: Sequence[str] | None = None,
    p_identity: float = 0.0,
) -> dict[str, Any]:
    """Draw a random spec for :func:`apply` (degradation-aware training, DESIGN §7.1).

    The kind is uniform over ``kinds`` (default: all of :data:`RANDOM_RANGES`), or
    ``{"kind": "identity"}`` with probability ``p_identity``; each parameter is
    uniform in its :data:`RANDOM_RANGES` interval (``peak`` log-uniform). Values
    are plain Python floats, so the spec can be logged as JSON.
    """
    gen = _rng(rng)
    names = list(kinds) if kinds is not None else list(RANDOM_RANGES)
    unknown = [name for name in names if name not in RANDOM_RANGES]
    if unknown or not names:
        raise InputError(f"kinds must be a non-empty subset of {sorted(RANDOM_RANGES)}, got {names}")
    if not 0 <= p_identity <= 1:
        raise InputError(f"p_identity must be in [0, 1], got {p_identity}")
    if p_identity > 0 and gen.random() < p_identity:
        return {"kind": "identity"}
    kind = names[int(gen.integers(len(names)))]
    spec: dict[str, Any] = {"kind": kind}
    for name, (low, high) in RANDOM_RANGES[kind].items():
        if name == "peak":
            spec[name] = float(math.exp(gen.uniform(math.log(low), math.log(high))))
        else:
            spec[name] = float(gen.uniform(low, high))
    return spec

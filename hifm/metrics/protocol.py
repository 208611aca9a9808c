"""How fused image and sources are turned into planes (the ``vifb`` and ``gray`` protocols),
and :func:`evaluate`, which computes a set of metrics for one fused image.

``vifb`` reproduces VIFB's ``compute_metrics.m``: every metric is evaluated on the R, G and B
planes of the visible (``a``) and fused images, always against the single infrared plane
(``b``), and the three values are averaged; Spatial_frequency instead works on the three fused
planes side by side. A single-plane fused image is evaluated once against gray sources
(MATLAB ``rgb2gray`` of an RGB source), as VIFB's code does.

``gray`` evaluates every metric once, on one luminance plane of each image (an RGB image whose
three planes are equal gives that plane; any other RGB image is converted with MATLAB's
``rgb2gray`` weights, rounded to integers for 8-bit input).

Metrics of kind ``"luma"`` (the halo and target-contrast measures) always use those
luminance planes, under either protocol.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from ..errors import InputError
from ._common import PlaneCache, check_image

if TYPE_CHECKING:
    from .registry import MetricInfo

__all__ = ["PROTOCOLS", "Prepared", "prepare", "evaluate", "compute", "rgb2gray_matlab"]

PROTOCOLS = ("vifb", "gray")

# MATLAB rgb2gray weights (inverse of the NTSC YIQ matrix, first row), as MATLAB uses them.
_GRAY_W = (0.298936021293775, 0.587043074451121, 0.114020904255103)


def rgb2gray_matlab(rgb: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2gray``: weighted sum of R, G, B; integer input is rounded half away from
    zero (uint8 result), float input is not rounded. Returns float64."""
    x = rgb.astype(np.float64)
    y = _GRAY_W[0] * x[:, :, 0] + _GRAY_W[1] * x[:, :, 1] + _GRAY_W[2] * x[:, :, 2]
    if rgb.dtype.kind in "ui":
        y = np.clip(np.floor(y + 0.5), 0, 255)  # y >= 0: half away from zero
    return y


def _is_gray_rgb(x: np.ndarray) -> bool:
    return x.ndim == 3 and bool(np.array_equal(x[:, :, 0], x[:, :, 1])) and bool(
        np.array_equal(x[:, :, 0], x[:, :, 2]))


def _to_plane(x: np.ndarray) -> np.ndarray:
    """One luminance plane: the image itself, its first plane if R = G = B, else rgb2gray."""
    if x.ndim == 2:
        return np.ascontiguousarray(x, dtype=np.float64)
    if _is_gray_rgb(x):
        return np.ascontiguousarray(x[:, :, 0], dtype=np.float64)
    return np.ascontiguousarray(rgb2gray_matlab(x))


def _planes(x: np.ndarray) -> list[np.ndarray]:
    return [np.ascontiguousarray(x[:, :, k], dtype=np.float64) for k in range(x.shape[2])]


@dataclass
class Prepared:
    """Planes of one (fused, a, b) triple under a protocol.

    ``triples``: the (a_k, b_k, f_k) plane triples whose metric values are averaged
    (``a_k``/``b_k`` are ``None`` when the sources were not given);
    ``fused_sf``: the plane Spatial_frequency is computed on (the fused planes side by side
    under ``vifb``); ``cache``: shared intermediate results; ``raw``: the checked input
    arrays (fused, a, b), from which :meth:`luma` makes the luminance triple."""

    triples: list[tuple[np.ndarray | None, np.ndarray | None, np.ndarray]]
    fused_sf: np.ndarray
    shape: tuple[int, int]
    protocol: str
    cache: PlaneCache = field(default_factory=PlaneCache)
    raw: tuple[np.ndarray | None, ...] = ()
    _luma: tuple[np.ndarray | None, np.ndarray | None, np.ndarray] | None = None

    def luma(self) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
        """One luminance plane per image (the ``gray`` protocol's planes), made once."""
        if self._luma is None:
            if len(self.triples) == 1:  # gray protocol or single-plane fused: already luma
                self._luma = self.triples[0]
            else:
                f, a, b = self.raw
                self._luma = (None if a is None else _to_plane(a),
                              None if b is None else _to_plane(b), _to_plane(f))
        return self._luma


def prepare(fused: object, a: object | None = None, b: object | None = None,
            protocol: str = "vifb") -> Prepared:
    """Validate the images and split them into planes according to ``protocol``.

    ``a`` is the visible (or colour / functional) source, ``b`` the infrared (or MRI) source,
    VIFB's argument order. Raises ``ValueError`` for bad input (see
    :func:`hifm.metrics._common.check_image`) and for sizes that differ."""
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    f = check_image(fused, "fused")
    srcs = {}
    for name, x in (("a", a), ("b", b)):
        if x is not None:
            x = check_image(x, name)
            if x.shape[:2] != f.shape[:2]:
                raise InputError(
                    f"size mismatch: fused is {f.shape[0]}×{f.shape[1]} but {name} is "
                    f"{x.shape[0]}×{x.shape[1]}"
                )
        srcs[name] = x
    a_arr, b_arr = srcs["a"], srcs["b"]
    shape = (int(f.shape[0]), int(f.shape[1]))

    if protocol == "gray" or f.ndim == 2:
        fp = _to_plane(f)
        ap = None if a_arr is None else _to_plane(a_arr)
        bp = None if b_arr is None else _to_plane(b_arr)
        return Prepared([(ap, bp, fp)], fp, shape, protocol, raw=(f, a_arr, b_arr))

    # vifb with a 3-plane fused image: per plane k, (A_k or A, B_k or the one B plane, F_k)
    fplanes = _planes(f)
    if _is_gray_rgb(f):  # one object for equal planes: computed once (see _compute_prepared)
        fplanes = [fplanes[0]] * 3

    def source_planes(x: np.ndarray | None) -> list[np.ndarray | None]:
        if x is None:
            return [None] * 3
        if x.ndim == 2 or _is_gray_rgb(x):
            p = _to_plane(x)
            return [p, p, p]  # the same object: per-plane results are cached once
        return _planes(x)  # type: ignore[return-value]

    ap = source_planes(a_arr)
    bp = source_planes(b_arr)
    triples = [(ap[k], bp[k], fplanes[k]) for k in range(3)]
    return Prepared(triples, np.ascontiguousarray(np.hstack(fplanes)), shape, protocol,
                    raw=(f, a_arr, b_arr))


def _compute_prepared(info: MetricInfo, prep: Prepared) -> float:
    """One metric on prepared planes: mean over the plane triples (or the SF plane)."""
    h, w = prep.shape
    if min(h, w) < info.min_size:
        raise InputError(
            f"{info.name} needs images of at least {info.min_size}×{info.min_size} pixels, "
            f"got {h}×{w}"
        )
    if info.uses_sources and any(t[0] is None or t[1] is None for t in prep.triples):
        raise InputError(f"{info.name} needs both source images (a and b)")
    if info.kind == "concat":
        return float(info.plane_fn(None, None, prep.fused_sf, prep.cache))
    if info.kind == "luma":
        al, bl, fl = prep.luma()
        with np.errstate(all="ignore"):
            return float(info.plane_fn(al, bl, fl, prep.cache))
    # plane triples made of the same objects (a gray image stored as RGB, fused and first
    # source) have the same value: computed once, then averaged as if computed per plane
    keys = [tuple(id(x) for x in t) for t in prep.triples]
    slot: dict[tuple[int, ...], int] = {}
    for k in keys:
        slot.setdefault(k, len(slot))
    uniq = [prep.triples[keys.index(k)] for k in slot]
    with np.errstate(all="ignore"):
        if info.planes_fn is not None:
            uvals = info.planes_fn(uniq, prep.cache)
        else:
            uvals = [info.plane_fn(ak, bk, fk, prep.cache) for ak, bk, fk in uniq]
    vals = [uvals[slot[k]] for k in keys]
    return float(np.mean(vals)) if len(vals) > 1 else float(vals[0])


def compute(name: str, fused: object, a: object | None = None, b: object | None = None,
            protocol: str = "vifb") -> float:
    """One metric (any registered name or alias) for one fused image."""
    from .registry import get_metric

    info = get_metric(name)
    return _compute_prepared(info, prepare(fused, a, b, protocol))


def _warn_unit_range(prep: Prepared) -> None:
    planes = [p for t in prep.triples for p in t if p is not None]
    if planes and all(p.max() <= 1.0 for p in planes) and any(p.max() > 0 for p in planes):
        warnings.warn(
            "all images lie in [0, 1]; the metrics assume the 0..255 scale (multiply by 255 "
            "or pass uint8 arrays)", UserWarning, stacklevel=3,
        )


def evaluate(fused: object, a: object | None = None, b: object | None = None,
             metrics: str | Iterable[str] | None = None,
             protocol: str = "vifb") -> dict[str, float]:
    """Compute fusion metrics for one fused image and its two sources.

    Parameters
    ----------
    fused, a, b
        Fused image, first source (visible, or the colour / functional image of a medical
        pair: CT, PET, SPECT) and second source (infrared, or MRI), as read from disk:
        H×W or H×W×3 uint8 arrays (other integer types with values 0..255, or float arrays on
        the 0..255 scale, are accepted too). An RGB source whose planes are equal is used as
        one plane. ``a`` and ``b`` may be omitted when only metrics of the fused image alone
        are asked for (entropy, standard deviation, AG, EI, SF).
    metrics
        Names or aliases (case-insensitive; see :func:`hifm.metrics.list_metrics`); ``None``
        computes every registered metric except the opt-in halo and target-contrast
        measures (:data:`hifm.metrics.DEFAULT_METRICS`; ask for ``"Halo"``, ``"TCR"`` by
        name).
    protocol
        ``"vifb"`` (per RGB plane, mean; VIFB's reference protocol) or ``"gray"`` (one
        luminance plane per image).

    Returns
    -------
    dict
        Metric name -> value (Python float). Keys are the names as passed in ``metrics``
        (canonical names when ``metrics`` is ``None``), in that order.
    """
    from .registry import DEFAULT_METRICS, get_metric

    if metrics is None:
        names: Sequence[str] = list(DEFAULT_METRICS)
    elif isinstance(metrics, str):
        names = [metrics]
    else:
        names = list(metrics)
    infos = [get_metric(n) for n in names]  # fails early on unknown names
    prep = prepare(fused, a, b, protocol)
    _warn_unit_range(prep)
    out: dict[str, float] = {}
    done: dict[str, float] = {}
    for n, info in zip(names, infos):
        if info.name not in done:
            done[info.name] = _compute_prepared(info, prep)
        out[n] = done[info.name]
    return out

"""Conformance of hifm.metrics with the reference values shipped in shared/data/vifb-dev.

* reference_metrics.csv: VIFB's own values (MATLAB, 5 significant digits), 13 metrics;
  tolerance: relative 1e-4 or one unit in the 5th significant digit.
* reference_metrics_extra.csv: FMI (4 features), VIF (Han's VIFF), SCD, Nabf at full
  precision; tolerance: relative 1e-6.

A fixed subset of the 150 (image, method) triples runs by default; the others are marked
``slow`` (``pytest -m slow``). Known deviations of the reference data (documented in
docs/metrics.md, "Conformance") are checked against their own, looser bounds.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from hifm.metrics import evaluate, get_metric

from ._data import DATA, missing

VIFB_DEV = DATA / "vifb-dev"

VIFB_NAMES = ("Avg_gradient", "Cross_entropy", "Edge_intensity", "Entropy", "Mutinf", "Psnr",
              "Qabf", "Qcb", "Qcv", "Rmse", "Spatial_frequency", "Ssim", "Variance")
EXTRA_NAMES = ("FMI_pixel", "FMI_dct", "FMI_w", "FMI_gradient", "VIF", "SCD", "Nabf")

# Default subset: every image at least once, small images for several methods, and the
# methods whose fused images are nearly gray (manCall: DLF, FPDE, GTF, MSVD).
SUBSET = {
    ("peopleshadow", "ADF"), ("peopleshadow", "GTF"), ("peopleshadow", "SeAFusion"),
    ("running", "IFEVIP"), ("running", "U2Fusion"), ("walkingnight", "GFCE"),
    ("walkingnight", "LatLRR"), ("manCall", "MSVD"), ("tricycle", "CBF"),
    ("labMan", "ADF"),
}

# Known deviations of the reference data, (image, method, metrics, largest accepted relative
# error); "*" matches any image or method. Evidence in docs/metrics.md, "Conformance".
# * SwinFusion, YDTR (VIFB's two newest methods): VIFB's stored values for the 13 metrics do
#   not belong to the fused JPEGs VIFB ships (the metrics of the fused image alone, such as
#   entropy and average gradient, differ too; the extra CSV, computed on the shipped files,
#   matches them to 1e-12).
# * FMI_w on labMan and tricycle, VIF on three tricycle triples: flat image areas (labMan's
#   infrared is constant 252 over 18% of the image, tricycle has saturated areas) make the
#   dmey detail coefficients, resp. VIF's local variances, pure rounding noise; the result
#   then depends on the summation order of the filters (up to 2.4e-3 for labMan FMI_w, 1e-5
#   to 2.5e-4 elsewhere, between equally valid implementations).
KNOWN_DEVIATIONS: list[tuple[str, str, frozenset[str], float]] = [
    ("*", "SwinFusion", frozenset(VIFB_NAMES), 0.1),
    ("*", "YDTR", frozenset(VIFB_NAMES), 0.1),
    ("labMan", "*", frozenset({"FMI_w"}), 3e-3),
    ("tricycle", "*", frozenset({"FMI_w"}), 3e-5),
    ("tricycle", "HMSD_GF", frozenset({"VIF"}), 3e-5),
    ("tricycle", "SeAFusion", frozenset({"VIF"}), 1e-4),
    ("tricycle", "YDTR", frozenset({"VIF"}), 3e-4),
]


def _known_bound(image: str, method: str, metric: str) -> float | None:
    for img, meth, names, bound in KNOWN_DEVIATIONS:
        if img in ("*", image) and meth in ("*", method) and metric in names:
            return bound
    return None


def _require_data() -> None:
    if not (VIFB_DEV / "reference_metrics.csv").is_file():
        missing(VIFB_DEV / "reference_metrics.csv", "shared/data next to the repo")


@lru_cache(maxsize=1)
def _references() -> dict[tuple[str, str], dict[str, str]]:
    ref: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for name in ("reference_metrics.csv", "reference_metrics_extra.csv"):
        with open(VIFB_DEV / name, newline="") as fh:
            for row in csv.DictReader(fh):
                ref[(row["image"], row["method"])][row["metric"]] = row["value"]
    return dict(ref)


def _triples() -> list[tuple[str, str]]:
    if not (VIFB_DEV / "reference_metrics.csv").is_file():
        return [("peopleshadow", "ADF")]  # skipped in the test
    return sorted(_references())


def _read(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im)


def vifb_ok(value: float, ref_text: str) -> tuple[bool, float]:
    """Relative 1e-4, or within one unit of the 5th significant digit of the reference."""
    ref = float(ref_text)
    if ref == 0.0:
        return abs(value) <= 1e-5, abs(value)
    rel = abs(value - ref) / abs(ref)
    unit = 10.0 ** (math.floor(math.log10(abs(ref))) - 4)
    return (rel <= 1e-4 or abs(value - ref) <= unit), rel


def extra_ok(value: float, ref_text: str) -> tuple[bool, float]:
    ref = float(ref_text)
    rel = abs(value - ref) / abs(ref) if ref != 0 else abs(value)
    return rel <= 1e-6, rel


def test_reference_tables_complete() -> None:
    _require_data()
    ref = _references()
    assert len(ref) == 150
    assert sum(len(v) for v in ref.values()) == 150 * 20
    for vals in ref.values():
        assert set(vals) == set(VIFB_NAMES) | set(EXTRA_NAMES)


def test_aliases_cover_reference_names() -> None:
    for n in VIFB_NAMES + EXTRA_NAMES:
        assert get_metric(n).reference_name == n


@pytest.mark.parametrize(
    "image,method",
    [pytest.param(i, m, id=f"{i}-{m}", marks=() if (i, m) in SUBSET else pytest.mark.slow)
     for i, m in _triples()],
)
def test_vifb_dev_triple(image: str, method: str) -> None:
    _require_data()
    ref = _references()[(image, method)]
    fused = _read(VIFB_DEV / "fused" / method / f"{image}.jpg")
    vis = _read(VIFB_DEV / "vi" / f"{image}.jpg")
    ir = _read(VIFB_DEV / "ir" / f"{image}.jpg")
    values = evaluate(fused, vis, ir, metrics=VIFB_NAMES + EXTRA_NAMES, protocol="vifb")
    failures = []
    for name in VIFB_NAMES + EXTRA_NAMES:
        v = values[name]
        ok, rel = (vifb_ok if name in VIFB_NAMES else extra_ok)(v, ref[name])
        bound = _known_bound(image, method, name)
        if bound is not None:
            ok = rel <= bound
        if not ok:
            failures.append(f"{name}: computed {v!r}, reference {ref[name]} (rel {rel:.2e})")
    assert not failures, f"{image}/{method}:\n" + "\n".join(failures)

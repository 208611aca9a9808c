"""Fusion quality metrics that reproduce the reference MATLAB code of published tables.

Quick use::

    from hifm.metrics import evaluate
    values = evaluate(fused, visible, infrared)            # all metrics, VIFB protocol
    values = evaluate(fused, vis, ir, metrics=["Qabf", "ssim"], protocol="gray")

``a`` is the visible (or colour / functional: CT, PET, SPECT) source, ``b`` the infrared (or
MRI) source, VIFB's argument order. Every metric is also a function of its own
(``hifm.metrics.qabf(fused, a, b)``), and :data:`REGISTRY` / :func:`list_metrics` give names,
aliases, direction and references. See ``docs/metrics.md``.

Two measures of this project check what the standard metrics miss around hot targets:
``halo(fused, vis, ir)`` (dark or bright rings that neither source has; lower is better)
and ``target_contrast(fused, vis, ir)`` (how much of the infrared's target contrast is
kept; 1 = all), registered as ``"Halo"`` and ``"TCR"`` (opt-in: not computed when
``metrics`` is omitted); :func:`halo_analysis` gives both with the target mask.
"""

from .error import psnr, rmse
from .fmi import fmi_dct, fmi_gradient, fmi_pixel, fmi_wavelet
from .halo import HaloParams, HaloResult, halo, halo_analysis, hot_targets, target_contrast
from .gradient import average_gradient, edge_intensity, spatial_frequency, standard_deviation
from .information import cross_entropy, entropy, mutual_information
from .protocol import PROTOCOLS, evaluate, rgb2gray_matlab
from .qcb_qcv import qcb, qcv
from .registry import (
    DEFAULT_METRICS,
    EXTRA_METRICS,
    REGISTRY,
    TARGET_METRICS,
    VIFB_METRICS,
    MetricInfo,
    get_metric,
    list_metrics,
)
from .structural import cc, nabf, qabf, scd, ssim
from .viff import vif

__all__ = [
    "evaluate",
    "PROTOCOLS",
    "REGISTRY",
    "VIFB_METRICS",
    "EXTRA_METRICS",
    "DEFAULT_METRICS",
    "TARGET_METRICS",
    "MetricInfo",
    "get_metric",
    "list_metrics",
    "rgb2gray_matlab",
    "average_gradient",
    "cross_entropy",
    "edge_intensity",
    "entropy",
    "mutual_information",
    "psnr",
    "qabf",
    "qcb",
    "qcv",
    "rmse",
    "spatial_frequency",
    "ssim",
    "standard_deviation",
    "fmi_pixel",
    "fmi_dct",
    "fmi_wavelet",
    "fmi_gradient",
    "vif",
    "scd",
    "nabf",
    "cc",
    "halo",
    "target_contrast",
    "halo_analysis",
    "hot_targets",
    "HaloParams",
    "HaloResult",
]

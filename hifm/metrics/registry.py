"""Registry of the fusion metrics: canonical names, aliases, direction, range, reference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import InputError
from . import error, fmi, gradient, information, qcb_qcv, structural, viff
# from-imports: the package attribute ``halo`` is the function, not the module
from .halo import halo, halo_plane, target_contrast, target_contrast_plane
from ._common import PlaneCache

__all__ = ["MetricInfo", "REGISTRY", "get_metric", "list_metrics", "VIFB_METRICS",
           "EXTRA_METRICS", "DEFAULT_METRICS", "TARGET_METRICS"]

PlaneFn = Callable[[np.ndarray | None, np.ndarray | None, np.ndarray, PlaneCache], float]
PlanesFn = Callable[[list, PlaneCache], list]


@dataclass(frozen=True)
class MetricInfo:
    """One metric.

    ``name``: canonical name (also the name of the public function);
    ``func``: the public function ``func(fused, a, b, protocol=...)``;
    ``plane_fn``: the per-plane kernel ``plane_fn(a, b, f, cache)``;
    ``higher_is_better``: direction; ``value_range``: text; ``reference``: source paper;
    ``aliases``: other accepted names (case-insensitive), the first one being the name in
    the reference tables (VIFB files or ``reference_metrics_extra.csv``);
    ``uses_sources``: needs ``a`` and ``b``; ``min_size``: smallest height/width;
    ``kind``: ``"mean"`` (mean over the protocol's plane triples), ``"concat"`` (one value
    on the side-by-side fused planes: Spatial_frequency) or ``"luma"`` (one value on one
    luminance plane per image under every protocol: Halo, TCR);
    ``default``: computed when no metric names are given (``evaluate(..., metrics=None)``,
    ``hifm eval`` without ``--metrics``); the halo and target measures are opt-in;
    ``planes_fn``: optional ``planes_fn(triples, cache) -> values``, the values of
    ``plane_fn`` for all plane triples of a ``"mean"`` metric at once (FMI: the infrared
    plane's window statistics are shared by the three colour planes)."""

    name: str
    func: Callable[..., float]
    plane_fn: PlaneFn
    higher_is_better: bool
    value_range: str
    reference: str
    aliases: tuple[str, ...]
    uses_sources: bool = True
    min_size: int = 1
    kind: str = "mean"
    default: bool = True
    planes_fn: PlanesFn | None = None

    @property
    def reference_name(self) -> str:
        """Name used by the reference tables (VIFB / extra CSV)."""
        return self.aliases[0]

    @property
    def direction(self) -> str:
        return "higher" if self.higher_is_better else "lower"


def _f_only(fn: Callable[[np.ndarray, PlaneCache | None], float]) -> PlaneFn:
    def plane(a: np.ndarray | None, b: np.ndarray | None, f: np.ndarray,
              cache: PlaneCache) -> float:
        return fn(f, cache)

    return plane


def _fmi(feature: str) -> PlaneFn:
    def plane(a: np.ndarray | None, b: np.ndarray | None, f: np.ndarray,
              cache: PlaneCache) -> float:
        return fmi.fmi_plane(a, b, f, feature, 3, cache)  # type: ignore[arg-type]

    return plane


def _fmi_all(feature: str) -> PlanesFn:
    def planes(triples: list, cache: PlaneCache) -> list:
        return fmi.fmi_planes(triples, feature, 3, cache)

    return planes


_VIFB = "X. Zhang, P. Ye, G. Xiao, VIFB, CVPR Workshops 2020 (implementation)"

_ENTRIES = [
    MetricInfo("average_gradient", gradient.average_gradient,
               _f_only(gradient.average_gradient_plane), True, "[0, inf)",
               "Cui et al., Optics Communications 341, 2015", ("Avg_gradient", "AG"),
               uses_sources=False, min_size=2),
    MetricInfo("cross_entropy", information.cross_entropy,
               lambda a, b, f, c: information.cross_entropy_plane(a, b, f, c), False,
               "[0, inf) bits", "Bulanon et al., Biosystems Engineering 103(1), 2009",
               ("Cross_entropy", "CE")),
    MetricInfo("edge_intensity", gradient.edge_intensity,
               _f_only(gradient.edge_intensity_plane), True, "[0, inf)",
               "Rajalingam & Priya, IJESI 2018", ("Edge_intensity", "EI"),
               uses_sources=False),
    MetricInfo("entropy", information.entropy, _f_only(information.entropy_plane), True,
               "[0, 8] bits", "Roberts et al., J. Appl. Remote Sens. 2(1), 2008",
               ("Entropy", "EN"), uses_sources=False),
    MetricInfo("mutual_information", information.mutual_information,
               lambda a, b, f, c: information.mutual_information_plane(a, b, f, c), True,
               "[0, 11.09] nats (sum of two)", "Qu et al., Electronics Letters 38(7), 2002",
               ("Mutinf", "MI")),
    MetricInfo("psnr", error.psnr, lambda a, b, f, c: error.psnr_plane(a, b, f, c), True,
               "dB, size dependent (VIFB formula)",
               "Jagalingam & Hegde, Aquatic Procedia 4, 2015", ("Psnr", "PSNR")),
    MetricInfo("qabf", structural.qabf, lambda a, b, f, c: structural.qabf_plane(a, b, f, c),
               True, "[0, 1]", "Xydeas & Petrovic, Electronics Letters 36(4), 2000",
               ("Qabf", "Q_abf")),
    MetricInfo("qcb", qcb_qcv.qcb, lambda a, b, f, c: qcb_qcv.qcb_plane(a, b, f, c), True,
               "[0, 1]", "Chen & Blum, Image and Vision Computing 27(10), 2009",
               ("Qcb", "Q_cb")),
    MetricInfo("qcv", qcb_qcv.qcv, lambda a, b, f, c: qcb_qcv.qcv_plane(a, b, f, c), False,
               "[0, inf)", "Chen & Varshney, Information Fusion 8(2), 2007",
               ("Qcv", "Q_cv")),
    MetricInfo("rmse", error.rmse, lambda a, b, f, c: error.rmse_plane(a, b, f, c), False,
               "[0, 255/sqrt(MN)] (VIFB formula)",
               "Jagalingam & Hegde, Aquatic Procedia 4, 2015", ("Rmse", "RMSE")),
    MetricInfo("spatial_frequency", gradient.spatial_frequency,
               _f_only(gradient.spatial_frequency_plane), True, "[0, inf)",
               "Eskicioglu & Fisher, IEEE Trans. Commun. 43(12), 1995",
               ("Spatial_frequency", "SF"), uses_sources=False, kind="concat"),
    MetricInfo("ssim", structural.ssim, lambda a, b, f, c: structural.ssim_plane(a, b, f, c),
               True, "[-2, 2] (sum of two)", "Wang et al., IEEE TIP 13(4), 2004",
               ("Ssim", "SSIM"), min_size=11),
    MetricInfo("standard_deviation", gradient.standard_deviation,
               _f_only(gradient.standard_deviation_plane), True, "[0, 127.5]",
               "Rao, Meas. Sci. Technol. 8(4), 1997 (as cited by VIFB)",
               ("Variance", "SD", "STD"), uses_sources=False),
    MetricInfo("fmi_pixel", fmi.fmi_pixel, _fmi("none"), True, "[0, 1]",
               "Haghighat & Razian, IEEE AICT 2014 (Fast-FMI)", ("FMI_pixel", "FMI_pix"),
               min_size=3, planes_fn=_fmi_all("none")),
    MetricInfo("fmi_dct", fmi.fmi_dct, _fmi("dct"), True, "[0, 1]",
               "Haghighat & Razian, IEEE AICT 2014 (Fast-FMI)", ("FMI_dct",), min_size=3,
               planes_fn=_fmi_all("dct")),
    MetricInfo("fmi_wavelet", fmi.fmi_wavelet, _fmi("wavelet"), True, "[0, 1]",
               "Haghighat & Razian, IEEE AICT 2014 (Fast-FMI)", ("FMI_w",),
               min_size=3, planes_fn=_fmi_all("wavelet")),
    MetricInfo("fmi_gradient", fmi.fmi_gradient, _fmi("gradient"), True, "[0, 1]",
               "Haghighat & Razian, IEEE AICT 2014 (Fast-FMI)", ("FMI_gradient", "FMI_g"),
               min_size=3, planes_fn=_fmi_all("gradient")),
    MetricInfo("vif", viff.vif, lambda a, b, f, c: viff.vif_plane(a, b, f, c), True,
               "[0, inf), usually < 1", "Han et al., Information Fusion 14(2), 2013",
               ("VIF", "VIFF"), min_size=81),
    MetricInfo("scd", structural.scd, lambda a, b, f, c: structural.scd_plane(a, b, f, c),
               True, "[-2, 2]", "Aslantas & Bendes, AEU 69(12), 2015", ("SCD",)),
    MetricInfo("nabf", structural.nabf, lambda a, b, f, c: structural.nabf_plane(a, b, f, c),
               False, "[0, 1]", "Kumar, SIViP 7(6), 2013", ("Nabf", "N_abf"),
               min_size=2),
    MetricInfo("cc", structural.cc, lambda a, b, f, c: structural.cc_plane(a, b, f, c), True,
               "[-1, 1]", "Ma et al., Information Fusion 45, 2019", ("CC",)),
    MetricInfo("halo", halo, lambda a, b, f, c: halo_plane(a, b, f, c), False,
               "[0, inf), NaN without hot target", "this project (docs/metrics.md)",
               ("Halo",), min_size=3, kind="luma", default=False),
    MetricInfo("target_contrast", target_contrast,
               lambda a, b, f, c: target_contrast_plane(a, b, f, c), True,
               "about [-1, 2], 1 = kept, NaN without hot target",
               "this project (docs/metrics.md)", ("TCR",), min_size=3, kind="luma",
               default=False),
]

#: canonical name -> MetricInfo, in the default order: the 13 VIFB metrics (alphabetical by
#: their VIFB names), then FMI (pixel, dct, wavelet, gradient), VIF, SCD, Nabf, CC, and the
#: opt-in halo and target-contrast measures (Halo, TCR).
REGISTRY: dict[str, MetricInfo] = {m.name: m for m in _ENTRIES}

#: canonical names of the 13 VIFB metrics and of the metrics in reference_metrics_extra.csv
VIFB_METRICS: tuple[str, ...] = tuple(m.name for m in _ENTRIES[:13])
EXTRA_METRICS: tuple[str, ...] = ("fmi_pixel", "fmi_dct", "fmi_wavelet", "fmi_gradient",
                                  "vif", "scd", "nabf")
#: the metrics computed when no names are given (every registered metric but the opt-in ones)
DEFAULT_METRICS: tuple[str, ...] = tuple(m.name for m in _ENTRIES if m.default)
#: the halo and target-contrast measures (opt-in: ``metrics=TARGET_METRICS``)
TARGET_METRICS: tuple[str, ...] = ("halo", "target_contrast")

_LOOKUP: dict[str, MetricInfo] = {}
for _m in _ENTRIES:
    for _n in (_m.name, *_m.aliases):
        _key = _n.lower()
        assert _key not in _LOOKUP or _LOOKUP[_key] is _m, _n
        _LOOKUP[_key] = _m


def get_metric(name: str) -> MetricInfo:
    """The :class:`MetricInfo` of a canonical name or alias (case-insensitive)."""
    info = _LOOKUP.get(str(name).strip().lower())
    if info is None:
        raise InputError(
            f"unknown metric {name!r}; known: {', '.join(REGISTRY)} "
            "(aliases such as the VIFB names Avg_gradient, Mutinf, ... are accepted)"
        )
    return info


def list_metrics() -> list[MetricInfo]:
    """All registered metrics in the default order."""
    return list(REGISTRY.values())

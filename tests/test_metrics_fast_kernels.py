"""The fast metric kernels of issue 12 (evaluation speed) against the implementations they
replace: the windows-in-lanes Fast-FMI kernel (``hifm.metrics._fmi_lanes``) against the
one-window-at-a-time kernel ``hifm.metrics.fmi._fmi_map`` (its fast form and its literal
transcription of the reference code), its polynomial log2 against the C library, and the
reordered dmey ``dwt2`` against the previous row-by-row code (``tests/_metrics_reference``),
bit for bit; Qabf's and Nabf's edge maps against their array formulas, and their blocked
exponentials against the block size. Random windows,
windows built to hit every branch of the reference, and real images (the shipped TNO
samples, VIFB-dev when present). Also the compiled filters
(``hifm.metrics._filters``) against ``scipy.ndimage``, bit for bit, and the ``vifb``
protocol's single computation of a gray image stored as RGB against per-plane copies."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hifm.metrics import _fmi_lanes as lanes
from hifm.metrics import evaluate
from hifm.metrics import fmi as fmi_mod
from hifm.metrics._common import PlaneCache

from ._metrics_reference import dwt2_dmey_rows
from .conftest import DATA, SAMPLES


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def _tno(name: str = "07") -> tuple[np.ndarray, np.ndarray]:
    """(visible, infrared) planes of one shipped TNO pair, float64 0..255."""
    vi = _read(SAMPLES / "tno" / "vi" / f"{name}.png")
    ir = _read(SAMPLES / "tno" / "ir" / f"{name}.png")
    vi = vi[..., 0] if vi.ndim == 3 else vi
    ir = ir[..., 0] if ir.ndim == 3 else ir
    return vi.astype(np.float64), ir.astype(np.float64)


def _awkward(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature maps full of the reference's special cases: ties between CDF values, constant
    windows, a == f and b == f windows (raw and after normalisation), zeros, negatively
    correlated windows (the W bound) and a wide range of magnitudes."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 4, (34, 37)).astype(float)
    b = rng.random((34, 37))
    f = a.copy()
    f[10:20] = rng.integers(0, 4, (10, 37))
    f[:, :5] = 7.0
    b[:, 30:] = 7.0
    f[22:28] = a.max() - a[22:28]  # reversed pdfs: negative correlation
    b[24:30, 5:15] = (f[24:30, 5:15] - f[24:30, 5:15].min()) / np.ptp(f[24:30, 5:15])
    a[28:32] = rng.normal(0, 1, (4, 37)) * 10.0 ** rng.integers(-8, 8, (4, 37))
    return a, b, f


def test_log2_matches_libm() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.random(20000), 1 + rng.normal(0, 1e-12, 1000) ** 2,
                        rng.random(2000) * 10.0 ** rng.integers(-300, 300, 2000),
                        [1.0, 2.0, 0.5, math.sqrt(2), math.nextafter(1, 0), math.nextafter(1, 2),
                         5e-324, 1e-310, 2.2250738585072014e-308, 1.7e308]])
    out = np.empty_like(x)
    lanes.log2_lanes(x, out)
    ref = np.log2(x)
    err = np.abs(out - ref) / np.maximum(1.0, np.abs(ref))
    assert err.max() < 4 * 2.0 ** -52


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_lanes_kernel_matches_window_kernel(seed: int) -> None:
    a, b, f = _awkward(seed)
    new = lanes.fmi_map3(a, b, f)
    old = fmi_mod._fmi_map(a, b, f, 3, False)
    lit = fmi_mod._fmi_map(a, b, f, 3, True)
    # the windows mixing magnitudes 1e-8..1e8 are ill-conditioned: the old kernel differs
    # from the literal one by up to 6e-13 there, the new one by as much
    np.testing.assert_allclose(new, old, rtol=0, atol=2e-12)
    np.testing.assert_allclose(new, lit, rtol=0, atol=2e-12)
    assert np.array_equal(new == 1.0, lit == 1.0)  # the shortcuts are taken alike
    # continuous random feature maps, widths that leave a partial last run of lanes
    rng = np.random.default_rng(seed + 10)
    for shape in ((5, 3), (9, lanes.LANES + 2), (7, 2 * lanes.LANES + 7)):
        x, y, z = (rng.normal(size=shape) for _ in range(3))
        np.testing.assert_allclose(lanes.fmi_map3(x, y, z), fmi_mod._fmi_map(x, y, z, 3, True),
                                   rtol=0, atol=1e-14)


def test_lanes_kernel_on_real_features() -> None:
    vi, ir = _tno("07")
    fused = np.round(0.5 * vi + 0.5 * ir)
    for feat in fmi_mod.FEATURES:
        fa, fb, ff = (fmi_mod.fmi_features(x, feat) for x in (vi, ir, fused))
        new = lanes.fmi_map3(fa, fb, ff)
        old = fmi_mod._fmi_map(fa, fb, ff, 3, False)
        np.testing.assert_allclose(new, old, rtol=0, atol=1e-12, err_msg=feat)
        assert abs(new.mean() - old.mean()) <= 1e-14 * old.mean(), feat


def test_planes_share_the_second_source() -> None:
    rng = np.random.default_rng(4)
    vi, ir = _tno("11")
    h, w = 60, 90
    a = np.stack([vi[:h, :w] * s for s in (0.9, 1.0, 1.1)])
    f = np.stack([np.round(0.5 * a[k] + 0.5 * ir[:h, :w] + rng.normal(0, 2, (h, w)))
                  for k in range(3)])
    maps = lanes.fmi_maps3(a, ir[:h, :w].copy(), f)
    for k in range(3):
        assert np.array_equal(maps[k], lanes.fmi_map3(a[k], ir[:h, :w], f[k]))
    b = ir[:h, :w]
    triples = [(a[k], b, f[k]) for k in range(3)]
    together = fmi_mod.fmi_planes(triples, "dct")
    one_by_one = [fmi_mod.fmi_plane(a[k], b.copy(), f[k], "dct") for k in range(3)]
    assert together == one_by_one
    # other windows use the one-window kernel
    assert fmi_mod.fmi_plane(a[0], b, f[0], "none", window=5) == pytest.approx(
        float(np.mean(fmi_mod._fmi_map(a[0], b, f[0], 5))), rel=1e-15)
    with pytest.raises(ValueError, match="odd"):
        fmi_mod.fmi_plane(a[0], b, f[0], "none", window=4)


def test_dwt2_same_bits_as_row_by_row_code() -> None:
    rng = np.random.default_rng(5)
    vi, _ = _tno("05")
    flat = np.full((40, 60), 252.0)  # the rounding noise of flat areas must not change
    flat[10:20, 10:30] = 17.0
    for x in (rng.random((37, 150)) * 255, rng.random((3, 4)), flat, vi):
        for new, old in zip(fmi_mod.dwt2_dmey(x), dwt2_dmey_rows(x)):
            assert new.shape == old.shape
            assert np.array_equal(new, old)


def _colour_triple() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fused RGB, visible RGB, infrared) float64: a crop of VIFB's labMan/ADF when VIFB-dev is
    present, else a colour triple made from a shipped TNO pair (a fresh clone)."""
    root = DATA / "vifb-dev"
    if (root / "vi" / "labMan.jpg").is_file():
        f, a, b = (_read(p).astype(np.float64) for p in
                   (root / "fused" / "ADF" / "labMan.jpg", root / "vi" / "labMan.jpg",
                    root / "ir" / "labMan.jpg"))
        crop = (slice(150, 330), slice(200, 460))
        return f[crop], a[crop], b[crop][..., 0]
    vi, ir = _tno("25")
    vi, ir = vi[100:280, 150:410], ir[100:280, 150:410]
    a = np.clip(np.round(vi[..., None] * np.array([0.8, 1.0, 1.15])), 0, 255)
    f = np.round(0.5 * a + 0.5 * ir[..., None])
    return f, a, ir


def test_fmi_metrics_through_evaluate_as_before() -> None:
    """The four FMI values of a colour triple through ``evaluate`` (three colour planes
    sharing the infrared plane) against the one-window kernel per plane."""
    f, a, b = _colour_triple()
    names = {"none": "fmi_pixel", "dct": "fmi_dct", "wavelet": "fmi_wavelet",
             "gradient": "fmi_gradient"}
    got = evaluate(f, a, b, metrics=list(names.values()))
    for feat, name in names.items():
        old = np.mean([np.mean(fmi_mod._fmi_map(*(fmi_mod.fmi_features(
            np.ascontiguousarray(x), feat) for x in (a[..., k], b, f[..., k])), 3, False))
            for k in range(3)])
        assert got[name] == pytest.approx(old, rel=1e-13, abs=0), name


def test_qcb_qcv_real_ffts_match_complex_form() -> None:
    from hifm.metrics import qcb_qcv

    from ._metrics_reference import qcb_plane_complex, qcv_plane_complex

    rng = np.random.default_rng(6)
    vi, ir = _tno("13")
    h, w = 150, 201  # an odd width: the half spectrum has no Nyquist column
    cases = [(vi[:h, :w], ir[:h, :w], np.round(0.6 * vi[:h, :w] + 0.4 * ir[:h, :w])),
             (vi, ir, np.clip(np.round(0.5 * vi + 0.5 * ir + rng.normal(0, 3, vi.shape)), 0, 255)),
             tuple(rng.random((64, 80)) * 255 for _ in range(3))]
    # measured: 1.6e-13 (Qcb of the crop: a few pixels where the Gaussian-filtered contrast
    # is near zero, which the complex form's imaginary rounding noise moves), else < 4e-16
    for a, b, f in cases:
        assert qcb_qcv.qcb_plane(a, b, f) == pytest.approx(qcb_plane_complex(a, b, f), rel=1e-12, abs=0)
        assert qcb_qcv.qcv_plane(a, b, f) == pytest.approx(qcv_plane_complex(a, b, f), rel=1e-14, abs=0)
        # as in evaluate: Qcv filters differences of the spectra Qcb cached, not the difference image
        cache = PlaneCache()
        want_cv = qcv_plane_complex(a, b, f)
        assert qcb_qcv.qcb_plane(a, b, f, cache) == pytest.approx(qcb_plane_complex(a, b, f), rel=1e-12, abs=0)
        assert cache.get("qc_spectrum", f, lambda _: None) is not None
        assert qcb_qcv.qcv_plane(a, b, f, cache) == pytest.approx(want_cv, rel=1e-14, abs=0)


def test_edge_metrics_do_not_depend_on_the_row_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """Qabf and Nabf evaluate their exponentials in blocks of rows: every block size, one row,
    one that does not divide the height, the default and more rows than the image, gives the
    same bits (the per-row sums do not depend on the blocks)."""
    from hifm.metrics import structural as st

    vi, ir = _tno("05")
    a, b = vi[:70, :90], ir[:70, :90]
    f = np.round(0.5 * a + 0.5 * b)
    want = (st.qabf_plane(a, b, f), st.nabf_plane(a, b, f))
    assert 70 > st._ROW_BLOCK and 70 % st._ROW_BLOCK != 0  # the default splits these planes
    for rows in (1, 9, 1000):
        monkeypatch.setattr(st, "_ROW_BLOCK", rows)
        assert (st.qabf_plane(a, b, f), st.nabf_plane(a, b, f)) == want, rows


# ----------------------------------------------------------------- compiled filters
def _filter_images() -> list[np.ndarray]:
    """A real plane, its square (large values), random noise of odd sizes, a tiny image."""
    rng = np.random.default_rng(11)
    vi, _ = _tno("07")
    return [vi, vi[:61, :47] ** 2, rng.random((37, 53)) * 255.0,
            rng.normal(0.0, 1.0, (12, 9)), rng.random((3, 4))]


def test_separable_filters_same_bits_as_scipy() -> None:
    """``sep_symmetric_valid`` / ``sep_symmetric_same_zero`` against SciPy's
    ``correlate1d`` along axis 0 then axis 1 (zero padding), cropped: equal arrays."""
    from scipy import ndimage

    from hifm.metrics import _filters
    from hifm.metrics._common import gaussian_window

    windows = [gaussian_window(11, 1.5), gaussian_window(33, 33 / 5.0), gaussian_window(5, 1.0),
               np.exp(-np.arange(-15.0, 16.0) ** 2 / 8.0) / 5.0, np.array([0.5])]
    checked = 0
    for img in _filter_images():
        for g in windows:
            h = g.size // 2
            full = ndimage.correlate1d(ndimage.correlate1d(img, g, axis=0, mode="constant"),
                                       g, axis=1, mode="constant")
            np.testing.assert_array_equal(_filters.sep_symmetric_same_zero(img, g), full)
            if min(img.shape) < g.size:
                assert _filters.sep_symmetric_valid(img, g).size == 0
                continue
            valid = full[h:img.shape[0] - h, h:img.shape[1] - h]
            np.testing.assert_array_equal(_filters.sep_symmetric_valid(img, g), valid)
            np.testing.assert_array_equal(_filters.sep_symmetric_valid(img, g, 2), valid[::2])
            checked += 1
    assert checked >= 10
    with pytest.raises(ValueError):
        _filters.sep_symmetric_valid(np.ones((9, 9)), np.array([0.2, 0.3, 0.5]))


@pytest.mark.parametrize("mode", ["constant", "mirror", "nearest"])
def test_3x3_filters_same_bits_as_scipy(mode: str) -> None:
    """``correlate3x3`` / ``convolve3x3`` against ``ndimage.correlate`` / ``convolve``:
    the metrics' Sobel kernels and random kernels with zeros, equal arrays."""
    from scipy import ndimage

    from hifm.metrics import _filters

    rng = np.random.default_rng(12)
    sobel = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    holes = rng.standard_normal((3, 3))
    holes[rng.random((3, 3)) < 0.4] = 0.0
    for img in _filter_images():
        for k in (sobel, sobel.T / 8.0, rng.standard_normal((3, 3)), holes):
            np.testing.assert_array_equal(_filters.correlate3x3(img, k, mode),
                                          ndimage.correlate(img, k, mode=mode))
            np.testing.assert_array_equal(_filters.convolve3x3(img, k, mode),
                                          ndimage.convolve(img, k, mode=mode))


def test_gray_rgb_triple_computed_once_same_values() -> None:
    """A gray image stored as RGB (fused and visible): every per-plane metric is computed on
    one plane triple and averaged over the three planes; the values equal the mean of the
    per-plane kernel evaluated on each of three separate copies (the computation before)."""
    from hifm.metrics import DEFAULT_METRICS, get_metric
    from hifm.metrics._common import PlaneCache

    vi, ir = _tno("07")
    vi, ir = vi[:90, :120], ir[:90, :120]
    fu = np.round(0.5 * vi + 0.5 * ir)
    rgb = lambda x: np.repeat(x.astype(np.uint8)[..., None], 3, axis=2)  # noqa: E731
    colour = np.stack([vi, np.round(0.8 * vi), np.round(0.6 * vi + 20)], axis=2)
    cases = [(rgb(vi), [vi.copy() for _ in range(3)]),  # distinct objects per plane
             (colour.astype(np.uint8), [colour[..., k].copy() for k in range(3)])]
    for vis, vplanes in cases:  # a gray visible, then a colour one (three values)
        got = evaluate(rgb(fu), vis, ir.astype(np.uint8))
        cache = PlaneCache()
        for name in DEFAULT_METRICS:
            info = get_metric(name)
            if info.kind != "mean":
                continue
            with np.errstate(all="ignore"):
                want = float(np.mean([info.plane_fn(a, ir, fu.copy(), cache) for a in vplanes]))
            assert got[name] == want or (np.isnan(want) and np.isnan(got[name])), name


def test_edge_strength_and_angle_pass_equals_array_formulas() -> None:
    """Qabf's and Nabf's edge maps (one compiled pass) against the NumPy formulas they
    replace: the strength bit for bit, the angle to the last bit of ``atan`` (NumPy may use
    its own SIMD ``arctan``), including the zero-derivative rules (gx = 0: π/2 for Qabf; gx = gy
    = 0: 0 for Nabf, ±π/2 where only gx = 0)."""
    from hifm.metrics import structural as st
    from hifm.metrics._common import convolve_same_zero
    from hifm.metrics._filters import correlate3x3

    rng = np.random.default_rng(5)
    img = np.round(rng.random((40, 53)) * 3) / 255.0  # small integer steps: many zero derivatives
    img[:10] = 0.4  # flat band: gx = gy = 0
    img[10:20, :] = np.arange(10)[:, None] / 255.0  # constant along rows: gx = 0, gy != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        p = img * 255.0
        sx, sy = convolve_same_zero(p, st._QABF_SX), convolve_same_zero(p, st._QABF_SY)
        q_alpha = np.arctan(sy / sx)
        q_alpha[sx == 0] = math.pi / 2.0
        gv, gh = correlate3x3(img, st._NABF_V, "mirror"), correlate3x3(img, st._NABF_H, "mirror")
        n_alpha = np.arctan(gv / gh)
        n_alpha[(gv == 0) & (gh == 0)] = 0.0
    cases = [(st._qabf_edges(img), np.sqrt(sx * sx + sy * sy), q_alpha),
             (st._nabf_edges(img), np.sqrt(gv * gv + gh * gh), n_alpha)]
    for (g, alpha), g_ref, a_ref in cases:
        np.testing.assert_array_equal(g, g_ref)
        np.testing.assert_allclose(alpha, a_ref, rtol=4e-16, atol=0)
    assert ((sx == 0) & (sy != 0)).any() and ((gh == 0) & (gv != 0)).any() and ((gh == 0) & (gv == 0)).any()


def test_compiled_gradient_equals_numpy_gradient() -> None:
    """MATLAB-style gradients (FMI's gradient feature, AG) from the compiled central
    differences: NumPy's ``gradient`` bit for bit along both axes, also for two columns or
    rows, a non-contiguous view and a float32 image (which takes NumPy's own code)."""
    from hifm.metrics._common import matlab_gradient, matlab_gradient_x

    rng = np.random.default_rng(12)
    vi, _ = _tno("07")
    cases = [vi, rng.random((37, 53)) * 255.0, rng.random((2, 9)), rng.random((9, 2)),
             vi[::2, 1::3], (rng.random((11, 13)) * 255).astype(np.float32)]
    for img in cases:
        gx, gy = matlab_gradient(img)
        assert gx.dtype == np.gradient(img, axis=1).dtype
        assert np.array_equal(gx, np.gradient(img, axis=1)), img.shape
        assert np.array_equal(gy, np.gradient(img, axis=0)), img.shape
        assert np.array_equal(matlab_gradient_x(img), gx)
    one_col = rng.random((5, 1))
    assert not matlab_gradient_x(one_col).any() and not matlab_gradient(rng.random((1, 5)))[1].any()

"""Properties of hifm.metrics that hold without reference data: identical inputs, constant
and tiny images, input validation, protocols, registry, and the fast kernels against their
plain reference forms or independent implementations."""

from __future__ import annotations

import math

import numpy as np
import pytest

import hifm.metrics as M
from hifm.metrics import evaluate, get_metric, list_metrics
from hifm.metrics import fmi as fmi_mod
from hifm.metrics._common import round_half_away

F_ONLY = ("average_gradient", "edge_intensity", "entropy", "spatial_frequency",
          "standard_deviation")


def _scene(h: int = 96, w: int = 112, seed: int = 0) -> tuple[np.ndarray, ...]:
    """A smooth random uint8 triple (fused RGB, visible RGB, infrared gray)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 120 + 60 * np.sin(xx / 9.0) * np.cos(yy / 13.0)
    ir = np.clip(base + rng.normal(0, 12, (h, w)), 0, 255).astype(np.uint8)
    vis = np.clip(base[..., None] * np.array([0.8, 1.0, 1.1])
                  + rng.normal(0, 15, (h, w, 3)), 0, 255).astype(np.uint8)
    fused = ((vis.astype(np.float64) + ir[..., None]) / 2).round().astype(np.uint8)
    return fused, vis, ir


# --------------------------------------------------------------------------- registry
def test_registry_complete() -> None:
    names = [m.name for m in list_metrics()]
    assert len(names) == 23 == len(set(names))
    assert list(M.DEFAULT_METRICS) == names[:21]  # the opt-in halo measures come last
    assert list(M.VIFB_METRICS)[:3] == ["average_gradient", "cross_entropy", "edge_intensity"]
    for m in list_metrics():
        assert m.func.__doc__ and "Source" in m.func.__doc__ and "better" in m.func.__doc__
        assert getattr(M, m.name) is m.func
        assert m.direction in ("higher", "lower")
    lower = {m.name for m in list_metrics() if not m.higher_is_better}
    assert lower == {"cross_entropy", "qcv", "rmse", "nabf", "halo"}


@pytest.mark.parametrize("alias,name", [
    ("Mutinf", "mutual_information"), ("Variance", "standard_deviation"), ("FMI_w", "fmi_wavelet"),
    ("fmi_pixel", "fmi_pixel"), ("psnr", "psnr"), ("VIFF", "vif"), ("Nabf", "nabf"),
    ("avg_gradient", "average_gradient"), (" SSIM ", "ssim"),
])
def test_aliases(alias: str, name: str) -> None:
    assert get_metric(alias).name == name


def test_unknown_metric() -> None:
    f, a, b = _scene()
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate(f, a, b, metrics=["nope"])


def test_evaluate_keys_and_dedup() -> None:
    f, a, b = _scene()
    out = evaluate(f, a, b, metrics=["Psnr", "psnr", "Ssim"])
    assert list(out) == ["Psnr", "psnr", "Ssim"]
    assert out["Psnr"] == out["psnr"] == M.psnr(f, a, b)
    assert all(isinstance(v, float) for v in out.values())
    assert list(evaluate(f, metrics="entropy")) == ["entropy"]


# --------------------------------------------------------------------------- identical inputs
def test_identical_inputs() -> None:
    _, vis, _ = _scene()
    g = vis[..., 1]
    v = evaluate(g, g, g, protocol="gray")
    assert v["psnr"] == math.inf
    assert v["rmse"] == 0.0
    assert v["cross_entropy"] == 0.0
    assert v["ssim"] == pytest.approx(2.0, abs=1e-12)
    assert v["cc"] == pytest.approx(1.0, abs=1e-12)
    assert v["qcb"] == pytest.approx(1.0, abs=1e-12)
    assert v["qcv"] == pytest.approx(0.0, abs=1e-9)
    assert v["nabf"] == 0.0
    for k in ("fmi_pixel", "fmi_dct", "fmi_wavelet", "fmi_gradient"):
        assert v[k] == 1.0, k
    assert v["mutual_information"] == pytest.approx(2 * _entropy_nats(g), rel=1e-12)
    assert v["vif"] == pytest.approx(1.0, abs=1e-11)  # measured 8.2e-13
    assert math.isnan(v["scd"])  # F - B is constant: correlation undefined, as in corr2
    # identical to one source only: finite, except SCD (F - A = 0 has no correlation)
    f, a, b = _scene()
    w = evaluate(a, a, b)
    assert math.isnan(w.pop("scd"))
    assert all(math.isfinite(x) for x in w.values())


def _entropy_nats(x: np.ndarray) -> float:
    q = round_half_away((x - x.min()) / (x.max() - x.min()) * 255.0).astype(int)
    p = np.bincount(q.ravel(), minlength=256) / q.size
    p = p[p > 0]
    return float(-np.sum(p * np.log(p)))


def test_symmetric_in_sources() -> None:
    f, a, b = _scene()
    g = a[..., 0]
    for name in ("cross_entropy", "mutual_information", "psnr", "rmse", "ssim", "qabf", "qcb",
                 "qcv", "vif", "scd", "nabf", "cc"):
        x = M.REGISTRY[name].func(f[..., 0], g, b, protocol="gray")
        y = M.REGISTRY[name].func(f[..., 0], b, g, protocol="gray")
        assert x == pytest.approx(y, rel=1e-12, abs=1e-15), name


# --------------------------------------------------------------------------- constant & tiny
def test_constant_images() -> None:
    c = np.full((40, 50), 77, np.uint8)
    v = evaluate(c, c, c, metrics=list(M.REGISTRY)[:13] + ["fmi_pixel", "scd", "nabf", "cc"],
                 protocol="gray")
    for k in F_ONLY:
        assert v[k] == 0.0, k
    assert v["fmi_pixel"] == 1.0
    assert v["nabf"] == 0.0
    # constant fused image with textured sources: finite where the reference is defined
    f, a, b = _scene()
    w = evaluate(np.full_like(f, 128), a, b)
    for k in F_ONLY:
        assert w[k] == 0.0, k
    assert math.isnan(w["cc"])
    for k in ("psnr", "rmse", "ssim", "qabf", "fmi_pixel", "fmi_dct", "vif", "nabf"):
        assert math.isfinite(w[k]), k


def test_minimum_sizes() -> None:
    rng = np.random.default_rng(3)
    for info in list_metrics():
        s = info.min_size
        img = rng.integers(0, 256, (s, s + 1), dtype=np.uint8)
        assert isinstance(info.func(img, img[::-1], 255 - img, protocol="gray"), float)
        if s > 1:
            small = img[: s - 1]
            with pytest.raises(ValueError, match="at least"):
                info.func(small, small, small, protocol="gray")


def test_tiny_image_f_only() -> None:
    px = np.array([[5]], np.uint8)
    assert M.entropy(px) == 0.0
    assert M.standard_deviation(px) == 0.0
    assert M.spatial_frequency(px) == 0.0


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize("bad,match", [
    (np.full((20, 20), np.nan), "NaN"),
    (np.full((20, 20), np.inf), "NaN or infinite"),
    (np.zeros((0, 20), np.uint8), "empty"),
    (np.zeros(20, np.uint8), "2-D"),
    (np.zeros((20, 20), bool), "dtype"),
    (np.zeros((20, 20), complex), "dtype"),
    (np.zeros((20, 20), object), "dtype"),
    (np.zeros((20, 20, 4), np.uint8), "channels"),
    (np.full((20, 20), 300, np.int32), "0..255"),
    (np.zeros((20, 20, 3, 2), np.uint8), "2-D"),
])
def test_invalid_input(bad: np.ndarray, match: str) -> None:
    good = np.zeros((20, 20), np.uint8)
    with pytest.raises(ValueError, match=match):
        evaluate(bad, good, good, metrics=["psnr"])
    with pytest.raises(ValueError, match=match):
        evaluate(good, good, bad, metrics=["psnr"])


def test_mismatched_sizes() -> None:
    f, a, b = _scene()
    with pytest.raises(ValueError, match="size mismatch"):
        evaluate(f, a[:-1], b)
    with pytest.raises(ValueError, match="size mismatch"):
        M.qabf(f, a, b[:, :-2])


def test_missing_sources() -> None:
    f, _, _ = _scene()
    assert M.entropy(f) > 0
    with pytest.raises(ValueError, match="both source"):
        evaluate(f, metrics=["qabf"])


def test_bad_protocol() -> None:
    f, a, b = _scene()
    with pytest.raises(ValueError, match="protocol"):
        evaluate(f, a, b, protocol="rgb")


def test_unit_range_warning() -> None:
    f, a, b = _scene()
    with pytest.warns(UserWarning, match="0..255"):
        evaluate(f / 255.0, a / 255.0, b / 255.0, metrics=["entropy"])


# --------------------------------------------------------------------------- protocols
def test_vifb_protocol_per_plane_mean() -> None:
    f, a, b = _scene()
    ours = M.qabf(f, a, b)
    planes = [M.qabf(f[..., k], a[..., k], b, protocol="gray") for k in range(3)]
    assert ours == pytest.approx(np.mean(planes), rel=1e-14)
    # IR as RGB with equal planes is the same as the single plane
    b3 = np.repeat(b[..., None], 3, axis=2)
    assert M.qabf(f, a, b3) == ours
    # SF: the three planes side by side
    sf = M.spatial_frequency(f)
    assert sf == pytest.approx(M.spatial_frequency(np.hstack([f[..., k] for k in range(3)])))
    assert sf != pytest.approx(np.mean([M.spatial_frequency(f[..., k]) for k in range(3)]),
                               rel=1e-9)


def test_gray_protocol() -> None:
    f, a, b = _scene()
    gf, ga = M.rgb2gray_matlab(f), M.rgb2gray_matlab(a)
    assert np.all(gf == np.round(gf))  # uint8 input: rounded
    assert M.ssim(f, a, b, protocol="gray") == M.ssim(gf, ga, b, protocol="gray")
    # a single-plane fused image under vifb is VIFB's gray branch: the gray protocol
    assert M.ssim(gf.astype(np.uint8), a, b) == M.ssim(f, a, b, protocol="gray")
    w = M.rgb2gray_matlab(np.array([[[10.0, 20.0, 30.0]]]))
    assert w[0, 0] == pytest.approx(0.298936021293775 * 10 + 0.587043074451121 * 20
                                    + 0.114020904255103 * 30, rel=1e-15)


def test_dtype_equivalence() -> None:
    f, a, b = _scene()
    x = evaluate(f, a, b, metrics=["qcb", "vif", "mutual_information"])
    y = evaluate(f.astype(np.float32), a.astype(np.int16), b.astype(np.float64),
                 metrics=["qcb", "vif", "mutual_information"])
    assert x == y


# --------------------------------------------------------------------------- independent checks
def test_ssim_matches_scikit_image() -> None:
    skm = pytest.importorskip("skimage.metrics")
    f, a, b = _scene()
    x, y = f[..., 1].astype(float), a[..., 1].astype(float)
    ref = sum(skm.structural_similarity(s, x, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False, data_range=255)
              for s in (y, b.astype(float)))
    assert M.ssim(x, y, b, protocol="gray") == pytest.approx(ref, rel=1e-10)


def test_entropy_and_mi_direct() -> None:
    f, a, b = _scene()
    x = f[..., 0]
    p = np.bincount(x.ravel(), minlength=256) / x.size
    p = p[p > 0]
    assert M.entropy(x) == pytest.approx(-np.sum(p * np.log2(p)), rel=1e-13)

    def mi(u: np.ndarray, v: np.ndarray) -> float:
        qu = round_half_away((u - u.min()) / (u.max() - u.min()) * 255).astype(int)
        qv = round_half_away((v - v.min()) / (v.max() - v.min()) * 255).astype(int)
        j, _, _ = np.histogram2d(qu.ravel(), qv.ravel(), bins=256, range=[[0, 256], [0, 256]])
        j /= j.sum()
        pu, pv = j.sum(1), j.sum(0)
        nz = j > 0
        return float(np.sum(j[nz] * np.log(j[nz] / np.outer(pu, pv)[nz])))

    g = a[..., 0].astype(float)
    expect = mi(g, x.astype(float)) + mi(b.astype(float), x.astype(float))
    assert M.mutual_information(x, g, b, protocol="gray") == pytest.approx(expect, rel=1e-10)


def test_round_half_away() -> None:
    x = np.array([0.5, 1.5, 2.5, -0.5, -2.5, 0.49999999999999994, 254.5])
    assert list(round_half_away(x)) == [1, 2, 3, -1, -3, 0, 255]


def test_dwt2_matches_pywavelets_with_matlab_filters() -> None:
    pywt = pytest.importorskip("pywt")
    lo, hi = fmi_mod._DMEY_LO_D, fmi_mod._DMEY_HI_D
    assert lo.size == 102 and hi.size == 102
    assert np.sum(lo) == pytest.approx(math.sqrt(2), rel=1e-14)
    wav = pywt.Wavelet("matlab_dmey", filter_bank=[lo, hi, lo[::-1], hi[::-1]])
    x = np.random.default_rng(5).random((37, 150)) * 255  # shorter than the filter on one axis
    ca, (ch, cv, cd) = pywt.dwt2(x, wav, mode="symmetric")
    for ours, ref in zip(fmi_mod.dwt2_dmey(x), (ca, ch, cv, cd)):
        assert ours.shape == ref.shape == ((37 + 101) // 2, (150 + 101) // 2)
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10)


def _window_batch(seed: int) -> tuple[np.ndarray, ...]:
    """Feature maps full of the awkward cases: ties, constant and equal windows, zeros."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 4, (30, 33)).astype(float)
    b = rng.random((30, 33))
    f = a.copy()
    f[10:20] = rng.integers(0, 4, (10, 33))
    f[:, :5] = 7.0
    b[:, 28:] = 7.0
    return a, b, f


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fmi_fast_kernel_matches_reference_kernel(seed: int) -> None:
    a, b, f = _window_batch(seed)
    fast = fmi_mod._fmi_map(a, b, f, 3, False)
    ref = fmi_mod._fmi_map(a, b, f, 3, True)
    np.testing.assert_allclose(fast, ref, rtol=1e-12, atol=1e-13)
    f2, a2, b2 = (x.astype(float) for x in _scene(40, 45, seed))
    for feat in fmi_mod.FEATURES:
        fa, fb, ff = (fmi_mod.fmi_features(x, feat) for x in (a2[..., 0], b2, f2[..., 0]))
        np.testing.assert_allclose(fmi_mod._fmi_map(fa, fb, ff, 3, False),
                                   fmi_mod._fmi_map(fa, fb, ff, 3, True), rtol=1e-11,
                                   atol=1e-13)


def test_fmi_features() -> None:
    sfft = pytest.importorskip("scipy.fft")
    x = np.arange(20.0).reshape(4, 5) ** 1.5
    np.testing.assert_allclose(fmi_mod.fmi_features(x, "dct"), sfft.dctn(x, norm="ortho"))
    g = fmi_mod.fmi_features(x, "gradient")
    assert g[0, 0] == x[0, 1] - x[0, 0] and g[0, 2] == (x[0, 3] - x[0, 1]) / 2
    w = fmi_mod.fmi_features(x, "wavelet")
    assert w.min() == 0.0 and w.max() == 1.0
    with pytest.raises(ValueError, match="feature"):
        fmi_mod.fmi_features(x, "edge")

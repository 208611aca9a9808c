"""Known answers for every fusion metric without the reference data.

The conformance tests (tests/test_metrics_conformance.py) compare hifm.metrics with VIFB's and
the other reference implementations' stored values, but they need ``../shared/data``.  Here
each metric is compared, on small planes, with a direct transcription of its definition in
/work/shared/metric-spec.md (written from the specification, not from hifm's code: plain
loops, NumPy, and SciPy/PyWavelets for filtering and transforms).  Entropy, mutual
information and SSIM have their independent checks in tests/test_metrics_properties.py;
they are repeated here so that this file covers all 21 metrics.

Planes are float64 on the 0..255 scale, A = visible, B = infrared, F = fused, called with
``protocol="gray"`` (one plane each).  They contain the cases the references treat
specially: flat patches, F equal to A or to B on a patch (Qabf's gA == gF rule, FMI's
shortcut and its "fSub" quirk), saturated values.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import fft as sfft
from scipy import signal

import hifm.metrics as M

LOG2 = np.log2


# ----------------------------------------------------------------------------- planes


def planes(h: int, w: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer-valued (A, B, F) in 0..255 with structure, flat patches and shared patches."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    a = 120 + 70 * np.sin(xx / 2.5 + seed) * np.cos(yy / 3.5) + rng.normal(0, 12, (h, w))
    b = 90 + 100 * np.exp(-((xx - 0.6 * w) ** 2 + (yy - 0.4 * h) ** 2) / (0.1 * h * w)) + rng.normal(0, 8, (h, w))
    f = 0.5 * (a + b) + rng.normal(0, 6, (h, w))
    a, b, f = (np.clip(np.round(x), 0, 255) for x in (a, b, f))
    a[: h // 4, : w // 4] = 200.0  # a flat patch
    b[-3:, -4:] = 255.0  # saturated
    f[h // 2 : h // 2 + 4, 1:6] = a[h // 2 : h // 2 + 4, 1:6]  # F = A here
    f[1:5, w // 2 : w // 2 + 5] = b[1:5, w // 2 : w // 2 + 5]  # F = B here
    return a, b, f


SMALL = planes(13, 17, 0)
MEDIUM = planes(34, 41, 1)  # two 16×16 blocks and a padded one for Qcv
LARGE = planes(84, 90, 2)  # VIF's four scales need ≥ 81 pixels


def call(name: str, a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    return float(M.REGISTRY[name].func(f, a, b, protocol="gray"))


# ----------------------------------------------------------------------------- helpers


def matlab_gradient(x: np.ndarray, axis: int) -> np.ndarray:
    """MATLAB gradient along ``axis``: central differences inside, one-sided at both ends."""
    x = np.moveaxis(x, axis, -1)
    g = np.empty_like(x)
    n = x.shape[-1]
    for j in range(n):
        if j == 0:
            g[..., j] = x[..., 1] - x[..., 0]
        elif j == n - 1:
            g[..., j] = x[..., n - 1] - x[..., n - 2]
        else:
            g[..., j] = (x[..., j + 1] - x[..., j - 1]) / 2
    return np.moveaxis(g, -1, axis)


def correlate_same(x: np.ndarray, k: np.ndarray, pad: str) -> np.ndarray:
    """out[i, j] = Σ_{u,v} k[u, v] · x_padded[i + u, j + v] for a 3×3 k, padding by one pixel."""
    xp = np.pad(x, 1, mode=pad) if pad != "zero" else np.pad(x, 1)
    h, w = x.shape
    out = np.zeros((h, w), dtype=np.result_type(x, k))
    for u in range(3):
        for v in range(3):
            out += k[u, v] * xp[u : u + h, v : v + w]
    return out


def convolve_same_zero(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """True 2-D convolution (kernel flipped), zero padding, 'same' size, 3×3 kernel."""
    return correlate_same(x, k[::-1, ::-1], "zero")


def hist_prob(x: np.ndarray) -> np.ndarray:
    return np.bincount(x.astype(int).ravel(), minlength=256) / x.size


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    dx, dy = x - x.mean(), y - y.mean()
    return float(np.sum(dx * dy) / math.sqrt(np.sum(dx * dx) * np.sum(dy * dy)))


def round_half_away(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def normalise1(x: np.ndarray) -> np.ndarray:
    """round_half_away((x − min)/(max − min)·255)."""
    return round_half_away((x - x.min()) / (x.max() - x.min()) * 255)


def csf_grid(shape: tuple[int, int], scale: float) -> np.ndarray:
    """r = √(u² + v²) on MATLAB's freqspace grid, f = (i − ⌊n/2⌋)·2/n, u·N/scale, v·M/scale."""
    m, n = shape
    fu = (np.arange(n) - n // 2) * 2.0 / n * n / scale
    fv = (np.arange(m) - m // 2) * 2.0 / m * m / scale
    u, v = np.meshgrid(fu, fv)
    return np.sqrt(u * u + v * v)


def filter_centered(x: np.ndarray, response: np.ndarray) -> np.ndarray:
    """ifft2(ifftshift(fftshift(fft2(x)) · response)) (complex)."""
    return np.fft.ifft2(np.fft.ifftshift(np.fft.fftshift(np.fft.fft2(x)) * response))


# ----------------------------------------------------------------------------- definitions


def average_gradient(f: np.ndarray) -> float:
    gx, gy = matlab_gradient(f, 1), matlab_gradient(f, 0)
    m, n = f.shape
    return float(np.sum(np.sqrt((gx**2 + gy**2) / 2)) / ((m - 1) * (n - 1)))


def edge_intensity(f: np.ndarray) -> float:
    s = np.array([[1.0, 2, 1], [0, 0, 0], [-1, -2, -1]])
    gx = correlate_same(f, s, "edge")
    gy = correlate_same(f, s.T, "edge")
    return float(np.mean(np.sqrt(gx**2 + gy**2)))


def spatial_frequency(f: np.ndarray) -> float:
    m, n = f.shape
    rf = sum((f[i, j] - f[i, j - 1]) ** 2 for i in range(m) for j in range(1, n)) / (m * n)
    cf = sum((f[i, j] - f[i - 1, j]) ** 2 for j in range(n) for i in range(1, m)) / (m * n)
    return math.sqrt(rf + cf)


def standard_deviation(f: np.ndarray) -> float:
    return math.sqrt(np.sum((f - f.mean()) ** 2) / f.size)


def entropy(f: np.ndarray) -> float:
    p = hist_prob(f)
    p = p[p > 0]
    return float(-np.sum(p * LOG2(p)))


def cross_entropy(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    pf = hist_prob(f)

    def d(s: np.ndarray) -> float:
        ps = hist_prob(s)
        both = (ps > 0) & (pf > 0)
        return float(np.sum(ps[both] * LOG2(ps[both] / pf[both])))

    return (d(a) + d(b)) / 2


def mutual_information(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    def quantise(x: np.ndarray) -> np.ndarray:
        return (round_half_away((x - x.min()) / (x.max() - x.min()) * 255) + 1).astype(int)

    def mi(x: np.ndarray, y: np.ndarray) -> float:
        qx, qy = quantise(x), quantise(y)
        joint = np.zeros((257, 257))
        for i, j in zip(qx.ravel(), qy.ravel()):
            joint[i, j] += 1
        joint /= qx.size

        def h(p: np.ndarray) -> float:
            p = p[p > 0]
            return float(-np.sum(p * np.log(p)))

        return h(joint.sum(1)) + h(joint.sum(0)) - h(joint.ravel())

    return mi(a, f) + mi(b, f)


def e(x: np.ndarray, y: np.ndarray) -> float:
    return math.sqrt(np.sum((x - y) ** 2)) / x.size


def rmse(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    return (e(a, f) + e(b, f)) / 2


def psnr(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    return 20 * math.log10(255 / math.sqrt((e(a, f) + e(b, f)) / 2))


def ssim(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    x = np.arange(11) - 5
    g = np.exp(-(x[:, None] ** 2 + x[None] ** 2) / (2 * 1.5**2))
    g /= g.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def one(x: np.ndarray, y: np.ndarray) -> float:
        blur = lambda z: signal.correlate2d(z, g, mode="valid")  # noqa: E731
        mx, my = blur(x), blur(y)
        sxx, syy, sxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
        return float(np.mean((2 * mx * my + c1) * (2 * sxy + c2) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))))

    return one(a, f) + one(b, f)


#: Tg, kg, Dg, Ta, ka, Da of the spec (Γ_g, κ_g, σ_g, Γ_α, κ_α, σ_α in Xydeas & Petrovic)
QABF_CONSTANTS = (0.9994, -15.0, 0.5, 0.9879, -22.0, 0.8)


def qabf(a: np.ndarray, b: np.ndarray, f: np.ndarray, constants: tuple = QABF_CONSTANTS) -> float:
    tg, kg, dg, ta, ka, da = constants
    sx_k = np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    sy_k = np.array([[1.0, 2, 1], [0, 0, 0], [-1, -2, -1]])

    def edges(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = 255.0 * x
        sx, sy = convolve_same_zero(p, sx_k), convolve_same_zero(p, sy_k)
        alpha = np.full(x.shape, math.pi / 2)
        nz = sx != 0
        alpha[nz] = np.arctan(sy[nz] / sx[nz])
        return np.sqrt(sx**2 + sy**2), alpha

    gf, af = edges(f)

    def q(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gx, ax = edges(x)
        rel = np.empty_like(gx)
        for idx in np.ndindex(gx.shape):
            if gx[idx] > gf[idx]:
                rel[idx] = gf[idx] / gx[idx]
            elif gx[idx] == gf[idx]:
                rel[idx] = gf[idx]
            else:
                rel[idx] = gx[idx] / gf[idx]
        ori = 1 - np.abs(ax - af) / (math.pi / 2)
        return tg / (1 + np.exp(kg * (rel - dg))) * ta / (1 + np.exp(ka * (ori - da))), gx

    qa, ga = q(a)
    qb, gb = q(b)
    return float(np.sum(qa * ga + qb * gb) / np.sum(ga + gb))


def qcb(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    f0, f1, amp = 15.3870, 1.3456, 0.7622
    r = csf_grid(a.shape, 30.0)
    csf = np.exp(-((r / f0) ** 2)) - amp * np.exp(-((r / f1) ** 2))
    off = np.arange(-15, 16)
    xx, yy = np.meshgrid(off, off)

    def gauss(s: float) -> np.ndarray:
        return np.exp(-(xx**2 + yy**2) / (2 * s * s)) / (2 * math.pi * s * s)

    g2, g4 = gauss(2.0), gauss(4.0)

    def contrast(x: np.ndarray) -> np.ndarray:
        ip = filter_centered(normalise1(x), csf)
        c = np.abs(signal.correlate2d(ip, g2, mode="same") / signal.correlate2d(ip, g4, mode="same") - 1)
        return c**3 / (c**2 + 1e-4)

    ca, cb, cf = contrast(a), contrast(b), contrast(f)
    q_af = np.where(ca < cf, ca / cf, cf / ca)
    q_bf = np.where(cb < cf, cb / cf, cf / cb)
    la = ca**2 / (ca**2 + cb**2)
    lb = cb**2 / (ca**2 + cb**2)
    return float(np.mean(la * q_af + lb * q_bf))


def qcv(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    na, nb, nf = normalise1(a), normalise1(b), normalise1(f)
    kx = np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    ky = np.array([[-1.0, -2, -1], [0, 0, 0], [1, 2, 1]])

    def strength(x: np.ndarray) -> np.ndarray:
        return np.sqrt(correlate_same(x, kx, "zero") ** 2 + correlate_same(x, ky, "zero") ** 2)

    r = csf_grid(a.shape, 8.0)
    h = 2.6 * (0.0192 + 0.144 * r) * np.exp(-((0.144 * r) ** 1.1))
    m, n = a.shape
    bm, bn = -(-m // 16), -(-n // 16)

    def blocks(x: np.ndarray) -> np.ndarray:
        padded = np.zeros((16 * bm, 16 * bn), dtype=x.dtype)
        padded[:m, :n] = x
        return padded.reshape(bm, 16, bn, 16).swapaxes(1, 2)  # (bm, bn, 16, 16)

    la = blocks(strength(na) ** 5).sum((2, 3))
    lb = blocks(strength(nb) ** 5).sum((2, 3))
    da = (blocks(filter_centered(na - nf, h)) ** 2).sum((2, 3)) / 256
    db = (blocks(filter_centered(nb - nf, h)) ** 2).sum((2, 3)) / 256
    return float(np.real(np.sum(la * da + lb * db) / np.sum(la + lb)))


def vif(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    sn2, c = 0.005 * 255**2, 1e-7
    p = np.array([1.0, 0.0, 0.15, 1.0]) / 2.15

    def window(n: int) -> np.ndarray:  # fspecial('gaussian', n, n/5)
        x = np.arange(n) - (n - 1) / 2
        g = np.exp(-(x[:, None] ** 2 + x[None] ** 2) / (2 * (n / 5) ** 2))
        g[g < np.finfo(float).eps * g.max()] = 0
        return g / g.sum()

    def valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
        return signal.correlate2d(x, g, mode="valid")

    total = 0.0
    xs = {"a": a, "b": b, "f": f}
    for s in range(1, 5):
        g = window(2 ** (5 - s) + 1)
        if s > 1:
            xs = {k: valid(v, g)[::2, ::2] for k, v in xs.items()}
        mu = {k: valid(v, g) for k, v in xs.items()}
        var = {k: np.maximum(valid(v * v, g) - mu[k] ** 2, 0) for k, v in xs.items()}
        sel = {}
        for src in ("a", "b"):
            cov = valid(xs[src] * xs["f"], g) - mu[src] * mu["f"]
            vs, vf = var[src].copy(), var["f"]
            gain = cov / (vs + 1e-10)
            vv = vf - gain * cov
            low = vs < 1e-10
            gain[low], vv[low], vs[low] = 0, vf[low], 0
            low = vf < 1e-10
            gain[low], vv[low] = 0, 0
            neg = gain < 0
            vv[neg], gain[neg] = vf[neg], 0
            vv[vv <= 1e-10] = 1e-10
            vid = np.log10(1 + gain**2 * vs / (vv + sn2))
            vind = np.log10(1 + vs / sn2)
            sel[src] = (gain, vid, vind)
        pick_a = sel["a"][0] < sel["b"][0]
        vid = np.where(pick_a, sel["a"][1], sel["b"][1])
        vind = np.where(pick_a, sel["a"][2], sel["b"][2])
        total += p[s - 1] * np.sum(vid + c) / np.sum(vind + c)
    return float(total)


def scd(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    return pearson(f - b, a) + pearson(f - a, b)


def cc(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    return (pearson(a, f) + pearson(b, f)) / 2


def nabf(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    kv = np.array([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]) / 8
    kh = np.array([[-1.0, -2, -1], [0, 0, 0], [1, 2, 1]]) / 8

    def edges(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gv, gh = correlate_same(x, kv, "reflect"), correlate_same(x, kh, "reflect")
        alpha = np.zeros(x.shape)
        for idx in np.ndindex(x.shape):
            if gh[idx] != 0:
                alpha[idx] = math.atan(gv[idx] / gh[idx])
            elif gv[idx] != 0:
                alpha[idx] = math.copysign(math.pi / 2, gv[idx])
        return np.sqrt(gv**2 + gh**2), alpha

    gf, af = edges(f)

    def q(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        gx, ax = edges(x)
        rel = np.zeros(x.shape)
        ok = (gx != 0) & (gf != 0)
        rel[ok] = np.minimum(gx, gf)[ok] / np.maximum(gx, gf)[ok]
        ori = np.abs(np.abs(ax - af) - math.pi / 2) * 2 / math.pi
        qq = np.sqrt(0.9999 / (1 + np.exp(-19 * (rel - 0.5))) * 0.9995 / (1 + np.exp(-22 * (ori - 0.5))))
        w = np.where(gx >= 2, gx**1.5, 0.001)
        return qq, w, gx

    qa, wa, ga = q(a)
    qb, wb, gb = q(b)
    n = ((gf > ga) & (gf > gb)).astype(float)
    return float(np.sum(n * ((1 - qa) * wa + (1 - qb) * wb)) / np.sum(wa + wb))


# ---------------------------------------------------------------------------- FMI


def _fmi_window(x: np.ndarray, y: np.ndarray) -> float:
    """fmi of two min-max normalised 9-vectors (spec "FMI", step 1 after the shortcut)."""
    px, py = x / x.sum(), y / y.sum()  # "a" and "f"
    cx, cy = np.cumsum(px), np.cumsum(py)
    dx, dy = px - px.mean(), py - py.mean()
    cross = np.sum(dx * dy)
    corr = 0.0 if cross == 0 else cross / math.sqrt(np.sum(dx * dx) * np.sum(dy * dy))
    i = np.arange(1, 10)
    sx = math.sqrt(max(np.sum(i * i * px) - np.sum(i * px) ** 2, 0.0))
    sy = math.sqrt(max(np.sum(i * i * py) - np.sum(i * py) ** 2, 0.0))
    fi, aj = cy[:, None], cx[None, :]  # rows i: the fused CDF, columns j: the source CDF
    if corr >= 0:
        bound = np.minimum(fi, aj)
        k = np.sum(bound - fi * aj)
        coup = 0.0 if (corr == 0 or sx == 0 or sy == 0) else corr / (k / (sy * sx))
    else:
        bound = np.maximum(fi + aj - 1, 0)
        k = np.sum(bound - fi * aj)
        coup = 0.0 if (sx == 0 or sy == 0) else corr / (k / (sy * sx))
    mb = np.zeros((10, 10))
    mb[1:, 1:] = bound
    cell = mb[1:, 1:] - mb[:-1, 1:] - mb[1:, :-1] + mb[:-1, :-1]
    joint = coup * cell + (1 - coup) * py[:, None] * px[None, :]
    nz = joint != 0
    hj = float(np.sum(-joint[nz] * LOG2(np.abs(joint[nz]))))
    hx = float(-np.sum(px[px > 0] * LOG2(px[px > 0])))
    hy = float(-np.sum(py[py > 0] * LOG2(py[py > 0])))
    mi = hx + hy - hj
    return 0.0 if mi == 0 else 2 * mi / (hx + hy)


def _minmax(v: np.ndarray) -> np.ndarray:
    lo, hi = v.min(), v.max()
    return np.ones_like(v) if hi == lo else (v - lo) / (hi - lo)


def fmi_map_mean(fa: np.ndarray, fb: np.ndarray, ff: np.ndarray) -> float:
    """Mean over the 3×3 windows inside the feature maps of (fmi_AF + fmi_BF)/2."""
    h, w = ff.shape
    values = []
    for i in range(h - 2):
        for j in range(w - 2):
            a, b, f = (x[i : i + 3, j : j + 3].ravel(order="F") for x in (fa, fb, ff))
            if np.array_equal(a, f):
                fmi_af = 1.0  # f stays raw
            else:
                a, f = _minmax(a), _minmax(f)
                fmi_af = _fmi_window(a, f)  # f is now the normalised window
            if np.array_equal(b, f):  # the raw b against f as left by the first step
                fmi_bf = 1.0
            else:
                fmi_bf = _fmi_window(_minmax(b), _minmax(f))
            values.append((fmi_af + fmi_bf) / 2)
    return float(np.mean(values))


def dmey_mosaic(x: np.ndarray) -> np.ndarray:
    """[cA cH; cV cD] of one MATLAB-dmey level (PyWavelets with MATLAB's 102 taps, 'symmetric'),
    min-max rescaled to [0, 1] as a whole."""
    pywt = pytest.importorskip("pywt")
    from hifm.metrics.fmi import _DMEY_HI_D, _DMEY_LO_D  # the filter taps (data, tested against their sum)

    wav = pywt.Wavelet("matlab_dmey", filter_bank=[_DMEY_LO_D, _DMEY_HI_D, _DMEY_LO_D[::-1], _DMEY_HI_D[::-1]])
    ca, (ch, cv, cd) = pywt.dwt2(x, wav, mode="symmetric")
    mosaic = np.block([[ca, ch], [cv, cd]])
    return (mosaic - mosaic.min()) / (mosaic.max() - mosaic.min())


FMI_FEATURES = {
    "fmi_pixel": lambda x: x,
    "fmi_gradient": lambda x: matlab_gradient(x, 1),
    "fmi_dct": lambda x: sfft.dctn(x, type=2, norm="ortho"),
    "fmi_wavelet": dmey_mosaic,
}


def fmi(name: str) -> "callable":
    feature = FMI_FEATURES[name]
    return lambda a, b, f: fmi_map_mean(feature(a), feature(b), feature(f))


# ----------------------------------------------------------------------------- the tests

F_ONLY = {
    "average_gradient": average_gradient,
    "edge_intensity": edge_intensity,
    "entropy": entropy,
    "spatial_frequency": spatial_frequency,
    "standard_deviation": standard_deviation,
}
WITH_SOURCES = {
    "cross_entropy": cross_entropy,
    "mutual_information": mutual_information,
    "psnr": psnr,
    "rmse": rmse,
    "ssim": ssim,
    "qabf": qabf,
    "qcb": qcb,
    "qcv": qcv,
    "vif": vif,
    "scd": scd,
    "nabf": nabf,
    "cc": cc,
    **{name: fmi(name) for name in FMI_FEATURES},
}
#: metrics that need larger planes than SMALL
SIZES = {"ssim": [MEDIUM], "qcv": [MEDIUM, planes(16, 16, 3)], "vif": [LARGE], "fmi_wavelet": [planes(7, 9, 4)]}
#: measured: relative differences ≤ 4e-15 (VIF; ≤ 8e-16 for the others)
RTOL = 1e-14


def test_every_metric_has_a_transcription():
    assert set(M.REGISTRY) == set(F_ONLY) | set(WITH_SOURCES)


@pytest.mark.parametrize("name", sorted(F_ONLY))
@pytest.mark.parametrize("data", [SMALL, MEDIUM], ids=["13x17", "34x41"])
def test_fused_only_metric_equals_its_definition(name, data):
    f = data[2]
    assert call(name, data[0], data[1], f) == pytest.approx(F_ONLY[name](f), rel=RTOL, abs=0)


@pytest.mark.parametrize("name", sorted(WITH_SOURCES))
def test_metric_equals_its_definition(name):
    for a, b, f in SIZES.get(name, [SMALL, MEDIUM]):
        got = call(name, a, b, f)
        want = WITH_SOURCES[name](a, b, f)
        assert math.isfinite(want)
        assert got == pytest.approx(want, rel=RTOL, abs=0), (a.shape, got, want)


@pytest.mark.parametrize("constant", range(6))
def test_qabf_constants_matter_on_these_planes(constant):
    """The planes are not degenerate for Qabf: a 1 % change of any constant of the two sigmoids
    (Γ_g, κ_g, σ_g, Γ_α, κ_α, σ_α) moves the value far beyond the tolerance of the test above."""
    a, b, f = SMALL
    consts = list(QABF_CONSTANTS)
    consts[constant] *= 1.01
    base = qabf(a, b, f)
    assert abs(qabf(a, b, f, tuple(consts)) - base) > 1e-5 * base


def test_a_hand_computed_case():
    """A 2×3 fused image (values from the definitions by hand): gradients [[0, 1, 2], [3, 4, 5]]."""
    f = np.array([[0.0, 1, 2], [3, 4, 5]])
    # MATLAB gradient: Gx = 1 everywhere, Gy = 3 everywhere; AG = 6·√((1 + 9)/2)/((2 − 1)(3 − 1))
    assert M.average_gradient(f, protocol="gray") == pytest.approx(3 * math.sqrt(5), rel=1e-15)
    # SF: row differences 1 (4 of them), column differences 3 (3 of them); each sum over M·N = 6
    assert M.spatial_frequency(f, protocol="gray") == pytest.approx(math.sqrt((4 + 27) / 6), rel=1e-15)
    # SD of 0..5: √(35/12)
    assert M.standard_deviation(f, protocol="gray") == pytest.approx(math.sqrt(35 / 12), rel=1e-15)
    # entropy of six distinct values: log2 6
    assert M.entropy(f, protocol="gray") == pytest.approx(math.log2(6), rel=1e-15)
    # RMSE against A = F + 1, B = F + 2: e = √6/6 and 2√6/6, mean √6/4; PSNR = 20 log10(255/√(√6/4))
    assert M.rmse(f, f + 1, f + 2, protocol="gray") == pytest.approx(math.sqrt(6) / 4, rel=1e-15)
    assert M.psnr(f, f + 1, f + 2, protocol="gray") == pytest.approx(
        20 * math.log10(255 / math.sqrt(math.sqrt(6) / 4)), rel=1e-15)

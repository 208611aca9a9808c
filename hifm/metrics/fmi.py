"""Feature mutual information (Fast-FMI, Haghighat & Razian 2014) with pixel, DCT, wavelet
and gradient features, as implemented by Haghighat's reference ``fmi.m`` (window 3).

The sliding-window loop is compiled with Numba; each window is processed as the reference
code does (column-major flattening, constant windows -> ones, the phi/theta coupling, the
"b == f" shortcut that compares with the possibly normalised f window). Window 3 (the only
one the metrics use) runs :mod:`hifm.metrics._fmi_lanes`, which processes a run of windows
at once; :func:`_fmi_map` (one window at a time, also in the literal all-cells form of the
reference) serves other windows and the tests.
"""

from __future__ import annotations

import math

import numpy as np

from numba import njit
from scipy import fft as sfft

from ..errors import InputError
from ._common import PlaneCache, cached, matlab_gradient_x
from ._fmi_lanes import fmi_maps3
from .protocol import compute

__all__ = [
    "fmi_pixel", "fmi_dct", "fmi_wavelet", "fmi_gradient",
    "fmi_plane", "fmi_planes", "fmi_features", "dwt2_dmey", "DMEY_MATLAB_SCALING_FILTER", "FEATURES",
]

FEATURES = ("none", "dct", "wavelet", "gradient")

# The 102 coefficients of the discrete Meyer scaling filter W as shipped by MATLAB's
# Wavelet Toolbox in ``dmey.mat`` (the copy in the public repository CharlesShan-hub/cslib,
# src/cslib/metrics/fusion/resources/dmey.mat; also listed in hifm's shared test data as
# dmey_matlab_scaling_filter.csv). MATLAB's ``dwt2(x, 'dmey')`` builds its filters from it.
# PyWavelets' own 'dmey' has 62 taps and gives different FMI_w values.
DMEY_MATLAB_SCALING_FILTER = np.array([
    -1.067547998118631e-06, 9.042246453058247e-07, 3.179049985169497e-07,
    -1.4824980655515943e-06, 1.2185030608736759e-06, 4.936187114054644e-07,
    -2.036048945693258e-06, 1.6851403903381687e-06, 6.947434449579498e-07,
    -2.982427335278058e-06, 2.3712836783025626e-06, 1.1842071829846341e-06,
    -4.267036819908771e-06, 3.4206685116511023e-06, 1.6986741513436786e-06,
    -6.757331494989805e-06, 5.102855669587734e-06, 3.428816148276673e-06,
    -1.004581553914991e-05, 7.427389009873421e-06, 4.375279987930959e-06,
    -1.7280279652138862e-05, 1.4217363081407822e-05, 1.0602022211451236e-05,
    -3.2830094067081885e-05, 2.2868760966632184e-05, 2.6452628340994863e-05,
    -7.267573145912866e-05, 1.7297215565910968e-05, 0.00010586344196702042,
    -5.345223116678353e-05, -9.89335358816948e-05, -6.612360139100647e-05,
    0.00011397841458602949, 0.0006077584295826643, -0.0004088390966235871,
    -0.0019107218356785908, 0.0015519405235914596, 0.004274821538489222,
    -0.00451609911577357, -0.007809741183648126, 0.01078402411372324,
    0.012306407372429048, -0.022693929833801377, -0.017198098368329924,
    0.04501958019525182, 0.02165248924076301, -0.0938306765607541,
    -0.024782881682864712, 0.31402260774626095, 0.5259113790817769,
    0.31402260774626095, -0.024782881682864712, -0.0938306765607541,
    0.02165248924076301, 0.04501958019525182, -0.017198098368329924,
    -0.022693929833801377, 0.012306407372429048, 0.01078402411372324,
    -0.007809741183648126, -0.00451609911577357, 0.004274821538489222,
    0.0015519405235914596, -0.0019107218356785908, -0.0004088390966235871,
    0.0006077584295826643, 0.00011397841458602949, -6.612360139100647e-05,
    -9.89335358816948e-05, -5.345223116678353e-05, 0.00010586344196702042,
    1.7297215565910968e-05, -7.267573145912866e-05, 2.6452628340994863e-05,
    2.2868760966632184e-05, -3.2830094067081885e-05, 1.0602022211451236e-05,
    1.4217363081407822e-05, -1.7280279652138862e-05, 4.375279987930959e-06,
    7.427389009873421e-06, -1.004581553914991e-05, 3.428816148276673e-06,
    5.102855669587734e-06, -6.757331494989805e-06, 1.6986741513436786e-06,
    3.4206685116511023e-06, -4.267036819908771e-06, 1.1842071829846341e-06,
    2.3712836783025626e-06, -2.982427335278058e-06, 6.947434449579498e-07,
    1.6851403903381687e-06, -2.036048945693258e-06, 4.936187114054644e-07,
    1.2185030608736759e-06, -1.4824980655515943e-06, 3.179049985169497e-07,
    9.042246453058247e-07, -1.067547998118631e-06, 0.0,
])


def _matlab_dmey_filters() -> tuple[np.ndarray, np.ndarray]:
    """MATLAB's ``dmey`` decomposition filters (``orthfilt``): W/sum(W), Lo_R = sqrt(2) W,
    Hi_R = qmf(Lo_R) (reversed, signs of taps 2, 4, ... flipped), Lo_D / Hi_D = reversed
    Lo_R / Hi_R."""
    w = DMEY_MATLAB_SCALING_FILTER / DMEY_MATLAB_SCALING_FILTER.sum()
    lo_r = math.sqrt(2.0) * w
    hi_r = lo_r[::-1].copy()
    hi_r[1::2] = -hi_r[1::2]
    return np.ascontiguousarray(lo_r[::-1]), np.ascontiguousarray(hi_r[::-1])


_DMEY_LO_D, _DMEY_HI_D = _matlab_dmey_filters()


@njit(cache=True, nogil=True)
def _conv_down_axis0(x: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                     out_lo: np.ndarray, out_hi: np.ndarray) -> None:
    """Along axis 0: MATLAB ``dwt``'s convdown for 'sym' mode. Half-sample symmetric
    extension by L-1 samples, 'valid' convolution, keep samples 2, 4, ..., n+L-1
    (1-based): ``out[o, :] = sum_k h[k] ext[2 o + L - k, :]``, k = 0, 1, ..., L-1 summed in
    this order for every coefficient (the order decides the rounding noise of flat
    regions; see :func:`dwt2_dmey`). The loop over axis 1 is innermost, so the compiler
    vectorises it without changing any coefficient's summation order."""
    n, m = x.shape
    taps = lo.size
    e = taps - 1
    ext = np.empty((n + 2 * e, m))
    period = 2 * n
    for t in range(n + 2 * e):
        i = (t - e) % period  # symmetric (half-sample) index into 0..n-1, repeated reflection
        if i >= n:
            i = period - 1 - i
        for c in range(m):
            ext[t, c] = x[i, c]
    acc_lo = np.empty(m)
    acc_hi = np.empty(m)
    for o in range(out_lo.shape[0]):
        base = 2 * o + 1 + taps - 1  # 0-based index into the valid convolution is 2 o + 1
        for c in range(m):
            acc_lo[c] = 0.0
            acc_hi[c] = 0.0
        k = 0
        while k + 3 <= taps:  # three taps per pass over the accumulators, same order
            l0, l1, l2 = lo[k], lo[k + 1], lo[k + 2]
            h0, h1, h2 = hi[k], hi[k + 1], hi[k + 2]
            r0 = base - k
            for c in range(m):
                v0 = ext[r0, c]
                v1 = ext[r0 - 1, c]
                v2 = ext[r0 - 2, c]
                acc_lo[c] = ((acc_lo[c] + l0 * v0) + l1 * v1) + l2 * v2
                acc_hi[c] = ((acc_hi[c] + h0 * v0) + h1 * v1) + h2 * v2
            k += 3
        while k < taps:
            wl = lo[k]
            wh = hi[k]
            row = base - k
            for c in range(m):
                v = ext[row, c]
                acc_lo[c] += wl * v
                acc_hi[c] += wh * v
            k += 1
        for c in range(m):
            out_lo[o, c] = acc_lo[c]
            out_hi[o, c] = acc_hi[c]


def _dwt_axis0(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Low- and high-pass half of one 1-D ``dwt`` level along axis 0 of ``x``."""
    n, m = x.shape
    nout = (n + _DMEY_LO_D.size - 1) // 2
    lo = np.empty((nout, m))
    hi = np.empty((nout, m))
    _conv_down_axis0(np.ascontiguousarray(x, dtype=np.float64), _DMEY_LO_D, _DMEY_HI_D, lo, hi)
    return lo, hi


def dwt2_dmey(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One level of MATLAB ``[cA, cH, cV, cD] = dwt2(x, 'dmey')`` (default 'sym' mode,
    102-tap filters): rows filtered first (along the columns index), then columns; each
    sub-band is floor((M+101)/2) × floor((N+101)/2).

    Implemented as a direct sum over the taps. In flat image regions the detail
    coefficients are pure rounding noise, whose pattern depends on the summation order;
    FMI on such regions inherits it (see docs/metrics.md, FMI_w)."""
    zl_t, zh_t = _dwt_axis0(np.asarray(x, dtype=np.float64).T)  # rows: along axis 1 of x
    ca, ch = _dwt_axis0(zl_t.T)
    cv, cd = _dwt_axis0(zh_t.T)
    return ca, ch, cv, cd


def _wavelet_feature(x: np.ndarray) -> np.ndarray:
    """Mosaic [cA cH; cV cD] of :func:`dwt2_dmey`, min-max rescaled to [0, 1] as a whole."""
    ca, ch, cv, cd = dwt2_dmey(x)
    mosaic = np.block([[ca, ch], [cv, cd]])
    mn = mosaic.min()
    mx = mosaic.max()
    if mx == mn:
        return np.zeros_like(mosaic)
    return np.ascontiguousarray((mosaic - mn) / (mx - mn))


def fmi_features(x: np.ndarray, feature: str) -> np.ndarray:
    """Feature map of one plane: 'none' (the image), 'gradient' (MATLAB ``gradient``'s
    signed horizontal derivative), 'dct' (orthonormal DCT-II of the whole image),
    'wavelet' (rescaled dmey mosaic)."""
    if feature == "none":
        return np.ascontiguousarray(x, dtype=np.float64)
    if feature == "gradient":
        return np.ascontiguousarray(matlab_gradient_x(x))
    if feature == "dct":
        return np.ascontiguousarray(sfft.dctn(x, type=2, norm="ortho"))
    if feature == "wavelet":
        return _wavelet_feature(x)
    raise InputError(f"unknown FMI feature {feature!r}; expected one of {FEATURES}")


@njit(cache=True, nogil=True)
def _normalise_window(x: np.ndarray, out: np.ndarray) -> None:
    nw = x.size
    mn = x[0]
    mx = x[0]
    for k in range(1, nw):
        v = x[k]
        if v < mn:
            mn = v
        if v > mx:
            mx = v
    if mx == mn:
        for k in range(nw):
            out[k] = 1.0
    else:
        d = mx - mn
        for k in range(nw):
            out[k] = (x[k] - mn) / d


@njit(cache=True, nogil=True)
def _fmi_pair_reference(na: np.ndarray, nf: np.ndarray, pa: np.ndarray, pf: np.ndarray,
              ca: np.ndarray, cf: np.ndarray, grid: np.ndarray) -> float:
    """Fast-FMI of two normalised windows, statement by statement as the reference code
    (the 'else' branch): all nw×nw joint cells through log2. Kept to test
    :func:`_fmi_pair` against."""
    nw = na.size
    sa = 0.0
    sf = 0.0
    for k in range(nw):
        sa += na[k]
        sf += nf[k]
    for k in range(nw):
        pa[k] = na[k] / sa
        pf[k] = nf[k] / sf
    acc_a = 0.0
    acc_f = 0.0
    for k in range(nw):
        acc_a += pa[k]
        acc_f += pf[k]
        ca[k] = acc_a
        cf[k] = acc_f
    # Pearson correlation of the two pdfs
    ma = 0.0
    mf = 0.0
    for k in range(nw):
        ma += pa[k]
        mf += pf[k]
    ma /= nw
    mf /= nw
    num = 0.0
    da = 0.0
    df = 0.0
    for k in range(nw):
        xa = pa[k] - ma
        xf = pf[k] - mf
        num += xa * xf
        da += xa * xa
        df += xf * xf
    c = 0.0 if num == 0.0 else num / math.sqrt(da * df)
    # spread of the position index, entropies
    e1a = 0.0
    e2a = 0.0
    e1f = 0.0
    e2f = 0.0
    ha = 0.0
    hf = 0.0
    for k in range(nw):
        i = k + 1.0
        e1a += i * pa[k]
        e2a += i * i * pa[k]
        e1f += i * pf[k]
        e2f += i * i * pf[k]
        if pa[k] > 0:
            ha -= pa[k] * math.log2(pa[k])
        if pf[k] > 0:
            hf -= pf[k] * math.log2(pf[k])
    va = e2a - e1a * e1a
    vf = e2f - e1f * e1f
    s_a = math.sqrt(va) if va > 0 else 0.0
    s_f = math.sqrt(vf) if vf > 0 else 0.0
    # grid[i, j] = M(i, j) (c >= 0) or W(i, j) (c < 0), with a zero first row/column
    pos = c >= 0
    kk = 0.0
    for i in range(nw):
        x = cf[i]
        for j in range(nw):
            y = ca[j]
            if pos:
                g = (x + y - abs(x - y)) / 2.0
            else:
                t = x + y - 1.0
                g = (t + abs(t)) / 2.0
            grid[i + 1, j + 1] = g
            kk += g - x * y
    if c == 0.0 or s_a == 0.0 or s_f == 0.0:
        coup = 0.0
    else:
        coup = c / (kk / (s_f * s_a))
    hj = 0.0
    for i in range(nw):
        for j in range(nw):
            jv = coup * (grid[i + 1, j + 1] - grid[i, j + 1] - grid[i + 1, j] + grid[i, j]) \
                + (1.0 - coup) * pf[i] * pa[j]
            if jv != 0.0:
                hj -= jv * math.log2(abs(jv))
    mi = ha + hf - hj
    if mi == 0.0:
        return 0.0
    return 2.0 * mi / (ha + hf)


@njit(cache=True, nogil=True, inline="always")
def _cdf_sum(cdf: np.ndarray, nw: int) -> float:
    """Sum of the CDF values."""
    t = 0.0
    for k in range(nw):
        t += cdf[k]
    return t


@njit(cache=True, nogil=True, inline="always")
def _window_stats(nx: np.ndarray, p: np.ndarray, cdf: np.ndarray,
                  lg: np.ndarray) -> tuple[float, float, float, float, float]:
    """Per-window quantities of one normalised window: pdf ``p``, CDF ``cdf``, log2 of the
    pdf ``lg`` (0 where p = 0); returns (sum of p, mean of p, sum of squared deviations,
    spread s of the position index, entropy H in bits)."""
    nw = nx.size
    sx = 0.0
    for k in range(nw):
        sx += nx[k]
    for k in range(nw):
        p[k] = nx[k] / sx
    acc = 0.0
    for k in range(nw):
        acc += p[k]
        cdf[k] = acc
    mean = acc / nw
    dss = 0.0
    e1 = 0.0
    e2 = 0.0
    h = 0.0
    for k in range(nw):
        d = p[k] - mean
        dss += d * d
        i = k + 1.0
        e1 += i * p[k]
        e2 += i * i * p[k]
        if p[k] > 0:
            lg[k] = math.log2(p[k])
            h -= p[k] * lg[k]
        else:
            lg[k] = 0.0
    v = e2 - e1 * e1
    return acc, mean, dss, (math.sqrt(v) if v > 0 else 0.0), h


@njit(cache=True, nogil=True)
def _fmi_from_stats(pa: np.ndarray, ca: np.ndarray, la: np.ndarray, acc_a: float,
                    ma: float, da: float, s_a: float, ha: float,
                    pf: np.ndarray, cf: np.ndarray, lf: np.ndarray, acc_f: float,
                    mf: float, df: float, s_f: float, hf: float) -> float:
    """Fast-FMI of two windows from their :func:`_window_stats`; the fast form of
    :func:`_fmi_pair_reference`.

    The joint cell is J = c' dM + (1 - c') P_f P_a, where dM (the mass of the Frechet bound
    M or W) is non-zero only on a staircase of at most 2 nw - 1 cells, found by merging the
    two CDFs. Off the staircase -J log2|J| = -(1 - c') P_f P_a (log2|1 - c'| + log2 P_f +
    log2 P_a), whose sum over all cells has a closed form in the window entropies, so only
    the staircase cells need a log2. Same result as the reference up to rounding (~1e-15).
    """
    nw = pa.size
    num = 0.0
    for k in range(nw):
        num += (pa[k] - ma) * (pf[k] - mf)
    c = 0.0 if num == 0.0 else num / math.sqrt(da * df)
    pos = c >= 0
    if c == 0.0 or s_a == 0.0 or s_f == 0.0:
        coup = 0.0
    else:
        # K = sum_{i,j} [bound(F_i, A_j) - F_i A_j] in O(nw): both CDFs are non-decreasing
        kk = 0.0
        t = 0
        ysum = 0.0
        if pos:  # sum_j min(x, A_j) = (sum of A_j <= x) + x * #(A_j > x)
            for i in range(nw):
                x = cf[i]
                while t < nw and ca[t] <= x:
                    ysum += ca[t]
                    t += 1
                kk += ysum + x * (nw - t)
        else:  # sum_j max(x + A_j - 1, 0) = sum over A_j > 1 - x of (x + A_j - 1)
            t = nw
            for i in range(nw):
                x = cf[i]
                while t > 0 and ca[t - 1] > 1.0 - x:
                    t -= 1
                    ysum += ca[t]
                kk += ysum + (nw - t) * (x - 1.0)
        kk -= _cdf_sum(cf, nw) * _cdf_sum(ca, nw)
        coup = c / (kk / (s_f * s_a))
    w = 1.0 - coup
    # every cell as if off the staircase: sum -w P_f P_a (lw + log2 P_f + log2 P_a)
    if w != 0.0:
        lw = math.log2(abs(w))
        hj = -w * (lw * acc_f * acc_a - acc_a * hf - acc_f * ha)
    else:
        lw = 0.0
        hj = 0.0
    if coup != 0.0:
        # walk the staircase: rows i ascending; columns ascending (M) or descending (W)
        i = 0
        j = 0 if pos else nw - 1
        while i < nw and 0 <= j < nw:
            # mass of the bound in cell (i, j): the overlap of (F_{i-1}, F_i] with
            # (A_{j-1}, A_j] (M) or with (1 - A_j, 1 - A_{j-1}] (W)
            x0 = cf[i - 1] if i > 0 else 0.0
            if pos:
                y0 = ca[j - 1] if j > 0 else 0.0
                y1 = ca[j]
            else:
                y0 = 1.0 - ca[j]
                y1 = 1.0 - ca[j - 1] if j > 0 else 1.0
            dm = min(cf[i], y1) - max(x0, y0)
            if dm < 0.0:
                dm = 0.0
            if dm != 0.0:
                off = w * pf[i] * pa[j]
                if off != 0.0:  # replace this cell's closed-form term by the exact one
                    hj += off * (lw + lf[i] + la[j])
                jv = coup * dm + off
                if jv != 0.0:
                    hj -= jv * math.log2(abs(jv))
            x = cf[i]
            y = y1
            if x < y:
                i += 1
            elif y < x:
                j += 1 if pos else -1
            else:
                i += 1
                j += 1 if pos else -1
    mi = ha + hf - hj
    if mi == 0.0:
        return 0.0
    return 2.0 * mi / (ha + hf)


@njit(cache=True, nogil=True)
def _fmi_map(fa: np.ndarray, fb: np.ndarray, ff: np.ndarray, w: int,
             reference: bool = False) -> np.ndarray:
    """FMI map over all fully inside w×w windows (``reference=True``: the literal
    all-cells joint entropy of :func:`_fmi_pair_reference`, for tests)."""
    m, n = fa.shape
    h = w // 2
    nw = w * w
    out = np.empty((m - 2 * h, n - 2 * h))
    a = np.empty(nw)
    b = np.empty(nw)
    f = np.empty(nw)
    na = np.empty(nw)
    nf = np.empty(nw)
    nb = np.empty(nw)
    nf2 = np.empty(nw)
    pa = np.empty(nw)
    ca = np.empty(nw)
    la = np.empty(nw)
    pf = np.empty(nw)
    cf = np.empty(nw)
    lf = np.empty(nw)
    grid = np.zeros((nw + 1, nw + 1))
    for p in range(h, m - h):
        for q in range(h, n - h):
            k = 0
            for cc in range(q - h, q + h + 1):  # column-major window flattening
                for r in range(p - h, p + h + 1):
                    a[k] = fa[r, cc]
                    b[k] = fb[r, cc]
                    f[k] = ff[r, cc]
                    k += 1
            # A vs F
            same = True
            for k in range(nw):
                if a[k] != f[k]:
                    same = False
                    break
            f_stats = False
            if same:
                fmi_af = 1.0
                fcur = f
            else:
                _normalise_window(a, na)
                _normalise_window(f, nf)
                fcur = nf
                if reference:
                    fmi_af = _fmi_pair_reference(na, nf, pa, pf, ca, cf, grid)
                else:
                    acc_a, ma, da, s_a, ha = _window_stats(na, pa, ca, la)
                    acc_f, mf, df, s_f, hf = _window_stats(nf, pf, cf, lf)
                    f_stats = True
                    fmi_af = _fmi_from_stats(pa, ca, la, acc_a, ma, da, s_a, ha,
                                             pf, cf, lf, acc_f, mf, df, s_f, hf)
            # B vs F: the shortcut compares with f as left by the first step
            same = True
            for k in range(nw):
                if b[k] != fcur[k]:
                    same = False
                    break
            if same:
                fmi_bf = 1.0
            else:
                _normalise_window(b, nb)
                if reference:
                    _normalise_window(fcur, nf2)
                    fmi_bf = _fmi_pair_reference(nb, nf2, pa, pf, ca, cf, grid)
                else:
                    # re-normalising the normalised f window is exact (min 0, max 1), so
                    # its statistics are reused
                    if not f_stats:
                        _normalise_window(fcur, nf2)
                        acc_f, mf, df, s_f, hf = _window_stats(nf2, pf, cf, lf)
                    acc_a, ma, da, s_a, ha = _window_stats(nb, pa, ca, la)
                    fmi_bf = _fmi_from_stats(pa, ca, la, acc_a, ma, da, s_a, ha,
                                             pf, cf, lf, acc_f, mf, df, s_f, hf)
            out[p - h, q - h] = (fmi_af + fmi_bf) / 2.0
    return out


def _features3(a: np.ndarray, b: np.ndarray, f: np.ndarray, feature: str,
               cache: PlaneCache | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(cached(cache, "fmi_" + feature, x, lambda y: fmi_features(y, feature))  # type: ignore[return-value]
                 for x in (a, b, f))


def fmi_plane(a: np.ndarray, b: np.ndarray, f: np.ndarray, feature: str = "none",
              window: int = 3, cache: PlaneCache | None = None) -> float:
    """Fast-FMI of one plane triple: mean over all fully inside ``window``×``window``
    windows (``window`` odd, >= 3) of (FMI(A, F) + FMI(B, F)) / 2 on the chosen feature
    maps."""
    return fmi_planes([(a, b, f)], feature, window, cache)[0]


def fmi_planes(triples: list[tuple[np.ndarray, np.ndarray, np.ndarray]], feature: str = "none",
               window: int = 3, cache: PlaneCache | None = None) -> list[float]:
    """:func:`fmi_plane` of several plane triples (a_k, b_k, f_k). With window 3, the triples
    that share their ``b`` plane (the same array: the one infrared plane of the ``vifb``
    protocol) are computed together, the statistics of the ``b`` windows once."""
    window = int(window)
    if window < 3 or window % 2 == 0:
        raise InputError(f"FMI window must be odd and at least 3, got {window}")
    feats = [_features3(a, b, f, feature, cache) for a, b, f in triples]
    for fa, fb, ff in feats:
        if min(ff.shape) < window:
            raise InputError(f"FMI needs feature maps of at least {window}×{window} pixels")
    if window != 3:
        return [float(np.mean(_fmi_map(fa, fb, ff, window))) for fa, fb, ff in feats]
    out: list[float] = [0.0] * len(feats)
    groups: dict[int, list[int]] = {}
    for k, (_, b, _) in enumerate(triples):
        groups.setdefault(id(b), []).append(k)
    for ks in groups.values():
        fb = feats[ks[0]][1]
        maps = fmi_maps3(np.stack([feats[k][0] for k in ks]), np.ascontiguousarray(fb),
                         np.stack([feats[k][2] for k in ks]))
        for k, mp in zip(ks, maps):
            out[k] = float(np.mean(mp))
    return out


# --------------------------------------------------------------------------- public API
_FMI_DOC = """Feature mutual information, Fast-FMI with {what} (``{csv}``), window 3.

    For every 3×3 window fully inside the feature maps: the windows of the A, B and F maps
    (flattened column-major) are min-max normalised and treated as distributions over the 9
    positions; FMI(S, F) = 2 MI / (H_S + H_F) with the joint distribution built from the
    two CDFs and their Pearson correlation (Haghighat's Fast-FMI construction); the map is
    (FMI(A, F) + FMI(B, F)) / 2 and the metric its mean. {extra}

    Range [0, 1]. Higher is better.
    Source: M. Haghighat, M. A. Razian, "Fast-FMI: non-reference image fusion metric",
    IEEE AICT 2014; M. B. A. Haghighat, A. Aghagolzadeh, H. Seyedarabi, "A non-reference
    image fusion metric based on mutual information of image features", Computers &
    Electrical Engineering 37(5) 744-756, 2011.
    """


def fmi_pixel(fused: object, a: object, b: object, *, protocol: str = "vifb") -> float:
    return compute("fmi_pixel", fused, a, b, protocol)


def fmi_dct(fused: object, a: object, b: object, *, protocol: str = "vifb") -> float:
    return compute("fmi_dct", fused, a, b, protocol)


def fmi_wavelet(fused: object, a: object, b: object, *, protocol: str = "vifb") -> float:
    return compute("fmi_wavelet", fused, a, b, protocol)


def fmi_gradient(fused: object, a: object, b: object, *, protocol: str = "vifb") -> float:
    return compute("fmi_gradient", fused, a, b, protocol)


fmi_pixel.__doc__ = _FMI_DOC.format(
    what="pixel features", csv="FMI_pixel",
    extra="Features: the intensities themselves (not the 'edge' default of the "
          "reference script).")
fmi_dct.__doc__ = _FMI_DOC.format(
    what="DCT features", csv="FMI_dct",
    extra="Features: the orthonormal 2-D DCT-II of the whole image.")
fmi_wavelet.__doc__ = _FMI_DOC.format(
    what="wavelet features", csv="FMI_w",
    extra="Features: one level of MATLAB's dwt2 with the 102-tap discrete Meyer filter "
          "('sym' extension), mosaic [cA cH; cV cD] rescaled to [0, 1].")
fmi_gradient.__doc__ = _FMI_DOC.format(
    what="gradient features", csv="FMI_gradient",
    extra="Features: MATLAB gradient's signed horizontal derivative (not a magnitude).")

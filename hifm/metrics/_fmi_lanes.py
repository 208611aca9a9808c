"""Fast-FMI maps for 3×3 windows, computed for a run of windows at once ("lanes").

The per-window computation of :func:`hifm.metrics.fmi._fmi_map` (one window at a time, with
data-dependent loops and branches) is rewritten here without branches that depend on the
data: every step is a loop over up to :data:`LANES` neighbouring windows of one output row
(most of which the compiler turns into SIMD instructions), and the work that the reference
repeats is done once:

* the 9 window values, their min-max normalisation, pdf, CDF, log2 of the pdf, entropy and
  position spread are arrays of shape ``(9, lanes)``; those of the fused window serve both
  pairs, those of the second source (the one infrared plane of the ``vifb`` protocol) all
  three colour planes (:func:`fmi_maps3`);
* the "a == f" / "b == f" shortcuts and constant windows are selections, not branches;
* the coupling sum K = sum_{i,j} [bound(F_i, A_j) - F_i A_j] is a sum over all 81 cells
  written with ``max``;
* the joint entropy is the closed form for all 81 cells taken as off the staircase of the
  Frechet bound plus a correction on the staircase cells (where the bound's mass dM is not
  zero, at most 17), as in :func:`hifm.metrics.fmi._fmi_from_stats`; the staircase cells
  are found without merging the two CDFs: every cell of positive mass has an upper end
  min(F_i, U_r) that is either a breakpoint F_i of the fused CDF or an upper end U_r of a
  column, so the 9 "row candidates" (row i, first column whose upper end is >= F_i) and the
  9 "column candidates" (column r, first row with F_i > U_r) enumerate each such cell
  exactly once;
* log2 is a polynomial evaluation without branches (:func:`_log2`), faster here than the
  C library's ``log2`` that ``math.log2`` calls.

For the W bound (negative correlation) the columns are taken in ascending order of their
intervals (1 - A_j, 1 - A_{j-1}], so both bounds share one code path.

The quantities whose exact value decides a branch of the reference code (the normalised
windows, pdfs, CDFs, the correlation and its sign, the spreads, the shortcuts) are computed
with the same operations in the same order as :func:`hifm.metrics.fmi._fmi_map`, so the two
kernels take the same branches; the entropies, K and the staircase sum differ from it by
rounding only (``tests/test_metrics_fast_kernels.py`` compares them).
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

__all__ = ["fmi_map3", "fmi_maps3", "log2_lanes", "LANES"]

W = 3  # window size handled here
NW = W * W  # values per window
LANES = 64  # windows processed together

_INV_LN2 = 1.4426950408889634  # 1 / ln 2
_SQRT2 = 1.4142135623730951
_SMALLEST_NORMAL = 2.2250738585072014e-308
_TWO54 = 18014398509481984.0


#: Q(z) ~ (atanh(s)/s - 1)/z, z = s^2 in [0, ((sqrt 2 - 1)/(sqrt 2 + 1))^2], coefficients of
#: z^0 .. z^6: interpolation at the 7 Chebyshev nodes of that interval in 50-digit arithmetic
#: (``python tools/fit_log2_polynomial.py`` prints them and the error bound), rounded to
#: float64. The Taylor series (1/3, 1/5, 1/7, ...) needs 11 terms for the same accuracy.
_LOG_Q = (0.3333333333333335, 0.19999999999949752, 0.14285714312987743, 0.1111110556739754,
          0.09091444562630861, 0.07665860800278021, 0.07308224842521703)


@intrinsic
def _f64_bits(typingctx, x):  # type: ignore[no-untyped-def]
    """The IEEE-754 bit pattern of a float64 as an int64 (no conversion)."""
    if x != types.float64:
        return None

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def _bits_f64(typingctx, x):  # type: ignore[no-untyped-def]
    """The float64 whose bit pattern is the given int64."""
    if x != types.int64:
        return None

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _log2(x: float) -> float:
    """log2(x) for finite x > 0 (subnormals included), without branches (``contract``:
    multiply-adds may be fused, which changes nothing but the last bits of this function).

    x = m 2^e with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(s) = 2 s (1 + z Q(z)),
    s = (m - 1)/(m + 1), z = s^2 <= 0.02944, Q the degree-6 polynomial :data:`_LOG_Q` (its
    error in ln m: 1.6e-18 at most). Error within a few units in the last place of the
    result."""
    tiny = x < _SMALLEST_NORMAL
    xs = x * _TWO54 if tiny else x
    bits = _f64_bits(xs)
    e = ((bits >> 52) & 0x7FF) - 1023
    m = _bits_f64((bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000)
    big = m > _SQRT2
    m = m * 0.5 if big else m
    ef = float(e) + (1.0 if big else 0.0) - (54.0 if tiny else 0.0)
    s = (m - 1.0) / (m + 1.0)
    z = s * s
    p = _LOG_Q[6]
    p = p * z + _LOG_Q[5]
    p = p * z + _LOG_Q[4]
    p = p * z + _LOG_Q[3]
    p = p * z + _LOG_Q[2]
    p = p * z + _LOG_Q[1]
    p = p * z + _LOG_Q[0]
    p = p * z + 1.0
    return ef + (2.0 * s * p) * _INV_LN2


@njit(cache=True, nogil=True, error_model="numpy")
def log2_lanes(x: np.ndarray, out: np.ndarray) -> None:
    """``out = log2(x)`` element-wise with :func:`_log2` (x finite and > 0); for tests."""
    xf = x.ravel()
    of = out.ravel()
    for i in range(xf.size):
        of[i] = _log2(xf[i])


@njit(cache=True, nogil=True, error_model="numpy")
def _window_stats(raw: np.ndarray, s: int, nrm: np.ndarray, pdf: np.ndarray,
                  cdf: np.ndarray, lg: np.ndarray, sc: np.ndarray, tmp: np.ndarray,
                  ln: int) -> None:
    """Window statistics of image ``s`` for ``ln`` lanes.

    ``raw[s]`` (9 × lanes): the raw window values, column-major. Writes the min-max
    normalised window ``nrm[s]`` (all ones for a constant window), the pdf ``pdf[s]``
    (normalised values over their sum), its running sum ``cdf[s]``, ``lg[s]`` = log2 of
    the pdf (0 where the pdf is 0), and per lane ``sc[s, 0..4]`` = (sum of the pdf, mean of
    the pdf, sum of squared deviations from that mean, spread of the position index, entropy
    in bits). Operation order as :func:`hifm.metrics.fmi._window_stats`."""
    x = raw[s]
    nx = nrm[s]
    p = pdf[s]
    c = cdf[s]
    lgs = lg[s]
    st = sc[s]
    mn = tmp[0]
    mx = tmp[1]
    for q in range(ln):
        mn[q] = x[0, q]
        mx[q] = x[0, q]
    for k in range(1, NW):
        for q in range(ln):
            v = x[k, q]
            mn[q] = v if v < mn[q] else mn[q]
            mx[q] = v if v > mx[q] else mx[q]
    for k in range(NW):
        for q in range(ln):
            lo = mn[q]
            hi = mx[q]
            nx[k, q] = 1.0 if hi == lo else (x[k, q] - lo) / (hi - lo)
    sx = tmp[0]
    for q in range(ln):
        sx[q] = nx[0, q]
    for k in range(1, NW):
        for q in range(ln):
            sx[q] += nx[k, q]
    acc = st[0]
    for q in range(ln):
        acc[q] = 0.0
    for k in range(NW):
        for q in range(ln):
            pv = nx[k, q] / sx[q]
            p[k, q] = pv
            acc[q] += pv
            c[k, q] = acc[q]
    mean = st[1]
    dss = st[2]
    e1 = tmp[0]
    e2 = tmp[1]
    ent = st[4]
    for q in range(ln):
        mean[q] = acc[q] / NW
        dss[q] = 0.0
        e1[q] = 0.0
        e2[q] = 0.0
        ent[q] = 0.0
    for k in range(NW):
        fi = k + 1.0
        for q in range(ln):
            pv = p[k, q]
            d = pv - mean[q]
            dss[q] += d * d
            e1[q] += fi * pv
            e2[q] += fi * fi * pv
            lv = _log2(pv) if pv > 0.0 else 0.0
            lgs[k, q] = lv
            ent[q] -= pv * lv
    sd = st[3]
    for q in range(ln):
        v = e2[q] - e1[q] * e1[q]
        sd[q] = math.sqrt(v) if v > 0.0 else 0.0


@njit(cache=True, nogil=True, error_model="numpy")
def _pair_fmi(s: int, pdf: np.ndarray, cdf: np.ndarray, lg: np.ndarray, sc: np.ndarray,
              col: np.ndarray, lane: np.ndarray, res: np.ndarray, ln: int) -> None:
    """Fast-FMI of source ``s`` (0 or 1) against the fused window (index 2) for ``ln``
    lanes, into ``res[s]`` (the "a == f" shortcuts are applied by the caller).

    Each loop stores into one array only, so that the compiler vectorises it."""
    pa = pdf[s]
    ca = cdf[s]
    la = lg[s]
    pf = pdf[2]
    cf = cdf[2]
    lf = lg[2]
    sa = sc[s]
    sf = sc[2]
    out = res[s]
    num = lane[0]
    corr = lane[1]
    sfs = lane[2]
    sas = lane[3]
    tt = lane[4]
    coupv = lane[5]
    lwl = lane[6]
    # Pearson correlation of the two pdfs: numerator, then c (as the reference)
    for q in range(ln):
        num[q] = 0.0
    for k in range(NW):
        for q in range(ln):
            num[q] += (pa[k, q] - sa[1, q]) * (pf[k, q] - sf[1, q])
    for q in range(ln):
        nm = num[q]
        c = nm / math.sqrt(sa[2, q] * sf[2, q])
        corr[q] = 0.0 if nm == 0.0 else c
    # columns of the bound in ascending order: (U_r, L_r, pdf, log2 pdf)
    #   M (c >= 0): column r is (A_{r-1}, A_r]
    #   W (c < 0):  column r is (1 - A_{8-r}, 1 - A_{7-r}] (A_{-1} = 0), i.e. j = 8 - r
    for r in range(NW):
        jr = NW - 1 - r
        cu = col[0, r]
        for q in range(ln):
            up_w = 1.0 - ca[jr - 1, q] if jr > 0 else 1.0
            cu[q] = ca[r, q] if corr[q] >= 0.0 else up_w
        cl = col[1, r]
        for q in range(ln):
            lo_m = ca[r - 1, q] if r > 0 else 0.0
            cl[q] = lo_m if corr[q] >= 0.0 else 1.0 - ca[jr, q]
        cp = col[2, r]
        for q in range(ln):
            cp[q] = pa[r, q] if corr[q] >= 0.0 else pa[jr, q]
        cg = col[3, r]
        for q in range(ln):
            cg[q] = la[r, q] if corr[q] >= 0.0 else la[jr, q]
    # K = sum_ij bound(F_i, A_j) - SF SA with T = sum_ij max(F_i - X_j, 0), X_j = A_j (M:
    # min(F, A) = F - max(F - A, 0)) or 1 - A_j (W: max(F + A - 1, 0))
    for q in range(ln):
        sfs[q] = cf[0, q]
    for k in range(1, NW):
        for q in range(ln):
            sfs[q] += cf[k, q]
    for q in range(ln):
        sas[q] = ca[0, q]
    for k in range(1, NW):
        for q in range(ln):
            sas[q] += ca[k, q]
    for q in range(ln):
        tt[q] = 0.0
    for j in range(NW):
        for i in range(NW):
            for q in range(ln):
                xj = ca[j, q] if corr[q] >= 0.0 else 1.0 - ca[j, q]
                d = cf[i, q] - xj
                tt[q] += d if d > 0.0 else 0.0
    # coupling c', log2|1 - c'|
    for q in range(ln):
        c = corr[q]
        kk = (NW * sfs[q] - tt[q] if c >= 0.0 else tt[q]) - sfs[q] * sas[q]
        coup = c / (kk / (sf[3, q] * sa[3, q]))
        coupv[q] = 0.0 if (c == 0.0) | (sf[3, q] == 0.0) | (sa[3, q] == 0.0) else coup
    for q in range(ln):
        aw = abs(1.0 - coupv[q])
        lwl[q] = _log2(aw) if aw != 0.0 else 0.0
    # the joint entropy of every cell taken as off the staircase, in closed form:
    # sum_ij -w P_f(i) P_a(j) (log2|w| + log2 P_f(i) + log2 P_a(j)), w = 1 - c'
    for q in range(ln):
        wv = 1.0 - coupv[q]
        hoff = -wv * (lwl[q] * sf[0, q] * sa[0, q] - sa[0, q] * sf[4, q] - sf[0, q] * sa[4, q])
        out[q] = hoff if wv != 0.0 else 0.0
    # row candidates: row i, column = first r with U_r >= F_i
    for i in range(NW):
        for q in range(ln):
            x = cf[i, q]
            pc = 0.0
            lc = 0.0
            yl = 0.0
            for r in range(NW - 1, -1, -1):
                # every load unconditional, before the selections (a load inside a
                # conditional expression is made only when selected; hoisted, the kernel
                # measured 5-8 % faster on pixel and wavelet features)
                u = col[0, r, q]
                v1 = col[1, r, q]
                v2 = col[2, r, q]
                v3 = col[3, r, q]
                ge = u >= x
                pc = v2 if ge else pc
                lc = v3 if ge else lc
                yl = v1 if ge else yl
            found = col[0, NW - 1, q] >= x
            x0 = cf[i - 1, q] if i > 0 else 0.0
            dm = x - (x0 if x0 > yl else yl)
            coup = coupv[q]
            off = (1.0 - coup) * pf[i, q] * pc
            jv = coup * dm + off
            aj = abs(jv)
            term = off * (lwl[q] + lf[i, q] + lc) - jv * _log2(aj if aj != 0.0 else 1.0)
            out[q] += term if (found & (dm > 0.0) & (coup != 0.0)) else 0.0
    # column candidates: column r, row = first i with F_i > U_r
    for r in range(NW):
        for q in range(ln):
            u = col[0, r, q]
            pr = 0.0
            lr = 0.0
            x0 = 0.0
            for i in range(NW - 1, 0, -1):
                ci = cf[i, q]  # loads unconditional, as in the row candidates
                vp = pf[i, q]
                vl = lf[i, q]
                vx = cf[i - 1, q]
                gt = ci > u
                pr = vp if gt else pr
                lr = vl if gt else lr
                x0 = vx if gt else x0
            ci = cf[0, q]
            vp = pf[0, q]
            vl = lf[0, q]
            gt = ci > u
            pr = vp if gt else pr
            lr = vl if gt else lr
            x0 = 0.0 if gt else x0
            found = cf[NW - 1, q] > u
            y0 = col[1, r, q]
            dm = u - (x0 if x0 > y0 else y0)
            coup = coupv[q]
            off = (1.0 - coup) * pr * col[2, r, q]
            jv = coup * dm + off
            aj = abs(jv)
            term = off * (lwl[q] + lr + col[3, r, q]) - jv * _log2(aj if aj != 0.0 else 1.0)
            out[q] += term if (found & (dm > 0.0) & (coup != 0.0)) else 0.0
    for q in range(ln):
        hs = sa[4, q] + sf[4, q]
        mi = hs - out[q]
        out[q] = 0.0 if mi == 0.0 else 2.0 * mi / hs


@njit(cache=True, nogil=True, error_model="numpy")
def fmi_maps3(fa: np.ndarray, fb: np.ndarray, ff: np.ndarray) -> np.ndarray:
    """Maps of (FMI(A_p, F_p) + FMI(B, F_p)) / 2 over all 3×3 windows fully inside the
    feature maps, for P planes that share the second source B.

    ``fa``, ``ff``: P × M × N feature maps of the first source and of the fused image,
    ``fb``: M × N feature map of the second source (float64, M, N >= 3). Returns
    P × (M-2) × (N-2); plane p has the values of
    ``hifm.metrics.fmi._fmi_map(fa[p], fb, ff[p], 3)`` up to rounding. The statistics of
    the B windows are computed once for all planes."""
    npl, m, n = fa.shape
    mo = m - 2
    no = n - 2
    out = np.empty((npl, mo, no))
    lanes = min(LANES, no)
    raw = np.empty((3, NW, lanes))
    nrm = np.empty((3, NW, lanes))
    pdf = np.empty((3, NW, lanes))
    cdf = np.empty((3, NW, lanes))
    lg = np.empty((3, NW, lanes))
    sc = np.empty((3, 5, lanes))
    tmp = np.empty((2, lanes))
    col = np.empty((4, NW, lanes))
    lane = np.empty((7, lanes))
    res = np.empty((2, lanes))
    same = np.empty((2, lanes))
    for po in range(mo):
        for q0 in range(0, no, lanes):
            ln = min(lanes, no - q0)
            for cc in range(W):
                for r in range(W):
                    k = cc * W + r  # column-major flattening, as the reference
                    for q in range(ln):
                        raw[1, k, q] = fb[po + r, q0 + q + cc]
            _window_stats(raw, 1, nrm, pdf, cdf, lg, sc, tmp, ln)
            for pl in range(npl):
                for cc in range(W):
                    for r in range(W):
                        k = cc * W + r
                        for q in range(ln):
                            raw[0, k, q] = fa[pl, po + r, q0 + q + cc]
                            raw[2, k, q] = ff[pl, po + r, q0 + q + cc]
                _window_stats(raw, 2, nrm, pdf, cdf, lg, sc, tmp, ln)
                _window_stats(raw, 0, nrm, pdf, cdf, lg, sc, tmp, ln)
                # shortcuts: a == f (raw), then b == f as left by the first step (raw f
                # when the first shortcut was taken, else the normalised f)
                sa = same[0]
                sb = same[1]
                for q in range(ln):
                    sa[q] = 1.0
                    sb[q] = 1.0
                for k in range(NW):
                    for q in range(ln):
                        sa[q] = sa[q] if raw[0, k, q] == raw[2, k, q] else 0.0
                for k in range(NW):
                    for q in range(ln):
                        fc = raw[2, k, q] if sa[q] != 0.0 else nrm[2, k, q]
                        sb[q] = sb[q] if raw[1, k, q] == fc else 0.0
                _pair_fmi(0, pdf, cdf, lg, sc, col, lane, res, ln)
                _pair_fmi(1, pdf, cdf, lg, sc, col, lane, res, ln)
                for q in range(ln):
                    va = 1.0 if sa[q] != 0.0 else res[0, q]
                    vb = 1.0 if sb[q] != 0.0 else res[1, q]
                    out[pl, po, q0 + q] = (va + vb) / 2.0
    return out


def fmi_map3(fa: np.ndarray, fb: np.ndarray, ff: np.ndarray) -> np.ndarray:
    """Map of (FMI(A, F) + FMI(B, F)) / 2 over all 3×3 windows fully inside the feature maps
    (float64, equal shapes, at least 3×3); same values as
    ``hifm.metrics.fmi._fmi_map(fa, fb, ff, 3)`` up to rounding."""
    return fmi_maps3(np.ascontiguousarray(fa, dtype=np.float64)[None],
                     np.ascontiguousarray(fb, dtype=np.float64),
                     np.ascontiguousarray(ff, dtype=np.float64)[None])[0]

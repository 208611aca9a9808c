"""The torch fast paths (DESIGN §6, §12) against the reference definitions they replace.

Each fast path computes the same expression as a generic function of :mod:`hifm.ops` /
:mod:`hifm.shrink` (only the rounding differs): values are compared in float64 to 1e-10 or
better.  Paths that can carry an autograd graph (the value maps and the dual update used in
training; the conv2d ∇ and the matrix-product ∇ᵀ, kept differentiable) are compared in their
gradients too.  Inference-only paths (in-place updates, row bands, chunks, channels-last)
are compared with the graph paths and with the generic ones, and whole networks with the
reference paths.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.nn import functional as F  # noqa: E402

from hifm import backend, filters, iteration, ops, shrink  # noqa: E402
from unrolled import DeRUN, load_pretrained  # noqa: E402
from unrolled import layers, pwsm  # noqa: E402
import unrolled.derun as derun_mod  # noqa: E402

TOL = 1e-10


def t64(x, grad: bool = False):
    out = torch.tensor(np.asarray(x, dtype=np.float64))
    return out.requires_grad_() if grad else out


def assert_close(a, b, tol=TOL):
    a = a.detach() if isinstance(a, torch.Tensor) else torch.as_tensor(a)
    b = b.detach() if isinstance(b, torch.Tensor) else torch.as_tensor(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    diff = float((a - b).abs().max()) if a.numel() else 0.0
    assert diff <= tol, diff


def grads(fn, inputs, seed: int = 0):
    """Gradients of a random linear functional of ``fn(*inputs)`` w.r.t. the inputs."""
    out = fn(*inputs)
    w = torch.tensor(np.random.default_rng(seed).standard_normal(tuple(out.shape)))
    return torch.autograd.grad((out * w).sum(), inputs)


def random_banks(rng):
    """Learned-looking banks: 8 and 2 random 3×3 kernels, a 5×5 and a non-square 3×5 bank."""
    return [rng.standard_normal((8, 3, 3)), rng.standard_normal((2, 3, 3)), rng.standard_normal((5, 5, 5)),
            rng.standard_normal((3, 3, 5)), filters.differences().kernels, filters.dct_atoms().kernels]


# ----------------------------------------------------------------------------- ∇ and ∇ᵀ
@pytest.mark.parametrize("shape", [(2, 3, 11, 13), (9, 7), (1, 6, 5), (2, 2, 5)])
def test_grad_fast_path_matches_generic(shape, rng):
    x = rng.random(shape)
    for k in random_banks(rng):
        if k.shape[1] // 2 > shape[-2] or k.shape[2] // 2 > shape[-1]:
            continue
        ref = ops._grad_generic(t64(x), t64(k))
        assert ops._torch_conv_ok(t64(x), t64(k))
        with torch.no_grad():  # the tap-by-tap path for small banks, conv2d for the others
            assert_close(ops.grad(t64(x), t64(k)), ref)
        xg, kg = t64(x, True), t64(k, True)
        assert not ops._torch_conv_ok(xg, kg)  # training runs the generic definition
        # the conv2d path is differentiable as well (e.g. for a GPU)
        out = ops._grad_torch(xg, kg)
        assert out.requires_grad
        assert_close(out, ref)
        for g_fast, g_ref in zip(grads(ops._grad_torch, (xg, kg)), grads(ops._grad_generic, (xg, kg))):
            assert_close(g_fast, g_ref)


def test_grad_fast_path_is_used_and_can_fail(rng):
    """The comparison above is not vacuous: a wrong flip in the fast path is caught."""
    x, k = t64(rng.random((7, 8))), t64(rng.standard_normal((8, 3, 3)))
    assert ops._torch_conv_ok(x, k)
    bad = F.conv2d(F.pad(x[None, None], (1, 1, 1, 1), mode="circular"), k.unsqueeze(1))[0]  # no flip
    assert float((bad - ops._grad_generic(x, k)).abs().max()) > 1e-3


@pytest.mark.parametrize("lead", [(2,), (), (3, 2)])
def test_grad_adjoint_fast_path_matches_generic(lead, rng):
    for k in random_banks(rng):
        z = rng.standard_normal(lead + (k.shape[0], 9, 12))
        ref = ops._grad_adjoint_generic(t64(z), t64(k))
        assert ops._torch_conv_ok(t64(z), t64(k))
        assert_close(ops.grad_adjoint(t64(z), t64(k)), ref)
        zg, kg = t64(z, True), t64(k, True)

        def fast(z_, k_):
            shape = tuple(z_.shape[:-3]) + tuple(z_.shape[-2:])
            return ops._adjoint_of_taps(ops._tap_sums(z_, k_), k_.shape[1], k_.shape[2], shape)

        for g_fast, g_ref in zip(grads(fast, (zg, kg)), grads(ops._grad_adjoint_generic, (zg, kg))):
            assert_close(g_fast, g_ref)
        # adjointness with the fast ∇
        x = t64(rng.random(lead + (9, 12)))
        lhs = float((ops.grad(x, t64(k)) * t64(z)).sum())
        rhs = float((x * ops.grad_adjoint(t64(z), t64(k))).sum())
        assert abs(lhs - rhs) < 1e-10 * max(1.0, abs(lhs))


def test_float32_fast_paths_match_float64_reference(rng):
    x = rng.random((2, 40, 50))
    k = rng.standard_normal((8, 3, 3))
    ref = ops._grad_generic(t64(x), t64(k))
    with torch.no_grad():
        got = ops.grad(torch.tensor(x, dtype=torch.float32), torch.tensor(k, dtype=torch.float32))
    assert_close(got.double(), ref, 1e-5)


# ----------------------------------------------------------------------------- Y-step right-hand side
def rhs_data(rng, lead=(2,), shape=(13, 17), nl=8, nk=2):
    return dict(
        m=rng.random(lead + shape), e=rng.standard_normal(lead + (nl,) + shape) * 0.1,
        f=rng.standard_normal(lead + (nl,) + shape) * 0.1, h=rng.standard_normal(lead + (nk,) + shape) * 0.1,
        g=rng.standard_normal(lead + (nk,) + shape) * 0.1, gm=rng.standard_normal(lead + (nk,) + shape) * 0.1,
        kl=rng.standard_normal((nl, 3, 3)), kk=rng.standard_normal((nk, 3, 3)),
        rho=rng.uniform(0.5, 2, nl), tau=rng.uniform(0.5, 2, nk),
    )


RHS_KEYS = ("m", "e", "f", "h", "g", "gm", "kl", "rho", "kk", "tau")


@pytest.mark.parametrize("lead", [(2,), ()])
@pytest.mark.parametrize("band", [128, 4, 5])
def test_y_rhs_fast_paths_match_generic(lead, band, rng, monkeypatch):
    """Row bands (inference, CPU; 4 and 5 rows make several bands, wrap-around included),
    one matrix product (autograd), against the term-by-term reference."""
    monkeypatch.setattr(ops, "_RHS_BAND_ROWS", band)
    d = rhs_data(rng, lead)
    args = [t64(d[k]) for k in RHS_KEYS]
    ref = ops._y_rhs_generic(*args)
    assert ops._y_rhs_torch_ok(*args)
    with torch.no_grad():
        assert_close(ops.y_rhs(*args), ref)  # bands of rows (CPU)
        assert_close(ops._y_rhs_torch(*args, banded=False), ref)  # one product, then shifted adds (GPU)
    gargs = [t64(d[k], True) for k in RHS_KEYS]
    assert not ops._y_rhs_torch_ok(*gargs)  # training runs the generic definition
    assert_close(ops.y_rhs(*gargs), ref)

    def fast(*a):
        return ops._y_rhs_torch(*a, banded=False)

    for g_fast, g_ref in zip(grads(fast, gargs), grads(ops._y_rhs_generic, gargs)):
        assert_close(g_fast, g_ref)
    # NumPy (the solver's path) agrees as well
    np.testing.assert_allclose(ops.y_rhs(*(d[k] for k in RHS_KEYS)), ref.numpy(), atol=TOL, rtol=0)


def test_y_rhs_fast_path_variants(rng):
    d = rhs_data(rng, (1,), (10, 11))
    base = [t64(d[k]) for k in RHS_KEYS]
    # no ∇_k bank; scalar weights; a bank of another kernel size falls back to the generic path
    no_k = base[:8] + [t64(np.zeros((0, 3, 3))), t64(np.zeros(0))]
    assert_close(ops.y_rhs(*no_k), ops._y_rhs_generic(*no_k))
    scalars = base[:7] + [0.7] + [base[8], 1.3]
    assert_close(ops.y_rhs(*scalars), ops._y_rhs_generic(*scalars))
    k5 = base[:6] + [t64(rng.standard_normal((8, 5, 5)))] + base[7:]
    assert not ops._y_rhs_torch_ok(*k5)
    assert_close(ops.y_rhs(*k5), ops._y_rhs_generic(*k5))
    # float32 inputs and float64 weights: the generic path (mixed dtypes are not fused)
    mixed = [x.float() if i < 6 else x for i, x in enumerate(base)]
    assert not ops._y_rhs_torch_ok(*mixed)


# ----------------------------------------------------------------------------- element-wise updates
def test_y_step_dual_and_h_step_inplace_paths(rng):
    shape = (2, 2, 9, 10)
    h, gym, g = (t64(rng.standard_normal(shape) * 0.2) for _ in range(3))
    tau, mu, theta, sigma = t64([1.1, 0.7]), t64([0.05, 0.02]), t64([40.0, 60.0]), t64([0.1, 0.2])
    ref_h = h - ops.as_column(sigma, h) * (
        -ops.as_column(tau, h) * (gym - h + g) + ops.as_column(mu, h) * ops.lorentzian_grad(h, theta)
    )
    with torch.no_grad():
        h_before = h.clone()
        assert_close(ops.h_step(h, gym, g, tau, mu, theta, sigma), ref_h, 1e-14)
        assert torch.equal(h, h_before)  # the inputs are untouched
        assert_close(ops.h_step(h, gym, g, 1.1, 0.05, 40.0, 0.1),
                     h - 0.1 * (-1.1 * (gym - h + g) + 0.05 * 2 * 40.0 * h / (1 + 40.0 * h * h)), 1e-14)
    args = [x.clone().requires_grad_() for x in (h, gym, g, tau, mu, theta, sigma)]

    def h_ref(h_, gym_, g_, tau_, mu_, theta_, sigma_):
        return h_ - ops.as_column(sigma_, h_) * (
            -ops.as_column(tau_, h_) * (gym_ - h_ + g_) + ops.as_column(mu_, h_) * ops.lorentzian_grad(h_, theta_))

    for a, b in zip(grads(ops.h_step, args), grads(h_ref, args)):
        assert_close(a, b, 1e-12)
    # dual update: addcmul = F + η·residual, also with a float step and a 0-d step
    f, res = t64(rng.standard_normal((2, 8, 5, 6))), t64(rng.standard_normal((2, 8, 5, 6)))
    eta = t64(rng.uniform(0, 2, 8))
    assert_close(ops.dual_update(f, res, eta), f + eta.reshape(8, 1, 1) * res, 1e-15)
    assert_close(ops.dual_update(f, res, 0.3), f + 0.3 * res, 1e-15)
    assert_close(ops.dual_update(f, res, t64(0.3)), f + 0.3 * res, 1e-15)
    # Y-step: in place without autograd, out of place with it
    ens, den = t64(rng.standard_normal((2, 8, 10))), t64(rng.uniform(1, 3, (8, 6)))
    want = torch.fft.irfft2(torch.fft.rfft2(ens) / den, s=(8, 10))
    with torch.no_grad():
        assert_close(ops.y_step(ens, den), want, 1e-14)
    assert_close(ops.y_step(ens.clone().requires_grad_(), den), want, 1e-14)


def test_e_step_hands_both_terms_to_a_fused_shrink(rng):
    a, b = t64(rng.standard_normal((1, 8, 6, 7)) * 0.3), t64(rng.standard_normal((1, 8, 6, 7)) * 0.3)
    q = t64(shrink.value_map_from_threshold(np.full(8, 0.06)) + rng.normal(0, 0.01, (8, 101)))
    s = layers.make_shrink(q, t64([0.05]), "scaled", 0.1, shrink.VALUE_MAP_STEP)
    assert hasattr(s, "of_sum")
    want = layers.make_shrink(q, t64([0.05]), "scaled", 0.1, shrink.VALUE_MAP_STEP, fast=False)(a + b)
    with torch.no_grad():
        assert_close(ops.e_step(a, b, s), want, 1e-13)
    assert_close(ops.e_step(a.clone().requires_grad_(), b, s), want, 1e-13)
    assert_close(ops.e_step(a, b, lambda x: 2 * x), 2 * (a + b), 0)


# ----------------------------------------------------------------------------- value map
def value_map_cases(rng):
    p = shrink.control_points()
    a = rng.uniform(-1.4, 1.4, (2, 3, 7, 9))
    a.flat[:101] = p  # exactly on the knots (k = I_t − 1 at the last one)
    a.flat[101:105] = [-1.0, 1.0, -3.0, 5.0]
    q = shrink.value_map_from_threshold(np.array([0.05, 0.1, 0.0])) + rng.normal(0, 0.01, (3, 101))
    return a, q


@pytest.mark.parametrize("chunk", [1 << 17, 16, 50])
def test_value_map_inference_kernels_match_reference(chunk, rng, monkeypatch):
    """Chunked (CPU) and whole-tensor kernels, plain, scaled and with an addend, per-filter
    rows (L, I_t) and per-image rows (B, L, I_t), against hifm.shrink.value_map_shrink."""
    monkeypatch.setattr(layers, "VALUE_MAP_CHUNK", chunk)
    a, q = value_map_cases(rng)
    at, qt = t64(a), t64(q)
    qb = t64(q[None].repeat(2, 0) + rng.normal(0, 0.01, (2, 3, 101)))
    scale = t64([0.6, 1.7]).reshape(2, 1, 1, 1)
    addend = t64(rng.normal(0, 0.1, a.shape))
    d, s = layers._shrink_tables(qt, shrink.VALUE_MAP_STEP)
    db, sb = layers._shrink_tables(qb, shrink.VALUE_MAP_STEP)
    ref_plain = shrink.value_map_shrink(at, qt)
    ref_rows = shrink.value_map_shrink(at, qb)
    ref_scaled = scale * shrink.value_map_shrink(at / scale, qt)
    ref_sum = shrink.value_map_shrink(at + addend, qt)
    with torch.no_grad():
        for chunked in (True, False):
            run = lambda d_, s_, sc=None, add=None: layers._value_map_no_graph(  # noqa: E731
                at, d_, s_, shrink.VALUE_MAP_STEP, sc, add, chunked=chunked)
            assert_close(run(d, s), ref_plain, 1e-14)
            assert_close(run(db, sb), ref_rows, 1e-14)
            assert_close(run(d, s, scale), ref_scaled, 1e-14)
            assert_close(run(d, s, None, addend), ref_sum, 1e-14)
        assert_close(layers.value_map_torch(at, qt, shrink.VALUE_MAP_STEP, scale, addend),
                     scale * shrink.value_map_shrink((at + addend) / scale, qt), 1e-14)
        # 1-D inputs with one table (no leading axes)
        x = t64(rng.uniform(-1.5, 1.5, 40))
        assert_close(layers.value_map_torch(x, qt[0], 0.02), shrink.value_map_shrink(x, qt[0]), 1e-14)
    # a wrong table is caught (the comparison is not vacuous)
    with torch.no_grad():
        assert float((layers.value_map_torch(at, qt + 1e-3, 0.02) - ref_plain).abs().max()) > 5e-4


def test_value_map_graph_path_gradients(rng):
    a, q = value_map_cases(rng)
    a = a + 1e-4  # off the knots: the derivative in a jumps there
    scale = t64([0.6, 1.7], True)
    args = (t64(a, True), t64(q, True), scale, t64(rng.normal(0, 0.1, a.shape), True))

    def fast(a_, q_, s_, b_):
        return layers.value_map_torch(a_, q_, 0.02, s_.reshape(2, 1, 1, 1), b_)

    def ref(a_, q_, s_, b_):
        sc = s_.reshape(2, 1, 1, 1)
        return sc * shrink.value_map_shrink((a_ + b_) / sc, q_)

    assert_close(fast(*args), ref(*args), 1e-14)
    for g_fast, g_ref in zip(grads(fast, args), grads(ref, args)):
        assert_close(g_fast, g_ref, 1e-12)


def test_value_map_reference_row_index_on_numpy_and_torch(rng):
    """The reference's row index broadcasts (no per-pixel copy) on NumPy and torch alike."""
    a, q = value_map_cases(rng)
    want = np.stack([[shrink.value_map_shrink(a[i, j], q[j]) for j in range(3)] for i in range(2)])
    np.testing.assert_allclose(shrink.value_map_shrink(a, q), want, atol=1e-15, rtol=0)
    np.testing.assert_allclose(shrink.value_map_shrink(t64(a), t64(q)).numpy(), want, atol=1e-15, rtol=0)


# ----------------------------------------------------------------------------- PWSM and the head
@pytest.mark.parametrize("kind", ["pwsm", "symmetric", "siamese", "sobel"])
def test_banded_extractor_and_head_equal_the_whole_image(kind):
    torch.manual_seed(1)
    net = DeRUN(stages=2, extractor=kind, dtype=torch.float64)
    with torch.no_grad():
        net.head.conv2.weight.normal_(0, 0.3)  # a non-zero correction R
    rng = np.random.default_rng(2)
    a, b = t64(rng.random((2, 37, 23))), t64(rng.random((2, 37, 23)))
    radius = net.extractor.radius + net.head.radius

    def correction(a_, b_):
        return net.head(net.extractor(a_, b_))

    with torch.no_grad():
        whole = correction(a[:, None], b[:, None])
        for rows in (4, 7, 16):
            assert_close(pwsm.banded(correction, (a[:, None], b[:, None]), radius, rows), whole, 1e-12)
        # too small a halo is wrong: the test can fail
        bad = pwsm.banded(correction, (a[:, None], b[:, None]), radius - 1, 4)
        assert float((bad - whole).abs().max()) > 1e-6
    # the network's anchor without autograd (bands, channels-last) = with autograd (whole image)
    with torch.no_grad():
        m_fast, _ = net.learned_anchor(a, b)
    m_graph, _ = net.learned_anchor(a, b)
    assert m_graph.requires_grad
    assert_close(m_fast, m_graph, 1e-12)


def test_first_layer_channels_last_equals_conv2d(rng):
    x = t64(rng.random((2, 1, 9, 11)))
    w = t64(rng.standard_normal((32, 1, 3, 3)))
    got = pwsm._conv3x3_channels_last(x, w)
    assert got.is_contiguous(memory_format=torch.channels_last)
    assert_close(got, F.conv2d(x, w, padding=1), 1e-13)


# ----------------------------------------------------------------------------- the whole network
def reference_paths(monkeypatch):
    """Route every fast path back to the generic definitions."""
    monkeypatch.setattr(ops, "_torch_conv_ok", lambda *a, **k: False)
    monkeypatch.setattr(ops, "_y_rhs_torch_ok", lambda *a, **k: False)
    # every "no autograd graph" fast path (in-place steps, buffered value map, banded and
    # channels-last extractor, cached D) takes its with-graph branch
    monkeypatch.setattr(backend, "records_graph", lambda *a, **k: True)
    monkeypatch.setattr(pwsm, "banded", lambda fn, inputs, radius, rows=0: fn(*inputs))
    monkeypatch.setattr(pwsm, "_conv3x3_channels_last", lambda x, w: F.conv2d(x, w, padding=1))
    monkeypatch.setattr(derun_mod, "banded", lambda fn, inputs, radius, rows=0: fn(*inputs))


@pytest.mark.parametrize("task", ["ivf", "mif"])
def test_shipped_network_fast_inference_equals_reference_paths(task, monkeypatch):
    """The shipped weights in float64 on a 70×90 pair (several PWSM bands and value-map chunks):
    the inference fast paths give the reference-path output to rounding, every stage.

    "Rounding" per stage k: 1e-10, or ten times what the reference path itself moves at stage k
    when the infrared input is perturbed by 1e-15 (the trained stages amplify rounding
    differences on this noise-like pair: for the ``ivf`` weights from ≈ 1e-13 at stage 1 to
    ≈ 1e-10 at stage 9), whichever is larger; that sensitivity must itself stay below 1e-8,
    so a fast path that computes something else (differences of 1e-6 and more) still fails."""
    monkeypatch.setattr(pwsm, "BAND_ROWS", 16)
    monkeypatch.setattr(layers, "VALUE_MAP_CHUNK", 999)
    monkeypatch.setattr(ops, "_RHS_BAND_ROWS", 13)
    net = load_pretrained(task, dtype=torch.float64)
    rng = np.random.default_rng(5)
    a, b = t64(rng.random((70, 90))), t64(np.clip(rng.random((70, 90)) * 0.6 + 0.2, 0, 1))
    calls = []
    banded = pwsm.banded
    monkeypatch.setattr(derun_mod, "banded", lambda *a, **k: calls.append(1) or banded(*a, **k))
    with torch.no_grad():
        fast = net(a, b, return_all=True)
    assert calls  # the PWSM ran in bands (16 rows + halo < 70)
    with monkeypatch.context() as mp:
        reference_paths(mp)
        net_ref = load_pretrained(task, dtype=torch.float64)
        net_ref.config.fast_value_map = False
        for st in net_ref.stages:
            st.fast_value_map = False
        with torch.no_grad():
            ref = net_ref(a, b, return_all=True)
            nudge = 1e-15 * t64(np.random.default_rng(6).standard_normal(a.shape))
            ref_nudged = net_ref(a + nudge, b, return_all=True)
    assert_close(fast.anchor, ref.anchor)
    for y_fast, y_ref, y_nudged in zip(fast.stages, ref.stages, ref_nudged.stages):
        sensitivity = float((y_ref - y_nudged).abs().max())
        assert sensitivity < 1e-8
        assert_close(y_fast, y_ref, max(TOL, 10.0 * sensitivity))
    assert float((fast.fused - fast.anchor).abs().max()) > 1e-3  # the stages did something


def test_training_gradients_equal_reference_paths(monkeypatch):
    """One training loss through the autograd fast paths (conv2d ∇, matrix-product ∇ᵀ, gather
    value maps) has the reference paths' parameter gradients."""
    from unrolled.losses import FusionLoss

    def loss_grads():
        torch.manual_seed(3)
        net = DeRUN(stages=3, dtype=torch.float64)
        with torch.no_grad():
            net.head.conv2.weight.normal_(0, 0.1)
            for st in net.stages:
                st.q.add_(0.01 * torch.randn_like(st.q))
        rng = np.random.default_rng(6)
        a, b = t64(rng.random((2, 24, 20))), t64(rng.random((2, 24, 20)))
        res = net(a, b, return_all=True)
        loss, _ = FusionLoss()(res.stages, res.anchor, a, b)
        loss.backward()
        return {k: p.grad.clone() for k, p in net.named_parameters() if p.grad is not None}

    fast = loss_grads()
    with monkeypatch.context() as mp:
        reference_paths(mp)
        mp.setattr(layers, "value_map_torch", lambda a, q, step, scale=None, addend=None: (
            (scale if scale is not None else 1.0) * shrink.value_map_shrink(
                (a if addend is None else a + addend) / (scale if scale is not None else 1.0), q, step)))
        ref = loss_grads()
    assert fast.keys() == ref.keys() and len(fast) > 10
    for k in fast:
        assert_close(fast[k], ref[k], 1e-10 * max(1.0, float(ref[k].abs().max())))


# ----------------------------------------------------------------------------- the cached D
def test_denominator_cache_follows_parameter_changes():
    """D (S6) is cached per size only without autograd, and recomputed when a parameter changes
    (an optimizer step, load_state_dict, an in-place edit)."""
    net = DeRUN(stages=2, extractor="none", dtype=torch.float64)
    st = net.stage(1)

    def cached():
        with torch.no_grad():
            k_l, k_k, s = st.filters_l(), st.filters_k(), st.scalars()
            return st.denominator(k_l, s["rho"], k_k, s["tau"], (12, 10))

    d0 = cached()
    assert cached() is d0  # cached
    with torch.no_grad():
        st.raw_rho.add_(0.5)
    d1 = cached()
    k_l, k_k, s = st.filters_l(), st.filters_k(), st.scalars()
    assert_close(d1, ops.denominator(k_l.detach(), s["rho"].detach(), k_k.detach(), s["tau"].detach(), (12, 10)), 0)
    assert float((d1 - d0).abs().max()) > 1e-3
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    kl, kk, sc = st.filters_l(), st.filters_k(), st.scalars()
    d_grad = st.denominator(kl, sc["rho"], kk, sc["tau"], (12, 10))  # with autograd: never cached
    assert d_grad.requires_grad and d_grad is not st._denom_cache[1]
    d_grad.sum().backward()
    opt.step()
    assert float((cached() - d1).abs().max()) > 1e-6
    net.load_state_dict(DeRUN(stages=2, extractor="none", dtype=torch.float64).state_dict())
    assert_close(cached(), d0, 0)


def test_inference_does_not_modify_inputs_or_state(rng):
    """In-place updates touch only temporaries: the iteration's previous state is intact."""
    net = DeRUN(stages=1, extractor="none", dtype=torch.float64)
    st = net.stage(0)
    m = t64(rng.random((1, 12, 14)))
    with torch.no_grad():
        s0 = iteration.init_state(m, st.filters_l(), st.filters_k())
        s0 = s0._replace(f=s0.f + 0.01, h=s0.h + 0.02, g=s0.g - 0.01)
        copies = [x.clone() for x in s0]
        st(s0, m, t64([0.05]))
    for x, c in zip(s0, copies):
        assert torch.equal(x, c)

"""One definition of the math (§6): every function runs on torch tensors and matches NumPy to 1e-10."""
from __future__ import annotations

import numpy as np
import pytest

from hifm import anchors, filters, iteration, ops, shrink
from hifm.color import rgb_to_ycbcr, ycbcr_to_rgb

torch = pytest.importorskip("torch")


def t(x):
    return torch.tensor(np.array(x, dtype=np.float64))


def close(a, b, tol=1e-10):
    a = a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)
    np.testing.assert_allclose(a, b, atol=tol, rtol=0)


@pytest.fixture
def data(rng):
    kl, kk = filters.dct_atoms().kernels, filters.differences().kernels
    return dict(
        m=rng.random((2, 10, 12)), y=rng.random((2, 10, 12)), kl=kl, kk=kk,
        e=rng.standard_normal((2, 8, 10, 12)) * 0.1, f=rng.standard_normal((2, 8, 10, 12)) * 0.1,
        h=rng.standard_normal((2, 2, 10, 12)) * 0.1, g=rng.standard_normal((2, 2, 10, 12)) * 0.1,
        rho=rng.uniform(0.5, 2, 8), tau=rng.uniform(0.5, 2, 2),
    )


def test_operators_on_torch(data):
    d = data
    for k in (d["kl"], d["kk"]):
        close(ops.grad(t(d["y"]), t(k)), ops.grad(d["y"], k))
        z = np.random.default_rng(0).standard_normal((2, k.shape[0], 10, 12))
        close(ops.grad_adjoint(t(z), t(k)), ops.grad_adjoint(z, k))
    close(filters.otf(t(d["kl"]), (10, 12)).real, filters.otf(d["kl"], (10, 12)).real)
    den = ops.denominator(d["kl"], d["rho"], d["kk"], d["tau"], (10, 12))
    den_t = ops.denominator(t(d["kl"]), t(d["rho"]), t(d["kk"]), t(d["tau"]), (10, 12))
    close(den_t, den)
    gm = ops.grad(d["m"], d["kk"])
    ens = ops.y_rhs(d["m"], d["e"], d["f"], d["h"], d["g"], gm, d["kl"], d["rho"], d["kk"], d["tau"])
    ens_t = ops.y_rhs(*(t(d[k]) for k in ("m", "e", "f", "h", "g")), t(gm), t(d["kl"]), t(d["rho"]), t(d["kk"]), t(d["tau"]))
    close(ens_t, ens)
    close(ops.y_step(ens_t, den_t), ops.y_step(ens, den))
    close(ops.lorentzian_grad(t(d["h"]), 30.0), ops.lorentzian_grad(d["h"], 30.0))
    close(ops.h_step(t(d["h"]), t(gm), t(d["g"]), 1.0, 0.1, 30.0, 0.1), ops.h_step(d["h"], gm, d["g"], 1.0, 0.1, 30.0, 0.1))
    close(ops.dual_update(t(d["f"]), t(d["e"]), t(d["rho"])), ops.dual_update(d["f"], d["e"], d["rho"]))
    lam = np.full(8, 0.03)
    close(ops.objective(t(d["y"]), t(d["m"]), t(d["kl"]), t(lam), t(d["kk"]), 0.1, 30.0),
          ops.objective(d["y"], d["m"], d["kl"], lam, d["kk"], 0.1, 30.0))


def test_shrinkage_on_torch(rng):
    a = rng.uniform(-1.5, 1.5, (3, 8, 9, 9))
    close(shrink.soft_threshold(t(a), 0.07), shrink.soft_threshold(a, 0.07))
    q = shrink.value_map_from_threshold(rng.uniform(0, 0.2, 8)) + rng.normal(0, 0.01, (8, 101))
    close(shrink.value_map_shrink(t(a), t(q)), shrink.value_map_shrink(a, q))


def test_anchors_and_colour_on_torch(rng):
    a, b = rng.random((2, 40, 33))
    for name in ("mean", "max", "two_scale"):
        close(anchors.anchor(t(a), t(b), name), anchors.anchor(a, b, name))
    close(anchors.box_blur(t(a), 5), anchors.box_blur(a, 5))
    rgb = rng.random((6, 7, 3))
    close(rgb_to_ycbcr(t(rgb)), rgb_to_ycbcr(rgb))
    close(ycbcr_to_rgb(t(rgb)), ycbcr_to_rgb(rgb))


def test_admm_step_on_torch(data):
    d = data
    m = d["m"][0]
    gm = ops.grad(m, d["kk"])
    den = ops.denominator(d["kl"], d["rho"], d["kk"], d["tau"], m.shape)
    q = shrink.value_map_from_threshold(np.full(8, 0.04))

    def weights(conv, q_arr):
        return iteration.StepWeights(
            rho=conv(d["rho"]), eta=conv(np.ones(8)), tau=conv(d["tau"]), omega=conv(np.ones(2)),
            mu=conv(np.full(2, 0.05)), theta=conv(np.full(2, 40.0)), sigma=conv(np.full(2, 0.1)),
            shrink=lambda a: shrink.value_map_shrink(a, q_arr),
        )

    s_np = iteration.init_state(m, d["kl"], d["kk"])
    s_t = iteration.init_state(t(m), t(d["kl"]), t(d["kk"]))
    w_np, w_t = weights(np.asarray, q), weights(t, t(q))
    for _ in range(3):
        s_np = iteration.admm_step(s_np, m, gm, den, d["kl"], d["kk"], w_np)
        s_t = iteration.admm_step(s_t, t(m), t(gm), t(den), t(d["kl"]), t(d["kk"]), w_t)
    for a, b in zip(s_t, s_np):
        close(a, b)


def test_value_map_and_y_step_gradcheck(rng):
    a = t(rng.uniform(-1.2, 1.2, (2, 5, 6))).requires_grad_()
    q = t(shrink.value_map_from_threshold(np.array([0.05, 0.1])) + rng.normal(0, 0.01, (2, 101))).requires_grad_()
    # avoid evaluating exactly at a kink of the piecewise-linear map
    assert torch.autograd.gradcheck(lambda a_, q_: shrink.value_map_shrink(a_, q_), (a, q), eps=1e-7, atol=1e-5)
    kl = t(filters.differences().kernels).requires_grad_()
    rho = t([0.7, 1.3]).requires_grad_()
    ens = t(rng.standard_normal((5, 6))).requires_grad_()

    def ystep(ens_, kl_, rho_):
        return ops.y_step(ens_, ops.denominator(kl_, rho_, kl_[:0], t([]), (5, 6)))

    assert torch.autograd.gradcheck(ystep, (ens, kl, rho), eps=1e-6, atol=1e-6)


def test_noise_estimate_matches_pywt_on_numpy_and_torch(rng):
    pywt = pytest.importorskip("pywt")
    from hifm.noise import DB2_HIGHPASS, diagonal_detail, estimate_noise

    np.testing.assert_allclose(DB2_HIGHPASS, pywt.Wavelet("db2").dec_hi, atol=1e-15)
    for shape in [(17, 23), (40, 40), (5, 6)]:
        x = rng.random(shape)
        np.testing.assert_allclose(diagonal_detail(x), pywt.dwt2(x, "db2")[1][2], atol=1e-13)
        want = np.median(np.abs(pywt.dwt2(x, "db2")[1][2])) / 0.6745
        assert float(estimate_noise(x)) == pytest.approx(want, abs=1e-12)
        assert float(estimate_noise(t(x))) == pytest.approx(want, abs=1e-12)


def test_noise_estimate_relation_to_skimage(rng):
    """skimage's estimate_sigma: the same band divided by Φ⁻¹(3/4) rather than 0.6745."""
    restoration = pytest.importorskip("skimage.restoration")
    from scipy.stats import norm

    from hifm.noise import estimate_noise

    for shape in [(17, 23), (64, 48)]:
        x = rng.random(shape)
        want = restoration.estimate_sigma(x)
        assert float(estimate_noise(x)) * 0.6745 / norm.ppf(0.75) == pytest.approx(want, rel=1e-12)


def test_records_graph():
    torch = pytest.importorskip("torch")
    from hifm.backend import records_graph

    leaf = torch.ones(2, requires_grad=True)
    plain = torch.ones(2)
    assert records_graph(plain, leaf, None, np.ones(2))
    assert not records_graph(plain, None, np.ones(2)) and not records_graph()
    with torch.no_grad():
        assert not records_graph(leaf)
    with torch.inference_mode():
        assert not records_graph(leaf)

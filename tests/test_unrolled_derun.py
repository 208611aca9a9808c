"""DeRUN (DESIGN §7): equivalence with the solver at init, shapes, gradients, parameter counts."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import hifm  # noqa: E402
from hifm import filters, ops, shrink  # noqa: E402
from hifm.io import read_image  # noqa: E402
from hifm.params import HIFMParams  # noqa: E402
from hifm.sources import prepare_sources  # noqa: E402
from unrolled import DeRUN, DeRUNConfig  # noqa: E402
from unrolled.layers import value_map_torch  # noqa: E402
from unrolled.losses import FusionLoss  # noqa: E402

from ._data import DATA  # noqa: E402
from .conftest import SAMPLES  # noqa: E402

# without the full data sets (a fresh clone), a pair is taken from the shipped samples instead
STAND_INS = {("tno", "07"): ("tno", "07"), ("tno", "01"): ("tno", "05"), ("tno", "13"): ("tno", "13"),
             ("roadscene-test", "FLIR_07809"): ("tno", "11"), ("roadscene-test", "FLIR_08284"): ("tno", "25"),
             ("roadscene-test", "FLIR_00211"): ("tno", "05"), ("mri-pet", "11"): ("synthetic/mri-pet", "01")}


def real_pair(folder: str, name: str, crop: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Luminance float64 sources of a real pair (optionally a centred crop), or of its shipped stand-in."""
    root = DATA / folder
    if not root.is_dir():
        folder, name = STAND_INS[(folder, name)]
        root = SAMPLES / folder
    from hifm.datasets import find_pairs

    pair = {p.name: p for p in find_pairs(root)}[name]
    prep = prepare_sources(read_image(pair.ir_path, gray_if_equal=True), read_image(pair.vis_path, gray_if_equal=True), "float64")
    a, b = prep.a, prep.b
    if crop is not None:
        h, w = a.shape
        t, l = (h - crop[0]) // 2, (w - crop[1]) // 2
        a, b = a[t : t + crop[0], l : l + crop[1]], b[t : t + crop[0], l : l + crop[1]]
    return np.ascontiguousarray(a), np.ascontiguousarray(b)


def network_output(net: DeRUN, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(a), torch.from_numpy(b)).numpy()


def solver_output(a: np.ndarray, b: np.ndarray, iters: int, params: HIFMParams) -> np.ndarray:
    """hifm.solve before its final clip: float64 inputs in [0, 1] give a float64 result in [0, 1]."""
    return hifm.solve(a, b, iters=iters, params=params)


def clip01(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0.0, 1.0)


# ----------------------------------------------------------------------------- equivalence
PAIRS = [("tno", "07", (128, 160)), ("roadscene-test", "FLIR_07809", (128, 160)), ("tno", "01", (96, 200)),
         ("mri-pet", "11", (128, 128))]
FULL_PAIRS = [("tno", n, None) for n in ("01", "07", "13")] + [
    ("roadscene-test", n, None) for n in ("FLIR_07809", "FLIR_08284", "FLIR_00211")] + [("mri-pet", "11", None)]


@pytest.mark.parametrize("folder,name,crop", PAIRS + [pytest.param(*p, marks=pytest.mark.slow) for p in FULL_PAIRS])
def test_from_hifm_equals_solver_defaults(folder, name, crop):
    """At the default (noise-adaptive, soft E-step) parameters, N = 9: max |Δ| < 1e-10 in float64
    (measured ≤ 7e-12: the two FFT libraries and the fused kernel's summation order).

    Real pairs: centred crops in the quick set, whole images in the slow set."""
    a, b = real_pair(folder, name, crop)
    params = HIFMParams(dtype="float64")
    ref = solver_output(a, b, 9, params)
    net = DeRUN.from_hifm(params, stages=9, dtype=torch.float64)
    out = network_output(net, a, b)
    assert out.shape == a.shape
    diff = np.abs(clip01(out) - ref).max()
    assert diff < 1e-10, diff
    # not trivially equal to the anchor: the iterations did something
    assert np.abs(ref - hifm.fuse(a, b, method="anchor", dtype="float64")).max() > 1e-3


@pytest.mark.parametrize(
    "kw,overrides",
    [
        (dict(shrink="value_map"), {}),  # absolute value map = the solver's value-map E-step, any t
        (dict(shrink="soft", lam=0.04), dict(value_map="absolute")),  # t = 0.04 on the grid: = soft
        (dict(shrink="value_map", lam=0.04), dict(value_map="scaled")),  # t on the grid: scaled = value map
        (dict(filters_l="dct3", mu=0.02, theta=50.0, eta=0.8, omega=1.2, rho=2.0, tau=0.5), {}),
        (dict(shrink="value_map", filters_l="diff4", h_steps=2, mu=0.01, sigma_h=0.05), {}),
    ],
)
def test_from_hifm_equals_solver_other_parameters(kw, overrides):
    a, b = real_pair("roadscene-test", "FLIR_07809", (120, 144))
    params = HIFMParams(dtype="float64", **kw)
    ref = solver_output(a, b, 6, params)
    net = DeRUN.from_hifm(params, stages=6, dtype=torch.float64, **overrides)
    assert np.abs(clip01(network_output(net, a, b)) - ref).max() < 1e-10  # measured ≤ 1.7e-11


def test_noise_adaptive_threshold_kept_on_degraded_input():
    """A noisy visible image raises t = κσ̂; the scaled value maps follow it exactly (soft E-step)."""
    a, b = real_pair("tno", "07", (128, 128))
    b = np.clip(b + np.random.default_rng(0).normal(0, 0.05, b.shape), 0, 1)
    params = HIFMParams(dtype="float64")
    _, info = hifm.solve(a, b, iters=5, params=params, return_info=True)
    assert info.threshold > 5 * params.noise_floor  # really noise-adaptive here
    net = DeRUN.from_hifm(params, stages=5, dtype=torch.float64)
    with torch.no_grad():
        res = net(torch.from_numpy(a), torch.from_numpy(b), return_all=True)
    assert float(res.threshold[0]) == pytest.approx(info.threshold, rel=1e-12)
    assert np.abs(clip01(res.fused.numpy()) - hifm.solve(a, b, iters=5, params=params)).max() < 1e-10


def test_reference_value_map_path_is_equivalent():
    a, b = real_pair("mri-pet", "11", (64, 80))
    params = HIFMParams(dtype="float64", shrink="value_map")
    ref = solver_output(a, b, 4, params)
    net = DeRUN.from_hifm(params, stages=4, dtype=torch.float64, fast_value_map=False)
    assert np.abs(clip01(network_output(net, a, b)) - ref).max() < 1e-10  # measured ≤ 1.7e-11


# ----------------------------------------------------------------------------- structure
def test_default_network_size_and_init():
    net = DeRUN()
    counts = net.count_parameters()
    # per stage: 8×8 DCT coefficients + 2×9 ∇_k taps + 26 scalars + 8×101 value-map points;
    # stage 1 learns ∇_l, η, q (its Y-step returns M whatever it is), stage N only its Y-step
    assert counts["stages"] == (64 + 8 + 808) + 7 * (64 + 18 + 26 + 808) + (64 + 18 + 8 + 2)
    assert counts["extractor"] == 17712
    assert 28_000 <= counts["total"] <= 32_000
    st = net.stage(0)
    np.testing.assert_allclose(st.coef_l.detach().numpy(), np.eye(8))  # identity in the DCT basis
    np.testing.assert_allclose(st.filters_k().detach().numpy(), filters.differences().kernels)
    sc = st.scalars()
    assert float(sc["s"][0]) == pytest.approx(1.0)  # σ = 1/(τ + 2μθ), the solver's default
    assert float(sc["sigma"][0]) == pytest.approx(HIFMParams().h_step_size)
    tied = DeRUN(tied=True)
    assert tied.count_parameters()["stages"] == 64 + 18 + 26 + 808


def test_shapes_batches_and_tied():
    rng = np.random.default_rng(1)
    a = torch.tensor(rng.random((3, 37, 53)))
    b = torch.tensor(rng.random((3, 37, 53)))
    net = DeRUN(stages=3, dtype=torch.float64)
    with torch.no_grad():
        y = net(a, b)
        res = net(a[:, None], b[:, None], return_all=True)
        y1 = net(a[1], b[1])
    assert y.shape == (3, 37, 53) and res.fused.shape == (3, 1, 37, 53) and y1.shape == (37, 53)
    assert len(res.stages) == 3 and torch.equal(res.stages[-1], res.fused)
    # batching does not mix images (per-image noise thresholds included)
    assert torch.allclose(y[1], y1, atol=1e-12)
    with pytest.raises(ValueError, match="sources differ in shape"):
        net(a, b[:, :10])


def test_every_parameter_gets_a_finite_gradient():
    torch.manual_seed(0)
    rng = np.random.default_rng(2)
    net = DeRUN.from_hifm(HIFMParams(filters_l="dct3", mu=0.01), stages=3)
    a = torch.tensor(rng.random((2, 32, 40)), dtype=torch.float32)
    b = torch.tensor(rng.random((2, 32, 40)), dtype=torch.float32)
    res = net(a, b, return_all=True)
    loss, _ = FusionLoss()(res.stages, res.anchor, a, b)
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    for n, st in enumerate(net.stages):  # every learned tensor really acts on the loss
        for name, p in st.named_parameters():
            if name != "raw_mu":  # μ = 1e-12 at init: its gradient underflows to ~0
                assert float(p.grad.abs().sum()) > 1e-12, (n, name)
    assert float(net.head.conv2.weight.grad.abs().sum()) > 0
    # R's last layer is zero at init, so the extractor learns from the second step on
    with torch.no_grad():
        net.head.conv2.weight.add_(0.01)
    net.zero_grad()
    res = net(a, b, return_all=True)
    FusionLoss()(res.stages, res.anchor, a, b)[0].backward()
    assert all(float(p.grad.abs().sum()) > 0 for p in net.extractor.parameters())


def test_value_map_torch_matches_reference_and_gradcheck():
    rng = np.random.default_rng(3)
    a = torch.tensor(rng.uniform(-1.3, 1.3, (2, 3, 4, 5)), requires_grad=True)
    q = torch.tensor(shrink.value_map_from_threshold(np.array([0.05, 0.1, 0.0])) + rng.normal(0, 0.01, (3, 101)),
                     requires_grad=True)
    ref = shrink.value_map_shrink(a, q)
    fast = value_map_torch(a, q, shrink.VALUE_MAP_STEP)
    assert torch.allclose(fast, ref, atol=1e-14, rtol=0)
    ga = torch.autograd.grad(fast.sum(), (a, q))
    gr = torch.autograd.grad(ref.sum(), (a, q))
    for x, y in zip(ga, gr):
        assert torch.allclose(x, y, atol=1e-12)
    # per-image tables (absolute mode): q (B, L, I_t)
    qb = q.detach()[None].repeat(2, 1, 1) + torch.tensor(rng.normal(0, 0.01, (2, 3, 101)))
    assert torch.allclose(value_map_torch(a, qb, 0.02), shrink.value_map_shrink(a, qb), atol=1e-14)
    a_small = a.detach()[:1, :, :2].clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a_, q_: value_map_torch(a_, q_, 0.02), (a_small, q), eps=1e-7, atol=1e-5,
                                    fast_mode=True)


def test_y_step_with_learned_filters_gradcheck():
    """(S5–S6) through the stage's parametrisation: D from hifm.ops.denominator of the learned filters."""
    cfg = DeRUNConfig(stages=1, extractor="none")
    st = DeRUN(cfg, dtype=torch.float64).stage(0)
    rng = np.random.default_rng(4)
    ens = torch.tensor(rng.standard_normal((2, 6, 7)), requires_grad=True)
    coef = (st.coef_l.detach() + torch.tensor(rng.normal(0, 0.1, (8, 8)))).requires_grad_()
    kk = (st.kernels_k.detach() + torch.tensor(rng.normal(0, 0.1, (2, 3, 3)))).requires_grad_()
    raw_rho = st.raw_rho.detach().clone().requires_grad_()
    raw_tau = st.raw_tau.detach().clone().requires_grad_()

    def y_step(ens_, coef_, kk_, rr_, rt_):
        kl = torch.einsum("la,ahw->lhw", coef_, st.atoms)
        denom = ops.denominator(kl, torch.nn.functional.softplus(rr_), kk_, torch.nn.functional.softplus(rt_), (6, 7))
        return ops.y_step(ens_, denom)

    assert torch.autograd.gradcheck(y_step, (ens, coef, kk, raw_rho, raw_tau), eps=1e-6, atol=1e-6, fast_mode=True)


def test_y_step_solves_the_normal_equations():
    """The Y-step of a stage with perturbed learned filters solves (I + Σρ∇ᵀ∇ + Στ∇ᵀ∇) Y = Ens."""
    st = DeRUN(stages=1, extractor="none", dtype=torch.float64).stage(0)
    with torch.no_grad():
        st.coef_l.add_(0.2 * torch.randn(8, 8, dtype=torch.float64))
        st.kernels_k.add_(0.2 * torch.randn(2, 3, 3, dtype=torch.float64))
        kl, kk, sc = st.filters_l(), st.filters_k(), st.scalars()
        ens = torch.randn(12, 10, dtype=torch.float64)
        y = ops.y_step(ens, ops.denominator(kl, sc["rho"], kk, sc["tau"], (12, 10)))
        lhs = y + ops.grad_adjoint(ops.as_column(sc["rho"], y) * ops.grad(y, kl), kl) + ops.grad_adjoint(
            ops.as_column(sc["tau"], y) * ops.grad(y, kk), kk
        )
    assert torch.allclose(lhs, ens, atol=1e-10)


def test_zero_mu_and_bad_filters():
    net = DeRUN.from_hifm(HIFMParams(mu=0.0), stages=1, dtype=torch.float64)
    assert float(net.stage(0).scalars()["mu"][0]) == pytest.approx(1e-12, rel=1e-6)
    with pytest.raises(ValueError, match="zero-mean"):
        DeRUN(filters_l=[[[0, 0, 0], [0, 1, 0], [0, 0, 0]]])
    with pytest.raises(ValueError, match="value_map must be one of"):
        DeRUN(value_map="nope")
    with pytest.raises(ValueError, match="extractor must be one of"):
        DeRUN(extractor="resnet")


def test_import_hifm_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, hifm, hifm.api, hifm.cli; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)

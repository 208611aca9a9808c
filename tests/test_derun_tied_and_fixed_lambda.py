"""DeRUN configurations that the real-data equivalence tests do not cover, on a synthetic pair
(no data needed): a tied network (one stage module for all N stages) and a fixed λ off the
value-map grid."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import hifm  # noqa: E402
from hifm.params import HIFMParams  # noqa: E402
from hifm.synthetic import synthetic_pair  # noqa: E402
from unrolled import DeRUN  # noqa: E402


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    ir, vis = synthetic_pair(44, 58, seed=2, noise=0.03)
    return ir.astype(np.float64), vis.astype(np.float64)


def network(net: DeRUN, a: np.ndarray, b: np.ndarray, **kw) -> "torch.Tensor | object":
    with torch.no_grad():
        return net(torch.from_numpy(a), torch.from_numpy(b), **kw)


def test_tied_network_at_init_equals_the_solver(pair):
    a, b = pair
    params = HIFMParams(dtype="float64", mu=0.01, filters_l="dct3")
    net = DeRUN.from_hifm(params, stages=6, dtype=torch.float64, tied=True)
    assert len(net.stages) == 1 and net.n_stages == 6
    res = network(net, a, b, return_all=True)
    assert len(res.stages) == 6
    for n in (1, 3, 6):  # every stage's output is that many solver iterations
        ref = hifm.solve(a, b, iters=n, params=params)
        # measured ≤ 6e-14 (the sources' TV denoising runs in NumPy's fused engine and torch's reference)
        assert np.abs(np.clip(res.stages[n - 1].numpy(), 0, 1) - ref).max() < 2e-13, n
    # the iterations did something
    assert np.abs(res.stages[-1].numpy() - res.stages[0].numpy()).max() > 1e-3


def test_tied_network_applies_its_one_stage_at_every_iteration(pair):
    """A tied network with perturbed (learned-like) parameters equals an untied network whose
    every stage holds those same values."""
    a, b = pair
    params = HIFMParams(dtype="float64", mu=0.01)
    tied = DeRUN.from_hifm(params, stages=4, dtype=torch.float64, tied=True)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in tied.stages[0].named_parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen, dtype=p.dtype) * (1 + p.abs()))
        tied.head.conv2.weight.normal_(0, 0.01, generator=gen)
    untied = DeRUN.from_hifm(params, stages=4, dtype=torch.float64, tied=False)
    untied.load_state_dict({k: v for k, v in tied.state_dict().items() if not k.startswith("stages.")}, strict=False)
    for st in untied.stages:
        st.load_state_dict(tied.stages[0].state_dict())
    out_t = network(tied, a, b, return_all=True)
    out_u = network(untied, a, b, return_all=True)
    for n, (x, y) in enumerate(zip(out_t.stages, out_u.stages)):
        # measured: 0 (the same operations)
        assert torch.allclose(x, y, rtol=0, atol=1e-13), n
    # and the perturbation changed the result (the comparison can fail)
    init = network(DeRUN.from_hifm(params, stages=4, dtype=torch.float64, tied=True), a, b)
    assert float((out_t.fused - init).abs().max()) > 1e-3


@pytest.mark.parametrize(
    "kw,mode",
    [
        (dict(shrink="soft", lam=0.03), "scaled"),  # t = 0.03 off the grid of V = 0.02: scaled = soft for any t
        (dict(shrink="value_map", lam=0.03), "absolute"),  # absolute = the solver's value map for any t
        (dict(shrink="soft", lam=0.04, rho=2.0), "scaled"),  # t = λ/ρ = 0.02 on the grid
    ],
)
def test_fixed_lambda_off_and_on_the_grid(pair, kw, mode):
    a, b = pair
    params = HIFMParams(dtype="float64", **kw)
    net = DeRUN.from_hifm(params, stages=5, dtype=torch.float64)
    assert net.config.value_map == mode
    res = network(net, a, b, return_all=True)
    assert float(res.threshold[0]) == pytest.approx(kw["lam"] / kw.get("rho", 1.0), rel=1e-15)
    ref = hifm.solve(a, b, iters=5, params=params)
    # measured ≤ 9.6e-12 (the two FFT libraries and the fused kernel's summation order)
    assert np.abs(np.clip(res.fused.numpy(), 0, 1) - ref).max() < 3e-11


def test_soft_and_absolute_value_map_differ_off_the_grid(pair):
    """Off the grid the value map of t is not soft_t (it differs near ±t by up to V/4), so the
    absolute mode must not equal the soft solver there: the cases above are not vacuous."""
    a, b = pair
    params = HIFMParams(dtype="float64", shrink="soft", lam=0.03)
    net = DeRUN.from_hifm(params, stages=5, dtype=torch.float64, value_map="absolute")
    ref = hifm.solve(a, b, iters=5, params=params)
    assert np.abs(np.clip(network(net, a, b).numpy(), 0, 1) - ref).max() > 1e-4


def test_threshold_comes_from_the_solvers_anchor_not_the_learned_one(pair):
    """t = HIFMParams.threshold(σ̂) per image as the solver computes it (unrolled/derun.py), also when
    the learned correction R is not zero: here with σ̂ on the solver's anchor (``noise_from="anchor"``;
    the default estimates it on the sources, which R cannot change either)."""
    from hifm.noise import estimate_noise

    a, b = pair
    params = HIFMParams(dtype="float64", noise_from="anchor", denoise_sources=False)
    net = DeRUN.from_hifm(params, stages=2, dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        net.head.conv2.weight.normal_(0, 0.2, generator=gen)
    res = network(net, a, b, return_all=True)
    base = hifm.anchor(a, b)
    want = params.threshold(float(estimate_noise(base)))
    assert want > 2 * params.noise_floor  # noise-adaptive here, not the floor
    assert float(res.threshold[0]) == pytest.approx(want, rel=1e-12)
    # the learned anchor's noise level is another one: the check above can fail
    assert abs(params.threshold(float(estimate_noise(res.anchor.numpy()))) - want) > 1e-3 * want

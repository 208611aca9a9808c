"""Inference (DESIGN §7.2, §11): weights with sha256, shipped models, fuse_derun conventions, sizes, batches."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

import hifm  # noqa: E402
from hifm.errors import InputError  # noqa: E402
from hifm.params import HIFMParams  # noqa: E402
from unrolled import DeRUN, load_pretrained  # noqa: E402
from unrolled.inference import fuse_derun  # noqa: E402
from unrolled.weights import WEIGHTS_DIR, WeightsError, load_weights, save_weights, sha256_file  # noqa: E402


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:37, 0:53] / 37.0
    ir = np.clip(0.2 + 0.6 * np.exp(-((xx - 0.7) ** 2 + (yy - 0.5) ** 2) * 6), 0, 1)
    vis = np.clip(0.5 + 0.3 * np.sin(9 * xx) * np.cos(7 * yy) + 0.03 * rng.standard_normal(xx.shape), 0, 1)
    rgb = np.clip(np.stack([vis, 0.8 * vis + 0.1, 0.6 * vis + 0.2], -1), 0, 1)
    return ir, vis, rgb


def small_net(**kw) -> DeRUN:
    torch.manual_seed(0)
    net = DeRUN(stages=3, **kw)
    with torch.no_grad():  # a "trained" network: R is no longer zero
        net.head.conv2.weight.normal_(0, 0.01)
    return net.eval()


def test_save_load_roundtrip_and_sha256(tmp_path, pair):
    ir, vis, _ = pair
    net = small_net()
    j = save_weights(net, tmp_path / "m.safetensors", info={"note": "test"})
    meta = json.loads(j.read_text())
    assert meta["sha256"] == sha256_file(tmp_path / "m.safetensors") and meta["info"]["note"] == "test"
    back = load_weights(j)
    a, b = torch.tensor(ir, dtype=torch.float32), torch.tensor(vis, dtype=torch.float32)
    with torch.no_grad():
        assert torch.equal(net(a, b), back(a, b))
    # tampered weights are refused with a clear message
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(j, bad / "m.json")
    raw = bytearray((tmp_path / "m.safetensors").read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (bad / "m.safetensors").write_bytes(bytes(raw))
    with pytest.raises(WeightsError, match="sha256 mismatch.*refusing"):
        load_weights(bad / "m.json")
    with pytest.raises(WeightsError, match="not found"):
        load_weights(tmp_path / "nothing.json")


@pytest.mark.parametrize("task", ["ivf", "mif"])
def test_shipped_weights(task, pair):
    j = WEIGHTS_DIR / f"{task}.json"
    meta = json.loads(j.read_text())
    assert meta["sha256"] == sha256_file(WEIGHTS_DIR / meta["weights"])
    assert meta["info"]["command"] and meta["info"]["step"] > 0
    net = load_pretrained(task)
    assert 25_000 < net.count_parameters()["total"] < 35_000
    assert not net.training
    # trained: differs from its initialisation (R ≠ 0)
    assert float(net.head.conv2.weight.detach().abs().sum()) > 0
    ir, vis, rgb = pair
    out = fuse_derun((ir * 255).astype(np.uint8), (rgb * 255).astype(np.uint8), task=task)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    with pytest.raises(WeightsError, match="unknown task"):
        load_pretrained("xyz")


def test_fuse_derun_conventions(pair):
    ir, vis, rgb = pair
    net = small_net()
    g8 = fuse_derun((ir * 255).astype(np.uint8), (vis * 255).astype(np.uint8), weights=net)
    assert g8.shape == ir.shape and g8.dtype == np.uint8
    c16 = fuse_derun((ir * 65535).astype(np.uint16), (rgb * 65535).astype(np.uint16), weights=net)
    assert c16.shape == rgb.shape and c16.dtype == np.uint16
    f32 = fuse_derun(ir.astype(np.float32), vis.astype(np.float32), weights=net)
    assert f32.dtype == np.float32 and 0 <= f32.min() and f32.max() <= 1
    # the float result is the network on the luminance, clipped
    with torch.no_grad():
        direct = net(torch.tensor(ir, dtype=torch.float32), torch.tensor(vis, dtype=torch.float32)).numpy()
    assert np.abs(f32 - np.clip(direct, 0, 1)).max() < 1e-7  # measured: 0
    # colour: the chroma of the colour source is kept (DESIGN §5)
    from hifm.color import rgb_to_ycbcr

    col = fuse_derun(ir, rgb, weights=net, dtype="float64")
    np.testing.assert_allclose(rgb_to_ycbcr(col)[..., 1:], rgb_to_ycbcr(rgb)[..., 1:], rtol=0, atol=1e-13)  # measured 1.1e-16
    with pytest.raises(InputError):
        fuse_derun(ir, vis[:10], weights=net)
    with pytest.raises(InputError, match="float images must lie in"):
        fuse_derun(ir * 255, vis, weights=net)


def test_batches_and_sizes(pair):
    ir, vis, _ = pair
    net = small_net()
    irs = [ir, ir[:20, :31], ir[1:, 2:], ir]
    viss = [vis, vis[:20, :31], vis[1:, 2:], vis[::-1].copy()]
    outs = fuse_derun(irs, viss, weights=net, batch_size=2)
    assert [o.shape for o in outs] == [x.shape for x in irs]
    for x, y, o in zip(irs, viss, outs):  # batching changes nothing
        # float32: measured 0 on the Zen 3/4 CPUs here, 2.4e-7 (4 ulp at 0.5) on the GPU
        # machine's CPU, where oneDNN picks other convolution kernels for a batch of 2
        assert np.abs(fuse_derun(x, y, weights=net) - o).max() < 1e-6
    tiny = fuse_derun(ir[:5, :7], vis[:5, :7], weights=net)
    assert tiny.shape == (5, 7)


def test_at_init_fuse_derun_equals_solve_with_colour(pair):
    """The whole path (colour, layout) at init equals hifm.solve with the same parameters."""
    ir, _, rgb = pair
    p = HIFMParams(dtype="float64")
    net = DeRUN.from_hifm(p, stages=9, dtype=torch.float64)
    ours = fuse_derun(ir, rgb, weights=net, dtype="float64")
    ref = hifm.solve(ir, rgb, iters=9, params=p)
    assert ours.shape == ref.shape == rgb.shape
    assert np.abs(ours - ref).max() < 1e-10  # measured 3.4e-12


def test_noisy_colour_chroma_is_denoised_as_the_solver_does(pair):
    """Colour noise in Cb/Cr: the network (at init) denoises the chroma exactly as hifm.solve."""
    from hifm.color import rgb_to_ycbcr

    ir, _, rgb = pair
    noisy = np.clip(rgb + 0.08 * np.random.default_rng(7).standard_normal(rgb.shape), 0, 1)
    p = HIFMParams(dtype="float64")
    net = DeRUN.from_hifm(p, stages=9, dtype=torch.float64)
    ours = fuse_derun(ir, noisy, weights=net, dtype="float64")
    ref, info = hifm.solve(ir, noisy, iters=9, params=p, return_info=True)
    assert max(info.chroma.lam) > p.noise_floor  # the chroma really was denoised
    assert np.abs(ours - ref).max() < 1e-10
    kept = rgb_to_ycbcr(noisy)[..., 1:]
    assert np.abs(rgb_to_ycbcr(ours)[..., 1:] - kept).max() > 0.02  # not the noisy chroma


def test_hifm_fuse_method_derun_and_devices(pair):
    ir, vis, _ = pair
    out = hifm.fuse((ir * 255).astype(np.uint8), (vis * 255).astype(np.uint8), method="derun")
    assert out.shape == ir.shape and out.dtype == np.uint8
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA"):
            fuse_derun(ir, vis, device="cuda")
    else:  # pragma: no cover - needs a GPU
        _assert_cuda_matches_cpu(ir, vis)


def _assert_cuda_matches_cpu(ir: np.ndarray, vis: np.ndarray) -> None:  # pragma: no cover - needs a GPU
    """The shipped IVF weights on CUDA against the CPU. float64: the same result (measured
    9.5e-10 on an H200 with a TNO pair). float32: the trained network's own rounding error is
    large (4.4e-3 against float64 on that pair, on the CPU and on CUDA alike; 5.5e-4 between
    the two devices on this test's pair), so the GPU must be as close to the float64 result
    as the CPU is."""
    ref = fuse_derun(ir, vis, device="cpu", dtype="float64")
    assert np.abs(fuse_derun(ir, vis, device="cuda", dtype="float64") - ref).max() < 1e-8
    err_cuda = np.abs(fuse_derun(ir, vis, device="cuda") - ref).max()
    err_cpu = np.abs(fuse_derun(ir, vis, device="cpu") - ref).max()
    assert err_cuda <= 2 * err_cpu + 1e-6, (err_cuda, err_cpu)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none here)")
def test_cuda_at_init_equals_solver_and_shipped_weights_equal_cpu(pair):  # pragma: no cover - needs a GPU
    """On CUDA the non-banded fast paths run: the network at init still equals hifm.solve
    (float64), and the shipped IVF weights give the CPU's result (:func:`_assert_cuda_matches_cpu`)."""
    ir, vis, _ = pair
    p = HIFMParams(dtype="float64")
    net = DeRUN.from_hifm(p, stages=9, dtype=torch.float64)
    ours = fuse_derun(ir, vis, weights=net, dtype="float64", device="cuda")
    assert np.abs(ours - hifm.solve(ir, vis, iters=9, params=p)).max() < 1e-6
    _assert_cuda_matches_cpu(ir, vis)

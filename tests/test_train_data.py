"""Training samples (unrolled/data.py, docs/training.md) against what they claim: aligned crops of
the two sources with the same flips, degradations on the documented source, clean targets,
and a torch RNG that a resumed run continues."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from hifm.io import write_image  # noqa: E402
from unrolled import train as train_mod  # noqa: E402
from unrolled.data import CropSampler, DegradeConfig, LoadedPair  # noqa: E402
from unrolled.train import TrainConfig, load_checkpoint, train  # noqa: E402


def pairs(kind: str = "ivf") -> list[LoadedPair]:
    """Two pairs whose pixels are all different, so that a crop's position and flips are unique."""
    out = []
    for i in range(2):
        a = (np.arange(30 * 34, dtype=np.float32).reshape(30, 34) + 1000 * i) / 4000
        b = np.sqrt(a) * 0.9
        out.append(LoadedPair(f"p{i}", a, b.astype(np.float32), kind))
    return out


def locate(crop: np.ndarray, image: np.ndarray, size: int) -> set[tuple[int, int, bool, bool]]:
    """Every (top, left, flip left-right, flip up-down) that turns ``image`` into ``crop``."""
    found = set()
    h, w = image.shape
    for top in range(h - size + 1):
        for left in range(w - size + 1):
            c = image[top : top + size, left : left + size]
            for lr in (False, True):
                for ud in (False, True):
                    x = c[:, ::-1] if lr else c
                    x = x[::-1] if ud else x
                    if np.array_equal(x, crop):
                        found.add((top, left, lr, ud))
    return found


def test_the_two_sources_are_cropped_and_flipped_alike():
    loaded = pairs()
    sampler = CropSampler(loaded, crop=12, seed=4, degrade=DegradeConfig(p=0.0))
    by_name = {p.name: p for p in loaded}
    flips = set()
    for g in range(24):
        a_in, b_in, a, b, info = sampler.sample(g // 4, g)
        src = by_name[info["pair"]]
        where_a, where_b = locate(a, src.a, 12), locate(b, src.b, 12)
        assert where_a and where_a == where_b, (g, where_a, where_b)  # same place, same flips
        assert {(t, l) for t, l, _, _ in where_a} == {(info["top"], info["left"])}
        flips |= {(lr, ud) for _, _, lr, ud in where_a}
        assert np.array_equal(a_in, a) and np.array_equal(b_in, b)  # p = 0: no degradation
    assert len(flips) == 4  # every flip combination occurred


def test_photometric_augmentation_raises_each_source_to_its_own_power():
    loaded = pairs()
    plain = CropSampler(loaded, crop=12, seed=4, degrade=DegradeConfig(p=0.0))
    off = CropSampler(loaded, crop=12, seed=4, degrade=DegradeConfig(p=0.0), gamma=0.0)
    aug = CropSampler(loaded, crop=12, seed=4, degrade=DegradeConfig(p=0.0), gamma=0.4)
    by_name = {p.name: p for p in loaded}
    logs = []
    for g in range(16):
        ref = plain.sample(g // 4, g)
        assert all(np.array_equal(x, y) for x, y in zip(off.sample(g // 4, g)[:4], ref[:4]))  # gamma 0 draws nothing
        a_in, b_in, a, b, info = aug.sample(g // 4, g)
        assert np.array_equal(a_in, a) and np.array_equal(b_in, b)  # the targets are the augmented crops
        assert (info["top"], info["left"]) == (ref[4]["top"], ref[4]["left"])  # same crop as without it
        for x, x0, e in zip((a, b), ref[2:4], info["gamma"]):
            assert np.exp(-0.4) <= e <= np.exp(0.4)
            np.testing.assert_allclose(x, x0.astype(np.float64) ** e, rtol=1e-5, atol=1e-7)
        logs.append(np.log(info["gamma"]))
        assert by_name[info["pair"]] is not None
    logs = np.array(logs)
    assert np.abs(logs[:, 0] - logs[:, 1]).max() > 0.05  # the two sources get their own exponents
    assert logs.min() < -0.1 and logs.max() > 0.1  # both darker and brighter crops occur


@pytest.mark.parametrize("kind,source", [("stripe_noise", "a"), ("low_light", "b"), ("fog", "b")])
def test_ivf_degradations_go_to_the_documented_source(kind, source):
    """Infrared–visible data: stripe noise on the infrared image (A), low light and fog on the
    visible one (B); the other source and both targets stay clean."""
    sampler = CropSampler(pairs("ivf"), crop=12, seed=1, degrade=DegradeConfig(p=1.0, kinds=[kind]))
    for g in range(8):
        a_in, b_in, a, b, info = sampler.sample(0, g)
        assert info["degradation"]["kind"] == kind and info["degradation"]["source"] == source
        degraded, clean = (a_in, b_in) if source == "a" else (b_in, a_in)
        target_degraded, target_clean = (a, b) if source == "a" else (b, a)
        assert np.array_equal(clean, target_clean)
        assert not np.array_equal(degraded, target_degraded)


def test_medical_degradations_go_to_either_source():
    sampler = CropSampler(pairs("medical"), crop=12, seed=1, degrade=DegradeConfig(p=1.0, kinds=["gaussian_noise"]))
    sources = {sampler.sample(0, g)[4]["degradation"]["source"] for g in range(16)}
    assert sources == {"a", "b"}


def test_resume_continues_the_torch_random_sequence(tmp_path, monkeypatch):
    """A torch random draw during training (an augmentation, dropout) continues its sequence
    across an interruption: 2 steps = 1 step + resume + 1 step (the checkpoint's RNG state is
    restored, not the one that building the model leaves)."""
    root = tmp_path / "data"
    (root / "ir").mkdir(parents=True)
    (root / "vi").mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        write_image(root / "ir" / f"{i}.png", (rng.random((24, 26)) * 255).astype(np.uint8))
        write_image(root / "vi" / f"{i}.png", (rng.random((24, 26)) * 255).astype(np.uint8))
    draws: list[float] = []

    class DrawingSampler(CropSampler):
        def batch(self, *args, **kwargs):  # noqa: ANN002, ANN003
            draws.append(float(torch.rand(1)))  # consumes the torch RNG at every step
            return super().batch(*args, **kwargs)

    monkeypatch.setattr(train_mod, "CropSampler", DrawingSampler)

    def config(out: Path) -> TrainConfig:
        return TrainConfig(data=[{"root": str(root)}], out=str(out), steps=2, batch=1, crop=16, warmup=1,
                           ckpt_every=1, threads=1, model={"stages": 2, "head_width": 4}, tensorboard=False,
                           degrade={"p": 0.0, "kinds": None})

    train(config(tmp_path / "full"), progress=False)
    full = list(draws)
    draws.clear()
    train(config(tmp_path / "part"), progress=False, max_steps=1)
    torch.manual_seed(12345)  # whatever happens in between (another run, a new process)
    train(config(tmp_path / "part"), resume=True, progress=False)
    assert draws == full and full[0] != full[1]
    a, _ = load_checkpoint(tmp_path / "full" / "final.json")
    b, _ = load_checkpoint(tmp_path / "part" / "final.json")
    assert torch.equal(a["rng.torch"], b["rng.torch"])


@pytest.mark.parametrize("gamma", [-0.1, 2.5, float("nan"), True])
def test_a_bad_gamma_is_refused_by_name(gamma):
    from hifm.errors import InputError

    with pytest.raises(InputError, match="training configuration: gamma must lie in"):
        TrainConfig(gamma=gamma)

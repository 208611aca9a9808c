"""What the trainer claims about its optimisation (unrolled/train.py, docs/training.md), checked
against the definitions: the learning-rate schedule at every step, AdamW's weight decay on
the extractor/head convolutions only, and gradient-norm clipping."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from hifm.io import write_image  # noqa: E402
from unrolled.train import TrainConfig, build_model, load_checkpoint_model, lr_at, train  # noqa: E402

ADAMW = torch.optim.AdamW  # the real class (the tests below replace it while training)


def schedule(step: int, lr: float, steps: int, warmup: int, ratio: float) -> float:
    """docs/training.md: linear warm-up (lr·(s+1)/warmup for s < warmup), then cosine from lr at
    s = warmup to lr·ratio at s = steps: lo + (lr − lo)·(1 + cos(π (s − warmup)/(steps − warmup)))/2."""
    if step < warmup:
        return lr * (step + 1) / warmup
    lo = lr * ratio
    x = min((step - warmup) / (steps - warmup), 1.0)
    return lo + (lr - lo) * (1 + math.cos(math.pi * x)) / 2


@pytest.mark.parametrize("steps,warmup,ratio", [(100, 10, 0.1), (57, 0, 0.25), (400, 20, 0.1), (30, 29, 0.5)])
def test_lr_at_every_step_follows_the_formula(steps, warmup, ratio):
    cfg = TrainConfig(steps=steps, warmup=warmup, lr=2e-3, lr_min_ratio=ratio)
    for s in range(steps + 1):
        assert lr_at(cfg, s) == pytest.approx(schedule(s, 2e-3, steps, warmup, ratio), rel=1e-12, abs=0), s


def test_lr_interior_points_are_cosine_not_linear():
    """Half-way through the decay the cosine is at the midpoint; a quarter of the way it is
    (1 + cos(π/4))/2 = 85.4 % of the span above the floor (a linear decay would give 75 %)."""
    cfg = TrainConfig(steps=110, warmup=10, lr=1.0, lr_min_ratio=0.0)
    assert lr_at(cfg, 60) == pytest.approx(0.5, abs=1e-12)
    assert lr_at(cfg, 35) == pytest.approx((1 + math.sqrt(0.5)) / 2, abs=1e-12)
    assert lr_at(cfg, 85) == pytest.approx((1 - math.sqrt(0.5)) / 2, abs=1e-12)


# ------------------------------------------------------------------------ optimiser


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    """Two synthetic 8-bit IR/VIS pairs of 32×36 in <root>/{ir,vi}."""
    root = tmp_path_factory.mktemp("pairs")
    (root / "ir").mkdir()
    (root / "vi").mkdir()
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:32, 0:36] / 32.0
    for i in range(2):
        ir = np.clip(0.3 + 0.6 * np.exp(-((xx - 0.5) ** 2 + (yy - 0.4 * i) ** 2) * 9) + 0.03 * rng.standard_normal(xx.shape), 0, 1)
        vi = np.clip(0.5 + 0.3 * np.sin(7 * xx + i) * np.cos(4 * yy) + 0.05 * rng.standard_normal(xx.shape), 0, 1)
        write_image(root / "ir" / f"{i}.png", (ir * 255).round().astype(np.uint8))
        write_image(root / "vi" / f"{i}.png", (vi * 255).round().astype(np.uint8))
    return root


def config(root: Path, out: Path, **kw) -> TrainConfig:
    base = dict(
        data=[{"root": str(root)}], out=str(out), steps=3, batch=2, crop=20, lr=5e-3, warmup=1, ckpt_every=3,
        threads=1, model={"stages": 2, "head_width": 4}, tensorboard=False, degrade={"p": 0.0, "kinds": None},
    )
    base.update(kw)
    return TrainConfig(**base)


class Recorder:
    """Replaces torch.optim.AdamW in a training run; records, at every ``step()``, the learning
    rate of each group and the total norm of the gradients the optimiser is handed."""

    def __init__(self):
        self.lrs: list[list[float]] = []
        self.norms: list[float] = []
        recorder = self

        class RecordingAdamW(ADAMW):
            def step(self, closure=None):  # noqa: ANN001
                grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
                recorder.norms.append(float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads))))
                recorder.lrs.append([g["lr"] for g in self.param_groups])
                return super().step(closure)

        self.cls = RecordingAdamW


def run(cfg: TrainConfig, monkeypatch) -> tuple[Recorder, dict[str, torch.Tensor]]:
    rec = Recorder()
    monkeypatch.setattr(torch.optim, "AdamW", rec.cls)
    final = train(cfg, progress=False)
    model, _ = load_checkpoint_model(final)
    return rec, {k: v.detach().clone() for k, v in model.named_parameters()}


def test_learning_rate_and_gradient_clipping_reach_the_optimiser(pairs, tmp_path, monkeypatch):
    cfg = config(pairs, tmp_path / "clip", grad_clip=1e-3)
    clipped, _ = run(cfg, monkeypatch)
    # every group gets lr_at(step) at every step
    assert clipped.lrs == [[schedule(s, cfg.lr, cfg.steps, cfg.warmup, cfg.lr_min_ratio)] * len(clipped.lrs[s])
                           for s in range(cfg.steps)]
    raw, _ = run(config(pairs, tmp_path / "raw", grad_clip=0.0), monkeypatch)
    # without clipping the gradient is far larger than the bound: the check below can fail
    assert min(raw.norms) > 10 * cfg.grad_clip
    # with clipping the optimiser sees a gradient of norm grad_clip (clip_grad_norm_ scales by
    # max_norm/(norm + 1e-6), and float32 rounding: measured relative deficit ≤ 1.4e-5)
    for n in clipped.norms:
        assert cfg.grad_clip * (1 - 3e-5) <= n <= cfg.grad_clip * (1 + 1e-6)


def test_weight_decay_acts_on_the_extractor_and_head_only(pairs, tmp_path, monkeypatch):
    """AdamW's decoupled decay: after one step, p(decay wd) − p(decay 0) = −lr·wd·p₀ for the
    extractor/head convolutions, and exactly 0 for every stage parameter."""
    wd = 0.5
    kw = dict(steps=1, warmup=0, ckpt_every=1, grad_clip=0.0)
    _, p0 = run(config(pairs, tmp_path / "a", weight_decay=0.0, **kw), monkeypatch)
    _, p1 = run(config(pairs, tmp_path / "b", weight_decay=wd, **kw), monkeypatch)
    cfg = config(pairs, tmp_path / "c", weight_decay=wd, **kw)
    init = dict(build_model(cfg).named_parameters())
    lr = lr_at(cfg, 0)
    decayed = 0
    for name, before in init.items():
        diff = (p1[name] - p0[name]).double()
        if name.startswith(("extractor.", "head.")):
            want = -lr * wd * before.detach().double()
            # measured: ≤ 1.6e-8 (float32 rounding of the two updates)
            assert torch.allclose(diff, want, rtol=0, atol=3e-8), name
            decayed += int(want.abs().max() > 1e-4)
        else:
            assert torch.equal(p1[name], p0[name]), name
    assert decayed >= 3  # the decay really changed several tensors

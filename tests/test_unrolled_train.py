"""Training (DESIGN §7.2): exact resume, checkpoints with sha256, logs, DDP with 2 CPU processes, CLI."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from hifm.io import write_image  # noqa: E402
from unrolled.data import CropSampler, DataSpec, DegradeConfig, holdout_part, load_pairs  # noqa: E402
from unrolled.train import TASK_PRESETS, TrainConfig, config_from_args, load_checkpoint, lr_at, train  # noqa: E402
from unrolled.weights import WeightsError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """Four synthetic 8-bit IR/VIS pairs of 40×52 in <root>/{ir,vi}."""
    root = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(0)
    (root / "ir").mkdir()
    (root / "vi").mkdir()
    yy, xx = np.mgrid[0:40, 0:52] / 40.0
    for i in range(4):
        ir = np.clip(0.3 + 0.5 * np.exp(-((xx - 0.3 * i) ** 2 + (yy - 0.5) ** 2) * 8) + 0.02 * rng.standard_normal(xx.shape), 0, 1)
        vi = np.clip(0.5 + 0.3 * np.sin(6 * xx + i) * np.cos(5 * yy) + 0.05 * rng.standard_normal(xx.shape), 0, 1)
        write_image(root / "ir" / f"{i:02d}.png", (ir * 255).round().astype(np.uint8))
        write_image(root / "vi" / f"{i:02d}.png", (vi * 255).round().astype(np.uint8))
    return root


def tiny_config(data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(
        data=[{"root": str(data)}], out=str(out), steps=4, batch=2, crop=24, lr=5e-3, warmup=1, ckpt_every=2,
        threads=1, model={"stages": 3, "head_width": 4}, tensorboard=False, degrade={"p": 0.8, "kinds": None},
    )
    base.update(kw)
    return TrainConfig(**base)


def model_tensors(ckpt_json: Path) -> dict[str, torch.Tensor]:
    tensors, _ = load_checkpoint(ckpt_json)
    return tensors


def read_log(out: Path) -> list[dict[str, str]]:
    with open(out / "log.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_resume_is_bit_exact(tiny_data, tmp_path):
    full = train(tiny_config(tiny_data, tmp_path / "full"), progress=False)
    part = tiny_config(tiny_data, tmp_path / "part")
    first = train(part, progress=False, max_steps=2)  # "interrupted" after 2 of 4 steps
    assert first.name == "ckpt-000002.json"
    assert json.loads((tmp_path / "part" / "latest.json").read_text())["step"] == 2
    resumed = train(part, resume=True, progress=False)
    a, b = model_tensors(full), model_tensors(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k  # model, AdamW moments/steps and the torch RNG state
    la, lb = read_log(tmp_path / "full"), read_log(tmp_path / "part")
    assert [r["step"] for r in lb] == ["1", "2", "3", "4"]
    assert [r["loss"] for r in la] == [r["loss"] for r in lb]
    # training changed the network
    _, meta = load_checkpoint(full)
    init = tiny_config(tiny_data, tmp_path / "x")
    from unrolled.train import build_model

    m0 = build_model(init).state_dict()
    assert any(not torch.equal(m0[k], a["model." + k]) for k in m0)
    assert meta["step"] == 4 and meta["train_config"]["steps"] == 4


def test_checkpoint_sha256_is_verified(tiny_data, tmp_path):
    ckpt = train(tiny_config(tiny_data, tmp_path / "run", steps=1), progress=False)
    data = ckpt.with_suffix(".safetensors")
    raw = bytearray(data.read_bytes())
    raw[-1] ^= 0xFF
    data.write_bytes(bytes(raw))
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        load_checkpoint(ckpt)
    with pytest.raises(WeightsError, match="nothing to resume"):
        train(tiny_config(tiny_data, tmp_path / "empty"), resume=True, progress=False)


def test_logs_and_tensorboard(tiny_data, tmp_path):
    out = tmp_path / "tb"
    train(tiny_config(tiny_data, out, steps=2, tensorboard=True), progress=False)
    rows = read_log(out)
    assert len(rows) == 2 and all(float(r["loss"]) > 0 and float(r["steps_per_s"]) > 0 for r in rows)
    assert list(out.glob("tb/events.out.tfevents.*"))
    assert {p.name for p in out.glob("*.json")} >= {"ckpt-000002.json", "final.json", "latest.json"}


def test_sampler_is_a_function_of_seed_step_and_sample(tiny_data):
    pairs = load_pairs([str(tiny_data)])
    s1 = CropSampler(pairs, crop=16, seed=3, degrade=DegradeConfig(p=1.0))
    s2 = CropSampler(pairs, crop=16, seed=3, degrade=DegradeConfig(p=1.0))
    b1 = s1.batch(5, rank=0, per_rank=4, world=1)
    s2.batch(0, 0, 4, 1)  # a different history does not matter
    b2 = s2.batch(5, rank=0, per_rank=4, world=1)
    for x, y in zip(b1, b2):
        assert np.array_equal(x, y)
    # two ranks with 2 samples each = one process with 4
    r0, r1 = s1.batch(5, 0, 2, 2), s1.batch(5, 1, 2, 2)
    for j in range(4):
        assert np.array_equal(np.concatenate([r0[j], r1[j]]), b1[j])
    a_in, b_in, a_cl, b_cl = b1
    assert a_in.shape == (4, 16, 16) and a_in.dtype == np.float32
    assert not (np.array_equal(a_in, a_cl) and np.array_equal(b_in, b_cl))  # degraded inputs, clean targets
    assert not np.array_equal(s1.batch(6, 0, 4, 1)[2], b1[2])
    # every pair is visited once per epoch
    seen = [s1.sample(0, g)[4]["pair"] for g in range(4)]
    assert sorted(seen) == sorted(p.name for p in pairs)


def test_hash_split_is_stable_and_disjoint(tiny_data):
    parts = [holdout_part("mri-pet", f"{i}", 0.2) for i in range(200)]
    assert 20 < parts.count("test") < 60
    assert holdout_part("mri-pet", "11", 0.2) == holdout_part("/elsewhere/mri-pet", "11", 0.2)
    names = [p.name.split("/")[-1] for p in load_pairs([DataSpec(str(tiny_data), "all")])]
    for frac in (0.25, 0.5, 0.75):
        parts = {n: holdout_part(tiny_data, n, frac) for n in names}
        for part in ("train", "test"):
            want = {f"{tiny_data.name}/{n}" for n, p in parts.items() if p == part}
            if want:
                got = {p.name for p in load_pairs([DataSpec(str(tiny_data), part, frac)])}
                assert got == want
            else:
                with pytest.raises(ValueError, match="no training pairs"):
                    load_pairs([DataSpec(str(tiny_data), part, frac)])


def test_lr_schedule():
    cfg = TrainConfig(steps=100, warmup=10, lr=1e-3, lr_min_ratio=0.1)
    assert lr_at(cfg, 0) == pytest.approx(1e-4) and lr_at(cfg, 9) == pytest.approx(1e-3)
    assert lr_at(cfg, 99) > 1e-4 and lr_at(cfg, 100) == pytest.approx(1e-4)
    assert all(lr_at(cfg, s) >= lr_at(cfg, s + 1) for s in range(10, 100))


def test_ddp_two_cpu_processes_equal_one_process_with_twice_the_batch(tiny_data, tmp_path):
    """torchrun with 2 gloo processes × batch 1 = 1 process × batch 2 (same samples, averaged gradients)."""
    cfg = tiny_config(tiny_data, tmp_path / "ddp", steps=2, batch=1, ckpt_every=2, model={"stages": 2, "head_width": 4})
    cfg_path = tmp_path / "ddp.json"
    cfg_path.write_text(json.dumps(cfg.as_dict()))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "unrolled.train", "--config", str(cfg_path), "--no-progress"]
    res = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    ddp = model_tensors(tmp_path / "ddp" / "final.json")
    _, meta = load_checkpoint(tmp_path / "ddp" / "final.json")
    assert meta["world_size"] == 2
    single = model_tensors(train(tiny_config(tiny_data, tmp_path / "one", steps=2, batch=2, ckpt_every=2,
                                             model={"stages": 2, "head_width": 4}), progress=False))
    # Equal up to float32 rounding: the all-reduce sums in another order, and Adam divides
    # each gradient by its own running RMS, so an element whose gradient is still tiny
    # (the extractor, behind the zero-initialised head) can move its rounding error up to
    # ~1e-4. A missing all-reduce or a wrong data shard moves most elements by ~lr (5e-3).
    from unrolled.train import build_model

    init = build_model(cfg).state_dict()
    changed = off = total = 0
    for k, v in single.items():
        if k.startswith("model."):
            diff = (ddp[k] - v).abs()
            assert diff.max() <= 5e-4, (k, diff.max())
            off += int((diff > 5e-5).sum())
            total += diff.numel()
            changed += int(not torch.equal(v, init[k[6:]]))
    assert off <= total // 1000, (off, total)
    assert changed > 10  # the runs really trained


def test_cli_config_precedence_and_hifm_train_help(tmp_path, capsys):
    import argparse

    from hifm import cli
    from unrolled.train import _add_arguments

    cfg_file = tmp_path / "c.json"
    cfg_file.write_text(json.dumps({"steps": 7, "batch": 3}))
    p = argparse.ArgumentParser()
    _add_arguments(p)
    args = p.parse_args(["--task", "mif", "--config", str(cfg_file), "--batch", "5", "--data", "x/y:test", "--stages", "4"])
    cfg = config_from_args(args)
    assert cfg.steps == 7 and cfg.batch == 5 and cfg.data == [{"root": "x/y", "part": "test"}]
    assert cfg.model["stages"] == 4 and cfg.out == "runs/mif" and cfg.degrade["p"] == TASK_PRESETS["mif"]["degrade"]["p"]
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--help"])
    assert exc.value.code == 0
    assert "--resume" in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown training configuration"):
        TrainConfig.from_dict({"stepz": 1})


@pytest.mark.parametrize("task,folders", [("ivf", ["tno"]), ("mif", ["synthetic/mri-pet", "synthetic/mri-ct"])])
def test_tiny_training_run_on_the_shipped_samples(task, folders, tmp_path):
    """The documented fresh-clone training command (docs/training.md) on samples/: it trains and the loss is finite."""
    from unrolled.train import main

    out = tmp_path / task
    argv = ["--task", task, "--steps", "2", "--batch", "1", "--crop", "48", "--stages", "2", "--out", str(out),
            "--no-progress", "--threads", "1"]
    for folder in folders:
        argv += ["--data", str(REPO / "samples" / folder)]
    assert main(argv) == 0
    rows = read_log(out)
    assert [int(r["step"]) for r in rows][-1] == 2
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    meta = json.loads((out / "final.json").read_text())
    assert {Path(d["root"]).name for d in meta["train_config"]["data"]} == {Path(f).name for f in folders}


def test_training_without_data_is_one_line_error(tmp_path, capsys, monkeypatch):
    from unrolled.train import main

    monkeypatch.chdir(tmp_path)  # the preset's relative data root does not exist here
    assert main(["--task", "ivf", "--steps", "1", "--data", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope" in err and "--data" in err


def test_teacher_init_sets_the_reference_of_the_fidelity_term(tiny_data, tmp_path):
    """With only the fidelity term and clean crops, the first step's loss is the distance from the
    initial network to the teacher: zero when the teacher is the initial network itself, not zero
    when ``teacher_init`` builds it from other solver parameters."""
    loss = {"intensity": 0.0, "gradient": 0.0, "ssim": 0.0, "lgde": 0.0, "qabf": 0.0,
            "fidelity": 1.0, "fidelity_anchor": "teacher"}
    fidelity = {}
    for name, teacher_init in (("same", None), ("other", {"filters_l": "dct3", "mu": 0.0, "tau": 0.2})):
        out = tmp_path / name
        cfg = tiny_config(tiny_data, out, steps=1, loss=loss, degrade={"p": 0.0, "kinds": None},
                          teacher_init=teacher_init)
        train(cfg, progress=False)
        fidelity[name] = float(read_log(out)[0]["fidelity"])
        saved = json.loads((out / "final.json").read_text())
        assert saved["train_config"]["teacher_init"] == teacher_init
    assert fidelity["same"] < 1e-6
    assert fidelity["other"] > 1e-3


def test_build_teacher_is_frozen_and_built_from_teacher_init(tiny_data, tmp_path):
    from unrolled.train import build_model, build_teacher

    cfg = tiny_config(tiny_data, tmp_path, teacher_init={"filters_l": "dct3", "mu": 0.0})
    teacher = build_teacher(cfg)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    x = torch.rand(1, 1, 24, 24, generator=torch.Generator().manual_seed(1))
    y = torch.rand(1, 1, 24, 24, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = build_model(cfg, cfg.teacher_init).eval()(x, y)
        student = build_model(cfg).eval()(x, y)
        got = teacher(x, y)
    assert torch.equal(got, expected)
    assert (got - student).abs().max() > 1e-4


def test_teacher_init_must_be_an_object(tiny_data, tmp_path):
    with pytest.raises(Exception, match="teacher_init"):
        tiny_config(tiny_data, tmp_path, teacher_init=[0.1])

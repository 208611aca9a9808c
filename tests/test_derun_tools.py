"""The DeRUN tools around training: load_checkpoint_model, ``python -m unrolled.weights export|verify``
and ``python -m unrolled.report curves|evaluate``, on a two-step run over synthetic pairs."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from hifm.io import write_image  # noqa: E402
from unrolled import report, weights  # noqa: E402
from unrolled.train import TrainConfig, build_model, load_checkpoint, load_checkpoint_model, train  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, Path, TrainConfig]:
    """(data root, run folder, config) of a finished 2-step training with a checkpoint per step."""
    root = tmp_path_factory.mktemp("pairs")
    (root / "ir").mkdir()
    (root / "vi").mkdir()
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:34, 0:40] / 34.0
    for i in range(3):
        ir = np.clip(0.25 + 0.6 * np.exp(-((xx - 0.3 - 0.2 * i) ** 2 + (yy - 0.5) ** 2) * 10), 0, 1)
        vi = np.clip(0.5 + 0.3 * np.sin(8 * xx + i) * np.cos(6 * yy) + 0.04 * rng.standard_normal(xx.shape), 0, 1)
        write_image(root / "ir" / f"{i}.png", (ir * 255).round().astype(np.uint8))
        write_image(root / "vi" / f"{i}.png", (vi * 255).round().astype(np.uint8))
    out = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(data=[{"root": str(root)}], out=str(out), steps=2, batch=2, crop=24, lr=5e-3, warmup=1,
                      ckpt_every=1, threads=1, model={"stages": 3, "head_width": 4}, tensorboard=False,
                      degrade={"p": 0.5, "kinds": None})
    train(cfg, progress=False)
    return root, out, cfg


def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    return torch.rand(2, 21, 26, generator=g), torch.rand(2, 21, 26, generator=g)


def test_load_checkpoint_model_is_the_trained_model(run):
    _, out, cfg = run
    model, meta = load_checkpoint_model(out / "final.json")
    tensors, _ = load_checkpoint(out / "final.json")
    assert meta["step"] == 2 and model.config.as_dict() == meta["config"] and model.dtype == torch.float32
    state = model.state_dict()
    stored = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    assert stored.keys() == state.keys()
    for k, v in stored.items():
        assert torch.equal(state[k], v), k
    init = build_model(cfg)
    assert any(not torch.equal(init.state_dict()[k], v) for k, v in stored.items())  # it trained
    # an earlier checkpoint is another model
    first, meta1 = load_checkpoint_model(out / "ckpt-000001.json")
    assert meta1["step"] == 1
    a, b = inputs()
    with torch.no_grad():
        assert float((first.eval()(a, b) - model.eval()(a, b)).abs().max()) > 0


def test_weights_export_and_verify(run, tmp_path, capsys, monkeypatch):
    _, out, cfg = run
    assert weights.main(["export", str(out / "final.json"), "--name", "mif", "--out", str(tmp_path)]) == 0
    j = tmp_path / "mif.json"
    meta = json.loads(j.read_text())
    assert meta["sha256"] == weights.sha256_file(tmp_path / "mif.safetensors")
    info = meta["info"]
    assert info["task"] == "mif" and info["step"] == 2 and info["source_checkpoint"] == "final.json"
    assert info["train_config"] == cfg.as_dict() and info["seconds"] > 0
    exported = weights.load_weights(j)
    model, _ = load_checkpoint_model(out / "final.json")
    a, b = inputs()
    with torch.no_grad():
        assert torch.equal(exported(a, b), model.eval()(a, b))
    # verify: the shipped weights pass; a tampered copy is refused
    capsys.readouterr()
    assert weights.main(["verify"]) == 0
    printed = capsys.readouterr().out
    assert [line.split()[0] for line in printed.splitlines()] == ["ok", "ok"]
    assert "ivf.json" in printed and "mif.json" in printed
    fake = tmp_path / "shipped"
    shutil.copytree(weights.WEIGHTS_DIR, fake)
    raw = bytearray((fake / "ivf.safetensors").read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (fake / "ivf.safetensors").write_bytes(bytes(raw))
    monkeypatch.setattr(weights, "WEIGHTS_DIR", fake)
    monkeypatch.setattr(weights, "SUMS_FILE", fake / "SHA256SUMS")
    assert weights.main(["verify"]) == 1
    printed = capsys.readouterr().out
    assert "MISMATCH" in printed and "ivf.json" in printed and "sha256 mismatch" in printed


def test_report_curves_with_validation(run, tmp_path, capsys, monkeypatch):
    root, out, _ = run
    png = tmp_path / "curves.png"
    small = report.validation_curve
    monkeypatch.setattr(report, "validation_curve", lambda r, d: small(r, d, crops=2, crop=20))  # 16 × 128² is slow
    assert report.main(["curves", str(out / "log.csv"), str(png), "--title", "t", "--run", str(out),
                        "--val-data", str(root)]) == 0
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("step ")]
    assert [x.split(":")[0] for x in lines] == ["step 0", "step 1", "step 2"]  # init + both checkpoints
    values = small(out, [str(root)], crops=2, crop=20)
    assert [s for s, _, _ in values] == [0, 1, 2]
    assert all(np.isfinite([d, c]).all() and d > 0 and c > 0 for _, d, c in values)
    assert len({d for _, d, _ in values}) == 3  # the checkpoints really differ


def test_report_evaluate(run, tmp_path, capsys):
    root, out, _ = run
    weights.main(["export", str(out / "final.json"), "--name", "ivf", "--out", str(tmp_path)])
    res_path = tmp_path / "eval.json"
    assert report.main(["evaluate", "--weights", str(tmp_path / "ivf.json"), "--data", str(root), "--metrics",
                        "entropy", "ssim", "--noise", "0.03", "--limit", "2", "--out", str(res_path)]) == 0
    res = json.loads(res_path.read_text())
    folder = res["folders"][str(root)]
    assert res["iters"] == 3 and res["noise"] == 0.03 and folder["pairs"] == 2
    methods = set(folder["means"])
    assert methods == {"anchor", "hifm.solve (3 it.)", "DeRUN at init", "DeRUN trained"}
    for name, vals in folder["means"].items():
        assert set(vals) == {"entropy", "ssim"} and 0 < vals["entropy"] <= 8 and 0 < vals["ssim"] <= 2, name
    table = capsys.readouterr().out
    assert "| method | EN | SSIM |" in table
    for name, vals in folder["means"].items():
        assert f"| {name} | {vals['entropy']:.3f} | {vals['ssim']:.3f} |" in table


def test_validation_curve_of_a_distillation_run(run, tmp_path):
    """The teacher loss (the shipped presets') needs the teacher's images on the held-out crops;
    at step 0 the network is its own teacher, so on clean crops the fidelity term is exactly 0."""
    root, _, cfg = run
    out = tmp_path / "distill"
    loss = {"intensity": 0.0, "gradient": 0.3, "ssim": 0.0, "lgde": 0.0, "qabf": 0.3, "fidelity": 1.0,
            "fidelity_anchor": "teacher", "joint": False}  # the last stage only: it is the teacher's image
    dcfg = TrainConfig.from_dict({**cfg.as_dict(), "out": str(out), "loss": loss, "steps": 1})
    train(dcfg, progress=False)
    values = report.validation_curve(out, [str(root)], crops=2, crop=20)
    assert [s for s, _, _ in values] == [0, 1]
    no_fidelity = TrainConfig.from_dict({**dcfg.as_dict(), "out": str(tmp_path / "nf"), "loss": {**loss, "fidelity": 0.0},
                                         "steps": 1})
    train(no_fidelity, progress=False)
    plain = report.validation_curve(tmp_path / "nf", [str(root)], crops=2, crop=20)
    assert values[0][2] == pytest.approx(plain[0][2], rel=1e-6)  # clean inputs at init: fidelity 0
    assert values[0][1] > plain[0][1]  # degraded inputs: the output differs from the teacher's

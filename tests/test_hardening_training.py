"""Hardening, classes 6 and 9 for DeRUN (issue #11): training resume that would change the run,
damaged checkpoints, malformed weights whose sha256 matches, one-line errors of the entry points."""
from __future__ import annotations

import csv
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from safetensors.torch import load_file, save_file  # noqa: E402

from hifm.errors import HIFMError, InputError  # noqa: E402
from unrolled.inference import fuse_derun  # noqa: E402
from unrolled.train import TrainConfig, lr_at, main as train_main, train  # noqa: E402
from unrolled.weights import WEIGHTS_DIR, WeightsError, load_weights, sha256_file  # noqa: E402

from .test_hardening import dataset, one_error_line  # noqa: E402


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return dataset(tmp_path_factory.mktemp("train") / "pairs", n=3, shape=(40, 52))


def config(data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(data=[{"root": str(data)}], out=str(out), steps=4, batch=1, crop=24, lr=5e-3, warmup=1,
                ckpt_every=2, threads=1, model={"stages": 2, "head_width": 4}, tensorboard=False,
                degrade={"p": 0.5, "kinds": None})
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def finished_run(data, tmp_path_factory) -> Path:
    """A complete 4-step run (checkpoints at 2 and 4)."""
    out = tmp_path_factory.mktemp("run") / "run"
    train(config(data, out), progress=False)
    return out


def copy_run(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(run, target)
    return target


def lrs(out: Path) -> dict[int, float]:
    with open(out / "log.csv", newline="") as fh:
        return {int(r["step"]): float(r["lr"]) for r in csv.DictReader(fh)}


def cli(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = train_main(argv + ["--no-progress"])
    out, err = capsys.readouterr()
    return rc, out, err


# ============================================================== 9. a resume continues the same run
@pytest.mark.parametrize("change", [{"lr": 1e-3}, {"batch": 2}, {"seed": 7}, {"crop": 16}])
def test_resume_that_changes_the_run_is_refused(finished_run, data, tmp_path, change):
    run = copy_run(finished_run, tmp_path)
    before = sorted(p.name for p in run.iterdir())
    cfg = config(data, run, steps=6, **change)
    name = next(iter(change))
    with pytest.raises(InputError, match=rf"would differ from the checkpoint's \({name}: .*--override-config"):
        train(cfg, resume=True, progress=False)
    assert sorted(p.name for p in run.iterdir()) == before  # nothing written


def test_override_is_recorded_in_the_checkpoints(finished_run, data, tmp_path):
    run = copy_run(finished_run, tmp_path)
    final = train(config(data, run, steps=6, lr=1e-3), resume=True, progress=False, override=True)
    meta = json.loads(final.read_text())
    assert meta["step"] == 6 and meta["train_config"]["lr"] == 1e-3
    assert meta["overrides"] == [{"at_step": 4, "changes": {"lr": [5e-3, 1e-3]}}]


def test_resume_from_the_command_line_keeps_the_checkpoint_configuration(finished_run, tmp_path, capsys):
    run = copy_run(finished_run, tmp_path)
    rc, out, err = cli(["--out", str(run), "--resume", "--lr", "0.1", "--steps", "6"], capsys)
    assert rc == 1 and "lr: 0.005 -> 0.1" in one_error_line(err, prefix="python -m unrolled.train")
    rc, out, err = cli(["--out", str(run), "--resume", "--steps", "6"], capsys)  # only --steps: the same run
    assert rc == 0, err
    assert f"wrote {run / 'final.json'}" in out
    assert json.loads((run / "final.json").read_text())["train_config"]["lr"] == 5e-3


def test_a_changed_model_is_refused_even_with_override(finished_run, data, tmp_path):
    run = copy_run(finished_run, tmp_path)
    cfg = config(data, run, steps=6, model={"stages": 3, "head_width": 4})
    with pytest.raises(InputError, match="cannot resume with another model"):
        train(cfg, resume=True, progress=False, override=True)


@pytest.mark.parametrize("steps", [2, 4])
def test_nothing_to_train_is_said_not_faked(finished_run, data, tmp_path, capsys, steps):
    run = copy_run(finished_run, tmp_path)
    rc, out, err = cli(["--out", str(run), "--resume", "--steps", str(steps)], capsys)
    assert rc == 1 and "wrote" not in out
    assert f"the checkpoint is at step 4 and --steps is {steps}: nothing to train" in one_error_line(
        err, prefix="python -m unrolled.train")


def test_a_fresh_run_never_overwrites_a_run_folder(finished_run, data, tmp_path):
    run = copy_run(finished_run, tmp_path)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(InputError, match="already holds a training run"):
        train(config(data, run), progress=False)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_a_longer_resume_continues_the_learning_rate(data, tmp_path):
    """Interrupted at step 3 of 6, resumed for 10: no jump at step 4, a cosine down to lr·ratio at 10."""
    out = tmp_path / "run"
    first = config(data, out, steps=6, ckpt_every=3, warmup=1)
    train(first, progress=False, max_steps=3)
    longer = config(data, out, steps=10, ckpt_every=3, warmup=1)
    train(longer, resume=True, progress=False)
    lr = lrs(out)
    assert lr[4] == pytest.approx(lr_at(first, 3), rel=1e-12)  # where the interrupted schedule was
    assert lr[4] < lr[3]  # still decreasing
    assert all(lr[s + 1] <= lr[s] for s in range(4, 10))
    assert lr[10] == pytest.approx(longer.lr * longer.lr_min_ratio + (lr[4] - longer.lr * longer.lr_min_ratio)
                                   * 0.5 * (1 + math.cos(math.pi * 6 / 7)), rel=1e-12)  # step 10 is index 9
    meta = json.loads((out / "final.json").read_text())
    assert meta["schedule_restart"] == {"step": 3, "lr": lr[4]}


def test_extending_a_finished_run_does_not_jump_the_learning_rate(finished_run, data, tmp_path):
    """The issue's example: a naive schedule jumps from lr·ratio back up when --steps grows after the end."""
    run = copy_run(finished_run, tmp_path)
    short, longer = config(data, run), config(data, run, steps=8)
    train(longer, resume=True, progress=False)
    lr = lrs(run)
    floor = short.lr * short.lr_min_ratio
    assert lr[4] > floor  # the last step of the finished run (index 3)
    assert sorted(lr) == list(range(1, 9))
    assert all(lr[s] == pytest.approx(floor, rel=1e-12) for s in range(5, 9))  # it continues at the end rate
    assert lr_at(longer, 4) > 3 * floor  # where the longer schedule alone would have jumped to


def test_latest_json_is_replaced_atomically(data, tmp_path, monkeypatch):
    """A failure while writing latest.json leaves the previous one whole (and no temporary file)."""
    out = tmp_path / "run"
    train(config(data, out, steps=2, ckpt_every=1), progress=False, max_steps=1)
    before = (out / "latest.json").read_text()

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        train(config(data, out, steps=2, ckpt_every=1), resume=True, progress=False)
    monkeypatch.undo()
    assert (out / "latest.json").read_text() == before
    assert json.loads(before)["step"] == 1
    assert not list(out.glob(".*.tmp"))


# ============================================================== 6. damaged checkpoints and options
def _damage(run: Path, how: str) -> None:
    ckpt = run / "ckpt-000004.json"
    meta = json.loads(ckpt.read_text())
    if how == "no step":
        del meta["step"]
        ckpt.write_text(json.dumps(meta))
    elif how == "truncated tensors":
        st = run / meta["weights"]
        st.write_bytes(st.read_bytes()[: st.stat().st_size // 2])
    elif how == "truncated json":
        ckpt.write_text(ckpt.read_text()[:100])
    elif how == "latest damaged":
        (run / "latest.json").write_text("{")


@pytest.mark.parametrize("how, message", [
    ("no step", "lacks valid field(s): step (missing)"),
    ("truncated tensors", "sha256 mismatch"),
    ("truncated json", "is not readable JSON"),
    ("latest damaged", "latest.json' is damaged"),
])
def test_damaged_checkpoints_are_one_line(finished_run, tmp_path, capsys, how, message):
    run = copy_run(finished_run, tmp_path)
    _damage(run, how)
    rc, out, err = cli(["--out", str(run), "--resume", "--steps", "6"], capsys)
    assert rc == 1
    assert message in one_error_line(err, prefix="python -m unrolled.train")


@pytest.mark.parametrize("option, message", [
    (["--ckpt-every", "0"], "ckpt_every must be an integer in [1,"),
    (["--threads", "0"], "threads must be an integer in [1,"),
    (["--crop", "1"], "crop must be an integer in [16, 2048]"),
    (["--crop", "100000"], "crop must be an integer in [16, 2048]"),
    (["--crop", "200"], "crop 200 is too large for the data"),
    (["--steps", "-1"], "steps must be an integer in [1,"),
    (["--stages", "0"], "model.stages must be an integer in [1, 100]"),
    (["--device", "gpu"], "device must be cpu, cuda or cuda:N"),
])
def test_bad_training_options_are_one_line(data, tmp_path, capsys, option, message):
    rc, out, err = cli(["--data", str(data), "--out", str(tmp_path / "run"), *option], capsys)
    assert rc == 1
    assert message in one_error_line(err, prefix="python -m unrolled.train")


def test_cuda_without_a_gpu_is_one_line(data, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    rc, out, err = cli(["--data", str(data), "--out", str(tmp_path / "run"), "--device", "cuda"], capsys)
    assert rc == 1 and "torch sees no CUDA GPU" in one_error_line(err, prefix="python -m unrolled.train")


# ============================================================== 6. weights whose sha256 matches but that are malformed
def _variant(tmp_path: Path, meta_change=None, tensor_change=None) -> Path:
    meta = json.loads((WEIGHTS_DIR / "ivf.json").read_text())
    tensors = load_file(str(WEIGHTS_DIR / meta["weights"]))
    if tensor_change:
        tensor_change(tensors)
    save_file(tensors, str(tmp_path / "w.safetensors"))
    meta.update(weights="w.safetensors", sha256=sha256_file(tmp_path / "w.safetensors"))
    if meta_change:
        meta_change(meta)
    (tmp_path / "w.json").write_text(json.dumps(meta))
    return tmp_path / "w.json"


def _first_float(tensors):
    return next(k for k, v in tensors.items() if v.is_floating_point())


@pytest.mark.parametrize("meta_change, tensor_change, message", [
    (lambda m: m.update(dtype="int8"), None, "dtype must be one of"),
    (lambda m: m["config"].update(stages=10**6), None, "stages must be an integer in [1, 100]"),
    (lambda m: m.update(weights="../elsewhere.safetensors"), None, "must be a file name next to the JSON"),
    (lambda m: m.pop("config"), None, "no field 'config'"),
    (None, lambda t: t.update({_first_float(t): torch.zeros(2, 2)}), "of the wrong shape"),
    (None, lambda t: t.update({_first_float(t): t[_first_float(t)] * float("nan")}), "NaN or infinite"),
])
def test_malformed_weights_are_refused_in_one_error(tmp_path, meta_change, tensor_change, message):
    path = _variant(tmp_path, meta_change, tensor_change)
    with pytest.raises(WeightsError) as info:
        load_weights(path)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, HIFMError)


def test_derun_batch_size_and_device_are_checked():
    a = np.zeros((16, 16), np.uint8)
    with pytest.raises(InputError, match="batch_size must be an integer ≥ 1, got 0"):
        fuse_derun(a, a, batch_size=0)
    with pytest.raises(InputError, match="device must be cpu, cuda or cuda:N"):
        fuse_derun(a, a, device="tpu")

"""DeRUN in the command line: fuse, fuse-dir and demo with --method derun --weights --task --device,
and the safe weights export and verify of unrolled.weights."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

import hifm  # noqa: E402
from hifm.cli import main  # noqa: E402
from hifm.io import read_image  # noqa: E402
from unrolled import weights as W  # noqa: E402

from .conftest import SAMPLES  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A 2-step training run on the shipped TNO samples (small network): its final checkpoint JSON."""
    from unrolled.train import main as train_main

    out = tmp_path_factory.mktemp("run") / "ivf"
    argv = ["--task", "ivf", "--data", str(SAMPLES / "tno"), "--steps", "2", "--batch", "1", "--crop", "48",
            "--stages", "3", "--out", str(out), "--no-progress", "--threads", "1"]
    assert train_main(argv) == 0
    return out / "final.json"


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("weights")
    assert W.main(["export", str(checkpoint), "--name", "mine", "--out", str(out)]) == 0
    return out / "mine.json"


@pytest.fixture
def two_pairs(tmp_path) -> Path:
    root = tmp_path / "data"
    for sub in ("ir", "vi"):
        (root / sub).mkdir(parents=True)
        for name in ("07", "13"):
            shutil.copy(SAMPLES / "tno" / sub / f"{name}.png", root / sub / f"{name}.png")
    return root


def _expected(root: Path, name: str, **options) -> np.ndarray:
    ir = read_image(root / "ir" / f"{name}.png", gray_if_equal=True)
    vis = read_image(root / "vi" / f"{name}.png", gray_if_equal=True)
    return hifm.fuse(ir, vis, method="derun", **options)


# ------------------------------------------------------------------------------ fuse-dir
def test_fuse_dir_derun_with_weights_equals_hifm_fuse_per_pair(two_pairs, exported, tmp_path):
    out = tmp_path / "out"
    assert main(["fuse-dir", str(two_pairs), "-o", str(out), "--method", "derun", "--weights", str(exported),
                 "--workers", "0", "--quiet"]) == 0
    for name in ("07", "13"):
        want = _expected(two_pairs, name, weights=exported)
        got = read_image(out / f"{name}.png")
        np.testing.assert_array_equal(got, want)
        # and the exported weights are not the shipped ones: the result differs from the shipped ivf network
        assert np.abs(got.astype(int) - _expected(two_pairs, name, task="ivf").astype(int)).max() > 2
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert {r["options"]["weights"] for r in manifest if r["kind"] == "pair"} == {str(exported.resolve())}


def test_fuse_dir_derun_in_a_worker_process(two_pairs, tmp_path):
    """One spawned worker with the shipped weights: the same images as in-process (up to one level of rounding)."""
    out = tmp_path / "out"
    assert main(["fuse-dir", str(two_pairs), "-o", str(out), "--method", "derun", "--workers", "1", "--quiet"]) == 0
    for name in ("07", "13"):
        diff = np.abs(read_image(out / f"{name}.png").astype(int) - _expected(two_pairs, name, task="ivf").astype(int))
        # float32 with another thread count: a few pixels round the other way (measured 0.15 % of
        # pixels by one level with the ivf weights of 2026-12-02); other weights would differ everywhere
        assert diff.max() <= 1 and np.count_nonzero(diff) <= diff.size // 200, name


def test_fuse_dir_loads_the_network_once(two_pairs, tmp_path, monkeypatch):
    import unrolled.inference as inference

    calls = []
    real = inference.load_pretrained

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    inference._cached.cache_clear()
    monkeypatch.setattr(inference, "load_pretrained", counting)
    from hifm.batch import FuseSettings, fuse_dir

    report = fuse_dir(two_pairs, tmp_path / "o", FuseSettings(method="derun", task="ivf"), workers=0, progress=False)
    assert report.count("ok") == 2 and len(calls) == 1
    inference._cached.cache_clear()


def test_fuse_dir_guesses_mif_for_a_medical_layout(tmp_path):
    from hifm.batch import FuseSettings, fuse_dir

    root = SAMPLES / "synthetic" / "mri-pet"
    logs: list[str] = []
    fuse_dir(root, tmp_path / "o", FuseSettings(method="derun"), workers=0, progress=False, log=logs.append)
    assert any("'mif'" in line for line in logs)
    mri, pet = read_image(root / "mri" / "01.png"), read_image(root / "pet" / "01.png")
    np.testing.assert_array_equal(read_image(tmp_path / "o" / "01.png"), hifm.fuse(mri, pet, method="derun", task="mif"))


def test_resume_redoes_pairs_fused_with_other_weights(two_pairs, exported, tmp_path):
    from hifm.batch import FuseSettings, fuse_dir

    out = tmp_path / "o"
    fuse_dir(two_pairs, out, FuseSettings(method="derun", task="ivf"), workers=0, progress=False)
    again = fuse_dir(two_pairs, out, FuseSettings(method="derun", task="ivf"), workers=0, progress=False, resume=True)
    assert len(again.already_done) == 2
    other = fuse_dir(two_pairs, out, FuseSettings(method="derun", weights=str(exported)), workers=0, progress=False,
                     resume=True)
    assert other.already_done == [] and other.count("ok") == 2


# ------------------------------------------------------------------------------ fuse and demo
def test_fuse_guesses_the_task_from_folder_names(tmp_path, capsys):
    root = SAMPLES / "synthetic" / "mri-pet"
    out = tmp_path / "new" / "folder" / "f.png"  # the folder is created
    assert main(["fuse", str(root / "mri" / "02.png"), str(root / "pet" / "02.png"), "-o", str(out), "--method", "derun"]) == 0
    assert "'mif'" in capsys.readouterr().out
    mri, pet = read_image(root / "mri" / "02.png"), read_image(root / "pet" / "02.png")
    np.testing.assert_array_equal(read_image(out), hifm.fuse(mri, pet, method="derun", task="mif"))
    assert main(["fuse", str(root / "mri" / "02.png"), str(root / "pet" / "02.png"), "-o", str(out), "--method", "derun",
                 "--task", "ivf"]) == 0
    np.testing.assert_array_equal(read_image(out), hifm.fuse(mri, pet, method="derun", task="ivf"))


def test_fuse_with_exported_weights(exported, tmp_path):
    ir, vis = SAMPLES / "tno" / "ir" / "07.png", SAMPLES / "tno" / "vi" / "07.png"
    out = tmp_path / "f.png"
    assert main(["fuse", str(ir), str(vis), "-o", str(out), "--method", "derun", "--weights", str(exported)]) == 0
    want = hifm.fuse(read_image(ir, gray_if_equal=True), read_image(vis, gray_if_equal=True), method="derun",
                     weights=exported)
    np.testing.assert_array_equal(read_image(out), want)


def test_demo_with_weights(exported, tmp_path):
    assert main(["demo", "-o", str(tmp_path), "--iters", "3", "--height", "48", "--width", "64",
                 "--weights", str(exported)]) == 0
    assert read_image(tmp_path / "demo_fused_derun.png").shape == (48, 64)


@pytest.mark.parametrize("command", ["fuse", "fuse-dir"])
def test_a_training_checkpoint_as_weights_is_one_line(command, checkpoint, two_pairs, tmp_path, capsys):
    if command == "fuse":
        argv = ["fuse", str(two_pairs / "ir" / "07.png"), str(two_pairs / "vi" / "07.png"), "-o", str(tmp_path / "f.png")]
    else:
        argv = ["fuse-dir", str(two_pairs), "-o", str(tmp_path / "o"), "--workers", "0", "--quiet"]
    assert main(argv + ["--method", "derun", "--weights", str(checkpoint)]) != 0
    err = capsys.readouterr().err.strip()
    # one short line (the bug printed an 8 KB key list); the paths it names are counted as one
    # character each, since a machine's temporary folders can be long (the GPU machine's are)
    short = err
    for path in (two_pairs, checkpoint):
        short = short.replace(str(path), "P")
    assert len(err.splitlines()) == 1 and len(short) < 300, err
    assert "training checkpoint" in err and "python -m unrolled.weights export" in err


def test_derun_options_without_derun_are_refused(two_pairs, exported, tmp_path, capsys):
    argv = ["fuse", str(two_pairs / "ir" / "07.png"), str(two_pairs / "vi" / "07.png"), "-o", str(tmp_path / "f.png")]
    assert main(argv + ["--weights", str(exported)]) != 0
    assert "--method derun" in capsys.readouterr().err
    assert main(argv + ["--device", "cuda"]) != 0
    assert "--method derun" in capsys.readouterr().err
    assert not (tmp_path / "f.png").exists()


# ------------------------------------------------------------------------------ export and verify
@pytest.fixture
def package_weights(tmp_path, monkeypatch) -> Path:
    """A copy of the shipped weights folder standing in for the package's (nothing real is touched)."""
    folder = tmp_path / "pkg_weights"
    real = {p.name: p.read_bytes() for p in W.WEIGHTS_DIR.iterdir() if p.is_file()}
    shutil.copytree(W.WEIGHTS_DIR, folder)
    monkeypatch.setattr(W, "WEIGHTS_DIR", folder)
    monkeypatch.setattr(W, "SUMS_FILE", folder / "SHA256SUMS")
    yield folder
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in W.WEIGHTS_DIR.iterdir() if p.is_file()} == real, "real weights touched"


def test_export_refuses_the_shipped_folder_and_existing_files(checkpoint, package_weights, tmp_path, capsys):
    before = {p.name: p.read_bytes() for p in package_weights.iterdir()}
    assert W.main(["export", str(checkpoint), "--name", "ivf", "--out", str(package_weights)]) == 1
    assert "shipped" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in package_weights.iterdir()} == before
    out = tmp_path / "w"
    assert W.main(["export", str(checkpoint), "--name", "x", "--out", str(out)]) == 0
    first = (out / "x.safetensors").read_bytes()
    assert W.main(["export", str(checkpoint), "--name", "x", "--out", str(out)]) == 1
    assert "exists" in capsys.readouterr().err
    assert (out / "x.safetensors").read_bytes() == first


def test_default_export_folder_is_under_runs(checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert W.main(["export", str(checkpoint), "--name", "a"]) == 0
    assert (tmp_path / "runs" / "weights" / "a.json").is_file()


def test_verify_passes_on_the_shipped_weights():
    assert W.main(["verify"]) == 0


def test_verify_fails_when_shipped_weights_were_replaced(checkpoint, package_weights, capsys):
    # what the old export did: new tensors and a JSON that agrees with them, over the shipped files
    W.save_weights(W.load_weights(package_weights / "mif.json"), package_weights / "ivf.safetensors")
    assert W.main(["verify"]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "ivf" in out and "ok" in out  # mif still matches
    # a forced export into the package is deliberate: it records the new digest
    assert W.main(["export", str(checkpoint), "--name", "ivf", "--out", str(package_weights), "--force"]) == 0
    assert W.main(["verify"]) == 0


def test_verify_fails_on_a_corrupt_file(package_weights, capsys):
    raw = bytearray((package_weights / "mif.safetensors").read_bytes())
    raw[-5] ^= 0xFF
    (package_weights / "mif.safetensors").write_bytes(bytes(raw))
    assert W.main(["verify"]) == 1
    assert "sha256 mismatch" in capsys.readouterr().out

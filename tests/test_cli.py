"""The hifm command line: demo, fuse, and one-line errors without tracebacks."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from hifm.cli import main
from hifm.io import read_image, write_image
from hifm.synthetic import synthetic_pair


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hifm.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def pair_files(tmp_path):
    ir, vis = synthetic_pair(48, 64, seed=1)
    return write_image(tmp_path / "ir.png", ir), write_image(tmp_path / "vis.png", vis)


def test_demo_writes_image_and_figure(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path / "d"), "--iters", "20", "--height", "60", "--width", "80"]) == 0
    fused = read_image(tmp_path / "d" / "demo_fused.png")
    assert fused.shape == (60, 80) and fused.dtype == np.uint8
    assert (tmp_path / "d" / "demo_figure.png").stat().st_size > 10_000
    derun = read_image(tmp_path / "d" / "demo_fused_derun.png")  # the pretrained network (torch is in the test extra)
    assert derun.shape == (60, 80)
    assert "20 iterations" in capsys.readouterr().out


@pytest.mark.parametrize("method", ["anchor", "hifm"])
def test_fuse_command(method, pair_files, tmp_path):
    ir, vis = pair_files
    out = tmp_path / f"f_{method}.png"
    info = tmp_path / "info.json"
    extra = ["--iters", "10", "--mu", "0.01", "--info", str(info)] if method == "hifm" else []
    assert main(["fuse", str(ir), str(vis), "-o", str(out), "--method", method, *extra]) == 0
    img = read_image(out)
    assert img.shape == (48, 64)
    if method == "hifm":
        data = json.loads(info.read_text())
        assert data["iterations"] == 10 and data["params"]["mu"] == 0.01


def test_missing_file_is_one_line_error(pair_files, tmp_path):
    ir, _ = pair_files
    res = run_cli("fuse", str(ir), str(tmp_path / "nope.png"), "-o", str(tmp_path / "o.png"))
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert "nope.png" in res.stderr


def test_non_image_file_is_one_line_error(pair_files, tmp_path):
    ir, _ = pair_files
    fake = tmp_path / "fake.png"
    fake.write_text("this is not a png")
    res = run_cli("fuse", str(ir), str(fake), "-o", str(tmp_path / "o.png"))
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "fake.png" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_size_mismatch_names_both_files(pair_files, tmp_path):
    ir, _ = pair_files
    small = write_image(tmp_path / "small.png", np.zeros((10, 12), np.uint8))
    res = run_cli("fuse", str(ir), str(small), "-o", str(tmp_path / "o.png"))
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "size mismatch" in res.stderr and "small.png" in res.stderr and "ir.png" in res.stderr


def test_bad_parameter_is_one_line_error(pair_files, tmp_path):
    ir, vis = pair_files
    res = run_cli("fuse", str(ir), str(vis), "-o", str(tmp_path / "o.png"), "--rho", "-2")
    assert res.returncode != 0 and "Traceback" not in res.stderr and "rho" in res.stderr


def test_help_texts():
    res = run_cli("--help")
    assert res.returncode == 0 and "demo" in res.stdout and "fuse" in res.stdout
    res = run_cli("fuse", "--help")
    assert res.returncode == 0 and "--method" in res.stdout and "--lam" in res.stdout


def test_cli_does_not_import_torch():
    code = "import sys; from hifm.cli import build_parser; build_parser(); import hifm; print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.stdout.strip() == "False", res.stderr

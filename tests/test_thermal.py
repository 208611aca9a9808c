"""Thermal input: the used bit depth of 16-bit infrared files is detected and stretched; pseudo-colour IR warns."""
from __future__ import annotations

import json

import numpy as np
import pytest

import hifm
from hifm.cli import main
from hifm.errors import InputError
from hifm.io import read_image, write_image
from hifm.thermal import pseudo_colour_warning, stretch_ir, used_bits

from .conftest import SAMPLES

THERMAL = SAMPLES / "synthetic" / "thermal14"


@pytest.mark.parametrize("top,bits", [(1023, 10), (1024, 12), (4095, 12), (16383, 14), (16384, 16), (65535, 16)])
def test_used_bits(top, bits):
    x = np.zeros((4, 5), np.uint16)
    x[1, 2] = top
    assert used_bits(x) == bits


def test_stretch_by_bit_depth_and_by_range():
    x = np.array([[0, 1, 8192], [16383, 100, 5]], np.uint16)
    y, info = stretch_ir(x)
    assert info.stretched and info.used_bits == 14 and info.range == (0.0, 16383.0)
    assert y.dtype == np.uint16 and y[1, 0] == 65535 and y[0, 0] == 0
    assert y[0, 2] == 32770  # 8192 · 65535 / 16383 = 32770.0 (to 2e-5)
    same, info = stretch_ir(x, auto=False)
    assert same is x and not info.stretched
    full = x.copy()
    full[0, 0] = 60000  # uses 16 bits: left alone
    assert stretch_ir(full)[0] is full
    r, info = stretch_ir(x, ir_range=(100, 8192))
    assert r[0, 0] == 0 and r[1, 0] == 65535 and r[1, 1] == 0 and r[0, 2] == 65535 and info.how == "--ir-range"
    assert r[0, 1] == 0
    with pytest.raises(InputError, match="LO < HI"):
        stretch_ir(x, ir_range=(5, 5))
    u8 = np.full((3, 3), 40, np.uint8)
    assert stretch_ir(u8)[0] is u8


def test_fuse_stretches_a_14_bit_file(tmp_path, capsys):
    ir_path, vis_path = THERMAL / "ir" / "01.png", THERMAL / "vi" / "01.png"
    ir, vis = read_image(ir_path), read_image(vis_path)
    assert ir.dtype == np.uint16 and ir.max() <= 16383
    out, raw, info = tmp_path / "s.png", tmp_path / "n.png", tmp_path / "i.json"
    assert main(["fuse", str(ir_path), str(vis_path), "-o", str(out), "--iters", "30", "--info", str(info)]) == 0
    assert "14 bits" in capsys.readouterr().out
    assert json.loads(info.read_text())["ir_input"]["used_bits"] == 14
    expected_ir = np.rint(ir.astype(np.float64) / 16383 * 65535).astype(np.uint16)
    np.testing.assert_array_equal(read_image(out), hifm.solve(expected_ir, vis, iters=30))
    assert main(["fuse", str(ir_path), str(vis_path), "-o", str(raw), "--iters", "30", "--no-stretch"]) == 0
    # the warm people of the scene (hifm.synthetic: bodies at (0.72 H, 0.38 W) and (0.70 H, 0.45 W))
    h, w = ir.shape
    for cy, cx in ((0.72, 0.38), (0.70, 0.45)):
        y, x = int(cy * h), int(cx * w)
        stretched, as_stored = int(read_image(out)[y, x]), int(read_image(raw)[y, x])
        assert stretched > as_stored + 20000, (stretched, as_stored)


def test_fuse_dir_notes_the_stretch(tmp_path):
    from hifm.batch import FuseSettings, fuse_dir

    report = fuse_dir(THERMAL, tmp_path / "o", FuseSettings(method="anchor"), workers=0, progress=False)
    (record,) = report.records
    assert record["status"] == "ok" and any("14 bits" in n for n in record["notes"])


def test_pseudo_colour_ir_warns(tmp_path, capsys):
    import matplotlib

    ir = read_image(SAMPLES / "tno" / "ir" / "07.png", gray_if_equal=True)
    coloured = (matplotlib.colormaps["inferno"](ir / 255.0)[..., :3] * 255).round().astype(np.uint8)
    a = write_image(tmp_path / "ir_inferno.png", coloured)
    assert pseudo_colour_warning(coloured, "x") and pseudo_colour_warning(ir, "x") is None
    assert main(["fuse", str(a), str(SAMPLES / "tno" / "vi" / "07.png"), "-o", str(tmp_path / "f.png"),
                 "--method", "anchor"]) == 0
    assert "pseudo-colour" in capsys.readouterr().err

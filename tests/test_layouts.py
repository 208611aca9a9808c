"""Data set layouts beyond ROOT/ir + ROOT/vi: custom folder names, flat *_ir/*_vi files, nested sets;
and fuse-dir / fuse on them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import hifm
from hifm.cli import main
from hifm.datasets import find_pairs
from hifm.errors import PairingError
from hifm.io import read_image, write_image
from hifm.synthetic import synthetic_pair


def touch(root: Path, *files: str) -> Path:
    for f in files:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).write_bytes(b"x")
    return root


def put(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_image(path, image.astype(np.float32), bit_depth=8)


def names(root: Path, **kw) -> list[str]:
    return find_pairs(root, **kw).names


def test_custom_folder_names(tmp_path):
    touch(tmp_path, "thermal_cam/a.png", "thermal_cam/b.png", "colour_cam/a.jpg", "colour_cam/b.jpg")
    with pytest.raises(PairingError, match="--ir-dir"):
        find_pairs(tmp_path)
    pairs = find_pairs(tmp_path, a_dir="thermal_cam", b_dir="colour_cam")
    assert pairs.names == ["a", "b"] and pairs.kind == "ivf" and pairs.layout == "thermal_cam/colour_cam"
    assert pairs[0].ir_path == tmp_path / "thermal_cam" / "a.png"
    assert names(tmp_path, a_dir=tmp_path / "thermal_cam", b_dir=tmp_path / "colour_cam") == ["a", "b"]  # absolute
    with pytest.raises(PairingError, match="both"):
        find_pairs(tmp_path, a_dir="thermal_cam")
    with pytest.raises(PairingError, match="does not exist"):
        find_pairs(tmp_path, a_dir="thermal_cam", b_dir="nope")


def test_flat_suffix_layout(tmp_path):
    touch(tmp_path, "s1_ir.png", "s1_vi.png", "s2-infrared.png", "s2-VISIBLE.jpg", "s3.IR.png", "s3.rgb.png",
          "lonely_ir.png", "notes.png")
    pairs = find_pairs(tmp_path)
    assert pairs.names == ["s1", "s2", "s3"] and pairs.kind == "ivf"
    assert pairs[1].ir_path.name == "s2-infrared.png" and pairs[1].vis_path.name == "s2-VISIBLE.jpg"
    unpaired = {p.name: why for p, why in pairs.unpaired}
    assert set(unpaired) == {"lonely_ir.png", "notes.png"}
    assert "partner" in unpaired["lonely_ir.png"] and "suffix" in unpaired["notes.png"]


def test_flat_medical_layout(tmp_path):
    touch(tmp_path, "11_mri.png", "11_pet.png", "12_mri.png", "12_pet.png")
    pairs = find_pairs(tmp_path)
    assert pairs.names == ["11", "12"] and pairs.kind == "medical"


def test_recursive_inside_modality_folders(tmp_path):
    touch(tmp_path, "ir/day/01.png", "ir/night/01.png", "vi/day/01.png", "vi/night/01.jpg", "ir/top.png", "vi/top.png")
    assert names(tmp_path) == ["top"]  # without --recursive only the folders' own files
    pairs = find_pairs(tmp_path, recursive=True)
    assert pairs.names == ["day/01", "night/01", "top"] and pairs.complete
    assert pairs[1].vis_path == tmp_path / "vi" / "night" / "01.jpg"


def test_recursive_collects_data_sets_below_the_root(tmp_path):
    touch(tmp_path, "road/ir/1.png", "road/vi/1.png", "brain/MRI/1.png", "brain/CT/1.png", "flat/x_ir.png",
          "flat/x_vi.png", "deep/er/IR/9.png", "deep/er/VI/9.png", ".hidden/ir/1.png", ".hidden/vi/1.png")
    with pytest.raises(PairingError, match="--recursive"):
        find_pairs(tmp_path)
    pairs = find_pairs(tmp_path, recursive=True)
    assert pairs.names == ["brain/1", "deep/er/9", "flat/x", "road/1"]
    assert pairs.kind == "mixed" and "4 data set(s)" in pairs.layout


@pytest.fixture
def nested(tmp_path) -> Path:
    root = tmp_path / "data"
    for k, sub in enumerate(("day", "night")):
        ir, vis = synthetic_pair(40, 56, seed=k)
        put(root / "ir" / sub / "p.png", ir)
        put(root / "vi" / sub / "p.png", vis)
    return root


def test_fuse_dir_recursive_keeps_relative_paths(nested, tmp_path):
    out = tmp_path / "out"
    assert main(["fuse-dir", str(nested), "-o", str(out), "--recursive", "--method", "anchor", "--workers", "0",
                 "--quiet"]) == 0
    for sub in ("day", "night"):
        ir, vis = read_image(nested / "ir" / sub / "p.png"), read_image(nested / "vi" / sub / "p.png")
        np.testing.assert_array_equal(read_image(out / sub / "p.png"), hifm.fuse(ir, vis, method="anchor"))


def test_fuse_dir_with_ir_dir_and_vis_dir(tmp_path):
    root = tmp_path / "set"
    ir, vis = synthetic_pair(40, 56, seed=3)
    put(root / "A" / "q.png", ir)
    put(root / "B" / "q.png", vis)
    out = tmp_path / "out"
    assert main(["fuse-dir", str(root), "-o", str(out), "--ir-dir", "A", "--vis-dir", "B", "--method", "anchor",
                 "--workers", "0", "--quiet"]) == 0
    assert read_image(out / "q.png").shape == (40, 56)


def test_fuse_resize(tmp_path, capsys):
    ir, vis = synthetic_pair(60, 80, seed=4)
    a = put(tmp_path / "ir.png", ir[::2, ::2])  # 30×40
    b = put(tmp_path / "vi.png", vis)
    out = tmp_path / "o.png"
    assert main(["fuse", str(a), str(b), "-o", str(out), "--method", "anchor"]) != 0
    assert "--resize" in capsys.readouterr().err
    assert main(["fuse", str(a), str(b), "-o", str(out), "--method", "anchor", "--resize"]) == 0
    from hifm.batch import resize_image

    want = hifm.fuse(resize_image(read_image(a), (60, 80)), read_image(b), method="anchor")
    np.testing.assert_array_equal(read_image(out), want)

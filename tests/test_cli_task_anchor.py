"""The task picks the anchor of the anchor/hifm methods in the command line (``hifm.anchors.TASK_ANCHORS``):
a medical pair (MRI + CT/PET/SPECT, given by ``--task mif`` or guessed from the names and the
layout) gets ``two_scale``; ``--anchor`` always wins; infrared-visible pairs keep the default."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import hifm
from hifm.anchors import DEFAULT_ANCHOR, TASK_ANCHORS
from hifm.batch import FuseSettings, fuse_dir
from hifm.cli import main
from hifm.io import read_image

from .conftest import SAMPLES

MEDICAL = SAMPLES / "synthetic" / "mri-pet"
TNO = SAMPLES / "tno"


def _pair(root, a: str, b: str, name: str):
    return tuple(read_image(root / d / f"{name}.png", gray_if_equal=True) for d in (a, b))


@pytest.fixture(scope="module")
def medical_anchors() -> dict[str, np.ndarray]:
    mri, pet = _pair(MEDICAL, "mri", "pet", "02")
    got = {name: hifm.fuse(mri, pet, method="anchor", anchor=name) for name in ("two_scale", "salient", "mean")}
    # the test below can only tell the anchors apart if they differ on this pair
    assert np.abs(got["two_scale"].astype(int) - got["salient"].astype(int)).max() > 5
    return got


def test_the_mapping_names_known_anchors():
    assert set(TASK_ANCHORS) == {"ivf", "mif"}
    assert TASK_ANCHORS["ivf"] == DEFAULT_ANCHOR and TASK_ANCHORS["mif"] == "two_scale"
    assert all(name in hifm.anchors.ANCHORS for name in TASK_ANCHORS.values())


@pytest.mark.parametrize("extra, want, says", [
    ([], "two_scale", True),                     # guessed from the folder names mri/ and pet/
    (["--task", "mif"], "two_scale", True),
    (["--task", "ivf"], "salient", False),
    (["--anchor", "mean"], "mean", False),       # --anchor wins, no guess is made
    (["--task", "mif", "--anchor", "salient"], "salient", False),
])
def test_fuse_anchor_method_follows_the_task(medical_anchors, tmp_path, capsys, extra, want, says):
    out = tmp_path / "f.png"
    assert main(["fuse", str(MEDICAL / "mri" / "02.png"), str(MEDICAL / "pet" / "02.png"), "-o", str(out),
                 "--method", "anchor", *extra]) == 0
    printed = capsys.readouterr().out
    np.testing.assert_array_equal(read_image(out), medical_anchors[want])
    assert ("anchor: two_scale for task 'mif'" in printed) == says, printed


def test_fuse_hifm_on_a_medical_pair_uses_two_scale(tmp_path, capsys):
    out = tmp_path / "f.png"
    assert main(["fuse", str(MEDICAL / "mri" / "02.png"), str(MEDICAL / "pet" / "02.png"), "-o", str(out),
                 "--iters", "3"]) == 0
    mri, pet = _pair(MEDICAL, "mri", "pet", "02")
    np.testing.assert_array_equal(read_image(out), hifm.fuse(mri, pet, iters=3, anchor="two_scale"))


def test_fuse_keeps_the_default_anchor_for_an_infrared_visible_pair(tmp_path, capsys):
    out = tmp_path / "f.png"
    assert main(["fuse", str(TNO / "ir" / "07.png"), str(TNO / "vi" / "07.png"), "-o", str(out),
                 "--method", "anchor"]) == 0
    assert "anchor:" not in capsys.readouterr().out
    ir, vis = _pair(TNO, "ir", "vi", "07")
    np.testing.assert_array_equal(read_image(out), hifm.fuse(ir, vis, method="anchor"))


def test_fuse_dir_chooses_two_scale_for_a_medical_layout(medical_anchors, tmp_path):
    logs: list[str] = []
    report = fuse_dir(MEDICAL, tmp_path / "o", FuseSettings(method="anchor"), workers=0, progress=False,
                      log=logs.append)
    assert report.count("ok") >= 2
    assert any("anchor: two_scale for medical pairs" in line for line in logs), logs
    np.testing.assert_array_equal(read_image(tmp_path / "o" / "02.png"), medical_anchors["two_scale"])
    # --task ivf keeps the default anchor, and resume sees that the setting changed
    again = fuse_dir(MEDICAL, tmp_path / "o", FuseSettings(method="anchor", task="ivf"), workers=0,
                     progress=False, resume=True, log=logs.append)
    assert again.already_done == [] and again.count("ok") == report.count("ok")
    np.testing.assert_array_equal(read_image(tmp_path / "o" / "02.png"), medical_anchors["salient"])


def test_fuse_dir_keeps_the_default_anchor_for_an_infrared_visible_layout(tmp_path):
    logs: list[str] = []
    fuse_dir(TNO, tmp_path / "o", FuseSettings(method="anchor"), workers=0, progress=False, log=logs.append)
    assert not any("anchor:" in line for line in logs)
    ir, vis = _pair(TNO, "ir", "vi", "07")
    np.testing.assert_array_equal(read_image(tmp_path / "o" / "07.png"), hifm.fuse(ir, vis, method="anchor"))


def test_fuse_dir_says_which_anchor_a_mixed_layout_gets(medical_anchors, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(MEDICAL, root / "brain")
    for sub in ("ir", "vi"):
        (root / "road" / sub).mkdir(parents=True)
        shutil.copy(TNO / sub / "07.png", root / "road" / sub / "07.png")
    logs: list[str] = []
    fuse_dir(root, tmp_path / "o", FuseSettings(method="anchor"), workers=0, progress=False, log=logs.append,
             recursive=True)
    assert any("anchor: the default salient for every pair of this mixed layout" in line for line in logs), logs
    np.testing.assert_array_equal(read_image(tmp_path / "o" / "brain" / "02.png"), medical_anchors["salient"])

"""Tests of hifm.datasets: pair discovery in paired folders."""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path

import pytest

from hifm.datasets import Pair, PairSet, find_pairs
from hifm.errors import InputError, PairingError

from ._data import DATA as SHARED_DATA
from ._data import missing


def make_layout(root: Path, folders: dict[str, list[str]]) -> Path:
    """Create ``root/<folder>/<file>`` with a few bytes in each file."""
    for folder, files in folders.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in files:
            (root / folder / name).write_bytes(b"x")
    return root


def test_basic_ir_vi_pairs_in_natural_order(tmp_path):
    names = ["10.png", "2.png", "1.png"]
    make_layout(tmp_path, {"ir": names, "vi": names})
    pairs = find_pairs(tmp_path)
    assert isinstance(pairs, PairSet) and pairs.kind == "ivf" and pairs.layout == "ir/vi"
    assert pairs.names == ["1", "2", "10"]
    assert pairs[0] == Pair("1", tmp_path / "ir" / "1.png", tmp_path / "vi" / "1.png")
    assert len(pairs) == 3 and list(pairs) == pairs.pairs
    assert pairs.complete and pairs.unpaired == [] and pairs.duplicates == []
    assert pairs.require_complete() is pairs


@pytest.mark.parametrize(
    "a,b",
    [("IR", "VI"), ("infrared", "visible"), ("Infrared", "Visible"), ("lwir", "vis"), ("Ir", "Vis"),
     ("cropinfrared", "crop_LR_visible")],
)
def test_folder_aliases(tmp_path, a, b):
    make_layout(tmp_path, {a: ["x.jpg"], b: ["x.jpg"], "other": ["x.jpg"]})
    pairs = find_pairs(tmp_path)
    assert pairs.layout == f"{a}/{b}" and pairs.kind == "ivf"
    assert pairs[0].ir_path == tmp_path / a / "x.jpg" and pairs[0].vis_path == tmp_path / b / "x.jpg"


@pytest.mark.parametrize("a,b", [("mri", "ct"), ("MRI", "PET"), ("MRI", "spect")])
def test_medical_layouts_put_mri_in_role_a(tmp_path, a, b):
    make_layout(tmp_path, {a: ["11.png", "12.png"], b: ["11.png", "12.png"]})
    pairs = find_pairs(tmp_path)
    assert pairs.kind == "medical" and pairs.layout == f"{a}/{b}"
    assert [p.ir_path.parent.name for p in pairs] == [a, a]
    assert [p.vis_path.parent.name for p in pairs] == [b, b]


def test_mri_with_two_partners_is_ambiguous(tmp_path):
    make_layout(tmp_path, {"mri": ["1.png"], "ct": ["1.png"], "pet": ["1.png"]})
    with pytest.raises(PairingError, match="ambiguous.*ct.*pet"):
        find_pairs(tmp_path)
    pairs = find_pairs(tmp_path, b_names=["PET"])
    assert pairs.layout == "mri/pet" and pairs[0].vis_path == tmp_path / "pet" / "1.png"


def test_two_infrared_folders_are_ambiguous(tmp_path):
    make_layout(tmp_path, {"ir": ["1.png"], "infrared": ["1.png"], "vi": ["1.png"]})
    with pytest.raises(PairingError, match="ambiguous"):
        find_pairs(tmp_path)
    assert find_pairs(tmp_path, a_names=["infrared"]).layout == "infrared/vi"
    assert find_pairs(tmp_path, a_names="IR").layout == "ir/vi"  # a lone string is one name


def test_custom_folder_names(tmp_path):
    make_layout(tmp_path, {"thermal": ["a.png"], "rgb": ["a.png"]})
    with pytest.raises(PairingError, match="thermal"):
        find_pairs(tmp_path)
    pairs = find_pairs(tmp_path, a_names=["thermal"], b_names=["rgb"])
    assert pairs.layout == "thermal/rgb" and pairs.names == ["a"]


def test_extensions_may_differ_between_modalities(tmp_path):
    make_layout(tmp_path, {"ir": ["a.png", "b.bmp"], "vi": ["a.jpg", "b.TIFF"]})
    pairs = find_pairs(tmp_path)
    assert [(p.ir_path.name, p.vis_path.name) for p in pairs] == [("a.png", "a.jpg"), ("b.bmp", "b.TIFF")]


def test_unpaired_files_are_reported(tmp_path):
    make_layout(tmp_path, {"ir": ["1.png", "2.png", "only_ir.png"], "vi": ["1.png", "2.png", "only_vi.jpg"]})
    pairs = find_pairs(tmp_path)
    assert pairs.names == ["1", "2"]
    reasons = {path.name: reason for path, reason in pairs.unpaired}
    assert set(reasons) == {"only_ir.png", "only_vi.jpg"}
    assert "vi/" in reasons["only_ir.png"] and "ir/" in reasons["only_vi.jpg"]
    assert not pairs.complete
    with pytest.raises(PairingError, match=r"2 problem.*ir/only_ir\.png.*vi/only_vi\.jpg"):
        pairs.require_complete()


def test_same_stem_with_two_extensions_is_a_duplicate(tmp_path):
    make_layout(tmp_path, {"ir": ["a.png", "a.jpg", "b.png"], "vi": ["a.png", "b.png"]})
    pairs = find_pairs(tmp_path)
    assert pairs.names == ["b"]
    assert pairs.duplicates == [("a", (tmp_path / "ir" / "a.jpg", tmp_path / "ir" / "a.png"))]
    assert pairs.unpaired == [(tmp_path / "vi" / "a.png", "its partner 'a' in ir/ has several files")]
    with pytest.raises(PairingError, match="several files"):
        pairs.require_complete()


def test_non_images_reported_and_junk_ignored(tmp_path):
    make_layout(tmp_path, {"ir": ["1.png", "README.txt", ".DS_Store", "Thumbs.db"], "vi": ["1.png"]})
    (tmp_path / "ir" / "nested").mkdir()
    (tmp_path / "ir" / "nested" / "1.png").write_bytes(b"x")
    pairs = find_pairs(tmp_path)
    assert pairs.names == ["1"]
    assert [(p.name, r) for p, r in pairs.unpaired] == [("README.txt", "not an image file (extension '.txt')")]


def test_missing_root(tmp_path):
    with pytest.raises(PairingError, match="nowhere.*does not exist") as info:
        find_pairs(tmp_path / "nowhere")
    assert isinstance(info.value, InputError) and isinstance(info.value, ValueError)


def test_root_is_a_file(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(PairingError, match="file.txt.*not a folder"):
        find_pairs(tmp_path / "file.txt")


def test_no_modality_folders_lists_what_was_found(tmp_path):
    make_layout(tmp_path, {"left": ["1.png"], "right": ["1.png"]})
    with pytest.raises(PairingError, match="folders found: left, right"):
        find_pairs(tmp_path)


def test_missing_partner_folder(tmp_path):
    make_layout(tmp_path, {"ir": ["1.png"], "depth": ["1.png"]})
    with pytest.raises(PairingError, match=r"source B.*folders found: depth, ir"):
        find_pairs(tmp_path)


def test_no_pairs_is_an_error(tmp_path):
    make_layout(tmp_path, {"ir": ["a.png"], "vi": ["b.png"]})
    with pytest.raises(PairingError, match="no image pairs.*2 unpaired"):
        find_pairs(tmp_path)


def test_llvip_split_layout(tmp_path):
    make_layout(tmp_path, {"infrared/train": ["1.jpg", "2.jpg"], "visible/train": ["1.jpg", "2.jpg"],
                           "infrared/test": ["9.jpg"], "visible/test": ["9.jpg"]})
    with pytest.raises(PairingError, match="no image pairs"):
        find_pairs(tmp_path)
    train = find_pairs(tmp_path, split="train")
    assert train.names == ["1", "2"] and train.layout == "infrared/visible (train)"
    assert find_pairs(tmp_path, split="test").names == ["9"]
    with pytest.raises(PairingError, match="no split folder 'val'.*test, train"):
        find_pairs(tmp_path, split="val")


def _run_with_timeout(func, seconds: float):
    result: dict[str, object] = {}
    thread = threading.Thread(target=lambda: result.setdefault("value", func()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "find_pairs did not return (symbolic-link loop?)"
    return result["value"]


def test_symlink_loops_do_not_hang(tmp_path):
    make_layout(tmp_path, {"ir": ["1.png"], "vi": ["1.png"]})
    os.symlink(tmp_path, tmp_path / "loop")
    os.symlink(tmp_path / "ir", tmp_path / "ir" / "self")
    os.symlink("a_b_loop", tmp_path / "vi" / "b_a_loop.png")
    os.symlink("b_a_loop.png", tmp_path / "vi" / "a_b_loop")
    pairs = _run_with_timeout(lambda: find_pairs(tmp_path), 10.0)
    assert pairs.names == ["1"]
    assert [(p.name, "broken" in r) for p, r in pairs.unpaired] == [("a_b_loop", True), ("b_a_loop.png", True)]


def test_symlinked_modality_folder_is_followed(tmp_path):
    make_layout(tmp_path / "elsewhere", {"visible": ["1.png"]})
    make_layout(tmp_path / "root", {"ir": ["1.png"]})
    os.symlink(tmp_path / "elsewhere" / "visible", tmp_path / "root" / "vi")
    pairs = find_pairs(tmp_path / "root")
    assert pairs[0].vis_path == tmp_path / "root" / "vi" / "1.png"


def test_pair_is_frozen():
    pair = Pair("a", Path("ir/a.png"), Path("vi/a.png"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        pair.name = "b"  # type: ignore[misc]


@pytest.mark.parametrize(
    "name,layout,kind",
    [("tno", "ir/vi", "ivf"), ("synthetic/mri-pet", "mri/pet", "medical"),
     ("synthetic/mri-ct", "mri/ct", "medical"), ("synthetic/thermal14", "ir/vi", "ivf")],
)
def test_shipped_sample_sets(name, layout, kind):
    from .conftest import sample_dir, sample_pair_counts

    pairs = find_pairs(sample_dir(name))
    assert (len(pairs), pairs.layout, pairs.kind) == (sample_pair_counts()[name], layout, kind)
    assert pairs.complete
    assert all(p.ir_path.name == p.vis_path.name for p in pairs)


# full data set -> (pairs, layout, kind), and the shipped folder a fresh clone checks instead
FULL_SETS = {
    "tno": ((25, "ir/vi", "ivf"), ("tno", "ir/vi", "ivf")),
    "roadscene-test": ((50, "ir/vi", "ivf"), ("synthetic/thermal14", "ir/vi", "ivf")),
    "mri-ct": ((21, "mri/ct", "medical"), ("synthetic/mri-ct", "mri/ct", "medical")),
}


@pytest.mark.parametrize("name", list(FULL_SETS))
def test_shared_data_sets(name):
    """Pair discovery on the full development set; in a fresh clone (no ``HIFM_DATA``), on
    its shipped stand-in, with the count that ``samples/README.md`` states."""
    from .conftest import full_or_sample, sample_pair_counts

    (count, layout, kind), (stand_in, s_layout, s_kind) = FULL_SETS[name]
    root, full = full_or_sample(name, stand_in)
    if not full:
        count, layout, kind = sample_pair_counts()[stand_in], s_layout, s_kind
    pairs = find_pairs(root)
    assert (len(pairs), pairs.layout, pairs.kind) == (count, layout, kind)
    assert pairs.complete
    assert all(p.ir_path.name == p.vis_path.name for p in pairs)

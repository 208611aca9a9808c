"""Every pair of the shipped samples (and of TNO and RoadScene-test when present) fuses, stays in
range and decreases the objective."""
from __future__ import annotations

import numpy as np
import pytest

import hifm
from hifm.datasets import find_pairs
from hifm.io import read_image

from .conftest import data_dir, sample_dir


def _check_every_pair(root, expected: int) -> None:
    pairs = find_pairs(root)
    assert len(pairs) == expected and pairs.complete
    for pair in pairs:
        ir = read_image(pair.ir_path, gray_if_equal=True)
        vis = read_image(pair.vis_path, gray_if_equal=True)
        fused, info = hifm.solve(ir, vis, iters=25, return_info=True)
        assert fused.dtype == np.uint8, pair.name  # 8-bit sources → 8-bit result
        assert fused.shape[:2] == ir.shape[:2], pair.name
        assert fused.ndim == max(ir.ndim, vis.ndim), pair.name  # a colour source → colour result
        obj = info.history.objective
        assert obj[-1] < obj[1], f"{pair.name}: objective did not decrease ({obj[1]} → {obj[-1]})"
        assert np.isfinite(obj).all()


@pytest.mark.parametrize("sample,count", [("tno", 5), ("synthetic/mri-pet", 2), ("synthetic/mri-ct", 2)])
def test_every_shipped_sample_pair_fuses(sample, count):
    _check_every_pair(sample_dir(sample), count)


@pytest.mark.parametrize("dataset", ["tno", "roadscene-test"])
def test_every_pair_of_the_full_sets_fuses(dataset):
    _check_every_pair(data_dir(dataset), {"tno": 25, "roadscene-test": 50}[dataset])

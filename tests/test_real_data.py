"""Every pair of the shipped samples (and of TNO and RoadScene-test when present; their shipped
stand-ins in a fresh clone) fuses, stays in range and decreases the objective."""
from __future__ import annotations

import numpy as np
import pytest

import hifm
from hifm.datasets import find_pairs
from hifm.io import read_image

from .conftest import full_or_sample, sample_dir, sample_pair_counts


def _check_every_pair(root, expected: int) -> None:
    pairs = find_pairs(root)
    assert len(pairs) == expected and pairs.complete
    for pair in pairs:
        ir = read_image(pair.ir_path, gray_if_equal=True)
        vis = read_image(pair.vis_path, gray_if_equal=True)
        fused, info = hifm.solve(ir, vis, iters=25, return_info=True)
        # 8-bit sources -> 8-bit result; a 16-bit (14-bit camera) infrared -> 16-bit result
        assert fused.dtype == np.result_type(ir.dtype, vis.dtype), pair.name
        assert fused.shape[:2] == ir.shape[:2], pair.name
        assert fused.ndim == max(ir.ndim, vis.ndim), pair.name  # a colour source → colour result
        obj = info.history.objective
        assert obj[-1] < obj[1], f"{pair.name}: objective did not decrease ({obj[1]} → {obj[-1]})"
        assert np.isfinite(obj).all()


@pytest.mark.parametrize("sample", ["tno", "synthetic/mri-pet", "synthetic/mri-ct"])
def test_every_shipped_sample_pair_fuses(sample):
    _check_every_pair(sample_dir(sample), sample_pair_counts()[sample])


# full data set -> (pairs, the shipped folder a fresh clone fuses instead)
FULL_SETS = {"tno": (25, "tno"), "roadscene-test": (50, "synthetic/thermal14")}


@pytest.mark.parametrize("dataset", list(FULL_SETS))
def test_every_pair_of_the_full_sets_fuses(dataset):
    count, stand_in = FULL_SETS[dataset]
    root, full = full_or_sample(dataset, stand_in)
    _check_every_pair(root, count if full else sample_pair_counts()[stand_in])

"""Every pair of TNO and RoadScene-test fuses, stays in range and decreases the objective."""
from __future__ import annotations

import numpy as np
import pytest

import hifm
from hifm.datasets import find_pairs
from hifm.io import read_image

from .conftest import data_dir


@pytest.mark.parametrize("dataset", ["tno", "roadscene-test"])
def test_every_pair_fuses(dataset):
    pairs = find_pairs(data_dir(dataset))
    assert len(pairs) == {"tno": 25, "roadscene-test": 50}[dataset]
    for pair in pairs:
        ir = read_image(pair.ir_path, gray_if_equal=True)
        vis = read_image(pair.vis_path, gray_if_equal=True)
        fused, info = hifm.solve(ir, vis, iters=25, return_info=True)
        assert fused.dtype == np.uint8, pair.name
        assert fused.shape[:2] == ir.shape[:2], pair.name
        assert fused.ndim == vis.ndim, pair.name  # colour visible → colour result
        obj = info.history.objective
        assert obj[-1] < obj[1], f"{pair.name}: objective did not decrease ({obj[1]} → {obj[-1]})"
        assert np.isfinite(obj).all()

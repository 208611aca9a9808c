"""``hifm fuse-dir --method hifm`` end to end: the real solver in worker processes, no fake.

(tests/test_batch.py runs the batch machinery with the anchor, or with a fake ``api.fuse``.)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hifm import api
from hifm.batch import MANIFEST_NAME, read_manifest, sha256_file
from hifm.cli import main
from hifm.io import read_image, write_image
from hifm.synthetic import synthetic_pair


def test_fuse_dir_hifm_equals_the_api(tmp_path: Path, capsys) -> None:
    root = tmp_path / "data"
    (root / "ir").mkdir(parents=True)
    (root / "vi").mkdir()
    for i in range(3):
        ir, vis = synthetic_pair(26 + 2 * i, 34, seed=i, noise=0.03)
        write_image(root / "ir" / f"{i}.png", (ir * 255).round().astype(np.uint8))
        rgb = np.stack([vis, 0.9 * vis + 0.05, 0.8 * vis + 0.1], -1)
        write_image(root / "vi" / f"{i}.png", (rgb * 255).round().astype(np.uint8))
    out = tmp_path / "out"
    rc = main(["fuse-dir", str(root), "-o", str(out), "--method", "hifm", "--iters", "7", "--workers", "1", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    records = [r for r in read_manifest(out / MANIFEST_NAME) if r.get("kind") == "pair"]
    assert [r["name"] for r in records] == ["0", "1", "2"]
    for r in records:
        assert r["status"] == "ok" and r["method"] == "hifm" and r["options"] == {"iters": 7}
        assert r["output_sha256"] == sha256_file(r["output"])
        fused = read_image(r["output"])
        ir, vis = read_image(r["ir"], gray_if_equal=True), read_image(r["vis"], gray_if_equal=True)
        want = api.fuse(ir, vis, method="hifm", iters=7)
        assert fused.dtype == np.uint8 and fused.shape == vis.shape
        np.testing.assert_array_equal(fused, want)
        # the solver ran: not the anchor
        assert np.abs(fused.astype(int) - api.fuse(ir, vis, method="anchor").astype(int)).max() > 0

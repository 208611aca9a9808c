"""The sample set shipped in samples/: small, attributed, and the synthetic part reproducible."""
from __future__ import annotations

import hashlib
import importlib.util
import re

import numpy as np

from hifm.io import read_image

from .conftest import SAMPLES


def test_sample_set_is_small_and_licensed():
    files = [p for p in SAMPLES.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    total = sum(p.stat().st_size for p in files)
    assert total < 4 * 2**20, f"samples/ holds {total / 2**20:.1f} MiB; keep it a few MB"
    readme = (SAMPLES / "README.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in readme and "10.6084/m9.figshare.1008029" in readme


def test_tno_files_match_the_digests_in_the_readme():
    readme = (SAMPLES / "README.md").read_text(encoding="utf-8")
    listed = dict((path, digest) for digest, path in re.findall(r"^([0-9a-f]{64})  (tno/\S+)$", readme, re.M))
    shipped = sorted(p.relative_to(SAMPLES).as_posix() for p in (SAMPLES / "tno").rglob("*.png"))
    assert sorted(listed) == shipped and len(shipped) == 10
    for path, digest in listed.items():
        assert hashlib.sha256((SAMPLES / path).read_bytes()).hexdigest() == digest, path


def test_synthetic_samples_are_what_the_generator_writes(tmp_path):
    spec = importlib.util.spec_from_file_location("make_synthetic", SAMPLES / "make_synthetic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = module.write_all(tmp_path)
    shipped = sorted(p.relative_to(SAMPLES / "synthetic") for p in (SAMPLES / "synthetic").rglob("*.png"))
    assert sorted(p.relative_to(tmp_path) for p in written) == shipped
    for rel in shipped:
        new, old = read_image(tmp_path / rel), read_image(SAMPLES / "synthetic" / rel)
        assert new.dtype == old.dtype and new.shape == old.shape, rel
        diff = np.abs(new.astype(np.int64) - old.astype(np.int64))
        # the same seeds: equal up to a rounding flip of one level on another platform's floating point
        assert diff.max() <= 1 and np.count_nonzero(diff) <= diff.size // 1000, rel


def test_thermal_sample_is_14_bit():
    ir = read_image(SAMPLES / "synthetic" / "thermal14" / "ir" / "01.png")
    assert ir.dtype == np.uint16 and ir.max() <= 2**14 - 1 and ir.max() > 2**13

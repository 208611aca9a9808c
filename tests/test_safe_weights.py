"""Safe weights (issue 6, part 3): no unpickling of files anywhere in the packages."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNSAFE = re.compile(
    r"^\s*(import|from)\s+(pickle|cPickle|dill|joblib)\b|pickle\.loads?\(|torch\.load\(|allow_pickle\s*=\s*True|"
    r"joblib\.load\(|np\.load\([^)]*allow_pickle",
    re.MULTILINE,
)


def _sources() -> list[Path]:
    return sorted(p for pkg in ("hifm", "unrolled") for p in (ROOT / pkg).rglob("*.py") if "__pycache__" not in p.parts)


def test_the_pattern_catches_unsafe_loading():
    for snippet in ("import pickle", "w = torch." + "load(path)", "np.load(f, allow_pickle=True)", "from joblib import load",
                    "obj = pickle.load(fh)"):
        assert UNSAFE.search(snippet), snippet
    for snippet in ("from safetensors.torch import load_file", "# we never call the pickle module", "np.load(f)"):
        assert not UNSAFE.search(snippet), snippet


def test_no_unpickling_in_the_packages():
    files = _sources()
    assert len(files) > 20
    hits = [f"{p.relative_to(ROOT)}:{m.group(0).strip()}" for p in files for m in UNSAFE.finditer(p.read_text())]
    assert hits == []


def test_weights_are_safetensors_with_a_checked_hash():
    pytest.importorskip("torch")
    weights = sorted(p for p in (ROOT / "unrolled" / "weights").glob("*") if p.name != "SHA256SUMS")
    assert {p.suffix for p in weights} <= {".safetensors", ".json"} and weights
    import json

    from unrolled.weights import sha256_file

    for meta in (ROOT / "unrolled" / "weights").glob("*.json"):
        data = json.loads(meta.read_text())
        assert data["sha256"] == sha256_file(meta.with_suffix(".safetensors"))

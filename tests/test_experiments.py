"""The experiment scripts (``experiments/*.py``) in their ``--quick`` mode: they run, and write
figures and Markdown tables that hold numbers.

The scripts are run in this process (``main(argv)``), so the imports and compiled kernels are
shared; all six together take well under a minute.  Without the full data sets (a fresh
clone) they run on the shipped samples and say so in their reports; only the VIFB ranking
figure of the benchmark and the halo validation's published methods need the VIFB
development set (without it the halo validation scores our methods on the TNO samples).
"""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import DATA

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# a Markdown table row holding at least one number (e.g. "| TNO | 0.523 | 1.2e-03 |")
NUMBER_ROW = re.compile(r"^\|.*\|\s*\**[-+−]?\d+(\.\d+)?(e[-+]?\d+)?", re.MULTILINE)

SCRIPTS = {
    "convergence": ["convergence_solver.png", "convergence_derun.png"],
    "solver_vs_network": ["crops.png", "quality_vs_time.png"],
    "ablation": ["ablation.png"],
    "degradation": ["fog_failure.png", "degradation_summary.png"],
    "benchmark": ["vifb_mean_rank.png"],
    "halo_validation": ["halo_crops.png", "halo_ranked.png"],
}


def _load(name: str) -> ModuleType:
    if str(EXPERIMENTS) not in sys.path:
        sys.path.insert(0, str(EXPERIMENTS))
    spec = importlib.util.spec_from_file_location(f"experiments_{name}", EXPERIMENTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def _unrolled_available() -> bool:
    try:
        import unrolled.train  # noqa: F401
    except Exception:  # noqa: BLE001
        return False
    return True


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_quick_mode_writes_figures_and_tables(name: str, tmp_path: Path) -> None:
    module = _load(name)
    out = tmp_path / name
    assert module.main(["--quick", "--out", str(out)]) == 0
    md = out / "results.md"
    assert md.is_file()
    text = md.read_text()
    assert text.startswith("# ")
    assert f"experiments/{name}.py --quick" in text  # the command that made it
    if name == "ablation" and not _unrolled_available():
        assert "Skipped" in text
        return
    rows = NUMBER_ROW.findall(text)
    assert rows, f"no table row with numbers in {md}:\n{text[:2000]}"
    assert not re.search(r"\|\s*nan\s*\|", text, re.IGNORECASE), "NaN printed in a table"
    missing = [d for d in ("tno", "roadscene-test", "roadscene-train", "mri-ct", "vifb-dev") if not (DATA / d).is_dir()]
    if missing:  # a fresh clone: the report must say which shipped samples stood in
        assert "Data: " in text and ("shipped" in text or "left out" in text), text[:1500]
    if name == "halo_validation" and not (DATA / "vifb-dev").is_dir():
        assert "VIFB-dev: not found" in text
        assert "published methods' fused images are not available" in text
    for png in SCRIPTS[name]:
        if png == "vifb_mean_rank.png" and not (DATA / "vifb-dev").is_dir():
            assert "VIFB-dev: not found" in text
            continue
        path = out / png
        assert path.is_file(), f"{png} missing"
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        assert f"]({png})" in text, f"{png} is not linked from results.md"


def test_rank_values_and_spread_indices() -> None:
    common = _load("common")
    assert common.rank_values([3.0, 1.0, 2.0], higher=True) == [1.0, 3.0, 2.0]
    assert common.rank_values([3.0, 1.0, 3.0], higher=False) == [2.5, 1.0, 2.5]
    assert common.rank_values([float("nan"), 1.0], higher=True) == [2.0, 1.0]
    assert common.spread_indices(10, 3) == [0, 4, 9] or common.spread_indices(10, 3) == [0, 5, 9]
    assert common.spread_indices(4, None) == [0, 1, 2, 3]
    table = common.markdown_table(["a", "b"], [["x|y", 0.5]])
    assert "x\\|y" in table and "0.500" in table

"""The experiment scripts (``experiments/*.py``) in their ``--quick`` mode: they run, and write
figures and Markdown tables that hold numbers.

The scripts are run in this process (``main(argv)``), so the imports and compiled kernels are
shared; all six together take well under a minute.  Without the full data sets (a fresh
clone) they run on the shipped samples and say so in their reports; only the VIFB ranking
figure of the benchmark and the halo validation's published methods need the VIFB
development set (the benchmark's hot-target crops then show a shipped TNO pair only; the halo
validation scores our methods on the TNO samples).
"""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from ._data import DATA, missing

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# a Markdown table row holding at least one number (e.g. "| TNO | 0.523 | 1.2e-03 |")
NUMBER_ROW = re.compile(r"^\|.*\|\s*\**[-+−]?\d+(\.\d+)?(e[-+]?\d+)?", re.MULTILINE)

SCRIPTS = {
    "convergence": ["convergence_solver.png", "convergence_derun.png"],
    "solver_vs_network": ["crops.png", "quality_vs_time.png"],
    "ablation": ["ablation.png"],
    "degradation": ["fog_failure.png", "degradation_summary.png"],
    "benchmark": ["vifb_mean_rank.png", "hot_target_crops.png"],
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
    except ImportError:  # torch missing; any other error in unrolled must fail the test
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


def test_benchmark_per_image_mean_ranks_by_hand() -> None:
    bench = _load("benchmark")
    R = bench.common.Result
    results = [R("d", "p1", "x", {"SF": 3.0, "CE": 1.0}, 0.0, 1), R("d", "p1", "y", {"SF": 1.0, "CE": 2.0}, 0.0, 1),
               R("d", "p2", "x", {"SF": 1.0, "CE": 1.0}, 0.0, 1), R("d", "p2", "y", {"SF": 1.0, "CE": 0.5}, 0.0, 1)]
    # p1: SF x 1, y 2; CE (lower is better) x 1, y 2.  p2: SF tied 1.5 / 1.5; CE x 2, y 1.
    ranks = bench.per_image_mean_ranks(results, ["x", "y"], ["SF", "CE"])
    assert ranks == {"x": (1 + 1 + 1.5 + 2) / 4, "y": (2 + 2 + 1.5 + 1) / 4}


def test_vifb_published_self_ranks_by_hand() -> None:
    vifb_rank = _load("vifb_rank")
    published = {"im1": {"A": {"SF": 3.0}, "B": {"SF": 2.0}, "C": {"SF": 1.0}},
                 "im2": {"A": {"SF": 1.0}, "B": {"SF": 1.0}, "C": {"SF": 5.0}}}
    ranks = vifb_rank.published_self_ranks(published, ["SF"])
    assert ranks == {"A": {"im1": 1.0, "im2": 2.5}, "B": {"im1": 2.0, "im2": 2.5}, "C": {"im1": 3.0, "im2": 1.0}}


def test_benchmark_person_pair_picks_the_upright_target() -> None:
    bench = _load("benchmark")
    rng = np.random.default_rng(0)

    def scene(top: int, left: int, h: int, w: int, level: float) -> np.ndarray:
        ir = 60.0 + rng.normal(0.0, 1.0, (200, 240))
        ir[top : top + h, left : left + w] = level
        return np.clip(ir, 0, 255).astype(np.uint8)

    vis = np.full((200, 240), 100, np.uint8)
    upright = bench.common.Sample("t", "upright", scene(70, 110, 56, 18, 200.0), vis)
    wide = bench.common.Sample("t", "wide", scene(90, 90, 18, 56, 250.0), vis)  # stronger, but lying
    flat = bench.common.Sample("t", "flat", np.full((200, 240), 60, np.uint8), vis)
    picked = bench.person_pair([wide, flat, upright])
    assert picked is not None
    sample, (top, bottom, left, right) = picked
    assert sample.name == "upright"
    assert bottom - top == right - left  # a square crop
    assert top <= 70 and bottom >= 70 + 56 and left <= 110 and right >= 110 + 18
    assert bench.person_pair([wide, flat]) is None


def test_benchmark_old_weights_rows(tmp_path: Path) -> None:
    if not _unrolled_available():
        pytest.skip("unrolled (torch) not importable")
    bench = _load("benchmark")
    weights = EXPERIMENTS.parent / "unrolled" / "weights"  # any valid ivf weights stand in for the old ones
    out = tmp_path / "b"
    assert bench.main(["--quick", "--out", str(out), "--datasets", "tno", "--old-weights", str(weights)]) == 0
    text = (out / "results.md").read_text()
    assert re.search(r"^\| \*\*◇ DeRUN \(old\)\*\* \|\s*\**\d", text, re.MULTILINE), text[:3000]
    assert "DeRUN (old) |" in text  # a column of the side-by-side table


def test_benchmark_old_weights_errors(tmp_path: Path) -> None:
    bench = _load("benchmark")
    with pytest.raises(SystemExit, match="--old-weights .*not a folder"):
        bench.main(["--quick", "--out", str(tmp_path), "--old-weights", str(tmp_path / "missing")])
    with pytest.raises(SystemExit, match="--old-weights .*no ivf.json"):
        bench.main(["--quick", "--out", str(tmp_path), "--old-weights", str(tmp_path)])


def test_benchmark_own_weights_replace_the_shipped_derun(tmp_path: Path) -> None:
    """``--ivf-weights`` puts the given network in the ◆ DeRUN rows: the shipped ivf weights passed
    explicitly give the default page's row, other weights (the shipped mif network) another one."""
    if not _unrolled_available():
        pytest.skip("unrolled (torch) not importable")
    bench = _load("benchmark")
    weights = EXPERIMENTS.parent / "unrolled" / "weights"
    row = re.compile(r"^\| \*\*◆ DeRUN\*\* \|(.*)$", re.MULTILINE)
    rows = {}
    for name, extra in (("default", []), ("ivf", ["--ivf-weights", str(weights / "ivf.json")]),
                        ("other", ["--ivf-weights", str(weights / "mif.json")])):
        out = tmp_path / name
        assert bench.main(["--quick", "--out", str(out), "--datasets", "tno", *extra]) == 0
        text = (out / "results.md").read_text()
        # the metric columns of the first table row (the time column differs from run to run)
        rows[name] = row.search(text).group(1).split("|")[:9]
        if extra:
            assert extra[1] in text  # the page names the weights it used
    assert rows["ivf"] == rows["default"]
    assert rows["other"] != rows["default"]


def test_benchmark_own_weights_errors(tmp_path: Path) -> None:
    bench = _load("benchmark")
    with pytest.raises(SystemExit, match="--ivf-weights .*missing.json: no such file"):
        bench.main(["--quick", "--out", str(tmp_path), "--ivf-weights", str(tmp_path / "missing.json")])
    if _unrolled_available():
        bad = tmp_path / "bad.json"
        bad.write_text("{}")
        with pytest.raises(SystemExit, match="--mif-weights .*bad.json"):
            bench.main(["--quick", "--out", str(tmp_path), "--mif-weights", str(bad)])


def _frontier_csv(path: Path, rows: list[str]) -> Path:
    header = "run,change,vifb_dev,tno_derun,tno_hifm,rs_derun,rs_hifm,halo,tcr,config\n"
    path.write_text(header + "".join(r + "\n" for r in rows))
    return path


def test_training_frontier_marks_the_targets(tmp_path: Path) -> None:
    """Only a run at ≤ 8.0, ahead of the solver on both page tables and below Hybrid_MSD's halo
    meets all three; each miss shows in its own column."""
    frontier = _load("training_frontier")
    csv_path = _frontier_csv(tmp_path / "runs.csv", [
        "good,all three,7.95,2.00,2.50,2.10,2.40,0.025,0.30,x.json",
        "page,TNO lost,7.90,2.70,2.00,2.10,2.40,0.025,0.30,x.json",
        "rank,too high,8.10,2.00,2.50,2.10,2.40,0.025,0.30,x.json",
        "halo,ring,7.95,2.00,2.50,2.10,2.40,0.035,0.30,x.json",
    ])
    out = tmp_path / "out"
    assert frontier.main(["--quick", "--csv", str(csv_path), "--out", str(out)]) == 0
    text = (out / "results.md").read_text()
    assert "experiments/training_frontier.py --quick --csv" in text
    assert "Runs meeting all three: good." in text
    flags = {m.group(1): m.group(2).split(" | ")[-3:]
             for m in re.finditer(r"^\| (\w+) \|.*\| (\S+ \| \S+ \| \S+) \|$", text, re.MULTILINE)}
    assert flags == {"good": ["yes", "yes", "yes"], "page": ["yes", "no", "yes"],
                     "rank": ["no", "yes", "yes"], "halo": ["yes", "yes", "no"]}
    assert "| +0.70 |" in text  # the TNO margin of 'page', DeRUN − hifm
    assert (out / "frontier.png").read_bytes()[:8] == PNG_SIGNATURE


def test_training_frontier_refuses_a_bad_csv(tmp_path: Path) -> None:
    frontier = _load("training_frontier")
    bad = tmp_path / "bad.csv"
    bad.write_text("run,vifb_dev\nx,8.0\n")
    with pytest.raises(SystemExit, match="bad.csv: missing columns change, tno_derun"):
        frontier.main(["--csv", str(bad), "--out", str(tmp_path)])
    nan = _frontier_csv(tmp_path / "text.csv", ["x,y,eight,2,2,2,2,0.1,0.1,c.json"])
    with pytest.raises(SystemExit, match="text.csv, line 2"):
        frontier.main(["--csv", str(nan), "--out", str(tmp_path)])
    nan = _frontier_csv(tmp_path / "nan.csv", ["x,y,8.0,2,2,2,2,nan,0.1,c.json"])
    with pytest.raises(SystemExit, match="nan.csv, line 2: halo not a finite number"):
        frontier.main(["--csv", str(nan), "--out", str(tmp_path)])


def test_training_frontier_committed_page_is_current() -> None:
    """The committed results.md holds the table of the committed CSV, and every run names a
    configuration that is in the repository."""
    frontier = _load("training_frontier")
    runs = frontier.read_runs(frontier.DEFAULT_CSV)
    page = (frontier.DEFAULT_CSV.parent / "results.md").read_text()
    assert frontier.table(runs) in page
    for run in runs:
        cfg = run.config.split(" ")[0]  # a path from the repository root, then an optional remark
        assert (EXPERIMENTS.parent / cfg).is_file(), cfg


def test_bench_gpu_without_a_gpu_is_one_line(capsys):
    bench = _load("bench_gpu")
    if "cupy" in bench.backend.available_backends():  # pragma: no cover - a GPU machine runs the real thing
        pytest.skip("a CUDA GPU is present: the script runs for real there")
    assert bench.main(["--iters", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("bench_gpu: ")


def test_bench_gpu_tables_with_a_stand_in_gpu(monkeypatch, capsys):
    """The script's loops and tables, run on the CPU: a stand-in ``cupy`` module (NumPy arrays,
    no-op synchronise) and ``hifm.solve`` with the backend argument dropped; every value row must
    then show zero GPU−CPU difference in float64 (the same computation twice)."""
    import types

    bench = _load("bench_gpu")
    fake = types.ModuleType("cupy")
    fake.ndarray = type("NotAnArray", (), {})
    fake.asnumpy = np.asarray
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1),
                                      Device=lambda: types.SimpleNamespace(synchronize=lambda: None))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    real_solve = bench.hifm.solve
    monkeypatch.setattr(bench.hifm, "solve", lambda ir, vi, backend=None, **kw: real_solve(ir, vi, **kw))
    rng = np.random.default_rng(0)
    small = {"a": (rng.random((20, 24), dtype=np.float32), rng.random((20, 24), dtype=np.float32))}
    monkeypatch.setattr(bench, "jobs", lambda: small)
    monkeypatch.setitem(sys.modules, "unrolled.inference", None)  # DeRUN rows: skipped with a note
    assert bench.main(["--iters", "2", "3", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("| hifm.solve, a, ") == 3  # two timing rows, one value row
    value_row = [line for line in out.splitlines() if line.startswith("| hifm.solve, a, 2 it.")][-1]  # 2nd table
    assert float(value_row.split("|")[2]) == 0.0  # float64 "GPU" (the same code) equals the CPU
    assert "DeRUN skipped" in out

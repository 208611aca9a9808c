"""The benchmark scripts run in a smoke-test size and print Markdown tables that hold numbers.

They are measured by hand (``docs/performance.md``); this only keeps them from rotting.
"""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
# a table row whose cells after the first ones hold numbers, e.g. "| 64×64 | float32 | scipy | 1.2 | 0.034 |"
NUMBER_ROW = re.compile(r"^\|[^\n]*\|\s*\d+\.\d+\s*\|", re.MULTILINE)


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", EXPERIMENTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_solver_benchmark_quick(capsys) -> None:
    from hifm.cli.bench import main

    assert main(["--quick", "--dtypes", "float32", "--fft", "scipy"]) == 0
    out = capsys.readouterr().out
    rows = [r for r in NUMBER_ROW.findall(out)]
    assert len(rows) == 1 and "64×64" in out and "nan" not in out.split("64×64")[1].splitlines()[0]


def test_fft_study_lists_the_solvers_size_for_every_library(capsys) -> None:
    from hifm.params import HIFMParams
    from hifm.solver import padded_shape

    bench_fft = _load("bench_fft")
    assert bench_fft.smooth_sizes(11, 4) == [12, 14, 15, 16]
    assert bench_fft.main(["--sizes", "30x41", "--repeats", "1", "--per-axis", "1", "--budget-ms", "1"]) == 0
    out = capsys.readouterr().out
    ph, pw = padded_shape((30, 41), HIFMParams().margin)
    libs = bench_fft.pair_makers(__import__("numpy").dtype("float32"))
    solver_rows = [line for line in out.splitlines() if f"{ph}×{pw} (solver)" in line]
    assert len(solver_rows) == len(libs) and all(NUMBER_ROW.match(r) for r in solver_rows)
    assert sum("(unpadded)" in line for line in out.splitlines()) == len(libs)


def test_densefuse_reference_has_the_papers_cost() -> None:
    """54 GFLOPs per 640×480 pair (DESIGN §12), counted by torch on the module and by hand."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    peers = _load("peers")
    net = peers.DenseFuse().eval()
    a = torch.rand(1, 1, 48, 64)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        out = net(a, torch.rand(1, 1, 48, 64))
    assert out.shape == a.shape
    assert counter.get_total_flops() == 2 * peers.densefuse_macs_per_pixel() * 48 * 64
    assert abs(2 * peers.densefuse_macs_per_pixel() * 480 * 640 / 1e9 - 54.06) < 0.01


def test_network_benchmark_quick_times_densefuse_in_the_same_run(capsys) -> None:
    bench = _load("bench_network")
    assert bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and not line.startswith("| N ")]
    derun = [r for r in rows if r.split("|")[1].strip().isdigit()]
    dense = [r for r in rows if "DenseFuse" in r]
    assert [int(r.split("|")[1]) for r in derun] == [3, 5] and len(dense) == 1
    assert all(float(r.split("|")[9]) > 0 for r in derun)  # steady ÷ DenseFuse

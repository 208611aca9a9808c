"""DeRUN training runs against the two ``ivf`` targets that pull apart: the VIFB-dev rank and
the benchmark page's lead over ``hifm.solve``.

Each row of the CSV (default ``docs/experiments/training_frontier/runs.csv``) is one trained
network, measured with the project's own scripts:

* ``vifb_dev``: per-image mean rank among VIFB's 25 published methods on the six VIFB-dev images
  (``experiments/vifb_rank.py``; lower is better; the issue's target is ≤ 8.0);
* ``tno_derun``, ``tno_hifm``, ``rs_derun``, ``rs_hifm``: the mean rank (rank of the per-metric
  means over EN, SD, SF, AG, MI, SCD, VIF, Qabf, SSIM) of that network and of ``hifm.solve`` among
  the six methods of the benchmark page's TNO and RoadScene-test tables
  (``python experiments/benchmark.py --old-weights DIR --ivf-weights W.json --datasets tno
  roadscene-test``); the target is DeRUN ahead of the solver on both, i.e. both *margins*
  DeRUN − hifm below 0;
* ``halo``, ``tcr``: H and TCR on VIFB-dev (docs/metrics.md; H must stay below Hybrid_MSD's 0.0314);
* ``config``: the training configuration, a path from the repository root.

``python experiments/training_frontier.py [--csv FILE] [--out DIR]`` writes ``results.md`` (the
table with the margins and which targets each run meets) and ``frontier.png`` (VIFB-dev rank
against the worse of the two margins, the target corner shaded) into ``docs/experiments/training_frontier``
(``--out`` for another folder; ``--quick``: ``runs/experiments-quick/training_frontier``).
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NAME = "training_frontier"
DEFAULT_CSV = REPO / "docs" / "experiments" / NAME / "runs.csv"
VIFB_TARGET = 8.0
HALO_LIMIT = 0.0314  # Hybrid_MSD's mean H on VIFB-dev: 0.03140 over its six published images (0.031 in docs/experiments.md)
COLUMNS = ("run", "change", "vifb_dev", "tno_derun", "tno_hifm", "rs_derun", "rs_hifm", "halo", "tcr", "config")


@dataclass(frozen=True)
class Run:
    """One trained network and its measured ranks (see the module docstring)."""

    name: str
    change: str
    vifb_dev: float
    tno_derun: float
    tno_hifm: float
    rs_derun: float
    rs_hifm: float
    halo: float
    tcr: float
    config: str

    @property
    def tno_margin(self) -> float:
        """DeRUN's TNO mean rank minus the solver's (negative: DeRUN ahead)."""
        return self.tno_derun - self.tno_hifm

    @property
    def rs_margin(self) -> float:
        """The same on RoadScene-test."""
        return self.rs_derun - self.rs_hifm

    @property
    def worse_margin(self) -> float:
        """max of the two margins: below 0 only when DeRUN is ahead on both tables."""
        return max(self.tno_margin, self.rs_margin)

    @property
    def meets_vifb(self) -> bool:
        return self.vifb_dev <= VIFB_TARGET

    @property
    def meets_page(self) -> bool:
        return self.worse_margin < 0.0

    @property
    def meets_halo(self) -> bool:
        return self.halo < HALO_LIMIT


def read_runs(path: Path) -> list[Run]:
    """The runs of a CSV with the header :data:`COLUMNS` (a clear error naming the file otherwise)."""
    path = Path(path)
    try:
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise SystemExit(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not rows:
        raise SystemExit(f"{path}: no runs")
    missing = [c for c in COLUMNS if c not in rows[0]]
    if missing:
        raise SystemExit(f"{path}: missing columns {', '.join(missing)}")
    runs = []
    for k, r in enumerate(rows, start=2):
        try:
            numbers = {c: float(r[c]) for c in COLUMNS[2:9]}
        except ValueError as exc:
            raise SystemExit(f"{path}, line {k}: {exc}") from None
        bad = [c for c, v in numbers.items() if not math.isfinite(v)]
        if bad:
            raise SystemExit(f"{path}, line {k}: {', '.join(bad)} not a finite number")
        runs.append(Run(r["run"], r["change"], config=r["config"], **numbers))
    return runs


def _mark(ok: bool) -> str:
    return "yes" if ok else "no"


HEADERS = ("run", "change", "VIFB-dev ↓", "TNO DeRUN − hifm", "RoadScene-test DeRUN − hifm", "H", "TCR",
           "≤ 8.0", "ahead on both", f"H < {HALO_LIMIT}")


def table(runs: Sequence[Run]) -> str:
    """Markdown table of the runs with their margins (signed) and the targets met."""
    rows = [(r.name, r.change, f"{r.vifb_dev:.2f}", f"{r.tno_margin:+.2f}", f"{r.rs_margin:+.2f}",
             f"{r.halo:.5f}", f"{r.tcr:.3f}", _mark(r.meets_vifb), _mark(r.meets_page), _mark(r.meets_halo))
            for r in runs]
    return common.markdown_table(HEADERS, rows, align="ll" + "r" * (len(HEADERS) - 2))


def figure(runs: Sequence[Run], path: Path) -> Path:
    """VIFB-dev rank (x) against the worse page margin (y), the corner of both targets shaded."""
    plt = common.pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    xs = [r.vifb_dev for r in runs]
    ys = [r.worse_margin for r in runs]
    x_lo, x_hi = min(xs + [VIFB_TARGET]) - 0.08, max(xs + [VIFB_TARGET]) + 0.08
    y_lo, y_hi = min(ys + [0.0]) - 0.15, max(ys + [0.0]) + 0.15
    ax.axvspan(x_lo, VIFB_TARGET, ymin=0.0, ymax=(0.0 - y_lo) / (y_hi - y_lo), color="tab:green", alpha=0.12,
               label="both targets: ≤ 8.0 and ahead of hifm on both tables")
    ax.axvline(VIFB_TARGET, color="tab:green", lw=0.8, ls="--")
    ax.axhline(0.0, color="tab:green", lw=0.8, ls="--")
    labelled: list[Run] = []
    for r in runs:
        colour = "tab:blue" if r.meets_halo else "tab:red"
        ax.scatter([r.vifb_dev], [r.worse_margin], color=colour, s=28, zorder=3)
        # a label above the point, and one line lower for each point labelled before close by
        crowded = sum(abs(q.vifb_dev - r.vifb_dev) < 0.03 and abs(q.worse_margin - r.worse_margin) < 0.05
                      for q in labelled)
        ax.annotate(r.name, (r.vifb_dev, r.worse_margin), textcoords="offset points",
                    xytext=(4, 4 - 12 * crowded), fontsize=7)
        labelled.append(r)
    ax.scatter([], [], color="tab:red", s=28, label=f"halo H ≥ {HALO_LIMIT} (Hybrid_MSD's)")
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)
    ax.invert_xaxis()
    ax.set_xlabel("VIFB-dev per-image mean rank among 25 published methods (better →)")
    ax.set_ylabel("worse of the page margins, DeRUN − hifm\n(mean rank among 6; below 0: DeRUN ahead on both)")
    ax.legend(loc="upper left", frameon=False)
    common.tight(fig)
    return common.save_figure(fig, path)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="the runs (default: %(default)s)")
    p.add_argument("--out", type=Path, help=f"output folder (default: docs/experiments/{NAME}; "
                                             f"with --quick runs/experiments-quick/{NAME})")
    p.add_argument("--quick", action="store_true", help="low-resolution figure (tests)")
    args = p.parse_args(argv)
    runs = read_runs(args.csv)
    out = common.output_dir(args, NAME)
    rep = common.Report("DeRUN `ivf` runs: VIFB-dev rank against the lead over hifm.solve on the benchmark page",
                        common.command_line(NAME, argv), out)
    rep.text(f"From `{args.csv.name}`; how each number was measured is in the script's docstring, the runs "
             "are described in docs/training.md.")
    rep.text(table(runs))
    both = [r.name for r in runs if r.meets_vifb and r.meets_page and r.meets_halo]
    rep.text("Runs meeting all three: " + (", ".join(both) if both else "none") + ".")
    rep.figure(figure(runs, out / "frontier.png"), "VIFB-dev rank against the worse page margin")
    rep.write()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

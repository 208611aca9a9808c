"""``hifm eval``: fusion metrics for folders of fused images.

    hifm eval FUSED_DIR [FUSED_DIR ...] --sources ROOT [--metrics M ...]
              [--protocol vifb|gray] [--format md|csv|json] [-o FILE]

Each fused image is paired by file stem (name without extension) with the two source images
under ROOT: ``ir/`` + ``vi/`` (aliases ``infrared``/``visible``, ``IR``/``VI``, ``vis``...), a
medical pair ``mri/`` + ``ct/`` | ``pet/`` | ``spect/``, a flat folder of ``*_ir``/``*_vi``
files, other folder names with ``--ir-dir``/``--vis-dir``, sub-folders with ``--recursive``
(the layouts of ``hifm fuse-dir``, so its output folder can be evaluated as it is). Metric
argument order is VIFB's: ``a`` = visible (for medical pairs the CT/PET/SPECT image, the colour or functional one) and
``b`` = infrared (for medical pairs the MRI image). With several fused folders (one per
method) the output ends with one comparison table: each metric's best mean is marked and each
method gets its mean rank over the metrics.

Every image (sources and fused) is read by :func:`hifm.io.read_image` and put on the metrics'
0..255 scale by one rule: 8-bit as stored, 16-bit × 255/65535, float in [0, 1] × 255 (a float
image outside [0, 1] is refused: its scale is unknown). A source pair without a fused image
(*missing*) and a fused image, source or pair that could not be used (*skipped*: unmatched,
unreadable, wrong size) are listed by name and counted on stderr and in the output, and the
exit status is 1 unless ``--allow-missing`` is given: a mean over the few images that remain
must not pass for the method's score.

Exit status: 0 every source pair evaluated for every method (or ``--allow-missing``); 1 some
image missing or skipped, or nothing evaluated; 2 a bad command line or sources folder.

Standalone use: ``python -m hifm.cli.eval ...``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .common import EXIT_FAILED, EXIT_USAGE, print_error, run_guarded

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".ppm",
                  ".pgm", ".pnm"}

# --------------------------------------------------------------------------- image reading
def _read_image(path: Path) -> np.ndarray:
    """Read an image on the metrics' 0..255 scale: uint8 H×W or H×W×3, or float64 0..255.

    :func:`hifm.io.read_image` decodes it (palette expanded, alpha dropped, orientation
    applied, several frames refused), then one rule for every image, source or fused:
    uint8 as stored, uint16 × 255/65535, float in [0, 1] × 255. A float image outside [0, 1]
    raises ``ValueError`` (its scale cannot be told); unreadable files raise ``ValueError``."""
    from hifm.io import FLOAT_TOLERANCE, read_image

    x = read_image(path)
    if x.dtype == np.uint8:
        return x
    if x.dtype == np.uint16:
        return x.astype(np.float64) * (255.0 / 65535.0)
    lo, hi = float(x.min()), float(x.max())
    if lo < -FLOAT_TOLERANCE or hi > 1.0 + FLOAT_TOLERANCE:
        raise ValueError(f"float samples span [{lo:.4g}, {hi:.4g}], outside [0, 1]: the intensity scale is unknown "
                         "(store 8- or 16-bit integers, or floats in [0, 1])")
    return np.clip(x.astype(np.float64), 0.0, 1.0) * 255.0


# --------------------------------------------------------------------------- pairing
def _image_files(folder: Path, recursive: bool = False) -> dict[str, Path]:
    """Image files of ``folder`` by stem (``recursive``: by path below it without extension)."""
    files: dict[str, Path] = {}
    paths = sorted(folder.rglob("*") if recursive else folder.iterdir())
    for p in paths:
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."):
            files.setdefault(p.relative_to(folder).with_suffix("").as_posix(), p)
    return files


def find_sources(root: Path, ir_dir: str | None = None, vis_dir: str | None = None,
                 recursive: bool = False):  # -> hifm.datasets.PairSet
    """The source pairs under ``root`` (:func:`hifm.datasets.find_pairs`: ir/ + vi/ and their
    aliases, mri/ + ct|pet|spect/, flat ``*_ir``/``*_vi`` files, ``--ir-dir``/``--vis-dir``,
    ``--recursive``). Raises ``ValueError`` naming the problem."""
    from hifm.datasets import find_pairs

    return find_pairs(root, a_dir=ir_dir, b_dir=vis_dir, recursive=recursive)


def find_source_dirs(root: Path) -> tuple[Path, Path]:
    """(a_dir, b_dir) under ``root``: (visible, infrared) or (ct|pet|spect, mri)."""
    pairs = find_sources(root)
    return pairs[0].vis_path.parent, pairs[0].ir_path.parent


# --------------------------------------------------------------------------- results
@dataclass
class MethodResult:
    name: str
    folder: Path
    images: dict[str, dict[str, float]] = field(default_factory=dict)

    def mean(self, metric: str, stems: Sequence[str] | None = None) -> float:
        keys = self.images.keys() if stems is None else stems
        vals = [self.images[s][metric] for s in keys if s in self.images]
        vals = [v for v in vals if not math.isnan(v)]
        return float(np.mean(vals)) if vals else math.nan


@dataclass
class EvalReport:
    protocol: str
    metrics: list[str]
    higher_is_better: dict[str, bool]
    a_dir: Path
    b_dir: Path
    methods: list[MethodResult]
    skipped: list[tuple[str, str]]
    pairs: list[str] = field(default_factory=list)
    """Names of the source pairs found."""

    def missing(self) -> dict[str, list[str]]:
        """Per method, the source pairs it has no evaluated image for (absent, unreadable or refused)."""
        return {m.name: [n for n in self.pairs if n not in m.images] for m in self.methods}

    def problems(self) -> int:
        """Missing images plus skipped files: 0 when every pair was evaluated for every method."""
        return sum(len(v) for v in self.missing().values()) + len(self.skipped)

    def common_stems(self) -> list[str]:
        sets = [set(m.images) for m in self.methods]
        common = set.intersection(*sets) if sets else set()
        return sorted(common)

    def comparison(self) -> tuple[list[str], dict[str, dict[str, float]], dict[str, float],
                                  dict[str, str | None]]:
        """(stems used, means[method][metric], mean rank[method], best method per metric)."""
        stems = self.common_stems()
        means = {m.name: {k: m.mean(k, stems) for k in self.metrics} for m in self.methods}
        ranks: dict[str, list[float]] = {m.name: [] for m in self.methods}
        best: dict[str, str | None] = {}
        for k in self.metrics:
            vals = {n: means[n][k] for n in means}
            finite = {n: v for n, v in vals.items() if not math.isnan(v)}
            sign = -1.0 if self.higher_is_better[k] else 1.0
            order = sorted(finite.values(), key=lambda v: sign * v)
            best[k] = None
            if finite:
                target = order[0]
                best[k] = min((n for n, v in finite.items() if v == target))
            for n, v in vals.items():
                if math.isnan(v):
                    ranks[n].append(float(len(vals)))
                    continue
                better = sum(1 for u in finite.values() if sign * u < sign * v)
                ties = sum(1 for u in finite.values() if u == v)
                ranks[n].append(better + (ties + 1) / 2.0)
        mean_rank = {n: float(np.mean(r)) if r else math.nan for n, r in ranks.items()}
        return stems, means, mean_rank, best


def _method_names(folders: Sequence[Path]) -> list[str]:
    names = [f.name for f in folders]
    out = []
    for f, n in zip(folders, names):
        out.append(n if names.count(n) == 1 else f"{f.parent.name}/{n}")
    return out


@dataclass(frozen=True)
class _StemJob:
    """The fused images of every method for one source pair (sources read once)."""

    stem: str
    a_path: str
    b_path: str
    fused: tuple[tuple[int, str], ...]  # (method index, fused image path)


def _evaluate_stem(job: _StemJob, names: Sequence[str], protocol: str) -> list[tuple[int, str, str, object]]:
    """``(method index, path, "ok" | "skip", values | reason)`` for each fused image of ``job``."""
    from hifm.metrics import evaluate

    try:
        a = _read_image(Path(job.a_path))
        b = _read_image(Path(job.b_path))
    except Exception as exc:  # noqa: BLE001 - report any decoder failure by name
        return [(k, path, "skip", f"unreadable source image for {job.stem!r}: {exc}") for k, path in job.fused]
    out: list[tuple[int, str, str, object]] = []
    for k, path in job.fused:
        try:
            f = _read_image(Path(path))
        except Exception as exc:  # noqa: BLE001
            out.append((k, path, "skip", f"unreadable: {exc}"))
            continue
        try:
            vals = evaluate(f, a, b, metrics=list(names), protocol=protocol)
        except ValueError as exc:
            out.append((k, path, "skip", str(exc)))
        else:
            out.append((k, path, "ok", vals))
    return out


def _one_thread() -> None:
    """Pool processes run their metrics on one thread each (the processes are the parallelism)."""
    import os

    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[name] = "1"


class _Progress:
    """A tqdm bar on a terminal; otherwise one line per evaluated image on stderr (logs, CI, nohup)."""

    def __init__(self, total: int, enabled: bool | None) -> None:
        import time

        self.total, self.done, self.t0 = total, 0, time.perf_counter()
        tty = sys.stderr.isatty()
        self.lines = enabled is not False and not tty
        self.bar = None
        if enabled is not False and tty:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="hifm eval", unit="img", file=sys.stderr)

    def update(self, label: str) -> None:
        import time

        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        elif self.lines:
            elapsed = time.perf_counter() - self.t0
            eta = elapsed / self.done * (self.total - self.done)
            print(f"hifm eval: {self.done}/{self.total} {label} ({elapsed:.0f} s, about {eta:.0f} s left)",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def evaluate_folders(fused_dirs: Sequence[Path], sources: Path, metrics: Sequence[str] | None,
                     protocol: str = "vifb", progress: bool | None = None, workers: int = 1,
                     ir_dir: str | None = None, vis_dir: str | None = None,
                     recursive: bool = False) -> EvalReport:
    """Evaluate every fused image of every folder against its sources.

    ``workers`` > 1 evaluates the source pairs in that many processes (one thread each); the
    output does not depend on it (results are collected in name order). ``progress``: ``None`` shows a bar on a terminal and a line per
    image otherwise, ``False`` nothing.
    """
    import concurrent.futures as cf
    import multiprocessing

    from hifm.metrics import DEFAULT_METRICS, get_metric

    names = list(DEFAULT_METRICS) if not metrics else list(metrics)
    infos = [get_metric(n) for n in names]
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    pairset = find_sources(Path(sources), ir_dir, vis_dir, recursive)
    skipped: list[tuple[str, str]] = [(str(p), why) for p, why in pairset.unpaired]
    skipped += [(" ".join(map(str, paths)), f"several files for {stem!r}") for stem, paths in pairset.duplicates]
    by_name = {p.name: p for p in pairset}

    methods = [MethodResult(n, d) for n, d in zip(_method_names(fused_dirs), fused_dirs)]
    fused_by_stem: dict[str, list[tuple[int, str]]] = {}
    for k, m in enumerate(methods):
        if not m.folder.is_dir():
            skipped.append((str(m.folder), "fused folder does not exist"))
            continue
        for stem, path in _image_files(m.folder, recursive).items():
            if stem in by_name:
                fused_by_stem.setdefault(stem, []).append((k, str(path)))
            else:
                skipped.append((str(path), f"no source pair named {stem!r} under {sources}"))
    jobs = [_StemJob(stem, str(by_name[stem].vis_path), str(by_name[stem].ir_path), tuple(fused_by_stem[stem]))
            for stem in sorted(fused_by_stem)]

    bar = _Progress(sum(len(j.fused) for j in jobs), progress)

    def accept(job: _StemJob, results: list[tuple[int, str, str, object]]) -> None:
        for k, path, status, payload in results:
            if status == "ok":
                vals = payload
                methods[k].images[job.stem] = {n: vals[n] for n in names}  # type: ignore[index]
            else:
                skipped.append((path, str(payload)))
            bar.update(f"{job.stem} ({methods[k].name})")

    try:
        if workers == 1 or len(jobs) <= 1:
            for job in jobs:
                accept(job, _evaluate_stem(job, names, protocol))
        else:
            ctx = multiprocessing.get_context("spawn")
            with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_one_thread) as pool:
                futures = {pool.submit(_evaluate_stem, job, names, protocol): job for job in jobs}
                for future in cf.as_completed(futures):
                    accept(futures[future], future.result())
    finally:
        bar.close()
    for m in methods:  # completion order varies with the workers; means are summed in name order
        m.images = dict(sorted(m.images.items()))
    first = pairset[0]
    return EvalReport(protocol, names, {n: i.higher_is_better for n, i in zip(names, infos)},
                      first.vis_path.parent, first.ir_path.parent, methods, skipped,
                      pairs=sorted(p.name for p in pairset))


# --------------------------------------------------------------------------- formatting
def _fmt(v: float) -> str:
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.6g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.4e}"


def _arrow(report: EvalReport, k: str) -> str:
    return "↑" if report.higher_is_better[k] else "↓"


def format_markdown(report: EvalReport) -> str:
    lines = [f"# hifm eval (protocol `{report.protocol}`)", "",
             f"Sources: a = `{report.a_dir}`, b = `{report.b_dir}`. "
             "↑ higher is better, ↓ lower is better.", ""]
    head = "| image | " + " | ".join(f"{k} {_arrow(report, k)}" for k in report.metrics) + " |"
    sep = "|---|" + "---:|" * len(report.metrics)
    for m in report.methods:
        lines += [f"## {m.name}", "", f"{len(m.images)} images from `{m.folder}`.", "", head,
                  sep]
        for stem in sorted(m.images):
            lines.append(f"| {stem} | "
                         + " | ".join(_fmt(m.images[stem][k]) for k in report.metrics) + " |")
        lines.append("| **mean** | "
                     + " | ".join(_fmt(m.mean(k)) for k in report.metrics) + " |")
        lines.append("")
    if len(report.methods) > 1:
        stems, means, mean_rank, best = report.comparison()
        lines += ["## Comparison", "",
                  f"Means over the {len(stems)} images that every method has; best value "
                  "per metric in bold; mean rank over the metrics (1 = best).", "",
                  "| method | " + " | ".join(f"{k} {_arrow(report, k)}"
                                             for k in report.metrics) + " | mean rank |",
                  "|---|" + "---:|" * (len(report.metrics) + 1)]
        for m in report.methods:
            cells = []
            for k in report.metrics:
                s = _fmt(means[m.name][k])
                cells.append(f"**{s}**" if best[k] == m.name
                             or (best[k] is not None and means[m.name][k] == means[best[k]][k])
                             else s)
            lines.append(f"| {m.name} | " + " | ".join(cells)
                         + f" | {mean_rank[m.name]:.2f} |")
        lines.append("")
    missing = report.missing()
    for name, stems in missing.items():
        if stems:
            lines += [f"**{name}: {len(stems)} of {len(report.pairs)} source pairs have no evaluated image** "
                      f"({_names(stems)}); its means are over the other {len(report.pairs) - len(stems)}.", ""]
    if report.skipped:
        lines += [f"Skipped {len(report.skipped)} file(s); see stderr.", ""]
    return "\n".join(lines)


def format_csv(report: EvalReport) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    several = len(report.methods) > 1
    w.writerow(["method", "image", *report.metrics] + (["mean_rank"] if several else []))
    mean_rank: dict[str, float] = {}
    if several:
        _, _, mean_rank, _ = report.comparison()
    for m in report.methods:
        for stem in sorted(m.images):
            w.writerow([m.name, stem, *(repr(m.images[stem][k]) for k in report.metrics)]
                       + ([""] if several else []))
        w.writerow([m.name, "mean", *(repr(m.mean(k)) for k in report.metrics)]
                   + ([repr(mean_rank[m.name])] if several else []))
    return buf.getvalue()


def _json_num(v: float) -> float | str:
    return v if math.isfinite(v) else str(v)


def format_json(report: EvalReport) -> str:
    doc: dict = {
        "protocol": report.protocol,
        "metrics": report.metrics,
        "higher_is_better": report.higher_is_better,
        "sources": {"a": str(report.a_dir), "b": str(report.b_dir)},
        "methods": {},
        "skipped": [{"file": f, "reason": r} for f, r in report.skipped],
        "pairs": len(report.pairs),
        "missing": report.missing(),
    }
    for m in report.methods:
        doc["methods"][m.name] = {
            "folder": str(m.folder),
            "images": {s: {k: _json_num(v) for k, v in vals.items()}
                       for s, vals in sorted(m.images.items())},
            "mean": {k: _json_num(m.mean(k)) for k in report.metrics},
        }
    if len(report.methods) > 1:
        stems, means, mean_rank, best = report.comparison()
        doc["comparison"] = {
            "images": stems,
            "mean": {n: {k: _json_num(v) for k, v in d.items()} for n, d in means.items()},
            "mean_rank": mean_rank,
            "best": best,
        }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


FORMATTERS = {"md": format_markdown, "csv": format_csv, "json": format_json}


# --------------------------------------------------------------------------- CLI
_EPILOG = (__doc__ or "").split("\n\n")[2] if __doc__ else None


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("fused_dirs", nargs="*", type=Path, metavar="FUSED_DIR",
                   help="folder(s) of fused images, one per method")
    p.add_argument("--sources", type=Path, metavar="ROOT",
                   help="root with ir/ + vi/ (or aliases) or mri/ + ct|pet|spect/")
    p.add_argument("--metrics", nargs="+", metavar="M",
                   help="metric names or aliases (space or comma separated; default: all)")
    p.add_argument("--protocol", choices=("vifb", "gray"), default="vifb",
                   help="vifb: per RGB plane vs the IR plane, mean (VIFB tables); "
                        "gray: one luminance plane per image (default: vifb)")
    p.add_argument("--format", choices=tuple(FORMATTERS), default=None,
                   help="output format (default: from -o's suffix, else md)")
    p.add_argument("-o", "--output", type=Path, metavar="FILE",
                   help="write the table here instead of stdout")
    p.add_argument("--ir-dir", metavar="DIR", help="folder of the infrared (or MRI) sources under ROOT, "
                                                    "when it has another name")
    p.add_argument("--vis-dir", metavar="DIR", help="folder of the visible (or CT/PET/SPECT) sources, likewise")
    p.add_argument("--recursive", action="store_true",
                   help="sources and fused images in sub-folders, paired by their relative paths")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="evaluate in N processes (default 1); the output does not depend on N")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress display (default: a bar on a terminal, else one line per image on stderr)")
    p.add_argument("--allow-missing", action="store_true",
                   help="exit 0 even when some source pair has no fused image or some file was skipped "
                        "(they are still listed)")
    p.add_argument("--list-metrics", action="store_true",
                   help="list the metrics (names, aliases, direction, reference) and exit")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``eval`` sub-command to an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "eval", help="fusion metrics for folders of fused images",
        description="Fusion metrics for folders of fused images.", epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(p)
    p.set_defaults(func=run)
    return p


def _list_metrics() -> str:
    from hifm.metrics import list_metrics

    rows = ["| name | aliases | better | range | reference |", "|---|---|---|---|---|"]
    for m in list_metrics():
        rows.append(f"| {m.name} | {', '.join(m.aliases)} | {m.direction} | {m.value_range} "
                    f"| {m.reference} |")
    return "\n".join(rows) + "\n"


def run(args: argparse.Namespace) -> int:
    """Run ``hifm eval`` with parsed arguments; returns the exit status."""
    if getattr(args, "list_metrics", False):
        sys.stdout.write(_list_metrics())
        return 0
    if not args.fused_dirs:
        print_error("eval", "give at least one FUSED_DIR")
        return EXIT_USAGE
    if args.sources is None:
        print_error("eval", "--sources ROOT is required")
        return EXIT_USAGE
    metrics = None
    if args.metrics:
        metrics = [n for item in args.metrics for n in item.split(",") if n.strip()]
    fmt = args.format
    if fmt is None:
        suffix = args.output.suffix.lower().lstrip(".") if args.output else ""
        fmt = {"md": "md", "markdown": "md", "csv": "csv", "json": "json"}.get(suffix, "md")
    try:
        report = evaluate_folders(args.fused_dirs, args.sources, metrics, args.protocol,
                                  progress=False if args.no_progress else None, workers=args.workers,
                                  ir_dir=args.ir_dir, vis_dir=args.vis_dir, recursive=args.recursive)
    except ValueError as exc:
        print_error("eval", exc)
        return EXIT_USAGE
    from hifm.errors import display_path

    for path, reason in report.skipped:
        print(f"hifm eval: skipped {display_path(path)}: {' '.join(str(reason).split())}", file=sys.stderr)
    for name, stems in report.missing().items():
        if stems:
            print(f"hifm eval: {name}: {len(stems)} of {len(report.pairs)} source pairs have no evaluated fused "
                  f"image: {_names(stems)}", file=sys.stderr)
    text = FORMATTERS[fmt](report)
    if args.output:
        _write_output(args.output, text, report)
    else:
        sys.stdout.write(text)
    n_done = sum(len(m.images) for m in report.methods)
    if n_done == 0:
        print_error("eval", "no fused image could be evaluated")
        return EXIT_FAILED
    n_missing = sum(len(v) for v in report.missing().values())
    if report.problems() and not args.allow_missing:
        print_error("eval", f"{n_missing} missing fused image(s) and {len(report.skipped)} skipped file(s) "
                            "(listed above); the means leave them out; pass --allow-missing to accept that")
        return EXIT_FAILED
    return 0


def _write_output(path: Path, text: str, report: EvalReport) -> None:
    """Write the table to ``path`` atomically; never over a folder or one of the images evaluated."""
    import os
    import tempfile

    from hifm.batch import same_file
    from hifm.errors import HIFMError

    if path.is_dir():
        raise HIFMError(f"-o '{path}' is a folder; give a file name such as '{path / 'metrics.md'}'")
    inputs = [report.a_dir, report.b_dir, *(m.folder for m in report.methods)]
    for folder in inputs:
        if folder.is_dir() and path.exists() and any(same_file(path, f) for f in folder.rglob("*") if f.is_file()):
            raise HIFMError(f"-o '{path}' is one of the images under '{folder}'; choose another file")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with open(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _names(stems: Sequence[str], shown: int = 10) -> str:
    """``a, b, c, … (+7 more)``."""
    from hifm.errors import display_path

    text = ", ".join(display_path(s) for s in stems[:shown])
    return text + (f", … (+{len(stems) - shown} more)" if len(stems) > shown else "")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m hifm.cli.eval``."""
    p = argparse.ArgumentParser(
        prog="hifm eval", description="Fusion metrics for folders of fused images.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(p)
    return run_guarded("eval", run, p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())

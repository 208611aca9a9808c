"""Time per triple of the ``vifb`` evaluation protocol (all metrics), one thread: the cost of ``hifm eval``.

    python experiments/bench_eval.py [--repeats 3] [--method ADF] [--synthetic] [--before REV]

Triples: the six VIFB development images (``$HIFM_DATA/vifb-dev``, fused by ``--method``), or,
without that set or with ``--synthetic``, three synthetic colour triples of 480×640.  For each
triple the metrics of ``hifm.metrics.evaluate(fused, visible, infrared, protocol="vifb")`` are
computed one after the other on one prepared triple (sharing intermediate results exactly as
``evaluate`` does), and the CPU time (``time.process_time``) of each metric family (the module
of ``hifm.metrics`` that implements it) is recorded; the tables give the median over
``--repeats`` runs and the mean over the triples.

``--before REV`` also loads the ``hifm/metrics`` package of git revision REV (extracted with
``git archive`` into a folder under the system's temporary directory and imported under
another name) and times it in the same process, alternating with the current code run by
run, so both columns see the same machine load; the values of the two are compared too.
Threads are limited to one before NumPy is imported; compiled code is loaded (or compiled)
before any timing.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import importlib  # noqa: E402
import io  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tarfile  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
VIFB = Path(os.environ.get("HIFM_DATA", REPO.parent / "shared" / "data")) / "vifb-dev"

#: metric family (module of hifm.metrics) -> label in the tables
FAMILIES = {"fmi": "FMI (4 features)", "viff": "VIF", "qcb_qcv": "Qcb, Qcv",
            "structural": "Qabf, SSIM, SCD, Nabf, CC", "information": "EN, MI, CE",
            "gradient": "AG, EI, SF, SD", "error": "PSNR, RMSE"}


def _read(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im)


def triples(method: str, synthetic: bool) -> list[tuple[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """(label, (fused, visible, infrared)) for each triple."""
    if not synthetic and (VIFB / "fused" / method).is_dir():
        out = []
        for vis in sorted((VIFB / "vi").glob("*.jpg")):
            out.append((f"{vis.stem}/{method}", (_read(VIFB / "fused" / method / vis.name), _read(vis),
                                                 _read(VIFB / "ir" / vis.name))))
        return out
    from hifm.synthetic import synthetic_pair

    out = []
    rng = np.random.default_rng(0)
    for seed in range(3):
        ir, vis = synthetic_pair(480, 640, seed=seed, noise=0.02)
        colour = np.clip(vis[..., None] * rng.uniform(0.7, 1.2, 3), 0, 1)
        fused = np.clip(0.5 * colour + 0.5 * ir[..., None], 0, 1)
        u8 = [np.rint(255 * x).astype(np.uint8) for x in (fused, colour, ir)]
        out.append((f"synthetic {seed}", tuple(u8)))
    return out


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except OSError:
        return ""


def load_metrics_at(rev: str) -> ModuleType:
    """The ``hifm/metrics`` package of git revision ``rev``, imported as a separate package."""
    commit = _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if not commit:
        raise SystemExit(f"--before: {rev!r} is not a git revision of {REPO}")
    root = Path(tempfile.gettempdir()) / f"hifm-bench-metrics-{commit[:12]}"
    name = f"hifm_metrics_{commit[:12]}"
    pkg = root / name
    if not (pkg / "__init__.py").is_file():
        data = subprocess.run(["git", "-C", str(REPO), "archive", commit, "hifm/metrics"],
                              capture_output=True, check=True, timeout=60).stdout
        tmp = root / "extract"
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(tmp, filter="data")
        (tmp / "hifm" / "metrics").rename(pkg)
    for src in pkg.glob("*.py"):  # imports from the rest of hifm ("from ..errors") go to hifm
        text = src.read_text()
        fixed = re.sub(r"^(\s*)from \.\.(\w)", r"\1from hifm.\2", text, flags=re.M)
        if fixed != text:
            src.write_text(fixed)
    sys.path.insert(0, str(root))
    return importlib.import_module(name)


class Timer:
    """Per-family CPU time of one evaluation with one metrics package."""

    def __init__(self, pkg: ModuleType) -> None:
        self.protocol = importlib.import_module(pkg.__name__ + ".protocol")
        self.registry = importlib.import_module(pkg.__name__ + ".registry")
        self.names = list(self.registry.DEFAULT_METRICS)

    def run(self, f: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[dict[str, float], dict[str, float]]:
        """(CPU seconds per family incl. "prepare", metric values)."""
        times: dict[str, float] = {}
        values: dict[str, float] = {}
        c0 = time.process_time()
        prep = self.protocol.prepare(f, a, b, "vifb")
        times["prepare"] = time.process_time() - c0
        for name in self.names:
            info = self.registry.get_metric(name)
            fam = info.func.__module__.rsplit(".", 1)[-1]
            c0 = time.process_time()
            values[name] = self.protocol._compute_prepared(info, prep)
            times[fam] = times.get(fam, 0.0) + time.process_time() - c0
        return times, values


def _label(fam: str) -> str:
    return FAMILIES.get(fam, fam)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--method", default="ADF", help="VIFB method whose fused images are evaluated (default ADF)")
    p.add_argument("--synthetic", action="store_true", help="synthetic triples even when VIFB-dev is present")
    p.add_argument("--before", metavar="REV", help="also time hifm/metrics of this git revision, same run")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    import hifm
    import hifm.metrics

    code = Path(hifm.__file__).resolve().parents[1]
    versions = {"after": Timer(hifm.metrics)}
    head = _git("rev-parse", "--short", "HEAD") or "?"
    dirty = " + uncommitted changes" if _git("status", "--porcelain", "hifm/metrics") else ""
    print(f"hifm from {code} (commit {head}{dirty}); NumPy {np.__version__}; one thread; "
          f"median of {args.repeats} run(s); CPU seconds (time.process_time)")
    if args.before:
        old = load_metrics_at(args.before)
        versions = {"before": Timer(old), **versions}
        print(f"before: hifm/metrics of {args.before} ({_git('rev-parse', '--short', args.before)}), "
              f"loaded from {Path(old.__file__).parent}")
    try:
        load = os.getloadavg()
        print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    except OSError:
        pass
    data = triples(args.method, args.synthetic)
    f, a, b = data[0][1]
    for timer in versions.values():  # load or compile the Numba code
        timer.run(f[:128, :128], a[:128, :128], b[:128, :128])

    cols = list(versions)
    per_family: dict[str, dict[str, list[float]]] = {v: {} for v in cols}
    totals: dict[str, list[float]] = {v: [] for v in cols}
    worst = 0.0
    print()
    head_cols = " | ".join(f"{v} s" for v in cols)
    print(f"| triple | size | {head_cols} |" + (" ratio |" if len(cols) == 2 else ""))
    print("|---|---|" + "---:|" * (len(cols) + (len(cols) == 2)))
    for label, (f, a, b) in data:
        runs: dict[str, list[dict[str, float]]] = {v: [] for v in cols}
        vals: dict[str, dict[str, float]] = {}
        for _ in range(args.repeats):
            for v in cols:  # alternate, so that both see the same load
                t, vals[v] = versions[v].run(f, a, b)
                runs[v].append(t)
        med_total = {}
        for v in cols:
            fams = sorted({k for r in runs[v] for k in r})
            for fam in fams:
                per_family[v].setdefault(fam, []).append(statistics.median(r.get(fam, 0.0) for r in runs[v]))
            med_total[v] = statistics.median(sum(r.values()) for r in runs[v])
            totals[v].append(med_total[v])
        if len(cols) == 2:
            for k, x in vals["after"].items():
                y = vals["before"].get(k)
                if y is not None and np.isfinite(x) and np.isfinite(y):
                    worst = max(worst, abs(x - y) / max(abs(y), 1e-300))
        row = " | ".join(f"{med_total[v]:.2f}" for v in cols)
        ratio = f" {med_total['before'] / med_total['after']:.2f}× |" if len(cols) == 2 else ""
        print(f"| {label} | {f.shape[0]}×{f.shape[1]} | {row} |{ratio}", flush=True)
    row = " | ".join(f"**{np.mean(totals[v]):.2f}**" for v in cols)
    ratio = (f" **{np.mean(totals['before']) / np.mean(totals['after']):.2f}×** |"
             if len(cols) == 2 else "")
    print(f"| **mean per triple** | | {row} |{ratio}")

    print("\nMean per triple, by metric family:\n")
    print(f"| family | {head_cols} |" + (" ratio |" if len(cols) == 2 else ""))
    print("|---|" + "---:|" * (len(cols) + (len(cols) == 2)))
    fams = sorted({k for v in cols for k in per_family[v]},
                  key=lambda k: -np.mean(per_family[cols[0]].get(k, [0.0])))
    for fam in fams:
        means = {v: float(np.mean(per_family[v].get(fam, [0.0]))) for v in cols}
        row = " | ".join(f"{means[v]:.3f}" for v in cols)
        ratio = (f" {means['before'] / means['after']:.1f}× |" if len(cols) == 2 and means["after"] > 0
                 else (" – |" if len(cols) == 2 else ""))
        print(f"| {_label(fam)} | {row} |{ratio}")
    row = " | ".join(f"**{np.mean(totals[v]):.3f}**" for v in cols)
    ratio = (f" **{np.mean(totals['before']) / np.mean(totals['after']):.2f}×** |"
             if len(cols) == 2 else "")
    print(f"| **total** | {row} |{ratio}")
    if len(cols) == 2:
        print(f"\nlargest relative difference of a metric value, after vs before: {worst:.1e}")
    try:
        load = os.getloadavg()
        print(f"load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Convergence of the HIFM ADMM, and where DeRUN's stages land on the solver's curve.

``python experiments/convergence.py [--quick] [--out DIR]``

Part 1 (solver): for pairs of TNO, RoadScene-test and MRI-CT, ``hifm.solve`` with several
parameter settings (the defaults — noise-adaptive λ, μ = 0.1, the source gradient target —
then λ fixed at 0.01 / 0.03, μ = 0.01 instead of 0.1, and both E-steps, ``shrink="soft"`` and ``"value_map"``) is run for ``--ref-iters``
iterations; the first ``--iters`` (200) are plotted: the relative objective gap
(J(Yⁿ) − J*)/J* of the model (§2.4: (S1) with the gradient target T_k) (J* = the lowest objective of the long run), the primal residuals
‖∇_l Y − E_l‖, ‖∇_k Y − T_k − H_k‖ (RMS per pixel) and the relative change
‖Yⁿ − Yⁿ⁻¹‖/‖Yⁿ⁻¹‖, all from ``SolveInfo.history``.

Part 2 (solver vs DeRUN): one objective J_eval, the model's objective (``hifm.ops.objective`` with the solver's M, T_k, λ and μ_eff)
with the solver's parameters P (those DeRUN is initialised from), evaluated on the
reflect-padded image exactly as the solver pads (per pixel of the padded domain), is applied
to the solver's iterates and to every stage output of DeRUN at initialisation
(``DeRUN.from_hifm(P)``: it must lie on the solver's curve) and of the trained DeRUN
(the shipped weights). The trained network does not minimise J: the plot shows how far
its stages are from the solver's iterates in the solver's own objective.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import common  # noqa: E402

NAME = "convergence"
DATASETS = ("tno", "roadscene-test", "mri-ct")

SETTINGS: list[tuple[str, dict[str, Any]]] = [
    ("default (λ noise-adaptive)", {}),
    ("λ = 0.01", {"lam": 0.01}),
    ("λ = 0.03", {"lam": 0.03}),
    ("λ = 0.01, μ = 0.01", {"lam": 0.01, "mu": 0.01}),
    ("λ = 0.03, μ = 0.01", {"lam": 0.03, "mu": 0.01}),
    ("λ = 0.01, value map", {"lam": 0.01, "shrink": "value_map"}),
    ("default, value map", {"shrink": "value_map"}),
]
QUICK_SETTINGS = [SETTINGS[0], SETTINGS[3], SETTINGS[5]]


@dataclass
class SolverRun:
    """History of one setting on one pair (the first ``iters`` iterations) and its J*."""

    dataset: str
    pair: str
    label: str
    objective: np.ndarray
    residual_l: np.ndarray
    residual_k: np.ndarray
    rel_change: np.ndarray
    j_star: float
    ms_per_iter: float
    lam: float

    @property
    def gap(self) -> np.ndarray:
        return (self.objective - self.j_star) / abs(self.j_star)


@dataclass
class NetworkCurve:
    """J_eval of the solver's iterates and of DeRUN's stages on one pair."""

    dataset: str
    pair: str
    params_desc: str
    iters: np.ndarray
    solver_j: np.ndarray
    j_star: float
    j_anchor: float
    init_j: np.ndarray | None = None
    trained_j: np.ndarray | None = None
    init_max_diff: float | None = None
    history_match: float | None = None
    notes: list[str] = field(default_factory=list)


def _first_below(values: np.ndarray, tol: float) -> int | None:
    """First iteration (1-based, from 2 on) whose value is below ``tol``."""
    idx = np.nonzero(values[1:] < tol)[0]
    return int(idx[0]) + 2 if idx.size else None


def run_settings(sample: common.Sample, settings: Sequence[tuple[str, dict[str, Any]]], iters: int,
                 ref_iters: int) -> list[SolverRun]:
    """Part 1 on one pair: one long run per setting (float64, luminance)."""
    import hifm

    a, b = common.luminance(sample)
    for _, params in settings:  # compile the Numba kernels of each setting outside the timed runs
        hifm.solve(a[:32, :32], b[:32, :32], iters=2, return_info=True, dtype="float64", **params)
    runs = []
    for label, params in settings:
        _, info = hifm.solve(a, b, iters=max(iters, ref_iters), return_info=True, dtype="float64", **params)
        h = info.history
        obj = np.asarray(h.objective)
        t = np.asarray(h.time)
        runs.append(SolverRun(
            sample.dataset, sample.name, label, obj[:iters], np.asarray(h.residual_l[:iters]),
            np.asarray(h.residual_k[:iters]), np.asarray(h.rel_change[:iters]), float(obj.min()),
            1000.0 * float(t[-1]) / len(t), info.lam,
        ))
    return runs


def eval_grid(iters: int) -> np.ndarray:
    """Iterations at which J_eval is computed: 1…10, then about 25 log-spaced up to ``iters``."""
    grid = set(range(1, min(iters, 10) + 1))
    if iters > 10:
        grid |= {int(round(x)) for x in np.geomspace(10, iters, 25)}
    return np.array(sorted(grid))


class Objective:
    """J_eval(Y): the model's objective by ``hifm.ops.objective`` on the reflect-padded Y, per padded pixel.

    Built from a running :class:`hifm.solver.HIFMSolver` (:meth:`from_solver`), so that it uses
    exactly the solver's padded anchor M, gradient target T_k, λ and μ_eff (the noise-adapted μ).
    """

    def __init__(self, mp: np.ndarray, margin: int, params: Any, lam: float, mu: float,
                 target: np.ndarray | None) -> None:
        self.margin = margin
        self.mp = np.asarray(mp, dtype=np.float64)
        self.pshape = self.mp.shape
        self.kl, self.kk = params.filters_l.kernels, params.filters_k.kernels
        self.lam = np.full(len(self.kl), lam)
        self.mu = np.full(len(self.kk), mu)
        self.theta = np.full(len(self.kk), params.theta)
        self.target = None if target is None else np.asarray(target, dtype=np.float64)
        self.n_px = float(self.pshape[0] * self.pshape[1])

    @classmethod
    def from_solver(cls, solver: Any) -> "Objective":
        r = solver.resolved
        return cls(np.asarray(solver.m), solver.margin, r.params, r.lam, r.mu_eff, solver.target)

    def pad(self, y: np.ndarray) -> np.ndarray:
        from hifm.solver import pad_reflect

        return np.asarray(pad_reflect(np.asarray(y, dtype=np.float64), self.margin, self.pshape))

    def padded(self, yp: np.ndarray) -> float:
        """J on an already padded Y (the solver's own domain)."""
        from hifm import ops

        return float(ops.objective(np.asarray(yp, np.float64), self.mp, self.kl, self.lam, self.kk, self.mu,
                                   self.theta, self.target)) / self.n_px

    def __call__(self, y: np.ndarray) -> float:
        return self.padded(self.pad(y))


def network_curve(sample: common.Sample, models: common.DerunModels, iters: int, ref_iters: int) -> NetworkCurve:
    """Part 2 on one pair: J_eval of the solver with DeRUN's initial parameters and of DeRUN's stages."""
    import hifm
    from hifm.params import HIFMParams

    params = HIFMParams.from_kwargs(None, dtype="float64", **models.init_params)
    a, b = common.luminance(sample)
    grid = eval_grid(iters)
    want = set(grid.tolist()) | {ref_iters}
    values: dict[int, float] = {}
    padded_values: dict[int, float] = {}
    state: dict[str, Any] = {}

    def callback(solver: Any) -> None:
        if "objective" not in state:
            state["objective"] = Objective.from_solver(solver)
        n = solver.iteration
        if n in want:
            values[n] = state["objective"](np.array(solver.result()))
            padded_values[n] = state["objective"].padded(solver.padded_result)

    _, info = hifm.solve(a, b, iters=max(ref_iters, iters), params=params, return_info=True, callback=callback)
    obj: Objective = state["objective"]
    hist = np.asarray(info.history.objective)
    match = max(abs(padded_values[n] - hist[n - 1]) / abs(hist[n - 1]) for n in padded_values)
    desc = ", ".join(f"{k}={v}" for k, v in models.init_params.items()) or "HIFMParams defaults"
    # J(M) with the solver's own padded M (after the sources' denoising), not a second anchor
    curve = NetworkCurve(sample.dataset, sample.name, desc, grid, np.array([values[n] for n in grid]),
                         min(values.values()), obj.padded(obj.mp), history_match=match)
    if models.available:
        import torch

        ta = torch.from_numpy(a)[None]
        tb = torch.from_numpy(b)[None]
        for which in ("init", "trained"):
            net = getattr(models, which)
            if net is None:
                continue
            net = net.to(torch.float64).eval()
            with torch.no_grad():
                out = net(ta, tb, return_all=True)
            stages = [s[0].numpy() for s in out.stages]
            js = np.array([obj(y) for y in stages])
            setattr(curve, f"{which}_j", js)
            if which == "init":
                # the initial network must reproduce the solver's iterates
                y_solver = hifm.solve(a, b, iters=len(stages), params=params)
                curve.init_max_diff = float(np.abs(np.clip(stages[-1], 0, 1) - y_solver).max())
    return curve


# ----------------------------------------------------------------------------- figures
def plot_solver(runs: list[SolverRun], datasets: Sequence[str], out: Path, iters: int) -> Path:
    """Rows: data sets (first pair); columns: objective gap, residual_l, residual_k, relative change."""
    plt = common.pyplot()
    labels = list(dict.fromkeys(r.label for r in runs))
    colors = {lab: plt.cm.tab10(i % 10) for i, lab in enumerate(labels)}
    styles = {lab: ("--" if "value map" in lab else "-") for lab in labels}
    cols = [("gap", "|J(Yⁿ) − J*| / J*"), ("residual_l", "‖∇_l Y − E_l‖ (RMS per pixel)"),
            ("residual_k", "‖∇_k Y − T_k − H_k‖ (RMS per pixel)"), ("rel_change", "‖Yⁿ − Yⁿ⁻¹‖ / ‖Yⁿ⁻¹‖")]
    fig, axes = plt.subplots(len(datasets), 4, figsize=(15, 3.1 * len(datasets)), squeeze=False)
    titles = {"gap": "objective gap", "residual_l": "primal residual, ψ split (E = ∇_l Y)",
              "residual_k": "primal residual, φ split (H = ∇_k Y − T_k)", "rel_change": "relative change"}
    for i, ds in enumerate(datasets):
        first = next((r.pair for r in runs if r.dataset == ds), None)
        for j, (key, ylabel) in enumerate(cols):
            ax = axes[i, j]
            zero = []
            for r in runs:
                if r.dataset != ds or r.pair != first:
                    continue
                y = np.abs(r.gap if key == "gap" else getattr(r, key)).astype(np.float64)
                n = np.arange(1, len(y) + 1)
                y[y <= 1e-15] = np.nan  # exact zeros (Y¹ = M; μ = 0 makes H = ∇_k Y − T_k exactly)
                if np.all(np.isnan(y)):
                    zero.append(r.label)
                    continue
                ax.semilogy(n, y, styles[r.label], color=colors[r.label], lw=1.3, label=r.label)
            if zero and key == "residual_k":
                ax.text(0.98, 0.97, "identically 0 (not drawn) for μ = 0:\n" + "\n".join(zero), transform=ax.transAxes,
                        ha="right", va="top", fontsize=7, color="0.3")
            ax.set_xlim(1, iters)
            ax.set_xlabel("iteration n")
            ax.set_ylabel(f"{common.DATASETS[ds].title} {first}\n{ylabel}" if j == 0 else ylabel)
            ax.grid(True, which="major", alpha=0.3)
            if i == 0:
                ax.set_title(titles[key])
    handles, labs = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labs, loc="lower center", ncol=min(len(labs), 4), bbox_to_anchor=(0.5, -0.02 - 0.01 * len(datasets)),
               frameon=False)
    fig.suptitle("hifm.solve: convergence of the ADMM (float64; solid: soft threshold, dashed: value map)", y=1.0)
    common.tight(fig, rect=(0, 0.04, 1, 0.98))
    return common.save_figure(fig, out / "convergence_solver.png")


def plot_network(curves: list[NetworkCurve], out: Path, iters: int) -> Path:
    """One panel per data set: solver's J_eval gap vs iteration, DeRUN's stages as markers."""
    plt = common.pyplot()
    firsts: dict[str, NetworkCurve] = {}
    for c in curves:
        firsts.setdefault(c.dataset, c)
    fig, axes = plt.subplots(1, len(firsts), figsize=(5.0 * len(firsts), 3.9), squeeze=False)
    floor = 1e-12
    for ax, (ds, c) in zip(axes[0], firsts.items()):
        def gap(j: np.ndarray | float) -> np.ndarray:
            return np.maximum((np.asarray(j) - c.j_star) / abs(c.j_star), floor)

        ax.loglog(c.iters, gap(c.solver_j), "-", color="k", lw=1.5, label="hifm.solve, iteration n")
        ax.axhline(float(gap(c.j_anchor)), color="0.5", ls=":", lw=1.2, label="Y = M (the anchor, n = 0)")
        if c.init_j is not None:
            n = np.arange(1, len(c.init_j) + 1)
            ax.loglog(n, gap(c.init_j), "o", mfc="none", color="tab:blue", ms=7, label="DeRUN at init, stage n")
        if c.trained_j is not None:
            n = np.arange(1, len(c.trained_j) + 1)
            ax.loglog(n, gap(c.trained_j), "^", color="tab:red", ms=6, label="DeRUN trained, stage n")
        ax.set_xlim(0.9, iters * 1.1)
        ax.set_xlabel("iteration / stage n")
        ax.set_ylabel("(J_eval − J*) / J*   (the model's J, solver's P)")
        ax.set_title(f"{common.DATASETS[ds].title} {c.pair}", fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        missing = [w for w, v in (("init", c.init_j), ("trained", c.trained_j)) if v is None]
        if missing:
            ax.text(0.98, 0.80, "DeRUN " + " / ".join(missing) + ": not available", transform=ax.transAxes, fontsize=8,
                    color="tab:red", ha="right")
        ax.legend(loc="lower left", fontsize=7.5)
    fig.suptitle(f"Where DeRUN's stages land on the solver's curve (P: {curves[0].params_desc})", y=1.02)
    common.tight(fig)
    return common.save_figure(fig, out / "convergence_derun.png")


# -------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    """Run the experiment (see the module docstring); returns the exit status."""
    parser = common.base_parser(NAME, __doc__)
    parser.add_argument("--iters", type=int, help="iterations plotted (default 200; quick 20)")
    parser.add_argument("--ref-iters", type=int, help="length of the run that gives J* (default 600; quick 40)")
    parser.add_argument("--pairs", type=int, help="pairs per data set (default 2; quick 1)")
    parser.add_argument("--crop", type=int, help="centre crop in pixels (default: whole images; quick 64)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(common.DATASETS))
    args = parser.parse_args(argv)
    q = args.quick
    args.datasets = common.available_datasets(args.datasets, q)
    iters = args.iters or (20 if q else 200)
    ref_iters = max(args.ref_iters or (40 if q else 600), iters)
    n_pairs = args.pairs or (1 if q else 2)
    crop = args.crop if args.crop is not None else (64 if q else None)
    settings = QUICK_SETTINGS if q else SETTINGS
    common.setup_threads(args.threads)
    out = common.output_dir(args, NAME)
    rep = common.Report("Convergence of the HIFM ADMM and of DeRUN's stages", common.command_line(NAME, argv), out)
    rep.text(
        f"Data: {n_pairs} pair(s) per data set ({', '.join(common.DATASETS[d].title for d in args.datasets)}), "
        f"{'centre crops of ' + str(crop) + ' px' if crop else 'whole images'}, luminance, float64. "
        f"Each setting runs {ref_iters} iterations; J* is the lowest objective of that run and the first {iters} "
        "iterations are shown. The objective J (§2.4: (S1) with the gradient target T_k and μ_eff) uses ψ = |·| (exact for the soft threshold; for the value map "
        "it is the objective the value map approximates) and is summed over the padded domain per pixel."
    )

    runs: list[SolverRun] = []
    samples: dict[str, list[common.Sample]] = {}
    for ds in args.datasets:
        samples[ds] = common.load_dataset(ds, max_pairs=n_pairs, crop=crop)
        for s in samples[ds]:
            print(f"[convergence] {ds}/{s.name} {s.shape}: {len(settings)} settings × {ref_iters} iterations", flush=True)
            runs.extend(run_settings(s, settings, iters, ref_iters))
    fig1 = plot_solver(runs, args.datasets, out, iters)

    rep.heading("1. hifm.solve: objective gap, residuals and relative change")
    rep.figure(fig1, "Convergence of hifm.solve (first pair of each data set); log scale")
    checkpoints = [n for n in (10, 50, 200) if n <= iters] or [iters]
    headers = ["data set", "setting", "λ used"] + [f"gap @ {n}" for n in checkpoints] + \
              ["n: rel. change < 1e-3", "n: rel. change < 1e-4", f"res_l @ {iters}", f"res_k @ {iters}", "ms / iteration"]
    rows = []
    for ds in args.datasets:
        for label, _ in settings:
            sel = [r for r in runs if r.dataset == ds and r.label == label]
            if not sel:
                continue
            def med_first(tol: float) -> str:
                hits = [_first_below(r.rel_change, tol) for r in sel]
                return "/".join("–" if h is None else str(h) for h in hits)
            rows.append([common.DATASETS[ds].title, label, "/".join(common.fmt(r.lam, 4) for r in sel)]
                        + [float(np.mean([r.gap[n - 1] for r in sel])) for n in checkpoints]
                        + [med_first(1e-3), med_first(1e-4), float(np.mean([r.residual_l[-1] for r in sel])),
                           float(np.mean([r.residual_k[-1] for r in sel])), float(np.mean([r.ms_per_iter for r in sel]))])
    rep.table(headers, rows, digits=[0, 0, 4] + [2] * len(checkpoints) + [0, 0, 2, 2, 1],
              caption=f"Mean over the pairs of the relative objective gap (J − J*)/J* (J* from {ref_iters} iterations); "
                      "first iteration where the relative change falls below 1e-3 / 1e-4, per pair (– : not within "
                      f"{iters}); residuals at the last plotted iteration; time per iteration with monitoring "
                      "(shared machine, single thread).")
    if any("value map" in lab for lab, _ in settings):
        rep.text("Value map (dashed): the piecewise-linear value map interpolates the soft threshold on the control-point "
                 "grid (spacing V = 0.02, DESIGN §2.2); for thresholds t < V it is not the proximal map of λ|·| but of a "
                 "smoother penalty, so its iterates do not minimise the plotted J: J falls below its limit and comes back "
                 "(the dip of |J − J*|, J* being the lowest value of the run) and levels off at the value of its own fixed "
                 "point, while the residuals and the relative change fall geometrically (faster than with the soft "
                 "threshold, whose non-smooth prox gives the slower, sublinear tail).")
    mu_rows = [r for r in rows if "μ" in str(r[1])]
    if mu_rows:
        rep.text("With μ > 0 the model is non-convex (Lorentzian φ); J* is then the lowest value this run reached, "
                 "not a certified minimum.")

    rep.heading("2. DeRUN's stages on the solver's curve")
    curves: list[NetworkCurve] = []
    for task, dss in (("ivf", [d for d in args.datasets if common.DATASETS[d].kind == "ivf"]),
                      ("mif", [d for d in args.datasets if common.DATASETS[d].kind == "mif"])):
        if not dss:
            continue
        models = common.derun_models(task, dtype="float64")
        rep.bullets([f"{task}: {n}" for n in models.notes])
        for ds in dss:
            for s in samples[ds][:1]:
                print(f"[convergence] DeRUN/{task} on {ds}/{s.name}", flush=True)
                curves.append(network_curve(s, models, iters, ref_iters))
    fig2 = plot_network(curves, out, iters)
    rep.figure(fig2, "J_eval, the model's objective (the solver's parameters P) for hifm.solve's iterates and DeRUN's stage outputs; log-log")
    headers = ["data set", "pair", "J*", "gap: Y = M", "gap: solver n=9", f"gap: solver n={iters}", "gap: DeRUN init, stage 9",
               "gap: DeRUN trained, stage 9", "solver n with J ≤ trained", "init vs solver (max abs diff)", "J_eval vs history (rel.)"]
    rows = []
    for c in curves:
        def gap(j: float) -> float:
            return (j - c.j_star) / abs(c.j_star)

        def at(n: int) -> float:
            idx = np.nonzero(c.iters == n)[0]
            return gap(float(c.solver_j[idx[0]])) if idx.size else float("nan")
        init9 = gap(float(c.init_j[-1])) if c.init_j is not None else float("nan")
        tr9 = gap(float(c.trained_j[-1])) if c.trained_j is not None else float("nan")
        reach = "–"
        if c.trained_j is not None:
            hit = np.nonzero(c.solver_j <= float(c.trained_j[-1]))[0]
            reach = str(int(c.iters[hit[0]])) if hit.size else (f"> {iters}" if tr9 >= 0 else "never (below J*)")
            if float(c.trained_j[-1]) > c.j_anchor:
                reach = "none (above J(M))"
        rows.append([common.DATASETS[c.dataset].title, c.pair, f"{c.j_star:.5g}", gap(c.j_anchor), at(9), at(iters), init9, tr9,
                     reach, c.init_max_diff if c.init_max_diff is not None else float("nan"), c.history_match])
    rep.table(headers, rows, digits=[0, 0, 0, 2, 2, 2, 2, 2, 0, 2, 1],
              caption="gap = (J_eval − J*)/J*, J_eval per padded pixel, J* the lowest J_eval of the solver's long run. 'init vs solver': max abs(DeRUN init − hifm.solve) at the last stage "
                      "(float64; the construction makes them equal up to rounding). 'J_eval vs history': largest relative difference between J_eval on "
                      "the solver's own padded iterate and SolveInfo.history.objective (a check of the evaluator).")
    rep.text(f"P = {curves[0].params_desc if curves else '–'} (DeRUN's initial parameters; the solver is run with them).")
    rep.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Mutation check: does the test suite catch realistic bugs?

A fixed list of small, realistic mutations of the core modules (ops, shrink, iteration,
solver, parameters, anchors, noise estimate, metrics, DeRUN stages and network, losses,
trainer) is applied one at a time to a *copy* of the repository; for each, the tests that
cover that code run (``pytest -x -m "not slow"``, or the whole suite with ``--full``).
A mutation is *killed* when the tests fail, *survived* when they pass, *timeout* when they
run past ``--timeout`` (counted as killed), and *stale* when its original text is no longer
in the file (the code changed: update the list).

    python tools/mutation_check.py                 # all mutations (about 30-40 min on 2 cores)
    python tools/mutation_check.py --list          # the list
    python tools/mutation_check.py --only anchor-two-scale-base-mean lr-cosine-to-linear
    python tools/mutation_check.py --check         # only verify that every mutation still applies
    python tools/mutation_check.py --markdown docs/mutation-results.md

Exit status: 0 every mutation killed, 1 some survived, 2 some are stale.  The working tree is
never modified (everything happens in a temporary copy of the tracked and untracked,
not ignored, files).  Run it under ``nice`` on a shared machine; it is not part of
``make test``.  Documented in docs/testing.md.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Test groups: the tests that exercise each area (a mutation runs the union of its groups).
CORE = ["tests/test_ops.py", "tests/test_shrink.py", "tests/test_iteration_definition.py", "tests/test_solver.py",
        "tests/test_fused.py", "tests/test_solver_options.py", "tests/test_backends.py", "tests/test_target.py",
        "tests/test_noise_sources.py"]
TORCH_PATHS = ["tests/test_torch_fastpaths.py"]
ANCHORS = ["tests/test_anchor_definitions.py", "tests/test_api.py", "tests/test_backends.py"]
METRICS = ["tests/test_metrics_known_answers.py", "tests/test_metrics_properties.py",
           "tests/test_metrics_conformance.py"]
DERUN = ["tests/test_unrolled_derun.py", "tests/test_derun_tied_and_fixed_lambda.py", "tests/test_unrolled_pwsm.py",
         "tests/test_unrolled_inference.py"]
LOSSES = ["tests/test_unrolled_losses.py"]
TRAIN = ["tests/test_train_schedule.py", "tests/test_train_data.py", "tests/test_unrolled_train.py",
         "tests/test_derun_tools.py"]


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    what: str


def m(name: str, path: str, old: str, new: str, tests: list[str], what: str) -> Mutation:
    return Mutation(name, path, old, new, tuple(dict.fromkeys(tests)), what)


MUTATIONS: list[Mutation] = [
    # ---------------------------------------------------------------- ops, shrink, iteration
    m("ops-denominator-drop-tau", "hifm/ops.py",
      "    return 1 + energy(kernels_l, rho) + energy(kernels_k, tau)",
      "    return 1 + energy(kernels_l, rho)",
      CORE, "Y-step denominator without the Σ τ|K̂_k|² term"),
    m("ops-rhs-sign-g", "hifm/ops.py",
      "        out = out + grad_adjoint(as_column(tau, m) * (grad_m + h - g), kernels_k)",
      "        out = out + grad_adjoint(as_column(tau, m) * (grad_m + h + g), kernels_k)",
      CORE, "Y-step right-hand side: + G instead of − G"),
    m("ops-adjoint-is-forward", "hifm/ops.py",
      "            out = out + xp.roll(per_tap[..., t, :, :], (c0 - u, c1 - v), (-2, -1))",
      "            out = out + xp.roll(per_tap[..., t, :, :], (u - c0, v - c1), (-2, -1))",
      CORE, "∇ᵀ rolls in the direction of ∇ (a convolution instead of a correlation)"),
    m("ops-lorentzian-grad-factor", "hifm/ops.py",
      "    return 2 * th * a / (1 + th * a * a)",
      "    return th * a / (1 + th * a * a)",
      CORE, "φ'(a) without its factor 2"),
    m("ops-dual-update-sign", "hifm/ops.py",
      "    return dual + c * residual",
      "    return dual - c * residual",
      CORE, "dual ascent with the wrong sign (NumPy path)"),
    m("ops-objective-half", "hifm/ops.py",
      "    total = 0.5 * (d * d).sum((-2, -1))",
      "    total = (d * d).sum((-2, -1))",
      CORE, "objective without the ½ of the data term"),
    m("shrink-soft-threshold", "hifm/shrink.py",
      "    return a - xp.clip(a, -t, t)",
      "    return xp.clip(a, -t, t)",
      CORE, "soft threshold returns the clipped part"),
    m("shrink-control-points", "hifm/shrink.py",
      "    half = (n - 1) * step / 2.0",
      "    half = n * step / 2.0",
      CORE, "value-map control points shifted by half a step"),
    m("shrink-value-map-2t", "hifm/shrink.py",
      "    q = p - np.clip(p, -t_arr[..., None], t_arr[..., None])",
      "    q = p - np.clip(p, -2 * t_arr[..., None], 2 * t_arr[..., None])",
      CORE, "value map initialised from 2t"),
    m("iteration-estep-old-y", "hifm/iteration.py",
      "    e = ops.e_step(grad_y, state.f, w.shrink)",
      "    e = ops.e_step(ops.grad(state.y, kernels_l), state.f, w.shrink)",
      CORE + DERUN[:2], "E-step from the previous Y"),
    m("iteration-g-old-h", "hifm/iteration.py",
      "        g = ops.dual_update(g, grad_ym - h, w.omega)",
      "        g = ops.dual_update(g, grad_ym - state.h, w.omega)",
      CORE + DERUN[:2], "G-step with the previous H"),
    m("iteration-one-h-step", "hifm/iteration.py",
      "        for _ in range(w.h_steps):",
      "        for _ in range(1):",
      CORE + DERUN[:2], "J H-steps ignored (always one)"),
    m("iteration-init-e-zero", "hifm/iteration.py",
      "    return ADMMState(m, e, e * 0, h, gm * 0)",
      "    return ADMMState(m, e * 0, e * 0, h, gm * 0)",
      CORE + DERUN[:2], "E⁰ = 0 instead of ∇_l M"),
    m("iteration-init-h-zero", "hifm/iteration.py",
      "    h = gm * 0 if target_k is None else gm - target_k",
      "    h = gm * 0",
      CORE + DERUN[:2], "H⁰ = 0 instead of ∇_k M − T_k with a source target"),
    m("ops-target-per-filter", "hifm/ops.py",
      "    ea, eb = (ga * ga).sum(-3), (gb * gb).sum(-3)\n    choose_a = (ea >= eb - TARGET_TIE_TOLERANCE)[..., None, :, :]",
      "    choose_a = ga * ga >= gb * gb - TARGET_TIE_TOLERANCE",
      CORE + DERUN[:2], "source target chosen filter by filter instead of per pixel over the bank"),
    m("params-mu-noise-linear", "hifm/params.py",
      "        return float(self.mu) * min(1.0, (self.mu_noise_ref / float(threshold)) ** self.mu_noise_power)",
      "        return float(self.mu) * min(1.0, self.mu_noise_ref / float(threshold))",
      CORE + DERUN[:2], "noise-adaptive μ ignores its power p (linear in t_c/t)"),
    m("anchor-salient-unsigned", "hifm/anchors.py",
      "            sa = xp.maximum(da, 0 * da) if hot else xp.abs(da)",
      "            sa = xp.abs(da)",
      ANCHORS, "salient anchor counts negative infrared detail (the halo ring)"),
    # ---------------------------------------------------------------- solver and parameters
    m("solver-pad-shift", "hifm/solver.py",
      "        idx = _mirror_index(n, max(margin, n_out))[max(margin, n_out) - margin :][:n_out]",
      "        idx = _mirror_index(n, max(margin, n_out))[max(margin, n_out) - margin + 1 :][:n_out]",
      CORE + DERUN[:2], "reflective padding shifted by one pixel"),
    m("solver-crop-corner", "hifm/solver.py",
      "        return self.padded_result[mg : mg + h, mg : mg + w]",
      "        return self.padded_result[:h, :w]",
      CORE, "result cropped from the corner of the padded domain"),
    m("solver-tol-first-iteration", "hifm/solver.py",
      "        if self.params.tol is not None and len(h.rel_change) > 1 and rel < self.params.tol:",
      "        if self.params.tol is not None and rel < self.params.tol:",
      CORE, "tol tested on the first (always zero) change"),
    m("solver-value-map-ignored", "hifm/solver.py",
      "            q = np.asarray(p.value_map) if p.value_map is not None else value_map_from_threshold(resolved.threshold)",
      "            q = value_map_from_threshold(resolved.threshold)",
      CORE, "user value-map values ignored"),
    m("fused-estep-sign", "hifm/_fused_diff.py",
      "        e = a - min(max(a, -t), t)",
      "        e = a + min(max(a, -t), t)",
      CORE, "fused row kernel: soft threshold with a wrong sign"),
    m("fft-torch-multiply", "hifm/fftengine.py",
      "            spec.div_(self._denom_t)",
      "            spec.mul_(self._denom_t)",
      CORE, "HIFM_FFT=torch Y-step multiplies by D"),
    m("params-noise-offset", "hifm/params.py",
      "        return max(self.noise_floor, self.noise_gain * (float(sigma_noise) - self.noise_offset))",
      "        return max(self.noise_floor, self.noise_gain * float(sigma_noise) - self.noise_offset)",
      CORE + DERUN[:2], "noise rule κσ̂ − σ₀ instead of κ(σ̂ − σ₀)"),
    m("params-threshold-times-rho", "hifm/params.py",
      "        return self.weight(sigma_noise) / self.rho",
      "        return self.weight(sigma_noise) * self.rho",
      CORE + DERUN[:2], "E-step threshold λ·ρ instead of λ/ρ (DeRUN's path)"),
    m("params-h-step-bound", "hifm/params.py",
      "        return self.sigma_h if self.sigma_h is not None else 1.0 / (self.tau + 2.0 * self.mu * self.theta)",
      "        return self.sigma_h if self.sigma_h is not None else 1.0 / (self.tau + self.mu * self.theta)",
      CORE + DERUN[:2], "default H-step size without the factor 2 of the curvature bound"),
    m("noise-mad-constant", "hifm/noise.py",
      "    return _median(abs(diagonal_detail(image))) / 0.6745",
      "    return _median(abs(diagonal_detail(image))) / 0.675",
      CORE, "Donoho's constant 0.6745 rounded"),
    # ---------------------------------------------------------------- anchors
    m("anchor-two-scale-base-mean", "hifm/anchors.py",
      "    fused = xp.maximum(base_a, base_b) + w * da + (1 - w) * db",
      "    fused = 0.5 * (base_a + base_b) + w * da + (1 - w) * db",
      ANCHORS, "two_scale base: mean instead of max (issue #13, blind spot 1)"),
    m("anchor-no-choice-smoothing", "hifm/anchors.py",
      "    w = box_blur(choice, choice_radius)",
      "    w = choice",
      ANCHORS, "two_scale choice map not smoothed"),
    m("anchor-ties-to-b", "hifm/anchors.py",
      "    choice = (xp.abs(da) >= xp.abs(db) - TIE_TOLERANCE) * 1.0",
      "    choice = (xp.abs(da) > xp.abs(db) + TIE_TOLERANCE) * 1.0",
      ANCHORS, "two_scale ties go to B"),
    m("anchor-no-clip", "hifm/anchors.py",
      "    return xp.clip(fused, 0.0, 1.0)",
      "    return fused",
      ANCHORS, "two_scale not clipped to [0, 1]"),
    m("anchor-cumsum-offset", "hifm/anchors.py",
      "        hi = backend.take(c, np.arange(size, size + n), axis)",
      "        hi = backend.take(c, np.arange(size - 1, size - 1 + n), axis)",
      ANCHORS + TORCH_PATHS, "box filter of the torch/CuPy path off by one"),
    # ---------------------------------------------------------------- metrics
    m("qabf-orientation-constant", "hifm/metrics/structural.py",
      "    ori = 1.0 - abs(als - alf) / (math.pi / 2.0)",
      "    ori = 1.0 - abs(als - alf) / math.pi",
      METRICS, "Qabf orientation normalised by π (issue #13, blind spot 5)"),
    m("qabf-kappa-alpha", "hifm/metrics/structural.py",
      "_TA, _KA, _DA = 0.9879, -22.0, 0.8",
      "_TA, _KA, _DA = 0.9879, -24.0, 0.8",
      METRICS, "Qabf κ_α = −24 instead of −22"),
    m("qabf-equal-gradients", "hifm/metrics/structural.py",
      "    elif gs == gf:\n        rel = gf\n",
      "    elif gs == gf:\n        rel = 1.0\n",
      METRICS, "Qabf without the reference's gA == gF rule"),
    m("ssim-metric-c2", "hifm/metrics/structural.py",
      "_C2 = (0.03 * 255.0) ** 2",
      "_C2 = (0.03 * 255.0)",
      METRICS, "SSIM metric C₂ not squared"),
    m("nabf-threshold", "hifm/metrics/structural.py",
      "_NABF_TD = 2.0",
      "_NABF_TD = 1.0",
      METRICS, "Nabf weight threshold 1 instead of 2"),
    m("vif-scale-weights", "hifm/metrics/viff.py",
      "_WEIGHTS = (1.0 / 2.15, 0.0, 0.15 / 2.15, 1.0 / 2.15)",
      "_WEIGHTS = (1.0 / 2.15, 0.15 / 2.15, 0.0, 1.0 / 2.15)",
      METRICS, "VIF scale weights of scales 2 and 3 swapped"),
    m("ag-divisor", "hifm/metrics/gradient.py",
      "    return float(s.sum() / ((m - 1) * (n - 1)))",
      "    return float(s.sum() / (m * n))",
      METRICS, "average gradient divided by M·N"),
    m("sf-divisor", "hifm/metrics/gradient.py",
      "    rf = np.sum(dr * dr) / (m * n)",
      "    rf = np.sum(dr * dr) / (m * (n - 1))",
      METRICS, "spatial frequency: row term divided by the number of differences"),
    m("cross-entropy-log", "hifm/metrics/information.py",
      "    return float(np.sum(ps[m] * np.log2(ps[m] / pf[m])))",
      "    return float(np.sum(ps[m] * np.log(ps[m] / pf[m])))",
      METRICS, "cross entropy in nats"),
    m("psnr-mse", "hifm/metrics/error.py",
      "    return 20.0 * math.log10(255.0 / math.sqrt(e))",
      "    return 20.0 * math.log10(255.0 / e)",
      METRICS, "PSNR of the VIFB formula without its square root"),
    m("qcv-alpha", "hifm/metrics/qcb_qcv.py",
      "_ALPHA = 5",
      "_ALPHA = 4",
      METRICS, "Qcv saliency exponent 4 instead of 5"),
    m("qcb-csf-scale", "hifm/metrics/qcb_qcv.py",
      "    u = u * n / 30.0",
      "    u = u * n / 32.0",
      METRICS, "Qcb CSF frequency scale"),
    m("fmi-row-major-window", "hifm/metrics/fmi.py",
      "            for cc in range(q - h, q + h + 1):  # column-major window flattening\n"
      "                for r in range(p - h, p + h + 1):",
      "            for r in range(p - h, p + h + 1):  # row-major (wrong)\n"
      "                for cc in range(q - h, q + h + 1):",
      METRICS, "FMI windows flattened row by row"),
    # ---------------------------------------------------------------- DeRUN
    m("derun-tied-stage-index", "unrolled/derun.py",
      "        return self.stages[0 if self.config.tied else n]",
      "        return self.stages[n]",
      DERUN, "tied network indexes stage n (issue #13, blind spot 4)"),
    m("derun-crop-corner", "unrolled/derun.py",
      "            outs.append(state.y[..., margin : margin + h, margin : margin + w])",
      "            outs.append(state.y[..., :h, :w])",
      DERUN, "network output cropped from the corner"),
    m("derun-threshold-on-learned-anchor", "unrolled/derun.py",
      "        t = self.thresholds(base, a, b)",
      "        t = self.thresholds(m, a, b)",
      DERUN, "noise threshold estimated on M_θ instead of the solver's anchor"),
    m("layers-sigma-without-mu", "unrolled/layers.py",
      "            mu=mu, theta=theta, s=s, sigma=s / ops.h_step_bound(tau, mu, theta),",
      "            mu=mu, theta=theta, s=s, sigma=s / tau,",
      DERUN, "stage H-step size ignores μθ"),
    m("layers-scaled-inverse", "unrolled/layers.py",
      "        scale = (threshold / t_ref).reshape(b, 1, 1, 1)",
      "        scale = (t_ref / threshold).reshape(b, 1, 1, 1)",
      DERUN, "scaled value map with the inverse scale"),
    m("layers-absolute-base-2t", "unrolled/layers.py",
      "            base_b = soft_threshold(p, threshold.reshape(b, 1, 1))  # (B, 1, I_t)",
      "            base_b = soft_threshold(p, 2 * threshold.reshape(b, 1, 1))  # (B, 1, I_t)",
      DERUN, "absolute value map based on soft_2t"),
    m("layers-stage1-eta-frozen", "unrolled/layers.py",
      '        live &= {"coef_l", "raw_eta", "q"}',
      '        live &= {"coef_l", "q"}',
      DERUN, "stage 1's η not learned"),
    m("layers-value-map-clamp", "unrolled/layers.py",
      "            u.div_(step).clamp_(0, n - 1)\n            k.copy_(u)",
      "            u.div_(step).clamp_(0, n - 2)\n            k.copy_(u)",
      DERUN + TORCH_PATHS, "fast value map (CPU chunks) clamps one point early"),
    # ---------------------------------------------------------------- losses
    m("loss-ssim-c2", "unrolled/losses.py",
      "    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2",
      "    c1, c2 = (0.01 * data_range) ** 2, (0.05 * data_range) ** 2",
      LOSSES, "SSIM loss C₂ = 0.05² (issue #13, blind spot 3)"),
    m("loss-intensity-mean", "unrolled/losses.py",
      "            src_max = torch.maximum(a4, b4)",
      "            src_max = 0.5 * (a4 + b4)",
      LOSSES, "intensity target of the batched loss: mean instead of max"),
    m("loss-gradient-min", "unrolled/losses.py",
      "                gmax = torch.maximum(torch.sqrt(ga[0] ** 2 + ga[1] ** 2 + _EPS**2), torch.sqrt(gb[0] ** 2 + gb[1] ** 2 + _EPS**2))",
      "                gmax = torch.minimum(torch.sqrt(ga[0] ** 2 + ga[1] ** 2 + _EPS**2), torch.sqrt(gb[0] ** 2 + gb[1] ** 2 + _EPS**2))",
      LOSSES, "gradient target of the batched loss: min instead of max"),
    m("loss-lgde-log-base", "unrolled/losses.py",
      "        ent = -(p * torch.log(p + 1e-12)).sum(1, keepdim=True) / math.log(bins)",
      "        ent = -(p * torch.log(p + 1e-12)).sum(1, keepdim=True) / math.log2(bins)",
      LOSSES, "LGDE entropy normalised by log2 I"),
    m("loss-stage-weights", "unrolled/losses.py",
      "        w = [((i + 1) / n) ** self.config.stage_power for i in range(n)]",
      "        w = [(i / n) ** self.config.stage_power for i in range(n)]",
      LOSSES, "deep-supervision weights start at 0"),
    m("loss-box-mean-divisor", "unrolled/losses.py",
      "    return x / (block * block)",
      "    return x / block",
      LOSSES, "box mean divided by the side, not the area"),
    # ---------------------------------------------------------------- trainer
    m("lr-cosine-to-linear", "unrolled/train.py",
      "    return lo + (cfg.lr - lo) * 0.5 * (1 + math.cos(math.pi * frac))",
      "    return lo + (cfg.lr - lo) * (1 - frac)",
      TRAIN, "learning rate decays linearly (issue #13, blind spot 2)"),
    m("lr-warmup-off-by-one", "unrolled/train.py",
      "        return cfg.lr * (step + 1) / cfg.warmup",
      "        return cfg.lr * step / cfg.warmup",
      TRAIN, "warm-up starts at lr 0"),
    m("train-decay-everything", "unrolled/train.py",
      '        (decay if name.startswith(("extractor.", "head.")) else no_decay).append(p)',
      "        decay.append(p)",
      TRAIN, "weight decay on the stage parameters too"),
    m("train-no-grad-clip", "unrolled/train.py",
      "        if cfg.grad_clip:",
      "        if False:",
      TRAIN, "gradient clipping never applied"),
    m("train-resume-rng", "unrolled/train.py",
      '    torch.set_rng_state(tensors["rng.torch"])',
      "    pass",
      TRAIN, "resume does not restore the torch RNG"),
    m("data-flip-one-source", "unrolled/data.py",
      "                a, b = a[:, ::-1], b[:, ::-1]",
      "                a, b = a[:, ::-1], b",
      TRAIN, "training crops: only the first source flipped (misaligned pair)"),
    m("data-stripes-on-visible", "unrolled/data.py",
      '    "stripe_noise": "a",',
      '    "stripe_noise": "b",',
      TRAIN, "stripe noise put on the visible image"),
    m("data-degraded-targets", "unrolled/data.py",
      "        return a_in, b_in, a, b, info",
      "        return a_in, b_in, a_in, b_in, info",
      TRAIN, "loss targets are the degraded inputs"),
]


# ---------------------------------------------------------------------------------- running


def repo_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                         capture_output=True).stdout.decode()
    return [p for p in out.split("\0") if p and (REPO / p).is_file()]


def make_copy(dest: Path) -> None:
    for rel in repo_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, target)


def pytest_cmd(tests: list[str], extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "pytest", "-x", "-q", "-m", "not slow", "-p", "no:cacheprovider", *extra, *tests]


def run_tests(copy: Path, tests: list[str], timeout: float, extra: list[str]) -> tuple[str, float, str]:
    """("passed" | "failed" | "timeout", seconds, first failing test)."""
    env = {**os.environ, "PYTHONPATH": str(copy), "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    try:
        res = subprocess.run(pytest_cmd(tests, extra), cwd=copy, env=env, capture_output=True, text=True,
                             timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - t0, ""
    first = ""
    for line in (res.stdout + res.stderr).splitlines():
        hit = re.match(r"^(FAILED|ERROR) (\S+)", line)
        if hit:
            first = hit.group(2)
            break
    return ("passed" if res.returncode == 0 else "failed"), time.perf_counter() - t0, first


def check_copy_is_imported(copy: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(copy)}
    code = "import hifm, unrolled; print(hifm.__file__); print(unrolled.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=copy, env=env, capture_output=True, text=True, check=True)
    for line in out.stdout.split():
        if not Path(line).resolve().is_relative_to(copy.resolve()):
            sys.exit(f"the copy is not what Python imports ({line}); is an installed hifm shadowing it?")


def apply(copy: Path, mut: Mutation) -> str | None:
    """The original text of the mutated file (None when the mutation is stale)."""
    path = copy / mut.path
    text = path.read_text()
    if text.count(mut.old) != 1:
        return None
    path.write_text(text.replace(mut.old, mut.new))
    return text


def markdown(rows: list[tuple[Mutation, str, float, str]], full: bool) -> str:
    killed = sum(1 for _, s, _, _ in rows if s in ("killed", "timeout"))
    lines = [f"Mutation check: **{killed} / {len(rows)} killed** "
             f"({'whole suite' if full else 'the tests of each area'}, `pytest -x -m \"not slow\"`).", "",
             "| mutation | file | what | result | caught by | s |", "|---|---|---|---|---|---|"]
    for mut, status, secs, first in rows:
        what = mut.what.replace("|", "\\|")
        lines.append(f"| `{mut.name}` | `{mut.path}` | {what} | {status} | {f'`{first}`' if first else ''} "
                     f"| {secs:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--list", action="store_true", help="print the mutations and exit")
    ap.add_argument("--check", action="store_true", help="only check that every mutation applies to the current code")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run these mutations only")
    ap.add_argument("--full", action="store_true", help="run the whole (not slow) suite for each mutation")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per mutation (default 900)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the check that the unmutated tests pass")
    ap.add_argument("--markdown", metavar="PATH", help="also write the result table as Markdown")
    ap.add_argument("--keep", action="store_true", help="keep the temporary copy")
    args = ap.parse_args(argv)

    names = [x.name for x in MUTATIONS]
    assert len(set(names)) == len(names), "duplicate mutation names"
    chosen = MUTATIONS
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            ap.error(f"unknown mutation(s) {unknown}")
        chosen = [x for x in MUTATIONS if x.name in args.only]
    if args.list:
        for x in chosen:
            print(f"{x.name:36s} {x.path:30s} {x.what}")
        return 0
    stale = [x.name for x in chosen if (REPO / x.path).read_text().count(x.old) != 1]
    if args.check:
        for name in stale:
            print(f"stale: {name}")
        print(f"{len(chosen) - len(stale)} of {len(chosen)} mutations apply")
        return 2 if stale else 0

    tmp = Path(tempfile.mkdtemp(prefix="hifm-mutation-"))
    copy = tmp / "repo"
    rows: list[tuple[Mutation, str, float, str]] = []
    try:
        make_copy(copy)
        check_copy_is_imported(copy)
        all_tests = list(dict.fromkeys(t for x in chosen for t in x.tests)) if not args.full else ["tests"]
        if not args.no_baseline:
            status, secs, first = run_tests(copy, all_tests, args.timeout * 3, [])
            print(f"baseline: {status} in {secs:.0f} s", flush=True)
            if status != "passed":
                sys.exit(f"the unmutated tests do not pass ({first}); fix that first")
        for i, mut in enumerate(chosen, 1):
            original = apply(copy, mut)
            if original is None:
                rows.append((mut, "stale", 0.0, ""))
                print(f"[{i}/{len(chosen)}] {mut.name}: STALE (text not found once in {mut.path})", flush=True)
                continue
            try:
                status, secs, first = run_tests(copy, ["tests"] if args.full else list(mut.tests), args.timeout, [])
            finally:
                (copy / mut.path).write_text(original)
            result = {"failed": "killed", "passed": "survived", "timeout": "timeout"}[status]
            rows.append((mut, result, secs, first))
            print(f"[{i}/{len(chosen)}] {mut.name}: {result.upper()} in {secs:.0f} s {first}", flush=True)
    finally:
        if args.keep:
            print(f"copy kept in {copy}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    table = markdown(rows, args.full)
    print()
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table)
    if any(s == "stale" for _, s, _, _ in rows):
        return 2
    return 1 if any(s == "survived" for _, s, _, _ in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

"""Measure the HIFM defaults (docs/parameters.md): ``python experiments/tune_defaults.py [--pairs 8]``.

Protocol (DESIGN §2.3): TNO pairs (gray), two_scale anchor, Gaussian noise of
σ ∈ {0, 5, 10, 20}/255 added to the visible image (seeded), ``hifm.solve``
with the setting under test; score = PSNR and SSIM of the fused image against
the anchor of the *clean* pair (what the model should recover), averaged over
pairs.  Sweeps: ρ (convergence), a fixed threshold t = λ (ρ = 1; with the mean noise
estimate σ̂ at each level, from which the rule λ = max(λ_min, κ(σ̂ − σ₀)) was fitted),
the gain κ of that rule with μ = 0, then μ and θ of the Lorentzian term.
Prints Markdown tables.
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import hifm
from hifm.datasets import find_pairs
from hifm.degrade import gaussian_noise
from hifm.io import read_image, to_float

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NOISE = [0.0, 5 / 255, 10 / 255, 20 / 255]


def load_pairs(n: int, first: int = 0) -> list[tuple[str, np.ndarray, np.ndarray]]:
    out = []
    for pair in list(find_pairs(DATA / "tno"))[first : first + n]:
        ir = to_float(read_image(pair.ir_path, gray_if_equal=True), dtype=np.float64)[0]
        vis = to_float(read_image(pair.vis_path, gray_if_equal=True), dtype=np.float64)[0]
        out.append((pair.name, ir, vis))
    return out


def score(pairs, iters: int, **params) -> dict[float, tuple[float, float]]:
    result = {}
    for sigma in NOISE:
        psnr, ssim = [], []
        for i, (_, ir, vis) in enumerate(pairs):
            clean_anchor = hifm.anchor(ir, vis)
            noisy = gaussian_noise(vis, sigma, seed=100 + i) if sigma > 0 else vis
            y = hifm.solve(ir, noisy, iters=iters, dtype="float64", **params)
            psnr.append(peak_signal_noise_ratio(clean_anchor, y, data_range=1.0))
            ssim.append(structural_similarity(clean_anchor, y, data_range=1.0))
        result[sigma] = (float(np.mean(psnr)), float(np.mean(ssim)))
    return result


def row(label: str, res: dict[float, tuple[float, float]]) -> str:
    cells = " | ".join(f"{res[s][0]:.2f} / {res[s][1]:.3f}" for s in NOISE)
    mean_psnr = np.mean([res[s][0] for s in NOISE])
    return f"| {label} | {cells} | {mean_psnr:.2f} |"


def header(first: str) -> str:
    cols = " | ".join(f"σ={round(s * 255)}/255 PSNR / SSIM" for s in NOISE)
    return f"| {first} | {cols} | mean PSNR |\n|---|" + "---|" * (len(NOISE) + 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--first", type=int, default=0, help="index of the first TNO pair (validation on unseen pairs)")
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--sweep", choices=["rho", "threshold", "kappa", "mu", "all"], default="all")
    args = ap.parse_args(argv)
    pairs = load_pairs(args.pairs, args.first)
    print(f"{len(pairs)} TNO pairs: {', '.join(n for n, _, _ in pairs)}; {args.iters} iterations\n")
    noisy_anchor = {}
    for sigma in NOISE:
        ps, ss = [], []
        for i, (_, ir, vis) in enumerate(pairs):
            noisy = gaussian_noise(vis, sigma, seed=100 + i) if sigma > 0 else vis
            ps.append(peak_signal_noise_ratio(hifm.anchor(ir, vis), hifm.anchor(ir, noisy), data_range=1.0) if sigma > 0 else np.inf)
            ss.append(structural_similarity(hifm.anchor(ir, vis), hifm.anchor(ir, noisy), data_range=1.0))
        noisy_anchor[sigma] = (float(np.mean(ps)), float(np.mean(ss)))
    print(header("setting"))
    print(row("anchor of the noisy pair (no solve)", noisy_anchor).replace("inf", "∞"))
    if args.sweep in ("rho", "all"):
        print("\n**ρ (= τ) at the default λ, μ = 0: objective gap after the given iterations vs 2000 iterations**\n")
        print("| ρ | gap after 50 | gap after 100 | gap after 200 |\n|---|---|---|---|")
        _, ir, vis = pairs[0]
        noisy = gaussian_noise(vis, 10 / 255, seed=7)
        for rho in (0.25, 0.5, 1.0, 2.0, 4.0):
            _, info = hifm.solve(ir, noisy, iters=2000, dtype="float64", rho=rho, tau=rho, mu=0.0, return_info=True)
            obj = np.asarray(info.history.objective)
            best = obj.min()
            gaps = [(obj[n - 1] - best) / best for n in (50, 100, 200)]
            print(f"| {rho} | " + " | ".join(f"{g:.1e}" for g in gaps) + " |", flush=True)
    if args.sweep in ("threshold", "all"):
        print("\n**fixed threshold t = λ/ρ (μ = 0) and the mean noise estimate σ̂ of the anchor**\n")
        sig = {}
        for sigma in NOISE:
            vals = []
            for i, (_, ir, vis) in enumerate(pairs):
                noisy = gaussian_noise(vis, sigma, seed=100 + i) if sigma > 0 else vis
                vals.append(hifm.estimate_noise(hifm.anchor(ir, noisy)))
            sig[sigma] = float(np.mean(vals))
        print("| noise σ | " + " | ".join(f"{round(s * 255)}/255" for s in NOISE) + " |")
        print("|---|" + "---|" * len(NOISE))
        print("| mean σ̂(M) | " + " | ".join(f"{sig[s]:.4f}" for s in NOISE) + " |\n")
        print(header("t"))
        for t in (0.001, 0.003, 0.006, 0.01, 0.015, 0.02, 0.03, 0.045, 0.06):
            print(row(f"{t}", score(pairs, args.iters, lam=t, mu=0.0)), flush=True)
    if args.sweep in ("kappa", "all"):
        print("\n**noise gain κ of λ = max(λ_min, κ(σ̂ − σ₀)) (= t at ρ = 1), σ₀ = 0.006, μ = 0**\n")
        print(header("κ"))
        for kappa in (0.5, 0.7, 0.9):
            print(row(f"{kappa}", score(pairs, args.iters, noise_gain=kappa, mu=0.0)), flush=True)
    if args.sweep in ("mu", "all"):
        print("\n**Lorentzian weight μ and θ (κ from the sweep above)**\n")
        print(header("μ, θ"))
        for mu, theta in itertools.product((0.0, 0.002, 0.01, 0.05), (30.0, 400.0)):
            if mu == 0.0 and theta != 30.0:
                continue
            print(row(f"μ={mu}, θ={theta}", score(pairs, args.iters, mu=mu, theta=theta)), flush=True)
    return 0


if __name__ == "__main__":
    t0 = time.time()
    code = main()
    print(f"\n({time.time() - t0:.0f} s)")
    sys.exit(code)

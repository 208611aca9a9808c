"""DeRUN at initialisation against hifm.solve on whole real pairs (docs/derun.md "Equivalence with the solver").

``python experiments/equivalence_table.py [--stages 9]`` prints a Markdown table: for each pair
(clean, and with Gaussian noise σ = 10/255 on the second source), the solver's threshold t and the
largest difference max |DeRUN.from_hifm(params)(A, B) − hifm.solve(A, B, iters=N, params)| in
float64 for the default model (source target), the supplement's model (target = anchor) and the
value-map E-step.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import common  # noqa: E402

PAIRS = [("tno", "01"), ("tno", "07"), ("tno", "13"), ("roadscene-test", "FLIR_07809"), ("roadscene-test", "FLIR_00211"),
         ("mri-ct", "13"), ("mri-pet", "11")]
MODELS = {"default (source target)": {}, "target = anchor": {"target": "anchor"}, "value-map E-step": {"shrink": "value_map"}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stages", type=int, default=9)
    args = ap.parse_args(argv)
    import torch

    import hifm
    from hifm.params import HIFMParams
    from unrolled import DeRUN

    torch.set_num_threads(1)
    rows = []
    for noisy in (False, True):
        for key, name in PAIRS:
            s = common.load_dataset(key, names=[name])[0]
            a, b = common.luminance(s, "float64")
            if noisy:
                b = np.clip(b + np.random.default_rng(0).normal(0, 10 / 255, b.shape), 0, 1)
            cells = []
            t = None
            for kw in MODELS.values():
                p = HIFMParams(dtype="float64", **kw)
                ref, info = hifm.solve(a, b, iters=args.stages, params=p, return_info=True)
                t = info.threshold if t is None else t
                net = DeRUN.from_hifm(p, stages=args.stages, dtype=torch.float64)
                with torch.no_grad():
                    out = net(torch.from_numpy(a), torch.from_numpy(b)).numpy()
                cells.append(f"{np.abs(np.clip(out, 0, 1) - ref).max():.1e}")
            label = f"{key}/{name}" + (", noise σ = 10/255 on B" if noisy else "")
            rows.append(f"| {label} | {a.shape[0]}×{a.shape[1]} | {t:.4f} | " + " | ".join(cells) + " |")
            print(rows[-1], flush=True)
    print()
    print("| pair | size | t (solver) | " + " | ".join(f"max \\|Δ\\|, {m}" for m in MODELS) + " |")
    print("|---|---|---|" + "---|" * len(MODELS))
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

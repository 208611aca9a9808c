"""DeRUN cost at 640×480 (DESIGN §7, §12): parameters, FLOPs, CPU time on one thread, training rate.

Prints a Markdown table for N = 5, 7, 9, 11 stages:

* parameters (learned);
* GFLOPs of one 640×480 pair: ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and
  matrix products: the PWSM extractor and the head R, including the rows their row bands
  recompute, and the filter-bank convolutions / tap products of ∇ and ∇ᵀ) plus
  the two things that counter ignores, estimated from the dispatched operators: FFTs
  (2.5·n·log₂n per real transform of n points) and element-wise arithmetic (1 flop per
  output element of every other arithmetic operator; copies, rolls and gathers are free);
* CPU time per pair with one thread: the first call at a size (it builds the Y-step's D
  from the learned filters) and the steady state (D cached per size, as the solver does);
* training steps/s at 128×128 crops (batch 4, the default loss with deep supervision), one thread;
* in the same run, DenseFuse's architecture (``experiments/peers.py``, random weights): its
  parameters, counted GFLOPs and time, before and after the DeRUN rows, and each DeRUN row's
  time as a fraction of it (DESIGN §12's 1.25 s for DenseFuse was measured on another machine).

The machine is shared: compare ratios within one run (the load average is printed).

    python experiments/bench_network.py            # the table
    python experiments/bench_network.py --quick    # small sizes, a smoke test
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from unrolled import DeRUN  # noqa: E402
from peers import DenseFuse  # noqa: E402  (experiments/peers.py)
from unrolled.losses import FusionLoss  # noqa: E402

_FFT_OPS = {"_fft_r2c", "_fft_c2r", "_fft_c2c"}
#: Operators that move or make data without arithmetic (not counted as flops).
_MOVES = {"view", "_unsafe_view", "reshape", "expand", "as_strided", "slice", "select", "unsqueeze", "squeeze",
          "permute", "t", "transpose", "detach", "alias", "empty", "zeros", "new_zeros", "zeros_like", "new_full",
          "full", "arange", "rand", "clone", "copy_", "lift_fresh", "_to_copy", "narrow", "unbind", "split", "roll",
          "cat", "stack", "index_select", "take", "view_as_real", "_local_scalar_dense", "sort", "fill_"}


class OpCounter(TorchDispatchMode):
    """FFT flops (2.5 n log₂ n per transform) and element-wise output elements of the ops
    that :class:`FlopCounterMode` does not count."""

    def __init__(self, counted: set[str]):
        super().__init__()
        self.counted = counted
        self.fft = 0.0
        self.elementwise = 0.0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if name in _FFT_OPS:
            x = args[0]
            dims = args[1]
            n_tr = math.prod(x.shape[d] for d in dims) if name != "_fft_c2r" else math.prod(out.shape[d] for d in dims)
            batch = x.numel() / max(math.prod(x.shape[d] for d in dims), 1)
            self.fft += 2.5 * batch * n_tr * math.log2(max(n_tr, 2))
        elif name not in self.counted and isinstance(out, torch.Tensor) and out.is_floating_point():
            if name not in _MOVES:
                self.elementwise += out.numel()
        return out


def count_flops(net: torch.nn.Module, a: torch.Tensor, b: torch.Tensor) -> tuple[float, float, float]:
    """(counter GFLOPs, FFT GFLOPs, element-wise GFLOPs) of one forward pass (D built, first call)."""
    fc = FlopCounterMode(display=False)
    counted = {k.__name__ if hasattr(k, "__name__") else str(k) for k in fc.flop_registry}
    counted = {c.split(".")[-1] for c in counted}
    oc = OpCounter(counted)
    with torch.no_grad(), fc, oc:
        net(a, b)
    return fc.get_total_flops() / 1e9, oc.fft / 1e9, oc.elementwise / 1e9


def time_forward(net: torch.nn.Module, a: torch.Tensor, b: torch.Tensor, repeats: int) -> tuple[float, float]:
    """(first call, median steady-state) seconds per pair."""
    for st in getattr(net, "stages", ()):
        st._denom_cache = None
    with torch.no_grad():
        t0 = time.perf_counter()
        net(a, b)
        first = time.perf_counter() - t0
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            net(a, b)
            times.append(time.perf_counter() - t0)
    return first, statistics.median(times)


def train_rate(stages: int, crop: int, batch: int, steps: int) -> float:
    torch.manual_seed(0)
    net = DeRUN(stages=stages)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    loss_fn = FusionLoss()
    rng = np.random.default_rng(0)
    a = torch.tensor(rng.random((batch, crop, crop)), dtype=torch.float32)
    b = torch.tensor(rng.random((batch, crop, crop)), dtype=torch.float32)

    def step() -> None:
        res = net(a, b, return_all=True)
        loss, _ = loss_fn(res.stages, res.anchor, a, b)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--stages", type=int, nargs="*", default=[5, 7, 9, 11])
    p.add_argument("--size", default="480x640", help="H×W of the pair (default 480x640)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--train-steps", type=int, default=3)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--quick", action="store_true", help="96×128, 1 repeat, 1 training step")
    args = p.parse_args(argv)
    if args.quick:
        args.size, args.repeats, args.train_steps, args.crop, args.stages = "96x128", 1, 1, 48, [3, 5]
    h, w = (int(x) for x in args.size.lower().split("x"))
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    a = torch.tensor(rng.random((h, w)), dtype=torch.float32)
    b = torch.tensor(rng.random((h, w)), dtype=torch.float32)
    print(f"DeRUN at {h}×{w}, float32, one thread (torch {torch.__version__}); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print()
    # the lightest deep peer, timed here: DESIGN §12's seconds come from another machine
    torch.manual_seed(0)
    dense = DenseFuse().eval()
    a4, b4 = a[None, None], b[None, None]  # DenseFuse takes (N, 1, H, W)
    dense_flops = count_flops(dense, a4, b4)[0]
    dense_params = sum(p.numel() for p in dense.parameters())
    dense_first, dense_steady = time_forward(dense, a4, b4, args.repeats)
    print("| N | parameters | GFLOPs (conv + matmul) | + FFT | + element-wise | total GFLOPs | "
          "CPU s/pair, first call | CPU s/pair, steady | steady ÷ DenseFuse | train steps/s (128², batch 4) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in args.stages:
        torch.manual_seed(0)
        net = DeRUN(stages=n).eval()
        params = net.count_parameters()["total"]
        g_mm, g_fft, g_ew = count_flops(net, a, b)
        first, steady = time_forward(net, a, b, args.repeats)
        rate = train_rate(n, args.crop, args.batch, args.train_steps)
        print(f"| {n} | {params:,} | {g_mm:.1f} | {g_fft:.2f} | {g_ew:.2f} | {g_mm + g_fft + g_ew:.1f} | "
              f"{first:.2f} | {steady:.2f} | {steady / dense_steady:.2f} | {rate:.2f} |", flush=True)
    dense_again = time_forward(dense, a4, b4, args.repeats)[1]  # the load may have changed meanwhile
    print(f"| DenseFuse (architecture, random weights; experiments/peers.py) | {dense_params:,} | "
          f"{dense_flops:.1f} | – | – | {dense_flops:.1f} | {dense_first:.2f} | "
          f"{dense_steady:.2f} (again at the end: {dense_again:.2f}) | 1.00 | – |")
    print()
    print("Reference (DESIGN §12, one thread, 640×480, on its reference machine): DenseFuse 54 GFLOPs, "
          "1.25 s; CDDFuse 1105 GFLOPs, 54 s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

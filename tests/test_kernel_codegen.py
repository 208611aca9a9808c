"""The compiled kernels keep the code shape that makes them fast (no timing here).

Two regressions were found by reading the LLVM IR (docs/performance.md): with Numba's default
error model every division carries a zero-divisor branch, and the μ > 0 loop of the solver's
row kernel stayed scalar; an index that may be negative as far as Numba knows (``q + h - j``)
carries a wrap-around select, and the metric filters loaded through gather instructions.
Each test compiles the kernel's Python function afresh with the kernel's own options (the
on-disk cache holds no IR) and inspects the IR.
"""
from __future__ import annotations

import re

import numba
import numpy as np

from hifm import _fused_diff
from hifm.metrics import _filters


def _recompiled(dispatcher):
    opts = {k: v for k, v in dispatcher.targetoptions.items() if k not in ("cache", "nopython")}
    return numba.njit(**opts)(dispatcher.py_func)


def _llvm_ir(fn) -> str:
    return "\n".join(fn.inspect_llvm().values())


def test_row_kernel_divides_in_vectors():
    """The Lorentzian H-step's division (μ > 0) is compiled as a vector division."""
    kernel = _recompiled(_fused_diff.diff_iteration)
    h, w = 6, 40
    rng = np.random.default_rng(0)

    def planes(*shape):
        return rng.random(shape).astype(np.float32)

    c = _fused_diff.constants(0.01, 1.0, 1.0, 1.0, 1.0, 0.1, 500.0, 0.5, 0.01, np.float32)
    kernel(planes(h, w), planes(h, w), planes(2, h, w), planes(2, h, w), planes(2, h, w), planes(h, w), c, False,
           planes(h, w), np.zeros(7), False, planes(2, h, w), True)
    ir = _llvm_ir(kernel)
    assert re.search(r"fdiv[^\n]*<\d+ x float>", ir), "the H-step division is scalar only (error model?)"


def test_metric_filters_load_without_gathers():
    """The separable filter and the 3×3 correlation read contiguous rows: no gathers, and
    vector arithmetic in the filter loops."""
    x = np.random.default_rng(1).random((20, 40))
    sep = _recompiled(_filters._sep_valid_kernel)
    g = np.array([0.1, 0.2, 0.4, 0.2, 0.1])
    sep(x, g, 1, np.empty((16, 36)))
    corr = _recompiled(_filters._corr3_kernel)
    du = np.array([-1, 0, 1], dtype=np.int64)
    corr(x, np.array([1.0, 2.0, 1.0]), du, du.copy(), 1, np.empty_like(x))
    for fn in (sep, corr):
        ir = _llvm_ir(fn)
        assert "masked.gather" not in ir
        assert re.search(r"f(add|mul) [^\n]*<\d+ x double>", ir)

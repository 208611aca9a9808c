"""Shrinkage operators of the E-step (DESIGN §2.1 step 2, §2.2, (S7)–(S8)).

Both run unchanged on NumPy, CuPy and torch arrays (and torch autograd).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import backend

__all__ = [
    "VALUE_MAP_POINTS",
    "VALUE_MAP_STEP",
    "soft_threshold",
    "control_points",
    "value_map_from_threshold",
    "value_map_shrink",
]

#: I_t, the number of control points of a value map (§2.2).
VALUE_MAP_POINTS = 101
#: V, the spacing of the control points; T = (I_t − 1)·V / 2 = 1.
VALUE_MAP_STEP = 0.02


def soft_threshold(a: Any, t: Any) -> Any:
    """Soft threshold S_t(a) = sign(a)·max(|a| − t, 0), the prox of t·|·| (S7).

    Written as ``a − clip(a, −t, t)`` so that ``t`` may be a scalar, an array
    broadcasting against ``a`` or a torch tensor with a gradient.
    """
    xp = backend.get_xp(a)
    return a - xp.clip(a, -t, t)


def control_points(n: int = VALUE_MAP_POINTS, step: float = VALUE_MAP_STEP) -> np.ndarray:
    """p_i = −T + (i − 1)·V, i = 1…I_t, with T = (I_t − 1)·V/2 (float64)."""
    half = (n - 1) * step / 2.0
    return -half + step * np.arange(n, dtype=np.float64)


def value_map_from_threshold(t: "float | np.ndarray", n: int = VALUE_MAP_POINTS, step: float = VALUE_MAP_STEP) -> np.ndarray:
    """Values q_i = S_t(p_i): the value map that interpolates the soft threshold t.

    It equals S_t exactly when t is a multiple of V; otherwise it differs only on
    the two segments holding ±t, by at most V/4.

    ``t`` may be a scalar or a 1-D array (one map per filter): the result is
    ``(n,)`` or ``(len(t), n)`` float64.
    """
    p = control_points(n, step)
    t_arr = np.asarray(t, dtype=np.float64)
    q = p - np.clip(p, -t_arr[..., None], t_arr[..., None])
    return q


def value_map_shrink(a: Any, q: Any, step: float = VALUE_MAP_STEP) -> Any:
    """Piecewise-linear shrinkage S(a) through (p_i, q_i), slope 1 outside (S8, §2.2).

    ``q`` has shape ``(..., I_t)``; its leading axes broadcast against the
    leading axes of ``a`` (for a bank of L filters: ``a`` is ``(..., L, H, W)``
    and ``q`` is ``(L, I_t)``).  With p₁ = −T:

        k = clip(⌊(a − p₁)/V⌋, 0, I_t − 2),   r = (a − p_k)/V,
        S(a) = q_k + r·(q_{k+1} − q_k)

    which for a outside [p₁, p_{I_t}] is the slope-1 continuation
    (a − p₁ + q₁ below, a − p_{I_t} + q_{I_t} above), because there
    r < 0 or r > 1 and the formula is replaced by that line.  Differentiable in
    both ``a`` and ``q`` (torch).
    """
    xp = backend.get_xp(a, q)
    n = q.shape[-1]
    p1 = -(n - 1) * step / 2.0
    pn = -p1
    pos = (a - p1) / step
    k_float = xp.clip(xp.floor(pos), 0, n - 2)
    k = backend.to_index(k_float)
    r = pos - k_float
    # Gather q_k and q_{k+1} per element: flatten q's leading axes against a's.
    lead = q.shape[:-1]
    if len(lead) == 0:
        qk, qk1 = q[k], q[k + 1]
    else:
        nl = int(np.prod(lead))
        q2 = q.reshape(nl, n)
        # a is (..., *lead, H, W): a row index of shape (*lead, 1, 1) broadcasts against k
        # in the advanced indexing (no per-pixel index array is built).
        row = backend.to_index(backend.asarray_like(np.arange(nl).reshape(tuple(lead) + (1, 1)), k, dtype=None))
        qk = q2[row, k]
        qk1 = q2[row, k + 1]
    inside = qk + r * (qk1 - qk)
    below = a - p1 + q[..., :1].reshape(lead + (1, 1)) if lead else a - p1 + q[0]
    above = a - pn + q[..., -1:].reshape(lead + (1, 1)) if lead else a - pn + q[-1]
    out = xp.where(a < p1, below, inside)
    return xp.where(a > pn, above, out)

"""Derive the polynomial of the branch-free log2 in ``hifm/metrics/_fmi_lanes.py`` (``_LOG_Q``).

    python tools/fit_log2_polynomial.py [--degree 6]

With x = m 2^e, m in [sqrt(1/2), sqrt(2)), s = (m - 1)/(m + 1) and z = s^2, the identity
ln m = 2 atanh(s) = 2 s (1 + z Q(z)) holds with Q(z) = (atanh(s)/s - 1)/z = 1/3 + z/5 + z^2/7 + ...
Q is interpolated at the Chebyshev nodes of [0, z_max], z_max = ((sqrt 2 - 1)/(sqrt 2 + 1))^2,
in 50-digit arithmetic (mpmath, installed with PyTorch's SymPy), the monomial coefficients
are rounded to float64, and the largest error of 2 s (1 + z Q(z)) against 2 atanh(s) is
measured on 2001 evenly spaced z with those rounded coefficients.
"""
from __future__ import annotations

import argparse

import mpmath as mp


def fit(degree: int) -> tuple[list[float], mp.mpf]:
    """(float64 coefficients of z^0 .. z^degree, largest absolute error in ln m)."""
    mp.mp.dps = 50
    s_max = (mp.sqrt(2) - 1) / (mp.sqrt(2) + 1)
    z_max = s_max ** 2

    def q(z: mp.mpf) -> mp.mpf:
        if z == 0:
            return mp.mpf(1) / 3
        s = mp.sqrt(z)
        return (mp.atanh(s) / s - 1) / z

    n = degree + 1
    nodes = [z_max / 2 * (1 - mp.cos(mp.pi * (2 * k + 1) / (2 * n))) for k in range(n)]
    vander = mp.matrix([[x ** j for j in range(n)] for x in nodes])
    coef = [float(c) for c in mp.lu_solve(vander, mp.matrix([q(x) for x in nodes]))]
    worst = mp.mpf(0)
    for k in range(2001):
        z = z_max * k / 2000
        s = mp.sqrt(z)
        p = mp.mpf(0)
        for c in reversed(coef):
            p = p * z + mp.mpf(c)
        worst = max(worst, abs(2 * s * (1 + z * p) - 2 * mp.atanh(s)))
    return coef, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--degree", type=int, default=6)
    args = parser.parse_args()
    coef, worst = fit(args.degree)
    print("_LOG_Q = (" + ", ".join(repr(c) for c in coef) + ")")
    print(f"largest |2 s (1 + z Q(z)) - ln m| with these float64 coefficients: {mp.nstr(worst, 3)}")


if __name__ == "__main__":
    main()

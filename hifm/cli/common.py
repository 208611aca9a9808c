"""What every ``hifm`` command shares: exit codes, one-line errors, option checks.

An error caused by the user's input ends a command with one line on stderr,
``hifm COMMAND: error: WHAT``, and a non-zero exit status — never a traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import HIFMError

__all__ = [
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_USAGE",
    "EXIT_INTERRUPTED",
    "one_line",
    "print_error",
    "run_guarded",
    "sigterm_as_interrupt",
    "PARAM_OPTIONS",
    "add_param_options",
    "params_from_args",
]

EXIT_OK = 0
EXIT_FAILED = 1
"""The command ran but failed (bad input file, bad parameter, incomplete batch)."""
EXIT_USAGE = 2
"""The command could not start (no command, missing option, unusable folder)."""
EXIT_INTERRUPTED = 130


def one_line(message: object) -> str:
    """``message`` as text with every run of white space (newlines too) made one space."""
    return " ".join(str(message).split())


def print_error(command: str, message: object) -> None:
    """Print ``hifm COMMAND: error: MESSAGE`` (one line) on stderr."""
    print(f"hifm {command}: error: {one_line(message)}", file=sys.stderr)


def run_guarded(
    command: str,
    func: Callable[[argparse.Namespace], int | None],
    args: argparse.Namespace,
    *,
    errors: tuple[type[BaseException], ...] = (HIFMError, ValueError, OSError),
    error_status: int = EXIT_FAILED,
    interrupted: str = "interrupted",
) -> int:
    """Run ``func(args)``; an expected error becomes one stderr line and ``error_status``.

    Ctrl-C (or SIGTERM, see :func:`sigterm_as_interrupt`) prints ``hifm COMMAND: INTERRUPTED``
    and returns 130.
    """
    try:
        return int(func(args) or 0)
    except errors as exc:
        print_error(command, exc)
        return error_status
    except KeyboardInterrupt:
        print(f"hifm {command}: {interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt, so worker pools and Dask clusters are shut down cleanly."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ------------------------------------------------------------------ model parameters
PARAM_OPTIONS: dict[str, tuple[str, type, str]] = {
    # option: (field of HIFMParams, type, help)
    "--lam": ("lam", float, "λ, weight of |∇Y| (default: noise-adaptive λ = max(λ_min, κ(σ̂ − σ₀)))"),
    "--noise-gain": ("noise_gain", float, "κ of the noise-adaptive λ = max(λ_min, κ(σ̂ − σ₀))"),
    "--noise-offset": ("noise_offset", float, "σ₀, the noise estimate that texture alone gives on clean images"),
    "--noise-floor": ("noise_floor", float, "λ_min, the weight on clean images"),
    "--rho": ("rho", float, "ρ, ADMM penalty of E = ∇Y"),
    "--tau": ("tau", float, "τ, ADMM penalty of H = ∇(Y − M)"),
    "--mu": ("mu", float, "μ, weight of the Lorentzian prior on ∇(Y − M) (0: convex model)"),
    "--theta": ("theta", float, "θ of log(1 + θa²)"),
    "--shrink": ("shrink", str, "E-step: soft (exact prox of |·|) or value_map"),
    "--filters-l": ("filters_l", str, "bank of ∇_l: diff, diff4 or dct3"),
    "--filters-k": ("filters_k", str, "bank of ∇_k: diff, diff4 or dct3"),
    "--anchor": ("anchor", str, "anchor M: two_scale, mean or max"),
    "--dtype": ("dtype", str, "float32 (default) or float64"),
    "--workers": ("workers", int, "threads for the FFT (default 1)"),
}


def add_param_options(p: argparse.ArgumentParser) -> None:
    """Add the HIFM model parameters (``--lam``, ``--rho``, ...) as an option group."""
    g = p.add_argument_group("HIFM model parameters (docs/parameters.md)")
    for opt, (dest, typ, help_) in PARAM_OPTIONS.items():
        g.add_argument(opt, dest=f"param_{dest}", type=typ, default=None, help=help_)


def params_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The model parameters given on the command line, by field name."""
    return {
        dest: getattr(args, f"param_{dest}")
        for dest, _t, _h in PARAM_OPTIONS.values()
        if getattr(args, f"param_{dest}", None) is not None
    }

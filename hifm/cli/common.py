"""What every ``hifm`` command shares: exit codes, one-line errors, option checks.

An error caused by the user's input ends a command with one line on stderr,
``hifm COMMAND: error: WHAT``, and a non-zero exit status — never a traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import re
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
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
    "add_derun_options",
    "check_derun_options",
    "guess_task",
    "add_thermal_options",
    "refuse_options",
    "check_outputs_are_not_inputs",
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
    # option: (field of HIFMParams, type, help); the metavar is the option's name in capitals
    "--lam": ("lam", float, "λ, weight of |∇Y| (default: noise-adaptive λ = max(λ_min, κ(σ̂ − σ₀)))"),
    "--noise-gain": ("noise_gain", float, "κ of the noise-adaptive λ = max(λ_min, κ(σ̂ − σ₀))"),
    "--noise-offset": ("noise_offset", float, "σ₀, the noise estimate that texture alone gives on clean images"),
    "--noise-floor": ("noise_floor", float, "λ_min, the weight on clean images"),
    "--rho": ("rho", float, "ρ, ADMM penalty of E = ∇Y"),
    "--tau": ("tau", float, "τ, ADMM penalty of H = ∇Y − T"),
    "--mu": ("mu", float, "μ, weight of the Lorentzian prior on ∇Y − T (0: convex model)"),
    "--theta": ("theta", float, "θ of log(1 + θa²)"),
    "--shrink": ("shrink", str, "E-step: soft (exact prox of |·|) or value_map"),
    "--filters-l": ("filters_l", str, "bank of ∇_l: diff, diff4 or dct3"),
    "--filters-k": ("filters_k", str, "bank of ∇_k: diff, diff4 or dct3"),
    "--anchor": ("anchor", str, "anchor M: salient, two_scale, mean or max "
                                "(default: salient; two_scale for --task mif)"),
    "--target": ("target", str, "gradient target T of the Lorentzian prior: sources (default) or anchor (the supplement's ∇M)"),
    "--dtype": ("dtype", str, "float32 (default) or float64"),
    "--workers": ("workers", int, "threads for the FFT (default 1)"),
}


def add_param_options(p: argparse.ArgumentParser) -> None:
    """Add the HIFM model parameters (``--lam``, ``--rho``, ...) as an option group."""
    g = p.add_argument_group("HIFM model parameters (docs/parameters.md)")
    for opt, (dest, typ, help_) in PARAM_OPTIONS.items():
        g.add_argument(opt, dest=f"param_{dest}", type=typ, default=None, help=help_,
                       metavar=opt.lstrip("-").replace("-", "_").upper())


def params_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The model parameters given on the command line, by field name."""
    return {
        dest: getattr(args, f"param_{dest}")
        for dest, _t, _h in PARAM_OPTIONS.values()
        if getattr(args, f"param_{dest}", None) is not None
    }


# ------------------------------------------------------------------ DeRUN options
MEDICAL_TOKENS = frozenset({"mri", "ct", "pet", "spect"})


def add_derun_options(p: argparse.ArgumentParser, *, guess: str, task_sets_anchor: bool = True) -> None:
    """Add ``--task`` and ``--weights``, ``--device`` (used with ``--method derun``).

    ``guess`` completes the help of ``--task``: how the command picks the task when it is not given.
    With ``task_sets_anchor`` the task also picks the anchor of ``--method anchor/hifm``
    (:data:`hifm.anchors.TASK_ANCHORS`); otherwise it only picks DeRUN's shipped weights.
    """
    g = p.add_argument_group("DeRUN network (--method derun)")
    if task_sets_anchor:
        p.add_argument("--task", choices=["ivf", "mif"], default=None,
                       help="ivf (infrared-visible) or mif (medical): the shipped DeRUN weights, and the anchor of "
                            f"--method anchor/hifm when --anchor is not given (mif: two_scale); default: {guess}")
    else:
        g.add_argument("--task", choices=["ivf", "mif"], default=None,
                       help=f"shipped weights: ivf (infrared-visible) or mif (medical); default: {guess}")
    g.add_argument("--weights", metavar="PATH",
                   help="DeRUN weights JSON, e.g. from 'python -m unrolled.weights export' "
                        "(default: the shipped weights of --task)")
    g.add_argument("--device", default="cpu", metavar="DEVICE", help="cpu, cuda or cuda:N (default cpu)")


def check_derun_options(args: argparse.Namespace) -> None:
    """``--weights``/``--device`` belong to ``--method derun``: say so instead of ignoring them."""
    if getattr(args, "method", None) == "derun":
        if args.weights is not None and not Path(args.weights).exists():
            raise HIFMError(f"--weights: '{args.weights}' not found")
        return
    given = ["--weights"] if args.weights is not None else []
    if getattr(args, "device", "cpu") != "cpu":
        given.append("--device")
    if given:
        verb = "applies" if len(given) == 1 else "apply"
        raise HIFMError(f"{', '.join(given)} {verb} to --method derun only (this run uses --method {args.method})")


def guess_task(*paths: str | Path) -> tuple[str, str]:
    """``("mif", why)`` when a file or folder name of ``paths`` says MRI, CT, PET or SPECT, else ``("ivf", why)``."""
    for path in paths:
        p = Path(path)
        for part in [p.stem, *(q.name for q in p.parents)][:4]:
            tokens = {t for t in re.split(r"[^a-z0-9]+", part.lower()) if t}
            found = tokens & MEDICAL_TOKENS
            if found:
                return "mif", f"'{part}' names {'/'.join(sorted(found)).upper()}"
    return "ivf", "no MRI/CT/PET/SPECT in the file or folder names"


# ------------------------------------------------------------------ thermal input
def add_thermal_options(p: argparse.ArgumentParser) -> None:
    """Add ``--ir-range LO HI`` and ``--no-stretch`` (see :mod:`hifm.thermal`)."""
    g = p.add_argument_group("thermal input")
    g.add_argument("--ir-range", nargs=2, type=float, metavar=("LO", "HI"),
                   help="stretch the infrared samples from LO..HI (stored units, e.g. 0 16383) to the full range")
    g.add_argument("--no-stretch", action="store_true",
                   help="use a 16-bit infrared image as stored (default: when it uses only 10, 12 or 14 bits, "
                        "stretch it to the full range and say so)")


# ------------------------------------------------------------------ options and outputs
def refuse_options(given: dict[str, tuple[str, ...]], method: str) -> None:
    """Refuse, in one line, the options in ``given`` (option → the methods it applies to) that ``method`` does not use.

    ``hifm fuse --method derun --mu 0.1`` says ``--mu applies to --method hifm only`` instead of
    silently fusing without it; the same rule as :func:`hifm.fuse` (``OptionError``).
    """
    from ..errors import OptionError

    wrong = {opt: methods for opt, methods in given.items() if method not in methods}
    if not wrong:
        return
    groups: dict[tuple[str, ...], list[str]] = {}
    for opt, methods in wrong.items():
        groups.setdefault(methods, []).append(opt)
    parts = []
    for methods, opts in groups.items():
        verb = "applies" if len(opts) == 1 else "apply"
        parts.append(f"{', '.join(opts)} {verb} to --method {'/'.join(methods)} only")
    raise OptionError(f"{'; '.join(parts)} (this run uses --method {method})")


def check_outputs_are_not_inputs(outputs: dict[str, str | Path], inputs: dict[str, str | Path]) -> None:
    """Refuse an output that is one of the inputs, or another output, under any path.

    Files are compared by identity (device and inode, :func:`os.path.samefile`), so a hard
    link, a symbolic link, a bind mount or ``./x`` vs ``x`` is caught, not only an equal string.
    An output that is a folder is refused too (it needs a file name).
    """
    import os

    from ..errors import HIFMError, display_path

    def same(a: str | Path, b: str | Path) -> bool:
        try:
            return os.path.samefile(a, b)
        except OSError:
            return os.path.abspath(a) == os.path.abspath(b)

    items = list(outputs.items())
    for opt, out in items:
        if Path(out).is_dir():
            raise HIFMError(f"{opt} '{display_path(out)}' is a folder; give a file name such as "
                            f"'{display_path(Path(out) / 'fused.png')}'")
    for k, (opt, out) in enumerate(items):
        for role, path in inputs.items():
            if same(out, path):
                raise HIFMError(f"{opt} '{display_path(out)}' is the {role} input '{display_path(path)}' "
                                "(the same file); writing it would destroy the input — choose another name")
        for other_opt, other in items[k + 1:]:
            if same(out, other):
                raise HIFMError(f"{opt} and {other_opt} name the same file '{display_path(out)}'")

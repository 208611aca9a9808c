"""The command-line layer lives in hifm/cli/ and every documented entry point still starts."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import hifm

PACKAGE = Path(hifm.__file__).resolve().parent
# kept so that old ``python -m`` lines keep working; each only re-exports hifm.cli.*
COMPAT_ALIASES = {"batch_cli.py", "eval_cli.py", "bench.py"}


def test_core_modules_hold_no_argparse_code():
    offenders = [
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*.py")
        if "cli" not in p.relative_to(PACKAGE).parts[:1] and "argparse" in p.read_text(encoding="utf-8")
    ]
    assert offenders == [], f"argparse outside hifm/cli/: {offenders}"


def test_compat_aliases_only_reexport():
    for name in COMPAT_ALIASES:
        text = (PACKAGE / name).read_text(encoding="utf-8")
        assert "from .cli." in text and len(text.splitlines()) < 15, name


@pytest.mark.parametrize(
    "module", ["hifm.cli", "hifm.cli.fuse_dir", "hifm.cli.eval", "hifm.cli.bench", "hifm.batch_cli", "hifm.eval_cli",
               "hifm.bench"]
)
def test_python_m_entry_points_show_help(module):
    res = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("usage:")


def test_every_command_has_a_module_with_add_parser():
    from hifm.cli import COMMANDS, build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == {c.replace("_", "-") for c in COMMANDS}

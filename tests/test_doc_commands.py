"""Every command shown in README.md and docs/ parses with the current command line.

Commands are the lines of fenced code blocks and the inline code spans that start with
``hifm``, ``python -m MODULE``, ``torchrun ... -m MODULE``, ``python experiments/SCRIPT.py`` or
``python tools/SCRIPT.py`` (also after ``nice -n N``).
Each one is run up to its argument parsing and stopped there (``argparse.ArgumentParser.
parse_args`` is wrapped), so nothing is computed:

* every ``--option`` it uses must be an option of the (sub)command's parser, and a literal
  value of an option with choices must be one of them;
* a command from a code block must parse completely, after its synopsis notation is resolved
  (``[--opt X]`` optional parts kept, ``a|b`` alternatives → the first, ``...`` dropped).

A renamed or removed option or subcommand thus fails here until the documentation follows.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import re
import runpy
import shlex
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md")])
#: modules and scripts of this repository whose commands are checked
OUR_MODULES = ("hifm", "unrolled", "experiments")


@dataclass(frozen=True)
class Command:
    where: str  # file:line
    text: str
    fenced: bool  # from a code block (a whole command) or an inline span (maybe a fragment)


def _join_continuations(lines: list[str]) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    buf, start = "", 0
    for i, line in enumerate(lines):
        if not buf:
            start = i
        stripped = line.rstrip()
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        out.append((start, buf + stripped))
        buf = ""
    if buf:
        out.append((start, buf))
    return out


_START = re.compile(r"^\s*(?:\$\s+)?(?:nice(?: -n \d+)?\s+)?((?:hifm|python3?|torchrun|\.venv/bin/python|\.venv/bin/hifm)\s.*)$")


def _is_ours(text: str) -> bool:
    try:
        tokens = shlex.split(text, comments=True)
    except ValueError:
        return False
    if not tokens:
        return False
    head = Path(tokens[0]).name
    if head == "hifm":
        return True
    if "-m" in tokens[:-1]:
        return tokens[tokens.index("-m") + 1].split(".")[0] in OUR_MODULES
    return head.startswith("python") and len(tokens) > 1 and tokens[1].startswith(("experiments/", "tools/"))


def doc_commands() -> list[Command]:
    found: list[Command] = []
    for path in DOCS:
        rel = path.relative_to(REPO)
        lines = path.read_text(encoding="utf-8").splitlines()
        fenced, block = False, []
        for i, line in enumerate(lines):
            if line.lstrip().startswith("```"):
                if fenced:
                    for j, text in _join_continuations([x for _, x in block]):
                        m = _START.match(text)
                        if m and _is_ours(m.group(1)):
                            found.append(Command(f"{rel}:{block[j][0] + 1}", m.group(1), True))
                fenced, block = not fenced, []
                continue
            if fenced:
                block.append((i, line))
                continue
            for span in re.findall(r"`([^`]+)`", line):
                if _is_ours(span):
                    found.append(Command(f"{rel}:{i + 1}", span, False))
    return found


COMMANDS = doc_commands()


# ------------------------------------------------------------------ running up to the parser


class _Stop(Exception):
    """Raised by the wrapped parse_args: carries the parser and, after a full parse, the result."""

    def __init__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace | None):
        super().__init__()
        self.parser, self.namespace = parser, namespace


def _target(tokens: list[str]) -> tuple[str, str, list[str]]:
    """(kind, name, argv): ("hifm", "", args), ("module", name, args) or ("script", path, args)."""
    if Path(tokens[0]).name == "hifm":
        return "hifm", "", tokens[1:]
    if "-m" in tokens:
        k = tokens.index("-m")
        return "module", tokens[k + 1], tokens[k + 2 :]
    return "script", str(REPO / tokens[1]), tokens[2:]


def _run(tokens: list[str], parse: bool) -> _Stop:
    """Run the command until its parse_args: capture the parser (``parse=False``: before parsing)
    or the parsed namespace (``parse=True``; argparse errors become a pytest failure)."""
    original = argparse.ArgumentParser.parse_args

    def wrapped(self, args=None, namespace=None):  # noqa: ANN001
        if not parse:
            raise _Stop(self, None)
        return_value = original(self, args, namespace)
        raise _Stop(self, return_value)

    kind, name, argv = _target(tokens)
    saved_argv, saved_env = sys.argv[:], dict(os.environ)
    err = io.StringIO()
    argparse.ArgumentParser.parse_args = wrapped  # type: ignore[method-assign]
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            if kind == "hifm":
                main = metadata.entry_points(group="console_scripts")["hifm"].load()
                main(argv)
            elif kind == "module":
                sys.argv = [name, *argv]
                module = importlib.import_module(name)
                if callable(getattr(module, "main", None)):
                    module.main(argv)  # what `python -m` runs, without executing the module twice
                else:
                    runpy.run_module(name, run_name="__main__", alter_sys=True)
            else:
                sys.argv = [name, *argv]
                sys.path.insert(0, str(Path(name).parent))
                try:
                    runpy.run_path(name, run_name="__main__")
                finally:
                    sys.path.remove(str(Path(name).parent))
    except _Stop as stop:
        return stop
    except SystemExit as exc:
        pytest.fail(f"argparse refused it (exit {exc.code}): {err.getvalue().strip()}", pytrace=False)
    finally:
        argparse.ArgumentParser.parse_args = original  # type: ignore[method-assign]
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
    pytest.fail("the command never reached its argument parser", pytrace=False)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*(\.\w+)?$")  # ROOT, N, OUTDIR, IR.png


def _leaf_parser(tokens: list[str]) -> tuple[argparse.ArgumentParser, list[str]]:
    """The parser of the (sub)command and the tokens after the subcommand names."""
    kind, _, argv = _target(tokens)
    parser = _run(tokens[: len(tokens) - len(argv)] + argv[:1] if kind == "hifm" else tokens, parse=False).parser
    rest = list(argv)
    while rest and _subparsers(parser):
        subs = _subparsers(parser)
        if rest[0] not in subs:
            pytest.fail(f"unknown subcommand {rest[0]!r}; the parser has {sorted(subs)}", pytrace=False)
        parser = subs[rest.pop(0)]
    return parser, rest


def _check_options(parser: argparse.ArgumentParser, args: list[str]) -> None:
    actions = parser._option_string_actions
    for i, tok in enumerate(args):
        tok = tok.lstrip("[").rstrip("]")  # [--resume], [--iters N]
        if not tok.startswith("-") or re.fullmatch(r"-\d[\d.e-]*", tok) or tok in ("-", "--"):
            continue
        name = tok.split("=", 1)[0]
        assert name in actions, f"option {name!r} is not accepted; valid: {sorted(actions)}"
        action = actions[name]
        value = tok.split("=", 1)[1] if "=" in tok else (args[i + 1] if i + 1 < len(args) else None)
        if action.choices is not None and value is not None and action.nargs != 0:
            for alternative in value.strip("[]").split("|"):  # anchor|hifm: every alternative
                if not (PLACEHOLDER.match(alternative) or alternative.startswith("-") or "..." in alternative):
                    assert alternative in action.choices, (
                        f"{name} {alternative!r}: not one of {list(action.choices)}")


def _resolve_synopsis(tokens: list[str], parser: argparse.ArgumentParser) -> list[str] | None:
    """Synopsis notation → a concrete command line: ``X[:a|:b]`` → ``X``; optional parts
    ``[--opt X]`` kept, ``[X ...]`` dropped; ``a|b`` → ``a``; ``...`` as an option's value → ``x``,
    elsewhere dropped.  None when something is left that cannot be resolved."""
    out: list[str] = []
    group: list[str] | None = None
    for tok in tokens:
        tok = re.sub(r"^(\S+?)\[[^\[\]]*\]$", r"\1", tok)  # ROOT[:train|:test] → ROOT
        if group is None and tok.startswith("["):
            group, tok = [], tok[1:]
        if group is not None:
            closes = tok.endswith("]")
            group.append(tok[:-1] if closes else tok)
            if closes:
                if "..." not in group:
                    out.extend(group)
                group = None
            continue
        out.append(tok)
    if group is not None:
        return None
    resolved: list[str] = []
    for tok in out:
        if "|" in tok and not tok.startswith("-"):
            tok = tok.split("|")[0]
        if tok == "...":
            prev = parser._option_string_actions.get(resolved[-1]) if resolved else None
            if prev is not None and prev.nargs is None:
                resolved.append("x")
            continue
        resolved.append(tok)
    if any(re.search(r"[\[\]]|\.\.\.", t) for t in resolved):
        return None
    return resolved


def _placeholders_to_values(tokens: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """A placeholder (N, ROOT, ...) after an option of type int/float becomes 1."""
    out = list(tokens)
    for i in range(1, len(out)):
        prev = parser._option_string_actions.get(out[i - 1])
        if prev is not None and PLACEHOLDER.match(out[i]) and prev.type in (int, float):
            out[i] = "1"
    return out


def test_the_docs_show_commands():
    fenced = [c for c in COMMANDS if c.fenced]
    assert len(COMMANDS) >= 30 and len(fenced) >= 15, [c.text for c in COMMANDS]
    assert any(c.text.startswith("hifm train") for c in COMMANDS)
    assert any("-m unrolled.train" in c.text for c in COMMANDS)


def check_command(cmd: Command) -> bool:
    """Check one command; True when it was also parsed completely."""
    tokens = shlex.split(cmd.text.replace("…", "..."), comments=True)
    kind, name, argv = _target(tokens)
    if kind == "hifm" and (not argv or argv[0] in ("COMMAND", "...") or argv[0].endswith(":")):
        return False  # the package's name, a pattern ("hifm COMMAND --help", "hifm …"), an error message
    if "..." in name:
        return False  # a pattern: python experiments/….py
    parser, rest = _leaf_parser(tokens)
    _check_options(parser, rest)
    if not cmd.fenced:
        return False
    resolved = _resolve_synopsis(tokens, parser)
    if resolved is None:
        return False
    return _run(_placeholders_to_values(resolved, parser), parse=True).namespace is not None


@pytest.mark.parametrize("cmd", COMMANDS, ids=[f"{c.where} {c.text[:50]}" for c in COMMANDS])
def test_documented_command_parses(cmd: Command):
    check_command(cmd)


def test_block_commands_parse_completely():
    """Every command of a code block resolves to a complete command line (so it was parsed)."""
    incomplete = [c.text for c in COMMANDS if c.fenced and not check_command(c)]
    assert not incomplete, incomplete


# ------------------------------------------------------------------ the checker can fail


@pytest.mark.parametrize("text,message", [
    ("hifm fuse IR.png VIS.png -o out.png --lamda 0.1", "--lamda"),
    ("hifm fuse IR.png VIS.png -o out.png --method gtf", "gtf"),
    ("hifm fuse-dirs ROOT -o OUT", "fuse-dirs"),
    ("python -m unrolled.train --task ivf --stepz 4", "--stepz"),
    ("python -m unrolled.weights exports x.json --name ivf", "exports"),
    ("python experiments/ablation.py --jobz 2", "--jobz"),
    ("hifm fuse IR.png -o out.png", "argparse refused it"),  # a missing positional: only a full parse sees it
    ("hifm fuse-dir ROOT -o OUT [--method anchor|gtf]", "gtf"),
])
def test_the_checker_catches_a_stale_command(text, message):
    with pytest.raises((pytest.fail.Exception, AssertionError), match=re.escape(message)):
        check_command(Command("x", text, True))

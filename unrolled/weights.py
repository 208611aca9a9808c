"""Saving and loading DeRUN weights: safetensors plus a JSON with the configuration and a sha256.

A weights file ``NAME.safetensors`` (tensors only, no pickle) comes with ``NAME.json``::

    {"format": "derun-weights/1", "weights": "NAME.safetensors", "sha256": "<hex of the file>",
     "config": {...DeRUNConfig...}, "info": {...how it was made...}}

:func:`load_weights` refuses a file whose sha256 differs from the JSON's, with an
error that names both digests.  The shipped weights live in ``unrolled/weights/``
(:func:`load_pretrained`); their digests are also recorded in ``unrolled/weights/SHA256SUMS``.

Usage as a script::

    python -m unrolled.weights export runs/ivf/final.json --name my_ivf     # -> runs/weights/my_ivf.{json,safetensors}
    python -m unrolled.weights export CKPT --name ivf --out DIR [--force]   # another folder; --force to overwrite
    python -m unrolled.weights verify [WEIGHTS.json ...]                    # default: the shipped weights

``export`` never writes over an existing file, and never into ``unrolled/weights/`` (the
shipped weights), unless ``--force`` is given; a forced export into the package also
updates ``SHA256SUMS``. ``verify`` exits with status 1 when a file does not match its
recorded sha256 (or cannot be loaded).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import torch

from hifm.errors import InputError, display_path

from .derun import DeRUN, DeRUNConfig

__all__ = [
    "WEIGHTS_DIR",
    "TASKS",
    "WeightsError",
    "sha256_file",
    "save_weights",
    "load_weights",
    "load_pretrained",
    "pretrained_path",
]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SUMS_FILE = WEIGHTS_DIR / "SHA256SUMS"
"""``<sha256>  <file>`` for each shipped weights file (the ``sha256sum`` format)."""
TASKS = ("ivf", "mif")
DTYPES = ("float32", "float64")
MAX_STAGES = 100
"""Most stages a weights file may declare (the shipped networks have 9)."""
FORMAT = "derun-weights/1"
CHECKPOINT_FORMAT = "derun-checkpoint/1"
DEFAULT_EXPORT_DIR = Path("runs") / "weights"


class WeightsError(InputError):
    """A weights file (or training checkpoint) is missing, malformed or does not match its recorded sha256.

    An :class:`hifm.errors.InputError` (so also a ``ValueError``).
    """


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _json_path(path: str | Path) -> Path:
    p = Path(path)
    return p.with_suffix(".json") if p.suffix == ".safetensors" else p


def save_weights(model: DeRUN, path: str | Path, info: dict[str, Any] | None = None) -> Path:
    """Write ``path`` (.safetensors, the model's parameters and buffers) and its JSON; returns the JSON path."""
    from safetensors.torch import save_file

    module = getattr(model, "module", model)
    p = Path(path).with_suffix(".safetensors")
    p.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    save_file(tensors, str(p), metadata={"format": FORMAT})
    p.chmod(0o644)
    meta = {
        "format": FORMAT,
        "weights": p.name,
        "sha256": sha256_file(p),
        "dtype": str(module.dtype).replace("torch.", ""),
        "parameters": module.count_parameters(),
        "config": module.config.as_dict(),
        "info": info or {},
    }
    j = _json_path(p)
    j.write_text(json.dumps(meta, indent=1) + "\n")
    return j


def load_weights(
    path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> DeRUN:
    """A :class:`DeRUN` from ``NAME.json`` or ``NAME.safetensors`` (the other is found next to it).

    Raises:
        WeightsError: a file is missing, the JSON is malformed, the safetensors file's
            sha256 differs from the one recorded in the JSON, or (sha256 matching) a field or
            tensor is unusable: dtype, stages, tensor names or shapes, NaN/inf values.
    """
    j = _json_path(path)
    if j.is_dir():
        j = _json_in_folder(j)
    if not j.is_file():
        raise WeightsError(f"weights description '{j}' not found")
    jq = display_path(j)
    try:
        meta = json.loads(j.read_text())
    except (ValueError, OSError) as exc:
        raise WeightsError(f"'{jq}' is not a DeRUN weights description ({' '.join(str(exc).split())})") from None
    if isinstance(meta, dict) and meta.get("format") == CHECKPOINT_FORMAT:
        raise WeightsError(f"'{jq}' is a training checkpoint, not weights; export it with: "
                           f"python -m unrolled.weights export {jq} --name NAME")
    if not isinstance(meta, dict):
        raise WeightsError(f"'{jq}' is not a DeRUN weights description (a JSON object is expected)")
    try:
        name = meta["weights"]
        if not isinstance(name, str) or Path(name).name != name:
            raise ValueError(f"'weights' must be a file name next to the JSON, got {name!r}")
        weights = j.parent / name
        expected = meta["sha256"]
        config = DeRUNConfig.from_dict(meta["config"])
    except KeyError as exc:
        raise WeightsError(f"'{jq}' is not a DeRUN weights description (no field {exc})") from None
    except (ValueError, TypeError) as exc:
        raise WeightsError(f"'{jq}' is not a DeRUN weights description ({' '.join(str(exc).split())})") from None
    if not weights.is_file():
        raise WeightsError(f"weights file '{display_path(weights)}' (named in '{jq}') not found")
    actual = sha256_file(weights)
    if actual != expected:
        raise WeightsError(
            f"sha256 mismatch for '{display_path(weights)}': the file has {actual}, '{j.name}' expects {expected}; "
            "the weights are corrupt or were replaced — refusing to load them"
        )
    return _build_checked(config, meta.get("dtype", "float32"), weights, j.name).to(
        device=device, dtype=dtype or getattr(torch, meta.get("dtype", "float32"))).eval()


def _build_checked(config: DeRUNConfig, dtype_name: Any, weights: Path, described_by: str) -> DeRUN:
    """The network of ``config`` with the tensors of ``weights``, every field and tensor checked.

    A sha256 that matches says the file is the one the JSON describes, not that the JSON is
    sound: the dtype, the number of stages, every tensor's name and shape, and finiteness are
    checked here, each failure one :class:`WeightsError` line.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    wq = display_path(weights)
    if dtype_name not in DTYPES:
        raise WeightsError(f"'{described_by}': dtype must be one of {list(DTYPES)}, got {dtype_name!r}")
    if not isinstance(config.stages, int) or isinstance(config.stages, bool) or not 1 <= config.stages <= MAX_STAGES:
        raise WeightsError(f"'{described_by}': stages must be an integer in [1, {MAX_STAGES}], got {config.stages!r}")
    try:
        model = DeRUN(config, dtype=getattr(torch, dtype_name))
    except (ValueError, TypeError, KeyError, IndexError, RuntimeError) as exc:
        raise WeightsError(f"'{described_by}' holds an unusable configuration ({' '.join(str(exc).split())})") from None
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"'{wq}' is not a readable safetensors file ({' '.join(str(exc).split())})") from None
    _check_shapes(model, state, wq)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise WeightsError(f"'{wq}' does not fit the configuration in '{described_by}': {len(missing)} tensor(s) "
                           f"missing (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})")
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise WeightsError(f"'{wq}' holds NaN or infinite values in {len(bad)} tensor(s) (e.g. {bad[:3]}); "
                           "refusing to load them")
    return model


def _check_shapes(model: DeRUN, state: dict[str, torch.Tensor], where: str) -> None:
    """Refuse a tensor whose shape differs from the model's (torch would raise a multi-line error)."""
    own = model.state_dict()
    wrong = [f"{k} {tuple(v.shape)} instead of {tuple(own[k].shape)}" for k, v in state.items()
             if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if wrong:
        raise WeightsError(f"'{where}' has {len(wrong)} tensor(s) of the wrong shape: {'; '.join(wrong[:3])}")


def _json_in_folder(folder: Path) -> Path:
    """The weights JSON a folder stands for: its only ``*.json``, or a training run's ``final.json``."""
    if (folder / "final.json").is_file():
        return folder / "final.json"
    found = sorted(folder.glob("*.json"))
    if len(found) == 1:
        return found[0]
    raise WeightsError(f"'{folder}' is a folder; pass a weights JSON file ({len(found)} JSON file(s) in it)")


def pretrained_path(task: str) -> Path:
    """Path of the shipped JSON for ``task`` ("ivf" or "mif")."""
    if task not in TASKS:
        raise WeightsError(f"unknown task {task!r}; pretrained weights exist for {list(TASKS)}")
    return WEIGHTS_DIR / f"{task}.json"


def load_pretrained(task: str = "ivf", device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> DeRUN:
    """The shipped DeRUN for ``"ivf"`` (infrared–visible) or ``"mif"`` (medical), sha256-verified."""
    return load_weights(pretrained_path(task), device=device, dtype=dtype)


# ------------------------------------------------------------------------------ script
def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def read_sums(path: Path | None = None) -> dict[str, str]:
    """File name -> sha256 from a ``sha256sum``-style file (default :data:`SUMS_FILE`; empty when missing)."""
    path = SUMS_FILE if path is None else path
    if not path.is_file():
        return {}
    sums = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            sums[parts[1].lstrip("*")] = parts[0]
    return sums


def _write_sums(sums: dict[str, str], path: Path | None = None) -> None:
    path = SUMS_FILE if path is None else path
    path.write_text("".join(f"{digest}  {name}\n" for name, digest in sorted(sums.items())))


def export_checkpoint(checkpoint: str | Path, name: str, out: str | Path = DEFAULT_EXPORT_DIR,
                      force: bool = False) -> Path:
    """Write the model of a training checkpoint as weights ``OUT/NAME.{safetensors,json}``; returns the JSON path.

    Raises:
        WeightsError: ``name`` is not a plain file name; a target file exists, or ``out`` is the
            package's weights folder, and ``force`` is False; the checkpoint cannot be read.
    """
    from .train import load_checkpoint_model

    if not name or Path(name).name != name or name.startswith(".") or name.endswith((".json", ".safetensors")):
        raise WeightsError(f"--name must be a plain file name without extension, got {name!r}")
    out = Path(out)
    target = out / f"{name}.safetensors"
    shipped = _is_within(out, WEIGHTS_DIR)
    if not force:
        if shipped:
            raise WeightsError(f"'{out}' holds the shipped weights; export elsewhere (default {DEFAULT_EXPORT_DIR}/) "
                               "or pass --force to replace them")
        existing = [p for p in (target, target.with_suffix(".json")) if p.exists()]
        if existing:
            raise WeightsError(f"'{existing[0]}' exists; choose another --name or --out, or pass --force to overwrite it")
    model, meta = load_checkpoint_model(checkpoint)
    command = meta.get("command") or ""
    if command.startswith("train.py "):  # checkpoints written before command_line() existed
        command = "python -m unrolled.train " + command[len("train.py "):]
    info = {
        "task": name,
        "source_checkpoint": Path(checkpoint).name,
        "step": meta.get("step"),
        "train_config": meta.get("train_config"),
        "command": command,
        "seconds": meta.get("seconds"),
    }
    j = save_weights(model, target, info)
    if shipped:
        sums = read_sums()
        sums[target.name] = sha256_file(target)
        _write_sums(sums)
    return j


def verify(paths: Sequence[str | Path] | None = None) -> list[tuple[Path, str | None]]:
    """Check weights files; ``(json path, problem or None)`` for each.

    Without ``paths``: the shipped weights, each checked against both its JSON's sha256 and
    :data:`SUMS_FILE`, and loaded.
    """
    results: list[tuple[Path, str | None]] = []
    sums = read_sums() if not paths else {}
    targets = [Path(p) for p in paths] if paths else [pretrained_path(t) for t in TASKS]
    if not paths and not sums:
        results.append((SUMS_FILE, "the record of the shipped digests is missing"))
    for j in targets:
        problem = None
        try:
            model = load_weights(j)
            weights = _json_path(j).parent / json.loads(_json_path(j).read_text())["weights"]
            if not paths:
                recorded = sums.get(weights.name)
                actual = sha256_file(weights)
                if recorded is None:
                    problem = f"no digest recorded for '{weights.name}' in {SUMS_FILE.name}"
                elif recorded != actual:
                    problem = (f"'{weights}' has sha256 {actual}, {SUMS_FILE.name} records {recorded}: "
                               "the shipped weights were replaced or are corrupt")
            if problem is None:
                problem = None if model.count_parameters()["total"] > 0 else "no parameters"
        except (WeightsError, OSError, ValueError, KeyError) as exc:
            problem = " ".join(str(exc).split())
        results.append((j, problem))
    return results


def _export(args: argparse.Namespace) -> int:
    j = export_checkpoint(args.checkpoint, args.name, args.out, force=args.force)
    print(f"wrote {j} and {j.with_suffix('.safetensors')}")
    print(f"use it with: hifm fuse IR VIS -o OUT --method derun --weights {j}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    failed = 0
    for path, problem in verify(args.paths):
        if problem is None:
            meta = json.loads(_json_path(path).read_text())
            print(f"ok        {path}  sha256 {meta['sha256']}")
        else:
            failed += 1
            print(f"MISMATCH  {path}: {problem}")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m unrolled.weights", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("export", help="export a training checkpoint's model as weights (to runs/weights/ by default)")
    p.add_argument("checkpoint", help="checkpoint JSON (e.g. runs/ivf/final.json)")
    p.add_argument("--name", required=True, help="file name of the weights, without extension (e.g. my_ivf)")
    p.add_argument("--out", default=str(DEFAULT_EXPORT_DIR), help=f"folder (default {DEFAULT_EXPORT_DIR}; created)")
    p.add_argument("--force", action="store_true",
                   help="overwrite existing files, and allow the package's own weights folder")
    p.set_defaults(func=_export)
    p = sub.add_parser("verify", help="check weights against their recorded sha256 (default: the shipped weights)")
    p.add_argument("paths", nargs="*", metavar="WEIGHTS", help="weights JSON files (default: the shipped ivf and mif)")
    p.set_defaults(func=_verify)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (WeightsError, OSError, ValueError) as exc:
        print(f"python -m unrolled.weights {args.command}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"python -m unrolled.weights {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

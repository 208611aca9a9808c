"""Saving and loading DeRUN weights: safetensors plus a JSON with the configuration and a sha256.

A weights file ``NAME.safetensors`` (tensors only, no pickle) comes with ``NAME.json``::

    {"format": "derun-weights/1", "weights": "NAME.safetensors", "sha256": "<hex of the file>",
     "config": {...DeRUNConfig...}, "info": {...how it was made...}}

:func:`load_weights` refuses a file whose sha256 differs from the JSON's, with an
error that names both digests.  The shipped weights live in ``unrolled/weights/``
(:func:`load_pretrained`).

Usage as a script (export the model part of a training checkpoint into the package)::

    python -m unrolled.weights export runs/ivf/final.json --name ivf
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import torch

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
TASKS = ("ivf", "mif")
FORMAT = "derun-weights/1"


class WeightsError(ValueError):
    """A weights file is missing, malformed or does not match its recorded sha256."""


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
        WeightsError: a file is missing, the JSON is malformed, or the safetensors file's
            sha256 differs from the one recorded in the JSON.
    """
    from safetensors.torch import load_file

    j = _json_path(path)
    if not j.is_file():
        raise WeightsError(f"weights description '{j}' not found")
    try:
        meta = json.loads(j.read_text())
        weights = j.parent / meta["weights"]
        expected = meta["sha256"]
        config = DeRUNConfig.from_dict(meta["config"])
    except (ValueError, KeyError, TypeError) as exc:
        raise WeightsError(f"'{j}' is not a DeRUN weights description ({exc})") from None
    if not weights.is_file():
        raise WeightsError(f"weights file '{weights}' (named in '{j}') not found")
    actual = sha256_file(weights)
    if actual != expected:
        raise WeightsError(
            f"sha256 mismatch for '{weights}': the file has {actual}, '{j.name}' expects {expected}; "
            "the weights are corrupt or were replaced — refusing to load them"
        )
    stored_dtype = getattr(torch, meta.get("dtype", "float32"))
    model = DeRUN(config, dtype=stored_dtype)
    state = load_file(str(weights))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise WeightsError(f"'{weights}' does not fit the configuration: missing {missing}, unexpected {unexpected}")
    return model.to(device=device, dtype=dtype or stored_dtype).eval()


def pretrained_path(task: str) -> Path:
    """Path of the shipped JSON for ``task`` ("ivf" or "mif")."""
    if task not in TASKS:
        raise WeightsError(f"unknown task {task!r}; pretrained weights exist for {list(TASKS)}")
    return WEIGHTS_DIR / f"{task}.json"


def load_pretrained(task: str = "ivf", device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> DeRUN:
    """The shipped DeRUN for ``"ivf"`` (infrared–visible) or ``"mif"`` (medical), sha256-verified."""
    return load_weights(pretrained_path(task), device=device, dtype=dtype)


# ------------------------------------------------------------------------------ script
def _export(args: argparse.Namespace) -> int:
    """Copy the model of a training checkpoint (its JSON) into ``unrolled/weights/NAME``."""
    from .train import load_checkpoint_model

    model, meta = load_checkpoint_model(args.checkpoint)
    command = meta.get("command") or ""
    if command.startswith("train.py "):  # checkpoints written before command_line() existed
        command = "python -m unrolled.train " + command[len("train.py "):]
    info = {
        "task": args.name,
        "source_checkpoint": Path(args.checkpoint).name,
        "step": meta.get("step"),
        "train_config": meta.get("train_config"),
        "command": command,
        "seconds": meta.get("seconds"),
    }
    out = save_weights(model, Path(args.out) / f"{args.name}.safetensors", info)
    print(f"wrote {out} and {out.with_suffix('.safetensors')}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m unrolled.weights", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("export", help="export a training checkpoint's model as package weights")
    p.add_argument("checkpoint", help="checkpoint JSON (e.g. runs/ivf/final.json)")
    p.add_argument("--name", required=True, choices=TASKS)
    p.add_argument("--out", default=str(WEIGHTS_DIR))
    p.set_defaults(func=_export)
    p = sub.add_parser("verify", help="check the sha256 of the shipped weights")
    p.set_defaults(func=lambda a: [print(t, load_pretrained(t).count_parameters()) for t in TASKS] and 0)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Training DeRUN (docs/training.md): ``python -m unrolled.train`` and ``hifm train``.

One run = a JSON configuration (:class:`TrainConfig`; every field can be overridden
by a flag) and an output folder holding

* ``ckpt-SSSSSS.safetensors`` + ``.json`` every ``ckpt_every`` steps and ``final.*`` at the
  end: model, AdamW state and the torch RNG state (safetensors), and in the JSON the step,
  the configurations, the optimizer's hyper-parameters and the sha256 of the tensors file;
  ``latest.json`` names the newest checkpoint;
* ``log.csv`` (one row per step: losses, learning rate, steps/s) and ``tb/`` (TensorBoard).

``--resume`` (the newest checkpoint of the folder, or a given one) continues exactly
where the run stopped: the data order, crops and degradations are functions of
(seed, step, sample) (:mod:`unrolled.data`), the model/optimizer/RNG state is restored
and the learning-rate schedule is a function of the step, so S steps + resume + S
steps equal 2S steps bit for bit on the CPU (tested).

A resume continues *the same run*: its configuration is the checkpoint's, and a flag that
changes it (``--lr``, ``--data``, ``--batch``...) is refused unless ``--override-config``
is given; the changes are then recorded in every later checkpoint (``overrides``). The
model's shape (``--stages``...) can never change. ``--steps`` may grow (a longer run): the
learning rate then continues from its value at the resumed step and decays by a cosine to
``lr · lr_min_ratio`` at the new end (recorded as ``schedule_restart``), instead of jumping
to where a longer schedule would have been. A fresh run refuses a folder that already holds
a run (``latest.json``): resume it or choose another ``--out``.

Multi-process training: launch with ``torchrun --nproc_per_node R -m unrolled.train ...``;
each process takes its slice of the global batch (``batch`` per process) and DDP averages
the gradients (gloo on the CPU, nccl on CUDA).
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from hifm.errors import InputError, display_path
from hifm.io import _umask
from hifm.params import HIFMParams

from .data import CropSampler, DegradeConfig, load_pairs
from .derun import DeRUN, DeRUNConfig, dataclass_from_dict
from .losses import TERMS, FusionLoss, LossConfig
from .weights import WeightsError, sha256_file

__all__ = [
    "TrainConfig",
    "build_model",
    "train",
    "lr_at",
    "save_checkpoint",
    "load_checkpoint",
    "load_checkpoint_model",
    "add_train_parser",
    "main",
    "TASK_PRESETS",
]

CKPT_FORMAT = "derun-checkpoint/1"
MIN_CROP, MAX_CROP = 16, 2048
MAX_STEPS = 10_000_000
MAX_THREADS = 1024
RESUME_MAY_CHANGE = ("out", "steps", "ckpt_every", "threads", "device", "tensorboard")
"""Fields a resume may change without --override-config (they do not change what is learned)."""
NEVER_ON_RESUME = ("model",)
"""Fields a resume can never change: the checkpoint's tensors have the model's shape."""
_DATA = os.environ.get("HIFM_DATA", "../shared/data")

#: The configurations of the shipped weights (``--task``): the full data sets under
#: ``$HIFM_DATA`` (default ``../shared/data``, relative to the repository root; docs/data.md).
#: ``--data ROOT`` trains on any paired folder instead (e.g. ``samples/tno``).
#: The loss of the shipped weights (docs/training.md "Loss"): L1 to the initial network's output
#: on the clean sources (the classical solver at N stages: self-distillation, so that degraded
#: inputs are mapped to what the solver makes of clean ones) plus the Qabf and gradient terms,
#: which pull towards the metrics the fusion is judged by.
DISTILL_LOSS: dict[str, Any] = {"intensity": 0.0, "gradient": 0.3, "ssim": 0.0, "lgde": 0.0, "qabf": 0.3,
                                "fidelity": 1.0, "fidelity_anchor": "teacher"}
"""Distillation loss of the presets (docs/training.md): stay at the solver's image (the frozen initial
network on clean crops), move only where the gradient and Qabf terms gain."""
IVF_LOSS: dict[str, Any] = {**DISTILL_LOSS, "gradient": 5.0, "histogram": 0.2, "fidelity": 1.5, "contrast": 10.0}
"""The ``ivf`` preset's loss: a strong gradient term (0.3 → 1.0 → 2.0 → 5.0 each ranked better on TNO
and RoadScene-test), the histogram (CE) term at 0.2, a firmer pull to the teacher (fidelity 1.5)
and the local-contrast term at 10, which lets a weak start keep the infrared and texture contrast
of the page's metrics (docs/training.md, "A local-contrast term")."""
IVF_INIT: dict[str, Any] = {"filters_l": "dct3", "mu": 0.02, "theta": 150}
"""The ``ivf`` preset's initial stages: the solver with a much weaker gradient target than
``hifm.solve``'s defaults (``HIFMParams``: μ 0.1, θ 500); the weak start is what wins VIFB-dev rank."""
IVF_TEACHER: dict[str, Any] = {"filters_l": "dct3", "mu": 0.2, "theta": 800.0}
"""The ``ivf`` preset's teacher (``teacher_init``): the solver with a stronger target than its
defaults; it carries the thermal targets' contrast into the fidelity term. With the loss and start
above, seeds 0/1/2 rank 7.95/7.94/7.99 on VIFB-dev and seeds 0 and 1 beat ``hifm.solve`` on both
page tables (docs/training.md)."""

TASK_PRESETS: dict[str, dict[str, Any]] = {
    "ivf": {
        "data": [{"root": f"{_DATA}/roadscene-train", "part": "all"}],
        "degrade": {"p": 0.0, "kinds": None},
        "loss": IVF_LOSS,
        "init": IVF_INIT,
        "teacher_init": IVF_TEACHER,
        "steps": 600,
    },
    "mif": {
        "data": [
            {"root": f"{_DATA}/mri-ct", "part": "train", "holdout": 0.2},
            {"root": f"{_DATA}/mri-pet", "part": "train", "holdout": 0.2},
            {"root": f"{_DATA}/mri-spect", "part": "train", "holdout": 0.2},
        ],
        "degrade": {"p": 0.3, "kinds": ["gaussian_noise", "poisson_noise", "gaussian_blur"]},
        "loss": DISTILL_LOSS,
        "init": {"filters_l": "dct3", "anchor": "two_scale"},
        "steps": 600,
    },
}


@dataclass
class TrainConfig:
    """Everything a training run depends on (JSON-serialisable).

    Attributes:
        data: paired folders (:class:`unrolled.data.DataSpec` fields, or a path string).
        out: output folder.
        steps: optimisation steps in total.
        batch: crops per process and step.
        crop: crop size (pixels).
        lr, lr_min_ratio, warmup: AdamW learning rate, linear warm-up over ``warmup`` steps,
            then cosine decay to ``lr · lr_min_ratio`` at ``steps``.
        weight_decay: AdamW decay of the extractor/head convolutions (stage parameters: 0).
        grad_clip: gradient norm clipping (0: off).
        seed: seeds the model's random init, the data order, crops and degradations.
        ckpt_every: checkpoint period in steps (and always at the end).
        threads: torch threads per process.
        device: ``cpu`` or ``cuda``.
        init: :class:`hifm.params.HIFMParams` fields of the initial stages
            (:meth:`DeRUN.from_hifm`).
        teacher_init: the same for the frozen teacher of the fidelity term
            (``loss.fidelity_anchor = "teacher"``); ``None`` (default): the teacher is the
            initial network itself.
        model: :class:`DeRUNConfig` overrides (``stages``, ``extractor``, ``tied``...).
        loss: :class:`unrolled.losses.LossConfig` fields.
        degrade: :class:`unrolled.data.DegradeConfig` fields.
        gamma: photometric augmentation (:class:`unrolled.data.CropSampler`): each source's
            crop is raised to the power exp(u), u uniform in [−gamma, gamma], drawn for each
            source independently; inputs and loss targets alike (0: off).
        tensorboard: also write TensorBoard events.
    """

    data: list[Any] = field(default_factory=lambda: [{"root": f"{_DATA}/roadscene-train"}])
    out: str = "runs/derun"
    steps: int = 400
    batch: int = 4
    crop: int = 128
    lr: float = 3e-3
    lr_min_ratio: float = 0.1
    warmup: int = 20
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    seed: int = 0
    ckpt_every: int = 100
    threads: int = 1
    device: str = "cpu"
    init: dict[str, Any] = field(default_factory=lambda: {"filters_l": "dct3"})
    teacher_init: dict[str, Any] | None = None
    model: dict[str, Any] = field(default_factory=lambda: {"stages": 9})
    loss: dict[str, Any] = field(default_factory=dict)
    degrade: dict[str, Any] = field(default_factory=lambda: {"p": 0.7, "kinds": None})
    gamma: float = 0.0
    tensorboard: bool = True

    def __post_init__(self) -> None:
        """Check every field; a bad one raises :class:`hifm.errors.InputError` naming it."""
        def integer(name: str, low: int, high: int) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
                raise InputError(f"training configuration: {name} must be an integer in [{low}, {high}], got {v!r}")

        def number(name: str, low: float, high: float, low_open: bool = False) -> None:
            v = getattr(self, name)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            if not ok or not (low < v if low_open else low <= v) or v > high:
                interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
                raise InputError(f"training configuration: {name} must lie in {interval}, got {v!r}")

        integer("steps", 1, MAX_STEPS)
        integer("batch", 1, 4096)
        integer("crop", MIN_CROP, MAX_CROP)
        integer("warmup", 0, MAX_STEPS)
        integer("seed", 0, 2**63 - 1)
        integer("ckpt_every", 1, MAX_STEPS)
        integer("threads", 1, MAX_THREADS)
        number("lr", 0.0, 10.0, low_open=True)
        number("lr_min_ratio", 0.0, 1.0)
        number("weight_decay", 0.0, 10.0)
        number("grad_clip", 0.0, 1e6)
        number("gamma", 0.0, 2.0)
        if not isinstance(self.device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", self.device):
            raise InputError(f"training configuration: device must be cpu, cuda or cuda:N, got {self.device!r}")
        if not isinstance(self.data, list) or not self.data:
            raise InputError("training configuration: data must be a non-empty list of folders")
        for name in ("init", "model", "loss", "degrade"):
            if not isinstance(getattr(self, name), dict):
                raise InputError(f"training configuration: {name} must be a JSON object, got {getattr(self, name)!r}")
        if self.teacher_init is not None and not isinstance(self.teacher_init, dict):
            raise InputError("training configuration: teacher_init must be a JSON object or null, "
                             f"got {self.teacher_init!r}")
        stages = self.model.get("stages", 9)
        if isinstance(stages, bool) or not isinstance(stages, int) or not 1 <= stages <= 100:
            raise InputError(f"training configuration: model.stages must be an integer in [1, 100], got {stages!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        if not isinstance(d, dict):
            raise InputError(f"a training configuration must be a JSON object, got {type(d).__name__}")
        return dataclass_from_dict(cls, d, "training configuration")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def build_model(cfg: TrainConfig, init: dict[str, Any] | None = None) -> DeRUN:
    """The initial network: :meth:`DeRUN.from_hifm` at ``init`` (default ``cfg.init``) with
    ``cfg.model`` overrides, its random parts seeded by ``cfg.seed``."""
    torch.manual_seed(cfg.seed)
    model_kw = dict(cfg.model)
    stages = int(model_kw.pop("stages", 9))
    params = HIFMParams.from_kwargs(None, **(cfg.init if init is None else init))
    return DeRUN(DeRUNConfig.from_hifm(params, stages, **model_kw))


def build_teacher(cfg: TrainConfig) -> DeRUN:
    """The frozen teacher of the fidelity term: the initial network at ``cfg.teacher_init``
    (the classical solver at N stages with those parameters: R is zero at init), or at
    ``cfg.init`` when that is ``None``."""
    teacher = build_model(cfg, cfg.teacher_init).eval()
    for p_ in teacher.parameters():
        p_.requires_grad_(False)
    return teacher


def lr_at(cfg: TrainConfig, step: int, restart: dict[str, float] | None = None) -> float:
    """Learning rate of ``step`` (0-based): linear warm-up, then cosine to lr·lr_min_ratio at ``cfg.steps``.

    ``restart`` (``{"step": s₀, "lr": l₀}``, set when a resume made the run longer): from s₀ on,
    a cosine from l₀ down to lr·lr_min_ratio at ``cfg.steps``, so the rate continues from where
    it was instead of jumping to where a longer schedule would have put it.
    """
    lo = cfg.lr * cfg.lr_min_ratio
    if restart is not None and step >= restart["step"]:
        s0, l0 = int(restart["step"]), float(restart["lr"])
        frac = min((step - s0) / max(cfg.steps - s0, 1), 1.0)
        return lo + (l0 - lo) * 0.5 * (1 + math.cos(math.pi * frac))
    if cfg.warmup and step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    span = max(cfg.steps - cfg.warmup, 1)
    frac = min(max(step - cfg.warmup, 0) / span, 1.0)
    return lo + (cfg.lr - lo) * 0.5 * (1 + math.cos(math.pi * frac))


def _param_groups(model: DeRUN, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if name.startswith(("extractor.", "head.")) else no_decay).append(p)
    groups = [{"params": no_decay, "weight_decay": 0.0}]
    if decay:
        groups.append({"params": decay, "weight_decay": weight_decay})
    return groups


# -------------------------------------------------------------------------- checkpoints
def save_checkpoint(
    path: Path, model: DeRUN, optimizer: torch.optim.Optimizer, step: int, cfg: TrainConfig, extra: dict[str, Any]
) -> Path:
    """Write ``path.safetensors`` (model, optimizer state, torch RNG) and ``path.json``; returns the JSON."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for k, v in model.state_dict().items():
        tensors[f"model.{k}"] = v.detach().cpu().contiguous()
    opt = optimizer.state_dict()
    for idx, st in opt["state"].items():
        for k, v in st.items():
            t = v if torch.is_tensor(v) else torch.tensor(v)
            tensors[f"optim.{idx}.{k}"] = t.detach().cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    import tempfile

    st_path = path.with_suffix(".safetensors")
    fd, tmp = tempfile.mkstemp(dir=st_path.parent, prefix=f".{st_path.name}.", suffix=".tmp")  # never a planted link
    os.close(fd)
    try:
        save_file(tensors, tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, st_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    meta = {
        "format": CKPT_FORMAT,
        "weights": st_path.name,
        "sha256": sha256_file(st_path),
        "step": step,
        "config": model.config.as_dict(),
        "dtype": str(model.dtype).replace("torch.", ""),
        "train_config": cfg.as_dict(),
        "param_groups": opt["param_groups"],
        **extra,
    }
    j = path.with_suffix(".json")
    _write_atomic(j, json.dumps(meta, indent=1) + "\n")
    return j


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and metadata of a checkpoint (its JSON or safetensors path), sha256-verified."""
    from safetensors.torch import load_file

    from safetensors import SafetensorError

    j, meta = read_checkpoint_meta(path)
    st = j.parent / meta["weights"]
    if not st.is_file():
        raise WeightsError(f"checkpoint tensors '{display_path(st)}' (named in '{display_path(j)}') not found")
    actual = sha256_file(st)
    if actual != meta["sha256"]:
        raise WeightsError(f"sha256 mismatch for '{display_path(st)}': file {actual}, checkpoint JSON {meta['sha256']} "
                           "(a truncated or replaced checkpoint; resume from an earlier one)")
    try:
        return load_file(str(st)), meta
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"'{display_path(st)}' is not a readable safetensors file ({' '.join(str(exc).split())})") \
            from None


def read_checkpoint_meta(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The JSON path and metadata of a checkpoint (its JSON or safetensors path), every needed field checked."""
    p = Path(path)
    j = p.with_suffix(".json") if p.suffix == ".safetensors" else p
    jq = display_path(j)
    if not j.is_file():
        raise WeightsError(f"checkpoint '{jq}' not found")
    try:
        meta = json.loads(j.read_text())
    except (ValueError, OSError) as exc:
        raise WeightsError(f"checkpoint '{jq}' is not readable JSON ({' '.join(str(exc).split())}); "
                           "a truncated file? resume from an earlier checkpoint") from None
    if not isinstance(meta, dict) or meta.get("format") != CKPT_FORMAT:
        raise WeightsError(f"'{jq}' is not a DeRUN training checkpoint")
    problems = []
    for key, kind in (("weights", str), ("sha256", str), ("step", int), ("config", dict), ("train_config", dict),
                      ("param_groups", list)):
        if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
            problems.append(f"{key} ({'missing' if key not in meta else 'not a ' + kind.__name__})")
    if problems:
        raise WeightsError(f"checkpoint '{jq}' lacks valid field(s): {', '.join(problems)}")
    if Path(meta["weights"]).name != meta["weights"]:
        raise WeightsError(f"checkpoint '{jq}': 'weights' must be a file name next to it, got {meta['weights']!r}")
    if meta["step"] < 0:
        raise WeightsError(f"checkpoint '{jq}': step must be ≥ 0, got {meta['step']}")
    return j, meta


def load_checkpoint_model(path: str | Path) -> tuple[DeRUN, dict[str, Any]]:
    """The model stored in a training checkpoint, and the checkpoint's metadata."""
    tensors, meta = load_checkpoint(path)
    dtype = meta.get("dtype", "float32")
    if dtype not in ("float32", "float64"):
        raise WeightsError(f"checkpoint dtype must be float32 or float64, got {dtype!r}")
    try:
        model = DeRUN(DeRUNConfig.from_dict(meta["config"]), dtype=getattr(torch, dtype))
        _load_model_state(model, tensors)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise WeightsError(f"the checkpoint's model cannot be built ({' '.join(str(exc).split())[:300]})") from None
    return model, meta


def _load_model_state(model: DeRUN, tensors: dict[str, torch.Tensor]) -> None:
    state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise WeightsError(f"the checkpoint holds NaN or infinite values in {len(bad)} tensor(s) (e.g. {bad[:3]})")
    model.load_state_dict(state)


def _restore(model: DeRUN, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> int:
    try:
        _load_model_state(model, tensors)
    except RuntimeError as exc:
        raise WeightsError(f"the checkpoint's tensors do not fit this model ({' '.join(str(exc).split())[:300]})") \
            from None
    state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, idx, name = k.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    return int(meta["step"])


def _latest(out: Path) -> Path | None:
    p = out / "latest.json"
    if not p.is_file():
        return None
    try:
        name = json.loads(p.read_text())["checkpoint"]
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise WeightsError(f"'{display_path(p)}' is damaged ({' '.join(str(exc).split())}); resume from a checkpoint "
                           "file: --resume OUT/ckpt-NNNNNN.json") from None
    if not isinstance(name, str) or Path(name).name != name:
        raise WeightsError(f"'{display_path(p)}' names {name!r}, not a checkpoint file in its folder")
    return out / name


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (a reader sees the old or the new file)."""
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with open(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _comparable(cfg: dict[str, Any]) -> dict[str, Any]:
    """A training configuration with data roots resolved (a folder spelled differently is the same folder)."""
    out = json.loads(json.dumps(cfg))
    data = []
    for spec in out.get("data", []):
        spec = {"root": spec} if isinstance(spec, str) else dict(spec)
        if isinstance(spec.get("root"), str):
            spec["root"] = str(Path(spec["root"]).resolve())
        spec.setdefault("part", "all")
        data.append(spec)
    out["data"] = data
    return out


def resume_changes(cfg: TrainConfig, meta: dict[str, Any]) -> dict[str, list[Any]]:
    """Fields of ``cfg`` that differ from the checkpoint's, beyond :data:`RESUME_MAY_CHANGE`: ``{field: [old, new]}``."""
    old, new = _comparable(meta["train_config"]), _comparable(cfg.as_dict())
    return {k: [old.get(k), new.get(k)] for k in sorted(set(old) | set(new))
            if k not in RESUME_MAY_CHANGE and old.get(k) != new.get(k)}


def check_resume(cfg: TrainConfig, meta: dict[str, Any], override: bool) -> dict[str, list[Any]]:
    """Refuse a resume that would change the run, unless ``override``; returns the changes (to record)."""
    changes = resume_changes(cfg, meta)
    fixed = [k for k in changes if k in NEVER_ON_RESUME]
    if fixed:
        raise InputError(f"cannot resume with another {', '.join(fixed)} (checkpoint: "
                         f"{', '.join(f'{k}={changes[k][0]}' for k in fixed)}; now: "
                         f"{', '.join(f'{k}={changes[k][1]}' for k in fixed)}): its tensors have the checkpoint's "
                         "shape; start a new run in another --out")
    if changes and not override:
        shown = "; ".join(f"{k}: {json.dumps(a)} -> {json.dumps(b)}" for k, (a, b) in changes.items())
        raise InputError(f"the resumed run would differ from the checkpoint's ({shown}); drop those options to "
                         "continue the same run, or pass --override-config to change it (the change is recorded)")
    step = int(meta["step"])
    if cfg.steps <= step:
        final = "; the run is complete (final.json)" if cfg.steps == step else ""
        raise InputError(f"the checkpoint is at step {step} and --steps is {cfg.steps}: nothing to train{final}; "
                         f"pass --steps larger than {step} to train longer")
    return changes


# ------------------------------------------------------------------------------ logging
CSV_FIELDS = ["step", "loss", *TERMS, "anchor", "lr", "steps_per_s", "seconds"]


def _truncate_csv(path: Path, step: int) -> None:
    """Keep the header and the rows up to ``step`` (a resumed run rewrites what follows)."""
    if not path.is_file():
        return
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, CSV_FIELDS)
        w.writeheader()
        for r in rows:
            if int(r["step"]) <= step:
                w.writerow(r)


# ------------------------------------------------------------------------------ training
def command_line(argv: Sequence[str] | None = None) -> str:
    """The command that runs this process, as a user would type it (``python -m unrolled.train ...``)."""
    argv = list(sys.argv if argv is None else argv)
    head = Path(argv[0]).as_posix() if argv else ""
    if head.endswith("unrolled/train.py"):
        prog = "python -m unrolled.train"
    elif head.endswith("/hifm") or head == "hifm":
        prog = "hifm"
    else:
        prog = Path(head).name
    return " ".join([prog, *argv[1:]])


def _dist_setup(device: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device); initialises torch.distributed under torchrun (WORLD_SIZE > 1)."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1
    if device.startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", rank))
        dev = torch.device("cuda", local if device == "cuda" else torch.device(device).index or 0)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device(device)
    return rank, world, dev


def train(
    cfg: TrainConfig, resume: str | bool | None = None, progress: bool = True, max_steps: int | None = None,
    override: bool = False,
) -> Path:
    """Run (or continue) a training; returns the JSON path of the checkpoint written last.

    Args:
        cfg: the configuration.
        resume: ``True``/``"auto"``: continue from ``out/latest.json``; a path: from that
            checkpoint; None/False: start fresh (refused when ``out`` already holds a run).
        progress: show a tqdm progress bar (rank 0).
        max_steps: stop after this many steps of this call (an interruption: the schedule still
            runs to ``cfg.steps``); a checkpoint is written at the stop.
        override: accept a resume whose configuration differs from the checkpoint's
            (:func:`check_resume`); the differences are recorded in the checkpoints.

    Raises:
        InputError: a bad configuration, a resume that would change the run, nothing left to
            train, a CUDA device without a GPU, a crop larger than the data allows.
        WeightsError: a missing, truncated or malformed checkpoint.
    """
    import torch.distributed as dist
    from tqdm import tqdm

    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1):
        raise InputError(f"max_steps must be an integer ≥ 1, got {max_steps!r}")
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {cfg.device!r} requested but torch sees no CUDA GPU (use --device cpu)")
    out = Path(cfg.out)
    ckpt, meta, changes, restart = None, None, {}, None
    if resume:
        ckpt = _latest(out) if resume in (True, "auto") else Path(resume)
        if ckpt is None:
            raise WeightsError(f"nothing to resume in '{display_path(out)}' (no latest.json)")
        _, meta = read_checkpoint_meta(ckpt)
        changes = check_resume(cfg, meta, override)
        restart = _schedule_restart(cfg, meta)
    elif (out / "latest.json").is_file():
        raise InputError(f"'{display_path(out)}' already holds a training run (latest.json); pass --resume to "
                         "continue it, or choose another --out (nothing was overwritten)")
    torch.set_num_threads(int(cfg.threads))
    rank, world, device = _dist_setup(cfg.device)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    log_path = out / "log.csv"
    if log_path.is_symlink():
        raise InputError(f"'{display_path(log_path)}' is a symbolic link; hifm never writes through a link it did "
                         "not create (remove it)")
    model = build_model(cfg).to(device)
    optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.999))
    start, elapsed0 = 0, 0.0
    history: dict[str, Any] = {}
    if meta is not None:
        tensors, meta = load_checkpoint(ckpt)
        start = _restore(model, optimizer, tensors, meta)
        elapsed0 = float(meta.get("seconds", 0.0))
        overrides = list(meta.get("overrides", []))
        if changes:
            overrides.append({"at_step": start, "changes": changes})
        history = {"overrides": overrides} if overrides else {}
        if restart is not None:
            history["schedule_restart"] = restart
    net: torch.nn.Module = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    loss_fn = FusionLoss(LossConfig(**cfg.loss))
    teacher = None
    if loss_fn.config.fidelity and loss_fn.config.fidelity_anchor == "teacher":
        teacher = build_teacher(cfg).to(device)
    pairs = load_pairs(cfg.data)
    smallest = min(min(pair.a.shape) for pair in pairs)
    if cfg.crop >= 2 * smallest:
        raise InputError(f"crop {cfg.crop} is too large for the data: the smallest training image has a side of "
                         f"{smallest} pixels, and crops are reflected at most up to twice that; use --crop "
                         f"{min(2 * smallest - 1, MAX_CROP)} or less")
    sampler = CropSampler(pairs, crop=cfg.crop, seed=cfg.seed, degrade=DegradeConfig(**cfg.degrade), gamma=cfg.gamma)
    writer = None
    if rank == 0:
        if start:
            _truncate_csv(log_path, start)
        else:
            with open(log_path, "w", newline="") as fh:
                csv.DictWriter(fh, CSV_FIELDS).writeheader()
        if cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                writer = SummaryWriter(str(out / "tb"), purge_step=start if start else None)
            except ImportError:  # pragma: no cover - tensorboard is optional
                writer = None
    command = command_line()
    bar = tqdm(total=cfg.steps, initial=start, unit="step", disable=not progress or rank != 0, dynamic_ncols=True)
    t_start = time.perf_counter()
    t_last = t_start
    final = out / "final.json"
    model.train()
    stop = cfg.steps if max_steps is None else min(cfg.steps, start + int(max_steps))
    for step in range(start, stop):
        lr = lr_at(cfg, step, restart)
        for g in optimizer.param_groups:
            g["lr"] = lr
        a_in, b_in, a_cl, b_cl = (
            torch.from_numpy(x).to(device) for x in sampler.batch(step, rank, cfg.batch, world)
        )
        res = net(a_in, b_in, return_all=True)
        anchor = res.anchor if model.extractor is not None else None
        reference = None
        if teacher is not None:
            with torch.no_grad():
                reference = teacher(a_cl, b_cl)
        loss, terms = loss_fn(res.stages, anchor, a_cl, b_cl, reference)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        now = time.perf_counter()
        if rank == 0:
            rate = 1.0 / max(now - t_last, 1e-9)
            row = {"step": step + 1, "loss": float(loss.detach()), "lr": lr, "steps_per_s": rate,
                   "seconds": elapsed0 + now - t_start}
            row.update({k: float(v) for k, v in terms.items()})
            with open(log_path, "a", newline="") as fh:
                csv.DictWriter(fh, CSV_FIELDS, restval="").writerow(row)
            if writer is not None:
                writer.add_scalar("loss/total", float(loss.detach()), step + 1)
                for k, v in terms.items():
                    writer.add_scalar(f"loss/{k}", float(v), step + 1)
                writer.add_scalar("lr", lr, step + 1)
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}", refresh=False)
            bar.update(1)
        t_last = now
        done = step + 1
        if done % cfg.ckpt_every == 0 or done == cfg.steps or done == stop:
            if rank == 0:
                extra = {"seconds": elapsed0 + time.perf_counter() - t_start, "command": command, "world_size": world,
                         **history}
                name = f"ckpt-{done:06d}"
                save_checkpoint(out / name, model, optimizer, done, cfg, extra)
                _write_atomic(out / "latest.json", json.dumps({"checkpoint": f"{name}.json", "step": done}) + "\n")
                if done == cfg.steps:
                    save_checkpoint(out / "final", model, optimizer, done, cfg, extra)
            if world > 1:
                dist.barrier()
    bar.close()
    if writer is not None:
        writer.close()
    return final if stop == cfg.steps else out / f"ckpt-{stop:06d}.json"


def _schedule_restart(cfg: TrainConfig, meta: dict[str, Any]) -> dict[str, float] | None:
    """The learning-rate restart of a resume (see :func:`lr_at`): kept from the checkpoint, or new when
    ``steps`` changed after the warm-up; None when the schedule is unchanged."""
    old = meta.get("schedule_restart")
    step = int(meta["step"])
    saved = TrainConfig.from_dict(meta["train_config"])
    if cfg.steps == saved.steps and cfg.lr == saved.lr and cfg.lr_min_ratio == saved.lr_min_ratio:
        return old
    if step < cfg.warmup and old is None:
        return None  # still warming up: the warm-up does not depend on steps
    return {"step": step, "lr": lr_at(saved, step, old)}


# ---------------------------------------------------------------------------------- CLI
def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="JSON file with TrainConfig fields (flags override it)")
    p.add_argument("--task", choices=sorted(TASK_PRESETS), help="preset data/degradation of the shipped weights")
    p.add_argument("--data", action="append", metavar="ROOT[:PART]",
                   help="paired folder (repeatable); PART = all | train | test of the hash split")
    p.add_argument("--out", help="output folder (checkpoints, log.csv, tb/)")
    p.add_argument("--steps", type=int, help=f"total optimisation steps (1..{MAX_STEPS:,})")
    p.add_argument("--batch", type=int, help="crops per process and step")
    p.add_argument("--crop", type=int, help=f"crop size in pixels ({MIN_CROP}..{MAX_CROP})")
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--stages", type=int, help="N, unrolled stages (1..100)")
    p.add_argument("--ckpt-every", type=int, dest="ckpt_every", help="checkpoint period in steps (≥ 1)")
    p.add_argument("--threads", type=int, help="torch threads per process (≥ 1)")
    p.add_argument("--device", help="cpu, cuda or cuda:N")
    p.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CKPT",
                   help="continue from the newest checkpoint in --out, or from CKPT; the run keeps the "
                        "checkpoint's configuration")
    p.add_argument("--override-config", action="store_true",
                   help="with --resume: allow options that change the run (--lr, --data, ...); the changes "
                        "are recorded in the checkpoints")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _read_json_file(path: str, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except OSError as exc:
        raise InputError(f"{what} '{display_path(path)}': {exc.strerror or exc}") from None
    except ValueError as exc:
        raise InputError(f"{what} '{display_path(path)}' is not valid JSON ({' '.join(str(exc).split())})") from None


def config_from_args(args: argparse.Namespace, base: dict[str, Any] | None = None) -> TrainConfig:
    """The :class:`TrainConfig` of the command line: ``base`` (the defaults, or a resumed checkpoint's
    configuration) < --task < --config < flags."""
    d: dict[str, Any] = json.loads(json.dumps(base)) if base is not None else TrainConfig().as_dict()
    if args.task:
        d.update(json.loads(json.dumps(TASK_PRESETS[args.task])))
        d["out"] = f"runs/{args.task}"
    if args.config:
        extra = _read_json_file(args.config, "--config")
        if not isinstance(extra, dict):
            raise InputError(f"--config '{display_path(args.config)}' must hold a JSON object of TrainConfig fields")
        d.update(extra)
    if args.data:
        specs = []
        for item in args.data:
            root, sep, part = item.rpartition(":")
            if not sep or part not in ("all", "train", "test"):
                root, part = item, "all"
            specs.append({"root": root, "part": part})
        d["data"] = specs
    for name in ("out", "steps", "batch", "crop", "lr", "seed", "ckpt_every", "threads", "device"):
        v = getattr(args, name, None)
        if v is not None:
            d[name] = v
    if args.stages is not None:
        d["model"] = {**d.get("model", {}), "stages": args.stages}
    return TrainConfig.from_dict(d)


def _resume_checkpoint(args: argparse.Namespace) -> Path:
    """The checkpoint ``--resume`` names: CKPT, or the newest one of the run folder."""
    if args.resume != "auto":
        return Path(args.resume)
    out = Path(args.out or (f"runs/{args.task}" if args.task else TrainConfig.out))
    found = _latest(out)
    if found is None:
        raise WeightsError(f"nothing to resume in '{display_path(out)}' (no latest.json); pass --out RUN_FOLDER "
                           "or --resume CKPT")
    return found


def run_train(args: argparse.Namespace) -> int:
    if args.override_config and not args.resume:
        raise InputError("--override-config applies to --resume only")
    if args.resume:
        ckpt = _resume_checkpoint(args)
        _, meta = read_checkpoint_meta(ckpt)
        base = dict(meta["train_config"])
        if args.out is None:  # the run continues where its checkpoint is
            base["out"] = str(Path(ckpt).parent)
        cfg = config_from_args(args, base=base)
        final = train(cfg, resume=ckpt, progress=not args.no_progress, override=args.override_config)
    else:
        cfg = config_from_args(args)
        final = train(cfg, progress=not args.no_progress)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"wrote {final}" if final.is_file() else f"training stopped; the last checkpoint is {final}")
    return 0


def add_train_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``train`` to the ``hifm`` command line (called by :func:`hifm.cli.build_parser`)."""
    p = subparsers.add_parser(
        "train", help="train DeRUN on paired folders (checkpoints, resume, CSV/TensorBoard logs)",
        description="Train DeRUN (docs/training.md). Example: hifm train --task ivf --steps 400. "
                    "Multi-process: torchrun --nproc_per_node 2 -m unrolled.train ...",
    )
    _add_arguments(p)
    p.set_defaults(func=run_train)
    return p


def main(argv: Sequence[str] | None = None, prog: str = "python -m unrolled.train") -> int:
    """Entry point. Exit status: 0 done; 1 a bad option value, configuration, data or checkpoint (one
    line on stderr); 2 a malformed command line (argparse); 130 interrupted (resume with --resume)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    _add_arguments(parser)
    args = parser.parse_args(argv)
    from hifm.errors import HIFMError

    try:
        return run_train(args)
    except (HIFMError, ValueError, OSError) as exc:
        hint = "; pass --data ROOT (e.g. samples/tno) or set HIFM_DATA (docs/data.md)" if "root" in str(exc) else ""
        print(f"{prog}: error: {' '.join(str(exc).split())}{hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; the steps since the last checkpoint are lost, continue with --resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

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
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from hifm.params import HIFMParams

from .data import CropSampler, DegradeConfig, load_pairs
from .derun import DeRUN, DeRUNConfig, dataclass_from_dict
from .losses import FusionLoss, LossConfig
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
_DATA = os.environ.get("HIFM_DATA", "../shared/data")

#: The configurations of the shipped weights (``--task``): the full data sets under
#: ``$HIFM_DATA`` (default ``../shared/data``, relative to the repository root; docs/data.md).
#: ``--data ROOT`` trains on any paired folder instead (e.g. ``samples/tno``).
TASK_PRESETS: dict[str, dict[str, Any]] = {
    "ivf": {
        "data": [{"root": f"{_DATA}/roadscene-train", "part": "all"}],
        "degrade": {"p": 0.7, "kinds": None},
    },
    "mif": {
        "data": [
            {"root": f"{_DATA}/mri-ct", "part": "train", "holdout": 0.2},
            {"root": f"{_DATA}/mri-pet", "part": "train", "holdout": 0.2},
            {"root": f"{_DATA}/mri-spect", "part": "train", "holdout": 0.2},
        ],
        "degrade": {"p": 0.5, "kinds": ["gaussian_noise", "poisson_noise", "gaussian_blur"]},
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
        model: :class:`DeRUNConfig` overrides (``stages``, ``extractor``, ``tied``...).
        loss: :class:`unrolled.losses.LossConfig` fields.
        degrade: :class:`unrolled.data.DegradeConfig` fields.
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
    init: dict[str, Any] = field(default_factory=lambda: {"filters_l": "dct3", "mu": 0.001})
    model: dict[str, Any] = field(default_factory=lambda: {"stages": 9})
    loss: dict[str, Any] = field(default_factory=dict)
    degrade: dict[str, Any] = field(default_factory=lambda: {"p": 0.7, "kinds": None})
    tensorboard: bool = True

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        return dataclass_from_dict(cls, d, "training configuration")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def build_model(cfg: TrainConfig) -> DeRUN:
    """The initial network: :meth:`DeRUN.from_hifm` at ``cfg.init`` with ``cfg.model`` overrides."""
    torch.manual_seed(cfg.seed)
    model_kw = dict(cfg.model)
    stages = int(model_kw.pop("stages", 9))
    params = HIFMParams.from_kwargs(None, **cfg.init)
    return DeRUN(DeRUNConfig.from_hifm(params, stages, **model_kw))


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Learning rate of ``step`` (0-based): linear warm-up, then cosine to lr·lr_min_ratio."""
    if cfg.warmup and step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    span = max(cfg.steps - cfg.warmup, 1)
    frac = min(max(step - cfg.warmup, 0) / span, 1.0)
    lo = cfg.lr * cfg.lr_min_ratio
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
    st_path = path.with_suffix(".safetensors")
    tmp = st_path.with_name(st_path.name + ".tmp")
    save_file(tensors, str(tmp))
    os.replace(tmp, st_path)
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
    tmp_j = j.with_name(j.name + ".tmp")
    tmp_j.write_text(json.dumps(meta, indent=1) + "\n")
    os.replace(tmp_j, j)
    return j


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and metadata of a checkpoint (its JSON or safetensors path), sha256-verified."""
    from safetensors.torch import load_file

    p = Path(path)
    j = p.with_suffix(".json") if p.suffix == ".safetensors" else p
    if not j.is_file():
        raise WeightsError(f"checkpoint '{j}' not found")
    meta = json.loads(j.read_text())
    if meta.get("format") != CKPT_FORMAT:
        raise WeightsError(f"'{j}' is not a DeRUN training checkpoint")
    st = j.parent / meta["weights"]
    actual = sha256_file(st)
    if actual != meta["sha256"]:
        raise WeightsError(f"sha256 mismatch for '{st}': file {actual}, checkpoint JSON {meta['sha256']}")
    return load_file(str(st)), meta


def load_checkpoint_model(path: str | Path) -> tuple[DeRUN, dict[str, Any]]:
    """The model stored in a training checkpoint, and the checkpoint's metadata."""
    tensors, meta = load_checkpoint(path)
    model = DeRUN(DeRUNConfig.from_dict(meta["config"]), dtype=getattr(torch, meta.get("dtype", "float32")))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    return model, meta


def _restore(model: DeRUN, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> int:
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
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
    return out / json.loads(p.read_text())["checkpoint"]


# ------------------------------------------------------------------------------ logging
CSV_FIELDS = ["step", "loss", "intensity", "gradient", "ssim", "lgde", "qabf", "fidelity", "anchor", "lr", "steps_per_s",
              "seconds"]


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
    cfg: TrainConfig, resume: str | bool | None = None, progress: bool = True, max_steps: int | None = None
) -> Path:
    """Run (or continue) a training; returns the final checkpoint's JSON path.

    Args:
        cfg: the configuration.
        resume: ``True``/``"auto"``: continue from ``out/latest.json``; a path: from that
            checkpoint; None/False: start fresh (an existing log is replaced).
        progress: show a tqdm progress bar (rank 0).
        max_steps: stop after this many steps of this call (an interruption: the schedule still
            runs to ``cfg.steps``); a checkpoint is written at the stop.
    """
    import torch.distributed as dist
    from tqdm import tqdm

    torch.set_num_threads(int(cfg.threads))
    rank, world, device = _dist_setup(cfg.device)
    out = Path(cfg.out)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    model = build_model(cfg).to(device)
    optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.999))
    start, elapsed0 = 0, 0.0
    ckpt = None
    if resume:
        ckpt = _latest(out) if resume in (True, "auto") else Path(resume)
        if ckpt is None:
            raise WeightsError(f"nothing to resume in '{out}' (no latest.json)")
        tensors, meta = load_checkpoint(ckpt)
        start = _restore(model, optimizer, tensors, meta)
        elapsed0 = float(meta.get("seconds", 0.0))
    net: torch.nn.Module = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    loss_fn = FusionLoss(LossConfig(**cfg.loss))
    sampler = CropSampler(
        load_pairs(cfg.data), crop=cfg.crop, seed=cfg.seed, degrade=DegradeConfig(**cfg.degrade)
    )
    log_path = out / "log.csv"
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
        lr = lr_at(cfg, step)
        for g in optimizer.param_groups:
            g["lr"] = lr
        a_in, b_in, a_cl, b_cl = (
            torch.from_numpy(x).to(device) for x in sampler.batch(step, rank, cfg.batch, world)
        )
        res = net(a_in, b_in, return_all=True)
        anchor = res.anchor if model.extractor is not None else None
        loss, terms = loss_fn(res.stages, anchor, a_cl, b_cl)
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
                extra = {"seconds": elapsed0 + time.perf_counter() - t_start, "command": command, "world_size": world}
                name = f"ckpt-{done:06d}"
                save_checkpoint(out / name, model, optimizer, done, cfg, extra)
                (out / "latest.json").write_text(json.dumps({"checkpoint": f"{name}.json", "step": done}) + "\n")
                if done == cfg.steps:
                    save_checkpoint(out / "final", model, optimizer, done, cfg, extra)
            if world > 1:
                dist.barrier()
    bar.close()
    if writer is not None:
        writer.close()
    return final if stop == cfg.steps else out / f"ckpt-{stop:06d}.json"


# ---------------------------------------------------------------------------------- CLI
def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="JSON file with TrainConfig fields (flags override it)")
    p.add_argument("--task", choices=sorted(TASK_PRESETS), help="preset data/degradation of the shipped weights")
    p.add_argument("--data", action="append", metavar="ROOT[:PART]",
                   help="paired folder (repeatable); PART = all | train | test of the hash split")
    p.add_argument("--out", help="output folder (checkpoints, log.csv, tb/)")
    p.add_argument("--steps", type=int)
    p.add_argument("--batch", type=int, help="crops per process and step")
    p.add_argument("--crop", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--stages", type=int, help="N, unrolled stages")
    p.add_argument("--ckpt-every", type=int, dest="ckpt_every")
    p.add_argument("--threads", type=int)
    p.add_argument("--device", help="cpu or cuda")
    p.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CKPT",
                   help="continue from the newest checkpoint in --out, or from CKPT")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` of the command line: defaults < --task < --config < flags."""
    d: dict[str, Any] = TrainConfig().as_dict()
    if args.task:
        d.update(json.loads(json.dumps(TASK_PRESETS[args.task])))
        d["out"] = f"runs/{args.task}"
    if args.config:
        d.update(json.loads(Path(args.config).read_text()))
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


def run_train(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    final = train(cfg, resume=args.resume, progress=not args.no_progress)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"wrote {final}")
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m unrolled.train", description=__doc__.split("\n")[0])
    _add_arguments(parser)
    args = parser.parse_args(argv)
    from hifm.errors import HIFMError

    try:
        return run_train(args)
    except (HIFMError, ValueError, OSError) as exc:
        hint = "; pass --data ROOT (e.g. samples/tno) or set HIFM_DATA (docs/data.md)" if "root" in str(exc) else ""
        print(f"python -m unrolled.train: error: {' '.join(str(exc).split())}{hint}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Training data for DeRUN (DESIGN §7.2): paired folders, a hash split, seeded random crops
with degradation-aware inputs (§7.1, §9).

Reproducibility **[decision]**: every random choice is a pure function of
``(seed, step, global sample index)`` through :class:`numpy.random.SeedSequence`:

* the data order: sample ``g = step · global_batch + k`` is pair ``perm_e[g mod n]`` of the
  permutation ``perm_e`` of epoch ``e = g div n`` (drawn from ``SeedSequence([seed, 0x0D, e])``);
* its crop, flips, photometric exponents and degradation come from a generator seeded by
  ``SeedSequence([seed, 0x5A, step, g])``.

So a run resumed at step s draws exactly what an uninterrupted run draws, and a
DDP run over R processes (each taking its slice of the global batch) draws exactly
the samples of one process with an R× larger batch.

Split of the medical sets **[decision]**: pair ``name`` of folder ``root`` is in the
test part when ``int(sha256(f"{root.name}/{name}")[:8], 16) % 1000 < 1000 · holdout``
(:func:`holdout_part`), so the split depends on nothing but the file names.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hifm import degrade
from hifm.datasets import find_pairs
from hifm.io import read_image
from hifm.sources import prepare_sources

__all__ = ["DataSpec", "DegradeConfig", "holdout_part", "load_pairs", "CropSampler", "LoadedPair"]

#: Which source a degradation kind is applied to for infrared–visible data ("a": infrared,
#: "b": visible, "either": drawn at random).  Medical data: always "either".
IVF_TARGET = {
    "gaussian_noise": "either",
    "poisson_noise": "either",
    "gaussian_blur": "either",
    "stripe_noise": "a",
    "low_light": "b",
    "fog": "b",
}


@dataclass
class DataSpec:
    """A paired folder and the part of it to use.

    Attributes:
        root: folder with the two modality folders (:func:`hifm.datasets.find_pairs`).
        part: ``"all"``, ``"train"`` or ``"test"`` (hash split, :func:`holdout_part`).
        holdout: fraction of pairs in the test part.
    """

    root: str
    part: str = "all"
    holdout: float = 0.2

    def __post_init__(self) -> None:
        if self.part not in ("all", "train", "test"):
            raise ValueError(f"part must be all, train or test, got {self.part!r}")


@dataclass
class DegradeConfig:
    """Degradation-aware inputs: with probability ``p`` one source of a sample is degraded by
    :func:`hifm.degrade.random_degradation` over ``kinds`` (None: all); targets stay clean."""

    p: float = 0.7
    kinds: Sequence[str] | None = None


@dataclass
class LoadedPair:
    """Luminance sources in [0, 1] (float32) of one pair."""

    name: str
    a: np.ndarray
    b: np.ndarray
    kind: str


def holdout_part(root: str | Path, name: str, holdout: float = 0.2) -> str:
    """``"test"`` or ``"train"``: the hash split of pair ``name`` in folder ``root`` (see module doc)."""
    key = f"{Path(root).name}/{name}".encode()
    return "test" if int(hashlib.sha256(key).hexdigest()[:8], 16) % 1000 < round(1000 * holdout) else "train"


def load_pairs(specs: Sequence[DataSpec | dict[str, Any] | str]) -> list[LoadedPair]:
    """Read every selected pair as float32 luminance (BT.601 for a colour source, DESIGN §5)."""
    out: list[LoadedPair] = []
    for spec in specs:
        if isinstance(spec, str):
            spec = DataSpec(spec)
        elif isinstance(spec, dict):
            spec = DataSpec(**spec)
        pairs = find_pairs(spec.root)
        for pair in pairs:
            if spec.part != "all" and holdout_part(spec.root, pair.name, spec.holdout) != spec.part:
                continue
            ir = read_image(pair.ir_path, gray_if_equal=True)
            vis = read_image(pair.vis_path, gray_if_equal=True)
            prep = prepare_sources(ir, vis, "float32")
            out.append(LoadedPair(f"{Path(spec.root).name}/{pair.name}", prep.a, prep.b, pairs.kind))
    if not out:
        raise ValueError(f"no training pairs selected from {[getattr(s, 'root', s) for s in specs]}")
    return out


def _crop(x: np.ndarray, top: int, left: int, size: int) -> np.ndarray:
    h, w = x.shape
    if h < size or w < size:  # small images: reflect up to the crop size
        x = np.pad(x, ((0, max(0, size - h)), (0, max(0, size - w))), mode="reflect")
    return x[top : top + size, left : left + size]


@dataclass
class CropSampler:
    """Deterministic random crops with degradation-aware inputs (see the module docstring).

    ``batch(step, rank, per_rank, world)`` returns float32 arrays ``(per_rank, crop, crop)``:
    ``(a_in, b_in, a_clean, b_clean)``.

    ``gamma`` > 0: photometric augmentation, each source's crop x becomes x ** exp(u) with u
    uniform in [−gamma, gamma], one u per source (drawn after the flips, before the
    degradation; with ``gamma`` = 0 nothing is drawn, so the samples are those of a sampler
    without it).  The clean crops are the augmented ones: the loss sees the pair it fuses.
    """

    pairs: list[LoadedPair]
    crop: int = 128
    seed: int = 0
    degrade: DegradeConfig = field(default_factory=DegradeConfig)
    flips: bool = True
    gamma: float = 0.0

    def __post_init__(self) -> None:
        self._perm_cache: dict[int, np.ndarray] = {}

    def order(self, epoch: int) -> np.ndarray:
        """The permutation of the pairs in ``epoch``."""
        if epoch not in self._perm_cache:
            if len(self._perm_cache) > 4:
                self._perm_cache.clear()
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x0D, epoch]))
            self._perm_cache[epoch] = rng.permutation(len(self.pairs))
        return self._perm_cache[epoch]

    def sample(self, step: int, g: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Global sample ``g`` of ``step``: (a_in, b_in, a_clean, b_clean, info)."""
        n = len(self.pairs)
        pair = self.pairs[int(self.order(g // n)[g % n])]
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x5A, step, g]))
        h, w = pair.a.shape
        top = int(rng.integers(0, max(h - self.crop, 0) + 1))
        left = int(rng.integers(0, max(w - self.crop, 0) + 1))
        a = _crop(pair.a, top, left, self.crop)
        b = _crop(pair.b, top, left, self.crop)
        if self.flips:
            if rng.random() < 0.5:
                a, b = a[:, ::-1], b[:, ::-1]
            if rng.random() < 0.5:
                a, b = a[::-1], b[::-1]
        a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
        info: dict[str, Any] = {"pair": pair.name, "top": top, "left": left, "degradation": None}
        if self.gamma > 0:
            exponents = np.exp(rng.uniform(-self.gamma, self.gamma, 2))
            a, b = (np.power(x, e).astype(np.float32) for x, e in zip((a, b), exponents))
            info["gamma"] = exponents.tolist()
        a_in, b_in = a, b
        if self.degrade.p > 0 and rng.random() < self.degrade.p:
            spec = degrade.random_degradation(rng, kinds=self.degrade.kinds)
            target = IVF_TARGET.get(spec["kind"], "either") if pair.kind == "ivf" else "either"
            if target == "either":
                target = "a" if rng.random() < 0.5 else "b"
            if target == "a":
                a_in = degrade.apply(a, spec, rng).astype(np.float32)
            else:
                b_in = degrade.apply(b, spec, rng).astype(np.float32)
            info["degradation"] = {**spec, "source": target}
        return a_in, b_in, a, b, info

    def batch(self, step: int, rank: int = 0, per_rank: int = 4, world: int = 1) -> tuple[np.ndarray, ...]:
        """This process's slice of the global batch of ``step``: four ``(per_rank, crop, crop)`` arrays."""
        first = step * per_rank * world + rank * per_rank
        samples = [self.sample(step, first + i) for i in range(per_rank)]
        return tuple(np.stack([s[j] for s in samples]) for j in range(4))

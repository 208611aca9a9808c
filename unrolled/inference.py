"""Fusing images with DeRUN, with the input/output conventions of :func:`hifm.solve`.

:func:`fuse_derun` takes the same arrays as :func:`hifm.solve` — the first source A
(infrared, or MRI), the second B (visible, or CT/PET/SPECT), gray ``H×W`` or colour
``H×W×3``, uint8/uint16/float in [0, 1] — through :func:`hifm.sources.prepare_sources`
(luminance by BT.601) and returns the result of :func:`hifm.sources.restore_layout`:
colour when a source is colour (its chroma is kept, TV-denoised when noisy as in
:func:`hifm.solve` for networks with ``denoise_sources``), the inputs' integer dtype or float.

Weights: ``task="ivf"`` (default) or ``"mif"`` selects the shipped weights
(:func:`unrolled.load_pretrained`); ``weights=`` takes a weights JSON/safetensors path or
a :class:`~unrolled.derun.DeRUN`.  **[decision]** The task is not guessed from the
images: ``task=None`` means ``"ivf"``. (The command line guesses ``"mif"`` from file and
folder names — mri/ct/pet/spect — or a medical data set layout, and says so.)

Any image size works (the network pads internally, like the solver); lists of pairs
are fused in batches of equal-size pairs; ``device="cuda"`` runs on a GPU.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hifm import backend
from hifm.chroma import denoise_chroma
from hifm.errors import InputError
from hifm.memory import check_memory
from hifm.sources import prepare_sources, restore_layout

from .derun import DeRUN
from .weights import load_pretrained, load_weights

__all__ = ["fuse_derun", "fuse_tensors", "get_model", "DEFAULT_TASK"]

DEFAULT_TASK = "ivf"

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@functools.lru_cache(maxsize=8)
def _cached(source: str, device: str, dtype: str) -> DeRUN:
    torch_dtype = _DTYPES[dtype]
    if source.startswith("task:"):
        return load_pretrained(source[5:], device=device, dtype=torch_dtype)
    return load_weights(source, device=device, dtype=torch_dtype)


def check_device(device: Any) -> str:
    """``device`` as text when it is ``cpu``, ``cuda`` or ``cuda:N`` and usable here; else one InputError line."""
    text = str(device)
    if not re.fullmatch(r"cpu|cuda(:\d+)?", text):
        raise InputError(f"device must be cpu, cuda or cuda:N, got {text!r}")
    if text.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"device {text!r} requested but torch sees no CUDA GPU (use --device cpu)")
        index = torch.device(text).index or 0
        if index >= torch.cuda.device_count():
            raise InputError(f"device {text!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    return text


def get_model(task: str | None = None, weights: Any = None, device: str = "cpu", dtype: str = "float32") -> DeRUN:
    """The network for a task or weights (loaded once per process and device), in eval mode."""
    if dtype not in _DTYPES:
        raise InputError(f"dtype must be float32 or float64, got {dtype!r}")
    device = check_device(device)
    if isinstance(weights, DeRUN):
        return weights.to(device=device, dtype=_DTYPES[dtype]).eval()
    if weights is not None:
        return _cached(str(Path(weights).resolve()), str(device), dtype)
    return _cached(f"task:{task or DEFAULT_TASK}", str(device), dtype)


def _fuse_batch(model: DeRUN, preps: list, device: str, dtype: torch.dtype) -> list[np.ndarray]:
    a = torch.stack([torch.as_tensor(np.asarray(p.a)) for p in preps]).to(device=device, dtype=dtype)
    b = torch.stack([torch.as_tensor(np.asarray(p.b)) for p in preps]).to(device=device, dtype=dtype)
    with torch.no_grad():
        y = model(a, b)
    return [y[i].cpu().numpy().astype(preps[i].a.dtype, copy=False) for i in range(len(preps))]


def fuse_derun(
    ir: Any,
    vis: Any,
    task: str | None = None,
    weights: Any = None,
    device: str = "cpu",
    dtype: str = "float32",
    batch_size: int = 8,
) -> Any:
    """Fuse with DeRUN; the conventions of :func:`hifm.solve` (see the module docstring).

    Args:
        ir, vis: one pair of arrays, or two equal-length lists of arrays (a list is returned).
        task: ``"ivf"`` or ``"mif"`` (shipped weights); None: ``"ivf"``.
        weights: a weights JSON/safetensors path or a :class:`DeRUN` (overrides ``task``).
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        dtype: ``"float32"`` (default) or ``"float64"``: the network's and the inputs' precision.
        batch_size: pairs per forward pass (pairs of equal size are batched together).

    Returns:
        The fused image (NumPy), or a list of them.
    """
    single = not isinstance(ir, (list, tuple))
    irs, viss = ([ir], [vis]) if single else (list(ir), list(vis))
    if len(irs) != len(viss):
        raise InputError(f"got {len(irs)} first sources and {len(viss)} second sources")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InputError(f"batch_size must be an integer ≥ 1, got {batch_size!r}")
    device = check_device(device)
    model = get_model(task, weights, device, dtype)
    n_filters = int(model.config.bank("l").shape[0] + model.config.bank("k").shape[0])
    for x, y in zip(irs, viss):  # before anything is allocated: each pair alone must fit
        sx, sy = np.shape(x), np.shape(y)
        if len(sx) >= 2 and len(sy) >= 2:
            check_memory("derun", (max(sx[0], sy[0]), max(sx[1], sy[1])), colour=len(sx) == 3 or len(sy) == 3,
                         dtype=dtype, n_filters=n_filters, margin=int(model.config.margin), device=device)
    preps = [prepare_sources(backend.to_numpy(x), backend.to_numpy(y), dtype) for x, y in zip(irs, viss)]
    if model.config.denoise_sources:  # the chroma of a noisy colour source, as hifm.solve does
        for prep in preps:
            if prep.chroma is not None:
                prep.chroma, _ = denoise_chroma(prep.chroma, model.noise_rule)
    results: list[Any] = [None] * len(preps)
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, p in enumerate(preps):
        by_shape.setdefault(tuple(p.a.shape), []).append(i)
    for shape, idx in by_shape.items():  # and each batch of equal-size pairs
        if len(idx) == 1:
            continue
        colour = any(preps[i].chroma is not None for i in idx)
        check_memory("derun", shape, colour=colour, dtype=dtype, n_filters=n_filters,
                     margin=int(model.config.margin), device=device, batch=min(int(batch_size), len(idx)))
    for idx in by_shape.values():
        for s in range(0, len(idx), int(batch_size)):
            chunk = idx[s : s + batch_size]
            fused = _fuse_batch(model, [preps[i] for i in chunk], device, _DTYPES[dtype])
            for i, y in zip(chunk, fused):
                results[i] = restore_layout(y, preps[i])
    return results[0] if single else results


def fuse_tensors(model: DeRUN, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The network on luminance tensors ``(B, H, W)`` in [0, 1], without autograd (a thin helper)."""
    with torch.no_grad():
        return model(a, b)


"""The FFT pair of the Y-step for the NumPy solver, on the fastest library installed.

``scipy.fft`` is the default: on the padded, 5-smooth sizes the solver uses it
measured as fast as ``torch.fft`` on this machine (``experiments/bench_solver.py``
reports both), and it avoids importing torch (1–2 s) in the CLI.
``HIFM_FFT=torch`` selects ``torch.fft`` (zero-copy through ``torch.from_numpy``).
Threads are limited to ``workers`` for the duration of a solve.
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

import numpy as np
import scipy.fft

__all__ = ["YStepFFT", "fft_library"]


def fft_library() -> str:
    """``"scipy"``, or ``"torch"`` when the environment variable ``HIFM_FFT=torch`` asks for it."""
    choice = os.environ.get("HIFM_FFT", "scipy").lower()
    if choice not in ("scipy", "torch"):
        raise ValueError(f"HIFM_FFT must be 'scipy' or 'torch', got {choice!r}")
    return choice


class YStepFFT:
    """Computes Y = irfft2(rfft2(Ens) / D); returns the new Y (torch: written into ``out``)."""

    def __init__(self, denom: np.ndarray, shape: tuple[int, int], dtype: np.dtype, workers: int = 1, library: str | None = None):
        self.shape = shape
        self.workers = workers
        self.library = library or fft_library()
        self.denom = np.ascontiguousarray(denom, dtype=dtype)
        # 1/D, applied to the interleaved (re, im) floats of the spectrum: a real multiply,
        # where numpy's complex ÷ real would cast D to complex and run a complex division.
        inv = 1.0 / np.asarray(denom, dtype=np.float64)
        self.inv_denom = np.ascontiguousarray(np.repeat(inv, 2, axis=-1), dtype=dtype)  # (re, im) pairs
        if self.library == "torch":
            import torch

            self._torch = torch
            self._denom_t = torch.from_numpy(self.denom)
            self._spec = None

    @contextlib.contextmanager
    def threads(self) -> Iterator[None]:
        """Limit the FFT library to ``workers`` threads inside the block."""
        if self.library == "torch":
            old = self._torch.get_num_threads()
            self._torch.set_num_threads(self.workers)
            try:
                yield
            finally:
                self._torch.set_num_threads(old)
        else:
            with scipy.fft.set_workers(self.workers):
                yield

    def __call__(self, ens: np.ndarray, out: np.ndarray) -> np.ndarray:
        if self.library == "torch":
            torch = self._torch
            spec = torch.fft.rfft2(torch.from_numpy(ens))
            spec.div_(self._denom_t)
            torch.fft.irfft2(spec, s=self.shape, out=torch.from_numpy(out))
            return out
        spec = scipy.fft.rfft2(ens)
        np.multiply(spec.view(self.inv_denom.dtype), self.inv_denom, out=spec.view(self.inv_denom.dtype))
        return scipy.fft.irfft2(spec, s=self.shape, overwrite_x=True)

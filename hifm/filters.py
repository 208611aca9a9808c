"""Filter banks as data, and their optical transfer functions (DESIGN §3).

A :class:`FilterBank` is a stack of small odd-sized **convolution** kernels
(``n × kh × kw``) with a name; the solver, the metrics and DeRUN take banks as
arguments.  The operator of kernel ``K`` with centre ``c = (kh // 2, kw // 2)``
is the circular convolution

    (K ⊛ x)[i, j] = Σ_{u,v} K[u, v] · x[i − (u − c₀), j − (v − c₁)],

which is what MATLAB's ``psf2otf`` diagonalises: the OTF is the 2-D DFT of the
kernel zero-padded to the image size with its centre rolled to (0, 0).  The
adjoint ∇ᵀ is the correlation with the same kernel (conj(K̂) in Fourier).

With this convention the forward difference ∂x Y[i, j] = Y[i, j+1] − Y[i, j]
has the kernel row ``[1, −1, 0]``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import backend

__all__ = [
    "FilterBank",
    "differences",
    "differences_with_diagonals",
    "dct_atoms",
    "sobel",
    "get_bank",
    "otf",
    "BANKS",
]


@dataclass(frozen=True)
class FilterBank:
    """A named stack of odd-sized convolution kernels, shape ``(n, kh, kw)``."""

    name: str
    kernels: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        k = np.asarray(self.kernels, dtype=np.float64)
        if k.ndim == 2:
            k = k[None]
        if k.ndim != 3 or k.shape[1] % 2 == 0 or k.shape[2] % 2 == 0:
            raise ValueError(f"filter bank {self.name!r}: kernels must be (n, odd, odd), got {k.shape}")
        k = k.copy()
        k.setflags(write=False)
        object.__setattr__(self, "kernels", k)

    def __len__(self) -> int:
        return self.kernels.shape[0]

    @property
    def radius(self) -> int:
        """Largest distance of a kernel tap from the centre (in pixels, per axis)."""
        return max(self.kernels.shape[1], self.kernels.shape[2]) // 2

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, FilterBank)
            and self.name == other.name
            and self.kernels.shape == other.kernels.shape
            and bool(np.array_equal(self.kernels, other.kernels))
        )

    def __hash__(self) -> int:
        return hash((self.name, self.kernels.shape, self.kernels.tobytes()))


def differences() -> FilterBank:
    """Forward differences ∂x (Y[i, j+1] − Y[i, j]) and ∂y (Y[i+1, j] − Y[i, j])."""
    k = np.zeros((2, 3, 3))
    k[0, 1, 0], k[0, 1, 1] = 1.0, -1.0  # x[i, j+1] - x[i, j]
    k[1, 0, 1], k[1, 1, 1] = 1.0, -1.0  # x[i+1, j] - x[i, j]
    return FilterBank("diff", k)


def differences_with_diagonals() -> FilterBank:
    """∂x, ∂y and the two diagonal differences (scaled by 1/√2)."""
    k = np.zeros((4, 3, 3))
    k[:2] = differences().kernels
    s = 1.0 / np.sqrt(2.0)
    k[2, 0, 0], k[2, 1, 1] = s, -s  # x[i+1, j+1] - x[i, j]
    k[3, 0, 2], k[3, 1, 1] = s, -s  # x[i+1, j-1] - x[i, j]
    return FilterBank("diff4", k)


def dct_atoms() -> FilterBank:
    """The 8 non-constant orthonormal 3×3 DCT-II atoms (Deep ADMM-Net's basis, zero-mean)."""
    n = 3
    c = np.array(
        [[np.sqrt((1 if u == 0 else 2) / n) * np.cos(np.pi * (2 * x + 1) * u / (2 * n)) for x in range(n)] for u in range(n)]
    )
    atoms = [np.outer(c[u], c[v]) for u in range(n) for v in range(n) if (u, v) != (0, 0)]
    return FilterBank("dct3", np.stack(atoms))


def sobel() -> FilterBank:
    """Sobel kernels (horizontal then vertical derivative); for losses and metrics."""
    gx = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
    return FilterBank("sobel", np.stack([gx, gx.T]))


BANKS = {"diff": differences, "diff4": differences_with_diagonals, "dct3": dct_atoms, "sobel": sobel}


def get_bank(bank: "str | FilterBank | np.ndarray") -> FilterBank:
    """A :class:`FilterBank` from a name in :data:`BANKS`, a bank, or a kernel array."""
    if isinstance(bank, FilterBank):
        return bank
    if isinstance(bank, str):
        try:
            return BANKS[bank]()
        except KeyError:
            raise ValueError(f"unknown filter bank {bank!r}; known: {sorted(BANKS)}") from None
    return FilterBank("custom", np.asarray(bank))


def otf(kernels: Any, shape: tuple[int, int]) -> Any:
    """Optical transfer functions of a kernel stack for images of ``shape``.

    K̂_n = rfft2(pad(K_n) rolled so that its centre sits at (0, 0)), so that
    ``irfft2(K̂ · rfft2(x)) == K ⊛ x`` (circular).  ``kernels`` is ``(n, kh, kw)``
    in any backend; the result is ``(n, H, W//2 + 1)`` complex, differentiable
    in the kernels for torch.
    """
    h, w = int(shape[0]), int(shape[1])
    n, kh, kw = kernels.shape
    if kh > h or kw > w:
        raise ValueError(f"kernel {kh}×{kw} larger than the image {h}×{w}")
    xp = backend.get_xp(kernels)
    padded = backend.zeros((n, h, w), like=kernels)
    padded[:, :kh, :kw] = kernels
    padded = xp.roll(padded, (-(kh // 2), -(kw // 2)), (-2, -1))
    return backend.fft_module(kernels).rfft2(padded, (h, w))

"""Feature extractors of the learned anchor M_θ = anchor(A, B) + R(PWSM(A, B)) (DESIGN §7).

**[decision]** Every convolution is 3×3 and bias-free, every activation
parameter-free (LeakyReLU, slope 0.2), so that the variants of the ablation have
exactly the same number of learned parameters (17,712 at the reference widths).

A layer of :class:`PartialSharing` has a *shared* convolution (the same weights
for both modalities, ``C_s`` output channels) and a *private* convolution per
modality (``C_p`` channels); a modality's output is the concatenation
``[shared(x), private_m(x)]`` (``C_s + C_p`` channels).  The variants are widths:

=============  ============================  ==========================================
variant        widths per layer (C_s, C_p)   parameters (9 · Σ C_in · (C_s + 2 C_p))
=============  ============================  ==========================================
``pwsm``       (16,16) (28,4) (8,8)          9·(1·48 + 32·36 + 32·24) = 17,712
``symmetric``  (0,24) (0,24) (0,16)          9·(1·48 + 24·48 + 24·32) = 17,712
``siamese``    (48,0) (30,0) (16,0)          9·(1·48 + 48·30 + 30·16) = 17,712
=============  ============================  ==========================================

The Siamese widths 1→48→30→16 are the three-layer widths with the same output (16
channels) whose count is exactly 17,712: (C₁ + 16)(C₂ + 1) = 1984 = 2⁶·31 has the
solutions (16, 61), (46, 31), (48, 30) and (15, 63); (48, 30) is the one closest
to the other variants' shapes.  ``sobel`` is the fixed edge extractor (no learned
parameter): [x, ∂x x, ∂y x, |∇x|] by the Sobel kernels of :func:`hifm.filters.sobel`.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from hifm.filters import sobel

__all__ = ["WIDTHS", "PartialSharing", "SobelExtractor", "AnchorHead", "make_extractor", "EXTRACTORS"]

WIDTHS: dict[str, tuple[tuple[int, int], ...]] = {
    "pwsm": ((16, 16), (28, 4), (8, 8)),
    "symmetric": ((0, 24), (0, 24), (0, 16)),
    "siamese": ((48, 0), (30, 0), (16, 0)),
}
EXTRACTORS = ("pwsm", "symmetric", "siamese", "sobel", "none")

NEGATIVE_SLOPE = 0.2


def _weight(c_in: int, c_out: int) -> nn.Parameter | None:
    """A bias-free 3×3 convolution weight ``(c_out, c_in, 3, 3)`` (PyTorch's default init), or None."""
    if c_out == 0:
        return None
    return nn.Conv2d(c_in, c_out, 3, bias=False).weight


class PartialSharing(nn.Module):
    """Two-modality extractor with shared and private 3×3 convolutions per layer.

    Args:
        widths: ``(C_s, C_p)`` per layer; (0, C) is a symmetric two-branch layer,
            (C, 0) a Siamese (fully shared) one.

    ``forward(a, b)`` takes ``(B, 1, H, W)`` images and returns ``(B, 2·C_out, H, W)``:
    A's features then B's, C_out = C_s + C_p of the last layer.  A layer runs as one
    convolution per modality whose weight is [shared; private] stacked along the
    output channels (the same as two convolutions and a concatenation, without the
    copy); borders are zero-padded.
    """

    def __init__(self, widths: Sequence[tuple[int, int]] = WIDTHS["pwsm"]):
        super().__init__()
        self.widths = tuple((int(s), int(p)) for s, p in widths)
        # weights named shared{i}, a{i}, b{i} (layers without shared/private channels have none)
        self.weights = nn.ParameterDict()
        c_in = 1
        for i, (cs, cp) in enumerate(self.widths):
            if cs + cp == 0:
                raise ValueError("every layer needs at least one output channel")
            for name, c_out in ((f"shared{i}", cs), (f"a{i}", cp), (f"b{i}", cp)):
                w = _weight(c_in, c_out)
                if w is not None:
                    self.weights[name] = w
            c_in = cs + cp
        self.out_channels = c_in

    def layer_weight(self, i: int, modality: str) -> torch.Tensor:
        """The weight of layer ``i`` for modality ``"a"`` or ``"b"``: [shared; private] stacked."""
        parts = [self.weights[k] for k in (f"shared{i}", f"{modality}{i}") if k in self.weights]
        return parts[0] if len(parts) == 1 else torch.cat(parts, 0)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        xa, xb = a, b
        for i in range(len(self.widths)):
            xa = F.leaky_relu(F.conv2d(xa, self.layer_weight(i, "a"), padding=1), NEGATIVE_SLOPE, inplace=True)
            xb = F.leaky_relu(F.conv2d(xb, self.layer_weight(i, "b"), padding=1), NEGATIVE_SLOPE, inplace=True)
        return torch.cat([xa, xb], 1)

    def extra_repr(self) -> str:
        return f"widths={self.widths}"


class SobelExtractor(nn.Module):
    """Fixed edge extractor: [x, Sobel_x, Sobel_y, magnitude] per modality (no learned parameter)."""

    out_channels = 4

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("kernels", torch.tensor(sobel().kernels, dtype=torch.float32)[:, None], persistent=False)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernels.to(x.dtype)
        g = F.conv2d(x, k, padding=1)
        mag = torch.sqrt(g[:, :1] ** 2 + g[:, 1:] ** 2 + 1e-12)
        return torch.cat([x, g, mag], 1)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat([self._features(a), self._features(b)], 1)


class AnchorHead(nn.Module):
    """R: features → a correction of the anchor, 3×3 conv → LeakyReLU → 3×3 conv to 1 channel.

    The last convolution is zero-initialised, so R ≡ 0 and M_θ = anchor(A, B) at init.
    """

    def __init__(self, in_channels: int, width: int = 12):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(width, 1, 3, padding=1, bias=False)
        nn.init.zeros_(self.conv2.weight)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.leaky_relu(self.conv1(features), NEGATIVE_SLOPE, inplace=True))


def make_extractor(kind: str) -> nn.Module | None:
    """An extractor by name: ``pwsm`` (default), ``symmetric``, ``siamese``, ``sobel`` or ``none``."""
    if kind in WIDTHS:
        return PartialSharing(WIDTHS[kind])
    if kind == "sobel":
        return SobelExtractor()
    if kind == "none":
        return None
    raise ValueError(f"unknown extractor {kind!r}; choose one of {EXTRACTORS}")

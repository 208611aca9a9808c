"""Reference architectures of deep fusion peers, for timing on the same machine (DESIGN §12).

DESIGN §12 gives DenseFuse's cost on its reference machine (54 GFLOPs and 1.25 s per 640×480
pair on one core). Seconds do not carry from one machine to another, so the network benchmark
times this re-implementation of DenseFuse's *architecture* (random weights: the cost does not
depend on them) in the same run as DeRUN, and reports the ratio.

DenseFuse (Li & Wu, IEEE TIP 2019), as described in the paper: an encoder of one 3×3
convolution to 16 channels followed by a dense block of three 3×3 convolutions of 16 channels,
each fed the concatenation of all previous outputs (64 channels out); the two sources' features
are added (the paper's "addition" strategy; we average, which costs the same); a decoder of four
3×3 convolutions 64 → 64 → 32 → 16 → 1. ReLU after every convolution but the last; reflective
padding keeps the size.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["DenseFuse", "densefuse_macs_per_pixel"]


def _conv(cin: int, cout: int, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class _DenseEncoder(nn.Module):
    def __init__(self, width: int = 16, layers: int = 3):
        super().__init__()
        self.first = _conv(1, width)
        self.dense = nn.ModuleList(_conv(width * (i + 1), width) for i in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(x)
        for conv in self.dense:
            x = torch.cat([x, conv(x)], dim=1)
        return x


class DenseFuse(nn.Module):
    """DenseFuse's architecture (random weights): ``forward(a, b)`` with ``(N, 1, H, W)`` sources."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = _DenseEncoder()
        self.decoder = nn.Sequential(_conv(64, 64), _conv(64, 32), _conv(32, 16), _conv(16, 1, relu=False))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.decoder(0.5 * (self.encoder(a) + self.encoder(b)))


def densefuse_macs_per_pixel() -> int:
    """Multiply-accumulates per pixel of one pair: the encoder twice, the decoder once (3×3 kernels)."""
    encoder = 1 * 16 + 16 * 16 + 32 * 16 + 48 * 16
    decoder = 64 * 64 + 64 * 32 + 32 * 16 + 16 * 1
    return 9 * (2 * encoder + decoder)

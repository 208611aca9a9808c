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

Inference (no autograd graph) on large images runs the extractor and the head in row
bands (:func:`banded`): every module here is a stack of zero-padded 3×3 convolutions and
pointwise maps, so a band extended by the stack's radius (``radius``, one row per
convolution) gives exactly the rows of the whole-image result.  At 640×480 a whole-image
32-channel feature map is 39 MB, above glibc's largest mmap threshold (32 MB), so every
layer's output would be freshly mapped and page-faulted; bands of :data:`BAND_ROWS` rows
avoid that, and the convolutions after the first layer run channels-last (faster in
oneDNN on this CPU).  Tested against the whole-image forward in
``tests/test_torch_fastpaths.py``.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from hifm import backend
from hifm.filters import sobel

__all__ = ["WIDTHS", "PartialSharing", "SobelExtractor", "AnchorHead", "make_extractor", "EXTRACTORS", "banded",
           "BAND_ROWS"]

WIDTHS: dict[str, tuple[tuple[int, int], ...]] = {
    "pwsm": ((16, 16), (28, 4), (8, 8)),
    "symmetric": ((0, 24), (0, 24), (0, 16)),
    "siamese": ((48, 0), (30, 0), (16, 0)),
}
EXTRACTORS = ("pwsm", "symmetric", "siamese", "sobel", "none")

NEGATIVE_SLOPE = 0.2

#: Output rows per band of :func:`banded`.  Measured at 640×480 on one core (PWSM + head):
#: bands of 32 to 240 rows all take about 0.4 s against 0.8–1.0 s for the whole image;
#: 128 rows keep the recomputed halo (2 × 5 rows per band) under 10 %.
BAND_ROWS = 128


def _conv3x3_channels_last(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``F.conv2d(x, weight, padding=1)`` of a one-channel ``x (B, 1, H, W)``, returned channels-last.

    out[c, i, j] = Σ_{u,v} W[c, 0, u, v] x_pad[i + u, j + v]: the nine shifted copies of the
    zero-padded image stacked last, times the ``(9, C)`` weight matrix, so the result is
    already in the channels-last layout the next convolutions want (no transpose).
    """
    h, w = x.shape[-2:]
    xp = F.pad(x[:, 0], (1, 1, 1, 1))
    cols = torch.stack([xp[:, u : u + h, v : v + w] for u in range(3) for v in range(3)], -1)  # (B, H, W, 9)
    out = cols.matmul(weight.reshape(weight.shape[0], 9).t())  # (B, H, W, C)
    return out.permute(0, 3, 1, 2)


def banded(
    fn: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor], radius: int, rows: int | None = None
) -> torch.Tensor:
    """``fn(*inputs)`` computed band by band over ``rows`` rows (default :data:`BAND_ROWS`;
    no autograd; DESIGN §12).

    ``fn`` must be a stack of ``radius`` zero-padded ("same") 3×3 convolutions and pointwise
    maps of ``(B, C, H, W)`` tensors.  Output rows [r₀, r₁) then depend only on input rows
    [r₀ − radius, r₁ + radius), and the zero padding at a band's cut edge corrupts only
    ``radius`` rows next to it, which are dropped: the result equals ``fn(*inputs)``
    (up to the rounding of the convolution kernels).
    """
    rows = BAND_ROWS if rows is None else int(rows)
    h = inputs[0].shape[-2]
    if h <= rows + 2 * radius:
        return fn(*inputs)
    outs = []
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        lo, hi = max(0, r0 - radius), min(h, r1 + radius)
        y = fn(*(x[..., lo:hi, :] for x in inputs))
        outs.append(y[..., r0 - lo : r1 - lo, :])
    return torch.cat(outs, -2)


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
    copy); borders are zero-padded.  Without autograd on the CPU the first layer is the
    same correlation computed as a matrix product into channels-last memory
    (:func:`_conv3x3_channels_last`), so the later convolutions run channels-last.
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

    @property
    def radius(self) -> int:
        """Rows (and columns) of input each output pixel reaches: one per 3×3 layer."""
        return len(self.widths)

    def layer_weight(self, i: int, modality: str) -> torch.Tensor:
        """The weight of layer ``i`` for modality ``"a"`` or ``"b"``: [shared; private] stacked."""
        parts = [self.weights[k] for k in (f"shared{i}", f"{modality}{i}") if k in self.weights]
        return parts[0] if len(parts) == 1 else torch.cat(parts, 0)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        # without autograd the first layer is built channels-last and the rest follow suit
        channels_last = not backend.records_graph(a, b, *self.parameters()) and a.shape[1] == 1 and a.device.type == "cpu"
        xs = []
        for x, modality in ((a, "a"), (b, "b")):
            for i in range(len(self.widths)):
                w = self.layer_weight(i, modality)
                y = _conv3x3_channels_last(x, w) if channels_last and i == 0 else F.conv2d(x, w, padding=1)
                x = F.leaky_relu(y, NEGATIVE_SLOPE, inplace=True)
            xs.append(x)
        return torch.cat(xs, 1)

    def extra_repr(self) -> str:
        return f"widths={self.widths}"


class SobelExtractor(nn.Module):
    """Fixed edge extractor: [x, Sobel_x, Sobel_y, magnitude] per modality (no learned parameter)."""

    out_channels = 4
    radius = 1

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

    radius = 2

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

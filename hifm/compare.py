"""One side-by-side picture of the sources and any number of fused results (``hifm compare``).

:func:`compose` puts the images in a row of equal panels, each with its label above it,
and, when a zoom rectangle ``(x, y, w, h)`` is given, outlines it on every panel and adds
a second row with that crop of each image enlarged by an integer factor (nearest
neighbour, so the pixels stay visible). The panels hold the images' own pixels (8-bit
RGB; 16-bit and float images are mapped to 8 bits, gray is repeated in R, G, B), so the
picture shows exactly what was compared. :class:`Layout` says where each panel lies.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .errors import InputError

__all__ = ["Layout", "compose", "to_display"]

MARGIN = 8
LABEL_HEIGHT = 22
BACKGROUND = 255
ZOOM_COLOUR = (230, 40, 40)


@dataclass
class Layout:
    """Where :func:`compose` put things, in pixels of the composed image.

    Attributes:
        panels: ``(top, left, height, width)`` of each image panel, in input order.
        zooms: the same for each enlarged crop (empty without a zoom).
        factor: the enlargement of the crops.
        scale: the size factor applied to the panels.
    """

    panels: list[tuple[int, int, int, int]] = field(default_factory=list)
    zooms: list[tuple[int, int, int, int]] = field(default_factory=list)
    factor: int = 1
    scale: float = 1.0


def to_display(image: np.ndarray) -> np.ndarray:
    """An ``H×W×3`` uint8 view of an image: uint16 / 257, float in [0, 1] × 255, gray repeated."""
    arr = np.asarray(image)
    if arr.dtype == np.uint16:
        arr = np.rint(arr / 257.0).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating) or arr.dtype == np.bool_:
        arr = np.rint(np.clip(arr.astype(np.float64), 0, 1) * 255).astype(np.uint8)
    elif arr.dtype != np.uint8:
        raise InputError(f"cannot display an image of dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return np.ascontiguousarray(arr)


def _font(size: int):  # noqa: ANN202 - a PIL font
    from PIL import ImageFont

    try:
        import matplotlib

        return ImageFont.truetype(f"{matplotlib.get_data_path()}/fonts/ttf/DejaVuSans.ttf", size)
    except (ImportError, OSError):
        return ImageFont.load_default()


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return image
    from PIL import Image

    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


def compose(
    images: Sequence[np.ndarray],
    labels: Sequence[str],
    zoom: tuple[int, int, int, int] | None = None,
    scale: float = 1.0,
) -> tuple[np.ndarray, Layout]:
    """The comparison picture (uint8 ``H×W×3``) and its :class:`Layout`.

    Args:
        images: the images, all of the same height and width (gray or colour, any bit depth).
        labels: one label per image.
        zoom: ``(x, y, width, height)`` of a rectangle in image pixels to outline and enlarge.
        scale: size factor of the panels (e.g. 0.5 for large images); the crops are taken
            from the full-resolution images.

    Raises:
        InputError: no image, labels and images differ in number, sizes differ, the zoom
            rectangle is not inside the images, or ``scale`` is not positive.
    """
    from PIL import Image, ImageDraw

    if not images:
        raise InputError("nothing to compare: give at least one image")
    if len(labels) != len(images):
        raise InputError(f"{len(images)} images but {len(labels)} labels")
    if not scale > 0:
        raise InputError(f"--scale must be positive, got {scale}")
    shown = [to_display(x) for x in images]
    h, w = shown[0].shape[:2]
    for x, label in zip(shown, labels):
        if x.shape[:2] != (h, w):
            raise InputError(f"'{label}' is {x.shape[1]}×{x.shape[0]}, the first image {w}×{h} (W×H): "
                             "the panels must have one size")
    if zoom is not None:
        zx, zy, zw, zh = (int(v) for v in zoom)
        if zw < 1 or zh < 1 or zx < 0 or zy < 0 or zx + zw > w or zy + zh > h:
            raise InputError(f"--zoom {zx} {zy} {zw} {zh} is not inside the {w}×{h} images")
    panels = [_resize(x, scale) for x in shown]
    ph, pw = panels[0].shape[:2]
    layout = Layout(scale=scale)
    n = len(panels)
    width = MARGIN + n * (pw + MARGIN)
    height = MARGIN + LABEL_HEIGHT + ph + MARGIN
    crops: list[np.ndarray] = []
    if zoom is not None:
        layout.factor = max(1, pw // zw)
        crops = [np.kron(x[zy : zy + zh, zx : zx + zw], np.ones((layout.factor, layout.factor, 1), np.uint8))
                 for x in shown]
        height += crops[0].shape[0] + MARGIN
    canvas = np.full((height, width, 3), BACKGROUND, np.uint8)
    top = MARGIN + LABEL_HEIGHT
    for k, panel in enumerate(panels):
        left = MARGIN + k * (pw + MARGIN)
        canvas[top : top + ph, left : left + pw] = panel
        layout.panels.append((top, left, ph, pw))
        if crops:
            ztop = top + ph + MARGIN
            ch, cw = crops[k].shape[:2]
            zleft = left + (pw - cw) // 2
            canvas[ztop : ztop + ch, zleft : zleft + cw] = crops[k]
            layout.zooms.append((ztop, zleft, ch, cw))
    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    font = _font(14)
    for (ptop, pleft, _, pwid), label in zip(layout.panels, labels):
        text = str(label)
        while len(text) > 3 and draw.textlength(text, font=font) > pwid:
            text = text[:-2] + "…"
        draw.text((pleft + pwid / 2, ptop - 4), text, fill=(0, 0, 0), font=font, anchor="md")
        if zoom is not None:  # the zoom rectangle, outside the crop's own pixels
            x0, y0 = pleft + zx * scale, ptop + zy * scale
            draw.rectangle([x0 - 1, y0 - 1, x0 + zw * scale, y0 + zh * scale], outline=ZOOM_COLOUR, width=1)
    for ztop, zleft, ch, cw in layout.zooms:
        draw.rectangle([zleft - 1, ztop - 1, zleft + cw, ztop + ch], outline=ZOOM_COLOUR, width=1)
    return np.asarray(picture), layout

"""Image reading and writing, and the mapping between stored samples and [0, 1] floats.

Reading (:func:`read_image`)
    PNG, JPEG, BMP and TIFF (also GIF, PPM/PGM and WebP through Pillow), 8 and 16
    bits per sample, float TIFF (through ``tifffile``). The array comes back as
    stored: ``H×W`` (one plane) or ``H×W×3`` (colour), dtype ``uint8``, ``uint16`` or
    ``float32``. Conversions, all documented here and nowhere silent beyond them:

    * alpha is dropped (RGBA → RGB, LA → L, gray+alpha TIFF → gray): fusion has no
      use for transparency and the colour values under it are kept as stored;
    * palette images are expanded to RGB, or to one plane when every used palette
      entry is gray;
    * 1-bit images become ``uint8`` 0/255, ``MINISWHITE`` TIFFs are inverted;
    * 32-bit integer images (Pillow mode ``"I"``, int/uint32 TIFF) become ``uint16``
      when every value lies in 0..65535, and are refused otherwise;
    * float16/float64 TIFFs become ``float32``;
    * ``gray_if_equal=True`` returns one plane for a colour file whose three channels
      are equal in every pixel (gray content stored as RGB, as in TNO and the
      Harvard medical images);
    * the EXIF (or TIFF) orientation is applied, as every photo viewer does: a photo
      stored sideways with orientation 6 comes back upright (:func:`image_orientation`);
    * a file with several frames or pages (animated GIF/PNG/WebP, multi-page TIFF) is
      refused unless ``page=`` says which one to read; TIFF reduced-resolution pages
      (thumbnails) do not count.

    Only regular files are read: a device (``/dev/zero``), a FIFO or a socket is refused
    by type, before it is opened; a pseudo-file that reports size 0 but has content
    (``/proc``) is refused as such, not as empty.

    Pillow reduces 16-bit colour PNGs to 8 bits, so those (colour types 2, 4 and 6 at
    16 bits) are decoded with :mod:`png` (pypng) instead, and 16-bit RGB PNGs are
    written with it; pypng is pure Python, so these files decode at a few megabytes
    per second. Every other format and mode goes through Pillow (or ``tifffile``).

Writing (:func:`write_image`)
    ``uint8``/``uint16`` samples, format from the extension; the file is written to a
    temporary file in the target folder and moved into place with :func:`os.replace`,
    so a reader never sees a partial file and a failed write leaves the old target
    (if any) untouched and no temporary file behind. An existing target that is
    read-only is refused, not replaced.

    Fused results (``hifm fuse`` and ``fuse-dir``) follow one rule for the bit depth
    (:func:`fused_bit_depth`): integer results keep their 8 or 16 bits; a float result
    (float sources, e.g. a float TIFF in [0, 1]) is stored with 16 bits per sample where
    the format holds 16 bits (PNG, TIFF) and with 8 bits in JPEG and BMP.

Floats (:func:`to_float`, :func:`from_float`)
    ``x = stored / scale`` with ``scale`` = 255 (uint8), 65535 (uint16), 1 (bool and
    float); back with rounding and clipping.

Errors: :class:`~hifm.errors.ImageReadError` and :class:`~hifm.errors.ImageWriteError`
(both name the file) and :class:`~hifm.errors.InputError` for bad arrays.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable

import numpy as np

from .errors import ImageReadError, ImageWriteError, InputError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "FLOAT_TOLERANCE",
    "IMAGE_EXTENSIONS",
    "ImageFormat",
    "read_image",
    "write_image",
    "fused_bit_depth",
    "image_orientation",
    "apply_orientation",
    "to_float",
    "from_float",
]

DEFAULT_MAX_PIXELS: int = 200_000_000
"""Largest image (width × height) :func:`read_image` decodes unless told otherwise."""

FLOAT_TOLERANCE: float = 1e-4
"""Float samples within this distance outside [0, 1] are round-off and are clipped."""

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
"""Extensions :func:`write_image` understands (lower case); :func:`read_image` sniffs."""

_WRITE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
_PIL_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "GIF", "PPM", "WEBP")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_PIL_LIMIT_LOCK = threading.Lock()


# --------------------------------------------------------------------------- floats


@dataclass(frozen=True)
class ImageFormat:
    """How stored samples map to [0, 1]: ``float = stored / scale``.

    Attributes:
        dtype: NumPy dtype name of the original array (``"uint8"``, ``"uint16"``,
            ``"bool"``, ``"float32"``, ``"float64"``).
        scale: the stored value that maps to 1.0 (255, 65535, or 1).
    """

    dtype: str
    scale: float

    @property
    def bit_depth(self) -> int | None:
        """8 or 16 for integer formats, ``None`` for float and bool."""
        return {"uint8": 8, "uint16": 16}.get(self.dtype)


_UINT_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def to_float(
    image: np.ndarray,
    *,
    dtype: Any = np.float32,
    clip: bool = False,
) -> tuple[np.ndarray, ImageFormat]:
    """Map an image to floats in [0, 1] and record how to map it back.

    ``uint8`` → x / 255, ``uint16`` → x / 65535, ``bool`` → 0 / 1, float → unchanged.

    Args:
        image: array of dtype uint8, uint16, bool or float (any shape).
        dtype: ``np.float32`` (default) or ``np.float64``.
        clip: for float input, clip values outside [0, 1] instead of refusing them.

    Returns:
        ``(x, fmt)``: ``x`` a new array of ``dtype`` in [0, 1], ``fmt`` for
        :func:`from_float`.

    Raises:
        InputError: unsupported dtype, non-finite values, or float values outside
            [0, 1] by more than :data:`FLOAT_TOLERANCE` when ``clip`` is False.
    """
    arr = np.asarray(image)
    out_dtype = _float_dtype(dtype)
    if arr.dtype in _UINT_SCALE:
        scale = _UINT_SCALE[arr.dtype]
        return (arr.astype(out_dtype) / out_dtype.type(scale)), ImageFormat(arr.dtype.name, scale)
    if arr.dtype == np.bool_:
        return arr.astype(out_dtype), ImageFormat("bool", 1.0)
    if np.issubdtype(arr.dtype, np.floating):
        x = _checked_unit_range(arr, clip).astype(out_dtype)
        return x, ImageFormat(arr.dtype.name, 1.0)
    raise InputError(
        f"unsupported image dtype {arr.dtype}: expected uint8, uint16, bool or float in [0, 1]"
    )


def from_float(x: np.ndarray, fmt: ImageFormat) -> np.ndarray:
    """Map floats in [0, 1] back to the format recorded by :func:`to_float`.

    Integer formats: ``round(clip(x, 0, 1) * scale)``; bool: ``x >= 0.5``; float
    formats: ``clip(x, 0, 1)`` cast to the recorded dtype.

    Raises:
        InputError: ``x`` holds NaN or infinity, or ``fmt`` names an unknown dtype.
    """
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise InputError("cannot convert an image holding NaN or infinity")
    clipped = np.clip(arr, 0.0, 1.0)
    target = np.dtype(fmt.dtype)
    if target in _UINT_SCALE:
        return np.rint(clipped * _UINT_SCALE[target]).astype(target)
    if target == np.bool_:
        return clipped >= 0.5
    if np.issubdtype(target, np.floating):
        return clipped.astype(target)
    raise InputError(f"unsupported target dtype {fmt.dtype!r}")


def _float_dtype(dtype: Any) -> np.dtype:
    out = np.dtype(dtype)
    if out not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise InputError(f"dtype must be float32 or float64, got {out}")
    return out


def _checked_unit_range(arr: np.ndarray, clip: bool, hint: str = "rescale it or pass clip=True") -> np.ndarray:
    """Return ``arr`` clipped to [0, 1], refusing real excursions unless ``clip``."""
    if arr.size == 0:
        return arr
    if not np.all(np.isfinite(arr)):
        raise InputError("float image holds NaN or infinity")
    lo, hi = float(arr.min()), float(arr.max())
    if not clip and (lo < -FLOAT_TOLERANCE or hi > 1.0 + FLOAT_TOLERANCE):
        raise InputError(
            f"float image values span [{lo:.6g}, {hi:.6g}], outside [0, 1] "
            f"(tolerance {FLOAT_TOLERANCE:g}); {hint}"
        )
    return np.clip(arr, 0.0, 1.0)


# --------------------------------------------------------------------------- reading


def read_image(
    path: str | os.PathLike[str],
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    gray_if_equal: bool = False,
    page: int | None = None,
) -> np.ndarray:
    """Read an image file into an ``H×W`` or ``H×W×3`` array, samples as stored.

    See the module docstring for the conversions (alpha dropped, palette expanded,
    32-bit integers narrowed to uint16 when they fit).

    Args:
        path: the file. The format is recognized from its content, not its name.
        max_pixels: refuse images with more than this many pixels (width × height),
            checked from the header before any pixel is decoded; ``None`` for no
            limit. Guards against decompression bombs.
        gray_if_equal: return one plane when the file is colour but R = G = B in
            every pixel.
        page: the frame (GIF, APNG, WebP) or page (TIFF) to read, from 0; ``None``
            refuses a file with more than one.

    Returns:
        A new, writable array of dtype uint8, uint16 or float32, upright (EXIF or TIFF
        orientation applied).

    Raises:
        ImageReadError: missing or empty file, a folder or another non-regular file,
            not an image, corrupt or truncated data, too many pixels, unsupported mode,
            several frames without ``page``, or a 1-pixel-high or -wide (1-D) image.
            The message names the file.
    """
    p = Path(path)
    if page is not None and (isinstance(page, bool) or not isinstance(page, (int, np.integer)) or page < 0):
        raise ImageReadError(p, f"page must be a non-negative integer, got {page!r}")
    _check_readable_file(p)
    head = _read_head(p, 32)
    if head.startswith(_TIFF_MAGICS):
        arr, orientation = _read_tiff(p, max_pixels, page)
    elif _is_png16_colour(head):
        if page not in (None, 0):
            raise ImageReadError(p, f"page {page} requested, the file has 1 frame")
        arr, orientation = _read_png16(p, max_pixels), _pil_orientation(p)
    else:
        arr, orientation = _read_with_pil(p, max_pixels, page)
    arr = apply_orientation(arr, orientation)
    arr = _check_image_shape(arr, p)
    if gray_if_equal:
        arr = _collapse_equal_channels(arr)
    return arr


_FILE_KINDS = (
    (stat.S_ISCHR, "a character device (such as /dev/zero)"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


def _check_readable_file(p: Path) -> None:
    """Refuse what is not a regular, non-empty file, by what it is (never by opening a FIFO)."""
    if not p.exists():
        reason = "broken symbolic link" if p.is_symlink() else "file not found"
        raise ImageReadError(p, reason)
    if p.is_dir():
        raise ImageReadError(p, "is a folder, not a file")
    try:
        st = p.stat()
    except OSError as exc:
        raise ImageReadError(p, _os_reason(exc)) from exc
    for test, kind in _FILE_KINDS:
        if test(st.st_mode):
            raise ImageReadError(p, f"not a regular file: it is {kind}")
    if st.st_size == 0:
        if _read_head(p, 1):
            raise ImageReadError(p, "a pseudo-file (its size reads 0 but it has content, as files under /proc do); "
                                    "not an image")
        raise ImageReadError(p, "file is empty (0 bytes)")


# ---- orientation (EXIF tag 274, TIFF tag 274: the same codes)

_ORIENTATION_TAG = 274


def image_orientation(path: str | os.PathLike[str]) -> int:
    """The EXIF/TIFF orientation code (1–8) of a file; 1 (upright) when there is none."""
    p = Path(path)
    head = _read_head(p, 8)
    if head.startswith(_TIFF_MAGICS):
        import tifffile

        try:
            with tifffile.TiffFile(p) as tif:
                return _tiff_orientation(tif.pages[0])
        except Exception:  # noqa: BLE001 - no readable tag: upright
            return 1
    return _pil_orientation(p)


def _valid_orientation(value: Any) -> int:
    try:
        code = int(value)
    except (TypeError, ValueError):
        return 1
    return code if 1 <= code <= 8 else 1


def _pil_orientation(p: Path) -> int:
    from PIL import Image

    try:
        with Image.open(p) as img:
            return _valid_orientation(img.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # noqa: BLE001 - unreadable metadata: upright
        return 1


def _tiff_orientation(page: Any) -> int:
    tag = page.tags.get(_ORIENTATION_TAG)
    return _valid_orientation(tag.value if tag is not None else 1)


def apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Turn an array stored with EXIF/TIFF ``orientation`` (1–8) upright.

    The codes say where row 0 and column 0 of the stored image belong: 1 as stored,
    2 mirrored left–right, 3 rotated 180°, 4 mirrored top–bottom, 5 transposed,
    6 rotated 90° clockwise to be upright, 7 transversed, 8 rotated 90° counter-clockwise
    (the transforms of Pillow's ``ImageOps.exif_transpose``).
    """
    ops = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.rot90(a, k=-1),
        7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
        8: lambda a: np.rot90(a, k=1),
    }
    return ops[_valid_orientation(orientation)](arr)


def _read_head(p: Path, n: int) -> bytes:
    try:
        with open(p, "rb") as fh:
            return fh.read(n)
    except OSError as exc:
        raise ImageReadError(p, _os_reason(exc)) from exc


def _check_pixels(p: Path, width: int, height: int, max_pixels: int | None) -> None:
    if width <= 0 or height <= 0:
        raise ImageReadError(p, f"header gives an empty image ({width}×{height})")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageReadError(
            p,
            f"image is {width}×{height} = {width * height:,} pixels, more than "
            f"max_pixels={max_pixels:,} (decompression-bomb guard; pass a larger "
            f"max_pixels to read it)",
        )


def _check_image_shape(arr: np.ndarray, p: Path) -> np.ndarray:
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise ImageReadError(p, f"unsupported array shape {arr.shape}")
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        raise ImageReadError(
            p, f"image is 1-D ({arr.shape[0]}×{arr.shape[1]} pixels); need at least 2×2"
        )
    return np.ascontiguousarray(arr)


def _collapse_equal_channels(arr: np.ndarray) -> np.ndarray:
    """One plane when ``arr`` is H×W×3 with R = G = B everywhere, else ``arr``."""
    if arr.ndim == 3 and np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(
        arr[..., 1], arr[..., 2]
    ):
        return arr[..., 0].copy()
    return arr


def _narrow_int(arr: np.ndarray, p: Path) -> np.ndarray:
    """Signed or 32-bit integer samples → uint16 if every value fits, else an error."""
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 65535):
        raise ImageReadError(
            p,
            f"{arr.dtype} samples span [{int(arr.min())}, {int(arr.max())}], "
            "outside 0..65535; unsupported",
        )
    return arr.astype(np.uint16)


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or str(exc) or type(exc).__name__


# ---- Pillow


def _read_with_pil(p: Path, max_pixels: int | None, page: int | None = None) -> tuple[np.ndarray, int]:
    """The pixels (frame ``page``) and the EXIF orientation of a file Pillow decodes."""
    from PIL import Image, UnidentifiedImageError

    try:
        img = _open_pil(p)
    except UnidentifiedImageError as exc:
        raise ImageReadError(p, "not a recognized image file (expected PNG, JPEG, BMP or TIFF)") from exc
    except Exception as exc:  # Pillow raises many kinds on a bad header
        raise ImageReadError(p, f"corrupt image header ({_exc_text(exc)})") from exc
    with img:
        _check_pixels(p, img.size[0], img.size[1], max_pixels)
        # MPO (phone JPEGs with a depth map or preview): frame 0 is the primary image by the MP format
        frames = 1 if img.format == "MPO" else int(getattr(img, "n_frames", 1) or 1)
        _check_page(p, page, frames, "frame")
        try:
            if page:
                img.seek(page)
            img.load()  # force the full decode: catches truncated and corrupt data
        except Image.DecompressionBombError as exc:
            raise ImageReadError(p, f"image too large ({_exc_text(exc)})") from exc
        except Exception as exc:
            raise ImageReadError(p, f"corrupt or truncated image data ({_exc_text(exc)})") from exc
        try:
            orientation = _valid_orientation(img.getexif().get(_ORIENTATION_TAG, 1))
        except Exception:  # noqa: BLE001 - damaged EXIF block: upright, as viewers do
            orientation = 1
        return _pil_to_array(img, p), orientation


def _check_page(p: Path, page: int | None, count: int, word: str) -> None:
    """Refuse a file of several frames/pages unless ``page`` chooses one, and a page it lacks."""
    if page is None and count > 1:
        raise ImageReadError(
            p, f"has {count} {word}s (an animation or a stack); hifm fuses single images: extract one "
               f"{word} first, or pass page=N to hifm.io.read_image")
    if page is not None and page >= count:
        raise ImageReadError(p, f"page {page} requested, the file has {count} {word}(s)")


def _open_pil(p: Path) -> Any:
    """``Image.open`` whose own decompression-bomb guard defers to ``max_pixels``.

    Pillow refuses images above ``2 * Image.MAX_IMAGE_PIXELS`` (≈179 Mpx) inside
    ``Image.open``; ``read_image`` checks the size itself right after opening
    (header only), so on that refusal it reopens with Pillow's limit lifted.
    """
    from PIL import Image

    try:
        return Image.open(p, formats=_PIL_FORMATS)
    except Image.DecompressionBombError:
        with _PIL_LIMIT_LOCK:
            saved = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
            try:
                return Image.open(p, formats=_PIL_FORMATS)
            finally:
                Image.MAX_IMAGE_PIXELS = saved


def _pil_to_array(img: Any, p: Path) -> np.ndarray:
    mode = img.mode
    if mode in ("L", "RGB"):
        return np.array(img)
    if mode == "1":
        return np.array(img.convert("L"))
    if mode in ("RGBA", "RGBX"):
        return np.array(img)[..., :3]
    if mode == "LA":
        return np.array(img)[..., 0]
    if mode in ("P", "PA"):
        return _pil_palette_to_array(img)
    if mode.startswith("I;16"):
        return np.array(img).astype(np.uint16)
    if mode == "I":
        return _narrow_int(np.array(img), p)
    if mode == "F":
        return np.array(img, dtype=np.float32)
    raise ImageReadError(p, f"unsupported image mode {mode!r} (convert it to RGB or gray first)")


def _pil_palette_to_array(img: Any) -> np.ndarray:
    """Palette → RGB, or one plane when every used palette entry is gray."""
    indices = np.array(img.convert("P") if img.mode == "PA" else img)
    palette = np.array(img.getpalette("RGB") or [], dtype=np.uint8).reshape(-1, 3)
    rgb = np.array(img.convert("RGB"))
    used = np.unique(indices)
    used = used[used < len(palette)]
    entries = palette[used]
    if len(entries) and np.all(entries[:, 0] == entries[:, 1]) and np.all(entries[:, 1] == entries[:, 2]):
        return rgb[..., 0].copy()
    return rgb


# ---- TIFF (tifffile), with Pillow as fallback for codecs tifffile lacks


def _read_tiff(p: Path, max_pixels: int | None, page: int | None = None) -> tuple[np.ndarray, int]:
    """The pixels of one page (reduced-resolution pages skipped) and its orientation tag."""
    import tifffile

    try:
        with tifffile.TiffFile(p) as tif:
            pages = [pg for pg in tif.pages if not getattr(pg, "is_reduced", False)] or [tif.pages[0]]
            _check_page(p, page, len(pages), "page")
            tiff_page = pages[page or 0]
            _check_pixels(p, int(tiff_page.imagewidth), int(tiff_page.imagelength), max_pixels)
            _check_tiff_extent(tiff_page, p)
            data = tiff_page.asarray()
            meta = (int(tiff_page.photometric), tiff_page.axes, tiff_page.colormap)
            orientation = _tiff_orientation(tiff_page)
    except ImageReadError:
        raise
    except Exception as exc:  # e.g. a compression that needs the imagecodecs package
        try:
            return _read_with_pil(p, max_pixels, page)
        except ImageReadError:
            raise ImageReadError(p, f"corrupt or unsupported TIFF ({_exc_text(exc)})") from exc
    return _tiff_to_array(data, *meta, p=p), orientation


def _check_tiff_extent(page: Any, p: Path) -> None:
    """Refuse a TIFF whose strips or tiles point past the end of the file."""
    size = p.stat().st_size
    ends = [int(o) + int(n) for o, n in zip(page.dataoffsets, page.databytecounts)]
    if not ends or max(ends) > size:
        raise ImageReadError(p, "truncated TIFF: image data extend past the end of the file")


def _tiff_to_array(data: np.ndarray, photometric: int, axes: str, colormap: Any, *, p: Path) -> np.ndarray:
    # photometric: 0 MINISWHITE, 1 MINISBLACK, 2 RGB, 3 PALETTE (TIFF 6.0 codes)
    if photometric not in (0, 1, 2, 3):
        raise ImageReadError(p, f"unsupported TIFF photometric interpretation {photometric}")
    if axes not in ("YX", "YXS", "SYX"):
        raise ImageReadError(p, f"unsupported TIFF layout (axes {axes!r}, shape {data.shape})")
    if axes == "SYX":
        data = np.moveaxis(data, 0, -1)
    if data.ndim == 3:  # drop alpha / extra samples
        data = data[..., :3] if photometric == 2 and data.shape[2] >= 3 else data[..., 0]
    if photometric == 3:
        return _apply_tiff_colormap(data, colormap, p)
    data = _tiff_dtype(data, p)
    if photometric == 0:
        data = _invert(data)
    return data


def _tiff_dtype(data: np.ndarray, p: Path) -> np.ndarray:
    if data.dtype == np.bool_:
        return data.astype(np.uint8) * np.uint8(255)
    if data.dtype in (np.uint8, np.uint16):
        return data.astype(data.dtype.newbyteorder("="))
    if np.issubdtype(data.dtype, np.floating):
        return data.astype(np.float32)
    if np.issubdtype(data.dtype, np.integer):
        return _narrow_int(data, p)
    raise ImageReadError(p, f"unsupported TIFF sample type {data.dtype}")


def _invert(data: np.ndarray) -> np.ndarray:
    if np.issubdtype(data.dtype, np.integer):
        return np.iinfo(data.dtype).max - data
    return 1.0 - data  # float MINISWHITE: assume [0, 1] content


def _apply_tiff_colormap(indices: np.ndarray, colormap: Any, p: Path) -> np.ndarray:
    if colormap is None or indices.ndim != 2 or not np.issubdtype(indices.dtype, np.integer):
        raise ImageReadError(p, "palette TIFF without a usable colour map")
    cmap = np.asarray(colormap).T  # (entries, 3), 16-bit values
    if int(indices.max()) >= len(cmap):
        raise ImageReadError(p, "palette TIFF index outside its colour map")
    if np.all(cmap % 257 == 0):
        cmap = (cmap // 257).astype(np.uint8)
    else:
        cmap = cmap.astype(np.uint16)
    rgb = cmap[indices]
    used = cmap[np.unique(indices)]
    if np.all(used[:, 0] == used[:, 1]) and np.all(used[:, 1] == used[:, 2]):
        return rgb[..., 0].copy()
    return rgb


# ---- 16-bit colour PNG (Pillow would reduce it to 8 bits): decoded with pypng


def _is_png16_colour(head: bytes) -> bool:
    return (
        len(head) >= 26
        and head.startswith(_PNG_SIGNATURE)
        and head[12:16] == b"IHDR"
        and head[24] == 16
        and head[25] in (2, 4, 6)
    )


def _read_png16(p: Path, max_pixels: int | None) -> np.ndarray:
    """Decode a 16-bit PNG of colour type 2 (RGB), 4 (gray+alpha) or 6 (RGBA) with pypng."""
    import png

    try:
        with open(p, "rb") as fh:
            reader = png.Reader(file=fh)
            reader.preamble()  # header chunks only: check the size before decoding
            _check_pixels(p, reader.width, reader.height, max_pixels)
            width, height, rows, info = reader.read()
            planes = int(info["planes"])
            data = [np.frombuffer(row, dtype=np.uint16) for row in rows]
    except ImageReadError:
        raise
    except OSError as exc:
        raise ImageReadError(p, _os_reason(exc)) from exc
    except Exception as exc:  # png.Error, zlib.error, EOFError...
        raise ImageReadError(p, _png_reason(exc)) from exc
    if len(data) != height:
        raise ImageReadError(p, f"truncated PNG data ({len(data)} of {height} rows)")
    out = np.stack(data).reshape(height, width, planes)
    return out[..., :3].copy() if planes >= 3 else out[..., 0].copy()


def _png_reason(exc: BaseException) -> str:
    """One-line reason for a pypng/zlib failure, naming truncation and damaged chunks."""
    text = _exc_text(exc)
    lowered = text.lower()
    if any(key in lowered for key in ("too short", "no more chunks", "end of file", "no idat")):
        return f"truncated PNG ({text})"
    if "checksum" in lowered or "chunk type" in lowered:
        # the CRC covers type and body; pypng checks the type's characters first
        return f"corrupt PNG chunk (damaged chunk type or CRC mismatch: {text})"
    return f"corrupt PNG data ({text})"


def _exc_text(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# --------------------------------------------------------------------------- writing


def write_image(
    path: str | os.PathLike[str],
    image: np.ndarray,
    *,
    bit_depth: int | None = None,
    jpeg_quality: int = 95,
) -> Path:
    """Write an ``H×W`` or ``H×W×3`` image atomically; the format comes from the extension.

    Samples: ``uint8`` and ``uint16`` are written as they are; ``bool`` as 0/max;
    float input in [0, 1] is quantized with rounding, ``round(x * 255)`` (or
    ``round(x * 65535)`` when ``bit_depth=16``). ``bit_depth`` 8 or 16 converts
    integer input too (``x * 257`` up, ``round(x / 257)`` down).

    Formats: ``.png`` (8/16 bit), ``.tif``/``.tiff`` (8/16 bit, uncompressed),
    ``.jpg``/``.jpeg`` (8 bit, quality ``jpeg_quality``), ``.bmp`` (8 bit).

    The data go to a temporary file in the target's folder, which is flushed and
    then renamed over the target with :func:`os.replace`.

    Returns:
        The target path.

    Raises:
        InputError: the array has an unsupported shape or dtype, or float values
            outside [0, 1]; ``bit_depth`` is not None, 8 or 16.
        ImageWriteError: a folder as target, unknown extension, a 16-bit image for
            JPEG/BMP, a missing or unwritable folder, an existing read-only target, or a
            failed write (e.g. disk full). Neither a partial target nor the temporary
            file is left behind.
    """
    p = Path(path)
    if p.is_dir():
        raise ImageWriteError(p, "is a folder; give a file name such as "
                                 f"'{p / 'fused.png'}' (the format comes from the extension)")
    fmt = _WRITE_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise ImageWriteError(p, f"unknown extension {p.suffix!r}; use one of {', '.join(IMAGE_EXTENSIONS)}")
    arr = _prepare_for_write(image, bit_depth, p)
    if arr.dtype == np.uint16 and fmt in ("JPEG", "BMP"):
        raise ImageWriteError(p, f"{fmt} stores 8-bit samples only; use .png or .tif, or bit_depth=8")
    _check_target(p)
    _atomic_write(p, lambda fh: _write_payload(fh, arr, fmt, jpeg_quality))
    return p


def fused_bit_depth(image: np.ndarray, path: str | os.PathLike[str]) -> int | None:
    """The ``bit_depth`` for writing a fused result (module docstring): 16 for a float result
    in PNG or TIFF, 8 for a float result in JPEG or BMP, ``None`` (as stored) for integers."""
    if not np.issubdtype(np.asarray(image).dtype, np.floating):
        return None
    return 16 if _WRITE_FORMATS.get(Path(path).suffix.lower()) in ("PNG", "TIFF") else 8


def _prepare_for_write(image: np.ndarray, bit_depth: int | None, p: Path) -> np.ndarray:
    """Validate the array and convert it to uint8/uint16 H×W or H×W×3."""
    if bit_depth not in (None, 8, 16):
        raise InputError(f"cannot write image '{p}': bit_depth must be None, 8 or 16, got {bit_depth!r}")
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3) or arr.size == 0:
        raise InputError(f"cannot write image '{p}': expected an H×W or H×W×3 array, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr if bit_depth != 16 else arr.astype(np.uint16) * np.uint16(257)
    if arr.dtype == np.uint16:
        return arr if bit_depth != 8 else np.rint(arr / 257.0).astype(np.uint8)
    if arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.floating):
        try:
            x = _checked_unit_range(arr.astype(np.float64), clip=False, hint="rescale or clip it first")
        except InputError as exc:
            raise InputError(f"cannot write image '{p}': {exc}") from exc
        target = "uint16" if bit_depth == 16 else "uint8"
        return from_float(x, ImageFormat(target, _UINT_SCALE[np.dtype(target)]))
    raise InputError(
        f"cannot write image '{p}': unsupported dtype {arr.dtype} (use uint8, uint16, bool or float in [0, 1])"
    )


def _check_target(p: Path) -> None:
    folder = p.parent
    if not folder.exists():
        raise ImageWriteError(p, f"folder '{folder}' does not exist")
    if not folder.is_dir():
        raise ImageWriteError(p, f"'{folder}' is not a folder")
    if p.is_dir():
        raise ImageWriteError(p, "the target is a folder")
    if p.is_file() and not p.is_symlink() and (not os.access(p, os.W_OK) or not p.stat().st_mode & 0o222):
        raise ImageWriteError(p, "the file exists and is read-only; remove it or make it writable to replace it")


def _atomic_write(p: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Run ``write`` on a temporary file next to ``p``, then rename it to ``p``."""
    try:
        fd, tmp_name = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    except OSError as exc:
        raise ImageWriteError(p, f"cannot create a file in folder '{p.parent}': {_os_reason(exc)}") from exc
    os.close(fd)  # reopened by name: some encoders (tifffile) need a named file object
    tmp = Path(tmp_name)
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _new_file_mode(p))
        os.replace(tmp, p)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if not isinstance(exc, Exception):
            raise
        reason = _os_reason(exc) if isinstance(exc, OSError) else _exc_text(exc)
        raise ImageWriteError(p, reason) from exc


def _new_file_mode(p: Path) -> int:
    """Permissions for the new file: the old target's, or 0o666 minus the umask."""
    try:
        return p.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def _write_payload(fh: IO[bytes], arr: np.ndarray, fmt: str, jpeg_quality: int) -> None:
    """Encode ``arr`` (uint8/uint16, H×W or H×W×3) as ``fmt`` into ``fh``."""
    if fmt == "TIFF":
        import tifffile

        tifffile.imwrite(fh, arr, photometric="rgb" if arr.ndim == 3 else "minisblack")
    elif fmt == "PNG" and arr.dtype == np.uint16 and arr.ndim == 3:
        _encode_png16_rgb(fh, arr)
    else:
        from PIL import Image

        options = {"quality": int(jpeg_quality)} if fmt == "JPEG" else {}
        Image.fromarray(arr).save(fh, format=fmt, **options)


def _encode_png16_rgb(fh: IO[bytes], arr: np.ndarray) -> None:
    """16-bit RGB PNG through pypng (Pillow cannot write 48-bit PNG)."""
    import png

    height, width = arr.shape[:2]
    rows = np.ascontiguousarray(arr, dtype=">u2").reshape(height, width * 3).view(np.uint8)
    writer = png.Writer(width, height, greyscale=False, bitdepth=16, compression=6)
    writer.write_packed(fh, (row.tobytes() for row in rows))

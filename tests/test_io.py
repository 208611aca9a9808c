"""Tests of hifm.io: reading, atomic writing, float mapping, error reporting."""

from __future__ import annotations

import dataclasses
import errno
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from hifm.errors import HIFMError, ImageReadError, ImageWriteError, InputError
from hifm.io import ImageFormat, from_float, read_image, to_float, write_image

from ._data import DATA as SHARED_DATA
from ._data import missing
from .conftest import SAMPLES
RNG = np.random.default_rng(1234)


def random_image(shape: tuple[int, ...], dtype: type) -> np.ndarray:
    return RNG.integers(0, np.iinfo(dtype).max + 1, size=shape, dtype=dtype)


# ----------------------------------------------------------------- round trips


@pytest.mark.parametrize("ext", [".png", ".tif", ".tiff", ".PNG"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("shape", [(31, 47), (31, 47, 3)])
def test_lossless_round_trip_is_bit_exact(tmp_path, ext, dtype, shape):
    image = random_image(shape, dtype)
    path = write_image(tmp_path / f"img{ext}", image)
    back = read_image(path)
    assert back.dtype == dtype and back.shape == shape
    np.testing.assert_array_equal(back, image)
    assert sorted(os.listdir(tmp_path)) == [f"img{ext}"]  # no temporary file left


@pytest.mark.parametrize("shape", [(20, 30), (20, 30, 3)])
def test_bmp_round_trip_uint8(tmp_path, shape):
    image = random_image(shape, np.uint8)
    np.testing.assert_array_equal(read_image(write_image(tmp_path / "a.bmp", image)), image)


def test_jpeg_round_trip_is_close(tmp_path):
    yy, xx = np.mgrid[0:64, 0:80]
    image = np.stack([xx * 3, yy * 3, (xx + yy) * 2], axis=-1).astype(np.uint8)
    back = read_image(write_image(tmp_path / "a.jpg", image))
    assert back.shape == image.shape and back.dtype == np.uint8
    assert np.abs(back.astype(int) - image).mean() < 2.0


def test_written_file_gets_default_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_image(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_overwrite_replaces_content(tmp_path):
    path = tmp_path / "a.png"
    write_image(path, np.zeros((4, 4), np.uint8))
    write_image(path, np.full((4, 4), 7, np.uint8))
    assert np.all(read_image(path) == 7)


def test_float_input_is_rounded_to_8_bits(tmp_path):
    x = np.array([[0.0, 0.2, 0.49, 1.0], [0.1, 0.3, 0.7, 0.999]], dtype=np.float32)
    back = read_image(write_image(tmp_path / "f.png", x))
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, np.rint(x.astype(np.float64) * 255).astype(np.uint8))


def test_float_input_with_bit_depth_16(tmp_path):
    x = np.linspace(0, 1, 60, dtype=np.float64).reshape(6, 10)
    back = read_image(write_image(tmp_path / "f.png", x, bit_depth=16))
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, np.rint(x * 65535).astype(np.uint16))


def test_bit_depth_converts_integers(tmp_path):
    image = random_image((5, 6), np.uint8)
    up = read_image(write_image(tmp_path / "up.png", image, bit_depth=16))
    np.testing.assert_array_equal(up, image.astype(np.uint16) * 257)
    down = read_image(write_image(tmp_path / "down.png", up, bit_depth=8))
    np.testing.assert_array_equal(down, image)


def test_float_out_of_range_is_refused_on_write(tmp_path):
    with pytest.raises(InputError, match="f.png"):
        write_image(tmp_path / "f.png", np.full((4, 4), 1.5))
    assert not (tmp_path / "f.png").exists()


# ----------------------------------------------------------------- 16-bit colour PNG


def _paeth(a, b, c):
    pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _filter_rows(rows: np.ndarray, bpp: int) -> bytes:
    """PNG-filter byte rows, cycling through filter types 0..4."""
    out, prev = [], np.zeros(rows.shape[1], dtype=int)
    for y, row in enumerate(rows.astype(int)):
        left = np.concatenate([np.zeros(bpp, int), row[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, int), prev[:-bpp]])
        kind = y % 5
        predictor = [0 * row, left, prev, (left + prev) // 2, _paeth(left, prev, upleft)][kind]
        out.append(bytes([kind]) + ((row - predictor) % 256).astype(np.uint8).tobytes())
        prev = row
    return b"".join(out)


def _png16(image: np.ndarray, colour_type: int, interlace: bool) -> bytes:
    """Encode a 16-bit PNG with every filter type (and optionally Adam7)."""
    height, width, channels = image.shape
    bpp = 2 * channels
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    data = b""
    for x0, y0, dx, dy in passes if interlace else [(0, 0, 1, 1)]:
        sub = image[y0::dy, x0::dx]
        if sub.size:
            rows = sub.astype(">u2").reshape(sub.shape[0], -1).view(np.uint8)
            data += _filter_rows(rows, bpp)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, int(interlace))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("interlace", [False, True])
@pytest.mark.parametrize("colour_type,channels", [(2, 3), (6, 4), (4, 2)])
def test_png16_colour_keeps_16_bits(tmp_path, colour_type, channels, interlace):
    image = random_image((13, 19, channels), np.uint16)
    path = tmp_path / "c16.png"
    path.write_bytes(_png16(image, colour_type, interlace))
    back = read_image(path)
    expected = image[..., :3] if channels >= 3 else image[..., 0]
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, expected)


def test_png16_colour_corrupt_crc(tmp_path):
    data = bytearray(_png16(random_image((8, 8, 3), np.uint16), 2, False))
    data[40] ^= 0xFF  # inside the IDAT body
    path = tmp_path / "bad16.png"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageReadError, match="bad16.png.*CRC"):
        read_image(path)


# ----------------------------------------------------------------- modes and dtypes


def test_float_tiff_is_read_as_stored(tmp_path):
    image = RNG.random((9, 11, 3)).astype(np.float32)
    tifffile.imwrite(tmp_path / "f.tif", image, photometric="rgb")
    back = read_image(tmp_path / "f.tif")
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, image)


def test_float64_tiff_becomes_float32(tmp_path):
    image = RNG.random((9, 11))
    tifffile.imwrite(tmp_path / "f.tif", image)
    back = read_image(tmp_path / "f.tif")
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, image, rtol=1e-7)


def test_int32_tiff_narrowed_when_it_fits_and_refused_otherwise(tmp_path):
    fits = np.array([[0, 65535], [300, 4]], dtype=np.int32)
    tifffile.imwrite(tmp_path / "ok.tif", fits)
    back = read_image(tmp_path / "ok.tif")
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, fits)
    tifffile.imwrite(tmp_path / "big.tif", fits * 2)
    with pytest.raises(ImageReadError, match="big.tif.*65535"):
        read_image(tmp_path / "big.tif")


def test_lzw_tiff_falls_back_to_pillow(tmp_path):
    image = random_image((12, 10, 3), np.uint8)
    Image.fromarray(image).save(tmp_path / "lzw.tif", compression="tiff_lzw")
    np.testing.assert_array_equal(read_image(tmp_path / "lzw.tif"), image)


def test_rgba_drops_alpha(tmp_path):
    image = random_image((6, 7, 4), np.uint8)
    Image.fromarray(image, mode="RGBA").save(tmp_path / "a.png")
    back = read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(back, image[..., :3])


def test_la_drops_alpha(tmp_path):
    image = random_image((6, 7, 2), np.uint8)
    Image.fromarray(image, mode="LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_image(tmp_path / "la.png"), image[..., 0])


def test_colour_palette_expands_to_rgb(tmp_path):
    palette = np.array([[255, 0, 0], [0, 128, 255], [10, 20, 30]], dtype=np.uint8)
    indices = RNG.integers(0, 3, size=(8, 9), dtype=np.uint8)
    img = Image.fromarray(indices, mode="P")
    img.putpalette(palette.ravel().tolist())
    img.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), palette[indices])


def test_gray_palette_gives_one_plane(tmp_path):
    levels = np.array([0, 60, 200], dtype=np.uint8)
    indices = RNG.integers(0, 3, size=(8, 9), dtype=np.uint8)
    img = Image.fromarray(indices, mode="P")
    img.putpalette(np.repeat(levels, 3).tolist())
    img.save(tmp_path / "g.png")
    back = read_image(tmp_path / "g.png")
    assert back.ndim == 2
    np.testing.assert_array_equal(back, levels[indices])


def test_one_bit_image_becomes_0_255(tmp_path):
    bits = RNG.integers(0, 2, size=(8, 16)).astype(bool)
    Image.fromarray(bits).save(tmp_path / "b.png")
    np.testing.assert_array_equal(read_image(tmp_path / "b.png"), bits.astype(np.uint8) * 255)


def test_gray_if_equal(tmp_path):
    plane = random_image((10, 12), np.uint8)
    rgb = np.repeat(plane[..., None], 3, axis=2)
    write_image(tmp_path / "eq.png", rgb)
    assert read_image(tmp_path / "eq.png").shape == (10, 12, 3)
    np.testing.assert_array_equal(read_image(tmp_path / "eq.png", gray_if_equal=True), plane)
    rgb[3, 4, 2] ^= 1
    write_image(tmp_path / "ne.png", rgb)
    assert read_image(tmp_path / "ne.png", gray_if_equal=True).shape == (10, 12, 3)


def test_result_is_writable_and_contiguous(tmp_path):
    write_image(tmp_path / "a.png", random_image((5, 6, 3), np.uint8))
    out = read_image(tmp_path / "a.png")
    assert out.flags.writeable and out.flags.c_contiguous


# ----------------------------------------------------------------- read errors


def _assert_read_error(path: Path, pattern: str, **kwargs) -> ImageReadError:
    with pytest.raises(ImageReadError, match=pattern) as info:
        read_image(path, **kwargs)
    err = info.value
    assert err.path == path and path.name in str(err) and "\n" not in str(err)
    assert isinstance(err, InputError) and isinstance(err, ValueError) and isinstance(err, HIFMError)
    return err


def test_missing_file(tmp_path):
    _assert_read_error(tmp_path / "nope.png", "not found")


def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    _assert_read_error(tmp_path / "empty.png", "empty")


def test_folder_is_not_an_image(tmp_path):
    (tmp_path / "dir.png").mkdir()
    _assert_read_error(tmp_path / "dir.png", "folder")


def test_text_file_is_not_an_image(tmp_path):
    (tmp_path / "notes.png").write_text("hello, this is not an image\n")
    _assert_read_error(tmp_path / "notes.png", "not a recognized image")


@pytest.mark.parametrize(
    "ext,pattern",
    [(".png", "truncated"), (".jpg", "truncated"), (".bmp", "truncated"), (".tif", "truncated TIFF.*past the end")],
)
def test_truncated_file(tmp_path, ext, pattern):
    path = write_image(tmp_path / f"full{ext}", random_image((64, 64, 3), np.uint8))
    data = path.read_bytes()
    cut = tmp_path / f"cut{ext}"
    cut.write_bytes(data[: len(data) // 2])
    _assert_read_error(cut, pattern)


def test_corrupt_png_data(tmp_path):
    path = write_image(tmp_path / "ok.png", random_image((32, 32), np.uint8))
    data = bytearray(path.read_bytes())
    start = data.index(b"IDAT") + 4
    data[start + 10 : start + 30] = bytes(20)
    bad = tmp_path / "bad.png"
    bad.write_bytes(bytes(data))
    _assert_read_error(bad, "corrupt|truncated")


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_from_the_header(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(100_000, 100_000))  # 10 Gpx, 60 bytes
    _assert_read_error(bomb, "10,000,000,000 pixels")


def test_max_pixels_limit(tmp_path):
    path = write_image(tmp_path / "small.png", random_image((20, 20), np.uint8))
    _assert_read_error(path, "max_pixels=100", max_pixels=100)
    assert read_image(path, max_pixels=400).shape == (20, 20)
    assert read_image(path, max_pixels=None).shape == (20, 20)


def test_max_pixels_applies_to_tiff(tmp_path):
    path = write_image(tmp_path / "small.tif", random_image((20, 20), np.uint16))
    _assert_read_error(path, "pixels", max_pixels=399)


def test_unsupported_mode(tmp_path):
    Image.new("CMYK", (8, 8), (10, 20, 30, 40)).save(tmp_path / "cmyk.jpg")
    _assert_read_error(tmp_path / "cmyk.jpg", "CMYK")


def test_one_dimensional_image(tmp_path):
    Image.fromarray(np.zeros((1, 50), np.uint8)).save(tmp_path / "line.png")
    _assert_read_error(tmp_path / "line.png", "1-D")


def test_errors_are_picklable(tmp_path):
    import pickle

    for err in (ImageReadError(tmp_path / "x.png", "boom"), ImageWriteError(tmp_path / "y.png", "full")):
        again = pickle.loads(pickle.dumps(err))
        assert type(again) is type(err) and str(again) == str(err) and again.path == err.path


# ----------------------------------------------------------------- write errors


def test_unknown_extension(tmp_path):
    with pytest.raises(ImageWriteError, match=r"out\.gif.*extension"):
        write_image(tmp_path / "out.gif", np.zeros((4, 4), np.uint8))


def test_16_bit_jpeg_is_refused(tmp_path):
    with pytest.raises(ImageWriteError, match="out.jpg.*8-bit"):
        write_image(tmp_path / "out.jpg", np.zeros((4, 4), np.uint16))


def test_missing_folder(tmp_path):
    target = tmp_path / "no" / "such" / "out.png"
    with pytest.raises(ImageWriteError, match="does not exist") as info:
        write_image(target, np.zeros((4, 4), np.uint8))
    assert info.value.path == target and "out.png" in str(info.value)
    assert isinstance(info.value, OSError)


def test_target_is_a_folder(tmp_path):
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ImageWriteError, match="dir.png"):
        write_image(tmp_path / "dir.png", np.zeros((4, 4), np.uint8))


@pytest.mark.parametrize("shape", [(4,), (4, 4, 2), (0, 4), (2, 3, 4, 5)])
def test_bad_shape(tmp_path, shape):
    with pytest.raises(InputError, match="out.png.*shape"):
        write_image(tmp_path / "out.png", np.zeros(shape, np.uint8))


def test_bad_dtype(tmp_path):
    with pytest.raises(InputError, match="int32"):
        write_image(tmp_path / "out.png", np.zeros((4, 4), np.int32))


def _disk_full_save(self, fp, *args, **kwargs):
    fp.write(b"\x89PNG partial data")
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_leaves_no_partial_file(tmp_path, monkeypatch):
    monkeypatch.setattr(Image.Image, "save", _disk_full_save)
    with pytest.raises(ImageWriteError, match="out.png.*no space left") as info:
        write_image(tmp_path / "out.png", np.zeros((8, 8), np.uint8))
    assert info.value.path == tmp_path / "out.png"
    assert isinstance(info.value.__cause__, OSError) and info.value.__cause__.errno == errno.ENOSPC
    assert os.listdir(tmp_path) == []


def test_disk_full_keeps_the_old_target(tmp_path, monkeypatch):
    target = write_image(tmp_path / "out.png", np.full((8, 8), 9, np.uint8))
    before = target.read_bytes()
    monkeypatch.setattr(Image.Image, "save", _disk_full_save)
    with pytest.raises(ImageWriteError):
        write_image(target, np.zeros((8, 8), np.uint8))
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["out.png"]


def test_disk_full_in_tiff_writer(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tifffile, "imwrite", full)
    with pytest.raises(ImageWriteError, match="out.tif"):
        write_image(tmp_path / "out.tif", np.zeros((8, 8), np.uint16))
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------- to_float / from_float


@pytest.mark.parametrize("dtype,scale", [(np.uint8, 255.0), (np.uint16, 65535.0)])
def test_to_float_round_trip_every_value(dtype, scale):
    values = np.arange(np.iinfo(dtype).max + 1, dtype=dtype)
    x, fmt = to_float(values)
    assert x.dtype == np.float32 and fmt == ImageFormat(np.dtype(dtype).name, scale)
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_allclose(x, values / scale, rtol=1e-6)
    np.testing.assert_array_equal(from_float(x, fmt), values)


def test_to_float_float64_and_bit_depth():
    x, fmt = to_float(np.array([0, 128, 255], np.uint8), dtype=np.float64)
    assert x.dtype == np.float64 and x[1] == 128 / 255 and fmt.bit_depth == 8


def test_from_float_rounds_and_clips():
    fmt = ImageFormat("uint8", 255.0)
    out = from_float(np.array([-0.2, 0.1, 0.5 / 255 + 1e-9, 1.3]), fmt)
    np.testing.assert_array_equal(out, [0, 26, 1, 255])


def test_bool_round_trip():
    mask = np.array([[True, False], [False, True]])
    x, fmt = to_float(mask)
    np.testing.assert_array_equal(x, mask.astype(np.float32))
    np.testing.assert_array_equal(from_float(x, fmt), mask)


def test_float_outside_range_is_refused_unless_clip():
    bad = np.array([[-0.05, 0.5], [0.7, 1.2]], dtype=np.float32)
    with pytest.raises(InputError, match="outside"):
        to_float(bad)
    x, fmt = to_float(bad, clip=True)
    np.testing.assert_array_equal(x, np.clip(bad, 0, 1))
    assert fmt.dtype == "float32" and fmt.bit_depth is None


def test_float_round_off_is_tolerated():
    x, _ = to_float(np.array([-1e-6, 1 + 1e-6]))
    np.testing.assert_array_equal(x, [0.0, 1.0])


@pytest.mark.parametrize("bad", [np.array([np.nan, 0.5]), np.array([0, 1], np.int32)])
def test_to_float_rejects(bad):
    with pytest.raises(InputError):
        to_float(bad)


def test_image_format_is_frozen():
    fmt = ImageFormat("uint8", 255.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fmt.scale = 1.0  # type: ignore[misc]


# ----------------------------------------------------------------- shared data


# full data set -> the shipped folder a fresh clone reads instead, with its kinds of files
STAND_INS = {
    "tno": ("tno", "gray-rgb", "gray-rgb"),
    "roadscene-test": ("synthetic/mri-pet", "gray", "colour"),  # gray + colour, as RoadScene
    "mri-ct": ("synthetic/mri-ct", "gray", "gray"),
}


def _shared_folder(name: str, ir_kind: str, vi_kind: str) -> tuple[Path, str, str]:
    """The folder to read and the kinds of its two modalities: a shipped sample folder
    (``samples/...``), a full data set, or (in a fresh clone) the full set's stand-in."""
    from .conftest import full_or_sample, sample_dir

    if name.startswith("samples/"):
        return sample_dir(name[len("samples/"):]), ir_kind, vi_kind
    stand_in, s_ir, s_vi = STAND_INS[name]
    folder, full = full_or_sample(name, stand_in)
    return (folder, ir_kind, vi_kind) if full else (folder, s_ir, s_vi)


@pytest.mark.parametrize(
    "name,ir_kind,vi_kind",
    [("samples/tno", "gray-rgb", "gray-rgb"), ("samples/synthetic/mri-pet", "gray", "colour"),
     ("tno", "gray-rgb", "gray-rgb"), ("roadscene-test", "gray", "colour"), ("mri-ct", "gray-rgb", "gray-rgb")],
)
def test_read_every_shared_file(name, ir_kind, vi_kind):
    from .conftest import sample_pair_counts

    folder, ir_kind, vi_kind = _shared_folder(name, ir_kind, vi_kind)
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir())
    assert len(subdirs) == 2
    counts = sample_pair_counts()
    for sub, kind in zip(sorted(subdirs, key=lambda p: p.name not in ("ir", "mri")), (ir_kind, vi_kind)):
        files = sorted(sub.iterdir())
        assert files, f"no files in {sub}"
        rel = folder.relative_to(SAMPLES).as_posix() if folder.is_relative_to(SAMPLES) else None
        if rel is not None:  # a shipped folder: as many files as samples/README.md says
            assert len(files) == counts[rel], sub
        for path in files:
            raw = read_image(path)
            gray = read_image(path, gray_if_equal=True)
            assert raw.dtype == np.uint8 and min(raw.shape[:2]) >= 161
            if kind == "gray":
                assert raw.ndim == 2
            elif kind == "gray-rgb":
                assert raw.ndim == 3 and gray.ndim == 2, path
                np.testing.assert_array_equal(gray, raw[..., 0])
            else:
                assert raw.ndim == 3 and gray.ndim == 3, path


def test_palette_tiff_applies_its_colour_map(tmp_path):
    colormap = np.zeros((3, 256), np.uint16)
    colormap[:, 1] = [65535, 0, 257 * 10]
    colormap[:, 2] = [0, 257 * 200, 65535]
    indices = RNG.integers(0, 3, size=(6, 8), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "p.tif", indices, photometric="palette", colormap=colormap)
    back = read_image(tmp_path / "p.tif")
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, (colormap.T // 257).astype(np.uint8)[indices])


def test_miniswhite_tiff_is_inverted(tmp_path):
    image = random_image((6, 8), np.uint16)
    tifffile.imwrite(tmp_path / "w.tif", image, photometric="miniswhite")
    np.testing.assert_array_equal(read_image(tmp_path / "w.tif"), 65535 - image)


def test_rgba_tiff_drops_alpha(tmp_path):
    image = random_image((6, 8, 4), np.uint16)
    tifffile.imwrite(tmp_path / "a.tif", image, photometric="rgb", extrasamples=["unassalpha"])
    np.testing.assert_array_equal(read_image(tmp_path / "a.tif"), image[..., :3])

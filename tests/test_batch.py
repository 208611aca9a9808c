"""Tests of hifm.batch and hifm.cli.fuse_dir: resumable batch fusion and the bad-input catalogue."""

from __future__ import annotations

import errno
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from hifm import api
from hifm.batch import (
    MANIFEST_NAME,
    REPORT_NAME,
    BatchError,
    FuseSettings,
    final_pair_records,
    fuse_dir,
    read_manifest,
    sha256_file,
)
from hifm.cli.fuse_dir import main as cli_main
from hifm.errors import InputError
from hifm.io import read_image, write_image

REPO = Path(__file__).resolve().parents[1]
ANCHOR = FuseSettings(method="anchor")


# ----------------------------------------------------------------- helpers


def smooth_image(rng: np.random.Generator, shape: tuple[int, ...], dtype=np.uint8) -> np.ndarray:
    """A random smooth-ish image (compresses well, so the tests stay fast)."""
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    base = 0.5 + 0.4 * np.sin(xx / (3 + rng.random() * 5) + rng.random() * 6) * np.cos(yy / (4 + rng.random() * 5))
    if len(shape) == 3:
        base = np.stack([base, base[::-1], base[:, ::-1]], axis=-1)
    noisy = np.clip(base + 0.05 * rng.standard_normal(shape), 0, 1)
    if dtype == np.float32:
        return noisy.astype(np.float32)
    return np.rint(noisy * np.iinfo(dtype).max).astype(dtype)


def make_dataset(root: Path, n: int, *, shape=(24, 32), seed: int = 0) -> Path:
    """``root/{ir,vi}/NN.png``: gray infrared, colour visible."""
    rng = np.random.default_rng(seed)
    (root / "ir").mkdir(parents=True)
    (root / "vi").mkdir()
    for i in range(n):
        write_image(root / "ir" / f"{i:02d}.png", smooth_image(rng, shape))
        write_image(root / "vi" / f"{i:02d}.png", smooth_image(rng, shape + (3,)))
    return root


def output_bytes(folder: Path) -> dict[str, bytes]:
    """Every non-hidden image file in ``folder`` with its bytes."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix in (".png", ".tif", ".jpg")}


def pair_records(out: Path) -> list[dict]:
    return [r for r in read_manifest(out / MANIFEST_NAME) if r.get("kind") == "pair"]


def quiet(message: str) -> None:
    pass


def run_inline(root: Path, out: Path, settings: FuseSettings = ANCHOR, **kwargs):
    kwargs.setdefault("log", quiet)
    return fuse_dir(root, out, settings, workers=0, progress=False, **kwargs)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data"), 6)


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("reference")
    report = run_inline(dataset, out)
    assert report.complete and report.count("ok") == 6
    return output_bytes(out)


# ----------------------------------------------------------------- normal runs


def test_outputs_equal_the_api_and_manifest_is_complete(dataset, tmp_path):
    report = run_inline(dataset, tmp_path / "out")
    assert report.exit_code == 0 and report.count("ok") == 6 and report.total == 6
    records = pair_records(tmp_path / "out")
    assert [r["name"] for r in records] == [f"{i:02d}" for i in range(6)]
    for record in records:
        ir, vis = read_image(record["ir"], gray_if_equal=True), read_image(record["vis"], gray_if_equal=True)
        expected = api.fuse(ir, vis, method="anchor")
        np.testing.assert_array_equal(read_image(record["output"]), expected)
        assert record["status"] == "ok" and record["reason"] is None and record["method"] == "anchor"
        assert record["ir_sha256"] == sha256_file(record["ir"]) and record["vis_sha256"] == sha256_file(record["vis"])
        assert record["output_sha256"] == sha256_file(record["output"])
        assert record["hifm_version"] and record["seconds"] > 0 and record["finished"]
    header = read_manifest(tmp_path / "out" / MANIFEST_NAME)[0]
    assert header["kind"] == "run" and header["pairs"] == 6 and header["to_do"] == 6
    assert (tmp_path / "out" / REPORT_NAME).read_text().splitlines() == ["status,name,files,reason"]
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]


def test_options_reach_the_api(dataset, tmp_path, monkeypatch):
    calls = []

    def fake_fuse(ir, vis, method, **options):
        calls.append((method, options))
        return vis

    monkeypatch.setattr(api, "fuse", fake_fuse)
    report = run_inline(dataset, tmp_path / "out", FuseSettings(method="hifm", iters=3))
    assert report.count("ok") == 6 and calls == [("hifm", {"iters": 3})] * 6
    assert all(r["options"] == {"iters": 3} and r["method"] == "hifm" for r in pair_records(tmp_path / "out"))


@pytest.mark.parametrize("fmt,suffix", [("tif", ".tif"), ("same", ".png")])
def test_output_formats(dataset, tmp_path, reference, fmt, suffix):
    run_inline(dataset, tmp_path / "out", FuseSettings(method="anchor", out_format=fmt))
    outputs = output_bytes(tmp_path / "out")
    assert sorted(outputs) == sorted(name.replace(".png", suffix) for name in reference)
    for name, data in reference.items():
        (tmp_path / name).write_bytes(data)
        expected = read_image(tmp_path / name)
        np.testing.assert_array_equal(read_image(tmp_path / "out" / name.replace(".png", suffix)), expected)


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        ({"method": "fancy"}, "unknown method"),
        ({"method": "hifm", "weights": "w.json"}, "apply to method .derun. only"),
        ({"method": "anchor", "device": "cuda"}, "apply to method .derun. only"),
        ({"method": "hifm", "task": "xyz"}, "unknown task"),
        ({"method": "derun", "task": "xyz"}, "unknown task"),
        ({"out_format": "gif"}, "unknown output format"),
        ({"method": "anchor", "iters": 5}, "iters applies to method 'hifm'"),
        ({"max_pixels": 0}, "max_pixels must be positive"),
    ],
)
def test_bad_settings_are_refused(kwargs, pattern):
    with pytest.raises(InputError, match=pattern):
        FuseSettings(**kwargs)


# ----------------------------------------------------------------- resume


def test_resume_redoes_exactly_what_is_not_proven_done(dataset, reference, tmp_path):
    out = tmp_path / "out"
    run_inline(dataset, out)
    (out / "00.png").write_bytes((out / "00.png").read_bytes()[:40])  # half-written output
    (out / "01.png").unlink()  # output lost
    (out / ".02.png.abc123.tmp").write_bytes(b"partial")  # temporary file of a killed write
    records = pair_records(out)
    with open(out / MANIFEST_NAME, "a") as fh:  # the last record was cut short by a kill
        fh.write(json.dumps(records[3])[:50])
    data = tmp_path / "data"  # a changed input
    import shutil

    shutil.copytree(dataset, data)
    run_inline(data, tmp_path / "out2")
    write_image(data / "vi" / "04.png", np.zeros((24, 32, 3), np.uint8))

    report = run_inline(data, tmp_path / "out2", resume=True)
    assert [r["name"] for r in report.records] == ["04"] and len(report.already_done) == 5

    report = run_inline(dataset, out, resume=True)
    assert sorted(r["name"] for r in report.records) == ["00", "01"]
    assert sorted(report.already_done) == ["02", "03", "04", "05"]
    assert output_bytes(out) == reference
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    records = read_manifest(out / MANIFEST_NAME)
    assert sorted(final_pair_records(records)) == [f"{i:02d}" for i in range(6)]
    assert [r["kind"] for r in records].count("run") == 2  # the cut line did not swallow the next record


def test_resume_with_other_settings_redoes_everything(dataset, tmp_path):
    run_inline(dataset, tmp_path / "out")
    report = run_inline(dataset, tmp_path / "out", FuseSettings(method="anchor", resize=True), resume=True)
    assert report.count("ok") == 6 and report.already_done == []


def test_run_without_resume_redoes_and_appends(dataset, tmp_path):
    run_inline(dataset, tmp_path / "out")
    report = run_inline(dataset, tmp_path / "out")
    assert report.count("ok") == 6
    assert len(pair_records(tmp_path / "out")) == 12
    assert len(final_pair_records(read_manifest(tmp_path / "out" / MANIFEST_NAME))) == 6


SLOW_HOOK = """
import os, time
if os.environ.get("HIFM_TEST_PAIR_DELAY"):
    import hifm.api as _api
    _fuse = _api.fuse
    def _slow_fuse(*args, **kwargs):
        time.sleep(float(os.environ["HIFM_TEST_PAIR_DELAY"]))
        return _fuse(*args, **kwargs)
    _api.fuse = _slow_fuse
"""


def _complete_pair_lines(manifest: Path) -> int:
    if not manifest.exists():
        return 0
    return sum(1 for line in manifest.read_bytes().split(b"\n")[:-1] if b'"kind": "pair"' in line)


def test_kill_and_resume_equals_an_uninterrupted_run(tmp_path):
    """SIGKILL a fuse-dir process group part way, resume, compare with an uninterrupted run."""
    root = make_dataset(tmp_path / "data", 12, seed=5)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SLOW_HOOK)  # slows every pair in every process
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(hook), str(REPO)]), HIFM_TEST_PAIR_DELAY="0.25")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "hifm.cli.fuse_dir", str(root), "-o", str(out), "--method", "anchor", "--quiet"]
    log = open(tmp_path / "killed.log", "wb")
    proc = subprocess.Popen(cmd + ["--workers", "1"], env=env, start_new_session=True, stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while _complete_pair_lines(out / MANIFEST_NAME) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    log.close()
    done_before = _complete_pair_lines(out / MANIFEST_NAME)
    assert proc.returncode == -signal.SIGKILL, (tmp_path / "killed.log").read_text()
    assert 2 <= done_before < 12

    env.pop("HIFM_TEST_PAIR_DELAY")
    resumed = subprocess.run(cmd + ["--workers", "2", "--resume"], env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{done_before} already done" in resumed.stdout

    run_inline(root, tmp_path / "ref")
    assert output_bytes(out) == output_bytes(tmp_path / "ref")
    oks = [r["name"] for r in pair_records(out) if r["status"] == "ok"]
    assert sorted(oks) == [f"{i:02d}" for i in range(12)]  # each pair recorded ok exactly once
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


# ----------------------------------------------------------------- bad-input catalogue


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")


def _build_catalogue(root: Path) -> None:
    """One pair (or file) per catalogue entry; every pair's visible image is fine unless noted."""
    rng = np.random.default_rng(7)
    ir, vi = root / "ir", root / "vi"
    ir.mkdir(parents=True)
    vi.mkdir()
    gray = lambda: smooth_image(rng, (20, 24))  # noqa: E731
    colour = lambda: smooth_image(rng, (20, 24, 3))  # noqa: E731

    def pair(name: str, ir_image=None, vis_image=None, ext: str = ".png") -> None:
        write_image(ir / f"{name}{ext}", gray() if ir_image is None else ir_image)
        write_image(vi / f"{name}{ext}", colour() if vis_image is None else vis_image)

    pair("good")
    pair("mismatch", ir_image=smooth_image(rng, (16, 24)))
    pair("corrupt")
    data = bytearray((ir / "corrupt.png").read_bytes())
    start = data.index(b"IDAT") + 4
    data[start + 8 : start + 40] = bytes(32)
    (ir / "corrupt.png").write_bytes(bytes(data))
    pair("truncated")
    (vi / "truncated.png").write_bytes((vi / "truncated.png").read_bytes()[:120])
    pair("empty")
    (ir / "empty.png").write_bytes(b"")
    pair("notimage")
    (vi / "notimage.png").write_text("name,value\nthis is a CSV file,1\n")
    pair("tiff16", ir_image=smooth_image(rng, (20, 24), np.uint16), vis_image=smooth_image(rng, (20, 24), np.uint16),
         ext=".tif")
    tifffile.imwrite(ir / "tifffloat.tif", smooth_image(rng, (20, 24), np.float32))
    tifffile.imwrite(vi / "tifffloat.tif", smooth_image(rng, (20, 24), np.float32))
    Image.fromarray(np.dstack([colour(), np.full((20, 24), 128, np.uint8)]), mode="RGBA").save(vi / "rgba.png")
    write_image(ir / "rgba.png", gray())
    palette = Image.fromarray(rng.integers(0, 4, (20, 24), dtype=np.uint8), mode="P")
    palette.putpalette([0, 0, 0, 80, 80, 80, 160, 160, 160, 255, 255, 255])
    palette.save(ir / "palette.png")
    write_image(vi / "palette.png", colour())
    plane = gray()
    pair("grayrgb", ir_image=np.dstack([plane] * 3), vis_image=gray())
    pair("onepixel", ir_image=np.full((1, 1), 9, np.uint8), vis_image=np.full((1, 1), 9, np.uint8))
    (ir / "bomb.png").write_bytes(_png_header_only(100_000, 100_000))
    write_image(vi / "bomb.png", colour())
    pair("overlimit", ir_image=smooth_image(rng, (60, 60)), vis_image=smooth_image(rng, (60, 60, 3)))
    nan = smooth_image(rng, (20, 24), np.float32)
    nan[3, 4] = np.nan
    nan[5, 6] = np.inf
    tifffile.imwrite(ir / "nan.tif", nan)
    tifffile.imwrite(vi / "nan.tif", smooth_image(rng, (20, 24), np.float32))
    tifffile.imwrite(ir / "range.tif", smooth_image(rng, (20, 24), np.float32) * 255)
    tifffile.imwrite(vi / "range.tif", smooth_image(rng, (20, 24), np.float32))
    write_image(ir / "lonely.png", gray())
    write_image(ir / "dup.png", gray())
    write_image(ir / "dup.jpg", gray())
    write_image(vi / "dup.png", colour())
    (ir / "notes.txt").write_text("not an image")
    os.symlink("loop.png", ir / "loop.png")  # a symbolic link to itself
    os.symlink("..", ir / "up")  # a folder loop: ir/up/ir/up/...


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    root = tmp_path_factory.mktemp("catalogue")
    _build_catalogue(root)
    messages: list[str] = []
    out = root / "out"
    report = fuse_dir(root, out, FuseSettings(method="anchor", max_pixels=3000), workers=0, progress=False,
                      log=messages.append)
    return report, {r["name"]: r for r in report.records}, messages


CATALOGUE = [
    # name, status, pattern the reason must match (the file is checked separately)
    ("mismatch", "skipped", r"size mismatch: '.*ir/mismatch\.png' is 24×16, '.*vi/mismatch\.png' is 24×20 .*--resize"),
    ("corrupt", "skipped", r"cannot read image '.*ir/corrupt\.png': (corrupt|truncated)"),
    ("truncated", "skipped", r"cannot read image '.*vi/truncated\.png': .*truncated"),
    ("empty", "skipped", r"cannot read image '.*ir/empty\.png': file is empty \(0 bytes\)"),
    ("notimage", "skipped", r"cannot read image '.*vi/notimage\.png': not a recognized image"),
    ("onepixel", "skipped", r"cannot read image '.*ir/onepixel\.png': image is 1-D \(1×1 pixels\)"),
    ("bomb", "skipped", r"cannot read image '.*ir/bomb\.png': image is 100000×100000 = 10,000,000,000 pixels"),
    ("overlimit", "skipped", r"cannot read image '.*ir/overlimit\.png': .*max_pixels=3,000"),
    ("nan", "skipped", r"cannot fuse '.*ir/nan\.tif': 2 pixel value\(s\) are NaN or infinite"),
    ("range", "skipped", r"cannot fuse '.*ir/range\.tif' \+ '.*vi/range\.tif': .*float images must lie in \[0, 1\]"),
]


@pytest.mark.parametrize("name,status,pattern", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_catalogue_bad_pairs_are_skipped_with_a_one_line_reason(catalogue, name, status, pattern):
    report, records, messages = catalogue
    record = records[name]
    assert record["status"] == status
    assert re_search(pattern, record["reason"]), record["reason"]
    assert "\n" not in record["reason"] and record["output_sha256"] is None
    assert not Path(record["output"]).exists()
    assert f"{status}: {record['reason']}" in messages
    assert record["reason"] in (report.report).read_text()


def re_search(pattern: str, text: str) -> bool:
    import re

    return re.search(pattern, text) is not None


@pytest.mark.parametrize(
    "name,dtype,shape,note",
    [
        ("good", "uint8", [20, 24, 3], None),
        ("tiff16", "uint16", [20, 24], None),
        ("tifffloat", "float32", [20, 24], "float result stored with 16 bits per sample"),
        ("rgba", "uint8", [20, 24, 3], "vis: alpha channel dropped (stored mode RGBA)"),
        ("palette", "uint8", [20, 24, 3], "ir: palette expanded to gray"),
        ("grayrgb", "uint8", [20, 24], "ir: gray image stored as RGB read as one plane"),
    ],
)
def test_catalogue_unusual_but_valid_inputs_are_fused_and_noted(catalogue, name, dtype, shape, note):
    _, records, _ = catalogue
    record = records[name]
    assert record["status"] == "ok", record["reason"]
    assert record["out_dtype"] == dtype and record["out_shape"] == shape
    assert note is None or note in record["notes"]
    stored = read_image(record["output"])
    assert stored.dtype == (np.uint16 if dtype != "uint8" else np.uint8) and list(stored.shape) == shape


@pytest.mark.parametrize(
    "pattern",
    [
        r"unpaired file '.*ir/lonely\.png': no file with stem 'lonely' in vi/",
        r"duplicate stem 'dup': '.*ir/dup\.jpg', '.*ir/dup\.png'; rename or remove",
        r"unpaired file '.*vi/dup\.png': its partner 'dup' in ir/ has several files",
        r"unpaired file '.*ir/notes\.txt': not an image file",
        r"unpaired file '.*ir/loop\.png': not a regular file",
    ],
)
def test_catalogue_unpaired_duplicate_and_looping_files_are_reported(catalogue, pattern):
    report, _, messages = catalogue
    reasons = [reason for _, reason in report.input_problems]
    assert any(re_search(pattern, reason) for reason in reasons), reasons
    assert any(re_search(pattern, message) for message in messages)
    assert any(re_search(pattern, line) for line in report.report.read_text().splitlines())
    manifest = [r["reason"] for r in read_manifest(report.manifest) if r["kind"] == "file"]
    assert any(re_search(pattern, reason) for reason in manifest)


def test_catalogue_nothing_is_dropped(catalogue):
    report, records, _ = catalogue
    assert report.total == len(records) == 16 and report.exit_code == 1
    assert report.count("ok") == 6 and report.count("skipped") == 10
    assert len(report.input_problems) == 5


def test_unreadable_input_is_skipped(dataset, tmp_path, monkeypatch):
    from hifm import batch

    real = batch.sha256_file

    def no_permission(path):
        if Path(path).name == "00.png" and Path(path).parent.name == "ir":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(batch, "sha256_file", no_permission)
    report = run_inline(dataset, tmp_path / "out")
    assert report.count("ok") == 5 and report.records[0]["status"] == "skipped"
    assert re_search(r"^cannot read image '.*ir/00\.png': permission denied$", report.records[0]["reason"])


def test_nan_and_inf_arrays_are_refused_by_the_api():
    good = np.full((8, 8), 0.5, np.float32)
    for bad_value in (np.nan, np.inf):
        bad = good.copy()
        bad[2, 2] = bad_value
        with pytest.raises(InputError, match="NaN or infinite"):
            api.fuse(bad, good, method="anchor")


def test_resize_is_explicit_and_recorded(tmp_path):
    root = make_dataset(tmp_path / "data", 1)
    write_image(root / "ir" / "00.png", smooth_image(np.random.default_rng(1), (48, 64)))
    skipped = run_inline(root, tmp_path / "skip")
    assert skipped.count("skipped") == 1 and "--resize" in skipped.records[0]["reason"]
    report = run_inline(root, tmp_path / "out", FuseSettings(method="anchor", resize=True))
    record = report.records[0]
    assert record["status"] == "ok" and record["resized"]["from"] == [48, 64] and record["resized"]["to"] == [24, 32]
    assert read_image(record["output"]).shape == (24, 32, 3)


# ----------------------------------------------------------------- output folder and disk


def test_output_folder_that_is_a_file(dataset, tmp_path):
    (tmp_path / "out").write_text("x")
    with pytest.raises(BatchError, match=r"output folder '.*out' exists and is not a folder"):
        run_inline(dataset, tmp_path / "out")


def test_unwritable_output_folder(dataset, tmp_path, monkeypatch):
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(BatchError, match=r"output folder '.*out' is not writable: permission denied"):
        run_inline(dataset, tmp_path / "out")


def test_output_folder_may_not_be_an_input_folder(dataset):
    with pytest.raises(BatchError, match="is an input folder"):
        run_inline(dataset, dataset / "vi")


def test_cli_reports_setup_errors_in_one_line(dataset, tmp_path, capsys):
    (tmp_path / "out").write_text("x")
    code = cli_main([str(dataset), "-o", str(tmp_path / "out"), "--method", "anchor", "--workers", "0", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("hifm fuse-dir: error: output folder")
    code = cli_main([str(tmp_path / "nowhere"), "-o", str(tmp_path / "o2"), "--workers", "0"])
    assert code == 2 and "nowhere" in capsys.readouterr().err
    code = cli_main([str(dataset), "-o", str(tmp_path / "o3"), "--method", "anchor", "--iters", "3"])
    assert code == 2 and "iters applies to method 'hifm'" in capsys.readouterr().err


def test_disk_full_stops_the_run_and_resume_finishes_it(dataset, reference, tmp_path, monkeypatch):
    def disk_full(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        patch.setattr(Image.Image, "save", disk_full)
        report = run_inline(dataset, out)
    assert report.stop_reason and "disk full" in report.stop_reason and report.exit_code == 1
    assert report.count("failed") >= 1 and report.count("ok") == 0
    assert len(report.not_run) + len(report.records) == 6
    assert all(re_search(r"cannot write image '.*out/\d\d\.png': no space left", r["reason"]) for r in report.records)
    assert output_bytes(out) == {} and not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert "not run" in report.report.read_text()
    again = run_inline(dataset, out, resume=True)
    assert again.complete and output_bytes(out) == reference


def test_manifest_write_failure_stops_with_a_clear_error(dataset, tmp_path, monkeypatch):
    real_fsync = os.fsync

    def fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(MANIFEST_NAME):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(BatchError, match=r"cannot append to manifest '.*manifest\.jsonl': no space left .*--resume"):
        run_inline(dataset, tmp_path / "out")


def test_a_second_run_on_the_same_folder_is_refused(dataset, tmp_path):
    import fcntl

    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".hifm-fuse-dir.lock", "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        with pytest.raises(BatchError, match="another fuse-dir run"):
            run_inline(dataset, out)


def test_worker_crash_is_recorded_as_failed(dataset, tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(api, "fuse", crash)
    report = run_inline(dataset, tmp_path / "out")
    assert report.count("failed") == 6 and report.exit_code == 1
    assert re_search(r"fusing '.*ir/00\.png' \+ '.*vi/00\.png' failed: RuntimeError: boom", report.records[0]["reason"])


def test_hifm_cli_has_fuse_dir(dataset, tmp_path, reference):
    from hifm.cli import main

    assert main(["fuse-dir", str(dataset), "-o", str(tmp_path / "out"), "--method", "anchor", "--workers", "0",
                 "--quiet"]) == 0
    assert output_bytes(tmp_path / "out") == reference

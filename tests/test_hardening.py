"""Hardening (issue #11): no input may lose data, give a silently wrong result, or end in a traceback.

One section per class of docs/robustness.md ("Hardening catalogue"); the process (class 8) and
training (class 9) classes are in test_hardening_processes.py and test_hardening_training.py.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps

import hifm
import hifm.metrics
from hifm.batch import BatchError, FuseSettings, fuse_dir
from hifm.cli import main as hifm_main
from hifm.errors import DivergenceError, HIFMError, ImageReadError, InputError, OptionError, ResourceError
from hifm.io import apply_orientation, read_image, write_image
from hifm.params import HIFMParams
from hifm.solver import HIFMSolver

REPO = Path(__file__).resolve().parents[1]
ANCHOR = FuseSettings(method="anchor")


def scene(shape=(24, 32), seed=0, colour=False) -> np.ndarray:
    """A smooth uint8 image (random phase), gray or colour."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    base = 0.5 + 0.4 * np.sin(xx / (3 + 4 * rng.random()) + 6 * rng.random()) * np.cos(yy / (4 + 4 * rng.random()))
    if colour:
        base = np.stack([base, base[::-1], base[:, ::-1]], axis=-1)
    return np.rint(np.clip(base + 0.03 * rng.standard_normal(base.shape), 0, 1) * 255).astype(np.uint8)


def dataset(root: Path, n: int = 3, shape=(24, 32)) -> Path:
    (root / "ir").mkdir(parents=True)
    (root / "vi").mkdir()
    for i in range(n):
        write_image(root / "ir" / f"{i:02d}.png", scene(shape, seed=2 * i))
        write_image(root / "vi" / f"{i:02d}.png", scene(shape, seed=2 * i + 1, colour=True))
    return root


def digest(folder: Path) -> dict[str, str]:
    """sha256 of every file below ``folder`` (by relative path)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = hifm_main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def one_error_line(err: str, prefix: str = "hifm ") -> str:
    """The stderr of a refused command: exactly one line, ``PREFIX...: error: ...``, no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert lines[0].startswith(prefix) and ": error: " in lines[0], err
    return lines[0]


# ============================================================== 1. data loss
def test_output_folder_that_is_an_input_folder_under_a_symlink_is_refused(tmp_path):
    data = dataset(tmp_path / "data")
    alias = tmp_path / "alias"
    alias.symlink_to(data / "vi", target_is_directory=True)
    before = digest(data)
    with pytest.raises(BatchError, match="is an input folder"):
        fuse_dir(data, alias, ANCHOR, workers=0, progress=False, log=lambda m: None)
    assert digest(data) == before


def test_output_folder_bind_mounted_on_an_input_folder_is_refused(tmp_path):
    data = dataset(tmp_path / "data")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    try:
        done = subprocess.run(["mount", "--bind", str(data / "vi"), str(mnt)], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"mount is not available here ({exc})")
    if done.returncode != 0:
        pytest.skip(f"mount --bind is not permitted here: {done.stderr.decode(errors='replace').strip()}")
    try:
        assert os.path.realpath(mnt) != os.path.realpath(data / "vi")  # the paths differ, the folder is one
        before = digest(data)
        with pytest.raises(BatchError, match="is an input folder"):
            fuse_dir(data, mnt, ANCHOR, workers=0, progress=False, log=lambda m: None)
        assert digest(data) == before
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True, timeout=30)


@pytest.mark.parametrize("alias", ["dot", "hardlink", "symlink"])
def test_fuse_output_that_is_an_input_is_refused(tmp_path, capsys, alias):
    ir, vis = tmp_path / "ir.png", tmp_path / "vis.png"
    write_image(ir, scene())
    write_image(vis, scene(seed=1))
    out = {"dot": tmp_path / "." / "vis.png", "hardlink": tmp_path / "link.png", "symlink": tmp_path / "sym.png"}[alias]
    if alias == "hardlink":
        os.link(vis, out)
    elif alias == "symlink":
        out.symlink_to(vis)
    before = vis.read_bytes()
    rc, _, err = run_cli(["fuse", str(ir), str(vis), "-o", str(out), "--method", "anchor"], capsys)
    assert rc == 1
    assert "is the VIS input" in one_error_line(err)
    assert vis.read_bytes() == before


def test_manifest_symlink_is_never_written_through(tmp_path):
    data = dataset(tmp_path / "data")
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (out / "manifest.jsonl").symlink_to(victim)
    with pytest.raises(BatchError, match="symbolic link"):
        fuse_dir(data, out, ANCHOR, workers=0, progress=False, log=lambda m: None)
    assert victim.read_text() == "precious\n"


def test_an_input_that_lives_in_the_output_folder_is_not_overwritten(tmp_path):
    data = dataset(tmp_path / "data", n=2)
    out = tmp_path / "out"
    out.mkdir()
    # the visible image of pair 00 is really OUTDIR/00.png (a link into the output folder)
    real = out / "00.png"
    (data / "vi" / "00.png").rename(real)
    (data / "vi" / "00.png").symlink_to(real)
    before = real.read_bytes()
    report = fuse_dir(data, out, ANCHOR, workers=0, progress=False, log=lambda m: None)
    assert real.read_bytes() == before
    record = next(r for r in report.records if r["name"] == "00")
    assert record["status"] == "skipped" and "is the same file as input" in record["reason"]
    assert next(r for r in report.records if r["name"] == "01")["status"] == "ok"


# ============================================================== 2. silently wrong numbers
@pytest.mark.parametrize("params, name", [
    ({"rho": 1e39}, "rho"), ({"rho": 1e30}, "rho"), ({"rho": 1e300, "tau": 1e300}, "rho"), ({"tau": 1e-9}, "tau"),
    ({"eta": 1e6}, "eta"), ({"eta": 5}, "eta"), ({"eta": 2.0}, "eta"), ({"omega": 2.5}, "omega"),
    ({"mu": 1e300}, "mu"), ({"mu": 1, "theta": 1e308}, "theta"), ({"lam": 1e4}, "lam"),
    ({"noise_gain": 1e30}, "noise_gain"), ({"tol": 0.0}, "tol"), ({"h_steps": 10**6}, "h_steps"),
    ({"rho": float("nan")}, "rho"), ({"mu": True}, "mu"),
])
def test_parameters_outside_their_range_are_refused(params, name):
    a, b = scene(), scene(seed=1)
    with pytest.raises(InputError, match=rf"parameter {name} must"):
        hifm.solve(a, b, iters=3, **params)


def test_valid_numpy_scalars_are_accepted_and_equal_python_ones():
    a, b = scene(), scene(seed=1)
    via_numpy = hifm.solve(a, b, iters=4, mu=np.float32(0.5), h_steps=np.int64(2), rho=np.float64(2.0))
    via_python = hifm.solve(a, b, iters=4, mu=float(np.float32(0.5)), h_steps=2, rho=2.0)
    np.testing.assert_array_equal(via_numpy, via_python)


@pytest.mark.parametrize("engine", ["fused", "reference"])
def test_a_diverging_iterate_raises_instead_of_becoming_an_image(engine):
    """η = 5 (refused by the ranges; forced here) makes the ADMM blow up: the solver must say so."""
    from hifm.anchors import anchor
    from hifm.sources import prepare_sources

    prep = prepare_sources(scene(), scene(seed=1))
    m = anchor(prep.a, prep.b, "two_scale")
    p = HIFMParams()
    object.__setattr__(p, "eta", 5.0)  # bypass the range check: the check behind it is under test
    solver = HIFMSolver(m, p.resolve(0.02), engine=engine, sources=(prep.a, prep.b))
    with pytest.raises(DivergenceError, match="the ADMM iterate (diverged|produced NaN)"):
        solver.run(200)
        solver.result()


def test_in_range_parameters_that_diverge_raise():
    """σ close to its bound with a strong prior diverges on this scene although every value is allowed."""
    tau, mu, theta = 1.7, 0.1, 2.0
    sigma = 0.99 * 2.0 / (tau + 2.0 * mu * theta)
    with pytest.raises(DivergenceError, match="diverged"):
        hifm.solve(scene((48, 64)), scene((48, 64), seed=1), iters=200, tau=tau, mu=mu, theta=theta, sigma_h=sigma)


def test_nan_is_never_cast_to_zero():
    from hifm.sources import prepare_sources, restore_layout

    prep = prepare_sources(scene(), scene(seed=1))
    y = np.full(prep.a.shape, 0.5, np.float32)
    y[3, 4] = np.nan
    with pytest.raises(DivergenceError, match="1 NaN"):
        restore_layout(y, prep)
    with pytest.raises(InputError, match="anchor M holds NaN"):
        hifm.fuse(scene(), scene(seed=1), method="anchor", anchor=lambda a, b: a * np.nan)


# ============================================================== 3. inputs read wrong
def _save_with_orientation(path: Path, arr: np.ndarray, orientation: int, **kw) -> None:
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[274] = orientation
    img.save(path, exif=exif, **kw)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_pillow_does(tmp_path, orientation):
    arr = scene((20, 30), colour=True)
    _save_with_orientation(tmp_path / "o.png", arr, orientation)
    reference = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o.png")))
    np.testing.assert_array_equal(read_image(tmp_path / "o.png"), reference)
    # the same transform on arrays (used for TIFF's orientation tag)
    np.testing.assert_array_equal(apply_orientation(arr, orientation), reference)


def test_tiff_orientation_tag_is_applied(tmp_path):
    arr = scene((20, 30))
    tifffile.imwrite(tmp_path / "o.tif", arr, photometric="minisblack", extratags=[(274, 3, 1, 6, True)])
    np.testing.assert_array_equal(read_image(tmp_path / "o.tif"), np.rot90(arr, -1))


def test_exif_rotated_jpeg_is_fused_upright(tmp_path, capsys):
    """A visible JPEG stored sideways (orientation 6) has the infrared image's size once upright."""
    upright = scene((40, 60), seed=1, colour=True)
    stored = np.rot90(upright, 1).copy()  # what the camera wrote: rotate 90° clockwise to view it
    _save_with_orientation(tmp_path / "vis.jpg", stored, 6, quality=95)
    reference = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "vis.jpg")))
    assert reference.shape == (40, 60, 3)
    np.testing.assert_array_equal(read_image(tmp_path / "vis.jpg"), reference)
    write_image(tmp_path / "ir.png", scene((40, 60)))
    rc, _, err = run_cli(["fuse", str(tmp_path / "ir.png"), str(tmp_path / "vis.jpg"), "-o", str(tmp_path / "f.png"),
                          "--method", "anchor"], capsys)
    assert rc == 0, err
    assert read_image(tmp_path / "f.png").shape == (40, 60, 3)


def test_two_frame_gif_is_refused_unless_a_page_is_chosen(tmp_path, capsys):
    frames = [Image.fromarray(scene((12, 16), seed=k)) for k in range(2)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageReadError, match="has 2 frames"):
        read_image(tmp_path / "a.gif")
    with Image.open(tmp_path / "a.gif") as img:
        img.seek(1)
        second = np.asarray(img.convert("RGB"))
    got = read_image(tmp_path / "a.gif", page=1, gray_if_equal=True)
    np.testing.assert_array_equal(got, second[..., 0] if got.ndim == 2 else second)
    with pytest.raises(ImageReadError, match="page 2 requested, the file has 2"):
        read_image(tmp_path / "a.gif", page=2)
    write_image(tmp_path / "b.png", scene((12, 16)))
    rc, _, err = run_cli(["fuse", str(tmp_path / "a.gif"), str(tmp_path / "b.png"), "-o", str(tmp_path / "f.png")],
                         capsys)
    assert rc == 1 and "has 2 frames" in one_error_line(err)


def test_multi_page_tiff_is_refused_but_a_thumbnail_page_does_not_count(tmp_path):
    with tifffile.TiffWriter(tmp_path / "stack.tif") as tw:
        for k in range(3):
            tw.write(scene((12, 16), seed=k), photometric="minisblack")
    with pytest.raises(ImageReadError, match="has 3 pages"):
        read_image(tmp_path / "stack.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "stack.tif", page=2), scene((12, 16), seed=2))
    with tifffile.TiffWriter(tmp_path / "thumb.tif") as tw:
        tw.write(scene((12, 16)), photometric="minisblack")
        tw.write(scene((6, 8)), photometric="minisblack", subfiletype=1)  # reduced-resolution page
    np.testing.assert_array_equal(read_image(tmp_path / "thumb.tif"), scene((12, 16)))


def test_float_tiff_results_follow_one_rule_in_fuse_and_fuse_dir(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    (data / "ir").mkdir(parents=True)
    (data / "vi").mkdir()
    ir = rng.random((24, 32), dtype=np.float32)
    vis = rng.random((24, 32), dtype=np.float32)
    tifffile.imwrite(data / "ir" / "a.tif", ir)
    tifffile.imwrite(data / "vi" / "a.tif", vis)
    rc, _, err = run_cli(["fuse", str(data / "ir" / "a.tif"), str(data / "vi" / "a.tif"), "-o",
                          str(tmp_path / "one.png"), "--method", "anchor"], capsys)
    assert rc == 0, err
    fuse_dir(data, tmp_path / "batch", ANCHOR, workers=0, progress=False, log=lambda m: None)
    one, batch = read_image(tmp_path / "one.png"), read_image(tmp_path / "batch" / "a.png")
    assert one.dtype == batch.dtype == np.uint16
    np.testing.assert_array_equal(one, batch)
    fused = hifm.fuse(ir, vis, method="anchor").astype(np.float64)
    expected = np.rint(np.clip(fused, 0, 1) * 65535).astype(np.uint16)  # the documented rule: round(x · 65535)
    np.testing.assert_array_equal(one, expected)
    rc, _, err = run_cli(["fuse", str(data / "ir" / "a.tif"), str(data / "vi" / "a.tif"), "-o",
                          str(tmp_path / "one.jpg"), "--method", "anchor"], capsys)
    assert rc == 0 and read_image(tmp_path / "one.jpg").dtype == np.uint8  # JPEG holds 8 bits


@pytest.mark.parametrize("call, match", [
    (lambda a, b: hifm.fuse(np.ma.masked_array(a, mask=a > 100), b), "masked arrays are not accepted"),
    (lambda a, b: hifm.fuse(a, b, method="anchor", dtype="int8"), "dtype must be 'float32' or 'float64'"),
    (lambda a, b: hifm.metrics.evaluate(a.astype(float) - 300.0, b, a), "float values must not be negative"),
    (lambda a, b: hifm.metrics.evaluate(np.ma.masked_array(a, mask=a > 0), b, a), "masked arrays"),
])
def test_arrays_that_would_be_read_wrong_are_refused(call, match):
    with pytest.raises(InputError, match=match):
        call(scene(), scene(seed=1))


def test_big_endian_uint16_is_the_same_image():
    a, b = (scene(seed=k).astype(np.uint16) * 257 for k in (0, 1))
    native = hifm.fuse(a, b, method="anchor")
    swapped = hifm.fuse(a.astype(">u2"), b.astype(">u2"), method="anchor")
    np.testing.assert_array_equal(native, swapped)


# ============================================================== 4. options that do nothing
FUSE_OPTIONS = {
    "--iters 3": {"hifm"},
    "--backend numpy": {"hifm"},
    "--mu 0.01": {"hifm"},
    "--rho 2": {"hifm"},
    "--lam 0.01": {"hifm"},
    "--anchor mean": {"hifm", "anchor"},
    "--target anchor": {"hifm"},
    "--dtype float64": {"hifm", "anchor", "derun"},
    "--task mif": {"hifm", "anchor", "derun"},  # the shipped weights, or the anchor (TASK_ANCHORS)
    "--device cpu": {"hifm", "anchor", "derun"},  # the default value: nothing to refuse
    "--resize": {"hifm", "anchor", "derun"},
}


@pytest.fixture(scope="module")
def small_pair(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("pair")
    write_image(folder / "ir.png", scene((16, 20)))
    write_image(folder / "vis.png", scene((16, 20), seed=1, colour=True))
    return folder / "ir.png", folder / "vis.png"


@pytest.mark.parametrize("method", ["anchor", "hifm", "derun"])
@pytest.mark.parametrize("option", sorted(FUSE_OPTIONS))
def test_fuse_option_matrix(small_pair, tmp_path, capsys, method, option):
    if method == "derun":
        pytest.importorskip("torch")
    ir, vis = small_pair
    rc, out, err = run_cli(["fuse", str(ir), str(vis), "-o", str(tmp_path / "f.png"), "--method", method,
                            *option.split()], capsys)
    if method in FUSE_OPTIONS[option]:
        assert rc == 0, err
        assert (tmp_path / "f.png").is_file()
    else:
        assert rc == 1
        line = one_error_line(err)
        assert f"{option.split()[0]} applies to --method" in line and f"(this run uses --method {method})" in line
        assert not (tmp_path / "f.png").exists()


def test_fuse_target_option_reaches_the_model(small_pair, tmp_path, capsys):
    """``--target anchor`` (the supplement's T = ∇M) gives hifm.solve's result with target="anchor",
    which differs from the default source target; an unknown target is one clear error."""
    ir, vis = small_pair
    outs = {}
    for target in ("anchor", "sources"):
        rc, _, err = run_cli(["fuse", str(ir), str(vis), "-o", str(tmp_path / f"{target}.png"), "--iters", "30",
                              "--target", target], capsys)
        assert rc == 0, err
        outs[target] = read_image(tmp_path / f"{target}.png")
    want = hifm.fuse(read_image(ir), read_image(vis), iters=30, target="anchor")
    assert np.abs(outs["anchor"] - want).max() <= 1.0 / 255 + 1e-6  # equal up to the 8-bit file
    assert np.abs(outs["anchor"] - outs["sources"]).max() > 2.0 / 255
    rc, _, err = run_cli(["fuse", str(ir), str(vis), "-o", str(tmp_path / "x.png"), "--target", "bogus"], capsys)
    assert rc != 0 and "target must be one of" in one_error_line(err)
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("method, options, owner", [
    ("derun", {"mu": 0.1}, "hifm"), ("derun", {"iters": 5}, "hifm"), ("anchor", {"iters": 5}, "hifm"),
    ("anchor", {"rho": 2.0}, "hifm"), ("hifm", {"task": "ivf"}, "derun"), ("hifm", {"batch_size": 2}, "derun"),
    ("anchor", {"weights": "x.json"}, "derun"),
])
def test_api_refuses_options_of_another_method(method, options, owner):
    with pytest.raises(OptionError, match=rf"\(method {owner} only\) do not apply to method '{method}'"):
        hifm.fuse(scene(), scene(seed=1), method=method, **options)


def test_api_refuses_unknown_options_as_type_errors():
    with pytest.raises(TypeError, match="bogus"):  # OptionError is also a TypeError
        hifm.fuse(scene(), scene(seed=1), method="hifm", bogus=1)


# ============================================================== 5. hifm eval answers the right question
@pytest.fixture()
def eval_set(tmp_path) -> Path:
    dataset(tmp_path / "sources", n=5)
    fused = tmp_path / "fused" / "m"
    fused.mkdir(parents=True)
    write_image(fused / "02.png", scene((24, 32), seed=9, colour=True))
    return tmp_path


def test_eval_reports_missing_fused_images_and_fails(eval_set, capsys):
    from hifm.cli.eval import main as eval_main

    argv = [str(eval_set / "fused" / "m"), "--sources", str(eval_set / "sources"), "--metrics", "entropy",
            "--no-progress", "--format", "json"]
    rc = eval_main(argv)
    out, err = capsys.readouterr()
    assert rc == 1
    assert "m: 4 of 5 source pairs have no evaluated fused image: 00, 01, 03, 04" in err
    assert json.loads(out)["missing"] == {"m": ["00", "01", "03", "04"]}
    assert err.strip().splitlines()[-1].startswith("hifm eval: error: 4 missing fused image(s)")
    assert eval_main(argv + ["--allow-missing"]) == 0


def test_eval_reads_float_fused_images_on_the_sources_scale(tmp_path, capsys):
    from hifm.cli.eval import main as eval_main

    src = dataset(tmp_path / "sources", n=1)
    fused8 = scene((24, 32), seed=5)
    (tmp_path / "png").mkdir()
    (tmp_path / "tif").mkdir()
    write_image(tmp_path / "png" / "00.png", fused8)
    tifffile.imwrite(tmp_path / "tif" / "00.tif", fused8.astype(np.float32) / 255.0)  # the same image in [0, 1]
    rc = eval_main([str(tmp_path / "png"), str(tmp_path / "tif"), "--sources", str(src), "--metrics", "entropy",
                    "standard_deviation", "--no-progress", "--format", "json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    doc = json.loads(out)["methods"]
    assert doc["tif"]["images"]["00"]["entropy"] == pytest.approx(doc["png"]["images"]["00"]["entropy"], abs=1e-9)
    assert doc["tif"]["images"]["00"]["standard_deviation"] == pytest.approx(
        doc["png"]["images"]["00"]["standard_deviation"], rel=1e-6)
    assert doc["png"]["images"]["00"]["entropy"] > 4.0  # an 8-bit scene, not values crowded in [0, 1]


# ============================================================== 6. one line, never a traceback
@pytest.mark.parametrize("argv", [
    ["fuse", "{ir}", "{vis}", "-o", "{out}", "--mu", "1e300"],
    ["fuse", "{ir}", "{vis}", "-o", "{out}", "--mu", "1", "--theta", "1e308"],
    ["fuse", "{ir}", "{vis}", "-o", "{out}", "--backend", "cupy"],
    ["fuse", "{ir}", "{vis}", "-o", "{out}", "--dtype", "float16"],
    ["fuse", "{ir}", "{vis}", "-o", "{out}", "--method", "derun", "--device", "bogus"],
    ["fuse", "{ir}", "{vis}", "-o", "{out}", "--iters", "-4"],
    ["demo", "-o", "{tmp}/demo", "--height", "100000"],
    ["demo", "-o", "{tmp}/demo", "--noise", "-1"],
    ["demo", "-o", "{tmp}/demo", "--noise", "nan"],
    ["fuse-dir", "{tmp}", "-o", "{tmp}/o", "--dask", "not a url"],
    ["eval", "{tmp}", "--sources", "{tmp}/nothing"],
])
def test_user_errors_end_in_one_line(small_pair, tmp_path, capsys, argv):
    if "cupy" in argv:
        import importlib.util

        if importlib.util.find_spec("cupy") is not None:
            pytest.skip("CuPy is installed here: --backend cupy is not an error")
    ir, vis = small_pair
    argv = [a.format(ir=ir, vis=vis, out=tmp_path / "f.png", tmp=tmp_path) for a in argv]
    rc, out, err = run_cli(argv, capsys)
    assert rc in (1, 2)
    one_error_line(err)


@pytest.mark.parametrize("module, argv, status", [
    ("unrolled.train", ["--steps", "-1", "--data", "samples/tno"], 1),
    ("unrolled.train", ["--threads", "0", "--data", "samples/tno"], 1),
    ("unrolled.report", ["curves", "no-such.csv", "x.png"], 1),
    ("unrolled.weights", ["verify", "no-such.json"], 1),
    ("hifm.cli.fuse_dir", ["no-such-root", "-o", "out"], 2),
    ("hifm.cli.eval", ["no-such-dir", "--sources", "no-such-root"], 2),
])
def test_python_m_entry_points_end_in_one_line(tmp_path, module, argv, status):
    if module.startswith("unrolled"):
        pytest.importorskip("torch")
    argv = [str(REPO / a) if a.startswith("samples/") else a for a in argv]
    done = subprocess.run([sys.executable, "-m", module, *argv], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == status, done.stderr
    if module == "unrolled.weights":  # verify prints its table on stdout, one line per file
        assert "MISMATCH" in done.stdout and "Traceback" not in done.stderr
        return
    one_error_line(done.stderr, prefix="")


def test_api_raises_hifm_exception_types():
    with pytest.raises(HIFMError):
        hifm.solve(scene(), scene(seed=1), rho=-1)
    with pytest.raises(HIFMError):
        hifm.anchor(scene(), scene(seed=1), method="bogus")
    with pytest.raises(HIFMError):
        hifm.metrics.evaluate(scene(), scene(seed=1), scene(seed=2), metrics=["bogus"])
    with pytest.raises(HIFMError, match="unknown engine 'bogus'"):
        hifm.solve(scene(), scene(seed=1), iters=2, engine="bogus")


# ============================================================== 7. memory
def test_memory_estimate_refuses_a_large_job_before_allocating():
    big = np.broadcast_to(np.uint8(7), (100_000, 100_000))  # 10 Gpx that take no memory
    tracemalloc.start()
    try:
        for method in ("hifm", "anchor"):
            with pytest.raises(ResourceError, match=rf"100000×100000 pair with method '{method}' needs about [\d.]+ "
                                                    r"(GB|TB) of memory, more than the .* available"):
                hifm.fuse(big, big, method=method)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6  # refused from the shapes: nothing image-sized was allocated


def test_memory_limit_from_the_environment_is_one_line(small_pair, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HIFM_MEMORY_LIMIT", "1K")
    ir, vis = small_pair
    rc, _, err = run_cli(["fuse", str(ir), str(vis), "-o", str(tmp_path / "f.png")], capsys)
    assert rc == 1
    line = one_error_line(err)
    assert "needs about" in line and "(HIFM_MEMORY_LIMIT included)" in line and "--method anchor" in line
    assert not (tmp_path / "f.png").exists()


@pytest.mark.parametrize("method, colour, dtype, bank", [
    ("hifm", False, "float32", "diff"), ("hifm", True, "float32", "diff"), ("hifm", False, "float64", "dct3"),
    ("anchor", False, "float32", "salient"), ("anchor", True, "float64", "salient"),
    ("anchor", False, "float32", "two_scale"), ("anchor", True, "float64", "two_scale"),
])
def test_memory_estimate_bounds_the_measured_peak(method, colour, dtype, bank):
    """tracemalloc's peak of a real fusion ≤ the estimate ≤ 2.5 × the peak (NumPy allocations are traced)."""
    from hifm.memory import estimate_bytes

    a, b = scene((300, 400)), scene((300, 400), seed=1, colour=colour)
    options = {"dtype": dtype, "anchor": bank} if method == "anchor" else {"dtype": dtype, "iters": 12,
                                                                           "filters_l": bank, "filters_k": bank}
    hifm.fuse(a, b, method=method, **{**options, **({"iters": 2} if method == "hifm" else {})})  # warm-up
    tracemalloc.start()
    try:
        hifm.fuse(a, b, method=method, **options)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    params = HIFMParams() if method == "anchor" else HIFMParams(filters_l=bank, filters_k=bank)
    estimate = estimate_bytes(method, (300, 400), colour=colour, dtype=dtype, anchor=bank,
                              n_filters=len(params.filters_l) + len(params.filters_k), margin=params.margin)
    assert peak <= estimate <= 2.5 * peak, (peak, estimate)


def test_derun_memory_estimate_bounds_the_measured_peak(tmp_path):
    pytest.importorskip("torch")
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc/self/status (VmRSS, VmHWM)")
    # VmHWM, not ru_maxrss: the latter keeps the parent's RSS across fork + exec (pytest's, hundreds of MB)
    script = """
import numpy as np, torch
torch.set_num_threads(1)
from unrolled.inference import fuse_derun, get_model
from hifm.memory import estimate_bytes
def status(key):
    line = next(l for l in open("/proc/self/status") if l.startswith(key + ":"))
    return int(line.split()[1]) * 1024
rng = np.random.default_rng(0)
a = rng.integers(0, 255, (512, 512), dtype=np.uint8)
model = get_model("ivf")
fuse_derun(a[:64, :64], a[:64, :64])
before = status("VmRSS")
fuse_derun(a, a)
peak = status("VmHWM")
n = model.config.bank("l").shape[0] + model.config.bank("k").shape[0]
print(peak - before, estimate_bytes("derun", (512, 512), n_filters=n, margin=model.config.margin))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr
    used, estimate = (int(v) for v in done.stdout.split())
    assert used <= estimate <= 2.5 * used, (used, estimate)


# ============================================================== 10. messages that mislead
def test_special_files_are_named_for_what_they_are(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageReadError, match="not a regular file: it is a FIFO"):
        read_image(fifo)
    if Path("/dev/zero").exists():
        with pytest.raises(ImageReadError, match="character device"):
            read_image("/dev/zero")
    if Path("/proc/self/status").exists():
        with pytest.raises(ImageReadError, match="pseudo-file"):
            read_image("/proc/self/status")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"file is empty \(0 bytes\)"):
        read_image(tmp_path / "empty.png")


def test_output_that_is_a_folder_or_read_only(small_pair, tmp_path, capsys):
    ir, vis = small_pair
    rc, _, err = run_cli(["fuse", str(ir), str(vis), "-o", str(tmp_path), "--method", "anchor"], capsys)
    assert rc == 1 and "is a folder; give a file name" in one_error_line(err)
    target = tmp_path / "ro.png"
    write_image(target, scene())
    target.chmod(0o444)
    before = target.read_bytes()
    rc, _, err = run_cli(["fuse", str(ir), str(vis), "-o", str(target), "--method", "anchor"], capsys)
    assert rc == 1 and "exists and is read-only" in one_error_line(err)
    assert target.read_bytes() == before


def test_a_name_with_a_newline_stays_on_one_line(tmp_path, capsys):
    data = dataset(tmp_path / "data", n=1)
    odd = data / "ir" / "a\nb.png"
    write_image(odd, scene())
    report = fuse_dir(data, tmp_path / "out", ANCHOR, workers=0, progress=False, log=print)
    out = capsys.readouterr().out
    assert "unpaired file '" in out and "a\\nb.png" in out
    assert all("a\\nb" in line or "a\nb" not in line for line in out.splitlines())
    assert report.input_problems


def test_resume_with_outdir_spelled_differently(tmp_path, monkeypatch):
    data = dataset(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    first = fuse_dir("data", "out", ANCHOR, workers=0, progress=False, log=lambda m: None)
    assert first.count("ok") == 3
    again = fuse_dir(data.resolve(), (tmp_path / "." / "out").resolve(), ANCHOR, workers=0, resume=True,
                     progress=False, log=lambda m: None)
    assert len(again.already_done) == 3 and again.count("ok") == 0


def test_stale_temporaries_of_names_with_brackets_are_removed(tmp_path):
    data = tmp_path / "data"
    (data / "ir").mkdir(parents=True)
    (data / "vi").mkdir()
    write_image(data / "ir" / "x[1].png", scene())
    write_image(data / "vi" / "x[1].png", scene(seed=1))
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".x[1].png.abc123.tmp"
    stale.write_bytes(b"half a png")
    fuse_dir(data, out, ANCHOR, workers=0, progress=False, log=lambda m: None)
    assert not stale.exists()
    assert (out / "x[1].png").is_file()


def test_float32_scalars_and_bad_engines():
    a, b = scene(), scene(seed=1)
    hifm.solve(a, b, iters=2, mu=np.float32(0.01))  # accepted: a valid value in NumPy's float32
    with pytest.raises(InputError, match="unknown engine 'bogus'"):
        hifm.solve(a, b, iters=2, engine="bogus")


# ============================================================== 11. unbounded work
def test_iterations_and_inner_steps_are_capped(small_pair, tmp_path, capsys):
    a, b = scene(), scene(seed=1)
    with pytest.raises(InputError, match=r"iters must be an integer in \[0, 10000\]"):
        hifm.solve(a, b, iters=1_000_000_000)
    with pytest.raises(InputError, match="h_steps must be at most 100"):
        hifm.solve(a, b, iters=1, h_steps=10**6)
    with pytest.raises(InputError, match=r"iters must lie in \[0, 10000\]"):
        FuseSettings(method="hifm", iters=10**9)
    ir, vis = small_pair
    rc, _, err = run_cli(["fuse", str(ir), str(vis), "-o", str(tmp_path / "f.png"), "--iters", "1000000000"], capsys)
    assert rc == 1 and "iters must be an integer in [0, 10000]" in one_error_line(err)

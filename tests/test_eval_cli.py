"""``hifm eval`` (hifm.cli.eval): pairing, skipping, formats, comparison table."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hifm.cli import eval as eval_cli
from hifm.metrics import evaluate

from ._data import DATA, missing
FAST = ["entropy", "Psnr", "Qabf", "cc", "rmse"]


def _img(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    base = 128 + 50 * np.sin(xx / 5.0 + rng.random() * 3) * np.cos(yy / 7.0)
    if len(shape) == 3:
        base = base[..., None] * rng.uniform(0.7, 1.2, 3)
    return np.clip(base + rng.normal(0, 10, shape), 0, 255).astype(np.uint8)


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    """sources/{ir,vi} with 3 pairs (+1 unpaired), fused/{good,bad} methods."""
    rng = np.random.default_rng(0)
    src = tmp_path / "sources"
    (src / "ir").mkdir(parents=True)
    (src / "vi").mkdir()
    for stem in ("a1", "a2", "a3"):
        Image.fromarray(_img(rng, (40, 48))).save(src / "ir" / f"{stem}.png")
        Image.fromarray(_img(rng, (40, 48, 3))).save(src / "vi" / f"{stem}.jpg")
    Image.fromarray(_img(rng, (40, 48))).save(src / "ir" / "lonely.png")
    for method in ("good", "bad"):
        d = tmp_path / "fused" / method
        d.mkdir(parents=True)
        for stem in ("a1", "a2", "a3"):
            ir = np.asarray(Image.open(src / "ir" / f"{stem}.png")).astype(float)
            vi = np.asarray(Image.open(src / "vi" / f"{stem}.jpg")).astype(float)
            fused = (vi + ir[..., None]) / 2 if method == "good" else vi * 0.3
            if method == "bad":
                fused = fused + rng.normal(0, 25, fused.shape)
            Image.fromarray(np.clip(fused, 0, 255).astype(np.uint8)).save(d / f"{stem}.png")
    (tmp_path / "fused" / "good" / "extra.png").write_bytes(
        (tmp_path / "fused" / "good" / "a1.png").read_bytes())  # no source named extra
    (tmp_path / "fused" / "bad" / "a3.png").write_bytes(b"not an image")  # unreadable
    return tmp_path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``hifm eval ARGV --no-progress`` (the ``dataset`` fixture has unpaired and unreadable files on purpose:
    the tests that are not about them pass ``--allow-missing``)."""
    rc = eval_cli.main(argv + ["--no-progress"])
    out, err = capsys.readouterr()
    return rc, out, err


def test_single_folder_markdown(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run([str(dataset / "fused" / "good"), "--sources", str(dataset / "sources"),
                         "--metrics", "Psnr,ssim", "entropy", "--allow-missing"], capsys)
    assert rc == 0
    assert "| image | Psnr ↑ | ssim ↑ | entropy ↑ |" in out
    assert "| **mean** |" in out and "| a2 |" in out
    assert "Comparison" not in out
    assert "extra.png" in err and "lonely.png" in err  # unpaired files named on stderr


def test_values_match_api(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run([str(dataset / "fused" / "good"), "--sources", str(dataset / "sources"),
                         "--metrics", *FAST, "--format", "json", "--allow-missing"], capsys)
    assert rc == 0
    doc = json.loads(out)
    imgs = doc["methods"]["good"]["images"]
    assert sorted(imgs) == ["a1", "a2", "a3"]
    rd = lambda p: np.asarray(Image.open(p))  # noqa: E731
    src = dataset / "sources"
    expect = evaluate(rd(dataset / "fused" / "good" / "a2.png"), rd(src / "vi" / "a2.jpg"),
                      rd(src / "ir" / "a2.png"), metrics=FAST)
    assert imgs["a2"] == pytest.approx(expect, rel=1e-15)
    mean = doc["methods"]["good"]["mean"]["Qabf"]
    assert mean == pytest.approx(np.mean([imgs[s]["Qabf"] for s in imgs]))
    assert doc["protocol"] == "vifb" and doc["higher_is_better"]["rmse"] is False


def test_comparison_table(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fused = dataset / "fused"
    rc, out, err = _run([str(fused / "good"), str(fused / "bad"), "--sources",
                         str(dataset / "sources"), "--metrics", *FAST, "--allow-missing"], capsys)
    assert rc == 0
    assert "a3.png" in err and "unreadable" in err
    table = out.split("## Comparison")[1]
    assert "2 images that every method has" in table
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()
            if line.startswith("| good") or line.startswith("| bad")}
    # the average of the sources beats a dark noisy copy on error/similarity metrics
    assert "**" in rows["good"].split("|")[3]  # Psnr best
    assert "**" not in rows["bad"].split("|")[3]
    assert float(rows["good"].split("|")[-2]) < float(rows["bad"].split("|")[-2])


def test_csv_and_output_file(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fused = dataset / "fused"
    target = dataset / "out" / "table.csv"
    rc, out, err = _run([str(fused / "good"), str(fused / "bad"), "--sources",
                         str(dataset / "sources"), "--metrics", "rmse", "-o", str(target), "--allow-missing"],
                        capsys)
    assert rc == 0 and out == ""
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert rows[0].keys() == {"method", "image", "rmse", "mean_rank"}
    means = {r["method"]: r for r in rows if r["image"] == "mean"}
    assert float(means["good"]["mean_rank"]) == 1.0 and float(means["bad"]["mean_rank"]) == 2.0
    assert len([r for r in rows if r["method"] == "good"]) == 4  # 3 images + mean


def test_gray_protocol_and_medical_layout(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(1)
    (tmp_path / "src" / "MRI").mkdir(parents=True)
    (tmp_path / "src" / "pet").mkdir()
    (tmp_path / "f").mkdir()
    mri, pet = _img(rng, (32, 32)), _img(rng, (32, 32, 3))
    Image.fromarray(np.repeat(mri[..., None], 3, 2)).save(tmp_path / "src" / "MRI" / "11.png")
    Image.fromarray(pet).save(tmp_path / "src" / "pet" / "11.png")
    fused = Image.fromarray(pet).convert("P")  # palette image: read as RGB
    fused.save(tmp_path / "f" / "11.png")
    rc, out, err = _run([str(tmp_path / "f"), "--sources", str(tmp_path / "src"),
                         "--metrics", "ssim", "--protocol", "gray", "--format", "json"], capsys)
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["sources"]["a"].endswith("pet") and doc["sources"]["b"].endswith("MRI")
    f = np.asarray(Image.open(tmp_path / "f" / "11.png").convert("RGB"))
    assert doc["methods"]["f"]["images"]["11"]["ssim"] == pytest.approx(
        evaluate(f, pet, mri, metrics=["ssim"], protocol="gray")["ssim"], rel=1e-15)


@pytest.mark.parametrize("names", [("infrared", "visible"), ("IR", "VI"), ("ir", "vis")])
def test_source_aliases(tmp_path: Path, names: tuple[str, str]) -> None:
    for n in names:
        (tmp_path / n).mkdir()
        (tmp_path / n / "x.png").write_bytes(b"x")
    a, b = eval_cli.find_source_dirs(tmp_path)
    assert (b.name, a.name) == names


def test_source_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ct").mkdir()
    with pytest.raises(ValueError, match="no folder for source A"):
        eval_cli.find_source_dirs(tmp_path)
    (tmp_path / "mri").mkdir()
    (tmp_path / "pet").mkdir()
    with pytest.raises(ValueError, match="ambiguous"):
        eval_cli.find_source_dirs(tmp_path)
    rc, out, err = _run([str(tmp_path), "--sources", str(tmp_path)], capsys)
    assert rc == 2 and "ambiguous" in err
    rc, out, err = _run([str(tmp_path)], capsys)
    assert rc == 2 and "--sources" in err


def test_nothing_evaluated(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = dataset / "empty"
    empty.mkdir()
    rc, out, err = _run([str(empty), "--sources", str(dataset / "sources"), "--metrics", "cc"],
                        capsys)
    assert rc == 1 and "no fused image" in err


def test_unknown_metric(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run([str(dataset / "fused" / "good"), "--sources",
                         str(dataset / "sources"), "--metrics", "bogus"], capsys)
    assert rc == 2 and "unknown metric" in err


def test_list_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    assert eval_cli.main(["--list-metrics"]) == 0
    out = capsys.readouterr().out
    assert "fmi_wavelet" in out and "FMI_w" in out and "Mutinf" in out


def test_add_eval_parser() -> None:
    parser = argparse.ArgumentParser(prog="hifm")
    sub = parser.add_subparsers(dest="command")
    eval_cli.add_parser(sub)
    args = parser.parse_args(["eval", "x", "y", "--sources", "s", "--protocol", "gray"])
    assert args.func is eval_cli.run
    assert [str(p) for p in args.fused_dirs] == ["x", "y"] and args.protocol == "gray"


def test_read_image_modes(tmp_path: Path) -> None:
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 10
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    x = eval_cli._read_image(tmp_path / "a.png")
    assert x.shape == (4, 5, 3) and x[0, 0, 0] == 200
    Image.fromarray(np.full((4, 5), 65535, np.uint16)).save(tmp_path / "b.png")
    y = eval_cli._read_image(tmp_path / "b.png")
    assert y.shape == (4, 5) and y.max() == pytest.approx(255.0)
    with pytest.raises(ValueError, match="file not found"):
        eval_cli._read_image(tmp_path / "missing.png")


def test_vifb_dev_one_method(capsys: pytest.CaptureFixture[str]) -> None:
    vifb = DATA / "vifb-dev"
    if not (vifb / "reference_metrics.csv").is_file():
        missing(vifb / "reference_metrics.csv")
    rc, out, err = _run([str(vifb / "fused" / "GTF"), "--sources", str(vifb), "--metrics",
                         "Psnr", "Entropy", "--format", "csv"], capsys)
    assert rc == 0
    ref = {(r["image"], r["metric"]): float(r["value"])
           for r in csv.DictReader(open(vifb / "reference_metrics.csv"))
           if r["method"] == "GTF"}
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 7
    for r in rows[:-1]:
        for m in ("Psnr", "Entropy"):
            assert float(r[m]) == pytest.approx(ref[(r["image"], m)], rel=1e-4)


# --------------------------------------------------------------------------- at scale
@pytest.fixture(scope="module")
def tno_fused(tmp_path_factory) -> tuple[Path, Path]:
    """The shipped TNO samples and their anchor fusion (hifm fuse-dir) as (sources, fused folder)."""
    from hifm.cli import main as hifm_main

    from .conftest import SAMPLES

    out = tmp_path_factory.mktemp("fused") / "anchor"
    assert hifm_main(["fuse-dir", str(SAMPLES / "tno"), "-o", str(out), "--method", "anchor", "--workers", "0",
                      "--quiet"]) == 0
    return SAMPLES / "tno", out


def test_workers_give_the_same_values(tno_fused, capsys: pytest.CaptureFixture[str]) -> None:
    sources, fused = tno_fused
    argv = [str(fused), "--sources", str(sources), "--metrics", "psnr", "ssim", "entropy", "qabf", "--format",
            "json"]
    rc1, one, _ = _run(argv + ["--workers", "1"], capsys)
    rc2, two, _ = _run(argv + ["--workers", "2"], capsys)
    assert rc1 == rc2 == 0
    assert sorted(json.loads(one)["methods"]["anchor"]["images"]) == ["05", "07", "11", "13", "25"]
    assert one == two  # byte for byte, means included


def test_progress_is_a_line_per_image_off_a_terminal(tno_fused, capsys: pytest.CaptureFixture[str]) -> None:
    sources, fused = tno_fused
    rc = eval_cli.main([str(fused), "--sources", str(sources), "--metrics", "psnr"])
    err = capsys.readouterr().err
    assert rc == 0
    lines = [line for line in err.splitlines() if line.startswith("hifm eval: ")]
    assert [line.split()[2] for line in lines] == [f"{k}/5" for k in range(1, 6)]
    assert "07 (anchor)" in err and "left" in err


def test_progress_is_a_bar_on_a_terminal(tno_fused, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    sources, fused = tno_fused
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert eval_cli.main([str(fused), "--sources", str(sources), "--metrics", "psnr"]) == 0
    err = capsys.readouterr().err
    assert "5/5" in err and "img" in err and "hifm eval: 1/5" not in err
    assert eval_cli.main([str(fused), "--sources", str(sources), "--metrics", "psnr", "--no-progress"]) == 0
    assert capsys.readouterr().err == ""


def test_evaluates_a_recursive_fuse_dir_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hifm.cli import main as hifm_main

    from .conftest import SAMPLES

    src = tmp_path / "src"
    for sub, names in (("day", ("05", "07")), ("night", ("25",))):
        for mod in ("ir", "vi"):
            (src / mod / sub).mkdir(parents=True, exist_ok=True)
            for n in names:
                (src / mod / sub / f"{n}.png").write_bytes((SAMPLES / "tno" / mod / f"{n}.png").read_bytes())
    out = tmp_path / "fused"
    assert hifm_main(["fuse-dir", str(src), "-o", str(out), "--recursive", "--method", "anchor", "--workers", "0",
                      "--quiet"]) == 0
    capsys.readouterr()
    rc, text, err = _run([str(out), "--sources", str(src), "--recursive", "--metrics", "psnr", "--format", "json"],
                         capsys)
    assert rc == 0, err
    assert sorted(json.loads(text)["methods"]["fused"]["images"]) == ["day/05", "day/07", "night/25"]

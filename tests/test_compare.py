"""hifm compare: the picture holds one labelled panel per image and, with --zoom, the enlarged crops."""
from __future__ import annotations

import numpy as np
import pytest

from hifm.cli import main
from hifm.compare import BACKGROUND, compose, to_display
from hifm.errors import InputError
from hifm.io import read_image, write_image

from .conftest import SAMPLES


def _images(rng, n=3, shape=(40, 60)):
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)]


def test_panels_hold_the_images_and_labels_sit_above(rng):
    imgs = _images(rng) + [rng.random((40, 60, 3))]  # a float colour image too
    pic, layout = compose(imgs, ["a", "b", "c", "d"])
    assert len(layout.panels) == 4 and layout.zooms == []
    for (top, left, h, w), img in zip(layout.panels, imgs):
        assert (h, w) == (40, 60)
        np.testing.assert_array_equal(pic[top : top + h, left : left + w], to_display(img))
        strip = pic[top - 20 : top - 2, left : left + w]
        assert (strip != BACKGROUND).any(), "no label text above the panel"
    lefts = [p[1] for p in layout.panels]
    assert lefts == sorted(lefts) and len(set(np.diff(lefts))) == 1  # one row, equal steps
    gap = pic[layout.panels[0][0] :, lefts[0] + 60 : lefts[1]]
    assert (gap == BACKGROUND).all()


def test_zoom_row_shows_each_crop_enlarged(rng):
    imgs = _images(rng, 2, (48, 64))
    pic, layout = compose(imgs, ["x", "y"], zoom=(10, 6, 16, 12))
    assert layout.factor == 64 // 16 and len(layout.zooms) == 2
    for (top, left, h, w), img in zip(layout.zooms, imgs):
        crop = img[6:18, 10:26]
        want = np.kron(crop, np.ones((4, 4), np.uint8))
        assert (h, w) == want.shape
        np.testing.assert_array_equal(pic[top : top + h, left : left + w], to_display(want))
        assert top > layout.panels[0][0] + 48  # below the panels


def test_bad_input_is_refused(rng):
    a, b = _images(rng, 2)
    with pytest.raises(InputError, match="one size"):
        compose([a, b[:30]], ["a", "b"])
    with pytest.raises(InputError, match="not inside"):
        compose([a, b], ["a", "b"], zoom=(50, 0, 20, 10))
    with pytest.raises(InputError, match="labels"):
        compose([a, b], ["a"])


def test_compare_command_on_the_samples(tmp_path, capsys):
    ir, vis = SAMPLES / "tno" / "ir" / "07.png", SAMPLES / "tno" / "vi" / "07.png"
    fused = []
    for method in ("anchor", "hifm"):
        out = tmp_path / method / "07.png"
        iters = ["--iters", "5"] if method == "hifm" else []  # --iters with anchor is refused
        assert main(["fuse", str(ir), str(vis), "-o", str(out), "--method", method, *iters]) == 0
        fused.append(out)
    capsys.readouterr()
    target = tmp_path / "figs" / "cmp.png"
    assert main(["compare", str(ir), str(vis), *map(str, fused), "-o", str(target), "--zoom", "100", "80", "64",
                 "48"]) == 0
    assert "4 panels: infrared, visible, anchor, hifm" in capsys.readouterr().out
    pic = read_image(target)
    sources = [read_image(ir, gray_if_equal=True), read_image(vis, gray_if_equal=True)] + [read_image(f) for f in fused]
    _, layout = compose(sources, ["infrared", "visible", "anchor", "hifm"], zoom=(100, 80, 64, 48))
    assert pic.shape[1] == 8 + 4 * (256 + 8) and len(layout.panels) == 4
    for (top, left, h, w), img in zip(layout.panels, sources):
        inside = pic[top : top + h, left : left + w].astype(int)
        mask = np.ones((h, w), bool)
        mask[79:129, 99:165] = False  # the outline of the zoom rectangle is drawn on the panels
        assert (inside[mask] == to_display(img).astype(int)[mask]).all()


def test_compare_label_count_is_checked(tmp_path, capsys):
    ir, vis = SAMPLES / "tno" / "ir" / "07.png", SAMPLES / "tno" / "vi" / "07.png"
    assert main(["compare", str(ir), str(vis), "-o", str(tmp_path / "c.png"), "--labels", "only one"]) != 0
    assert "--labels" in capsys.readouterr().err

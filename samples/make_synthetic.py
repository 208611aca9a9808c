"""Write the procedurally generated sample pairs of ``samples/synthetic/`` (see samples/README.md).

    python samples/make_synthetic.py [OUT]        # default OUT: samples/synthetic

Every image comes from :mod:`hifm.synthetic` and a fixed seed, so the files can be
regenerated at any time (tests/test_samples.py checks that they match).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from hifm.io import ImageFormat, from_float, write_image
from hifm.synthetic import synthetic_medical_pair, synthetic_pair

HERE = Path(__file__).resolve().parent

# folder -> (partner folder, [(name, seed), ...])
MEDICAL = {
    "mri-pet": ("pet", [("01", 1), ("02", 2)]),
    "mri-ct": ("ct", [("01", 3), ("02", 4)]),
}
THERMAL_SEED = 5
THERMAL_BITS = 14


def _write(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_image(path, image)


def write_all(out: Path) -> list[Path]:
    """Write every synthetic pair under ``out``; returns the files written."""
    u8 = ImageFormat("uint8", 255.0)
    written = []
    for folder, (partner, items) in MEDICAL.items():
        for name, seed in items:
            mri, other = synthetic_medical_pair(256, seed=seed, partner=partner)
            written.append(_write(out / folder / "mri" / f"{name}.png", from_float(mri, u8)))
            written.append(_write(out / folder / partner / f"{name}.png", from_float(other, u8)))
    ir, vis = synthetic_pair(240, 320, seed=THERMAL_SEED, noise=0.01)
    ir14 = np.rint(ir * (2**THERMAL_BITS - 1)).astype(np.uint16)
    written.append(_write(out / "thermal14" / "ir" / "01.png", ir14))
    written.append(_write(out / "thermal14" / "vi" / "01.png", from_float(vis, u8)))
    return written


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else HERE / "synthetic"
    for path in write_all(out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""``hifm compare``: one labelled side-by-side picture of the sources and fused results."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``compare`` sub-command to an argparse sub-parser set."""
    p = subparsers.add_parser(
        "compare", help="write one side-by-side picture of the sources and fused results (with a zoomed crop)",
        description="Put IR, VIS and any number of fused images of the same pair side by side in one PNG, "
                    "each labelled, optionally with a rectangle outlined on every panel and enlarged below it. "
                    "The panels hold the images' own pixels (16-bit images shown in 8 bits; a 16-bit infrared "
                    "image that uses 10-14 bits is stretched as hifm fuse does).",
        epilog="Example: hifm compare samples/tno/ir/05.png samples/tno/vi/05.png out_hifm/05.png "
               "out_derun/05.png -o compare.png --labels IR VIS HIFM DeRUN --zoom 200 120 120 90")
    p.add_argument("ir", help="infrared or MRI image")
    p.add_argument("vis", help="visible, CT, PET or SPECT image")
    p.add_argument("fused", nargs="*", help="fused images of the same pair (any number)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="the picture (PNG; folders are created)")
    p.add_argument("--labels", nargs="+", metavar="LABEL",
                   help="one label per image, sources first (default: infrared, visible, and each fused image's "
                        "folder name, or its file name when the folders are the same)")
    p.add_argument("--zoom", nargs=4, type=int, metavar=("X", "Y", "W", "H"),
                   help="a rectangle in image pixels (left, top, width, height) to outline and show enlarged")
    p.add_argument("--scale", type=float, default=1.0, metavar="S",
                   help="size of the panels relative to the images (default 1; e.g. 0.5 for large images)")
    p.set_defaults(func=run)
    return p


def default_labels(fused: list[str]) -> list[str]:
    """Each fused image's folder name, unless two share it (then the file names)."""
    paths = [Path(f) for f in fused]
    folders = [p.parent.name or p.stem for p in paths]
    if len(set(folders)) == len(folders):
        return folders
    return [p.name for p in paths]


def run(args: argparse.Namespace) -> int:
    """Run ``hifm compare`` from parsed arguments."""
    from ..compare import compose
    from ..errors import HIFMError
    from ..io import read_image, write_image
    from ..thermal import stretch_ir

    files = [args.ir, args.vis, *args.fused]
    labels = args.labels or ["infrared", "visible", *default_labels(args.fused)]
    if len(labels) != len(files):
        raise HIFMError(f"--labels: {len(labels)} label(s) for {len(files)} image(s) (sources first)")
    from .common import check_outputs_are_not_inputs

    check_outputs_are_not_inputs({"-o": args.output}, {f"image {k + 1}": f for k, f in enumerate(files)})
    images = [read_image(f, gray_if_equal=True) for f in files]
    images[0] = stretch_ir(images[0])[0]
    picture, layout = compose(images, labels, zoom=tuple(args.zoom) if args.zoom else None, scale=args.scale)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    path = write_image(args.output, picture)
    zoom = f", zoom ×{layout.factor}" if layout.zooms else ""
    print(f"wrote {path} ({len(layout.panels)} panels: {', '.join(labels)}{zoom})")
    return 0

"""Per-image mean rank among VIFB's published methods (the ranking of issue-level targets).

For each VIFB development image and each of VIFB's 13 metrics (protocol ``vifb``), a method of
ours is ranked among the 25 published methods' fused images *inserted alone* (26 entries; rank 1
= best in the metric's direction, ties averaged); its score is the mean of those ranks over the
13 metrics and the 6 images.  The published methods' values are computed once with
:mod:`hifm.metrics` and cached in ``runs/experiments-cache/`` (keyed by a digest of the metric code).

``python experiments/vifb_rank.py [--method anchor|hifm] [--iters N] [--set key=value ...]``
prints the per-image and overall mean rank of one configuration (a tuning aid).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Callable, Mapping, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import common  # noqa: E402

__all__ = ["vifb13", "published_values", "per_image_ranks", "published_self_ranks", "rank_method"]


def vifb13() -> tuple[str, ...]:
    """VIFB's 13 metrics (canonical names of :mod:`hifm.metrics`)."""
    from hifm.metrics import VIFB_METRICS

    return tuple(VIFB_METRICS)


def published_values(samples: Sequence[common.Sample] | None = None, use_cache: bool = True,
                     log: bool = True, methods: Sequence[str] | None = None,
                     metrics: Sequence[str] | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """{image: {method: {metric: value}}} for VIFB's published methods (protocol ``vifb``).

    ``methods``: a subset of the published methods (default: all 25); ``metrics``: names for
    :func:`hifm.metrics.evaluate` (default: :func:`vifb13`).  A sample that is a centre crop
    of its pair (``common.load_dataset(..., crop=N)``) is compared with the same centre crop of
    the published images.  Cached in ``runs/experiments-cache/`` by the metric code's digest,
    the metrics, pairs, methods (and crop sizes, when cropped).
    """
    from hifm.io import read_image

    metrics = list(metrics) if metrics is not None else list(vifb13())
    root = common.DATASETS["vifb-dev"].root
    samples = samples if samples is not None else common.load_dataset("vifb-dev")
    available = sorted(p.name for p in (root / "fused").iterdir() if p.is_dir())
    if methods is not None:
        unknown = sorted(set(methods) - set(available))
        if unknown:
            raise KeyError(f"no published fused images for {unknown} in {root / 'fused'}")
    names = [m for m in available if methods is None or m in methods]
    digest = common.files_digest((common.REPO / "hifm" / "metrics").glob("*.py"))
    key: dict = {"digest": digest, "metrics": metrics, "pairs": [s.name for s in samples], "methods": names}
    if any(s.shape != _stored_shape(root, s.name) for s in samples):
        key["crop"] = [list(s.shape) for s in samples]
    tag = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    cache = common.CACHE_DIR / f"vifb_published_per_image_{tag}.json"
    if use_cache and cache.is_file():
        data = json.loads(cache.read_text())
        if data.get("key") == key:
            return data["values"]
    out: dict[str, dict[str, dict[str, float]]] = {}
    for s in samples:
        out[s.name] = {}
        for m in names:
            fused = common.center_crop(read_image(root / "fused" / m / f"{s.name}.jpg"), s.shape)
            out[s.name][m] = common.evaluate(fused, s, metrics=metrics, protocol="vifb")
        if log:
            print(f"[vifb_rank] published values of {s.name} done ({', '.join(metrics)})", flush=True)
    common.CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps({"key": key, "values": out}))
    tmp.replace(cache)
    return out


def _stored_shape(root: Path, name: str) -> tuple[int, int]:
    """(height, width) of the stored infrared image of pair ``name`` (header only)."""
    from PIL import Image

    path = next((root / "ir").glob(f"{name}.*"))
    with Image.open(path) as im:
        return int(im.size[1]), int(im.size[0])


def per_image_ranks(ours: Mapping[str, Mapping[str, float]],
                    published: Mapping[str, Mapping[str, Mapping[str, float]]],
                    metrics: Sequence[str] | None = None) -> dict[str, float]:
    """{image: mean rank over ``metrics``} of one method's values ``ours[image][metric]``,
    inserted alone among the published methods of that image."""
    metrics = tuple(metrics) if metrics is not None else vifb13()
    out = {}
    for image, vals in ours.items():
        pub = published[image]
        total = 0.0
        for k in metrics:
            column = [vals[k]] + [pub[m][k] for m in pub]
            total += common.rank_values(column, common.higher_is_better(k))[0]
        out[image] = total / len(metrics)
    return out


def published_self_ranks(published: Mapping[str, Mapping[str, Mapping[str, float]]],
                         metrics: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """{method: {image: mean rank}} of each published method among the *others* and itself
    (the same count of entries as one of ours inserted alone), by :func:`per_image_ranks`."""
    images = list(published)
    names = list(published[images[0]]) if images else []
    out = {}
    for m in names:
        vals = {img: published[img][m] for img in images}
        others = {img: {k: v for k, v in published[img].items() if k != m} for img in images}
        out[m] = per_image_ranks(vals, others, metrics)
    return out


def rank_method(fuse: Callable[[np.ndarray, np.ndarray], np.ndarray], samples: Sequence[common.Sample] | None = None,
                published: Mapping | None = None) -> tuple[float, dict[str, float], dict[str, dict[str, float]]]:
    """(overall mean rank, per-image mean ranks, per-image metric values) of ``fuse(ir, vis)``."""
    samples = samples if samples is not None else common.load_dataset("vifb-dev")
    published = published if published is not None else published_values(samples)
    metrics = vifb13()
    values = {s.name: common.evaluate(fuse(s.ir, s.vis), s, metrics=metrics, protocol="vifb") for s in samples}
    ranks = per_image_ranks(values, published, metrics)
    return float(np.mean(list(ranks.values()))), ranks, values


def _parse_value(v: str):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return {"None": None, "true": True, "false": False}.get(v, v)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="hifm", choices=["anchor", "hifm", "derun", "published"])
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--set", nargs="*", default=[], help="key=value options of hifm.fuse")
    args = parser.parse_args(argv)
    common.setup_threads(1)
    import hifm

    samples = common.load_dataset("vifb-dev")
    pub = published_values(samples)
    if args.method == "published":
        scores = {m: float(np.mean(list(r.values()))) for m, r in published_self_ranks(pub).items()}
        for m, r in sorted(scores.items(), key=lambda kv: kv[1]):
            print(f"{m:12s} {r:6.2f}")
        return 0
    opts = dict(kv.split("=", 1) for kv in args.set)
    opts = {k: _parse_value(v) for k, v in opts.items()}
    if args.method == "hifm":
        opts.setdefault("iters", args.iters)
    total, ranks, _ = rank_method(lambda ir, vis: hifm.fuse(ir, vis, method=args.method, **opts), samples, pub)
    print(" ".join(f"{k}={v:.2f}" for k, v in ranks.items()), f"| mean {total:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""fuse-dir on Dask: same task, same manifest and resume semantics as the local run."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")

from distributed import LocalCluster  # noqa: E402

from hifm import batch  # noqa: E402
from hifm.batch import MANIFEST_NAME, BatchError, FuseSettings, final_pair_records, fuse_dir, read_manifest  # noqa: E402

from hifm.io import write_image  # noqa: E402

ANCHOR = FuseSettings(method="anchor")


def make_dataset(root: Path, n: int, seed: int) -> Path:
    """``root/{ir,vi}/NN.png``: random gray infrared, random colour visible."""
    rng = np.random.default_rng(seed)
    for folder, shape in (("ir", (24, 32)), ("vi", (24, 32, 3))):
        (root / folder).mkdir(parents=True)
        for i in range(n):
            write_image(root / folder / f"{i:02d}.png", rng.integers(0, 256, shape, dtype=np.uint8))
    return root


def output_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.png"))}


def pair_records(out: Path) -> list[dict]:
    return [r for r in read_manifest(out / MANIFEST_NAME) if r.get("kind") == "pair"]


def quiet(message: str) -> None:
    pass


def run_inline(root: Path, out: Path):
    return fuse_dir(root, out, ANCHOR, workers=0, progress=False, log=quiet)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = make_dataset(tmp_path_factory.mktemp("dask-data"), 8, seed=3)
    reference = tmp_path_factory.mktemp("dask-ref")
    run_inline(root, reference)
    return root, output_bytes(reference)


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        yield cluster


def test_dask_scheduler_run_equals_local_run_and_resumes(data, cluster, tmp_path):
    root, reference = data
    out = tmp_path / "out"
    report = fuse_dir(root, out, ANCHOR, dask=cluster.scheduler_address, progress=False, log=quiet)
    assert report.complete and report.count("ok") == 8
    assert output_bytes(out) == reference
    header = read_manifest(out / MANIFEST_NAME)[0]
    assert header["executor"] == f"dask:{cluster.scheduler_address}"
    assert len({r["host"] for r in pair_records(out)}) == 1  # threads of this process (processes=False)

    (out / "03.png").unlink()
    again = fuse_dir(root, out, ANCHOR, dask=cluster.scheduler_address, resume=True, progress=False, log=quiet)
    assert [r["name"] for r in again.records] == ["03"] and len(again.already_done) == 7
    assert output_bytes(out) == reference
    oks = [r["name"] for r in pair_records(out) if r["status"] == "ok"]
    assert len(oks) == 9 and sorted(final_pair_records(read_manifest(out / MANIFEST_NAME))) == sorted(set(oks))


def test_dask_local_cluster_of_processes(data, tmp_path):
    """``--dask local``: a LocalCluster of 2 worker processes, started and stopped by fuse_dir."""
    root, reference = data
    out = tmp_path / "out"
    report = fuse_dir(root, out, ANCHOR, workers=2, dask="local", progress=False, log=quiet)
    assert report.complete and output_bytes(out) == reference
    hosts = {r["host"] for r in pair_records(out)}
    assert 1 <= len(hosts) <= 2 and all(h.split(":")[1] != str(os.getpid()) for h in hosts)


def test_unreachable_scheduler_is_a_clear_error(data, tmp_path, monkeypatch):
    with socket.socket() as sock:  # a free port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setattr(batch, "DASK_CONNECT_TIMEOUT", "1s")
    with pytest.raises(BatchError, match=rf"cannot connect to the Dask scheduler at 'tcp://127.0.0.1:{port}'"):
        fuse_dir(data[0], tmp_path / "out", ANCHOR, dask=f"tcp://127.0.0.1:{port}", progress=False, log=quiet)

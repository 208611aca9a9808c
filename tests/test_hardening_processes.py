"""Hardening, class 8 (issue #11): worker processes die with their parent, a killed worker fails only
its pair, Ctrl-C stops with a summary. Generous timeouts, no timing assertions: the machine may be loaded."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hifm.batch import MANIFEST_NAME, REPORT_NAME, final_pair_records, read_manifest, sha256_file
from hifm.io import write_image
from hifm.workers import ProcessPool, WorkerLost

from .test_hardening import scene

REPO = Path(__file__).resolve().parents[1]

#: Loaded at the start of every Python process of the run (sitecustomize): each pair sleeps
#: HIFM_TEST_PAIR_DELAY seconds in its worker, and the pair named HIFM_TEST_KILL_PAIR kills its worker.
HOOK = """
import os, signal, time
if os.environ.get("HIFM_TEST_PAIR_DELAY") or os.environ.get("HIFM_TEST_KILL_PAIR"):
    import hifm.batch as _batch
    _run_pair = _batch.run_pair
    def _hooked(task):
        if task.name == os.environ.get("HIFM_TEST_KILL_PAIR"):
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(float(os.environ.get("HIFM_TEST_PAIR_DELAY") or 0))
        return _run_pair(task)
    _batch.run_pair = _hooked
"""


def make_data(root: Path, n: int) -> Path:
    (root / "ir").mkdir(parents=True)
    (root / "vi").mkdir()
    for i in range(n):
        write_image(root / "ir" / f"{i:02d}.png", scene(seed=2 * i))
        write_image(root / "vi" / f"{i:02d}.png", scene(seed=2 * i + 1))
    return root


def hooked_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    hook = tmp_path / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(HOOK)
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(hook), str(REPO)]), **variables)


def children(pid: int) -> dict[int, str]:
    """Processes whose parent is ``pid``: {pid: command line}."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found[int(entry)] = cmd
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its new parent to reap it counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(predicate, timeout: float = 120.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def pair_lines(manifest: Path) -> int:
    if not manifest.exists():
        return 0
    return sum(1 for line in manifest.read_bytes().split(b"\n")[:-1] if b'"kind": "pair"' in line)


def fuse_dir_cmd(root: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hifm.cli.fuse_dir", str(root), "-o", str(out), "--method", "anchor", "--quiet",
            *extra]


# ------------------------------------------------------------------ the pool itself
def test_a_killed_worker_fails_only_its_task():
    with ProcessPool(2) as pool:
        futures = [pool.submit(pow, 2, k) for k in range(4)]
        doomed = pool.submit(signal.raise_signal, signal.SIGKILL)  # the worker running it dies
        futures += [pool.submit(pow, 3, k) for k in range(4)]
        assert [f.result(timeout=120) for f in futures] == [2**k for k in range(4)] + [3**k for k in range(4)]
        with pytest.raises(WorkerLost, match="killed by SIGKILL"):
            doomed.result(timeout=120)
        assert pool.submit(pow, 5, 2).result(timeout=120) == 25  # a replacement took the dead worker's place


def test_an_exception_in_a_task_is_that_task_s_result():
    with ProcessPool(1) as pool:
        bad = pool.submit(int, "not a number")
        with pytest.raises(ValueError, match="not a number"):
            bad.result(timeout=120)
        assert pool.submit(abs, -4).result(timeout=120) == 4


# ------------------------------------------------------------------ fuse-dir
def test_kill_9_of_the_main_process_leaves_no_child_alive(tmp_path):
    root = make_data(tmp_path / "data", 6)
    env = hooked_env(tmp_path, HIFM_TEST_PAIR_DELAY="30")  # the workers are busy when the main process dies
    proc = subprocess.Popen(fuse_dir_cmd(root, tmp_path / "out", "--workers", "2"), env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kids: dict[int, str] = {}
    try:
        assert wait_for(lambda: sum("spawn_main" in c for c in children(proc.pid).values()) >= 2), \
            f"workers did not start: {children(proc.pid)}"
        time.sleep(1.0)  # let them pick up their pairs
        kids = children(proc.pid)
        assert sum("spawn_main" in c for c in kids.values()) == 2
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        assert wait_for(lambda: not any(alive(pid) for pid in kids), timeout=120), \
            {pid: kids[pid] for pid in kids if alive(pid)}
    finally:
        for pid in kids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()


def test_one_killed_worker_fails_only_its_pair_and_resume_finishes(tmp_path):
    root = make_data(tmp_path / "data", 6)
    out = tmp_path / "out"
    env = hooked_env(tmp_path, HIFM_TEST_KILL_PAIR="02", HIFM_TEST_PAIR_DELAY="0.2")
    done = subprocess.run(fuse_dir_cmd(root, out, "--workers", "2"), env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1, done.stderr
    records = final_pair_records(read_manifest(out / MANIFEST_NAME))
    assert sorted(records) == [f"{i:02d}" for i in range(6)]  # nothing left "not run"
    assert {name for name, r in records.items() if r["status"] != "ok"} == {"02"}
    assert "worker lost" in records["02"]["reason"] and "killed by SIGKILL" in records["02"]["reason"]
    assert "5 fused, 0 already done, 0 skipped, 1 failed, 0 not run" in done.stdout
    again = subprocess.run(fuse_dir_cmd(root, out, "--workers", "2", "--resume"), env=hooked_env(tmp_path),
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "1 fused, 5 already done" in again.stdout


@pytest.mark.parametrize("sig, workers", [(signal.SIGINT, "2"), (signal.SIGTERM, "2"), (signal.SIGINT, "0")])
def test_interrupt_stops_with_a_summary_and_every_output_recorded(tmp_path, sig, workers):
    root = make_data(tmp_path / "data", 8)
    out = tmp_path / "out"
    env = hooked_env(tmp_path, HIFM_TEST_PAIR_DELAY="1.5")
    # as from a terminal: SIGINT at its default disposition in the child, even when the test run
    # itself was started in the background (a shell then ignores SIGINT for it, the child would
    # inherit that, and Python would install no KeyboardInterrupt handler: the signal does nothing)
    proc = subprocess.Popen(fuse_dir_cmd(root, out, "--workers", workers), env=env, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kids: dict[int, str] = {}
    try:
        assert wait_for(lambda: pair_lines(out / MANIFEST_NAME) >= 1 or proc.poll() is not None)
        kids = children(proc.pid)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (stdout, stderr)
    assert "interrupted: rerun with --resume" in stdout and "not run" in stdout
    assert "Traceback" not in stderr
    with open(out / REPORT_NAME, newline="") as fh:
        not_run = [row["name"] for row in csv.DictReader(fh) if row["status"] == "not run"]
    records = final_pair_records(read_manifest(out / MANIFEST_NAME))
    assert all(r["status"] == "ok" for r in records.values())  # an interrupted pair is "not run", not "failed"
    assert not_run and sorted(not_run + list(records)) == [f"{i:02d}" for i in range(8)]
    for png in out.glob("*.png"):  # every fused file on disk is in the manifest, with its hash
        record = records[png.stem]
        assert record["status"] == "ok" and record["output_sha256"] == sha256_file(png)
    assert not list(out.glob(".*.tmp"))
    assert wait_for(lambda: not any(alive(pid) for pid in kids), timeout=60)
    again = subprocess.run(fuse_dir_cmd(root, out, "--workers", "2", "--resume"), env=hooked_env(tmp_path),
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"{len(not_run)} fused, {8 - len(not_run)} already done" in again.stdout
    assert json.loads((out / MANIFEST_NAME).read_text().splitlines()[0])["kind"] == "run"

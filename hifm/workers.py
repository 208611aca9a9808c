"""A process pool whose workers die with their parent and where a lost worker fails one task only.

:class:`concurrent.futures.ProcessPoolExecutor` has two properties a long batch cannot live
with: when one worker is killed (out-of-memory killer, ``kill -9``) the whole pool is broken
and every pending task fails with it; and when the *parent* is killed, the workers (each
blocked reading a queue whose write end it holds itself) and the resource tracker live on
forever. :class:`ProcessPool` keeps the ``submit()``/future interface and fixes both:

* each worker runs one task at a time, sent over its own pipe, so the pool knows which task
  a dead worker was running: that future fails with :class:`WorkerLost` (naming the signal),
  a new worker takes the dead one's place, the other tasks go on;
* each worker watches its parent: on Linux the kernel kills it when the parent dies
  (``PR_SET_PDEATHSIG``), and everywhere a thread checks ``os.getppid()`` twice a second; so
  ``kill -9`` of the parent leaves no worker behind (and the resource tracker, whose last
  pipe writers were those workers, exits too);
* workers ignore SIGINT: Ctrl-C in a terminal goes to the whole process group, and the
  parent decides what happens to the running tasks (:meth:`ProcessPool.kill`).

Workers are started with the ``spawn`` method (no inherited locks or threads).
"""
from __future__ import annotations

import collections
import concurrent.futures as cf
import itertools
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
import traceback
from typing import Any, Callable

from .errors import HIFMError

__all__ = ["ProcessPool", "WorkerLost", "PARENT_POLL_SECONDS"]

PARENT_POLL_SECONDS = 0.5
"""How often a worker checks that its parent is alive (besides the kernel's death signal)."""
_MAX_START_FAILURES = 3


class WorkerLost(HIFMError, RuntimeError):
    """The worker process running a task died (killed, crashed) before returning its result."""


def _signal_name(exitcode: int | None) -> str:
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit status {exitcode}"


# --------------------------------------------------------------------------- worker side


def _die_with_parent(parent_pid: int) -> None:
    """Exit when the parent dies: the kernel's death signal (Linux) and a polling thread (everywhere)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_SECONDS)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="hifm-parent-watch", daemon=True).start()


def _worker_main(conn: Any, parent_pid: int, initializer: Callable[..., Any] | None, initargs: tuple) -> None:
    """Body of a worker process: run the tasks that arrive on ``conn`` one at a time."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent_pid)
    try:
        if initializer is not None:
            initializer(*initargs)
    except BaseException as exc:  # noqa: BLE001 - report why the worker cannot start
        conn.send(("init-error", f"{type(exc).__name__}: {' '.join(str(exc).split())}"))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        task_id, fn, args, kwargs = message
        try:
            reply = (task_id, "ok", fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
            reply = (task_id, "error", exc, traceback.format_exc(limit=-3))
        try:
            conn.send(reply)
        except Exception as exc:  # noqa: BLE001 - an unpicklable result or exception
            conn.send((task_id, "error", RuntimeError(f"result could not be sent back: {type(exc).__name__}: {exc}"),
                       ""))


# --------------------------------------------------------------------------- parent side


class _Worker:
    def __init__(self, process: Any, conn: Any) -> None:
        self.process = process
        self.conn = conn
        self.ready = False
        self.task: tuple[int, cf.Future] | None = None


class ProcessPool(cf.Executor):
    """``workers`` spawned processes running submitted calls one at a time each (module docstring).

    Args:
        workers: number of processes (≥ 1).
        initializer, initargs: called once at the start of each process (e.g. loading a network).
            If it fails three times in a row, the pool is broken: queued futures fail with its error.
    """

    def __init__(self, workers: int, initializer: Callable[..., Any] | None = None, initargs: tuple = ()) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self._ctx = multiprocessing.get_context("spawn")
        self._size = int(workers)
        self._initializer, self._initargs = initializer, initargs
        self._queue: collections.deque[tuple[int, cf.Future, Callable, tuple, dict]] = collections.deque()
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._wake_r, self._wake_w = self._ctx.Pipe(duplex=False)
        self._workers: list[_Worker] = []
        self._closing = False
        self._broken: str | None = None
        self._start_failures = 0
        for _ in range(self._size):
            self._start_worker()
        self._thread = threading.Thread(target=self._loop, name="hifm-pool", daemon=True)
        self._thread.start()

    # ---- public
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        with self._lock:
            if self._broken:
                raise cf.BrokenExecutor(self._broken)
            if self._closing:
                raise RuntimeError("cannot submit to a pool that is shut down")
            future: cf.Future = cf.Future()
            self._queue.append((next(self._ids), future, fn, args, kwargs))
        self._wake()
        return future

    @property
    def pids(self) -> list[int]:
        """Process ids of the current workers."""
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    def kill(self) -> None:
        """Stop now: SIGKILL every worker; running futures fail with :class:`WorkerLost`, queued ones are cancelled."""
        with self._lock:
            self._closing = True
            queued, self._queue = list(self._queue), collections.deque()
        for _, future, *_ in queued:
            future.cancel()
        for w in list(self._workers):
            if w.process.is_alive():
                w.process.kill()
        self._wake()
        self._thread.join(timeout=10)
        self._reap_all()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Let the running tasks (and, unless ``cancel_futures``, the queued ones) finish, then stop the workers."""
        with self._lock:
            self._closing = True
            queued = list(self._queue) if cancel_futures else []
            if cancel_futures:
                self._queue.clear()
        for _, future, *_ in queued:
            future.cancel()
        self._wake()
        if wait:
            self._thread.join()
            self._reap_all()

    # ---- internals
    def _wake(self) -> None:
        try:
            self._wake_w.send_bytes(b"x")
        except OSError:
            pass

    def _start_worker(self) -> None:
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=_worker_main, args=(child_conn, os.getpid(), self._initializer, self._initargs),
            name="hifm-worker", daemon=True,
        )
        process.start()
        child_conn.close()
        self._workers.append(_Worker(process, parent_conn))

    def _loop(self) -> None:
        """Dispatcher thread: hand queued tasks to idle workers, collect results, replace dead workers."""
        while True:
            self._dispatch()
            with self._lock:
                finished = self._closing and not self._queue and all(w.task is None for w in self._workers)
            if finished or (not self._workers and (self._closing or self._broken)):
                break
            waitables: list[Any] = [self._wake_r]
            for w in self._workers:
                waitables += [w.conn, w.process.sentinel]
            ready = multiprocessing.connection.wait(waitables, timeout=1.0)
            if self._wake_r in ready:
                while self._wake_r.poll():
                    self._wake_r.recv_bytes()
            for w in list(self._workers):
                if w.conn in ready:
                    self._receive(w)
            for w in list(self._workers):
                if w.process.sentinel in ready or not w.process.is_alive():
                    if w in self._workers and not w.conn.poll():
                        self._lost(w)
        for w in list(self._workers):
            self._stop_worker(w)

    def _receive(self, w: _Worker) -> None:
        try:
            message = w.conn.recv()
        except (EOFError, OSError):
            self._lost(w)
            return
        kind = message[0]
        if kind == "ready":
            w.ready = True
            self._start_failures = 0
        elif kind == "init-error":
            self._start_failures += 1
            self._remove(w)
            if self._start_failures >= _MAX_START_FAILURES:
                self._break(f"worker processes cannot start: {message[1]}")
            elif not self._closing:
                self._start_worker()
        else:
            task_id, status, value = message[0], message[1], message[2]
            if w.task is None or w.task[0] != task_id:
                return
            future = w.task[1]
            w.task = None
            if status == "ok":
                future.set_result(value)
            else:
                future.set_exception(value if isinstance(value, BaseException) else RuntimeError(str(value)))

    def _lost(self, w: _Worker) -> None:
        """A worker died: fail its task only, and start a replacement."""
        w.process.join(timeout=5)
        how = _signal_name(w.process.exitcode)
        task, was_ready = w.task, w.ready
        self._remove(w)
        if task is not None:
            task[1].set_exception(WorkerLost(f"worker process {w.process.pid} died ({how}) while running this task"))
        if not was_ready:
            self._start_failures += 1
            if self._start_failures >= _MAX_START_FAILURES:
                self._break(f"worker processes die while starting ({how})")
                return
        if not self._closing and not self._broken:
            self._start_worker()

    def _break(self, reason: str) -> None:
        with self._lock:
            self._broken = reason
            queued, self._queue = list(self._queue), collections.deque()
        for _, future, *_ in queued:
            if future.set_running_or_notify_cancel():
                future.set_exception(WorkerLost(reason))

    def _remove(self, w: _Worker) -> None:
        if w in self._workers:
            self._workers.remove(w)
        try:
            w.conn.close()
        except OSError:
            pass

    def _dispatch(self) -> None:
        for w in self._workers:
            if not (w.ready and w.task is None):
                continue
            with self._lock:
                item = None
                while self._queue:
                    candidate = self._queue.popleft()
                    if candidate[1].set_running_or_notify_cancel():
                        item = candidate
                        break
            if item is None:
                return
            task_id, future, fn, args, kwargs = item
            try:
                w.conn.send((task_id, fn, args, kwargs))
            except Exception as exc:  # noqa: BLE001 - unpicklable task or a dead pipe
                future.set_exception(exc if not isinstance(exc, OSError) else WorkerLost(f"cannot reach worker: {exc}"))
                continue
            w.task = (task_id, future)

    def _stop_worker(self, w: _Worker) -> None:
        try:
            w.conn.send(None)
        except (OSError, ValueError):
            pass
        w.process.join(timeout=5)
        if w.process.is_alive():
            w.process.kill()
            w.process.join(timeout=5)
        self._remove(w)

    def _reap_all(self) -> None:
        for w in list(self._workers):
            w.process.join(timeout=5)
            self._remove(w)
        for conn in (self._wake_r, self._wake_w):
            try:
                conn.close()
            except OSError:
                pass

    def __enter__(self) -> "ProcessPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown(wait=True, cancel_futures=True)

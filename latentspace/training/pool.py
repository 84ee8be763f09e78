"""The one worker pool: the independent runs of a stage (seeds, launches, nets, latent sizes) in parallel.

At these net widths a CPU trains fastest with one independent run per core, each single-threaded: two
single-threaded processes side by side beat one process with two threads by 1.4-1.65x (measured on the 2-core
AVX2 machine; `benchmarks/pool_throughput.py` prints the figures). So on the CPU a stage submits its runs to a
`WorkerPool` of `workers` processes (the `workers` parameter; auto = one per core), built on the standard
library's ProcessPoolExecutor, and every run uses exactly one intra-op thread whatever the number of workers:
a run's arithmetic, and so its result, is then bit-identical with 1, 2 or 16 workers (tests/test_pool.py).
With one worker the runs execute in the stage's own process, one after another, with the same single thread.
On CUDA there is one process (the GPU is the parallel part) and the runs go one after another on it.

A run is a plain top-level function and its arguments (picklable); it returns its result (records, state
dicts, predictions) and writes nothing, so the stage writes every output itself, atomically, after the pool
is done. Per-process data (a whole dataset as tensors) is loaded once per worker by `initializer`.
"""
from __future__ import annotations

import atexit
import concurrent.futures as cf
import multiprocessing
import os
import sys
from typing import Any, Callable, Iterable

import torch

# Read by `worker_state()`: what `initializer` returned in this process (the worker's own data).
_STATE: dict[str, Any] = {}


def cpu_cores() -> int:
    """Cores this process may use (the affinity mask, which containers and job schedulers set)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def worker_count(setting: int | str, device: torch.device | str, tasks: int) -> int:
    """Processes for `tasks` runs: 1 on CUDA, else `setting` (auto = one per core), never more than the runs."""
    if torch.device(device).type == "cuda":
        return 1
    wanted = cpu_cores() if setting == "auto" else int(setting)
    return max(1, min(wanted, tasks))


def _exit_now() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _start_worker(initializer: Callable[..., Any] | None, initargs: tuple, threads: int,
                  in_pool: bool = True) -> None:
    torch.set_num_threads(threads)
    if in_pool:
        # A worker writes no files, so it may skip the interpreter's teardown: unloading torch takes 2-4 s per
        # process, which a pool shutdown would otherwise wait for.
        atexit.register(_exit_now)
    # A process started by the pool must not start pools of its own (the runs inside are single-threaded).
    os.environ["LATENTSPACE_IN_WORKER"] = "1"
    _STATE["value"] = initializer(*initargs) if initializer is not None else None


def worker_state() -> Any:
    """What this process's `initializer` returned (in the stage's own process when there is one worker)."""
    return _STATE.get("value")


class WorkerPool:
    """`with WorkerPool(workers, device, tasks=n, initializer=load, initargs=(...)) as pool:` then
    `pool.map(fn, items)` (results in the order of `items`) or `pool.submit(fn, *args)` (a Future, for runs
    that depend on earlier ones: submit them when the future they need is done)."""

    def __init__(self, workers: int | str, device: torch.device | str, *, tasks: int,
                 initializer: Callable[..., Any] | None = None, initargs: tuple = ()):
        self.device = torch.device(device)
        self.workers = worker_count(workers, self.device, tasks)
        # One intra-op thread per run on the CPU, whatever the number of workers (bit-identical results).
        self.threads = 1 if self.device.type == "cpu" else torch.get_num_threads()
        self._initializer, self._initargs = initializer, initargs
        self._executor: cf.ProcessPoolExecutor | None = None
        self._saved_threads = torch.get_num_threads()

    def __enter__(self) -> "WorkerPool":
        if self.workers > 1:
            # spawn, not fork: a forked child of a process whose OpenMP pool has run can deadlock.
            self._executor = cf.ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker, initargs=(self._initializer, self._initargs, self.threads))
        else:
            _start_worker(self._initializer, self._initargs, self.threads, in_pool=False)
            os.environ.pop("LATENTSPACE_IN_WORKER", None)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._executor is not None:
            # On an error or Ctrl-C, drop the queued runs rather than finishing them.
            self._executor.shutdown(wait=True, cancel_futures=exc_type is not None)
        torch.set_num_threads(self._saved_threads)
        _STATE.clear()

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future:
        if self._executor is not None:
            return self._executor.submit(fn, *args)
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args))
        except BaseException as e:  # noqa: BLE001 - handed to the caller through the future, as the pool does
            if isinstance(e, KeyboardInterrupt):
                raise
            future.set_exception(e)
        return future

    def map(self, fn: Callable[..., Any], items: Iterable[Any]) -> list:
        """fn(item) for every item, results in order; the first failure is raised once every run has ended."""
        futures = [self.submit(fn, item) for item in items]
        return [f.result() for f in futures]


def as_completed(futures: Iterable[cf.Future]):
    """The standard library's as_completed, re-exported so stages need only this module."""
    return cf.as_completed(list(futures))

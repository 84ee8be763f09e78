"""The one stage runner: what every stage entry point repeats, done once.

A stage script is a function decorated with `@stage(...)`. The runner parses the script's arguments, loads and
validates the whole of `params.yaml` (so a bad value anywhere stops the first stage of a run, whichever it is),
sets up the device when asked, times the work, turns a UserError into one line on stderr (exit status 2), writes the stage's timing file and ends with one line on stdout:
`<stage>: <headline> (<seconds> s)`. The function receives a `StageRun` and returns its headline (a short phrase
with the stage's main result).

An interrupt, Ctrl-C or SIGTERM (what `kill` and job schedulers send), ends the stage the same way: the atomic
writes under way remove their temporaries, the pool's worker processes are ended, and the stage exits with one
line (status 130 for Ctrl-C, 143 for SIGTERM), its previous outputs untouched.

Timing, throughput and device live in `metrics/timing/<stage>.json`, never in the metrics: a rerun of unchanged
code then changes no metric, and `dvc metrics diff` shows only what a change of parameters or code did.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import multiprocessing
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from latentspace import paths
from latentspace.core.errors import UserError

TIMING_DIR = Path(paths.TIMING_DIR)


def arg(*flags: str, **kwargs) -> tuple[tuple[str, ...], dict]:
    """One command-line argument of a stage, as argparse's add_argument takes it."""
    return flags, kwargs


@dataclass
class StageRun:
    """What a stage function gets: its arguments, parameters, device, and a place to report timing."""
    name: str                                   # the DVC stage instance, e.g. train_segmentation@nn1-wce
    args: argparse.Namespace
    params: dict
    device: Any = None                          # torch.device when the stage asked for one
    precision: str | None = None
    timing: dict = field(default_factory=dict)  # extra fields for the timing file (throughput, steps, ...)
    start: float = field(default_factory=time.perf_counter)

    @property
    def seed(self) -> int:
        return self.params["seed"]

    @property
    def seconds(self) -> float:
        return round(time.perf_counter() - self.start, 2)

    @contextlib.contextmanager
    def live(self, folder: str | Path) -> Iterator[Any]:
        """A dvclive logger writing into `folder` atomically (a killed run leaves the previous logs whole)."""
        from dvclive import Live

        from latentspace.core.io import atomic_dir
        with atomic_dir(folder) as tmp:
            with Live(dir=str(tmp), dvcyaml=None, save_dvc_exp=False, report=None) as live:
                yield live


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the stage is, like Ctrl-C's KeyboardInterrupt: every `finally` and context manager
    on the way out runs (the atomic writes remove their temporaries)."""


def _end_workers() -> None:
    """End the worker processes of a pool (latentspace/training/pool.py): a SIGTERM sent to the stage alone
    reaches no child, and a worker must not train on, orphaned, after its stage is gone."""
    for child in multiprocessing.active_children():
        child.terminate()
    for child in multiprocessing.active_children():
        child.join(timeout=5)
        if child.is_alive():
            child.kill()


def _on_interrupt(signum, frame) -> None:
    from latentspace.core.io import interrupt
    # Further interrupts wait until this one has been handled: cleanup must not be cut short.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _end_workers()
    interrupt(Terminated() if signum == signal.SIGTERM else KeyboardInterrupt())


@contextlib.contextmanager
def _interrupts_handled() -> Iterator[None]:
    """Ctrl-C and SIGTERM raise (as above) while the stage runs; the previous handlers are restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in before:
        signal.signal(s, _on_interrupt)
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def _run(fn: Callable[[StageRun], str], parser: argparse.ArgumentParser, argv: list[str], name: str,
         setup: Callable[[dict], tuple] | None) -> tuple[str, str, float]:
    """Parameters, arguments, device, the stage's work and its timing file: (instance, headline, seconds)."""
    from latentspace.core.io import write_json
    from latentspace.core.params import load_params
    # Parameters first: a bad matrix list (segmentation.nets: [nn4]) names the parameter, rather than failing as
    # an unknown --net choice of the instance DVC expanded from it.
    params = None if {"-h", "--help"} & set(argv) else load_params()
    ns = parser.parse_args(argv)
    instance = name.format(**vars(ns))
    run = StageRun(instance, ns, params)
    if setup is not None:
        run.device, run.precision = setup(run.params)
    headline = fn(run)
    seconds = run.seconds
    record = {"stage": instance, "seconds": seconds}
    if run.device is not None:
        record.update(device=str(run.device.type), precision=run.precision)
    write_json(timing_path(instance), {**record, **run.timing})
    return instance, headline, seconds


def timing_path(name: str) -> Path:
    return TIMING_DIR / f"{name}.json"


def stage(doc: str | None, *, name: str, args: Sequence = (),
          setup: Callable[[dict], tuple] | None = None) -> Callable[[Callable[[StageRun], str]], Callable[..., None]]:
    """Make `fn(run) -> headline` a stage entry point.

    name: the stage instance, formatted with the parsed arguments (`"train_segmentation@{net}-{loss}"`);
    args: `arg(...)` specs; setup: `latentspace.training.device.setup_run` for stages that run a net.
    """
    def decorate(fn: Callable[[StageRun], str]) -> Callable[..., None]:
        @functools.wraps(fn)
        def main(argv: Sequence[str] | None = None) -> None:
            parser = argparse.ArgumentParser(description=doc)
            for flags, kwargs in args:
                parser.add_argument(*flags, **kwargs)
            argv = sys.argv[1:] if argv is None else list(argv)
            try:
                with _interrupts_handled():
                    instance, headline, seconds = _run(fn, parser, argv, name, setup)
            except UserError as e:
                print(f"error: {e}", file=sys.stderr)
                sys.exit(2)
            except Terminated:
                print("error: terminated (SIGTERM); outputs of this stage were not replaced", file=sys.stderr)
                sys.exit(143)
            except KeyboardInterrupt:
                print("error: interrupted; outputs of this stage were not replaced", file=sys.stderr)
                sys.exit(130)
            print(f"{instance}: {headline} ({seconds:.1f} s)", flush=True)
        return main
    return decorate


"""The one stage runner: what every stage entry point repeats, done once.

A stage script is a function decorated with `@stage(...)`. The runner parses the script's arguments, loads and
validates its slice of `params.yaml`, sets up the device when asked, times the work, turns a UserError into one
line on stderr (exit status 2), writes the stage's timing file and ends with one line on stdout:
`<stage>: <headline> (<seconds> s)`. The function receives a `StageRun` and returns its headline (a short phrase
with the stage's main result).

Timing, throughput and device live in `metrics/timing/<stage>.json`, never in the metrics: a rerun of unchanged
code then changes no metric, and `dvc metrics diff` shows only what a change of parameters or code did.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from latentspace.core.errors import UserError

TIMING_DIR = Path("metrics/timing")


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


def timing_path(name: str) -> Path:
    return TIMING_DIR / f"{name}.json"


def stage(doc: str | None, *, name: str, sections: Sequence[str] = (), args: Sequence = (),
          setup: Callable[[dict], tuple] | None = None) -> Callable[[Callable[[StageRun], str]], Callable[..., None]]:
    """Make `fn(run) -> headline` a stage entry point.

    name: the stage instance, formatted with the parsed arguments (`"train_segmentation@{net}-{loss}"`);
    sections: the params.yaml sections the stage reads (the top-level values always come along);
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
                from latentspace.core.io import write_json
                from latentspace.core.params import load_params
                # Parameters first: a bad matrix list (segmentation.nets: [nn4]) names the parameter, rather than
                # failing as an unknown --net choice of the instance DVC expanded from it.
                params = None if {"-h", "--help"} & set(argv) else load_params(sections=list(sections))
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
            except UserError as e:
                print(f"error: {e}", file=sys.stderr)
                sys.exit(2)
            except KeyboardInterrupt:
                print("error: interrupted; outputs of this stage were not replaced", file=sys.stderr)
                sys.exit(130)
            print(f"{instance}: {headline} ({seconds:.1f} s)", flush=True)
        return main
    return decorate


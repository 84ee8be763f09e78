"""What every stage entry point shares: parameters, device, error reporting, timing."""
from __future__ import annotations

import functools
import sys
import time
from typing import Callable

from latentspace.core.errors import UserError


def stage_main(fn: Callable[[], None]) -> Callable[[], None]:
    """Run a stage's main(); a UserError becomes one line on stderr and exit status 2."""
    @functools.wraps(fn)
    def wrapper() -> None:
        try:
            fn()
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("error: interrupted; outputs of this stage were not replaced", file=sys.stderr)
            sys.exit(130)
    return wrapper


class Timer:
    """Wall time of a stage, for its metrics file (`with Timer() as t: ...; t.seconds`)."""
    def __enter__(self):
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc):
        self.seconds = round(time.perf_counter() - self.start, 2)
        return False

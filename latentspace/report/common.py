"""What every part of the report shares: reading the tracked inputs, and formatting numbers.

Inputs that are not there yet (a study that has not run) raise MissingInput, which `guarded` turns into a note in
that section, so the report can be rendered at any point of the pipeline.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any, Callable

import yaml

from latentspace import results, stats
from latentspace.report.document import Figure, Note, Section, Table


class MissingInput(Exception):
    """A metrics file or figure the section needs is absent or unreadable; the section says so."""


class Inputs:
    """The project root: metrics read through latentspace/results.py (the one reader of each metrics file), and
    figures by their paths (latentspace/paths.py)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, rel: str) -> Path:
        return self.root / rel

    def exists(self, rel: str) -> bool:
        return self.path(rel).exists()

    def read(self, reader: Callable[..., Any], *args: Any, missing: str | None = None) -> Any:
        """What the results reader gives for this root and `args`. A file it could not read raises MissingInput;
        so does nothing found (None or empty) when `missing` says what is missing."""
        notes: list[str] = []
        value = reader(self.root, *args, notes=notes)
        if notes:
            raise MissingInput(notes[0])
        if missing is not None and not value:
            raise MissingInput(missing)
        return value

    def figure(self, rel: str, caption: str) -> Figure | Note:
        p = self.path(rel)
        return Figure(p, caption) if p.is_file() else Note(f"Figure `{rel}` is missing.")


def fmt(v: Any, digits: int = 4) -> str:
    """Numbers to `digits` significant digits (integers exactly); None/NaN as a dash."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-4):
            return f"{v:.{digits - 1}e}"
        return f"{v:.{digits}g}"
    if isinstance(v, (list, dict)):
        return yaml.safe_dump(v, default_flow_style=True, width=10**6).strip()
    return str(v)


def mean_std(values: list[float], digits: int = 4) -> str:
    """mean ± sample std of the values (the mean alone for one value), from the one spread helper."""
    iv = stats.t_interval([float(v) for v in values if v is not None])
    if iv["mean"] is None:
        return "–"
    return fmt(iv["mean"], digits) + ("" if iv["std"] is None else f" ± {fmt(iv['std'], 2)}")


def spread(stat: Any, digits: int = 4) -> str:
    """A metrics spread {"values": [...]} or {"mean", ...} (or a bare number) as mean ± std."""
    if isinstance(stat, dict):
        return mean_std(stat.get("values") or [stat.get("mean")], digits)
    return fmt(stat, digits)


def pp(v: float | None, signed: bool = True) -> str:
    """A difference of accuracies (fractions) in percentage points."""
    if v is None:
        return "–"
    return f"{v * 100:+.2f} pp" if signed else f"{v * 100:.2f} pp"


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings to dotted keys; lists stay values."""
    if not isinstance(d, dict):
        return {prefix.rstrip("."): d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def guarded(build: Callable[[Inputs, dict], list], what: str, title: str = "Results", level: int = 3):
    """Run a section builder; a missing input becomes a note in a section of that title."""
    def run(inputs: Inputs, params: dict) -> list[Section]:
        try:
            return build(inputs, params)
        except MissingInput as e:
            print(f"report: {what}: {e}", file=sys.stderr)
            return [Section(title, [Note(f"Not available yet: {e}. Run the pipeline (`dvc repro`) to fill "
                                         f"this section.")], level)]
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as e:
            # A metrics file from an older or newer version of its stage: say which section could not be
            # built instead of losing the whole report.
            print(f"report: {what}: unexpected metrics format: {e!r}", file=sys.stderr)
            return [Section(title, [Note(f"Could not be built: a metrics file has an unexpected format "
                                         f"({type(e).__name__}: {e}). Rerun its stage (`dvc repro`).")], level)]
    return run


def convergence_table(families: list[tuple[str, list[dict]]], caption: str = "") -> Table:
    """Per family of training runs (each run as results.stopping gives it): how many converged (patience ended
    every phase) and how many hit their epoch cap; a column for the runs whose record cannot tell, if any."""
    counts = [(family, results.convergence(runs)) for family, runs in families]
    unknown = any(c["unknown"] for _, c in counts)
    rows = [[family, fmt(c["runs"]), fmt(c["converged"]), fmt(c["hit_cap"]), *([fmt(c["unknown"])] if unknown else [])]
            for family, c in counts]
    return Table(["runs", "how many", "converged (stopped by patience)", "hit their epoch cap",
                  *(["cannot tell (older record)"] if unknown else [])], rows, caption)


def lock_hashes(root: Path) -> dict[str, str]:
    """Output path -> the md5 DVC recorded for it in dvc.lock (a folder's ends in `.dir`)."""
    hashes = {}
    for stage in (results.dvc_lock(root).get("stages") or {}).values():
        for out in stage.get("outs") or []:
            if isinstance(out, dict) and "path" in out and out.get("md5"):
                hashes[Path(out["path"]).as_posix()] = str(out["md5"])
    return hashes

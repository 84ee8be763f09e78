"""How the docs write tables and numbers: the report's own Markdown renderer (latentspace/report/document.py) and
its number format (`fmt` in latentspace/report/common.py), plus durations and sizes in words."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from latentspace.report.common import fmt
from latentspace.report.document import Section, Table, to_markdown

NOT_YET = "not measured yet"

__all__ = ["NOT_YET", "fmt", "table", "num", "count", "duration", "size", "span"]


def table(columns: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table, written by the report's renderer (a one-table document, its table lines kept)."""
    text = to_markdown("", [Section("", [Table(list(columns), [[str(c) for c in r] for r in rows])])], Path("."))
    lines = text.splitlines()
    return "\n".join(lines[next(i for i, line in enumerate(lines) if line.startswith("|")):]) + "\n"


def num(v: Any) -> str:
    """A measured value in a docs table: three significant digits (integers exactly)."""
    return fmt(v, 3)


def count(v: Any) -> str:
    """A rate or count, whole and with thousands separators (images per second)."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return "–"
    return f"{round(v):,}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return NOT_YET
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def size(n: float | None) -> str:
    """Binary units rounded up to one decimal, as `du -sh` prints them (so the two can be compared)."""
    if n is None:
        return NOT_YET
    for unit, step in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= step:
            return f"{math.ceil(n / step * 10) / 10:.1f} {unit}"
    return f"{n:.0f} B"


def span(values: list) -> str:
    """`a` or `a–b` of some integers (the epochs of several runs); a dash without any."""
    vals = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not vals:
        return "–"
    lo, hi = min(vals), max(vals)
    return fmt(lo) if lo == hi else f"{fmt(lo)}–{fmt(hi)}"

"""What every reproduction claim shares: the run's context, the verdict rule, and the record of one claim.

Verdicts (see latentspace/verdicts.py for the whole procedure):
- `reproduced`: the claim's rule holds on this run's measurements;
- `not reproduced`: the rule fails, and the run cannot blame its size: either the claim does not depend on
  training (parameter counts), or the study ran at paper scale (every override of `paper_scale.yaml` for it);
- `undecided at this scale`: the rule fails below paper scale, or the seeds cannot decide (an interval from one
  seed, or wider than `verdicts.max_interval_pp`); `decide` says which run would decide it;
- `not run`: the metrics the claim needs are missing (a study, net, loss or size that has not run).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latentspace import stats

REPRODUCED, NOT_REPRODUCED, UNDECIDED, NOT_RUN = "reproduced", "not reproduced", "undecided at this scale", "not run"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, UNDECIDED, NOT_RUN)
PAPER_RUN = "the paper-scale run (`make paper`: every override of paper_scale.yaml; meant for a GPU)"
MORE_SEEDS = "more seeds (`study_c.seeds`), so that the interval narrows"


@dataclass
class Context:
    root: Path
    refs: dict
    params: dict                     # the whole params.yaml (validated sections)
    at_scale: dict[str, bool]
    notes: list[str] = field(default_factory=list)

    @property
    def rules(self) -> dict:
        return self.params["verdicts"]

    def metrics(self, rel: str) -> dict | None:
        """A metrics JSON, or None when it is missing or unreadable (the claim is then `not run`)."""
        p = self.root / rel
        try:
            data = json.loads(p.read_text())
        except FileNotFoundError:
            return None
        except (ValueError, UnicodeDecodeError):
            self.notes.append(f"`{rel}` is not valid JSON; its claims count as not run")
            return None
        return data if isinstance(data, dict) else None

    def fact(self, claim: dict) -> dict:
        return self.refs["facts"][claim["facts"]]


def verdict(holds: bool | None, ctx: Context, study: str, *, exact: bool = False,
            undecided_by: str = MORE_SEEDS) -> tuple[str, str | None]:
    """(verdict, what would decide it) from whether the rule holds (None: the data cannot tell)."""
    if holds is None:
        return UNDECIDED, undecided_by
    if holds:
        return REPRODUCED, None
    if exact or ctx.at_scale.get(study, False):
        return NOT_REPRODUCED, None
    return UNDECIDED, PAPER_RUN


def record(claim: dict, cid: str, *, measured: Any, published: Any, rule: str, verdict_decide: tuple[str, str | None],
           difference: Any = None, test: Any = None, statement: str | None = None, note: str | None = None) -> dict:
    v, decide = verdict_decide
    out = {"id": cid, "study": claim["study"], "statement": statement or claim["statement"],
           "source": claim["source"], "published": published, "measured": measured, "difference": difference,
           "rule": rule, "test": test, "verdict": v, "decide": decide}
    if note:
        out["note"] = note
    return out


def not_run(claim: dict, cid: str, what: str, published: Any = None, statement: str | None = None) -> dict:
    return record(claim, cid, measured=None, published=published, rule="", statement=statement,
                  verdict_decide=(NOT_RUN, what))


def spread(values: list[float], confidence: float) -> dict:
    """Mean, std, interval, min, max and the values themselves, over seeds or launches."""
    iv = stats.t_interval(values, confidence)
    return {**iv, "min": min(values) if values else None, "max": max(values) if values else None,
            "values": list(values)}

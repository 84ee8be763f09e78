"""What every reproduction claim shares: the run's context, the preconditions, and the record of one check.

A check first tests its preconditions (the same whether its rule passes or fails), then applies its rule:
- `reproduced` / `not reproduced`: every precondition held and the rule passed / failed, at any scale;
- `undecided`: a precondition failed or cannot be told from the metrics (`reason` names it, `decide` the
  parameter that would satisfy it), or every precondition held but the seeds cannot decide (an interval that
  straddles a margin; `decide`: more seeds);
- `not run`: the metrics the check needs are missing (a study, net, loss or size that has not run).
The record keeps what the rule said (`rule_result`) even when a precondition makes the verdict undecided.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

REPRODUCED, NOT_REPRODUCED, UNDECIDED, NOT_RUN = "reproduced", "not reproduced", "undecided", "not run"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, UNDECIDED, NOT_RUN)
# What a claim is: stated by a source, derived from a source's tables, or an extension beyond the sources
# (reported, outside the reproduction count).
KINDS = ("stated", "derived", "extension")
RULE_RESULT = {True: "passes", False: "fails", None: "cannot tell"}


@dataclass
class Context:
    root: Path
    refs: dict
    params: dict                     # the whole params.yaml, validated
    scale: dict[str, dict]           # per study: {"scale": "paper" | "reduced", "differs": [...]}
    notes: list[str] = field(default_factory=list)

    @property
    def rules(self) -> dict:
        return self.params["verdicts"]

    def fact(self, claim: dict) -> dict:
        return self.refs["facts"][claim["facts"]]


# --- preconditions ----------------------------------------------------------------------------------------

def precondition(name: str, held: bool | None, detail: str, fix: str | None = None) -> dict:
    """One precondition: held True, False, or None (the metrics cannot tell); detail in words; fix: the
    parameter (or run) that would satisfy it."""
    return {"name": name, "held": held, "detail": detail, "fix": None if held else fix}


def converged(runs: Iterable[tuple[str, dict]], what: str, fix: str) -> dict:
    """Every run stopped by its patience, not by its epoch cap. runs: (label, results.stopping(...)) pairs."""
    runs = list(runs)
    if not runs:    # no run to look at proves nothing: unknown, not held
        return precondition("converged", None, f"no {what} found in the metrics", "run the stages that train them")
    capped = [label for label, s in runs if s["converged"] is False]
    unknown = [label for label, s in runs if s["converged"] is None]
    if capped:
        return {**precondition("converged", False, f"{what} stopped at their epoch cap ({len(capped)} of "
                                                   f"{len(runs)} runs)", f"raise {fix}"), "runs": capped}
    if unknown:
        return {**precondition("converged", None, f"the metrics of {len(unknown)} of {len(runs)} {what} do not "
                                                  "say how they stopped (older metrics without `stopping`)",
                               "rerun the stage with the current code"), "runs": unknown}
    return precondition("converged", True, f"all {len(runs)} {what} stopped by their patience")


def enough(n: int, minimum: int, what: str, fix: str) -> dict:
    """At least `minimum` seeds or launches."""
    held = n >= minimum
    return precondition("enough runs", held, f"{n} {what} (at least {minimum} needed)", fix)


def same_budget(arms: dict[str, set], what: str, fix: str) -> dict:
    """The compared arms trained under the same caps: arms maps an arm to the set of its budgets (None unknown)."""
    budgets = {arm: sorted(b, key=str) for arm, b in arms.items()}
    if any(None in b for b in arms.values()):
        return precondition("same budget", None, f"the metrics do not say the {what} of every arm",
                            "rerun the stage with the current code")
    held = len({tuple(b) for b in budgets.values()}) == 1 and all(len(b) == 1 for b in budgets.values())
    detail = f"{what}: " + ", ".join(f"{arm} {'/'.join(map(str, b))}" for arm, b in budgets.items())
    return precondition("same budget", held, detail, fix)


# --- records ------------------------------------------------------------------------------------------------

def check(claim: dict, cid: str, *, published: Any, measured: Any, rule: str, holds: bool | None,
          preconditions: list[dict], more: str, statement: str | None = None, difference: Any = None,
          test: Any = None, note: str | None = None, kind: str | None = None) -> dict:
    """The record of one check: the preconditions first, then the rule (`more`: what would decide a rule that
    cannot tell, e.g. more seeds)."""
    failed = [p for p in preconditions if p["held"] is not True]
    if failed:
        verdict = UNDECIDED
        reason = "; ".join(p["detail"] for p in failed)
        decide = "; ".join(dict.fromkeys(p["fix"] for p in failed if p["fix"]))
    elif holds is None:
        verdict, reason, decide = UNDECIDED, "the seeds cannot decide: the interval straddles the margin", more
    else:
        verdict, reason, decide = (REPRODUCED if holds else NOT_REPRODUCED), None, None
    out = {"id": cid, "study": claim["study"], "kind": kind or claim.get("kind", "stated"),
           "statement": statement or claim["statement"], "source": claim["source"], "published": published,
           "measured": measured, "difference": difference, "rule": rule, "rule_result": RULE_RESULT[holds],
           "test": test, "preconditions": preconditions, "verdict": verdict, "reason": reason, "decide": decide}
    if note:
        out["note"] = note
    return out


def not_run(claim: dict, cid: str, what: str, published: Any = None, statement: str | None = None,
            kind: str | None = None) -> dict:
    return {"id": cid, "study": claim["study"], "kind": kind or claim.get("kind", "stated"),
            "statement": statement or claim["statement"], "source": claim["source"], "published": published,
            "measured": None, "difference": None, "rule": "", "rule_result": None, "test": None,
            "preconditions": [], "verdict": NOT_RUN, "reason": "not run yet", "decide": what}


def combine(results: Iterable[bool | None]) -> bool | None:
    """Several parts of one rule: fails when any part fails, passes when every part passes, else cannot tell."""
    results = list(results)
    if any(r is False for r in results):
        return False
    return True if results and all(r is True for r in results) else None


def every_seed(results: list[bool]) -> bool | None:
    """A per-seed rule: passes in every seed, fails in every seed, or mixed (None)."""
    if not results:
        return None
    return True if all(results) else (False if not any(results) else None)

"""Reproduction verdicts: every claim of `references.yaml` checked against this run's metrics.

`evaluate` runs the rule of each claim (Study A and B: latentspace/verdicts_ab.py, Study C:
latentspace/verdicts_c.py) and gives the content of metrics/verdicts.json: per claim its id, statement, the
published and measured values (with their spread over seeds or launches), the difference, the rule, the test
and p-values where one applies, the verdict and, for an undecided claim, which run would decide it.
The verdicts themselves are defined in latentspace/verdicts_base.py; the thresholds are the `verdicts` section
of params.yaml.

A study counts as "at paper scale" when every override that `paper_scale.yaml` makes in its params.yaml sections
equals this run's value: only then can a claim about trained models fail as `not reproduced`; below that scale
a failing rule leaves the claim `undecided at this scale`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import yaml

from latentspace import verdicts_ab, verdicts_c
from latentspace.core.errors import UserError
from latentspace.verdicts_base import VERDICTS, Context, not_run

REFERENCES_FILE = "references.yaml"
PAPER_SCALE_FILE = "paper_scale.yaml"
# The params.yaml sections whose paper-scale overrides make a study "at paper scale".
STUDY_SECTIONS = {"A": ("rectangles", "segmentation", "latent"), "B": ("study_b",), "C": ("study_c",)}
EVALUATORS: dict[str, Callable[[Context, dict], list[dict]]] = {**verdicts_ab.EVALUATORS, **verdicts_c.EVALUATORS}


def load_references(path: str | Path) -> dict:
    """references.yaml, checked for the shape the claims need (one-line UserError naming what is wrong)."""
    path = Path(path)
    try:
        refs = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: file not found; it holds the published facts the verdicts compare with") from None
    except yaml.YAMLError:
        raise UserError(f"{path}: not valid YAML") from None
    if not isinstance(refs, dict) or not isinstance(refs.get("facts"), dict) or not isinstance(refs.get("claims"), list):
        raise UserError(f"{path}: expected a mapping with `facts` (a mapping) and `claims` (a list)")
    for i, c in enumerate(refs["claims"]):
        if not isinstance(c, dict) or not {"id", "study", "statement", "source"} <= set(c):
            raise UserError(f"{path}: claims[{i}] needs id, study, statement and source")
        if c["id"] not in EVALUATORS:
            raise UserError(f"{path}: claim id {c['id']!r} has no rule; known: {', '.join(EVALUATORS)}")
        if c.get("facts") is not None and c["facts"] not in refs["facts"]:
            raise UserError(f"{path}: claim {c['id']!r} names facts {c['facts']!r}, which are not under `facts`")
    return refs


def paper_scale(root: Path) -> dict:
    p = root / PAPER_SCALE_FILE
    try:
        data = yaml.safe_load(p.read_text()) if p.exists() else {}
    except yaml.YAMLError:
        raise UserError(f"{p}: not valid YAML") from None
    return data if isinstance(data, dict) else {}


def _get(params: dict, dotted: str) -> Any:
    node: Any = params
    for k in dotted.split("."):
        if not isinstance(node, dict) or k not in node:
            return KeyError
        node = node[k]
    return node


def at_paper_scale(params: dict, overrides: dict) -> dict[str, bool]:
    """Per study: True when every paper-scale override of its sections equals this run's parameter (False when
    there are no overrides for it)."""
    out = {}
    for study, sections in STUDY_SECTIONS.items():
        own = {k: v for k, v in overrides.items() if k.split(".")[0] in sections}
        out[study] = bool(own) and all(_get(params, k) == v for k, v in own.items())
    return out


def _checked(ctx: Context, claim: dict) -> list[dict]:
    """The claim's records; a metrics file in a format its rule cannot read makes the claim `not run`, with the
    reason, instead of stopping the stage (a study's stage from an older or newer version of the code)."""
    try:
        return EVALUATORS[claim["id"]](ctx, claim)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
        ctx.notes.append(f"claim {claim['id']}: a metrics file has an unexpected format ({type(e).__name__}: {e})")
        return [not_run(claim, claim["id"], f"rerun the study's stages: its metrics have an unexpected format "
                                            f"({type(e).__name__}: {e})")]


def context(root: str | Path, params: dict, refs: dict) -> Context:
    """What the rules read: the project folder, the references, params.yaml and which studies ran at paper scale."""
    root = Path(root)
    return Context(root, refs, params, at_paper_scale(params, paper_scale(root)))


def evaluate(ctx: Context) -> dict:
    """Every claim of the references on the run's metrics: the content of metrics/verdicts.json."""
    claims = [c for claim in ctx.refs["claims"] for c in _checked(ctx, claim)]
    counts = {v: sum(c["verdict"] == v for c in claims) for v in VERDICTS}
    return rounded({"counts": counts, "at_paper_scale": ctx.at_scale, "thresholds": dict(ctx.rules),
                    "notes": ctx.notes, "claims": claims})


def rounded(value: Any, digits: int = 6) -> Any:
    """Floats to `digits` significant digits, all the way down (0.0039000000000000146 -> 0.0039)."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v, digits) for v in value]
    return value

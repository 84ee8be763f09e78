"""Reproduction verdicts: every claim of `references.yaml` checked against this run's metrics.

`evaluate` runs the rule of each claim (latentspace/verdicts/study_a.py, study_b.py, study_c.py) and gives the
content of metrics/verdicts.json: per check its id, kind (stated, derived, extension), statement, the published and
measured values (with their spread over seeds or launches), the difference, the rule and what it said, the tests,
the preconditions and which held, the verdict and, for an undecided check, the reason and what would decide it.
The verdicts are defined in latentspace/verdicts/base.py; margins and thresholds are params.yaml `verdicts`.

The rules decide at any scale; `scale` records, per study, whether this run used every override that
paper_scale.yaml makes in the study's params.yaml sections ("paper") or not ("reduced", with the keys that differ).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from latentspace.core.errors import UserError
from latentspace.core.io import read_yaml
from latentspace.core.params import lookup
from latentspace.verdicts import references, study_a, study_b, study_c
from latentspace.verdicts.base import KINDS, VERDICTS, Context, not_run

REFERENCES_FILE = references.REFERENCES_FILE
PAPER_SCALE_FILE = "paper_scale.yaml"
# The params.yaml sections whose paper-scale overrides say a study's scale.
STUDY_SECTIONS = {"A": ("rectangles", "segmentation", "latent"), "B": ("study_b",), "C": ("study_c",)}
RULES: dict[str, Callable[[Context, dict], list[dict]]] = {**study_a.RULES, **study_b.RULES, **study_c.RULES}
CLAIM_KEYS: dict[str, dict] = {**study_a.CLAIM_KEYS, **study_b.CLAIM_KEYS, **study_c.CLAIM_KEYS}


def load_references(path: str | Path) -> dict:
    """references.yaml, validated against the facts schema and the keys each claim's rule reads."""
    return references.load_references(path, CLAIM_KEYS)


def paper_scale(root: Path) -> dict:
    p = Path(root) / PAPER_SCALE_FILE
    data = read_yaml(p) if p.exists() else {}
    return data if isinstance(data, dict) else {}


def scale(params: dict, overrides: dict) -> dict[str, dict]:
    """Per study: "paper" when every paper-scale override of its sections equals this run's parameter, else
    "reduced" with the overrides that differ."""
    out = {}
    for study, sections in STUDY_SECTIONS.items():
        own = {k: v for k, v in overrides.items() if k.split(".")[0] in sections}
        differs = sorted(k for k, v in own.items() if lookup(params, k, default=KeyError) != v)
        out[study] = {"scale": "paper" if own and not differs else "reduced", "differs": differs}
    return out


def _checked(ctx: Context, claim: dict) -> list[dict]:
    """The claim's records; a metrics file in a format its rule cannot read makes the claim `not run`, with the
    reason, instead of stopping the stage (a study's stage from an older or newer version of the code)."""
    try:
        return RULES[claim["id"]](ctx, claim)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, ZeroDivisionError) as e:
        ctx.notes.append(f"claim {claim['id']}: a metrics file has an unexpected format ({type(e).__name__}: {e})")
        return [not_run(claim, claim["id"], f"rerun the study's stages: its metrics have an unexpected format "
                                            f"({type(e).__name__}: {e})")]


def context(root: str | Path, params: dict, refs: dict) -> Context:
    """What the rules read: the project folder, the references, params.yaml and the scale of each study."""
    root = Path(root)
    return Context(root, refs, params, scale(params, paper_scale(root)))


def counts(claims: list[dict]) -> dict:
    """Verdict counts over all checks, and per kind (stated, derived, extension)."""
    return {v: sum(c["verdict"] == v for c in claims) for v in VERDICTS}


def evaluate(ctx: Context) -> dict:
    """Every claim of the references on the run's metrics: the content of metrics/verdicts.json."""
    if not isinstance(ctx.params.get("verdicts"), dict):
        raise UserError("params.yaml: missing section 'verdicts'")
    claims = [c for claim in ctx.refs["claims"] for c in _checked(ctx, claim)]
    by_kind = {k: counts([c for c in claims if c["kind"] == k]) for k in KINDS}
    return rounded({"counts": counts(claims), "counts_by_kind": by_kind, "scale": ctx.scale,
                    "thresholds": dict(ctx.rules), "notes": list(dict.fromkeys(ctx.notes)), "claims": claims})


def rounded(value: Any, digits: int = 6) -> Any:
    """Floats to `digits` significant digits, all the way down (0.0039000000000000146 -> 0.0039)."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value

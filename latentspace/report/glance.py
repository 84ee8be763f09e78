""""Reproduction at a glance", the report's first section: per check its kind, published and measured values,
verdict and, when undecided, the reason in words; the counts kept apart for claims the sources state, claims
derived from their tables and extensions; one sentence per study on what this run found, and one key figure per
study.

It reads `metrics/verdicts.json` and the headline metrics that the verdicts stage writes; the key figures are
drawn by latentspace/report/glance_figures.py.
"""
from __future__ import annotations

from typing import Any

from latentspace import paths, results
from latentspace.report.common import Inputs, fmt, pp
from latentspace.report.document import Note, Section, Table, Text
from latentspace.verdicts.base import KINDS, NOT_REPRODUCED, NOT_RUN, REPRODUCED, UNDECIDED, VERDICTS

TITLE = "Reproduction at a glance"
BADGES = {REPRODUCED: "good", NOT_REPRODUCED: "bad", UNDECIDED: "open", NOT_RUN: "none"}
STUDY_NAMES = {"A": "Study A (rectangles, segmentation nets)", "B": "Study B (CIFAR-10 autoencoders)",
               "C": "Study C (MNIST pretraining)"}
KIND_NAMES = {"stated": "claims the sources state", "derived": "claims derived from their tables",
              "extension": "extensions (outside the reproduction count)"}
# Checks whose values are differences of accuracies, shown in percentage points.
IN_PP = ("c-finetune-gain", "c-gain-as-published", "c-erasing-lowers-frozen")


def _interval(m: dict, show=fmt) -> str:
    if m.get("low") is None:
        return show(m.get("mean"))
    return f"{show(m['mean'])} [{show(m['low'])}, {show(m['high'])}]"


def _measured(kind: str, m: Any) -> str:
    """A short cell for the measured value of one check."""
    if isinstance(m, dict) and "mean" in m:
        return _interval(m, pp if kind in IN_PP else fmt)
    if kind in ("a-latent-figures", "a-latent-other-losses"):
        pairs = " / ".join(fmt(m["pairs"][k]["mean"], 3) for k in m["pairs"])
        held = m.get("holds_per_launch") or []
        return f"pairs {' / '.join(m['pairs'])}: {pairs}; holds in {sum(held)} of {len(held)} launches"
    if kind == "a-wce-balances-area":
        return f"weighted areas {fmt(m['ratio'], 3)}x apart (weight {fmt(m['balancing_class_weight'], 3)} would balance)"
    if kind in ("b-mse-decreasing", "b-below-half", "b-best-256-512"):
        return " → ".join(f"{h} {fmt(s['mean'], 3)}" for h, s in m.items())
    if kind == "b-hardest-classes":
        return "; ".join(f"{h}: " + ", ".join("+".join(v) for v in by_seed.values()) for h, by_seed in m.items())
    if kind == "b-sizes-favour-classes":
        return f"median distance between sizes {fmt(m['between_median'], 3)}, within {fmt(m['within_median'], 3)}"
    if kind == "b-confusions":
        held = list(m["holds_per_seed"].values())
        return f"holds in {sum(held)} of {len(held)} seeds"
    if kind == "c-order":
        return ", ".join(f"{r.replace('_', '-')} {fmt(s['mean'])}" for r, s in m.items())
    return fmt(m)


def shown(claim: dict) -> tuple[str, str]:
    """(published, measured) of one check as table cells."""
    kind, m, p = claim["id"].split(".")[0], claim.get("measured"), claim.get("published")
    if kind == "b-confusions" and isinstance(p, dict):
        p = "named in the source" + ("" if p.get("rule_holds") in (None, True) else " (rule fails on it!)")
    elif kind == "a-wce-balances-area" and isinstance(p, dict):
        p = "weights " + " / ".join(f"{k} {fmt(v)}" for k, v in p.items())
    elif isinstance(p, float) and kind in IN_PP:
        p = pp(p)
    elif isinstance(p, float):
        p = f"{p:.4f}"
    elif kind == "a-parameters" and isinstance(p, int):
        p = f"{p:,}"
    pub = fmt(p) if not isinstance(p, str) else p
    if claim["verdict"] == NOT_RUN or m is None:
        return pub, "–"
    if kind == "a-parameters":
        return pub, f"{m:,}"
    return pub, _measured(kind, m)


def reason(claim: dict) -> str:
    """Why a check is undecided or not run, in words; empty for a decided check."""
    if claim["verdict"] == NOT_RUN:
        return f"not run: {claim.get('decide') or 'its metrics are missing'}"
    if claim["verdict"] != UNDECIDED:
        return ""
    failed = [p for p in claim.get("preconditions") or [] if p.get("held") is not True]
    if failed:
        return "; ".join(p["detail"] for p in failed[:2]) + ("; ..." if len(failed) > 2 else "")
    return f"{claim.get('reason') or 'the seeds cannot decide'}: {claim.get('decide') or 'more seeds'}"


def counts_phrase(claims: list[dict]) -> str:
    counts = {v: sum(c["verdict"] == v for c in claims) for v in VERDICTS}
    return ", ".join(f"{n} {v}" for v, n in counts.items() if n) + f" (of {len(claims)} checks)"


def kinds_phrase(claims: list[dict]) -> str:
    """The counts of each kind apart: stated, derived, extensions."""
    parts = [f"{KIND_NAMES[k]}: {counts_phrase(own)}" for k in KINDS
             if (own := [c for c in claims if c.get("kind", "stated") == k])]
    return "; ".join(parts)


def _range(values: list[float]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.3f}" if lo == hi else f"{lo:.3f}–{hi:.3f}"


def study_sentence(study: str, claims: list[dict], headline: dict) -> str:
    """One sentence on what this run found for the study: its verdict counts and its main numbers."""
    what = f"{STUDY_NAMES[study]}: {kinds_phrase(claims) if claims else 'no claims'}."
    nums = {k: v for k, v in headline.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if study == "A":
        iou = [v for k, v in nums.items() if k.endswith("_test_miou") and not k.startswith("baseline")]
        sep = [v for k, v in nums.items() if k.endswith("_min_pair_sep")]
        if iou:
            what += f" The nets reach test mean IoU {_range(iou)}"
            what += (f" (colour baseline {nums['baseline_test_miou']:.3f})" if "baseline_test_miou" in nums else "")
            what += (f"; the least separable pair of classes in the 2-D embedding scores {_range(sep)}."
                     if sep else ".")
    elif study == "B":
        acc = [v for k, v in nums.items() if k.endswith("_probe_acc")]
        if acc:
            what += f" The linear probe reaches {_range(acc)} test accuracy across the latent sizes."
    elif study == "C":
        parts = [f"{label} {_range(acc)}" for regime, label in (("frozen", "frozen"), ("fine_tuned", "fine-tuned"),
                                                                 ("scratch", "scratch"))
                 if (acc := [v for k, v in nums.items() if k.endswith(f"_{regime}_acc")])]
        if parts:
            what += " Test accuracy over the cells: " + ", ".join(parts) + "."
    return what


def _scale_phrase(rec: dict) -> str:
    scale = rec.get("scale") or {}
    if not scale:
        return ""
    return " Scale of this run: " + ", ".join(f"Study {s} {v.get('scale')}" for s, v in scale.items()) + \
        " (paper = every override of paper_scale.yaml; the rules decide at any scale)."


def glance_section(inputs: Inputs, params: dict) -> Section:
    s = Section(TITLE)
    rec: dict[str, Any] | None = inputs.read(results.verdicts)
    if rec is None:
        return s.add(Note(f"No verdicts yet: `{paths.VERDICTS}` is written by the `verdicts` stage "
                          f"(`dvc repro verdicts`)."))
    claims = rec.get("claims") or []
    s.add(Text(f"Every claim of the three source studies (`references.yaml`) against this run's measurements "
               f"(`{paths.VERDICTS}`). {kinds_phrase(claims).capitalize()}. A check is decided only when its "
               "preconditions hold (converged runs, nets that learned their task, equal budgets, enough seeds); "
               "measured values are means over seeds or launches, with [interval] where there are several; rules, "
               "preconditions and tests are in Appendix C." + _scale_phrase(rec)))
    rows = [[c["statement"], *shown(c), c["verdict"], reason(c), c.get("kind", "stated")] for c in claims]
    s.add(Table(["claim", "published", "measured", "verdict", "reason", "kind"], rows, badges=BADGES, compact=True))
    for study in STUDY_NAMES:
        headline = inputs.read(results.headline, f"study_{study.lower()}") or {}
        own = [c for c in claims if c.get("study") == study]
        s.add(Text(study_sentence(study, own, headline)))
    for study, caption in (("a", "Study A: test mean IoU per (net, loss) against the colour baseline, and the "
                                  "separability of each pair of classes in the 2-D embedding of the latent code."),
                           ("b", "Study B: linear-probe test accuracy (published points as red stars) and "
                                 "reconstruction MSE per latent size."),
                           ("c", "Study C: test accuracy of each cell and regime over seeds, with the published "
                                 "single runs as red stars.")):
        s.add(inputs.figure(paths.glance_figure(f"study_{study}"), caption))
    return s

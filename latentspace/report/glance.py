""""Reproduction at a glance", the report's first section: the verdict of every claim (published against
measured), one sentence per study on what this run found, and one key figure per study.

It reads `metrics/verdicts.json` and the headline metrics that the verdicts stage writes; the key figures are
drawn by latentspace/report/glance_figures.py.
"""
from __future__ import annotations

from typing import Any

from latentspace.report.common import Inputs, fmt, pp
from latentspace.report.document import Note, Section, Table, Text
from latentspace.report.glance_figures import GLANCE_DIR
from latentspace.verdicts_base import NOT_REPRODUCED, NOT_RUN, REPRODUCED, UNDECIDED, VERDICTS

TITLE = "Reproduction at a glance"
VERDICTS_FILE = "metrics/verdicts.json"
BADGES = {REPRODUCED: "good", NOT_REPRODUCED: "bad", UNDECIDED: "open", NOT_RUN: "none"}
STUDY_NAMES = {"A": "Study A (rectangles, segmentation nets)", "B": "Study B (CIFAR-10 autoencoders)",
               "C": "Study C (MNIST pretraining)"}
QUALITATIVE = {"a-nn1-clean-clusters": "three clean clusters", "a-unet-one-apart": "one class apart, two mixed"}


def _interval(m: dict, show=fmt) -> str:
    if m.get("low") is None:
        return show(m.get("mean"))
    return f"{show(m['mean'])} [{show(m['low'])}, {show(m['high'])}]"


def _mean_pm(m: dict) -> str:
    return fmt(m.get("mean")) + (f" ± {fmt(m['std'], 2)}" if m.get("std") is not None else "")


def shown(claim: dict) -> tuple[str, str]:
    """(published, measured) of one claim as table cells."""
    kind, m, p = claim["id"].split(".")[0], claim.get("measured"), claim.get("published")
    if isinstance(p, dict):
        p = p.get("test_accuracy")
    pub = QUALITATIVE.get(kind, f"{p:.4f}" if isinstance(p, float) else fmt(p))
    if kind in ("c-pretraining-effect", "c-erasing-lowers-frozen") and isinstance(p, float):
        pub = pp(p)
    if claim["verdict"] == NOT_RUN or m is None:
        return pub, "–"
    if kind == "a-parameters":
        return f"{p:,}", f"{m:,}"
    if kind in QUALITATIVE:
        pairs = " / ".join(fmt(m["pairs"][k]["mean"], 3) for k in m["pairs"])
        apart = m.get("class_apart")
        return pub, (f"pairs {' / '.join(m['pairs'])}: {pairs}"
                     + (f"; class {apart} apart" if apart else "") + f" (`{m.get('layer')}`)")
    if kind == "b-below-half":
        best = max(m, key=lambda h: m[h]["mean"])
        return pub, f"highest {fmt(m[best]['mean'])} (hidden {best})"
    if kind == "b-mse-decreasing":
        sizes = list(m)
        return pub, " → ".join(fmt(m[h]["mean"], 3) for h in sizes) + f" (hidden {sizes[0]} → {sizes[-1]})"
    if kind == "b-probe-accuracy":
        return pub, _mean_pm(m)
    if kind == "c-cells":
        return pub, _interval(m["test_accuracy"])
    if kind == "c-order":
        ok = sum(r["frozen"] < min(r["fine_tuned"], r["scratch"]) for r in m.values())
        seeds = sum(r["seeds_in_order"] for r in m.values()), sum(r["seeds"] for r in m.values())
        return "frozen lowest in every cell", f"in {ok} of {len(m)} cells ({seeds[0]} of {seeds[1]} seeds)"
    if kind in ("c-pretraining-effect", "c-erasing-lowers-frozen"):
        return pub, _interval(m, lambda v: pp(v))
    return pub, fmt(m)


def counts_phrase(claims: list[dict]) -> str:
    counts = {v: sum(c["verdict"] == v for c in claims) for v in VERDICTS}
    return ", ".join(f"{n} {v}" for v, n in counts.items() if n) + f" (of {len(claims)} claims)"


def _range(values: list[float]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.3f}" if lo == hi else f"{lo:.3f}–{hi:.3f}"


def study_sentence(study: str, claims: list[dict], headline: dict) -> str:
    """One sentence on what this run found for the study: its verdict counts and its main numbers."""
    what = f"{STUDY_NAMES[study]}: {counts_phrase(claims) if claims else 'no claims'}."
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


def glance_section(inputs: Inputs, params: dict) -> Section:
    s = Section(TITLE)
    if not inputs.exists(VERDICTS_FILE):
        return s.add(Note(f"No verdicts yet: `{VERDICTS_FILE}` is written by the `verdicts` stage "
                          f"(`dvc repro verdicts`)."))
    rec: dict[str, Any] = inputs.json(VERDICTS_FILE)
    claims = rec.get("claims") or []
    s.add(Text(f"Every claim of the three source studies (`references.yaml`) against this run's measurements "
               f"(`{VERDICTS_FILE}`): {counts_phrase(claims)}. Measured values are means over seeds or launches, "
               "with [95% interval] where there are several; rules and tests are in Appendix C."))
    rows = []
    for c in claims:
        pub, measured = shown(c)
        rows.append([c["statement"], pub, measured, c["verdict"]])
    s.add(Table(["claim", "published", "measured", "verdict"], rows, badges=BADGES, compact=True))
    decide: dict[str, int] = {}
    for c in claims:
        if c["verdict"] == UNDECIDED and c.get("decide"):
            decide[c["decide"]] = decide.get(c["decide"], 0) + 1
    if decide:
        s.add(Text("What would decide the undecided claims: " + "; ".join(
            f"{how} ({n} claim{'s' if n > 1 else ''})" for how, n in decide.items()) + "."))
    not_run = sum(c["verdict"] == NOT_RUN for c in claims)
    if not_run:
        s.add(Text(f"{not_run} claim{'s' if not_run > 1 else ''} could not be checked because what they need has "
                   "not run; Appendix C says what to run for each."))
    for study in STUDY_NAMES:
        head_rel = f"metrics/headline/study_{study.lower()}.json"
        headline = inputs.json(head_rel) if inputs.exists(head_rel) else {}
        own = [c for c in claims if c.get("study") == study]
        s.add(Text(study_sentence(study, own, headline)))
    for study, caption in (("a", "Study A: test mean IoU per (net, loss) against the colour baseline, and the "
                                  "separability of each pair of classes in the 2-D embedding of the latent code."),
                           ("b", "Study B: linear-probe test accuracy (published points as red stars) and "
                                 "reconstruction MSE per latent size."),
                           ("c", "Study C: test accuracy of each cell and regime over seeds, with the published "
                                 "single runs as red stars.")):
        s.add(inputs.figure(f"{GLANCE_DIR}/study_{study}.png", caption))
    return s

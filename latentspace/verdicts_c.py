"""Reproduction rules of Study C (MNIST: does autoencoder pretraining help a classifier?).

The published study ran each of its 12 cells once; this run repeats every cell over seeds, and the regimes of one
seed share its pretrained autoencoder, so regime differences are paired by seed. Accuracies are fractions of 1;
rules state their tolerances in percentage points (pp).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from latentspace import stats
from latentspace.constants import STUDY_C_ARCHS, STUDY_C_CELLS, STUDY_C_REGIMES
from latentspace.verdicts_base import Context, not_run, record, spread, verdict

RUN_STUDY_C = "run Study C (`dvc repro study_c`)"
PREDICTIONS = "data/study_c/predictions/{cell}.npz"


def cells(ctx: Context) -> dict[str, dict]:
    found = {cell: ctx.metrics(f"metrics/study_c/{cell}.json") for cell in STUDY_C_CELLS}
    return {k: v for k, v in found.items() if v}


def by_seed(rec: dict, regime: str, metric: str = "test_accuracy") -> dict[int, float]:
    """{seed: value} of one regime: the per-seed records where there are, else the summary's values in seed order."""
    out = {}
    for r in rec.get("per_seed") or []:
        v = (r.get(regime) or {}).get(metric)
        if "seed" in r and isinstance(v, (int, float)):
            out[int(r["seed"])] = float(v)
    if out:
        return out
    vals = ((rec.get(regime) or {}).get(metric) or {}).get("values") or []
    return {int(s): float(v) for s, v in zip(rec.get("seeds") or range(len(vals)), vals)}


def published(ctx: Context, claim: dict, cell: str, regime: str, metric: str = "test_accuracy") -> float:
    return float(ctx.fact(claim)["values"][cell][regime][metric])


def c_cells(ctx: Context, claim: dict) -> list[dict]:
    found, conf, tol = cells(ctx), ctx.rules["confidence"], ctx.rules["accuracy_tolerance_pp"]
    rule = (f"published accuracy inside this run's {conf:.0%} t interval over seeds (interval at most "
            f"{ctx.rules['max_interval_pp']} pp wide), or |mean - published| <= {tol} pp")
    out = []
    for cell in STUDY_C_CELLS:
        for regime in STUDY_C_REGIMES:
            cid, pub = f"{claim['id']}.{cell}.{regime}", published(ctx, claim, cell, regime)
            statement = f"Test accuracy of {cell} {regime.replace('_', '-')} as published."
            if cell not in found:
                out.append(not_run(claim, cid, RUN_STUDY_C, pub, statement))
                continue
            acc = spread(list(by_seed(found[cell], regime).values()), conf)
            f1 = spread(list(by_seed(found[cell], regime, "test_macro_f1").values()), conf)
            diff = acc["mean"] - pub
            inside = acc["low"] is not None and acc["low"] <= pub <= acc["high"]
            narrow = acc["low"] is not None and (acc["high"] - acc["low"]) * 100 <= ctx.rules["max_interval_pp"]
            holds = True if abs(diff) * 100 <= tol or (inside and narrow) else (None if inside else False)
            out.append(record(claim, cid, statement=statement, measured={"test_accuracy": acc, "test_macro_f1": f1},
                              published={"test_accuracy": pub,
                                         "test_macro_f1": published(ctx, claim, cell, regime, "test_macro_f1")},
                              difference=diff, rule=rule, verdict_decide=verdict(holds, ctx, "C")))
    return out


def c_order(ctx: Context, claim: dict) -> list[dict]:
    found = cells(ctx)
    if not found:
        return [not_run(claim, claim["id"], RUN_STUDY_C, "frozen < fine-tuned and frozen < scratch in every cell")]
    measured, holds = {}, True
    for cell, rec in found.items():
        acc = {r: by_seed(rec, r) for r in STUDY_C_REGIMES}
        means = {r: float(np.mean(list(v.values()))) for r, v in acc.items()}
        seeds = sorted(set(acc["frozen"]) & set(acc["fine_tuned"]) & set(acc["scratch"]))
        below = sum(acc["frozen"][s] < acc["fine_tuned"][s] and acc["frozen"][s] < acc["scratch"][s] for s in seeds)
        measured[cell] = {"frozen": means["frozen"], "fine_tuned": means["fine_tuned"], "scratch": means["scratch"],
                          "seeds_in_order": below, "seeds": len(seeds)}
        holds &= means["frozen"] < means["fine_tuned"] and means["frozen"] < means["scratch"]
    missing = [c for c in STUDY_C_CELLS if c not in found]
    result = verdict(holds, ctx, "C")
    if holds and missing:
        result = verdict(None, ctx, "C", undecided_by=f"the cells not run yet ({', '.join(missing)})")
    published_order = all(ctx.fact(claim)["values"][c]["frozen"]["test_accuracy"]
                          < min(ctx.fact(claim)["values"][c][r]["test_accuracy"] for r in ("fine_tuned", "scratch"))
                          for c in STUDY_C_CELLS)
    return [record(claim, claim["id"], measured=measured, published=f"in order in every cell: {published_order}",
                   rule="in every cell the mean over seeds of frozen is below fine-tuned and below scratch "
                        "(seeds_in_order counts the seeds where it holds seed by seed)", verdict_decide=result,
                   note=f"cells not run: {', '.join(missing)}" if missing else None)]


def load_predictions(ctx: Context, cell: str) -> dict | None:
    """The test predictions of one cell (y_test, seeds, one (S, N) array per regime), or None."""
    rel = PREDICTIONS.format(cell=cell)
    path = ctx.root / rel
    if not path.exists():
        return None
    try:
        with np.load(path) as z:
            data = {k: np.asarray(z[k]) for k in ("y_test", "seeds", *STUDY_C_REGIMES)}
    except (OSError, KeyError, ValueError) as e:
        ctx.notes.append(f"`{rel}` could not be read ({type(e).__name__}); no McNemar test for {cell}")
        return None
    return data


def mcnemar_per_seed(pred: dict | None, a: str, b: str) -> list[dict] | None:
    """McNemar's exact test of regime a against regime b on the test images, one per seed."""
    if pred is None:
        return None
    y = pred["y_test"]
    return [{"seed": int(s), **stats.mcnemar_exact(pred[a][k] == y, pred[b][k] == y)}
            for k, s in enumerate(pred["seeds"])]


def _paired(ctx: Context, a: dict[int, float], b: dict[int, float]) -> tuple[list[int], dict]:
    seeds = sorted(set(a) & set(b))
    return seeds, stats.paired_comparison([a[s] for s in seeds], [b[s] for s in seeds], ctx.rules["confidence"])


def c_pretraining_effect(ctx: Context, claim: dict) -> list[dict]:
    found, alpha, conf = cells(ctx), ctx.rules["alpha"], ctx.rules["confidence"]
    rule = (f"published difference inside the {conf:.0%} t interval of the mean paired difference over seeds "
            f"(interval at most {ctx.rules['max_interval_pp']} pp wide, else undecided)")
    out = []
    for cell in STUDY_C_CELLS:
        cid = f"{claim['id']}.{cell}"
        pub = published(ctx, claim, cell, "fine_tuned") - published(ctx, claim, cell, "scratch")
        statement = f"Fine-tuned minus scratch test accuracy in {cell} as published."
        if cell not in found:
            out.append(not_run(claim, cid, RUN_STUDY_C, pub, statement))
            continue
        seeds, cmp = _paired(ctx, by_seed(found[cell], "fine_tuned"), by_seed(found[cell], "scratch"))
        iv = cmp["mean_difference"]
        mcnemar = mcnemar_per_seed(load_predictions(ctx, cell), "fine_tuned", "scratch")
        if iv["low"] is None or (iv["high"] - iv["low"]) * 100 > ctx.rules["max_interval_pp"]:
            holds = None
        else:
            holds = iv["low"] <= pub <= iv["high"]
        test = {"seeds": seeds, "paired_t": cmp["paired_t"], "wilcoxon": cmp["wilcoxon"],
                "sign_test": cmp["sign_test"], "mcnemar_per_seed": mcnemar,
                "mcnemar_significant_seeds": None if mcnemar is None
                else sum(m["p_value"] is not None and m["p_value"] < alpha for m in mcnemar), "alpha": alpha}
        out.append(record(claim, cid, statement=statement,
                          measured={**iv, "values": cmp["differences"]}, published=pub,
                          difference=None if iv["mean"] is None else iv["mean"] - pub, rule=rule, test=test,
                          verdict_decide=verdict(holds, ctx, "C"),
                          note=None if mcnemar is not None else f"no test predictions `{PREDICTIONS.format(cell=cell)}`"))
    return out


def c_erasing_lowers_frozen(ctx: Context, claim: dict) -> list[dict]:
    found, conf = cells(ctx), ctx.rules["confidence"]
    rule = (f"the {conf:.0%} t interval of the mean paired difference (erasing - none, same seed) lies below 0; "
            "above 0 fails; an interval containing 0 is undecided")
    out = []
    for arch in STUDY_C_ARCHS:
        cid, on, off = f"{claim['id']}.{arch}", f"{arch}-erasing", f"{arch}-none"
        pub = published(ctx, claim, on, "frozen") - published(ctx, claim, off, "frozen")
        statement = f"RandomErasing lowers the frozen accuracy of the {arch} architecture."
        if on not in found or off not in found:
            out.append(not_run(claim, cid, RUN_STUDY_C, pub, statement))
            continue
        seeds, cmp = _paired(ctx, by_seed(found[on], "frozen"), by_seed(found[off], "frozen"))
        iv = cmp["mean_difference"]
        if iv["low"] is None:
            holds = None
        else:
            holds = True if iv["high"] < 0 else (False if iv["low"] > 0 else None)
        out.append(record(claim, cid, statement=statement, measured={**iv, "values": cmp["differences"]},
                          published=pub, difference=None if iv["mean"] is None else iv["mean"] - pub, rule=rule,
                          test={"seeds": seeds, "paired_t": cmp["paired_t"], "wilcoxon": cmp["wilcoxon"],
                                "sign_test": cmp["sign_test"],
                                "published_inside_interval": iv["low"] is not None and iv["low"] <= pub <= iv["high"]},
                          verdict_decide=verdict(holds, ctx, "C")))
    return out


EVALUATORS: dict[str, Callable[[Context, dict], list[dict]]] = {
    "c-cells": c_cells, "c-order": c_order, "c-pretraining-effect": c_pretraining_effect,
    "c-erasing-lowers-frozen": c_erasing_lowers_frozen,
}

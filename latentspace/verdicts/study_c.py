"""Reproduction rules of Study C (MNIST: does autoencoder pretraining help a classifier?).

The published study ran each of its 12 cells once; this run repeats every cell over seeds, and the regimes of one
seed share its pretrained autoencoder, so regime differences are paired by seed. Accuracies are fractions of 1;
margins are in percentage points (pp) in params.yaml `verdicts`.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from latentspace import results, stats
from latentspace.constants import STUDY_C_ARCHS, STUDY_C_CELLS, STUDY_C_REGIMES
from latentspace.verdicts.base import (Context, check, combine, converged, enough, not_run, precondition,
                                       same_budget)
from latentspace.verdicts.references import FACT

RUN_STUDY_C = "run Study C (`dvc repro study_c`)"
MORE_SEEDS = "more seeds (`study_c.seeds`), so that the interval narrows"
RUN_NAMES = {"autoencoder": "autoencoders", "frozen": "frozen heads", "fine_tuned": "fine-tuned classifiers",
             "scratch": "scratch classifiers"}
# Which pretrained parts a regime's result rests on: frozen and fine-tuned start from the seed's autoencoder.
RESTS_ON = {"frozen": ("autoencoder", "frozen"), "fine_tuned": ("autoencoder", "fine_tuned"), "scratch": ("scratch",)}


def cap_param(cell: str, run: str) -> str:
    arch, augment = cell.split("-")
    key = {"autoencoder": "ae_max_epochs", "fine_tuned": "classifier_max_epochs", "scratch": "classifier_max_epochs",
           "frozen": "head_max_epochs_erasing" if augment == "erasing" else "head_max_epochs"}[run]
    return f"`study_c.architectures.{arch}.{key}`"


def preconditions(ctx: Context, rec: dict, cell: str, regimes: tuple[str, ...], seeds: list[int]) -> list[dict]:
    """Enough seeds, and every run the regimes rest on converged (one precondition per kind of run)."""
    out = [enough(len(seeds), ctx.rules["min_seeds"], f"seeds of {cell}", MORE_SEEDS.split(",")[0])]
    for run in dict.fromkeys(r for regime in regimes for r in RESTS_ON[regime]):
        by_seed = results.runs_by_seed(rec, run)
        out.append(converged(((f"{cell} seed {s}", results.stopping(by_seed.get(s))) for s in seeds),
                             f"{RUN_NAMES[run]} of {cell}", cap_param(cell, run)))
    return out


def budget(recs: dict[str, dict], run: str, what: str, fix: str) -> dict:
    """The arms (label -> cell record) trained `run` under the same epoch cap."""
    return same_budget({arm: {results.stopping(r).get("max_epochs") for r in results.runs_by_seed(rec, run).values()}
                        or {None} for arm, rec in recs.items()}, what, fix)


def published(ctx: Context, claim: dict, cell: str, regime: str, metric: str = "test_accuracy") -> float:
    return float(ctx.fact(claim)["values"][cell][regime][metric])


def _scores(ctx: Context, claim: dict, metric: str, what: str) -> list[dict]:
    found, alpha, margin = results.study_c_cells(ctx.root, ctx.notes), ctx.rules["alpha"], ctx.rules["accuracy_margin_pp"]
    out = []
    for cell in STUDY_C_CELLS:
        for regime in STUDY_C_REGIMES:
            cid, pub = f"{claim['id']}.{cell}.{regime}", published(ctx, claim, cell, regime, metric)
            statement = f"Test {what} of {cell} {regime.replace('_', '-')} as published."
            if cell not in found:
                out.append(not_run(claim, cid, RUN_STUDY_C, pub, statement))
                continue
            values = results.by_seed(found[cell], regime, metric)
            test = stats.equivalence(list(values.values()), pub, margin / 100, alpha)
            out.append(check(claim, cid, statement=statement, published=pub, test=test,
                             measured=stats.spread(list(values.values()), ctx.rules["confidence"]),
                             difference=test["difference"]["mean"],
                             rule=f"TOST: the {1 - 2 * alpha:.0%} interval of mean - published inside +-{margin} pp; "
                                  "entirely outside fails",
                             holds=test["holds"], more=MORE_SEEDS,
                             preconditions=preconditions(ctx, found[cell], cell, (regime,), sorted(values))))
    return out


def c_cells(ctx: Context, claim: dict) -> list[dict]:
    return _scores(ctx, claim, "test_accuracy", "accuracy")


def c_macro_f1(ctx: Context, claim: dict) -> list[dict]:
    return _scores(ctx, claim, "test_macro_f1", "macro F1")


def mcnemar_per_seed(pred: dict | None, a: str, b: str) -> list[dict] | None:
    """McNemar's exact test of regime a against regime b on the test images, one per seed."""
    if pred is None:
        return None
    y = pred["y_test"]
    return [{"seed": int(s), **stats.mcnemar_exact(pred[a][k] == y, pred[b][k] == y)}
            for k, s in enumerate(pred["seeds"])]


def _gain(rec: dict) -> dict[int, float]:
    ft, sc = results.by_seed(rec, "fine_tuned"), results.by_seed(rec, "scratch")
    return {s: ft[s] - sc[s] for s in sorted(set(ft) & set(sc))}


def _gain_test(ctx: Context, diffs: list[float], pred: dict | None) -> tuple[dict, dict]:
    neg, conf, alpha = ctx.rules["negligible_pp"] / 100, ctx.rules["confidence"], ctx.rules["alpha"]
    test = stats.directional(diffs, neg, conf)
    mcnemar = mcnemar_per_seed(pred, "fine_tuned", "scratch")
    extra = {"wilcoxon": stats.wilcoxon_signed_rank(diffs), "sign_test": stats.sign_test(diffs),
             "paired_t": stats.paired_t(diffs, [0.0] * len(diffs)), "mcnemar_per_seed": mcnemar,
             "mcnemar_significant_seeds": None if mcnemar is None else
             {"fine_tuned": sum(m["p_value"] < alpha and m["only_a"] > m["only_b"] for m in mcnemar),
              "scratch": sum(m["p_value"] < alpha and m["only_b"] > m["only_a"] for m in mcnemar)}}
    return test, {**test, **extra}


def c_finetune_gain(ctx: Context, claim: dict) -> list[dict]:
    found, neg = results.study_c_cells(ctx.root, ctx.notes), ctx.rules["negligible_pp"]
    rule = (f"the {ctx.rules['confidence']:.0%} interval of the mean paired gain fine-tuned - scratch (same seed) "
            f"above 0 and not inside +-{neg} pp; below 0 or inside fails (McNemar per seed: evidence, not the rule)")
    out, pooled_pre = [], []
    for cell in STUDY_C_CELLS:
        cid, statement = f"{claim['id']}.{cell}", f"Fine-tuning beats training from scratch in {cell}."
        if cell not in found:
            out.append(not_run(claim, cid, RUN_STUDY_C, "fine-tuned > scratch", statement))
            continue
        gain = _gain(found[cell])
        pre = [*preconditions(ctx, found[cell], cell, ("fine_tuned", "scratch"), sorted(gain)),
               _same_classifier_cap(found[cell], cell)]
        pooled_pre += pre
        test, shown = _gain_test(ctx, list(gain.values()), results.study_c_predictions(ctx.root, cell, ctx.notes))
        out.append(check(claim, cid, statement=statement, published="fine-tuned > scratch",
                         measured=stats.spread(list(gain.values()), ctx.rules["confidence"]),
                         difference=test["difference"]["mean"], rule=rule, test=shown, holds=test["holds"],
                         preconditions=pre, more=MORE_SEEDS))
    if found:
        seeds = sorted(set.intersection(*(set(_gain(r)) for r in found.values())))
        pooled = [float(np.mean([_gain(r)[s] for r in found.values()])) for s in seeds]
        missing = [c for c in STUDY_C_CELLS if c not in found]
        pre = [precondition("all cells", not missing, f"cells not run: {', '.join(missing)}" if missing
                            else "all four cells ran", RUN_STUDY_C),
               *[p for p in pooled_pre if p["held"] is not True]]
        test, shown = _gain_test(ctx, pooled, None)
        out.append(check(claim, f"{claim['id']}.pooled", statement="Fine-tuning beats training from scratch, "
                         "pooled over the cells (per seed, the mean gain over the cells).",
                         published="fine-tuned > scratch", measured=stats.spread(pooled, ctx.rules["confidence"]),
                         difference=test["difference"]["mean"], rule=rule.split(" (McNemar")[0], test=shown,
                         holds=test["holds"], preconditions=pre,
                         more=MORE_SEEDS))
    return out


def _same_classifier_cap(rec: dict, cell: str) -> dict:
    """Fine-tuned and scratch of one cell under the same epoch cap (they share `classifier_max_epochs`)."""
    return same_budget({regime: {results.stopping(r).get("max_epochs") for r in results.runs_by_seed(rec, regime).values()}
                        or {None} for regime in ("fine_tuned", "scratch")}, f"epoch cap of fine-tuned and scratch "
                       f"in {cell}", cap_param(cell, "fine_tuned"))


def c_gain_as_published(ctx: Context, claim: dict) -> list[dict]:
    found, alpha, margin = results.study_c_cells(ctx.root, ctx.notes), ctx.rules["alpha"], ctx.rules["difference_margin_pp"]
    out = []
    for cell in STUDY_C_CELLS:
        cid = f"{claim['id']}.{cell}"
        pub = published(ctx, claim, cell, "fine_tuned") - published(ctx, claim, cell, "scratch")
        statement = f"Fine-tuned minus scratch test accuracy in {cell} as published."
        if cell not in found:
            out.append(not_run(claim, cid, RUN_STUDY_C, pub, statement))
            continue
        gain = _gain(found[cell])
        test = stats.equivalence(list(gain.values()), pub, margin / 100, alpha)
        out.append(check(claim, cid, statement=statement, published=pub,
                         measured=stats.spread(list(gain.values()), ctx.rules["confidence"]),
                         difference=test["difference"]["mean"], test=test, holds=test["holds"], more=MORE_SEEDS,
                         rule=f"TOST: the {1 - 2 * alpha:.0%} interval of the mean paired difference - published "
                              f"inside +-{margin} pp; entirely outside fails",
                         preconditions=[*preconditions(ctx, found[cell], cell, ("fine_tuned", "scratch"), sorted(gain)),
                                        _same_classifier_cap(found[cell], cell)]))
    return out


def c_order(ctx: Context, claim: dict) -> list[dict]:
    found, conf, neg = results.study_c_cells(ctx.root, ctx.notes), ctx.rules["confidence"], ctx.rules["negligible_pp"]
    out = []
    for cell in STUDY_C_CELLS:
        cid, statement = f"{claim['id']}.{cell}", f"The frozen head is below fine-tuned and below scratch in {cell}."
        if cell not in found:
            out.append(not_run(claim, cid, RUN_STUDY_C, "frozen lowest", statement))
            continue
        acc = {r: results.by_seed(found[cell], r) for r in STUDY_C_REGIMES}
        seeds = sorted(set(acc["frozen"]) & set(acc["fine_tuned"]) & set(acc["scratch"]))
        tests = {f"{r}-frozen": stats.directional([acc[r][s] - acc["frozen"][s] for s in seeds], neg / 100, conf)
                 for r in ("fine_tuned", "scratch")}
        out.append(check(claim, cid, statement=statement, published="frozen lowest",
                         measured={r: stats.spread([acc[r][s] for s in seeds], conf) for r in STUDY_C_REGIMES},
                         test=tests, holds=combine(t["holds"] for t in tests.values()), more=MORE_SEEDS,
                         rule=f"fine-tuned - frozen and scratch - frozen (same seed): each {conf:.0%} interval above 0 "
                              f"and not inside +-{neg} pp",
                         preconditions=preconditions(ctx, found[cell], cell, STUDY_C_REGIMES, seeds)))
    return out


def c_erasing_lowers_frozen(ctx: Context, claim: dict) -> list[dict]:
    found, conf, neg = results.study_c_cells(ctx.root, ctx.notes), ctx.rules["confidence"], ctx.rules["negligible_pp"]
    out = []
    for arch in STUDY_C_ARCHS:
        cid, on, off = f"{claim['id']}.{arch}", f"{arch}-erasing", f"{arch}-none"
        pub = published(ctx, claim, on, "frozen") - published(ctx, claim, off, "frozen")
        statement = f"RandomErasing lowers the frozen accuracy of the {arch} architecture."
        if on not in found or off not in found:
            out.append(not_run(claim, cid, RUN_STUDY_C, pub, statement))
            continue
        a, b = results.by_seed(found[off], "frozen"), results.by_seed(found[on], "frozen")
        seeds = sorted(set(a) & set(b))
        test = stats.directional([a[s] - b[s] for s in seeds], neg / 100, conf)
        arms = {"none": found[off], "erasing": found[on]}
        pre = [*preconditions(ctx, found[off], off, ("frozen",), seeds),
               *preconditions(ctx, found[on], on, ("frozen",), seeds)[1:],
               budget(arms, "frozen", f"frozen head epoch cap of {arch} (none, erasing)",
                      f"`study_c.architectures.{arch}.head_max_epochs_erasing` equal to its `head_max_epochs`"),
               budget(arms, "autoencoder", f"autoencoder epoch cap of {arch}", cap_param(off, "autoencoder"))]
        out.append(check(claim, cid, statement=statement, published=pub, test=test,
                         measured=stats.spread([b[s] - a[s] for s in seeds], conf),
                         difference=-test["difference"]["mean"] if test["difference"]["mean"] is not None else None,
                         rule=f"none - erasing frozen accuracy (same seed): the {conf:.0%} interval above 0 and not "
                              f"inside +-{neg} pp; below 0 or inside fails", holds=test["holds"],
                         preconditions=pre, more=MORE_SEEDS))
    return out


RULES: dict[str, Callable[[Context, dict], list[dict]]] = {
    "c-cells": c_cells, "c-macro-f1": c_macro_f1, "c-finetune-gain": c_finetune_gain,
    "c-gain-as-published": c_gain_as_published, "c-order": c_order, "c-erasing-lowers-frozen": c_erasing_lowers_frozen,
}
CLAIM_KEYS: dict[str, dict] = {
    "c-cells": {"facts": FACT("study_c_test_scores")}, "c-macro-f1": {"facts": FACT("study_c_test_scores")},
    "c-finetune-gain": {}, "c-gain-as-published": {"facts": FACT("study_c_test_scores")},
    "c-order": {"facts": FACT("study_c_test_scores")}, "c-erasing-lowers-frozen": {"facts": FACT("study_c_test_scores")},
}

"""Reproduction rules of Study B (CIFAR-10 autoencoders and linear probes per latent size), from the source's text:
reconstruction loss per size, probe accuracy, the hardest classes, class profiles and the named confusions.

Runs of one seed share the seed across sizes, so differences between sizes are paired by seed. Confusion
matrices have the true class in rows, the predicted one in columns.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from latentspace import results, stats
from latentspace.constants import CIFAR10_CLASSES
from latentspace.verdicts.base import Context, check, combine, converged, enough, every_seed, not_run, same_budget
from latentspace.verdicts.references import CLASS_LIST, CONFUSIONS, FACT

RUN_B = "run Study B (`dvc repro study_b_summary`)"
MORE_SEEDS = "more seeds (`study_b.repeat_seeds`, for every size in `study_b.repeat_sizes`)"
INDEX = {c: i for i, c in enumerate(CIFAR10_CLASSES)}


def _values(runs: dict, h: int, part: str, key: str) -> dict[int, float]:
    return {s: float(r[part][key]) for s, r in runs.get(h, {}).items()
            if r.get(part) and isinstance(r[part].get(key), (int, float))}


def _paired(a: dict[int, float], b: dict[int, float]) -> list[float]:
    """a - b over the seeds both have."""
    return [a[s] - b[s] for s in sorted(set(a) & set(b))]


def _preconditions(ctx: Context, runs: dict, sizes: list[int], parts=("ae", "probe"), budget: bool = False) -> list[dict]:
    caps = {"ae": "`study_b.ae_max_epochs`", "probe": "`study_b.probe_max_epochs`"}
    names = {"ae": "autoencoders", "probe": "probes"}
    out = [enough(min((len(runs.get(h, {})) for h in sizes), default=0), ctx.rules["min_seeds"],
                  f"seeds at the fewest of sizes {', '.join(map(str, sizes))}", MORE_SEEDS)]
    for part in parts:
        out.append(converged(((f"{part}-{h} seed {s}", results.stopping(r[part])) for h in sizes
                              for s, r in runs.get(h, {}).items() if r.get(part)), names[part], caps[part]))
    if budget:
        arms = {str(h): {(results.stopping(r["ae"])["max_epochs"], r["ae"].get("train_images"))
                         if r.get("ae") and results.stopping(r["ae"])["max_epochs"] is not None else None
                         for r in runs.get(h, {}).values()} for h in sizes}
        out.append(same_budget(arms, "autoencoder (epoch cap, training images)",
                               "the same `study_b.ae_max_epochs` and `study_b.ae_train_size` for every size"))
    return out


def _need_sizes(claim: dict, runs: dict, sizes: list[int]) -> dict | None:
    missing = [h for h in sizes if h not in runs]
    if missing:
        return not_run(claim, claim["id"], f"{RUN_B} with hidden sizes {', '.join(map(str, missing))} "
                                           "(`study_b.hidden_sizes`)")
    return None


def b_mse_decreasing(ctx: Context, claim: dict) -> list[dict]:
    runs = results.study_b_runs(ctx.root, ctx.notes)
    sizes = [h for h in runs if h <= 256]
    if len(sizes) < 2:
        return [not_run(claim, claim["id"], f"{RUN_B} with at least two hidden sizes up to 256")]
    steps = {}
    for small, big in zip(sizes, sizes[1:]):
        a, b = _values(runs, small, "ae", "test_mse"), _values(runs, big, "ae", "test_mse")
        steps[f"{small}->{big}"] = stats.directional(_paired(a, b), ctx.rules["mse_negligible_rel"] * np.mean(
            list(b.values())), ctx.rules["confidence"])
    rel = ctx.rules["mse_negligible_rel"]
    return [check(claim, claim["id"], published="decreasing in latent size",
                  measured={str(h): stats.spread(list(_values(runs, h, "ae", "test_mse").values())) for h in sizes},
                  test={"steps": steps}, rule=f"every step to the next larger size: the {ctx.rules['confidence']:.0%} "
                  f"interval of the paired MSE drop (same seed) above 0 and not inside +-{rel:.0%} of the larger "
                  "size's MSE", holds=combine(s["holds"] for s in steps.values()),
                  preconditions=_preconditions(ctx, runs, sizes, ("ae",), budget=True), more=MORE_SEEDS)]


def b_mse_256_512(ctx: Context, claim: dict) -> list[dict]:
    runs = results.study_b_runs(ctx.root, ctx.notes)
    if (missing := _need_sizes(claim, runs, [256, 512])) is not None:
        return [missing]
    a, b = _values(runs, 512, "ae", "test_mse"), _values(runs, 256, "ae", "test_mse")
    margin = ctx.rules["mse_margin_rel"] * float(np.mean(list(b.values())))
    test = stats.equivalence(_paired(a, b), 0.0, margin, ctx.rules["alpha"])
    return [check(claim, claim["id"], published="insignificant difference", measured=test["difference"],
                  difference=test["difference"]["mean"], test=test,
                  rule=f"TOST: the {1 - 2 * ctx.rules['alpha']:.0%} interval of MSE(512) - MSE(256) (same seed) "
                       f"inside +-{ctx.rules['mse_margin_rel']:.0%} of MSE(256); entirely outside fails",
                  holds=test["holds"], preconditions=_preconditions(ctx, runs, [256, 512], ("ae",), budget=True),
                  more=MORE_SEEDS)]


def b_below_half(ctx: Context, claim: dict) -> list[dict]:
    runs, ceiling = results.study_b_runs(ctx.root, ctx.notes), ctx.rules["probe_ceiling"]
    if not runs:
        return [not_run(claim, claim["id"], RUN_B, f"< {ceiling} at every size")]
    acc = {h: _values(runs, h, "probe", "test_accuracy") for h in runs}
    per_size = {str(h): stats.directional([ceiling - v for v in a.values()], 0.0, ctx.rules["confidence"])
                for h, a in acc.items()}
    return [check(claim, claim["id"], published=f"< {ceiling} at every size",
                  measured={str(h): stats.spread(list(a.values())) for h, a in acc.items()},
                  difference=max(max(a.values()) for a in acc.values()) - ceiling, test={"per_size": per_size},
                  rule=f"at every size the {ctx.rules['confidence']:.0%} interval of the probe's test accuracy over "
                       f"seeds below {ceiling}; a size whose interval lies above it fails",
                  holds=combine(t["holds"] for t in per_size.values()),
                  preconditions=_preconditions(ctx, runs, list(runs)), more=MORE_SEEDS)]


def b_best_256_512(ctx: Context, claim: dict) -> list[dict]:
    runs = results.study_b_runs(ctx.root, ctx.notes)
    smaller = [h for h in runs if h < 256]
    if (missing := _need_sizes(claim, runs, [256, 512])) is not None or not smaller:
        return [missing or not_run(claim, claim["id"], f"{RUN_B} with a hidden size below 256")]
    acc = {h: _values(runs, h, "probe", "test_accuracy") for h in runs}
    neg = ctx.rules["probe_negligible_pp"] / 100
    tests = {f"{big}-{h}": stats.directional(_paired(acc[big], acc[h]), neg, ctx.rules["confidence"])
             for big in (256, 512) for h in smaller}
    return [check(claim, claim["id"], published="256 and 512 best",
                  measured={str(h): stats.spread(list(a.values())) for h, a in acc.items()}, test=tests,
                  rule=f"for 256 and for 512 against every smaller size: the {ctx.rules['confidence']:.0%} interval "
                       f"of the paired accuracy gain (same seed) above 0 and not inside +-{neg * 100:g} pp",
                  holds=combine(t["holds"] for t in tests.values()),
                  preconditions=_preconditions(ctx, runs, list(runs)), more=MORE_SEEDS)]


def b_probe_accuracy(ctx: Context, claim: dict) -> list[dict]:
    runs, margin, alpha = results.study_b_runs(ctx.root, ctx.notes), ctx.rules["probe_margin_pp"], ctx.rules["alpha"]
    summary = results.study_b_summary(ctx.root, ctx.notes) or {}
    data = summary.get("data") or {}
    drop = data.get("jpeg_roundtrip_drop")
    note = (f"this run's CIFAR-10 images are JPEG-decoded (the offline copy); one more JPEG round trip changes "
            f"the probe's test accuracy by {drop * 100:+.2f} pp" if data.get("jpeg_decoded")
            and isinstance(drop, (int, float)) else None)
    out = []
    for h, published in ctx.fact(claim)["values"].items():
        cid, h = f"{claim['id']}.{h}", int(h)
        statement = f"Probe test accuracy at hidden size {h} as published."
        if h not in runs:
            out.append(not_run(claim, cid, f"add {h} to `study_b.hidden_sizes`", published, statement))
            continue
        acc = list(_values(runs, h, "probe", "test_accuracy").values())
        test = stats.equivalence(acc, published, margin / 100, alpha)
        out.append(check(claim, cid, statement=statement, measured=stats.spread(acc, ctx.rules["confidence"]),
                         published=published, difference=float(np.mean(acc)) - published, test=test, note=note,
                         rule=f"TOST: the {1 - 2 * alpha:.0%} interval of mean - published inside +-{margin} pp; "
                              "entirely outside fails", holds=test["holds"],
                         preconditions=_preconditions(ctx, runs, [h]), more=MORE_SEEDS))
    return out


def two_lowest(recall: list[float]) -> set[str]:
    return {CIFAR10_CLASSES[i] for i in np.argsort(recall, kind="stable")[:2]}


def b_hardest_classes(ctx: Context, claim: dict) -> list[dict]:
    runs, want = results.study_b_runs(ctx.root, ctx.notes), set(claim["classes"])
    if not runs:
        return [not_run(claim, claim["id"], RUN_B, sorted(want))]
    lowest = {h: {s: sorted(two_lowest(results.per_class(r["probe"], "recall")))
                  for s, r in seeds.items() if r.get("probe") and results.per_class(r["probe"], "recall")}
              for h, seeds in runs.items()}
    per_size = {h: every_seed([set(v) == want for v in by_seed.values()]) for h, by_seed in lowest.items()}
    return [check(claim, claim["id"], published=sorted(want), measured={str(h): v for h, v in lowest.items()},
                  rule=f"the two lowest per-class recalls are {' and '.join(sorted(want))} in every seed of every size; "
                       "a size where they are not in any seed fails", holds=combine(per_size.values()),
                  preconditions=_preconditions(ctx, runs, list(runs)), more=MORE_SEEDS)]


def b_sizes_favour_classes(ctx: Context, claim: dict) -> list[dict]:
    runs = results.study_b_runs(ctx.root, ctx.notes)
    if len(runs) < 2:
        return [not_run(claim, claim["id"], f"{RUN_B} with at least two hidden sizes")]
    prof = {(h, s): np.asarray(results.per_class(r["probe"], "precision")) for h, seeds in runs.items()
            for s, r in seeds.items() if r.get("probe") and results.per_class(r["probe"], "precision")}
    keys = sorted(prof)
    dist = lambda a, b: float(np.linalg.norm(prof[a] - prof[b]))  # noqa: E731
    within = [dist(a, b) for i, a in enumerate(keys) for b in keys[i + 1:] if a[0] == b[0]]
    between = [dist(a, b) for i, a in enumerate(keys) for b in keys[i + 1:] if a[0] != b[0] and a[1] == b[1]]
    test = {**stats.mann_whitney_greater(between, within), "within": stats.spread(within),
            "between": stats.spread(between)}
    holds = (None if not within or not between else True if test["p_value"] < ctx.rules["alpha"]
             else False if np.median(between) <= np.median(within) else None)
    repeated = [h for h, seeds in runs.items() if len(seeds) >= ctx.rules["min_seeds"]]
    pre = [enough(len(repeated), 2, f"sizes with at least {ctx.rules['min_seeds']} seeds", MORE_SEEDS),
           *_preconditions(ctx, runs, list(runs))[1:]]
    return [check(claim, claim["id"], published="profiles differ between sizes", test=test,
                  measured={"between_median": float(np.median(between)) if between else None,
                            "within_median": float(np.median(within)) if within else None},
                  rule="Euclidean distance of per-class precision profiles: between sizes (same seed) greater than "
                       f"between seeds of one size (one-sided Mann-Whitney p < {ctx.rules['alpha']}); a median "
                       "between sizes not above the median within a size fails", holds=holds, preconditions=pre,
                  more=MORE_SEEDS)]


def confused_with(matrix: np.ndarray, x: str, ys: list[str], top_k: int) -> bool:
    """Every Y of `ys` is among the max(len(ys), top_k) largest off-diagonal cells of X's row (ties count for Y)."""
    row, i = np.asarray(matrix, float)[INDEX[x]], INDEX[x]
    off = np.delete(row, i)
    k = max(len(ys), top_k)
    return all(int((off > row[INDEX[y]]).sum()) < k for y in ys)


def b_confusions(ctx: Context, claim: dict) -> list[dict]:
    runs, k = results.study_b_runs(ctx.root, ctx.notes), ctx.rules["confusion_top_k"]
    published = ctx.fact(claim)["values"]
    out = []
    for h, statements in claim["confusions"].items():
        h = int(h)
        for x, ys in statements.items():
            cid = f"{claim['id']}.{h}.{x}"
            statement = f"At latent size {h}, {x} is confused with {', '.join(ys)}."
            pub = published.get(h)
            shown = {"row": pub[INDEX[x]] if pub else None,
                     "rule_holds": confused_with(np.asarray(pub), x, ys, k) if pub else None}
            if h not in runs:
                out.append(not_run(claim, cid, f"add {h} to `study_b.hidden_sizes`", shown, statement))
                continue
            mats = {s: results.confusion(r["probe"]) for s, r in runs[h].items() if r.get("probe")}
            per_seed = {s: confused_with(m, x, ys, k) for s, m in mats.items() if m is not None}
            measured = {"holds_per_seed": per_seed,
                        "rows": {s: m[INDEX[x]].astype(int).tolist() for s, m in mats.items() if m is not None}}
            out.append(check(claim, cid, statement=statement, published=shown, measured=measured,
                             rule=f"each of {', '.join(ys)} among the {max(k, len(ys))} largest off-diagonal cells of "
                                  f"{x}'s row, in every seed; in no seed fails",
                             holds=every_seed(list(per_seed.values())), preconditions=_preconditions(ctx, runs, [h]),
                             more=MORE_SEEDS))
    return out


RULES: dict[str, Callable[[Context, dict], list[dict]]] = {
    "b-mse-decreasing": b_mse_decreasing, "b-mse-256-512": b_mse_256_512, "b-below-half": b_below_half,
    "b-best-256-512": b_best_256_512, "b-probe-accuracy": b_probe_accuracy, "b-hardest-classes": b_hardest_classes,
    "b-sizes-favour-classes": b_sizes_favour_classes, "b-confusions": b_confusions,
}
CLAIM_KEYS: dict[str, dict] = {
    "b-mse-decreasing": {}, "b-mse-256-512": {}, "b-below-half": {}, "b-best-256-512": {},
    "b-probe-accuracy": {"facts": FACT("study_b_probe_accuracy")}, "b-hardest-classes": {"classes": CLASS_LIST},
    "b-sizes-favour-classes": {}, "b-confusions": {"facts": FACT("study_b_confusion"), "confusions": CONFUSIONS},
}

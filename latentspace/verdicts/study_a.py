"""Reproduction rules of Study A (rectangles): parameter counts, the class structure of the published latent
figures (dice loss; other losses as an extension), and the area balance of the weighted cross-entropy."""
from __future__ import annotations

from typing import Callable

import numpy as np

from latentspace import results, stats
from latentspace.constants import CLASS_PAIRS, RECTANGLE_CLASSES
from latentspace.verdicts.base import Context, check, converged, enough, every_seed, not_run, precondition
from latentspace.verdicts.references import FACT, LOSS, LOSS_LIST, Text

CAPS = "the phase caps `segmentation.nadam_epochs` / `segmentation.sgd_epochs`"
MORE_LAUNCHES = "more launches (`segmentation.launches` and `latent.launches`)"


def a_parameters(ctx: Context, claim: dict) -> list[dict]:
    out = []
    trained = results.segmentation_records(ctx.root, ctx.notes)
    for net, published in ctx.fact(claim)["values"].items():
        cid, statement = f"{claim['id']}.{net}", f"{net.upper()} has the original Keras net's parameter count."
        counts = {k: r.get("parameters") for k, r in trained.items() if k.split("-")[0] == net}
        counts = {k: v for k, v in counts.items() if isinstance(v, int)}
        if not counts:
            out.append(not_run(claim, cid, f"train {net} (`segmentation.nets`)", published, statement))
            continue
        measured = sorted(set(counts.values()))
        same = precondition("consistent", len(measured) == 1, f"the trained losses of {net} give "
                            f"{'the same count' if len(measured) == 1 else 'different counts: ' + str(counts)}",
                            "rerun the segmentation stages of this net with one version of the code")
        out.append(check(claim, cid, statement=statement, measured=measured[0], published=published,
                         difference=measured[0] - published, rule="equal parameter counts (every loss trained)",
                         holds=measured[0] == published, preconditions=[same], more="–"))
    return out


def shape_holds(pairs: dict[str, float], figure: dict, rules: dict) -> bool:
    """One launch's pair separabilities against the published figure: clean = every pair >= clean_pair; class k
    apart = both pairs of k >= apart_pair and the remaining pair < mixed_pair."""
    if figure["shape"] == "clean":
        return all(pairs[p] >= rules["clean_pair"] for p in CLASS_PAIRS)
    k = str(figure["class_apart"])
    own = [p for p in CLASS_PAIRS if k in p.split("-")]
    return (all(pairs[p] >= rules["apart_pair"] for p in own)
            and all(pairs[p] < rules["mixed_pair"] for p in CLASS_PAIRS if p not in own))


def one_apart(pairs: dict[str, float], apart: float, mixed: float) -> int | None:
    """The class whose two pairs are both >= `apart` while the remaining pair is < `mixed`, if one is."""
    for k in RECTANGLE_CLASSES:
        if shape_holds(pairs, {"shape": "apart", "class_apart": k}, {"apart_pair": apart, "mixed_pair": mixed}):
            return k
    return None


def expected(figure: dict) -> str:
    if figure["shape"] == "clean":
        return "three clean clusters"
    rest = " and ".join(str(k) for k in RECTANGLE_CLASSES if k != figure["class_apart"])
    return f"class {figure['class_apart']} apart, classes {rest} mixed"


def _launch_preconditions(ctx: Context, net: str, loss: str, launches: list[int]) -> list[dict]:
    seg = results.segmentation(ctx.root, net, loss, ctx.notes) or {}
    per = {int(r.get("launch", i + 1)): r for i, r in enumerate(results.launches(seg))} if seg else {}
    used = [per.get(k) or {} for k in launches]
    floor = ctx.rules["min_test_miou"]
    ious = [r.get("mean_iou") for r in used]
    low = [f"launch {k}: {v:.3f}" if isinstance(v, (int, float)) else f"launch {k}: no mean IoU"
           for k, v in zip(launches, ious) if not (isinstance(v, (int, float)) and v >= floor)]
    learned = precondition("learned", not low, f"test mean IoU of the launches used "
                                                f"{'at least ' + str(floor) if not low else 'below ' + str(floor) + ' (' + ', '.join(low) + ')'}",
                           "more training (`segmentation.train_images`, " + CAPS.removeprefix("the ") + ")")
    return [enough(len(launches), ctx.rules["min_launches"], "launches", MORE_LAUNCHES),
            converged(((f"launch {k}", results.stopping(r)) for k, r in zip(launches, used)),
                      f"{net}-{loss} launches", CAPS), learned]


def _figure_check(ctx: Context, claim: dict, net: str, loss: str, figure: dict, kind: str | None) -> dict:
    cid = f"{claim['id']}.{net}" if kind is None else f"{claim['id']}.{net}-{loss}"
    statement = f"{net.upper()} ({loss}{', extension' if kind else ''}): {expected(figure)} in the 2-D " \
                f"{claim['reducer'].upper()} of the latent code."
    rec = results.latent(ctx.root, net, loss, ctx.notes)
    if rec is None:
        return not_run(claim, cid, f"train and analyse {net} with the {loss} loss (`segmentation.nets`, "
                                   f"`segmentation.losses`)", expected(figure), statement, kind)
    found = results.pair_separability(rec, claim["image_set"], claim["reducer"])
    if found is None:
        return not_run(claim, cid, f"rerun `latent_analysis@{net}-{loss}`: no {claim['reducer']} separability on "
                                   f"image set `{claim['image_set']}`", expected(figure), statement, kind)
    per_launch = [{p: found["pairs"][p][i] for p in CLASS_PAIRS} for i in range(len(found["launches"]))]
    passes = [shape_holds(pairs, figure, ctx.rules) for pairs in per_launch]
    r = ctx.rules
    measured = {"layer": found["layer"], "launches": found["launches"],
                "pairs": {p: stats.spread(v, r["confidence"]) for p, v in found["pairs"].items()},
                "holds_per_launch": passes,
                "class_apart_per_launch": [one_apart(p, r["apart_pair"], r["mixed_pair"]) for p in per_launch]}
    rule = ("held-out kNN accuracy of every pair of classes in the 2-D embedding >= "
            f"{r['clean_pair']}" if figure["shape"] == "clean" else
            f"both pairs of class {figure['class_apart']} >= {r['apart_pair']} and the remaining pair < "
            f"{r['mixed_pair']} (held-out kNN accuracy in the 2-D embedding)")
    return check(claim, cid, statement=statement, published=expected(figure), measured=measured,
                 rule=rule + "; reproduced when it holds in every launch, not reproduced when in none",
                 holds=every_seed(passes), preconditions=_launch_preconditions(ctx, net, loss, found["launches"]),
                 more=MORE_LAUNCHES, kind=kind)


def a_latent_figures(ctx: Context, claim: dict) -> list[dict]:
    return [_figure_check(ctx, claim, net, claim["loss"], figure, None)
            for net, figure in ctx.fact(claim)["values"].items()]


def a_latent_other_losses(ctx: Context, claim: dict) -> list[dict]:
    return [_figure_check(ctx, claim, net, loss, figure, "extension")
            for net, figure in ctx.fact(claim)["values"].items() for loss in claim["losses"]]


def _matching_eda(summary: dict, train: dict) -> tuple[str | None, dict]:
    """The EDA sample generated like the training sample (containment, delta, image size)."""
    keys = ("contained", "delta", "image_size")
    for name, s in summary.items():
        if isinstance(s, dict) and all(s.get(k) == train.get(k) for k in keys):
            return name, s
    return None, {}


def a_wce_balances_area(ctx: Context, claim: dict) -> list[dict]:
    weights = ctx.fact(claim)["values"]
    summary, train = results.eda_summary(ctx.root, ctx.notes), results.eda_sample(ctx.root, "train", ctx.notes)
    if summary is None or train is None:
        return [not_run(claim, claim["id"], "run the EDA and the training sample (`dvc repro eda`)", weights)]
    name, sample = _matching_eda(summary, train)
    match = precondition("matching sample", name is not None,
                         f"EDA sample `{name}` is generated like the training sample" if name else
                         "no EDA sample is generated like the training sample (containment "
                         f"{train.get('contained')}, delta {train.get('delta')})",
                         "`rectangles.samples.eda_contained.contained` equal to the training sample's")
    if name is None:
        return [check(claim, claim["id"], published=weights, measured=None, rule="", holds=None,
                      preconditions=[match], more="–")]
    areas = {"background": sample["background_fraction"],
             **{f"class {k}": sample["classes"][f"class_{k}"]["visible_area_fraction"] for k in RECTANGLE_CLASSES}}
    weighted = {c: a * (weights["background"] if c == "background" else weights["rectangle_class"])
                for c, a in areas.items()}
    ratio = max(weighted.values()) / min(weighted.values())
    limit = ctx.rules["area_balance_ratio"]
    balancing = float(np.mean([areas["background"] / areas[c] for c in areas if c != "background"]))
    measured = {"sample": name, "area_fraction": areas, "weighted_area": weighted, "ratio": ratio,
                "balancing_class_weight": balancing,
                "run_class_weight": ctx.params["segmentation"]["loss_settings"]["wce"]["class_weight"]}
    return [check(claim, claim["id"], published=weights, measured=measured, difference=ratio - 1,
                  rule=f"weight x visible area fraction of every class (background and the three rectangle "
                       f"classes): the largest at most {limit} times the smallest", holds=ratio <= limit,
                  preconditions=[match], more="–")]


RULES: dict[str, Callable[[Context, dict], list[dict]]] = {
    "a-parameters": a_parameters, "a-latent-figures": a_latent_figures,
    "a-latent-other-losses": a_latent_other_losses, "a-wce-balances-area": a_wce_balances_area,
}
CLAIM_KEYS: dict[str, dict] = {
    "a-parameters": {"facts": FACT("study_a_parameters")},
    "a-latent-figures": {"facts": FACT("study_a_latent_figures"), "loss": LOSS, "image_set": Text(),
                         "reducer": Text()},
    "a-latent-other-losses": {"facts": FACT("study_a_latent_figures"), "losses": LOSS_LIST, "image_set": Text(),
                              "reducer": Text()},
    "a-wce-balances-area": {"facts": FACT("study_a_wce_weights")},
}

"""Reproduction rules of Study A (rectangles: parameter counts, latent clusters) and Study B (CIFAR-10 probes)."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from latentspace.constants import CLASS_PAIRS
from latentspace.verdicts_base import Context, not_run, record, spread, verdict


# --- Study A --------------------------------------------------------------------------------------------

def a_parameters(ctx: Context, claim: dict) -> list[dict]:
    out = []
    for net, published in ctx.fact(claim)["values"].items():
        cid = f"{claim['id']}.{net}"
        found = sorted((ctx.root / "metrics/segmentation").glob(f"{net}-*.json"))
        counts = {p.stem: (ctx.metrics(p.relative_to(ctx.root).as_posix()) or {}).get("parameters") for p in found}
        counts = {k: v for k, v in counts.items() if isinstance(v, int)}
        statement = f"{net.upper()} has the original Keras net's parameter count."
        if not counts:
            out.append(not_run(claim, cid, f"train {net} (`segmentation.nets`)", published, statement))
            continue
        measured = next(iter(counts.values()))
        holds = all(v == published for v in counts.values())
        out.append(record(claim, cid, statement=statement, measured=measured, published=published,
                          difference=measured - published, rule="equal parameter counts (every loss trained)",
                          verdict_decide=verdict(holds, ctx, "A", exact=True)))
    return out


def pair_separability(rec: dict, probe_set: str, reducer: str) -> tuple[str, dict[str, list[float]]] | None:
    """(layer, {"1-2": [accuracy per launch], ...}) of the claims' layer, or None without separability."""
    sep = rec.get("separability") or {}
    layer = rec.get("primary_layer") or next(iter(sep), None)
    pairs = (((sep.get(layer) or {}).get(probe_set) or {}).get(reducer) or {}).get("pairs")
    if not pairs or any(p not in pairs for p in CLASS_PAIRS):
        return None
    return layer, {p: [float(v) for v in pairs[p]] for p in CLASS_PAIRS}


def _separability_claim(ctx: Context, claim: dict, net: str, loss: str, cid: str, statement: str,
                        rule: str, test: Callable[[dict[str, float]], tuple[bool, Any]]) -> dict:
    rel = f"metrics/latent/{net}-{loss}.json"
    rec = ctx.metrics(rel)
    if rec is None:
        return not_run(claim, cid, f"train and analyse {net} with the {loss} loss "
                                   f"(`-S 'segmentation.losses=[...,{loss}]'`)", statement=statement)
    found = pair_separability(rec, claim["probe_set"], claim["reducer"])
    if found is None:
        return not_run(claim, cid, f"`{rel}` has no {claim['reducer']} separability on probe set "
                                   f"`{claim['probe_set']}`: rerun `latent_analysis@{net}-{loss}`", statement=statement)
    layer, pairs = found
    conf = ctx.rules["confidence"]
    means = {p: float(np.mean(v)) for p, v in pairs.items()}
    holds, detail = test(means)
    measured = {"layer": layer, "pairs": {p: spread(v, conf) for p, v in pairs.items()}, **detail}
    return record(claim, cid, statement=statement, measured=measured, published="qualitative (figure)", rule=rule,
                  verdict_decide=verdict(holds, ctx, "A"))


def a_nn1_clean(ctx: Context, claim: dict) -> list[dict]:
    t = ctx.rules["clean_pair"]
    rule = (f"held-out kNN accuracy of every pair of classes in the 2-D {claim['reducer'].upper()} embedding "
            f"(mean over launches) >= {t}")
    return [_separability_claim(ctx, claim, claim["net"], claim["loss"], claim["id"], claim["statement"], rule,
                                lambda m: (min(m.values()) >= t, {"min_pair": min(m, key=m.get)}))]


def one_apart(means: dict[str, float], apart: float, mixed: float) -> str | None:
    """The class whose two pairs are both >= `apart` while the remaining pair is < `mixed`, if one is."""
    for cls in sorted({c for p in means for c in p.split("-")}):
        own = [p for p in means if cls in p.split("-")]
        rest = [p for p in means if p not in own]
        if all(means[p] >= apart for p in own) and all(means[p] < mixed for p in rest):
            return cls
    return None


def a_unet_one_apart(ctx: Context, claim: dict) -> list[dict]:
    apart, mixed = ctx.rules["apart_pair"], ctx.rules["mixed_pair"]
    rule = (f"one class whose two pairs have held-out kNN accuracy >= {apart} in the 2-D "
            f"{claim['reducer'].upper()} embedding while the remaining pair is < {mixed} (means over launches)")

    def test(means):
        cls = one_apart(means, apart, mixed)
        return cls is not None, {"class_apart": cls}
    out = []
    trained = ctx.params["segmentation"]["nets"]
    for net in claim["nets"]:
        for loss in ctx.params["segmentation"]["losses"]:
            cid = f"{claim['id']}.{net}-{loss}"
            statement = f"{net.upper()} ({loss}): one class lies apart, the other two are mixed."
            if net not in trained:
                out.append(not_run(claim, cid, f"add {net} to `segmentation.nets`", statement=statement))
                continue
            out.append(_separability_claim(ctx, claim, net, loss, cid, statement, rule, test))
    return out


# --- Study B --------------------------------------------------------------------------------------------

def study_b_sizes(ctx: Context) -> dict[int, dict] | None:
    rec = ctx.metrics("metrics/study_b/summary.json")
    by_hidden = (rec or {}).get("by_hidden")
    if not isinstance(by_hidden, dict) or not by_hidden:
        return None
    conf = ctx.rules["confidence"]
    out = {}
    for h, r in sorted(by_hidden.items(), key=lambda kv: int(kv[0])):
        acc = [float(v) for v in r.get("probe_test_accuracy_values") or [r["probe_test_accuracy"]]]
        mse = [float(v) for v in r.get("test_mse_values") or [r["test_mse"]]]
        out[int(h)] = {"probe_test_accuracy": spread(acc, conf), "test_mse": spread(mse, conf)}
    return out


def b_below_half(ctx: Context, claim: dict) -> list[dict]:
    sizes, ceiling = study_b_sizes(ctx), ctx.rules["probe_ceiling"]
    if sizes is None:
        return [not_run(claim, claim["id"], "run Study B (`dvc repro study_b_summary`)", "< 0.5 at every size")]
    acc = {h: s["probe_test_accuracy"]["mean"] for h, s in sizes.items()}
    return [record(claim, claim["id"], measured={str(h): s["probe_test_accuracy"] for h, s in sizes.items()},
                   published=f"< {ceiling} at every size", difference=max(acc.values()) - ceiling,
                   rule=f"mean test accuracy over seeds < {ceiling} at every hidden size run",
                   verdict_decide=verdict(max(acc.values()) < ceiling, ctx, "B"))]


def b_mse_decreasing(ctx: Context, claim: dict) -> list[dict]:
    sizes = study_b_sizes(ctx)
    if sizes is None or len(sizes) < 2:
        return [not_run(claim, claim["id"], "run Study B with at least two hidden sizes", "decreasing")]
    mse = [s["test_mse"]["mean"] for s in sizes.values()]
    steps = [b - a for a, b in zip(mse, mse[1:])]
    return [record(claim, claim["id"], measured={str(h): s["test_mse"] for h, s in sizes.items()},
                   published="decreasing in hidden size", difference=max(steps),
                   rule="mean test MSE over seeds strictly decreasing from each hidden size to the next larger one",
                   verdict_decide=verdict(all(d < 0 for d in steps), ctx, "B"))]


def b_probe_accuracy(ctx: Context, claim: dict) -> list[dict]:
    sizes, tol = study_b_sizes(ctx), ctx.rules["probe_tolerance_pp"]
    out = []
    for h, published in ctx.fact(claim)["values"].items():
        cid, h = f"{claim['id']}.{h}", int(h)
        statement = f"Probe test accuracy at hidden size {h} as published."
        if sizes is None or h not in sizes:
            out.append(not_run(claim, cid, f"add {h} to `study_b.hidden_sizes`", published, statement))
            continue
        m = sizes[h]["probe_test_accuracy"]
        diff = m["mean"] - published
        data = (ctx.metrics("metrics/study_b/summary.json") or {}).get("data") or {}
        drop = data.get("jpeg_roundtrip_drop")
        note = (f"this run's CIFAR-10 images are JPEG-decoded (the offline copy); one more JPEG round trip changes "
                f"the probe's test accuracy by {drop * 100:+.2f} pp" if data.get("jpeg_decoded")
                and isinstance(drop, (int, float)) else None)
        out.append(record(claim, cid, statement=statement, measured=m, published=published, difference=diff,
                          rule=f"|mean over seeds - published| <= {tol} pp", note=note,
                          verdict_decide=verdict(abs(diff) * 100 <= tol, ctx, "B")))
    return out


EVALUATORS: dict[str, Callable[[Context, dict], list[dict]]] = {
    "a-parameters": a_parameters, "a-nn1-clean-clusters": a_nn1_clean, "a-unet-one-apart": a_unet_one_apart,
    "b-below-half": b_below_half, "b-mse-decreasing": b_mse_decreasing, "b-probe-accuracy": b_probe_accuracy,
}

"""The reproduction verdicts on fabricated metrics: each rule gives each verdict (a failing rule with every
precondition met is `not reproduced`, a passing rule with one failed is `undecided`), a study that has not run is
`not run` (never a crash), references.yaml is validated, and the verdicts stage writes its files. Published values
come from references.yaml."""
from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil

import numpy as np
import pytest
import yaml
from scipy import stats as sps

import fake_metrics as fake
from latentspace.core.errors import UserError
from latentspace.verdicts.base import NOT_REPRODUCED, NOT_RUN, REPRODUCED, UNDECIDED, VERDICTS
from latentspace.verdicts.evaluate import context, evaluate, load_references, paper_scale, scale
from latentspace.verdicts.headline import headline
from latentspace.verdicts.study_a import one_apart
from latentspace.verdicts.study_b import confused_with, two_lowest

ROOT = fake.ROOT
SIZES = [16, 32, 64, 128, 256, 512]


def params(nets=("nn1", "nn2", "nn3"), losses=("dice",), at_scale: bool = False) -> dict:
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    p["segmentation"]["nets"], p["segmentation"]["losses"] = list(nets), list(losses)
    if at_scale:
        for key, value in yaml.safe_load((ROOT / "paper_scale.yaml").read_text()).items():
            node = p
            *parents, last = key.split(".")
            for k in parents:
                node = node[k]
            node[last] = copy.deepcopy(value)
    return p


CLEAN, APART, MIXED = (0.99, 0.98), (0.97, 0.96), (0.6, 0.65)


def study_a_as_published(root, refs, losses=("dice",), **kwargs) -> None:
    counts = refs["facts"]["study_a_parameters"]["values"]
    fake.segmentation(root, {f"{net}-{loss}": {"parameters": counts[net], "mean_iou": 0.97}
                             for net in counts for loss in losses}, **kwargs)
    fake.baseline(root, 0.9)
    fake.eda(root)
    for loss in losses:
        fake.latent(root, f"nn1-{loss}", {p: list(CLEAN) for p in fake.PAIRS})
        fake.latent(root, f"nn2-{loss}", {"1-2": list(APART), "2-3": list(APART), "1-3": list(MIXED)},
                    layer="bottleneck")
        fake.latent(root, f"nn3-{loss}", {"1-2": list(APART), "1-3": list(APART), "2-3": list(MIXED)},
                    layer="bottleneck")


def study_b_as_published(root, refs, shift: float = 0.0, **kwargs) -> None:
    published = refs["facts"]["study_b_probe_accuracy"]["values"]
    acc = {h: [published.get(h, 0.25 + 0.02 * i) + shift + d for d in (-0.002, 0.0, 0.002)] for i, h in enumerate(SIZES)}
    mse = {h: [0.02 / (i + 1) + d for d in (0.0, 0.0001, 0.0002)] for i, h in enumerate(SIZES)}
    mse[512] = [v * 1.002 for v in mse[256]]
    fake.study_b(root, acc, mse, **kwargs)


def all_as_published(root, refs) -> None:
    study_a_as_published(root, refs)
    study_b_as_published(root, refs)
    fake.study_c_near_published(root, refs)


def by_id(result: dict) -> dict[str, dict]:
    return {c["id"]: c for c in result["claims"]}


def run(root, p=None, refs=None) -> dict:
    refs = refs or load_references(ROOT / "references.yaml")
    shutil.copy(ROOT / "paper_scale.yaml", root / "paper_scale.yaml")
    return evaluate(context(root, p or params(), refs))


def failed(claim: dict) -> list[str]:
    return [p["name"] for p in claim["preconditions"] if p["held"] is not True]


def published_gain(refs, cell: str) -> float:
    return fake.published_c(refs, cell, "fine_tuned") - fake.published_c(refs, cell, "scratch")


# --- the published facts themselves -------------------------------------------------------------------------

def test_the_rules_hold_on_the_published_confusion_matrices():
    refs = fake.references()
    matrices = refs["facts"]["study_b_confusion"]["values"]
    for m in matrices.values():
        assert all(sum(row) == 1000 for row in m)
        assert two_lowest(list(np.diag(m) / 1000)) == {"bird", "cat"}
    claim = next(c for c in refs["claims"] if c["id"] == "b-confusions")
    k = yaml.safe_load((ROOT / "params.yaml").read_text())["verdicts"]["confusion_top_k"]
    for h, statements in claim["confusions"].items():
        for x, ys in statements.items():
            assert confused_with(np.asarray(matrices[h]), x, ys, k), (h, x, ys)


def test_confusion_rule_on_hand_made_matrices():
    m = np.eye(10, dtype=int) * 100
    m[0, [8, 9, 1, 2]] = [50, 40, 30, 20]           # airplane: ship, truck, automobile, bird
    assert confused_with(m, "airplane", ["ship"], 3) and confused_with(m, "airplane", ["automobile"], 3)
    assert not confused_with(m, "airplane", ["bird"], 3)                     # fourth largest
    assert confused_with(m, "airplane", ["ship", "truck", "automobile", "bird"], 3)  # k grows to the list's size
    m[0, 2] = 30                                                            # a tie for third counts for Y
    assert confused_with(m, "airplane", ["bird"], 3)
    assert not confused_with(m, "airplane", ["cat"], 3)                     # a zero cell among zeros: not top-3


# --- every claim, each verdict --------------------------------------------------------------------------------

def test_metrics_at_the_published_values_reproduce_the_claims(tmp_path):
    refs = fake.references()
    all_as_published(tmp_path, refs)
    result = run(tmp_path)
    claims = by_id(result)
    assert set(result["counts_by_kind"]) == {"stated", "derived", "extension"}
    # The source's Study C conclusion against its own table: a cell whose published gain is well inside the
    # negligible band (conv-erasing +0.01 pp) or below 0 (fc-none -0.05 pp) is not reproduced; +0.39 pp is.
    assert published_gain(refs, "fc-none") < 0 < published_gain(refs, "conv-erasing") < 0.0002
    for cell, want in (("fc-none", NOT_REPRODUCED), ("conv-erasing", NOT_REPRODUCED), ("fc-erasing", REPRODUCED)):
        assert claims[f"c-finetune-gain.{cell}"]["verdict"] == want, cell
    assert claims["c-finetune-gain.pooled"]["verdict"] == REPRODUCED
    others = {cid: (c["verdict"], c["reason"]) for cid, c in claims.items()
              if not cid.startswith("c-finetune-gain") and c["kind"] != "extension" and c["verdict"] != REPRODUCED}
    assert not others
    assert claims["a-latent-figures.nn2"]["measured"]["class_apart_per_launch"] == [2, 2]
    assert claims["a-latent-figures.nn3"]["measured"]["class_apart_per_launch"] == [1, 1]
    cell = claims["c-cells.conv-erasing.frozen"]
    assert cell["published"] == fake.published_c(refs, "conv-erasing", "frozen")
    assert {"p_lower", "p_upper", "margin"} <= set(cell["test"])
    gain = claims["c-finetune-gain.fc-erasing"]["test"]
    assert {"wilcoxon", "sign_test", "mcnemar_per_seed"} <= set(gain)
    assert len([c for c in claims if c.startswith("c-macro-f1.")]) == 12
    assert len([c for c in claims if c.startswith("b-confusions.")]) == 6


def test_a_failing_rule_with_every_precondition_met_is_not_reproduced(tmp_path):
    refs = fake.references()
    study_a_as_published(tmp_path, refs)
    study_b_as_published(tmp_path, refs, shift=0.2)
    fake.study_c_near_published(tmp_path, refs, shift=-0.03)
    claims = by_id(run(tmp_path))
    for cid in ("b-below-half", "b-probe-accuracy.512", "c-cells.fc-none.scratch", "c-macro-f1.fc-none.scratch"):
        assert claims[cid]["verdict"] == NOT_REPRODUCED, cid
        assert not failed(claims[cid]) and claims[cid]["rule_result"] == "fails"
    assert claims["c-cells.fc-none.scratch"]["difference"] == pytest.approx(-0.03, abs=0.002)
    # A uniform shift changes no order and no paired difference.
    assert claims["c-order.conv-none"]["verdict"] == REPRODUCED
    assert claims["c-gain-as-published.conv-none"]["verdict"] == REPRODUCED


def test_a_passing_rule_with_one_failed_precondition_is_undecided_and_names_the_fix(tmp_path):
    refs = fake.references()
    study_a_as_published(tmp_path, refs, converged=False)
    study_b_as_published(tmp_path, refs, converged=False)
    fake.study_c_near_published(tmp_path, refs, converged=False)
    claims = by_id(run(tmp_path))
    for cid in ("a-latent-figures.nn1", "b-probe-accuracy.256", "c-cells.fc-none.frozen", "c-order.fc-none"):
        c = claims[cid]
        assert c["verdict"] == UNDECIDED and c["rule_result"] == "passes", cid
        assert set(failed(c)) == {"converged"} and "epoch cap" in c["reason"], cid
    assert "study_c.architectures.fc.head_max_epochs" in claims["c-cells.fc-none.frozen"]["decide"]
    assert "study_c.architectures.fc.ae_max_epochs" in claims["c-cells.fc-none.frozen"]["decide"]
    assert "study_b.ae_max_epochs" in claims["b-probe-accuracy.256"]["decide"]
    assert "segmentation.nadam_epochs" in claims["a-latent-figures.nn1"]["decide"]


def test_seeds_that_cannot_decide_are_undecided_with_more_seeds(tmp_path):
    refs = fake.references()
    fake.study_c_near_published(tmp_path, refs, shift=0.008, noise=0.02)
    wide = by_id(run(tmp_path))["c-cells.fc-none.frozen"]
    assert wide["verdict"] == UNDECIDED and not failed(wide) and "study_c.seeds" in wide["decide"]
    fake.study_c_near_published(tmp_path, refs, seeds=1)
    one = by_id(run(tmp_path))["c-erasing-lowers-frozen.fc"]
    assert one["verdict"] == UNDECIDED and failed(one) == ["enough runs"]


def test_unequal_budgets_of_the_compared_arms_are_undecided(tmp_path):
    refs = fake.references()
    acc = fake.study_c_near_published(tmp_path, refs)
    fake.study_c(tmp_path, {"fc-erasing": acc["fc-erasing"]}, caps={"frozen": 4})
    claim = by_id(run(tmp_path))["c-erasing-lowers-frozen.fc"]
    assert claim["verdict"] == UNDECIDED and claim["rule_result"] == "passes" and failed(claim) == ["same budget"]
    assert "head_max_epochs_erasing" in claim["decide"]
    assert by_id(run(tmp_path))["c-erasing-lowers-frozen.conv"]["verdict"] == REPRODUCED


def test_finetune_gain_below_zero_fails_and_mcnemar_counts_the_discordant_images(tmp_path):
    refs = fake.references()
    acc = fake.study_c_near_published(tmp_path, refs)
    acc["fc-none"]["fine_tuned"] = [v - 0.01 for v in acc["fc-none"]["scratch"]]
    fake.study_c(tmp_path, {"fc-none": acc["fc-none"]})
    n = 400
    ft, sc = np.zeros((3, n), bool), np.zeros((3, n), bool)
    ft[:, :300] = True            # fine-tuned right on 0..299
    sc[:, 30:310] = True          # scratch right on 30..309: only fine-tuned 30, only scratch 10
    fake.predictions(tmp_path, "fc-none", {"frozen": sc, "fine_tuned": ft, "scratch": sc})
    claim = by_id(run(tmp_path))["c-finetune-gain.fc-none"]
    assert claim["verdict"] == NOT_REPRODUCED and claim["measured"]["mean"] == pytest.approx(-0.01)
    tests = claim["test"]["mcnemar_per_seed"]
    assert [(t["only_a"], t["only_b"]) for t in tests] == [(30, 10)] * 3
    assert tests[0]["p_value"] == pytest.approx(sps.binomtest(30, 40, 0.5).pvalue, rel=1e-5)
    assert claim["test"]["mcnemar_significant_seeds"] == {"fine_tuned": 3, "scratch": 0}


def test_study_a_latent_rules_check_the_published_class(tmp_path):
    refs = fake.references()
    study_a_as_published(tmp_path, refs)
    # NN2 with class 1 apart (the published figure has class 2 apart): not reproduced.
    fake.latent(tmp_path, "nn2-dice", {"1-2": list(APART), "1-3": list(APART), "2-3": list(MIXED)}, layer="b")
    # NN3 right in one launch, wrong in the other: undecided.
    fake.latent(tmp_path, "nn3-dice", {"1-2": [0.97, 0.6], "1-3": [0.97, 0.97], "2-3": [0.6, 0.97]}, layer="b")
    claims = by_id(run(tmp_path))
    assert claims["a-latent-figures.nn2"]["verdict"] == NOT_REPRODUCED
    assert claims["a-latent-figures.nn3"]["verdict"] == UNDECIDED and not failed(claims["a-latent-figures.nn3"])
    assert claims["a-latent-figures.nn1"]["verdict"] == REPRODUCED
    # A net that did not learn its task: undecided, whatever its latent code shows.
    counts = refs["facts"]["study_a_parameters"]["values"]
    fake.segmentation(tmp_path, {"nn1-dice": {"parameters": counts["nn1"], "mean_iou": 0.2}})
    nn1 = by_id(run(tmp_path))["a-latent-figures.nn1"]
    assert nn1["verdict"] == UNDECIDED and nn1["rule_result"] == "passes" and failed(nn1) == ["learned"]


def test_other_losses_are_extensions_outside_the_reproduction_count(tmp_path):
    refs = fake.references()
    study_a_as_published(tmp_path, refs, losses=("wce", "dice", "focal"))
    result = run(tmp_path, params(losses=("wce", "dice", "focal")))
    ext = [c for c in result["claims"] if c["id"].startswith("a-latent-other-losses.")]
    assert len(ext) == 6 and {c["kind"] for c in ext} == {"extension"}
    assert result["counts_by_kind"]["extension"][REPRODUCED] == 6


def test_wce_area_balance(tmp_path):
    fake.eda(tmp_path, background=0.4, class_area=(0.1, 0.1, 0.1))
    assert by_id(run(tmp_path))["a-wce-balances-area"]["verdict"] == REPRODUCED
    fake.eda(tmp_path, background=0.7, class_area=(0.1, 0.1, 0.1))
    claim = by_id(run(tmp_path))["a-wce-balances-area"]
    assert claim["verdict"] == NOT_REPRODUCED and claim["measured"]["balancing_class_weight"] == pytest.approx(7)
    fake.eda(tmp_path, background=0.4, train_contained=None)
    assert failed(by_id(run(tmp_path))["a-wce-balances-area"]) == ["matching sample"]


def test_parameter_counts(tmp_path):
    refs = fake.references()
    study_a_as_published(tmp_path, refs, losses=("wce", "dice"))
    wrong = refs["facts"]["study_a_parameters"]["values"]["nn2"] + 7
    fake.segmentation(tmp_path, {"nn2-wce": {"parameters": wrong, "mean_iou": 0.97},
                                 "nn2-dice": {"parameters": wrong, "mean_iou": 0.97}})
    fake.segmentation(tmp_path, {"nn3-wce": {"parameters": 5, "mean_iou": 0.97}})
    claims = by_id(run(tmp_path))
    assert claims["a-parameters.nn2"]["verdict"] == NOT_REPRODUCED and claims["a-parameters.nn2"]["difference"] == 7
    assert claims["a-parameters.nn3"]["verdict"] == UNDECIDED and failed(claims["a-parameters.nn3"]) == ["consistent"]
    assert claims["a-parameters.nn1"]["verdict"] == REPRODUCED


def test_study_b_rules_each_verdict(tmp_path):
    refs = fake.references()
    mse_rising = {h: [0.02 / (i + 1)] * 3 for i, h in enumerate(SIZES)}
    mse_rising[64] = [0.03, 0.0301, 0.0302]
    acc = {h: [0.3 + 0.01 * i + d for d in (-0.002, 0.0, 0.002)] for i, h in enumerate(SIZES)}
    acc[128] = [0.5, 0.5, 0.5]                                             # above 256 and 512
    swapped = np.asarray(refs["facts"]["study_b_confusion"]["values"][256])
    swapped[1, [9, 4]] = swapped[1, [4, 9]]                                # automobile no longer -> truck
    fake.study_b(tmp_path, acc, mse_rising, confusion={256: swapped.tolist()}, profile_shift=0.0)
    claims = by_id(run(tmp_path))
    assert claims["b-mse-decreasing"]["verdict"] == NOT_REPRODUCED
    assert claims["b-best-256-512"]["verdict"] == NOT_REPRODUCED
    assert claims["b-confusions.256.automobile"]["verdict"] == NOT_REPRODUCED
    assert claims["b-confusions.256.airplane"]["verdict"] == REPRODUCED
    assert claims["b-sizes-favour-classes"]["verdict"] in (NOT_REPRODUCED, UNDECIDED)
    assert claims["b-mse-256-512"]["verdict"] == NOT_REPRODUCED                   # 0.0033 vs 0.0029: 14% apart
    study_b_as_published(tmp_path, refs)
    claims = by_id(run(tmp_path))
    for cid in ("b-mse-decreasing", "b-best-256-512", "b-sizes-favour-classes", "b-hardest-classes", "b-mse-256-512"):
        assert claims[cid]["verdict"] == REPRODUCED, (cid, claims[cid]["reason"])


def test_study_b_with_one_seed_per_size_is_undecided_for_want_of_seeds(tmp_path):
    fake.study_b(tmp_path, {16: [0.3], 32: [0.35]}, {16: [0.02], 32: [0.01]})
    claim = by_id(run(tmp_path))["b-mse-decreasing"]
    assert claim["verdict"] == UNDECIDED and failed(claim) == ["enough runs"]
    assert "study_b.repeat_sizes" in claim["decide"]


def test_older_metrics_without_stopping_are_undecided_not_silently_passed(tmp_path):
    refs = fake.references()
    fake.study_c_near_published(tmp_path, refs)
    for cell in fake.CELLS:
        path = tmp_path / f"metrics/study_c/{cell}.json"
        rec = json.loads(path.read_text())
        for seed in rec["per_seed"]:
            for run_rec in seed.values():
                if isinstance(run_rec, dict):
                    run_rec.pop("stopping")
                    run_rec["hit_cap"] = False
        path.write_text(json.dumps(rec))
    claim = by_id(run(tmp_path))["c-cells.fc-none.scratch"]
    assert claim["verdict"] == UNDECIDED and failed(claim) == ["converged"] and "older metrics" in claim["reason"]
    # An older record that says it hit its cap: known not to have converged.
    rec["per_seed"][0]["scratch"]["hit_cap"] = True
    path.write_text(json.dumps(rec))
    claim = by_id(run(tmp_path))[f"c-cells.{fake.CELLS[-1]}.scratch"]
    assert failed(claim) == ["converged"] and "epoch cap (1 of 3 runs)" in claim["reason"]


def test_nothing_run_is_not_run_everywhere_and_the_headline_files_are_empty(tmp_path):
    result = run(tmp_path)
    assert {c["verdict"] for c in result["claims"]} == {NOT_RUN}
    files = headline(context(tmp_path, params(), load_references(ROOT / "references.yaml")), result)
    assert files["study_a.json"] == files["study_b.json"] == files["study_c.json"] == {}
    assert files["verdicts.json"]["not_run"] == len(result["claims"])


def test_an_older_latent_file_without_separability_is_not_run_with_the_reason(tmp_path):
    fake.put_json(tmp_path, "metrics/latent/nn1-dice.json", {"net": "nn1", "loss": "dice", "layers": {}})
    claim = by_id(run(tmp_path))["a-latent-figures.nn1"]
    assert claim["verdict"] == NOT_RUN and "latent_analysis@nn1-dice" in claim["decide"]


def test_a_metrics_file_in_an_unexpected_format_is_not_run_with_a_note(tmp_path):
    fake.put_json(tmp_path, "metrics/study_c/fc-none.json", {"per_seed": [{"seed": 0, "frozen": 3}]})
    (tmp_path / "metrics/study_c/conv-none.json").write_text("{not json")
    result = run(tmp_path)
    assert any("conv-none.json" in n for n in result["notes"])


def test_one_apart_rule():
    assert one_apart({"1-2": 0.95, "1-3": 0.92, "2-3": 0.7}, 0.9, 0.8) == 1
    assert one_apart({"1-2": 0.95, "1-3": 0.92, "2-3": 0.85}, 0.9, 0.8) is None     # the rest not mixed


def test_the_scale_is_recorded_not_used_to_decide(tmp_path):
    assert {s["scale"] for s in scale(params(), paper_scale(ROOT)).values()} == {"reduced"}
    assert {s["scale"] for s in scale(params(at_scale=True), paper_scale(ROOT)).values()} == {"paper"}
    # `differs` lists exactly the paper-scale keys of a study whose value in the run is another one.
    overrides, run = paper_scale(ROOT), params()

    def value(dotted):
        node = run
        for key in dotted.split("."):
            node = node[key]
        return node

    differs = set(scale(run, overrides)["C"]["differs"])
    study_c = {k for k in overrides if k.startswith("study_c.")}
    assert differs == {k for k in study_c if value(k) != overrides[k]}


# --- references.yaml is validated -----------------------------------------------------------------------------

@pytest.mark.parametrize("edit, message", [
    (lambda r: r["facts"]["study_b_probe_accuracy"]["values"].__setitem__(256, "0.43x6"), "expected a number"),
    (lambda r: r["facts"]["study_a_parameters"]["values"].__setitem__("nn1x", 5), "did you mean 'nn1'"),
    (lambda r: r["facts"]["study_c_test_scores"]["values"]["fc-none"]["frozen"].pop("test_macro_f1"), "missing"),
    (lambda r: r["claims"].append({**r["claims"][0], "id": "a-parameterz"}), "did you mean 'a-parameters'"),
    (lambda r: r["claims"][0].__setitem__("facts", "study_b_probe_accuracy"), "not allowed"),
    (lambda r: r["facts"].pop("study_a_parameters"), "not under `facts`"),
    (lambda r: r["claims"][0].__setitem__("kind", "guess"), "kind"),
    (lambda r: r["claims"][0].__setitem__("nett", "nn1"), "unknown key"),
])
def test_references_errors_are_one_line(tmp_path, edit, message):
    refs = fake.references()
    edit(refs)
    path = tmp_path / "references.yaml"
    path.write_text(yaml.safe_dump(refs, sort_keys=False))
    with pytest.raises(UserError) as e:
        load_references(path)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_every_fact_names_its_source_and_the_repository_references_load():
    refs = load_references(ROOT / "references.yaml")
    assert all(f.get("source") for f in refs["facts"].values())
    assert {c["kind"] for c in refs["claims"]} == {"stated", "derived", "extension"}


# --- the stage --------------------------------------------------------------------------------------------

def test_the_stage_writes_verdicts_headline_and_timing_within_the_key_budget(tmp_path):
    refs = fake.references()
    for name in ("params.yaml", "references.yaml", "paper_scale.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    p = yaml.safe_load((tmp_path / "params.yaml").read_text())
    p["segmentation"]["nets"], p["segmentation"]["losses"] = ["nn1", "nn2", "nn3"], ["wce", "dice", "focal"]
    p["study_b"]["hidden_sizes"] = SIZES
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    study_a_as_published(tmp_path, refs, losses=("wce", "dice", "focal"))
    study_b_as_published(tmp_path, refs)
    fake.study_c_near_published(tmp_path, refs)
    spec = importlib.util.spec_from_file_location("verdicts_stage", ROOT / "stages/verdicts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        module.main([])
    finally:
        os.chdir(old)
    result = json.loads((tmp_path / "metrics/verdicts.json").read_text())
    assert sum(result["counts"].values()) == len(result["claims"]) and set(result["counts"]) == set(VERDICTS)
    heads = {n: json.loads((tmp_path / f"metrics/headline/{n}.json").read_text())
             for n in ("study_a", "study_b", "study_c", "verdicts")}
    assert sum(len(h) for h in heads.values()) <= 70
    assert heads["verdicts"]["claims"] == len(result["claims"])
    assert (tmp_path / "metrics/timing/verdicts.json").exists()


def test_dvc_runs_the_verdicts_stage_and_shows_only_the_headline_metrics(dvc_repo):
    """Only the verdicts stage, on fabricated metrics: `dvc metrics show` lists exactly the four headline files,
    and a forced rerun of unchanged inputs changes no metric."""
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    (dvc_repo.path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"verdicts": pipeline["stages"]["verdicts"]}}))
    for name in ("references.yaml", "paper_scale.yaml"):
        shutil.copy(ROOT / name, dvc_repo.path / name)
    refs = fake.references()
    study_a_as_published(dvc_repo.path, refs)
    study_b_as_published(dvc_repo.path, refs)
    fake.study_c_near_published(dvc_repo.path, refs)
    for cell in fake.CELLS:
        fake.predictions(dvc_repo.path, cell, {r: np.ones((3, 50), bool) for r in fake.REGIMES})
    for dep in pipeline["stages"]["verdicts"]["deps"]:
        assert (dvc_repo.path / dep).exists(), f"the fake project lacks the verdicts' dependency {dep}"
    dvc_repo.commit("inputs")
    dvc_repo.dvc("repro", "verdicts")
    shown = json.loads(dvc_repo.dvc("metrics", "show", "--json").stdout)
    files = {f for rev in shown.values() for f in (rev.get("data") or {})}
    assert files == {f"metrics/headline/{n}.json" for n in ("study_a", "study_b", "study_c", "verdicts")}
    assert dvc_repo.json("metrics/headline/verdicts.json")["not_run"] == 6      # the other losses' extensions
    dvc_repo.commit("run")
    dvc_repo.dvc("repro", "-f", "verdicts")
    assert json.loads(dvc_repo.dvc("metrics", "diff", "--json").stdout) == {}


def test_no_runs_is_an_unknown_precondition_not_a_held_one():
    from latentspace.verdicts.base import converged
    assert converged([], "autoencoders", "`study_b.ae_max_epochs`")["held"] is None
    assert converged([("a", {"converged": True})], "autoencoders", "x")["held"] is True
    assert converged([("a", {"converged": False})], "autoencoders", "x")["held"] is False

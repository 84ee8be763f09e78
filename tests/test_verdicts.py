"""The reproduction verdicts on fabricated metrics: every verdict reachable, a study that has not run is `not run`
(never a crash), and the verdicts stage writes its files. Published values come from references.yaml."""
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
from latentspace.verdicts import at_paper_scale, context, evaluate, load_references, paper_scale
from latentspace.verdicts_ab import one_apart
from latentspace.verdicts_base import (MORE_SEEDS, NOT_REPRODUCED, NOT_RUN, PAPER_RUN, REPRODUCED, UNDECIDED,
                                       VERDICTS)
from latentspace.headline import headline

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


def study_a_as_published(root, refs, clean=(0.99, 0.98), mixed=(0.6, 0.65)) -> None:
    counts = refs["facts"]["study_a_parameters"]["values"]
    fake.segmentation(root, {f"{net}-dice": {"parameters": counts[net], "mean_iou": 0.8} for net in counts})
    fake.baseline(root, 0.9)
    fake.latent(root, "nn1-dice", {p: list(clean) for p in fake.PAIRS})
    fake.latent(root, "nn2-dice", {"1-2": list(clean), "1-3": list(clean), "2-3": list(mixed)}, layer="bottleneck")
    fake.latent(root, "nn3-dice", {"1-2": list(mixed), "1-3": list(clean), "2-3": list(clean)}, layer="bottleneck")


def study_b_as_published(root, refs, shift: float = 0.0) -> None:
    published = refs["facts"]["study_b_probe_accuracy"]["values"]
    acc = {h: [published.get(h, 0.25 + 0.02 * i) + shift + d for d in (-0.002, 0.0, 0.002)] for i, h in enumerate(SIZES)}
    fake.study_b(root, acc, {h: [0.02 / (i + 1) + d for d in (0.0, 0.0001, 0.0002)] for i, h in enumerate(SIZES)})


def all_as_published(root, refs, shift_c: float = 0.0) -> None:
    study_a_as_published(root, refs)
    study_b_as_published(root, refs)
    fake.study_c_near_published(root, refs, shift=shift_c)


def by_id(result: dict) -> dict[str, dict]:
    return {c["id"]: c for c in result["claims"]}


def run(root, p=None, refs=None) -> dict:
    refs = refs or load_references(ROOT / "references.yaml")
    shutil.copy(ROOT / "paper_scale.yaml", root / "paper_scale.yaml")
    return evaluate(context(root, p or params(), refs))


# --- each verdict is reachable ---------------------------------------------------------------------------

def test_metrics_at_the_published_values_reproduce_every_claim(tmp_path):
    refs = fake.references()
    all_as_published(tmp_path, refs)
    result = run(tmp_path)
    wrong = {c["id"]: (c["verdict"], c["measured"]) for c in result["claims"] if c["verdict"] != REPRODUCED}
    assert not wrong
    claims = by_id(result)
    # Every claim of references.yaml is there, with its instances: 3 parameter counts, NN1, 2 U-Nets x 1 loss,
    # 3 + 1 Study B claims, 12 cells, order, 4 pretraining effects, 2 erasing effects.
    assert len(claims) == 3 + 1 + 2 + 4 + 12 + 1 + 4 + 2 == result["counts"][REPRODUCED]
    cell = claims["c-cells.conv-erasing.frozen"]
    assert cell["published"]["test_accuracy"] == fake.published_c(refs, "conv-erasing", "frozen")
    assert cell["measured"]["test_accuracy"]["low"] <= cell["published"]["test_accuracy"]
    assert claims["a-unet-one-apart.nn2-dice"]["measured"]["class_apart"] == "1"
    assert claims["a-unet-one-apart.nn3-dice"]["measured"]["class_apart"] == "3"
    effect = claims["c-pretraining-effect.fc-erasing"]
    assert effect["published"] == pytest.approx(fake.published_c(refs, "fc-erasing", "fine_tuned")
                                                - fake.published_c(refs, "fc-erasing", "scratch"))
    assert {"paired_t", "wilcoxon", "sign_test", "mcnemar_per_seed"} <= set(effect["test"])


def test_a_gap_below_paper_scale_is_undecided_and_at_paper_scale_not_reproduced(tmp_path):
    refs = fake.references()
    all_as_published(tmp_path, refs, shift_c=-0.03)
    below = by_id(run(tmp_path))
    cell = below["c-cells.fc-none.scratch"]
    assert cell["verdict"] == UNDECIDED and cell["decide"] == PAPER_RUN
    assert cell["difference"] == pytest.approx(-0.03, abs=0.002)
    # A uniform shift changes no order and no paired difference.
    assert below["c-order"]["verdict"] == REPRODUCED
    assert below["c-pretraining-effect.conv-none"]["verdict"] == REPRODUCED

    p = params(at_scale=True)
    assert at_paper_scale(p, paper_scale(tmp_path)) == {"A": True, "B": True, "C": True}
    at_scale = by_id(run(tmp_path, p))
    assert at_scale["c-cells.fc-none.scratch"]["verdict"] == NOT_REPRODUCED
    assert at_scale["c-cells.fc-none.scratch"]["decide"] is None


def test_study_a_and_b_claims_fail_by_scale(tmp_path):
    refs = fake.references()
    study_a_as_published(tmp_path, refs, clean=(0.85, 0.9), mixed=(0.85, 0.9))
    study_b_as_published(tmp_path, refs, shift=0.2)
    below, at_scale = by_id(run(tmp_path)), by_id(run(tmp_path, params(at_scale=True)))
    for cid in ("a-nn1-clean-clusters", "a-unet-one-apart.nn2-dice", "b-below-half", "b-probe-accuracy.512"):
        assert below[cid]["verdict"] == UNDECIDED, cid
        assert at_scale[cid]["verdict"] == NOT_REPRODUCED, cid
    assert below["b-mse-decreasing"]["verdict"] == REPRODUCED


def test_mse_that_rises_somewhere_fails(tmp_path):
    fake.study_b(tmp_path, {16: [0.3], 32: [0.35], 64: [0.4]}, {16: [0.02], 32: [0.01], 64: [0.011]})
    claim = by_id(run(tmp_path, params(at_scale=True)))["b-mse-decreasing"]
    assert claim["verdict"] == NOT_REPRODUCED and claim["difference"] == pytest.approx(0.001)


def test_a_wrong_parameter_count_is_not_reproduced_at_any_scale(tmp_path):
    refs = fake.references()
    study_a_as_published(tmp_path, refs)
    wrong = refs["facts"]["study_a_parameters"]["values"]["nn2"] + 7
    fake.segmentation(tmp_path, {"nn2-dice": {"parameters": wrong, "mean_iou": 0.8}})
    claim = by_id(run(tmp_path))["a-parameters.nn2"]
    assert claim["verdict"] == NOT_REPRODUCED and claim["difference"] == 7 and claim["measured"] == wrong


def test_too_few_seeds_or_too_wide_an_interval_is_undecided(tmp_path):
    refs = fake.references()
    fake.study_c_near_published(tmp_path, refs, seeds=1)
    one = by_id(run(tmp_path))
    assert one["c-erasing-lowers-frozen.fc"]["verdict"] == UNDECIDED
    assert one["c-erasing-lowers-frozen.fc"]["decide"] == MORE_SEEDS
    assert one["c-pretraining-effect.fc-none"]["verdict"] == UNDECIDED
    # Three seeds spread over several pp: the published value is inside the interval, which decides nothing.
    fake.study_c_near_published(tmp_path, refs, shift=0.008, noise=0.02)
    wide = by_id(run(tmp_path, params(at_scale=True)))["c-cells.fc-none.frozen"]
    iv = wide["measured"]["test_accuracy"]
    assert iv["low"] < wide["published"]["test_accuracy"] < iv["high"] and (iv["high"] - iv["low"]) > 0.02
    assert wide["verdict"] == UNDECIDED and wide["decide"] == MORE_SEEDS


def test_erasing_that_raises_frozen_accuracy_fails(tmp_path):
    refs = fake.references()
    acc = fake.study_c_near_published(tmp_path, refs)
    for cell in ("conv-erasing",):
        acc[cell]["frozen"] = [v + 0.05 for v in acc[cell]["frozen"]]
    fake.study_c(tmp_path, acc)
    claim = by_id(run(tmp_path, params(at_scale=True)))["c-erasing-lowers-frozen.conv"]
    assert claim["verdict"] == NOT_REPRODUCED and claim["measured"]["low"] > 0


def test_nothing_run_is_not_run_everywhere_and_the_headline_files_are_empty(tmp_path):
    result = run(tmp_path)
    assert {c["verdict"] for c in result["claims"]} == {NOT_RUN}
    assert all(c["decide"] for c in result["claims"])
    ctx = context(tmp_path, params(), load_references(ROOT / "references.yaml"))
    files = headline(ctx, result)
    assert files["study_a.json"] == files["study_b.json"] == files["study_c.json"] == {}
    assert files["verdicts.json"]["not_run"] == files["verdicts.json"]["claims"] == len(result["claims"])


def test_one_study_missing_or_unreadable_leaves_the_others(tmp_path):
    refs = fake.references()
    study_b_as_published(tmp_path, refs)
    (tmp_path / "metrics/study_c").mkdir(parents=True)
    (tmp_path / "metrics/study_c/fc-none.json").write_text("{not json")
    result = run(tmp_path)
    claims = by_id(result)
    assert claims["b-probe-accuracy.256"]["verdict"] == REPRODUCED
    assert claims["c-cells.fc-none.frozen"]["verdict"] == NOT_RUN
    assert claims["a-nn1-clean-clusters"]["verdict"] == NOT_RUN
    assert any("fc-none.json" in n for n in result["notes"])


def test_an_older_latent_file_without_separability_is_not_run_with_the_reason(tmp_path):
    fake.put_json(tmp_path, "metrics/latent/nn1-dice.json", {"net": "nn1", "loss": "dice", "layers": {}})
    claim = by_id(run(tmp_path))["a-nn1-clean-clusters"]
    assert claim["verdict"] == NOT_RUN and "latent_analysis@nn1-dice" in claim["decide"]


def test_mcnemar_counts_the_test_images_only_one_regime_gets_right(tmp_path):
    refs = fake.references()
    fake.study_c_near_published(tmp_path, refs)
    n = 400
    ft = np.zeros((3, n), bool)
    sc = np.zeros((3, n), bool)
    ft[:, :300] = True            # fine-tuned right on 0..299
    sc[:, 30:310] = True          # scratch right on 30..309: only fine-tuned 30, only scratch 10
    fake.predictions(tmp_path, "fc-none", {"frozen": sc, "fine_tuned": ft, "scratch": sc})
    claim = by_id(run(tmp_path))["c-pretraining-effect.fc-none"]
    tests = claim["test"]["mcnemar_per_seed"]
    assert [(t["only_a"], t["only_b"]) for t in tests] == [(30, 10)] * 3
    assert tests[0]["p_value"] == pytest.approx(sps.binomtest(30, 40, 0.5).pvalue, rel=1e-5)
    assert claim["test"]["mcnemar_significant_seeds"] == 3


def test_one_apart_rule():
    assert one_apart({"1-2": 0.95, "1-3": 0.92, "2-3": 0.7}, 0.9, 0.8) == "1"
    assert one_apart({"1-2": 0.95, "1-3": 0.92, "2-3": 0.85}, 0.9, 0.8) is None     # the rest not mixed
    assert one_apart({"1-2": 0.99, "1-3": 0.99, "2-3": 0.99}, 0.9, 0.8) is None     # three clean clusters


def test_references_with_an_unknown_claim_or_facts_are_a_one_line_error(tmp_path):
    refs = fake.references()
    refs["claims"].append({"id": "c-typo", "study": "C", "statement": "s", "source": "x"})
    (tmp_path / "references.yaml").write_text(yaml.safe_dump(refs))
    with pytest.raises(UserError, match="c-typo"):
        load_references(tmp_path / "references.yaml")
    with pytest.raises(UserError, match="not found"):
        load_references(tmp_path / "absent.yaml")


def test_every_fact_names_its_source():
    refs = load_references(ROOT / "references.yaml")
    assert all(f.get("source") for f in refs["facts"].values())
    assert all(c.get("source") for c in refs["claims"])


# --- the stage -------------------------------------------------------------------------------------------

def test_the_stage_writes_verdicts_headline_and_timing_within_the_key_budget(tmp_path):
    refs = fake.references()
    for name in ("params.yaml", "references.yaml", "paper_scale.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    p = yaml.safe_load((tmp_path / "params.yaml").read_text())
    p["segmentation"]["nets"], p["segmentation"]["losses"] = ["nn1", "nn2", "nn3"], ["wce", "dice", "focal"]
    p["study_b"]["hidden_sizes"] = SIZES
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    counts = refs["facts"]["study_a_parameters"]["values"]
    models = {f"{n}-{l}": {"parameters": counts[n], "mean_iou": 0.8} for n in counts for l in ("wce", "dice", "focal")}
    fake.segmentation(tmp_path, models)
    fake.baseline(tmp_path, 0.9)
    for name in models:
        fake.latent(tmp_path, name, {pair: [0.9, 0.92] for pair in fake.PAIRS})
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
    keys = sum(len(h) for h in heads.values())
    assert keys <= 60, keys
    assert heads["study_a"]["nn2_focal_test_miou"] == pytest.approx(0.805)
    assert heads["study_a"]["nn1_wce_min_pair_sep"] == pytest.approx(0.91)
    assert heads["study_b"]["h256_probe_acc"] == pytest.approx(refs["facts"]["study_b_probe_accuracy"]["values"][256])
    assert set(heads["study_c"]) >= {"conv_erasing_scratch_acc", "conv_erasing_scratch_acc_std"}
    assert heads["verdicts"]["claims"] == len(result["claims"])
    timing = json.loads((tmp_path / "metrics/timing/verdicts.json").read_text())
    assert timing["stage"] == "verdicts" and timing["seconds"] >= 0
    # No wall time, device or throughput in the metrics themselves.
    assert "seconds" not in json.dumps(result) and "seconds" not in json.dumps(heads)


def test_a_metrics_file_in_an_unexpected_format_is_not_run_with_a_note(tmp_path):
    fake.put_json(tmp_path, "metrics/study_b/summary.json", {"by_hidden": {"256": {"test_mse": 0.01}}})
    result = run(tmp_path)
    claim = by_id(result)["b-below-half"]
    assert claim["verdict"] == NOT_RUN and "unexpected format" in claim["decide"]
    assert any("b-below-half" in n for n in result["notes"])


def test_a_jpeg_decoded_cifar_copy_is_noted_beside_the_probe_claims(tmp_path):
    fake.study_b(tmp_path, {256: [0.4], 512: [0.41]}, {256: [0.01], 512: [0.009]},
                 data={"source": "offline copy", "jpeg_decoded": True, "jpeg_roundtrip_drop": -0.0123})
    claim = by_id(run(tmp_path))["b-probe-accuracy.512"]
    assert "JPEG" in claim["note"] and "-1.23 pp" in claim["note"]


@pytest.mark.e2e
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
    assert dvc_repo.json("metrics/headline/verdicts.json")["not_run"] == 4      # NN2, NN3 with wce and focal
    dvc_repo.commit("run")
    dvc_repo.dvc("repro", "-f", "verdicts")
    assert json.loads(dvc_repo.dvc("metrics", "diff", "--json").stdout) == {}

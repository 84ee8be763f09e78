"""The front door: README and docs/ are generated where they should be, up to date, short, self-contained, every
documented command and parameter example validates, and the committed report belongs to the committed run."""
import hashlib
import json
import math
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from latentspace import docs
from latentspace.constants import BOX_OVERLAP_DELTA, CHANNEL_OVERLAP_DELTA, MAX_UNCLIPPED_DELTA
from latentspace.core.errors import UserError
from latentspace.core.io import read_yaml
from latentspace.core.params import SCHEMA
from latentspace.core.profile import apply_profile, read_profile

ROOT = Path(__file__).resolve().parents[2]
DOCS = docs.doc_paths(ROOT)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _git(*args: str, root: Path = ROOT) -> bytes | None:
    res = subprocess.run(["git", *args], cwd=root, capture_output=True)
    return res.stdout if res.returncode == 0 else None


# --- the repository's own docs ------------------------------------------------------------------------------------

# What the generated blocks read; the committed versions of these stand in for a workspace whose run outputs
# changed since the commit (after `dvc exp run`, the README still shows the committed run, and rightly so).
BLOCK_INPUTS = ("metrics", "reports/glance", "docs/costs.yaml", "params.yaml", "references.yaml", "dvc.lock")


def committed_inputs(dest: Path) -> Path | None:
    present = [p for p in BLOCK_INPUTS if _git("cat-file", "-e", f"HEAD:{p}") is not None]
    archive = _git("archive", "HEAD", *present) if present else None
    if archive is None:
        return None
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def test_the_generated_blocks_are_up_to_date(tmp_path):
    stale = [p for p in DOCS if docs.render(p.read_text(), ROOT) != p.read_text()]
    committed = committed_inputs(tmp_path) if stale else None
    if committed is not None:
        stale = [p for p in stale if docs.render(p.read_text(), committed) != p.read_text()]
    assert not stale, (f"generated blocks are stale in {', '.join(p.relative_to(ROOT).as_posix() for p in stale)}: "
                       "run `make docs`")


def test_the_readme_is_short_and_has_its_generated_sections():
    text = (ROOT / "README.md").read_text()
    assert len(text) <= 10_000, f"README.md has {len(text)} characters; keep it to 10,000 (move detail to docs/)"
    for kind in ("glance", "costs"):
        assert f"<!-- generated: {kind}" in text
    assert "make repro" in text and "make test" in text and "LATENTSPACE_DATA_DIR" in text


# Words that point outside the repository: the protocol document the studies were specified in, the machine's
# shared folders. Built from parts so that this file does not match itself.
OUTSIDE = ("SP" + "EC", "../" + "shared", "/wo" + "rk/", "shared/" + "datasets", "/ho" + "me/")


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_doc_points_outside_the_repository(path):
    text = path.read_text()
    for bad in (*OUTSIDE, "package mirror", "local mirror", "full `make repro`"):
        assert bad not in text, f"{path.name} mentions {bad!r}: the docs must stand alone"
    declared = (ROOT / "dvc.yaml").read_text()
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue                                    # web links (credit, installation) and anchors are fine
        file = (path.parent / target.split("#")[0]).resolve()
        assert file.is_relative_to(ROOT), f"{path.name} links {target}, outside the repository"
        rel = file.relative_to(ROOT).as_posix()
        # A file the pipeline writes (the report, a figure) may be missing before the first run.
        assert file.exists() or rel in declared or rel.startswith("reports/glance/"), \
            f"{path.name} links {target}, which does not exist"


def test_every_parameter_of_the_schema_is_in_a_docs_table():
    text = "\n".join(p.read_text() for p in DOCS)
    missing = [".".join(k) for k, _ in docs.schema_leaves(SCHEMA) if f"| `{'.'.join(k)}` |" not in text]
    assert not missing, f"parameters without a row in a docs table: {', '.join(missing)} (add a `params` block)"


def test_the_license_and_the_credit_are_there():
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    notice = (ROOT / "NOTICE").read_text()
    assert "github.com/targamadze28/Analysis-of-the-latent-space-of-pretrained-deep-convolutional-neural-networks" \
        in notice


# --- the committed report belongs to the committed run ------------------------------------------------------------

def dvc_dir_md5(files: dict[str, bytes]) -> str:
    """DVC's hash of a folder: the MD5 of the sorted JSON list of its files' relative paths and MD5s."""
    entries = sorted(({"md5": hashlib.md5(b).hexdigest(), "relpath": rel} for rel, b in files.items()),
                     key=lambda e: e["relpath"])
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode()).hexdigest() + ".dir"


def committed_outs_under_reports(root: Path) -> dict[str, str]:
    lock = _git("show", "HEAD:dvc.lock", root=root)
    outs = {}
    for stage in (yaml.safe_load(lock or b"") or {}).get("stages", {}).values():
        for out in stage.get("outs", []):
            if out["path"].startswith("reports/"):
                outs[out["path"]] = out.get("md5")
    return outs


def committed_report_problems(root: Path) -> list[str]:
    """Why the report committed at HEAD is not the one its committed dvc.lock names (empty: it is)."""
    outs, problems, checked = committed_outs_under_reports(root), [], []
    for path, md5 in outs.items():
        names = (_git("ls-tree", "-r", "--name-only", "HEAD", path, root=root) or b"").decode().split()
        if not names:
            continue                                    # a DVC-cached out, not in git
        files = {n[len(path) + 1:]: _git("show", f"HEAD:{n}", root=root) for n in names}
        got = hashlib.md5(files[""]).hexdigest() if names == [path] else dvc_dir_md5(files)
        if got != md5:
            problems.append(f"committed {path} is not the one in the committed dvc.lock: rerun and commit both")
        checked.append(path)
    if "reports/report.md" not in checked:
        problems.append("reports/report.md is tracked by git but is no output in the committed dvc.lock")
        return problems
    # The figures the committed report shows are committed too, so a reader of the repository sees them.
    for target in LINK.findall(_git("show", "HEAD:reports/report.md", root=root).decode()):
        if not re.match(r"[a-z]+:", target) and target.endswith(".png"):
            rel = os.path.normpath(os.path.join("reports", target))
            if _git("cat-file", "-e", f"HEAD:{rel}", root=root) is None:
                problems.append(f"the committed report shows {target}, which is not committed")
    return problems


def test_dvc_dir_md5_matches_dvc_on_a_committed_folder():
    lock = _git("show", "HEAD:dvc.lock")
    if lock is None:
        pytest.skip("no committed dvc.lock")
    deps = {d["path"]: d["md5"] for s in yaml.safe_load(lock)["stages"].values() for d in s.get("deps", [])}
    folder = "latentspace/core"
    names = (_git("ls-tree", "-r", "--name-only", "HEAD", folder) or b"").decode().split()
    assert deps.get(folder) == dvc_dir_md5({n[len(folder) + 1:]: _git("show", f"HEAD:{n}") for n in names})


def test_the_committed_report_matches_the_committed_dvc_lock():
    if not (_git("ls-files", "--error-unmatch", "reports/report.md") or b"").strip():
        pytest.skip("reports/report.md is not git-tracked yet: the committed run's report is not in the repository")
    assert committed_report_problems(ROOT) == []


def test_the_report_check_finds_a_report_from_another_run(tmp_path):
    (tmp_path / "reports/glance").mkdir(parents=True)
    report = b"# Report\n![a](glance/a.png)\n"
    (tmp_path / "reports/report.md").write_bytes(report)
    (tmp_path / "reports/glance/a.png").write_bytes(b"png")
    lock = {"schema": "2.0", "stages": {"report": {"cmd": "x", "outs": [
        {"path": "reports/report.md", "md5": hashlib.md5(report).hexdigest()},
        {"path": "reports/glance", "md5": dvc_dir_md5({"a.png": b"png"})}]}}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "."], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "run"], cwd=tmp_path, check=True)
    assert committed_report_problems(tmp_path) == []
    (tmp_path / "reports/report.md").write_bytes(report + b"![b](glance/b.png)\n")
    (tmp_path / "reports/glance/a.png").write_bytes(b"another png")
    subprocess.run([*git, "commit", "-qam", "edit"], cwd=tmp_path, check=True)
    problems = committed_report_problems(tmp_path)
    assert any("reports/report.md is not the one" in p for p in problems)
    assert any("reports/glance is not the one" in p for p in problems)
    assert any("shows glance/b.png" in p for p in problems)


# --- the generator, on fabricated files ---------------------------------------------------------------------------

PARAMS = """\
# Header of the file, not of a key.

# The seed.
seed: 0
device: auto
precision: auto
delta: 15
# @@ section: study_b @@
study_b:
  # Latent sizes.
  hidden_sizes:
  - 16
  conv1_channels: 16  # channels of the first conv
"""


def test_params_comments_attach_to_the_key_below_and_skip_headers_and_markers():
    notes = docs.params_comments(PARAMS)
    assert notes[("seed",)] == "The seed."
    assert notes[("study_b", "hidden_sizes")] == "Latent sizes."
    assert notes[("study_b", "conv1_channels")] == "channels of the first conv"
    assert ("study_b",) not in notes and ("device",) not in notes


def test_no_tracked_file_points_outside_the_repository():
    """Code comments, parameter files and configs stand alone like the docs (the parameter tables are made from
    params.yaml's comments); plots/ holds vendored third-party files."""
    tracked = _git("ls-files", "-z").decode().split("\0")
    found = []
    for rel in tracked:
        path = ROOT / rel
        if not rel or rel.startswith("plots/") or not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        found += [f"{rel}: {bad!r}" for bad in OUTSIDE
                  if re.search(rf"(?<![A-Za-z_]){re.escape(bad)}(?![A-Za-z])", text)]
    assert not found, "these files point outside the repository: " + "; ".join(found)


def _project(tmp_path: Path, verdicts: dict | None = None) -> Path:
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/costs.yaml").write_text(yaml.safe_dump({
        "machine": "a test machine", "environment": {"venv_bytes": 6.5e9, "install_seconds": 178},
        "default_run": {"wall_seconds": None}, "workers": {"profile": "quick", "one_worker_wall_seconds": 300.0, "two_workers_wall_seconds": 200.0,
                    "stages": {"study_c@fc-none": {"one": 120.0, "two": 60.0}, "train_segmentation": {"two": 40.0}}},
        "noop_repro": {"median_seconds": 1.42, "runs": 7}, "test_suite": {"idle_seconds": 400.0}}))
    (tmp_path / "references.yaml").write_text(yaml.safe_dump({"claims": [
        {"id": "c-cells", "study": "C", "kind": "stated", "statement": "Each cell reaches its published accuracy."},
        {"id": "b-below-half", "study": "B", "kind": "derived", "statement": "Below half."}]}))
    (tmp_path / "metrics").mkdir()
    if verdicts is not None:
        (tmp_path / "metrics/verdicts.json").write_text(json.dumps(verdicts))
    return tmp_path


def _claim(cid: str, verdict: str, kind: str = "stated", reason: str | None = None) -> dict:
    return {"id": cid, "study": cid[0].upper(), "kind": kind, "statement": "s", "published": None, "measured": None,
            "verdict": verdict, "reason": reason, "decide": "more seeds" if reason else None,
            "preconditions": [{"name": "converged", "held": False, "detail": reason, "fix": "x"}] if reason else []}


def test_the_glance_shows_one_row_per_claim_with_its_verdicts_reasons_and_kinds(tmp_path):
    claims = [_claim("c-cells.fc-none.frozen", "reproduced"),
              _claim("c-cells.fc-none.scratch", "undecided", reason="scratch runs stopped at their epoch cap"),
              _claim("b-below-half", "reproduced", kind="derived")]
    root = _project(tmp_path, {"claims": claims, "counts_by_kind": {
        "stated": {"reproduced": 1, "undecided": 1}, "derived": {"reproduced": 1}, "extension": {}}})
    out = docs.block_glance(root, [])
    assert "2 reproduced, 1 undecided (3 checks of 2 claims)" in out
    assert "claims the sources state: 1 reproduced, 1 undecided (of 2 checks)" in out
    assert "claims derived from their tables: 1 reproduced (of 1 checks)" in out
    assert ("| C | Each cell reaches its published accuracy. | 1 reproduced, 1 undecided | "
            "scratch runs stopped at their epoch cap |") in out
    assert "| B | Below half. *(derived)* | **reproduced** |  |" in out


def test_the_glance_shows_headline_numbers_and_the_chosen_key_figure(tmp_path):
    root = _project(tmp_path, {"claims": [_claim("b-below-half", "reproduced")]})
    (root / "metrics/headline").mkdir()
    (root / "metrics/headline/study_a.json").write_text(json.dumps(
        {"baseline_test_miou": 1.0, "nn1_wce_test_miou": 0.9123, "nn1_wce_min_pair_sep": 0.55,
         "nn2_dice_test_miou": 0.99}))
    (root / "metrics/headline/study_b.json").write_text(json.dumps({"h16_probe_acc": 0.31, "h16_test_mse": 0.0123}))
    (root / "metrics/headline/study_c.json").write_text(json.dumps(
        {"fc_none_frozen_acc": 0.9, "fc_none_frozen_acc_std": 0.0031, "fc_none_scratch_acc": 0.98}))
    (root / "reports/glance").mkdir(parents=True)
    for name in ("study_a", "study_c"):
        (root / f"reports/glance/{name}.png").write_bytes(b"png")
    out = docs.block_glance(root, ["reports/glance/study_c.png"])
    assert "(colour baseline: 1)" in out
    assert "| net | wce | dice |" in out and "| `nn1` | 0.912 / 0.55 | – |" in out and "| `nn2` | – | 0.99 |" in out
    assert "| probe test accuracy | 0.31 |" in out and "| test MSE | 0.0123 |" in out
    assert "`fc-none` 0.9 / – / 0.98" in out
    assert "![study c](reports/glance/study_c.png)" in out and "[study a](reports/glance/study_a.png)" in out


def test_the_glance_says_so_when_nothing_has_run(tmp_path):
    assert "No verdicts yet" in docs.block_glance(_project(tmp_path), [])


def test_the_cost_box_reads_the_measurements_and_never_invents_one(tmp_path):
    root = _project(tmp_path)
    (root / "metrics/timing").mkdir()
    for stage, seconds, workers in (("study_c@fc-none", 60.0, 2), ("train_segmentation", 300.0, 2), ("eda", 5.0, None)):
        rec = {"stage": stage, "seconds": seconds, **({"workers": workers} if workers else {})}
        (root / f"metrics/timing/{stage}.json").write_text(json.dumps(rec))
    (root / "metrics/timing/latent_analysis@nn1-wce.json").write_text(json.dumps({"seconds": 9.0}))
    (root / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": {
        "study_c@fc-none": {}, "train_segmentation": {}, "eda": {}}}))
    out = docs.block_costs(root, [])
    assert "6.1 GiB" in out and "2 min 58 s" in out and "a test machine" in out and "1.4 s (median of 7)" in out
    assert "| `dvc repro` of the whole default pipeline, data from the offline copy (no download), 2 CPU cores, " \
           "fp32, `workers: auto` | not measured yet (the stages' own time 6 min 05 s: Study A 5 min 05 s, " \
           "Study C 1 min 00 s) |" in out
    assert ("| one worker against two (`-S workers=1`; results are the same) | 5 min 00 s with one worker against "
            "3 min 20 s with two (1.50x), the `quick` profile's whole run |") in out
    assert "| `make quick` (every stage at the quick profile, 2 CPU cores) | not measured yet |" in out
    assert ("| `make test` (the test suite, 2 CPU cores): idle machine / another process busy on one core | "
            "6 min 40 s / not measured yet |") in out
    workers = docs.block_workers(root, [])
    assert "| `study_c@fc-none` | 2 min 00 s | 1 min 00 s | 2.00x |" in workers
    assert "| `train_segmentation` | not measured yet | 40 s | – |" in workers
    assert "latent_analysis@nn1-wce" not in docs.block_stage_times(root, [])     # not in dvc.lock: stale
    assert docs.block_pool(root, []).startswith("Not measured yet") and docs.block_engine(root, []).startswith("Not measured yet")


def test_the_size_trial_compares_the_measured_trial_with_the_committed_stage_time_and_the_default(tmp_path):
    root = _project(tmp_path)
    assert docs.block_size_trial(root, []).startswith("Not measured yet")
    (root / "metrics/timing").mkdir()
    for stage, seconds in (("train_segmentation", 600.0), ("study_c@fc-none", 300.0)):
        (root / f"metrics/timing/{stage}.json").write_text(json.dumps({"stage": stage, "seconds": seconds}))
    costs = yaml.safe_load((root / "docs/costs.yaml").read_text())
    costs["size_trial"] = {"machine": "a test machine", "stages": {"train_segmentation": {
        "parameter": "segmentation.train_images", "trial": 10, "seconds": 240.0, "converged": "1 of 2",
        "outcome": "worse"}}}
    (root / "docs/costs.yaml").write_text(yaml.safe_dump(costs))
    default = yaml.safe_load((root / "params.yaml").read_text())["segmentation"]["train_images"]
    out = docs.block_size_trial(root, [])
    assert f"| `train_segmentation` | `segmentation.train_images` {default} -> 10 | 10 min 00 s -> 4 min 00 s | " \
           "1 of 2 | worse |" in out
    assert "save 6 min 00 s of the stages' own 15 min 00 s: 9 min 00 s in all (a test machine)" in out
    # The default run's time recorded with the trial wins over the committed run's.
    costs["size_trial"]["stages"]["train_segmentation"]["default_seconds"] = 300.0
    (root / "docs/costs.yaml").write_text(yaml.safe_dump(costs))
    assert "| 5 min 00 s -> 4 min 00 s |" in docs.block_size_trial(root, [])


def test_the_layer_order_block_shows_both_orders_and_whether_they_trained_alike(tmp_path):
    root = _project(tmp_path)
    assert docs.block_layer_order(root, []).startswith("Not measured yet")
    costs = yaml.safe_load((root / "docs/costs.yaml").read_text())
    costs["layer_order"] = {"machine": "a test machine", "models": {
        "conv autoencoder": {"original_order": 1000, "project_order": 1250, "bit_identical": True},
        "probe": {"original_order": 500, "project_order": None, "bit_identical": False}}}
    (root / "docs/costs.yaml").write_text(yaml.safe_dump(costs))
    out = docs.block_layer_order(root, [])
    assert "| conv autoencoder | 1,000 | 1,250 | 1.25x | yes |" in out
    assert "| probe | 500 | – | – | no |" in out
    assert "one thread (a test machine)" in out


def test_the_convergence_blocks_count_the_runs_stopped_by_patience(tmp_path):
    root = _project(tmp_path)
    def stop(converged, run, kept):
        return {"stopping": {"converged": converged, "hit_cap": not converged, "epochs_run": run,
                             "max_epochs": 50, "epoch_kept": kept, "phases": []}}
    (root / "metrics/segmentation").mkdir()
    (root / "metrics/segmentation/nn1-dice.json").write_text(json.dumps({"per_launch": [
        {"launch": 1, "step": 2, "mean_iou": 0.91, **stop(True, 12, 9)},
        {"launch": 2, "step": 4, "mean_iou": 0.93, **stop(False, 55, 55)}]}))
    out = docs.block_convergence(root, ["study_a"])
    assert out.startswith("1 of 2 runs stopped by their patience.")
    assert "| `nn1-dice` | chained, steps 2–4 | 2 | 1 of 2 | 12–55 | 9–55 | 0.91 / 0.93 |" in out
    (root / "metrics/study_c").mkdir()
    (root / "metrics/study_c/fc-none.json").write_text(json.dumps({"per_seed": [
        {"seed": s, "autoencoder": stop(True, 20 + s, 17 + s), "frozen": stop(True, 9, 4),
         "fine_tuned": stop(True, 10, 7), "scratch": stop(s == 0, 11, 8)} for s in (0, 1, 2)]}))
    out = docs.block_convergence(root, ["study_c"])
    assert "| `fc-none` | autoencoder | 3 | 3 of 3 | 20–22 | 17–19 |" in out and "| `fc-none` | scratch | 3 | 1 of 3 |" in out
    for folder, name in (("autoencoders", "ae-256"), ("sizes", "probe-256")):
        (root / f"metrics/study_b/{folder}").mkdir(parents=True)
        (root / f"metrics/study_b/{folder}/{name}.json").write_text(json.dumps(
            {"hidden": 256, "seed": 0, **stop(True, 30, 27)}))
    out = docs.block_convergence(root, ["study_b"])
    assert "| autoencoder | 256 | 1 | 1 of 1 | 30 | 27 |" in out and "| linear probe | 256 | 1 | 1 of 1 |" in out
    (tmp_path / "empty").mkdir()
    assert "No runs recorded yet" in docs.block_convergence(_project(tmp_path / "empty"), ["study_a"])
    with pytest.raises(ValueError, match="convergence needs one of"):
        docs.block_convergence(root, ["study_d"])


def test_the_colour_thresholds_come_from_the_constants(tmp_path):
    out = docs.block_colours(_project(tmp_path), [])
    assert f"Up to `delta` {MAX_UNCLIPPED_DELTA} every colour range" in out
    assert f"From `delta` {math.ceil(CHANNEL_OVERLAP_DELTA)} the ranges" in out
    assert f"From `delta` {math.ceil(BOX_OVERLAP_DELTA)} the colour boxes" in out


def test_a_stale_block_is_found_and_rewritten_and_prose_is_kept(tmp_path):
    root = _project(tmp_path)
    doc = root / "docs/page.md"
    doc.write_text("Intro.\n<!-- generated: params study_b -->\nold table\n<!-- end generated -->\nOutro.\n")
    assert docs.main(["--check", "--root", str(root)]) == 1
    assert docs.main(["--root", str(root)]) == 0
    text = doc.read_text()
    assert text.startswith("Intro.\n") and text.endswith("<!-- end generated -->\nOutro.\n")
    assert "| `study_b.hidden_sizes` |" in text and "old table" not in text
    assert docs.main(["--check", "--root", str(root)]) == 0


def test_an_unknown_block_or_section_is_an_error(tmp_path):
    root = _project(tmp_path)
    with pytest.raises(ValueError, match="unknown generated block"):
        docs.render("<!-- generated: nonsense -->\n<!-- end generated -->", root)
    with pytest.raises(ValueError, match="no parameter"):
        docs.block_params(root, ["no_such_section"])


def test_the_docs_package_is_small_modules():
    for module in sorted((ROOT / "latentspace/docs").glob("*.py")):
        lines = len(module.read_text().splitlines())
        assert lines <= 400, f"{module.name} has {lines} lines"
        assert module.read_text().lstrip().startswith('"""'), f"{module.name} has no docstring"


# --- every documented command and parameter example validates -----------------------------------------------

CODE_LINE = re.compile(r"^\s*(?:\$ )?((?:[A-Z_]+=\S+ )*(?:make|dvc exp run)\b[^#\n]*)", re.M)
INLINE = re.compile(r"`((?:[A-Z_]+=\S+ )*(?:make|dvc exp run)\b[^`]*)`")


def documented_commands() -> list[tuple[str, str]]:
    """(file, command) of every `make ...` and `dvc exp run ...` in a code block or inline code of the docs."""
    found = []
    for path in DOCS:
        text = path.read_text()
        blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
        cmds = [m for b in blocks for m in CODE_LINE.findall(b)] + INLINE.findall(re.sub(r"```.*?```", "", text, flags=re.S))
        found += [(path.name, c.strip()) for c in cmds]
    return found


def set_overrides(command: str) -> dict:
    """The `-S key=value` overrides of a command line, each value parsed as YAML (as DVC does)."""
    words, out = shlex.split(command), {}
    for flag, arg in zip(words, words[1:]):
        if flag in ("-S", "--set-param"):
            key, _, value = arg.partition("=")
            out[key] = yaml.safe_load(value)
    return out


def test_there_are_documented_examples():
    commands = [c for _, c in documented_commands()]
    assert any("-S delta=25" in c for c in commands) and any(c.startswith("make repro") for c in commands)


@pytest.mark.parametrize("where,command", documented_commands(), ids=lambda v: v if "." in v else None)
def test_every_documented_parameter_example_validates(where, command):
    overrides = set_overrides(command)
    if not overrides:
        return
    try:
        apply_profile(read_yaml(ROOT / "params.yaml"), overrides, source=f"{where}: {command}")
    except UserError as e:
        pytest.fail(f"{where}: `{command}` does not validate: {e}")


MAKE_VARIABLES = ("TORCH", "VENV", "PYTHON", "PROFILE_ARGS", "PAPER_ARGS", "SWEEP_ARGS", "UPGRADE", "LATENTSPACE_DATA_DIR")


@pytest.mark.parametrize("where,command", [wc for wc in documented_commands() if " make " in f" {wc[1]}"])
def test_every_documented_make_command_names_a_target_and_variables_that_exist(where, command):
    makefile = (ROOT / "Makefile").read_text()
    phony = set(re.search(r"^\.PHONY:(.*)$", makefile, re.M).group(1).split())
    words = shlex.split(command)
    i = words.index("make")
    targets = [w for w in words[i + 1:] if "=" not in w and not w.startswith("-")]
    variables = [w.split("=")[0] for w in words if "=" in w and not w.startswith("-")]
    assert targets and all(t in phony for t in targets), f"{where}: `{command}`: no such make target"
    for v in variables:
        assert v in MAKE_VARIABLES and (v == "LATENTSPACE_DATA_DIR" or re.search(rf"\b{v}\b", makefile)), \
            f"{where}: `{command}`: {v} is not a variable of the Makefile"


@pytest.mark.parametrize("profile", ["quick.yaml", "paper_scale.yaml"])
def test_the_documented_profiles_validate(profile):
    apply_profile(read_yaml(ROOT / "params.yaml"), read_profile(ROOT / profile), source=profile)


def test_the_bad_examples_of_the_past_would_fail():
    with pytest.raises(UserError, match="study_b.(repeat_sizes|jpeg_check_hidden).*is not allowed"):
        apply_profile(read_yaml(ROOT / "params.yaml"), set_overrides("dvc exp run -S 'study_b.hidden_sizes=[16,1024]'"))


# --- the CPU install switch ---------------------------------------------------------------------------------------

def _make_dry_run(*args: str) -> subprocess.CompletedProcess:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    return subprocess.run(["make", "-n", "-B", "setup", "VENV=/nonexistent-venv", *args], cwd=ROOT,
                          capture_output=True, text=True)


def test_torch_cpu_installs_the_pinned_versions_from_the_cpu_index_first():
    pins = re.findall(r'"(torch(?:vision)?==[^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert len(pins) == 2
    cpu = _make_dry_run("TORCH=cpu").stdout.splitlines()
    index = next(i for i, line in enumerate(cpu) if "--index-url https://download.pytorch.org/whl/cpu" in line)
    assert all(p in cpu[index] for p in pins)
    assert index < next(i for i, line in enumerate(cpu) if "-e '.[dev]'" in line)
    assert "download.pytorch.org" not in _make_dry_run().stdout
    bad = _make_dry_run("TORCH=gpu")
    assert bad.returncode != 0 and "TORCH=gpu is not a choice" in bad.stderr

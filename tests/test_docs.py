"""The front door: README and docs/ are generated where they should be, up to date, short, self-contained, and the
committed report belongs to the committed run (dvc.lock)."""
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from latentspace import docs
from latentspace.core.params import SCHEMA

ROOT = Path(__file__).resolve().parents[1]
DOCS = docs.doc_paths(ROOT)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _git(*args: str, root: Path = ROOT) -> bytes | None:
    res = subprocess.run(["git", *args], cwd=root, capture_output=True)
    return res.stdout if res.returncode == 0 else None


# --- the repository's own docs ------------------------------------------------------------------------------------

# What the generated blocks read; the committed versions of these stand in for a workspace whose run outputs
# changed since the commit (after `dvc exp run`, the README still shows the committed run, and rightly so).
BLOCK_INPUTS = ("metrics", "reports/glance", "docs/costs.yaml", "params.yaml", "references.yaml")


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


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_doc_points_outside_the_repository(path):
    text = path.read_text()
    for bad in ("SPEC", "../shared", "/work/", "shared/datasets"):
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


def test_params_notes_drop_references_to_the_protocol_document():
    notes = docs.params_comments("a:\n  # Side of the images (SPEC A1: 64), see (SPEC B).\n  b: 1\n")
    assert notes[("a", "b")] == "Side of the images (64), see."


def _project(tmp_path: Path, verdicts: dict | None = None) -> Path:
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/costs.yaml").write_text(yaml.safe_dump({
        "machine": "a test machine", "environment": {"venv_bytes": 6.5e9, "install_seconds": 178},
        "full_run": {"wall_seconds": None}}))
    (tmp_path / "references.yaml").write_text(yaml.safe_dump({"claims": [
        {"id": "c-cells", "statement": "Each cell reaches its published accuracy."},
        {"id": "b-below-half", "statement": "Below half."}]}))
    if verdicts is not None:
        (tmp_path / "metrics").mkdir()
        (tmp_path / "metrics/verdicts.json").write_text(json.dumps(verdicts))
    return tmp_path


def _claim(cid: str, verdict: str, measured=None, published=None) -> dict:
    return {"id": cid, "study": cid[0].upper(), "statement": "s", "published": published, "measured": measured,
            "verdict": verdict}


def test_the_glance_shows_one_row_per_published_claim_with_its_checks_summarised(tmp_path):
    claims = [_claim(f"c-cells.fc-none.{r}", v, {"mean": 0.98, "std": 0.001, "values": [0.979, 0.981]}, 0.9775)
              for r, v in (("frozen", "reproduced"), ("fine_tuned", "reproduced"), ("scratch", "not reproduced"))]
    claims.append(_claim("b-below-half", "reproduced", {"16": 0.31, "512": 0.42}, "< 0.5 at every size"))
    root = _project(tmp_path, {"claims": claims})
    out = docs.block_glance(root, [])
    assert "3 reproduced, 1 not reproduced (4 checks of 2 published claims)" in out
    assert ("| C | Each cell reaches its published accuracy. | 0.9775 | fc-none.frozen: 0.980 ± 0.001 (n=2); "
            "fc-none.fine_tuned: 0.980 ± 0.001 (n=2); fc-none.scratch: 0.980 ± 0.001 (n=2) | "
            "2 reproduced, 1 not reproduced |") in out
    assert "| B | Below half. | < 0.5 at every size | 16 0.310, 512 0.420 | **reproduced** |" in out
    claims += [_claim(f"c-cells.conv-none.{r}", "reproduced", None, 0.98) for r in ("frozen", "scratch")]
    (root / "metrics/verdicts.json").write_text(json.dumps({"claims": claims}))
    assert "| 5 checks: see the report | 4 reproduced, 1 not reproduced |" in docs.block_glance(root, [])


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
    assert "(colour baseline: 1.000)" in out
    assert "| net | wce | dice |" in out and "| `nn1` | 0.912 / 0.550 | — |" in out and "| `nn2` | — | 0.990 |" in out
    assert "| probe test accuracy | 0.310 |" in out and "| test MSE | 0.0123 |" in out
    assert "| `fc-none` | 0.900 ± 0.003 | — | 0.980 |" in out
    assert "![study c](reports/glance/study_c.png)" in out and "[study a](reports/glance/study_a.png)" in out


def test_the_glance_says_so_when_nothing_has_run(tmp_path):
    assert "No verdicts yet" in docs.block_glance(_project(tmp_path), [])


def test_the_cost_box_reads_the_measurements_and_never_invents_one(tmp_path):
    out = docs.block_costs(_project(tmp_path), [])
    assert "6.1 GiB" in out and "2 min 58 s" in out and "a test machine" in out
    assert "| full `make repro`, 2 CPU cores, fp32 | not measured yet |" in out


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

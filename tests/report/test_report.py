"""The report: built from a fabricated metrics tree in the formats of the metrics contract (never the real
pipeline), read as a reader would read it (headless Chromium opening the HTML from disk), and rerendered when a
metrics value changes. Published values come from references.yaml, never from this file."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from browser import find_browser, page_network_requests

import fake_metrics as fake
from fake_metrics import put_json, put_png
from latentspace.verdicts.headline import headline, headline_paths
from latentspace.report.appendix import run_identity
from latentspace.results import stage_times
from latentspace.report.build import write_report, write_stage_times
from latentspace.paths import GLANCE_DIR
from latentspace.report.glance_figures import FIGURES
from latentspace.verdicts.evaluate import context, evaluate, load_references
from latentspace.verdicts.base import VERDICTS

ROOT = Path(__file__).resolve().parents[2]
MODELS = ("nn1-wce", "nn1-dice", "nn2-wce", "nn2-dice", "nn3-wce", "nn3-dice")
SIZES = [16, 32, 256, 512]


# --- a fake project: params.yaml, references, metrics, verdicts and figures of every study --------------------

def _stat(lo: int, hi: int, mean: float, std: float) -> dict:
    return {"min": lo, "max": hi, "mean": mean, "std": std}


def fake_study_a_data(root: Path) -> None:
    """The formats of stages/study_a/generate_rectangles.py and stages/study_a/eda.py (metrics/eda/summary.json)."""
    for i, (name, n, contained) in enumerate([("eda_free", 50000, False), ("eda_contained", 50000, True),
                                               ("train", 256, True), ("test", 64, True)]):
        put_json(root, f"metrics/eda/generate/{name}.json", {"n": n, "image_size": 64, "delta": 15, "seed": 1000 + i,
                                                              "contained": contained, "clipped_colours": False,
                                                              "seconds": 1.5 + i})
    summary = {}
    for j, sample in enumerate(("eda_free", "eda_contained")):
        centres = {1: (42, 127, 212), 2: (127, 212, 42), 3: (212, 42, 127)}
        summary[sample] = {
            "n": 50000, "image_size": 64, "delta": 15, "contained": sample == "eda_contained", "clipped_colours": False,
            "background_fraction": 0.55981 + 0.14 * j,
            "classes": {f"class_{k}": {
                "images": 50000, "full_area_fraction": 0.17811 - 0.06 * j + 0.001 * k,
                "visible_area_fraction": 0.1467 - 0.04 * j + 0.001 * k, "hidden_fraction": 0.17636 - 0.02 * j,
                "fully_hidden_rate": 0.03452 - 0.003 * j,
                "colour": {ch: _stat(c - 15, c + 15, c + 0.01 * k, 8.97) for ch, c in zip("RGB", centres[k])}}
                for k in (1, 2, 3)},
            "overlap_rate": {"1-2": 0.50202 - 0.06 * j, "1-3": 0.49932, "2-3": 0.50536, "all_three": 0.1978},
            "geometry": {"xc": _stat(0, 63, 31.416, 18.4622), "yc": _stat(0, 63, 31.5038, 18.4874),
                         "w": _stat(1, 64, 32.5324 - 10 * j, 18.4386), "h": _stat(1, 64, 32.4835, 18.4362),
                         "clipped_fraction": 0.74279 * (1 - j)}}
        put_png(root, f"reports/eda/examples-{sample}.png")
    put_json(root, "metrics/eda/summary.json", {**summary, "seconds": 7.07})
    for name in ("geometry", "areas", "colours"):
        put_png(root, f"reports/eda/{name}.png")


def fake_datasets(root: Path) -> None:
    """The format of stages/prepare_dataset.py."""
    for name, sha, (train, val) in (("mnist", "06af5dfe" * 8, (50000, 10000)), ("cifar10", "c58f30108" * 7, (45000, 5000))):
        put_json(root, f"metrics/datasets/{name}.json", {
            "dataset": name.upper(), "source": "offline copy", "obtained_by": "offline copy via LATENTSPACE_DATA_DIR",
            "sha256": {f"{name}.npz": sha}, "image_shape": [1, 28, 28], "train": train, "val": val, "test": 10000,
            "split": "seeded permutation", "split_seed": 0, "seconds": 0.36})


def fake_latent_image_sets(root: Path) -> None:
    put_json(root, "metrics/image_sets.json", {
        "image_sets": {variant: {
            "variant": variant, "images": 30, "per_class": {"1": 10, "2": 10, "3": 10},
            "factor_ranges": {f: {c: ([10, 20] if (f in "RGB" or variant == "all") else [32, 32]) for c in "123"}
                              for f in ("R", "G", "B", "w", "h", "xc", "yc")}} for variant in ("color", "all")},
        "image_size": 64, "delta": 15, "contained": True})


def fake_studies(root: Path, refs: dict) -> None:
    """Every study in the contract's formats: Study A per (net, loss) over two launches, Study B over three
    seeds, Study C at the published accuracies (+ a seed jitter)."""
    counts = refs["facts"]["study_a_parameters"]["values"]
    fake.segmentation(root, {m: {"parameters": counts[m.split("-")[0]], "mean_iou": 0.8 + 0.01 * i}
                             for i, m in enumerate(MODELS)})
    fake.baseline(root, 0.6543)
    for i, m in enumerate(MODELS):
        fake.latent(root, m, {"1-2": [0.99, 0.98], "1-3": [0.97, 0.96], "2-3": [0.7 + 0.01 * i, 0.72]},
                    layer="pool3" if m.startswith("nn1") else "bottleneck")
    published = refs["facts"]["study_b_probe_accuracy"]["values"]
    fake.study_b(root, {h: [published.get(h, 0.3 + 0.01 * i) + d for d in (-0.001, 0.0, 0.001)]
                        for i, h in enumerate(SIZES)},
                 {h: [0.02 / (i + 1), 0.021 / (i + 1)] for i, h in enumerate(SIZES)})
    fake.study_c_near_published(root, refs)


def write_verdicts(root: Path) -> dict:
    """What the verdicts stage writes, from the fake metrics."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    ctx = context(root, params, load_references(root / "references.yaml"))
    result = evaluate(ctx)
    put_json(root, "metrics/verdicts.json", result)
    for name, path in headline_paths(root).items():
        put_json(root, path.relative_to(root).as_posix(), headline(ctx, result)[name])
    return result


def fake_all(root: Path) -> None:
    for name in ("references.yaml", "paper_scale.yaml"):
        shutil.copy(ROOT / name, root / name)
    refs = fake.references()
    fake_study_a_data(root)
    fake_latent_image_sets(root)
    fake_datasets(root)
    fake_studies(root, refs)
    write_verdicts(root)
    for i, stage in enumerate(("train_segmentation", "study_c@fc-none", "verdicts")):
        fake.timing(root, stage, 10.0 + i)


@pytest.fixture
def project(tmp_path) -> Path:
    """A project folder with the real params.yaml (made small) and metrics + figures for every study."""
    root = tmp_path / "project"
    root.mkdir()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["study_b"]["hidden_sizes"] = SIZES
    params["study_b"]["repeat_sizes"] = [h for h in params["study_b"]["repeat_sizes"] if h in SIZES]
    params["segmentation"]["losses"] = ["wce", "dice"]
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    fake_all(root)
    return root


def render(root: Path, env: dict | None = None, figures: bool = False) -> tuple[str, str]:
    """The report's Markdown and HTML; the key figures are drawn only where a test looks at them (matplotlib
    takes seconds)."""
    write_report(root, root / "reports/report.md", root / "reports/report.html", env=env or {}, figures=figures)
    return (root / "reports/report.md").read_text(), (root / "reports/report.html").read_text()


# --- content ------------------------------------------------------------------------------------------

def section(md: str, title: str) -> str:
    """The Markdown of the section whose heading starts with `title`, up to the next heading of its level."""
    found = re.search(rf"^(#+) {re.escape(title)}.*?$", md, re.M)
    assert found, f"no section {title!r}"
    level = len(found.group(1))
    rest = md[found.end():]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.M)
    return rest[:end.start()] if end else rest


def table_row(md: str, *first_cells: str) -> list[str]:
    """The cells of the first Markdown table row that starts with `first_cells`."""
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[:len(first_cells)] == list(first_cells):
            return cells
    raise AssertionError(f"no table row starting with {first_cells}")


def test_the_report_opens_with_the_verdicts_and_ends_with_the_appendix(project):
    md, html = render(project, figures=True)
    headings = re.findall(r"^## (.+)$", md, re.M)
    assert headings[0] == "Reproduction at a glance"
    studies = [i for i, h in enumerate(headings) if h.startswith("Study ")]
    appendix = [i for i, h in enumerate(headings) if h.startswith("Appendix")]
    assert len(studies) == 3 and len(appendix) == 4 and max(studies) < min(appendix)
    glance = section(md, "Reproduction at a glance")
    verdicts = json.loads((project / "metrics/verdicts.json").read_text())
    rows = [line for line in glance.splitlines() if line.startswith("| ") and any(f"| {v} |" in line for v in VERDICTS)]
    assert len(rows) == len(verdicts["claims"])
    # Published and measured as the references and the metrics say.
    refs = fake.references()
    pub = refs["facts"]["study_c_test_scores"]["values"]["conv-none"]["scratch"]["test_accuracy"]
    row = table_row(glance, "Test accuracy of conv-none scratch as published.")
    claim = next(c for c in verdicts["claims"] if c["id"] == "c-cells.conv-none.scratch")
    assert row[1] == f"{pub:.4f}" and row[2].startswith(f"{claim['measured']['mean']:.4g}")
    assert row[3] == claim["verdict"]
    nn2 = table_row(glance, "NN2 has the original Keras net's parameter count.")
    assert nn2[1] == nn2[2] == f"{refs['facts']['study_a_parameters']['values']['nn2']:,}"
    # One sentence per study, then the three key figures, all before the first study's detail.
    for study in ("Study A (rectangles", "Study B (CIFAR-10", "Study C (MNIST"):
        assert study in glance
    assert "colour baseline" in glance and "0.654" in glance
    for name in FIGURES:
        assert f"glance/{name}" in glance and (project / GLANCE_DIR / name).stat().st_size > 5000
    # Provenance, parameters and stage times are in the appendix only.
    assert "`delta` | 15" in section(md, "Appendix A") and "`verdicts.clean_pair` | 0.95" in section(md, "Appendix A")
    assert "06af5dfe" in section(md, "Appendix B") and "06af5dfe" not in section(md, "Study C")
    assert "`train`" in section(md, "Appendix B")
    # Stage times in the HTML (DVC-cached) only: the git-tracked Markdown is the same for every rerun.
    assert "11.0" not in section(md, "Appendix D") and "metrics/timing/" in section(md, "Appendix D")
    assert re.search(r"study_c@fc-none</code></td>\s*<td[^>]*>11\.0<", html) or "11.0" in html
    assert "McNemar" in section(md, "Appendix C") or "paired t" in section(md, "Appendix C")
    # The HTML puts the table of contents after the glance.
    assert html.index("Reproduction at a glance") < html.index("<nav>")


def test_every_study_shows_its_spread_over_launches_and_seeds(project):
    md, html = render(project)
    a = section(md, "Study A")
    # nn1-dice: launches at 0.81 and 0.82 -> mean 0.815, sample std 0.0071.
    assert table_row(a, "nn1 / dice")[:5] == ["nn1 / dice", str(fake.references()["facts"]["study_a_parameters"]
                                                                  ["values"]["nn1"]), "2", "0.865 ± 0.0071",
                                               "0.815 ± 0.0071"]
    assert table_row(a, "baseline")[:5] == ["baseline", "0", "1", "0.6543", "0.6543"]
    assert table_row(section(a, "A4. Separability"), "nn3 / wce")[4:8] == ["0.985 ± 0.0071", "0.965 ± 0.0071",
                                                                          "0.73 ± 0.014", "2"]
    assert "| true background | 1800 (0.938) |" in section(a, "A3. Confusion")
    c = section(md, "Study C")
    assert len([line for line in section(c, "Test accuracy").splitlines()
                if re.match(r"\| (fc|conv) \| (none|erasing) \| (frozen|fine-tuned|scratch) \|", line)]) == 12
    # Kept epoch per seed (5 - seed) and the seeds that kept the last allowed epoch.
    assert table_row(c, "conv", "erasing", "scratch", "5") == ["conv", "erasing", "scratch", "5", "5, 4, 3", "1/3"]
    assert table_row(c, "fc", "none", "autoencoder", "2") == ["fc", "none", "autoencoder", "2", "2, 2, 2", "3/3"]
    b = section(md, "Study B")
    assert table_row(b, "256")[:2] == ["256", "3"]
    assert "summary.png" in b
    figures = sorted((project / "reports").rglob("*.png"))
    assert html.count('<img src="data:image/png;base64,') == len(figures)
    assert "Not available" not in md and "Could not be built" not in md


def test_a_changed_metrics_value_changes_the_report(project):
    md, html = render(project)
    assert "0.3812" not in md
    rec = json.loads((project / "metrics/study_b/summary.json").read_text())
    rec["by_hidden"]["32"]["probe_test_accuracy_values"] = [0.3812]
    put_json(project, "metrics/study_b/summary.json", rec)
    md2, html2 = render(project)
    assert "0.3812" in section(md2, "Study B") and "0.3812" in html2


@pytest.mark.parametrize("rel, path, value, study", [
    ("metrics/eda/summary.json", ["eda_contained", "background_fraction"], 0.6125, "Study A"),
    ("metrics/segmentation/nn1-wce.json", ["per_launch", 0, "best_epoch"], 987, "Study A"),
    ("metrics/latent/nn2-dice.json", ["layers", "bottleneck", "image_sets", "all", "umap", "2", "silhouette"],
     0.777, "Study A"),
    ("metrics/study_c/fc-erasing.json", ["autoencoder", "test_mse", "values"], [0.0123, 0.0123, 0.0123], "Study C"),
    ("metrics/eda/generate/train.json", ["seed"], 987654321, "Appendix B"),
    ("metrics/datasets/mnist.json", ["sha256", "mnist.npz"], "feedc0de" * 8, "Appendix B"),
])
def test_a_changed_value_in_any_study_changes_its_section(project, rel, path, value, study):
    md, _ = render(project)
    data = json.loads((project / rel).read_text())
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    put_json(project, rel, data)
    md2, html2 = render(project)
    shown = str(value[0]) if isinstance(value, list) else str(value)
    assert shown not in section(md, study)
    assert shown in section(md2, study) and shown in html2


def chained_records(root: Path) -> None:
    """nn1 under the chained protocol as stages/study_a/train_segmentation.py writes it: one model through
    wce then dice, launch 1 then launch 2 (steps 1-4; step 3 hits its cap), and focal from fresh weights."""
    order = [("wce", 1), ("dice", 1), ("wce", 2), ("dice", 2)]
    chain = [{"step": i, "loss": loss, "launch": k, "mean_iou": 0.7 + 0.01 * i, "converged": i != 3}
             for i, (loss, k) in enumerate(order, start=1)]
    for loss in ("wce", "dice", "focal"):
        steps = [(i, k) for i, (lo, k) in enumerate(order, start=1) if lo == loss] or [(None, 1), (None, 2)]
        per_launch = [{"launch": k, "seed": 100 + k, "mean_iou": 0.7 + 0.01 * i if i else 0.65 + 0.01 * k,
                       "best_epoch": 4, "epochs": 6, "step": i,
                       "started_from": None if i in (None, 1) else "nn1-{} launch {}".format(*order[i - 2]),
                       "stopping": fake.stopping(i != 3, 6, 30)} for i, k in steps]
        put_json(root, f"metrics/segmentation/nn1-{loss}.json", {
            "net": "nn1", "loss": loss, "parameters": 1000, "protocol": "chained", "launches": 2,
            "seeds": [101, 102], "per_launch": per_launch, "chain": chain if loss != "focal" else None,
            "train_images": 256, "val_images": 32, "test_images": 64, "delta": 15})


def test_study_a_shows_every_step_of_each_chain_and_how_it_stopped(project):
    for p in (project / "metrics/segmentation").glob("*-*.json"):
        p.unlink()
    chained_records(project)
    md, _ = render(project)
    a = section(md, "A3. Training protocol")
    assert "`chained`" in a and "wce → dice" in a
    assert table_row(a, "nn1", "1") == ["nn1", "1", "wce", "1", "fresh weights", "0.71", "6 / 30", "3",
                                        "patience (converged)"]
    assert table_row(a, "nn1", "2")[2:6] == ["dice", "1", "nn1-wce launch 1", "0.72"]
    assert table_row(a, "nn1", "3")[2:] == ["wce", "2", "nn1-dice launch 1", "0.73", "30 / 30", "30", "epoch cap"]
    assert table_row(a, "nn1", "fresh", "focal", "2")[4:6] == ["fresh weights", "0.67"]
    assert table_row(a, "nn1: chain") == ["nn1: chain", "4", "3", "1"]
    assert table_row(a, "nn1: fresh weights") == ["nn1: fresh weights", "2", "2", "0"]


def test_studies_b_and_c_count_the_runs_that_converged_and_that_hit_their_cap(project):
    # Study B's autoencoder records (metrics/study_b/autoencoders/): one hit its cap.
    capped = project / "metrics/study_b/autoencoders/ae-512.json"
    rec = json.loads(capped.read_text())
    rec["stopping"] = fake.stopping(False)
    capped.write_text(json.dumps(rec))
    rec = json.loads((project / "metrics/study_c/fc-none.json").read_text())
    rec["per_seed"][1]["scratch"]["stopping"] = fake.stopping(False)
    put_json(project, "metrics/study_c/fc-none.json", rec)
    md, _ = render(project)
    b = section(md, "Study B")
    assert table_row(b, "autoencoders") == ["autoencoders", "8", "7", "1"]
    assert table_row(b, "linear probes") == ["linear probes", "8", "8", "0"]
    c = section(md, "Study C")
    assert table_row(c, "scratch", "12") == ["scratch", "12", "11", "1"]
    assert table_row(c, "autoencoder", "12") == ["autoencoder", "12", "12", "0"]


def test_a_study_not_run_yet_is_a_note_and_the_others_still_render(project):
    shutil.rmtree(project / "metrics/segmentation")
    shutil.rmtree(project / "metrics/study_c")
    write_verdicts(project)
    md, _ = render(project, figures=True)
    a = section(md, "Study A")
    assert "Not available yet: no metrics under `metrics/segmentation/`" in section(a, "A3. Segmentation")
    assert "0.5598" in section(a, "A2.")
    assert "Not available yet" in section(md, "Study C")
    assert "0.3" in section(md, "Study B")
    glance = section(md, "Reproduction at a glance")
    assert table_row(glance, "Test accuracy of fc-none frozen as published.")[2:4] == ["–", "not run"]
    # The key figure of a study that has not run says so; it still exists (an out of the report stage).
    assert (project / GLANCE_DIR / "study_c.png").stat().st_size > 1000


def test_a_record_in_an_unexpected_format_is_named_not_fatal(project):
    put_json(project, "metrics/latent/nn1-wce.json", {"net": "nn1", "loss": "wce"})
    md, _ = render(project)
    assert "Could not be built" in section(md, "A4. Latent") and "'layers'" in section(md, "A4. Latent")
    assert "0.815" in section(md, "A3. Segmentation")
    # The key figure of a study whose metrics it cannot read says so; the report still renders.
    put_json(project, "metrics/study_b/summary.json", {"by_hidden": {"16": {"test_mse": 0.01}}})
    md, _ = render(project, figures=True)
    assert table_row(section(md, "Study B"), "16")[2:5] == ["0.01", "–", "–"]
    assert (project / GLANCE_DIR / "study_b.png").exists()


def test_nothing_run_yet_renders_with_notes(tmp_path):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    md, html = render(tmp_path, figures=True)
    assert "No verdicts yet" in section(md, "Reproduction at a glance")
    assert md.count("Not available yet") >= 3
    assert "No stage has written its timing file" in html and "metrics/timing/" in section(md, "Appendix D")
    assert 'class="note"' in html
    assert all((tmp_path / GLANCE_DIR / name).exists() for name in FIGURES)


def test_stage_times_come_from_the_timing_files(project):
    times = stage_times(project)
    assert times["study_c@fc-none"]["seconds"] == 11.0 and set(times) == {
        "train_segmentation", "study_c@fc-none", "verdicts"}
    fake.timing(project, "report", 99.0)      # the previous run's: replaced by this run's own time
    record = write_stage_times(project, project / "metrics/stage_times.json", "report", 0.7)
    assert record == json.loads((project / "metrics/stage_times.json").read_text())
    assert record["seconds"] == 0.7 and record["stages"]["verdicts"] == 12.0 and "report" not in record["stages"]
    assert record["total_seconds"] == pytest.approx(10.0 + 11.0 + 12.0 + 0.7)


# --- which run made the report ------------------------------------------------------------------------

def git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True, text=True).stdout


def set_param(root: Path, key: str, value) -> dict:
    params = yaml.safe_load((root / "params.yaml").read_text())
    node = params
    *parents, last = key.split(".")
    for k in parents:
        node = node[k]
    node[last] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return params


def write_lock(root: Path, **stages: dict) -> None:
    """A dvc.lock whose stages ran with the given parameters (dotted keys, as DVC records a stage's params)."""
    (root / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": {
        name: {"cmd": "python x.py", "params": {"params.yaml": values}} for name, values in stages.items()}}))


def identity_text(root: Path, params: dict, env: dict | None = None) -> str:
    return " ".join(getattr(b, "text", "") for b in run_identity(root, params, env=env or {}))


def test_run_identity_names_the_parameters_the_run_used_whatever_the_state_of_git(project):
    import hashlib
    digest = hashlib.sha256((project / "params.yaml").read_bytes()).hexdigest()[:12]
    params = yaml.safe_load((project / "params.yaml").read_text())
    text = identity_text(project, params)
    assert "No other stage has recorded" in text and digest in text

    # The run DVC recorded, at the parameters of params.yaml: the same words before and after a commit (the
    # issue's case: a committed report must not claim uncommitted changes, nor name the commit before it).
    write_lock(project, **{"generate_rectangles@train": {"delta": 15, "seed": params["seed"]},
                           "report": {"delta": 3}})          # the report's own entry is last run's: not read
    before_commit = run_identity(project, params, env={})
    assert len(before_commit) == 1 and "recorded in `dvc.lock`" in before_commit[0].text
    assert "the commit that holds this report" in before_commit[0].text and digest in before_commit[0].text
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "params.yaml", "dvc.lock")
    git(project, "commit", "-qm", "run")
    assert run_identity(project, params, env={})[0].text == before_commit[0].text
    assert "uncommitted" not in before_commit[0].text
    head = git(project, "rev-parse", "HEAD").strip()

    # A stage that ran with other values than params.yaml holds now: which stage, which value.
    params = set_param(project, "delta", 25)
    write_lock(project, **{"generate_rectangles@train": {"delta": 15}, "eda": {"eda.examples": 9}})
    params = set_param(project, "eda.examples", 9)
    blocks = run_identity(project, params, env={})
    assert "other values" in blocks[0].text
    assert blocks[1].rows == [["`generate_rectangles@train`", "`delta`", "15", "25"]]

    blocks = run_identity(project, params, env={"DVC_EXP_NAME": "brisk-owl", "DVC_EXP_BASELINE_REV": head})
    assert "brisk-owl" in blocks[0].text and head[:7] in blocks[0].text
    assert ["`delta`", "15", "25"] in blocks[1].rows


def test_a_rerun_with_other_stage_times_rewrites_report_md_identically(project):
    """What a rerun of the same run on another machine changes (seconds) stays out of the tracked report.md."""
    write_lock(project, **{"generate_rectangles@train": {"delta": 15}})
    md, html = render(project)
    fake.timing(project, "study_c@fc-none", 99.5)
    md_again, html_again = render(project)
    assert md_again == md and html_again != html and "99.5" in html_again


def test_provenance_names_the_source_and_versions_never_a_machine_path(project):
    from importlib import metadata
    (project / "requirements.lock").write_text("# lock\nnumpy==0.0.1\ntorch==" + metadata.version("torch").split("+")[0]
                                               + "\n")
    write_report(project, project / "reports/report.md", project / "reports/report.html", env={}, figures=False)
    md = (project / "reports/report.md").read_text()
    b = section(md, "Appendix B")
    assert "offline copy via LATENTSPACE_DATA_DIR" in b and "06af5dfe" in b
    a = section(md, "Appendix A")
    assert f"| `scipy` | {metadata.version('scipy')} | – |" in a
    assert f"| `numpy` | {metadata.version('numpy')} | **0.0.1** (differs) |" in a
    assert re.search(r"\| `torch` \| [^|]+ \| [0-9.]+ \|", a)
    # No absolute path of this machine anywhere in the report.
    for where in (str(project), str(Path.home()), str(ROOT)):
        assert where not in md


@pytest.mark.e2e
def test_the_report_stage_commits_its_markdown_and_figures_to_git_and_its_html_to_dvc(dvc_repo):
    """Only the report stage, on a fake metrics tree. (That `dvc exp run -S` reruns it and the report names the
    experiment and its changed parameters: tests/test_pipeline_full.py, on the whole tiny pipeline.)"""
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    (dvc_repo.path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"report": pipeline["stages"]["report"]}}))
    fake_all(dvc_repo.path)
    # The software table reads the pinned versions: a dependency of the report stage.
    shutil.copy(ROOT / "requirements.lock", dvc_repo.path / "requirements.lock")
    for dep in pipeline["stages"]["report"]["deps"]:
        assert (dvc_repo.path / dep).exists(), f"the fake project lacks the report's dependency {dep}"
    dvc_repo.commit("inputs")
    dvc_repo.dvc("repro", "report")
    dvc_repo.commit("baseline")
    md = (dvc_repo.path / "reports/report.md").read_text()
    assert "No other stage has recorded" in md and "uncommitted" not in md
    # The report and the key figures are committed to git; the HTML, which embeds every figure (megabytes per
    # run), stays in the DVC cache.
    tracked = set(dvc_repo.run("git", "ls-files", "reports", "metrics/stage_times.json").stdout.split())
    assert {"reports/report.md", *(f"{GLANCE_DIR}/{n}" for n in FIGURES), "metrics/stage_times.json"} <= tracked
    assert "reports/report.html" not in tracked and (dvc_repo.path / "reports/report.html").is_file()


# --- as a reader sees it: headless Chromium opens the HTML from disk ----------------------------------



# Writes what the page loaded into the DOM, for --dump-dom to return: images that did not decode, and
# every resource the page fetched (Resource Timing lists fetches, not data: URIs).
PROBE_SCRIPT = """<script>
window.addEventListener('load', function () {
  var broken = Array.prototype.filter.call(document.images, function (i) {
    return !i.complete || i.naturalWidth === 0; }).map(function (i) { return i.getAttribute('src').slice(0, 60); });
  var fetched = performance.getEntriesByType('resource').map(function (e) { return e.name; });
  var out = document.createElement('pre');
  out.id = 'probe-result';
  out.textContent = JSON.stringify({images: document.images.length, broken: broken, fetched: fetched});
  document.body.appendChild(out);
});
</script>"""


def browse(browser: str, html_path: Path, work: Path) -> dict:
    """Open `html_path` from disk: take a screenshot, and report images, fetches and page network requests."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", "--host-resolver-rules=MAP * ~NOTFOUND"]
    probe_copy = html_path.with_name(html_path.stem + ".probe.html")
    probe_copy.write_text(html_path.read_text().replace("</body>", PROBE_SCRIPT + "</body>"))
    netlog = work / "netlog.json"
    dom = subprocess.run([browser, *flags, f"--user-data-dir={work / 'profile-dom'}", f"--log-net-log={netlog}",
                          "--dump-dom", probe_copy.as_uri()], capture_output=True, text=True, timeout=60)
    found = re.search(r'<pre id="probe-result">(.*?)</pre>', dom.stdout, re.S)
    assert found, f"the page did not finish loading in Chromium:\n{dom.stderr[-2000:]}"
    result = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    shot = work / "screenshot.png"
    subprocess.run([browser, *flags, f"--user-data-dir={work / 'profile-shot'}", "--window-size=1280,2400",
                    f"--screenshot={shot}", html_path.as_uri()], capture_output=True, timeout=60)
    result["screenshot"] = shot
    result["page_requests"] = page_network_requests(netlog)
    return result




def test_html_has_no_script_and_no_remote_reference(project):
    _, html = render(project)
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", html, re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(https?:|//)", html, re.I)
    assert "@import" not in html


def test_chromium_opens_the_report_offline_with_every_figure(project, tmp_path):
    browser = find_browser()
    render(project, figures=True)
    html_path = project / "reports/report.html"
    result = browse(browser, html_path, tmp_path)
    # Every figure of every study is on the page, and every one of them decoded.
    assert result["images"] == len(list((project / "reports").rglob("*.png"))) >= 25, result
    assert result["broken"] == [], result
    assert not [u for u in result["fetched"] if not u.startswith(("file:", "data:"))], result
    assert result["page_requests"] == [], result
    assert result["screenshot"].stat().st_size > 10_000
    keep = os.environ.get("REPORT_SCREENSHOT")     # to look at it: REPORT_SCREENSHOT=/tmp/shot.png pytest ...
    if keep:
        shutil.copy(result["screenshot"], keep)


def test_the_browser_check_catches_a_broken_image_and_a_remote_fetch(tmp_path):
    """The check above must be able to fail: a page with a missing figure and a remote style sheet."""
    browser = find_browser()
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><head><link rel="stylesheet" href="https://example.com/a.css">'
                    '</head><body><img src="absent.png"></body></html>')
    result = browse(browser, page, tmp_path)
    assert result["broken"] == ["absent.png"]
    assert "https://example.com/a.css" in result["fetched"]
    assert "https://example.com/a.css" in result["page_requests"]


# What the first screen shows: where the verdict table starts and ends, and the first verdict it holds.
GLANCE_PROBE = """<script>
window.addEventListener('load', function () {
  var table = document.querySelector('#reproduction-at-a-glance ~ .tablewrap table');
  var r = table.getBoundingClientRect();
  var first = table.querySelector('tbody tr');
  var out = document.createElement('pre');
  out.id = 'glance-result';
  out.textContent = JSON.stringify({top: r.top, height: window.innerHeight,
    first_row_bottom: first.getBoundingClientRect().bottom, badges: table.querySelectorAll('.badge').length});
  document.body.appendChild(out);
});
</script>"""


def test_the_verdict_table_is_on_the_first_screen(project, tmp_path):
    browser = find_browser()
    render(project)
    page = project / "reports/report.html"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,800",
             "--host-resolver-rules=MAP * ~NOTFOUND"]
    probe = page.with_name("glance.probe.html")
    probe.write_text(page.read_text().replace("</body>", GLANCE_PROBE + "</body>"))
    dom = subprocess.run([browser, *flags, f"--user-data-dir={tmp_path / 'p1'}", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=60)
    found = re.search(r'<pre id="glance-result">(.*?)</pre>', dom.stdout, re.S)
    assert found, dom.stderr[-2000:]
    where = json.loads(found.group(1))
    # The table starts in the upper part of the first screen (below the counts by kind) and its first row is whole.
    assert where["top"] < 0.75 * where["height"] and where["first_row_bottom"] < where["height"], where
    assert where["badges"] == len(json.loads((project / "metrics/verdicts.json").read_text())["claims"])
    # The screenshot of the first screen shows the green badges of reproduced claims.
    shot = tmp_path / "first-screen.png"
    subprocess.run([browser, *flags, f"--user-data-dir={tmp_path / 'p2'}", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=60)
    import matplotlib.image
    pixels = (matplotlib.image.imread(shot)[..., :3] * 255).round().astype(int)
    green = ((pixels == (0xd4, 0xef, 0xdf)).all(axis=-1)).sum()
    assert pixels.shape[:2] == (800, 1280) and green > 500, green

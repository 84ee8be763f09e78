"""The report: built from a fake metrics tree (never the real pipeline), read as a reader would read it
(headless Chromium opening the HTML from disk), and rerendered when a metrics value changes."""
from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
import yaml

from latentspace.report import run_identity, stage_times, write_report, write_stage_times

ROOT = Path(__file__).resolve().parents[1]


# --- a fake project: params.yaml, metrics and figures of every study ---------------------------------

def tiny_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid PNG of one colour, written with the standard library only."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def put_json(root: Path, rel: str, data) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(data))


def put_png(root: Path, rel: str, rgb=(47, 93, 138)) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(tiny_png(60, 30, rgb))


def fake_study_b(root: Path, sizes: list[int]) -> None:
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    for i, h in enumerate(sizes):
        put_json(root, f"metrics/study_b/sizes/ae-{h}.json",
                 {"hidden": h, "test_mse": 0.05 - 0.005 * i, "val_mse": 0.051 - 0.005 * i, "seconds": 10.0 + i})
        put_json(root, f"metrics/study_b/sizes/probe-{h}.json",
                 {"hidden": h, "train_accuracy": 0.4 + 0.01 * i, "val_accuracy": 0.39, "test_accuracy": 0.38 + 0.01 * i,
                  "test_macro_f1": 0.37 + 0.01 * i, "best_epoch": 3, "epochs": 4,
                  "per_class": {c: {"precision": 0.3 + 0.01 * k, "recall": 0.2} for k, c in enumerate(classes)},
                  "confusion": [[1] * 10] * 10, "seconds": 2.5})
        put_png(root, f"reports/study_b/probe-{h}-confusion.png")
        put_png(root, f"reports/study_b/ae-{h}-reconstructions.png")
    put_png(root, "reports/study_b/summary.png")
    put_json(root, "metrics/study_b/summary.json", {"best_probe_hidden": sizes[-1], "seconds": 0.4})


def _stat(lo: int, hi: int, mean: float, std: float) -> dict:
    return {"min": lo, "max": hi, "mean": mean, "std": std}


def fake_study_a_data(root: Path) -> None:
    """The formats of stages/generate_rectangles.py and stages/eda.py (metrics/eda/summary.json)."""
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


SEG_MODELS = [("nn1", "wce", 21052), ("nn2", "dice", 61880), ("nn3", "focal", 11216), ("baseline", None, 0)]
SEG_CLASSES = ("background", "class1", "class2", "class3")


def fake_segmentation(root: Path) -> None:
    """The contract of metrics/segmentation/<net>-<loss>.json and baseline.json."""
    for i, (net, loss, params) in enumerate(SEG_MODELS):
        name = net if loss is None else f"{net}-{loss}"
        put_json(root, f"metrics/segmentation/{name}.json", {
            "net": net, "loss": loss, "parameters": params, "pixel_accuracy": 0.9123 - 0.01 * i,
            "iou": {c: 0.81 + 0.01 * k - 0.02 * i for k, c in enumerate(SEG_CLASSES)},
            "dice": {c: 0.89 + 0.01 * k - 0.02 * i for k, c in enumerate(SEG_CLASSES)},
            "mean_iou": 0.8345 - 0.02 * i, "mean_dice": 0.9012 - 0.02 * i,
            "mean_iou_rectangles": 0.7811 - 0.02 * i, "mean_dice_rectangles": 0.8611 - 0.02 * i,
            "confusion_matrix": [[9000 + i, 10, 20, 30], [5, 800, 3, 2], [7, 1, 700, 4], [9, 2, 6, 650]],
            "train_images": 256, "val_images": 32, "test_images": 64, "epochs": 3, "best_epoch": 2,
            "train_images_per_second": 1234.5, "device": "cpu", "precision": "fp32", "delta": 15,
            "seconds": 20.0 + i})
        put_png(root, f"reports/segmentation/{name}-predictions.png")
    # dvclive's per-epoch folder sits beside the records and is not a model.
    put_json(root, "metrics/segmentation/live/nn1-wce/metrics.json", {"step": 2, "val_loss": 0.3})


LATENT_NETS = [("nn1", "wce", ["pool3", "conv4"]), ("nn2", "dice", ["bottleneck"])]


def _compactness(base: float) -> dict:
    fit = {str(c): round(base + 0.01 * c, 4) for c in (1, 2, 3)}
    held = {str(c): round(base - 0.05 + 0.01 * c, 4) for c in (1, 2, 3)}
    return {"f1_fit": fit, "f1_heldout": held, "f1_fit_mean": sum(fit.values()) / 3,
            "f1_heldout_mean": sum(held.values()) / 3, "silhouette": round(base - 0.5, 4),
            "within_between_ratio": round(1.2 - base, 4)}


def fake_latent(root: Path) -> None:
    """The formats of stages/generate_probe_sets.py and stages/latent_analysis.py."""
    put_json(root, "metrics/latent/probe_sets.json", {
        "probe_sets": {variant: {
            "variant": variant, "images": 30, "per_class": {"1": 10, "2": 10, "3": 10},
            "factor_ranges": {f: {c: ([10, 20] if (f in "RGB" or variant == "all") else [32, 32]) for c in "123"}
                              for f in ("R", "G", "B", "w", "h", "xc", "yc")},
            "distinct_values": {}} for variant in ("color", "all")},
        "image_size": 64, "delta": 15, "contained": True, "seconds": 0.4})
    for n, (net, loss, layers) in enumerate(LATENT_NETS):
        name = f"{net}-{loss}"
        rec_layers = {}
        for l, layer in enumerate(layers):
            probe_sets = {}
            for v, variant in enumerate(("color", "all")):
                base = 0.9 - 0.1 * n - 0.03 * l - 0.02 * v
                probe_sets[variant] = {"raw": _compactness(base),
                                       "pca": {"16": _compactness(base - 0.01), "2": _compactness(base - 0.2)},
                                       "umap": {"16": _compactness(base - 0.02), "2": _compactness(base - 0.1)}}
            rec_layers[layer] = {"code_dim": 2048 // (l + 1), "probe_sets": probe_sets,
                                 "continuity": {"spearman": 0.4321 - 0.1 * n - 0.01 * l,
                                                "spearman_within_class": {"1": 0.61, "2": 0.62, "3": 0.63},
                                                "spearman_within_class_mean": 0.62, "connected_fraction": 0.34,
                                                "components": 3, "n": 30, "k": 5}}
            put_png(root, f"reports/latent/{name}/scatter-{layer}.png")
        put_json(root, f"metrics/latent/{name}.json", {
            "net": net, "loss": loss, "probe_sets": ["color", "all"], "images_per_set": {"color": 30, "all": 30},
            "dims": [16, 2], "reducers": ["pca", "umap"], "classifier": "linear SVM", "layers": rec_layers,
            "device": "cpu", "seconds_by_step": {"codes": 0.1}, "seconds": 5.0 + n})
        for fig in ("f1-fit", "f1-heldout", "continuity"):
            put_png(root, f"reports/latent/{name}/{fig}.png")


def fake_datasets(root: Path) -> None:
    """The format of stages/prepare_dataset.py."""
    for name, sha, (train, val) in (("mnist", "06af5dfe" * 8, (50000, 10000)), ("cifar10", "c58f30108" * 7, (45000, 5000))):
        put_json(root, f"metrics/datasets/{name}.json", {
            "dataset": name.upper(), "source": "offline copy", "location": f"/data/{name}.npz",
            "sha256": {f"{name}.npz": sha}, "image_shape": [1, 28, 28], "train": train, "val": val, "test": 10000,
            "split": "seeded permutation", "split_seed": 0, "seconds": 0.36})


STUDY_C_CELLS = [(a, g) for a in ("fc", "conv") for g in ("none", "erasing")]
STUDY_C_REGIMES = ("frozen", "fine_tuned", "scratch")


def fake_study_c(root: Path, seeds: int = 3) -> None:
    """The format of stages/study_c.py (pretraining.summarize over per-seed records)."""
    from latentspace.pretraining import summarize
    for c, (arch, augment) in enumerate(STUDY_C_CELLS):
        per_seed = []
        for s in range(seeds):
            rec = {"seed": s, "autoencoder": {"val_mse": 0.02, "test_mse": 0.021 + 0.001 * s, "best_epoch": 3,
                                              "train_images_per_second": 5000.0, "seconds": 3.0}}
            for r, regime in enumerate(STUDY_C_REGIMES):
                rec[regime] = {"test_accuracy": round(0.9 + 0.02 * r + 0.005 * c + 0.001 * s * (1 + r), 6),
                               "test_macro_f1": round(0.89 + 0.02 * r + 0.005 * c + 0.001 * s, 6),
                               "best_epoch": 2, "best_val_loss": 0.3, "best_val_accuracy": 0.9,
                               "train_images_per_second": 9000.0, "seconds": 2.0}
            per_seed.append(rec)
        put_json(root, f"metrics/study_c/{arch}-{augment}.json", {
            "arch": arch, "augment": augment, "seeds": list(range(seeds)), **summarize(per_seed), "per_seed": per_seed,
            "epochs": {"autoencoder": 3, "frozen": 3, "fine_tuned": 3, "scratch": 3},
            "train_images": 50000, "val_images": 10000, "test_images": 10000, "device": "cpu", "precision": "fp32",
            "seconds": 30.0 + c})
        put_png(root, f"reports/study_c/{arch}-{augment}-reconstructions.png")


def fake_all(root: Path, study_b_sizes: list[int]) -> None:
    fake_study_a_data(root)
    fake_segmentation(root)
    fake_latent(root)
    fake_datasets(root)
    fake_study_b(root, study_b_sizes)
    fake_study_c(root)


@pytest.fixture
def project(tmp_path) -> Path:
    """A project folder with the real params.yaml (made small) and metrics + figures for every study."""
    root = tmp_path / "project"
    root.mkdir()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["study_b"]["hidden_sizes"] = [16, 32]
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    fake_all(root, [16, 32])
    return root


def render(root: Path, env: dict | None = None) -> tuple[str, str]:
    write_report(root, root / "reports/report.md", root / "reports/report.html", env=env or {})
    return (root / "reports/report.md").read_text(), (root / "reports/report.html").read_text()


# --- content ------------------------------------------------------------------------------------------

def test_a_changed_metrics_value_changes_the_report(project):
    md, html = render(project)
    assert "0.3812" not in md
    probe = json.loads((project / "metrics/study_b/sizes/probe-32.json").read_text())
    probe["test_accuracy"] = 0.3812
    put_json(project, "metrics/study_b/sizes/probe-32.json", probe)
    md2, html2 = render(project)
    assert "0.3812" in md2 and "0.3812" in html2
    assert md2 != md


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


def test_every_study_shows_its_tables_figures_data_and_parameters(project):
    md, html = render(project)
    a = section(md, "Study A")
    # A1: each sample's seed; A2: both EDA samples side by side.
    assert table_row(a, "`train`")[:3] == ["`train`", "256", "64"]
    assert table_row(a, "background fraction of the pixels") == ["background fraction of the pixels", "0.5598", "0.6998"]
    assert table_row(a, "classes 1-2") == ["classes 1-2", "0.502", "0.442"]
    assert table_row(a, "class 2 G")[1] == "197–227 (mean 212)"
    assert table_row(a, "w")[2] == "22.53 ± 18.4 (1–64)"
    # A3: nets against the baseline, per-class scores, confusion matrices.
    assert table_row(a, "nn2 / dice")[:4] == ["nn2 / dice", "61880", "0.9023", "0.8145"]
    assert table_row(a, "baseline")[:3] == ["baseline", "0", "0.8823"]
    assert "| true background | 9001 (0.993) |" in section(a, "A3. Confusion")
    # A4: probe sets, compactness at raw and the smallest dimension, continuity.
    assert table_row(a, "`color`", "30")[2] == "R, G, B"
    assert table_row(a, "`conv4`", "`all`", "PCA 2")[3:5] == ["0.66 / 0.67 / 0.68", "0.61 / 0.62 / 0.63"]
    assert table_row(a, "nn2 / dice", "`bottleneck`")[2] == "0.332"
    assert "latent/nn1-wce/scatter-conv4.png" in a and "segmentation/baseline-predictions.png" in a
    assert "eda/examples-eda_contained.png" in a
    assert "`latent.knn` | 10" in section(a, "Parameters")
    assert "`segmentation/nn3-focal` | 22.0" in section(a, "Stage times")
    # Study C: all 12 cells with their seed count and spread, and the paired regime differences.
    c = section(md, "Study C")
    assert len([line for line in section(c, "Test accuracy").splitlines()
                if re.match(r"\| (fc|conv) \| (none|erasing) \| (frozen|fine-tuned|scratch) \|", line)]) == 12
    assert table_row(c, "conv", "erasing", "fine-tuned") == ["conv", "erasing", "fine-tuned", "3", "0.937 ± 0.002",
                                                             "0.935–0.939", "0.926 ± 0.001"]
    assert table_row(c, "fc", "none", "-0.021 ± 0.001")[3:] == ["0.021 ± 0.001", "-0.042 ± 0.002"]
    assert "study_c/conv-none-reconstructions.png" in c
    assert "`06af5dfe06af5dfe" in section(c, "Data") and "cifar10" not in section(c, "Data")
    assert "`study_c.seeds` | 3" in section(c, "Parameters") and "study_b" not in section(c, "Parameters")
    assert "`study_c/fc-erasing` | 31.0" in section(c, "Stage times")
    b = section(md, "Study B")
    assert "c58f30108" in section(b, "Data") and "`study_b.ae_epochs` | 4" in section(b, "Parameters")
    # The dvclive folder beside the segmentation records is not a model.
    assert "live" not in section(a, "A3. Segmentation")
    # Every figure of every study is in the HTML, embedded.
    figures = sorted((project / "reports").rglob("*.png"))
    assert html.count('<img src="data:image/png;base64,') == len(figures)
    assert "Not available" not in md and "Could not be built" not in md


@pytest.mark.parametrize("rel, path, value, study", [
    ("metrics/eda/summary.json", ["eda_contained", "background_fraction"], 0.6125, "Study A"),
    ("metrics/eda/generate/train.json", ["seed"], 987654321, "Study A"),
    ("metrics/segmentation/nn1-wce.json", ["iou", "class2"], 0.5432, "Study A"),
    ("metrics/segmentation/baseline.json", ["confusion_matrix", 2, 2], 123457, "Study A"),
    ("metrics/latent/nn2-dice.json", ["layers", "bottleneck", "probe_sets", "all", "umap", "2", "silhouette"],
     0.777, "Study A"),
    ("metrics/latent/nn1-wce.json", ["layers", "conv4", "continuity", "spearman"], 0.135, "Study A"),
    ("metrics/study_c/fc-erasing.json", ["autoencoder", "test_mse", "values"], [0.0123, 0.0123, 0.0123], "Study C"),
    ("metrics/datasets/mnist.json", ["sha256", "mnist.npz"], "feedc0de" * 8, "Study C"),
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


def test_study_c_spread_is_recomputed_from_the_seeds(project):
    """The table shows what the seeds' values say (mean ± sample std), and how many seeds there were."""
    rel = "metrics/study_c/conv-none.json"
    data = json.loads((project / rel).read_text())
    data["scratch"]["test_accuracy"]["values"] = [0.95, 0.97]
    put_json(project, rel, data)
    md, _ = render(project)
    row = table_row(section(md, "Study C"), "conv", "none", "scratch")
    assert row[3:5] == ["2", "0.96 ± 0.014"]


def test_a_study_not_run_yet_is_a_note_and_the_others_still_render(project):
    shutil.rmtree(project / "metrics/segmentation")
    shutil.rmtree(project / "metrics/study_c")
    md, _ = render(project)
    a = section(md, "Study A")
    assert "Not available yet: no metrics under `metrics/segmentation/`" in section(a, "A3. Segmentation")
    assert "0.5598" in section(a, "A2.") and "0.332" in section(a, "A4. Continuity")
    assert "Not available yet" in section(md, "Study C")
    assert "0.38" in section(md, "Study B")


def test_a_record_in_an_unexpected_format_is_named_not_fatal(project):
    put_json(project, "metrics/latent/nn1-wce.json", {"net": "nn1", "loss": "wce"})
    md, _ = render(project)
    assert "Could not be built" in section(md, "A4. Latent") and "'layers'" in section(md, "A4. Latent")
    assert "0.8145" in section(md, "A3. Segmentation")


def test_every_study_without_metrics_says_so(tmp_path):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    md, html = render(tmp_path)
    assert md.count("Not available yet") >= 1
    assert "No dataset record" in md
    assert "No stage has written its metrics yet" in md
    assert 'class="note"' in html


def test_a_missing_size_is_named(project):
    (project / "metrics/study_b/sizes/probe-32.json").unlink()
    md, _ = render(project)
    assert "`metrics/study_b/sizes/probe-32.json`" in md


def test_stage_times_are_collected_and_named_after_their_stage(project):
    (project / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": {
        "study_b_probe@16": {"outs": [{"path": "metrics/study_b/sizes/probe-16.json"}]}}}))
    times = stage_times(project)
    assert times["study_b_probe@16"]["seconds"] == 2.5
    assert times["study_b/sizes/ae-32"]["seconds"] == 11.0
    write_stage_times(project / "metrics/stage_times.json", times, 0.7)
    record = json.loads((project / "metrics/stage_times.json").read_text())
    assert record["stages"]["study_b_probe@16"] == 2.5
    assert record["total_seconds"] == pytest.approx(sum(t["seconds"] for t in times.values()))
    assert record["seconds"] == 0.7
    # The record of stage times is not a stage of its own.
    assert "stage_times" not in stage_times(project)
    md, _ = render(project)
    assert "`study_b_probe@16`" in md and "11.0" in md


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


def test_run_identity_baseline_uncommitted_and_experiment(project):
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "params.yaml")
    git(project, "commit", "-qm", "baseline")
    head = git(project, "rev-parse", "HEAD").strip()
    params = yaml.safe_load((project / "params.yaml").read_text())
    text = " ".join(getattr(b, "text", "") for b in run_identity(project, params, env={}))
    assert "committed baseline" in text and head[:7] in text

    params = set_param(project, "delta", 25)
    blocks = run_identity(project, params, env={})
    assert "uncommitted" in blocks[0].text
    assert blocks[1].rows == [["`delta`", "15", "25"]]

    blocks = run_identity(project, params, env={"DVC_EXP_NAME": "brisk-owl", "DVC_EXP_BASELINE_REV": head})
    assert "brisk-owl" in blocks[0].text and head[:7] in blocks[0].text
    assert blocks[1].rows == [["`delta`", "15", "25"]]


@pytest.mark.e2e
def test_dvc_exp_run_report_names_the_experiment_and_its_changes(dvc_repo):
    """Only the report stage, on a fake metrics tree: `dvc exp run -S` must rerun it and list the change."""
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    (dvc_repo.path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"report": pipeline["stages"]["report"]}}))
    for rel in ("latentspace/report.py", "latentspace/document.py"):
        (dvc_repo.path / rel).parent.mkdir(exist_ok=True)
        shutil.copy(ROOT / rel, dvc_repo.path / rel)
    fake_all(dvc_repo.path, yaml.safe_load((ROOT / "params.yaml").read_text())["study_b"]["hidden_sizes"])
    for dep in pipeline["stages"]["report"]["deps"]:
        assert (dvc_repo.path / dep).exists(), f"the fake project lacks the report's dependency {dep}"
    dvc_repo.commit("inputs")
    dvc_repo.dvc("repro", "report")
    dvc_repo.commit("baseline")
    md = (dvc_repo.path / "reports/report.md").read_text()
    assert "committed baseline" in md

    res = dvc_repo.dvc("exp", "run", "-S", "delta=25", "-n", "wider-colours")
    assert "report" in dvc_repo.ran_stages(res.stdout + res.stderr)
    md = (dvc_repo.path / "reports/report.md").read_text()
    assert "`wider-colours`" in md
    assert "| `delta` | 15 | 25 |" in md


# --- as a reader sees it: headless Chromium opens the HTML from disk ----------------------------------

def find_browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    reason = ("no Chromium found (install Debian's `chromium`, or run `make test` as root, which installs it)")
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and {reason}")
    pytest.skip(reason)


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


def page_network_requests(netlog: Path) -> list[str]:
    """URLs the page (not the browser's own services) asked the network for. The page's requests carry
    the file:// page as their network isolation key."""
    text = netlog.read_text()
    try:
        log = json.loads(text)
    except ValueError:   # a browser that did not shut down cleanly leaves the event list open
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [e["params"]["url"] for e in log["events"]
            if e["type"] == start and "file://" in str(e["params"].get("network_isolation_key", ""))
            and not e["params"]["url"].startswith(("file:", "data:"))]


def test_html_has_no_script_and_no_remote_reference(project):
    _, html = render(project)
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", html, re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(https?:|//)", html, re.I)
    assert "@import" not in html


def test_chromium_opens_the_report_offline_with_every_figure(project, tmp_path):
    browser = find_browser()
    render(project)
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

"""The report of all three studies, built only from what the pipeline tracks: the JSON metrics under
`metrics/`, the PNG figures under `reports/<study>/` and `params.yaml`. No number is typed in here.

Each study's section is built by one function from its metrics files. Inputs that are not there yet (a study
that has not run) give a note in that section, not an error, so the report can be rendered at any point.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from latentspace.core.io import atomic_path, write_json
from latentspace.core.params import PARAMS_FILE, SCHEMA, load_params
from latentspace.document import Figure, Gallery, Note, Section, Table, Text, to_html, to_markdown

TITLE = "What pretrained convolutional networks keep in their latent space"
STAGE_TIMES = "metrics/stage_times.json"
PROBE_SETS = "metrics/latent/probe_sets.json"


class MissingInput(Exception):
    """A metrics file or figure the section needs is absent or unreadable; the section says so."""


# --- reading inputs ---------------------------------------------------------------------------------

class Inputs:
    """Paths relative to the project root; JSON reads that fail with a message naming the file."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, rel: str) -> Path:
        return self.root / rel

    def exists(self, rel: str) -> bool:
        return self.path(rel).exists()

    def json(self, rel: str) -> Any:
        p = self.path(rel)
        try:
            return json.loads(p.read_text())
        except FileNotFoundError:
            raise MissingInput(f"`{rel}` is missing") from None
        except (ValueError, UnicodeDecodeError):
            raise MissingInput(f"`{rel}` is not valid JSON") from None

    def jsons(self, rel_dir: str, pattern: str = "*.json") -> dict[str, Any]:
        """Every JSON file matching `pattern` under `rel_dir`, keyed by its stem, in name order."""
        d = self.path(rel_dir)
        return {p.stem: self.json(p.relative_to(self.root).as_posix()) for p in sorted(d.glob(pattern))}

    def figure(self, rel: str, caption: str) -> Figure | Note:
        p = self.path(rel)
        return Figure(p, caption) if p.is_file() else Note(f"Figure `{rel}` is missing.")


def fmt(v: Any, digits: int = 4) -> str:
    """Numbers to `digits` significant digits (integers exactly); None/NaN as a dash."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-4):
            return f"{v:.{digits - 1}e}"
        return f"{v:.{digits}g}"
    if isinstance(v, (list, dict)):
        return yaml.safe_dump(v, default_flow_style=True, width=10**6).strip()
    return str(v)


def mean_std(values: list[float], digits: int = 4) -> str:
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return "–"
    m = sum(vals) / len(vals)
    if len(vals) == 1:
        return fmt(m, digits)
    sd = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))
    return f"{fmt(m, digits)} ± {fmt(sd, 2)}"


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings to dotted keys; lists stay values."""
    if not isinstance(d, dict):
        return {prefix.rstrip("."): d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def guarded(build: Callable[[Inputs, dict], list], what: str, title: str = "Results", level: int = 3):
    """Run a section builder; a missing input becomes a note in a section of that title."""
    def run(inputs: Inputs, params: dict) -> list[Section]:
        try:
            return build(inputs, params)
        except MissingInput as e:
            print(f"report: {what}: {e}", file=sys.stderr)
            return [Section(title, [Note(f"Not available yet: {e}. Run the pipeline (`dvc repro`) to fill "
                                         f"this section.")], level)]
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as e:
            # A metrics file from an older or newer version of its stage: say which section could not be
            # built instead of losing the whole report.
            print(f"report: {what}: unexpected metrics format: {e!r}", file=sys.stderr)
            return [Section(title, [Note(f"Could not be built: a metrics file has an unexpected format "
                                         f"({type(e).__name__}: {e}). Rerun its stage (`dvc repro`).")], level)]
    return run


# --- parameters -------------------------------------------------------------------------------------

def section_names() -> list[str]:
    return [k for k, v in SCHEMA.items() if isinstance(v, dict)]


def params_table(params: dict, keys: list[str], caption: str) -> Table:
    """Rows for the given keys of params.yaml (those present): a top-level value, a section, or a dotted
    key into a section (`datasets.mnist`)."""
    flat = flatten(params)
    rows = []
    for key in keys:
        rows += [[f"`{k}`", fmt(v)] for k, v in flat.items() if k == key or k.startswith(key + ".")]
    return Table(["parameter", "value"], rows, caption)


def _git(root: Path, *args: str) -> str | None:
    try:
        res = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout if res.returncode == 0 else None


def params_at(root: Path, rev: str) -> dict | None:
    """params.yaml as committed at `rev` (None where git cannot tell)."""
    text = _git(root, "show", f"{rev}:./{PARAMS_FILE}")
    if text is None:
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def changed_params(before: dict, after: dict) -> list[list[str]]:
    a, b = flatten(before), flatten(after)
    return [[f"`{k}`", fmt(a.get(k, "(absent)")), fmt(b.get(k, "(absent)"))]
            for k in sorted(set(a) | set(b)) if a.get(k, object()) != b.get(k, object())]


def run_identity(root: Path, params: dict, env: dict | None = None) -> list:
    """Which run this is: a DVC experiment and what it changed against its baseline commit, or the
    committed baseline, or the workspace with uncommitted parameter changes."""
    env = os.environ if env is None else env
    exp, baseline = env.get("DVC_EXP_NAME"), env.get("DVC_EXP_BASELINE_REV")
    if exp:
        rev = baseline or "HEAD"
        before = params_at(root, rev)
        short = rev[:7] if baseline else "HEAD"
        if before is None:
            return [Text(f"This report was made by the DVC experiment `{exp}`; its baseline commit `{short}` "
                         f"could not be read, so the parameter changes are unknown.")]
        rows = changed_params(before, params)
        if not rows:
            return [Text(f"This report was made by the DVC experiment `{exp}`, with the same parameters as its "
                         f"baseline commit `{short}`.")]
        return [Text(f"This report was made by the DVC experiment `{exp}`. Parameters that differ from its "
                     f"baseline commit `{short}`:"),
                Table(["parameter", f"baseline ({short})", f"experiment {exp}"], rows)]
    head = _git(root, "rev-parse", "--short", "HEAD")
    before = params_at(root, "HEAD") if head else None
    if before is None:
        return [Text("This report was made outside a DVC experiment, in a folder without a git commit to "
                     "compare the parameters with.")]
    head = head.strip()
    rows = changed_params(before, params)
    if not rows:
        return [Text(f"This report shows the committed baseline: the parameters are those of commit `{head}`.")]
    return [Text(f"This report was made outside a DVC experiment, with uncommitted parameter changes "
                 f"against commit `{head}`:"),
            Table(["parameter", f"committed ({head})", "this run"], rows)]


# --- stage times ------------------------------------------------------------------------------------

def _lock_metric_owners(root: Path) -> dict[str, str]:
    """Metrics path -> stage name (as `dvc repro` names it), from dvc.lock where there is one."""
    try:
        lock = yaml.safe_load((root / "dvc.lock").read_text()) or {}
    except (FileNotFoundError, yaml.YAMLError):
        return {}
    owners = {}
    for name, stage in (lock.get("stages") or {}).items():
        for out in stage.get("outs") or []:
            if isinstance(out, dict) and "path" in out:
                owners[Path(out["path"]).as_posix()] = name
    return owners


def stage_times(root: Path) -> dict[str, dict]:
    """{stage: {"seconds", "file"}} from every metrics JSON with a top-level "seconds" number. A file is
    named after the stage that writes it (dvc.lock), else after its path; where a stage writes several,
    the longest time is the stage's."""
    root = Path(root)
    owners = _lock_metric_owners(root)
    times: dict[str, dict] = {}
    metrics = root / "metrics"
    for p in sorted(metrics.rglob("*.json")) if metrics.is_dir() else []:
        rel = p.relative_to(root).as_posix()
        if rel == STAGE_TIMES:
            continue
        try:
            data = json.loads(p.read_text())
        except (ValueError, UnicodeDecodeError):
            continue
        seconds = data.get("seconds") if isinstance(data, dict) else None
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            continue
        stage = owners.get(rel, rel.removeprefix("metrics/").removesuffix(".json"))
        if stage not in times or seconds > times[stage]["seconds"]:
            times[stage] = {"seconds": float(seconds), "file": rel}
    return dict(sorted(times.items()))


def stage_times_section(times: dict[str, dict]) -> list[Section]:
    s = Section("How long each stage took")
    if not times:
        return [s.add(Note("No stage has written its metrics yet, so there are no times to show."))]
    total = sum(t["seconds"] for t in times.values())
    rows = [[f"`{name}`", f"{t['seconds']:.1f}", f"`{t['file']}`"] for name, t in times.items()]
    rows.append(["total", f"{total:.1f}", ""])
    s.add(Text("Wall time of each stage, as the stage wrote it into its metrics file (`seconds`), from its "
               "last run. A stage DVC did not rerun keeps the time of the run that made its outputs."),
          Table(["stage", "seconds", "from"], rows))
    return [s]


# --- data -------------------------------------------------------------------------------------------

def datasets_section(inputs: Inputs, params: dict) -> list[Section]:
    s = Section("Data")
    records = inputs.jsons("metrics/datasets")
    if not records:
        s.add(Note("No dataset record under `metrics/datasets/` yet: the MNIST and CIFAR-10 preparation "
                   "stages have not run."))
    for name, rec in records.items():
        rows = [[f"`{k}`", fmt(v)] for k, v in flatten(rec).items() if k != "seconds"]
        s.add(Table(["field", "value"], rows, f"{name}: `metrics/datasets/{name}.json`"))
    return [s]


# --- data each study ran on ---------------------------------------------------------------------------

def lock_hashes(root: Path) -> dict[str, str]:
    """Output path -> the md5 DVC recorded for it in dvc.lock (a folder's ends in `.dir`)."""
    try:
        lock = yaml.safe_load((Path(root) / "dvc.lock").read_text()) or {}
    except (FileNotFoundError, yaml.YAMLError):
        return {}
    hashes = {}
    for stage in (lock.get("stages") or {}).values():
        for out in stage.get("outs") or []:
            if isinstance(out, dict) and "path" in out and out.get("md5"):
                hashes[Path(out["path"]).as_posix()] = str(out["md5"])
    return hashes


def dataset_table(inputs: Inputs, names: list[str]) -> list:
    """Where each downloaded dataset came from, the sha256 of its source files, and the md5 DVC recorded
    for the prepared arrays the study read."""
    hashes = lock_hashes(inputs.root)
    rows, absent = [], []
    for name in names:
        rel = f"metrics/datasets/{name}.json"
        if not inputs.exists(rel):
            absent.append(f"`{rel}`")
            continue
        rec = inputs.json(rel)
        sha = rec.get("sha256") or {}
        rows.append([name, fmt(rec.get("source")), f"`{rec.get('location')}`",
                     ", ".join(f"`{f}`: `{h}`" for f, h in sha.items()) if isinstance(sha, dict) else fmt(sha),
                     f"`{hashes.get(f'data/{name}', '–')}`",
                     f"{fmt(rec.get('train'))} / {fmt(rec.get('val'))} / {fmt(rec.get('test'))}"])
    if not rows:
        raise MissingInput(" and ".join(absent) + (" is" if len(absent) == 1 else " are") + " missing")
    blocks: list = [Table(["dataset", "source", "location", "sha256 of the source files", "md5 of `data/<name>` "
                           "(dvc.lock)", "train / val / test images"], rows)]
    if absent:
        blocks.append(Note("Missing: " + ", ".join(absent) + "."))
    return blocks


def data_section(names: list[str]):
    def build(inputs: Inputs, params: dict) -> list[Section]:
        return [Section("Data", [Text("The dataset this study read: its source, the checksum of the source files "
                                      "(`metrics/datasets/`) and of the prepared split (`dvc.lock`)."),
                                 *dataset_table(inputs, names)], level=3)]
    return build


# --- Study A ----------------------------------------------------------------------------------------

CLASS_KEYS = ("class_1", "class_2", "class_3")
EDA_SAMPLES = ("eda_free", "eda_contained")


def rectangles_data(inputs: Inputs, params: dict) -> list[Section]:
    records = inputs.jsons("metrics/eda/generate")
    if not records:
        raise MissingInput("no sample record under `metrics/eda/generate/`")
    hashes = lock_hashes(inputs.root)
    rows = [[f"`{name}`", fmt(r.get("n")), fmt(r.get("image_size")), fmt(r.get("contained")), fmt(r.get("delta")),
             fmt(r.get("clipped_colours")), fmt(r.get("seed")), f"`{hashes.get(f'data/rectangles/{name}', '–')}`"]
            for name, r in records.items()]
    s = Section("A1. Data: the generated samples", level=3)
    s.add(Text("Every sample is drawn by `stages/generate_rectangles.py` from its own seed (derived from `seed` "
               "and the sample's name); the md5 is the one DVC recorded for the sample's folder in `dvc.lock`."),
          Table(["sample", "images", "image size", "full containment", "delta", "colours clipped", "seed",
                 "md5 (dvc.lock)"], rows, "`metrics/eda/generate/<sample>.json`"))
    return [s]


def _range(stat: dict | None) -> str:
    if not stat:
        return "–"
    return f"{fmt(stat.get('min'))}–{fmt(stat.get('max'))} (mean {fmt(stat.get('mean'))})"


def eda_section(inputs: Inputs, params: dict) -> list[Section]:
    summary = inputs.json("metrics/eda/summary.json")
    samples = [k for k in EDA_SAMPLES if k in summary]
    if not samples:
        raise MissingInput("`metrics/eda/summary.json` holds neither EDA sample")
    m = {k: summary[k] for k in samples}
    cols = ["quantity", *(f"`{k}`" for k in samples)]

    def row(label: str, get: Callable[[dict], Any], show: Callable[[Any], str] = fmt) -> list[str]:
        return [label, *(show(get(m[k])) for k in samples)]

    s = Section("A2. Exploratory analysis of the two 50k samples", level=3)
    s.add(Text("Both EDA samples side by side: without (`eda_free`, rectangles clipped at the frame) and with full "
               "containment (`eda_contained`). From `metrics/eda/summary.json`."))
    s.add(Table(cols, [row("images", lambda d: d.get("n")), row("full containment", lambda d: d.get("contained")),
                       row("delta", lambda d: d.get("delta")),
                       row("rectangles clipped by the frame", lambda d: d["geometry"].get("clipped_fraction")),
                       row("background fraction of the pixels", lambda d: d.get("background_fraction"))],
                "Samples"))
    area_rows = []
    for c in CLASS_KEYS:
        label = c.replace("_", " ")
        for key, what in (("full_area_fraction", "full area / image"), ("visible_area_fraction", "visible area / image"),
                          ("hidden_fraction", "share of own pixels hidden"),
                          ("fully_hidden_rate", "share of images where fully hidden")):
            area_rows.append(row(f"{label}: {what}", lambda d, c=c, key=key: d["classes"][c].get(key)))
    s.add(Table(cols, area_rows, "Per class: full (un-occluded) and visible area, and what the later rectangles hide"))
    pairs = list(m[samples[0]].get("overlap_rate", {}))
    s.add(Table(cols, [row(f"classes {p}" if p != "all_three" else "all three classes",
                           lambda d, p=p: d["overlap_rate"].get(p)) for p in pairs],
                "Share of images in which the full rectangles of a pair of classes overlap"))
    geometry = [g for g in ("xc", "yc", "w", "h") if g in m[samples[0]].get("geometry", {})]
    s.add(Table(cols, [row(g, lambda d, g=g: d["geometry"][g],
                           lambda st: f"{fmt(st['mean'])} ± {fmt(st['std'], 3)} ({fmt(st['min'])}–{fmt(st['max'])})")
                       for g in geometry],
                "Geometry, all classes pooled: mean ± std (min–max), pixels"))
    colour_rows = [row(f"{c.replace('_', ' ')} {ch}", lambda d, c=c, ch=ch: (d["classes"][c].get("colour") or {}).get(ch),
                       _range)
                   for c in CLASS_KEYS for ch in ("R", "G", "B")]
    s.add(Table(cols, colour_rows, "Colour per class and channel: min–max (mean)"))
    s.add(inputs.figure("reports/eda/geometry.png", "Centres and side lengths, both samples."),
          inputs.figure("reports/eda/areas.png", "Full, visible and hidden area per class; how often pairs overlap."),
          inputs.figure("reports/eda/colours.png", "Colour histograms per class and channel."))
    s.add(Gallery([inputs.figure(f"reports/eda/examples-{k}.png", f"`{k}`: images, label maps and full masks.")
                   for k in samples]))
    return [s]


SEG_CLASSES = ("background", "class1", "class2", "class3")


def _seg_name(rec: dict, stem: str) -> str:
    net, loss = rec.get("net", stem), rec.get("loss")
    return f"{net} / {loss}" if loss else str(net)


def segmentation_section(inputs: Inputs, params: dict) -> list[Section]:
    records = inputs.jsons("metrics/segmentation")
    if not records:
        raise MissingInput("no metrics under `metrics/segmentation/`")
    # The baseline first, then the nets in name order.
    order = sorted(records, key=lambda k: (k != "baseline", k))
    out = []
    s = Section("A3. Segmentation networks on the test set", level=3)
    s.add(Text("Pixel accuracy, IoU and Dice of each trained net and of the baseline (`metrics/segmentation/`). "
               "\"Rectangles\" averages the three rectangle classes only, without the background."))
    s.add(Table(["model", "parameters", "pixel accuracy", "mean IoU", "mean Dice", "mean IoU (rectangles)",
                 "mean Dice (rectangles)"],
                [[_seg_name(records[k], k), fmt(records[k].get("parameters")), fmt(records[k].get("pixel_accuracy")),
                  fmt(records[k].get("mean_iou")), fmt(records[k].get("mean_dice")),
                  fmt(records[k].get("mean_iou_rectangles")), fmt(records[k].get("mean_dice_rectangles"))]
                 for k in order], "Overall"))
    for score in ("iou", "dice"):
        s.add(Table(["model", *SEG_CLASSES],
                    [[_seg_name(records[k], k), *(fmt((records[k].get(score) or {}).get(c)) for c in SEG_CLASSES)]
                     for k in order], f"{'IoU' if score == 'iou' else 'Dice'} per class"))
    s.add(Table(["model", "train / val / test images", "epochs", "best epoch", "train images/s", "device",
                 "precision", "delta", "seconds"],
                [[_seg_name(r, k), f"{fmt(r.get('train_images'))} / {fmt(r.get('val_images'))} / "
                  f"{fmt(r.get('test_images'))}", fmt(r.get("epochs")), fmt(r.get("best_epoch")),
                  fmt(r.get("train_images_per_second")), fmt(r.get("device")), fmt(r.get("precision")),
                  fmt(r.get("delta")), fmt(r.get("seconds"))] for k, r in ((k, records[k]) for k in order)],
                "How each model was trained"))
    out.append(s)

    s = Section("A3. Confusion matrices (test pixels)", level=3)
    s.add(Text("Rows are the true class, columns the predicted one; counts of test pixels, and in brackets the "
               "share of the row (recall on the diagonal)."))
    for k in order:
        cm = records[k].get("confusion_matrix")
        if not cm:
            s.add(Note(f"`metrics/segmentation/{k}.json` has no confusion matrix."))
            continue
        rows = []
        for i, counts in enumerate(cm):
            total = sum(counts)
            rows.append([f"true {SEG_CLASSES[i] if i < len(SEG_CLASSES) else i}",
                         *(f"{fmt(int(v))} ({v / total:.3f})" if total else fmt(int(v)) for v in counts)])
        s.add(Table(["", *(f"pred. {c}" for c in SEG_CLASSES[:len(cm)])], rows, _seg_name(records[k], k)))
    out.append(s)

    s = Section("A3. Predictions", level=3)
    s.add(Text("Test images, their label maps and each model's prediction."))
    s.add(Gallery([inputs.figure(f"reports/segmentation/{k}-predictions.png", f"{_seg_name(records[k], k)}.")
                   for k in order]))
    out.append(s)
    return out


def _smallest(block: dict | None) -> tuple[str, dict] | None:
    """The reduction to the smallest dimension of a sweep {"<d>": result}."""
    if not block:
        return None
    d = min(block, key=int)
    return d, block[d]


def _per_class(scores: dict | None) -> str:
    if not scores:
        return "–"
    return " / ".join(fmt(scores[c], 3) for c in sorted(scores, key=str))


def latent_section(inputs: Inputs, params: dict) -> list[Section]:
    probe_record = inputs.json(PROBE_SETS) if inputs.exists(PROBE_SETS) else {}
    probes = probe_record.get("probe_sets") or {}
    records = {k: v for k, v in inputs.jsons("metrics/latent").items() if k != Path(PROBE_SETS).stem}
    if not records and not probes:
        raise MissingInput("no metrics under `metrics/latent/`")
    out = []
    if probes:
        s = Section("A4. Probe sets", level=3)
        rows = []
        # In the order params.yaml lists the probe sets, then any others (from an earlier run).
        wanted = list((params.get("latent") or {}).get("probe_sets") or [])
        order = sorted(probes, key=lambda v: (wanted.index(v) if v in wanted else len(wanted), v))
        for name, p in ((v, probes[v]) for v in order):
            varied = [f for f, per_class in (p.get("factor_ranges") or {}).items()
                      if any(lo != hi for lo, hi in per_class.values())]
            rows.append([f"`{name}`", fmt(p.get("images")), ", ".join(varied) or "none"])
        md5 = lock_hashes(inputs.root).get("data/probes", "–")
        s.add(Text(f"Single-rectangle images per probe set; the factors that vary within a class, the rest fixed "
                   f"(`{PROBE_SETS}`). Drawn with delta {fmt(probe_record.get('delta'))}, full containment "
                   f"{fmt(probe_record.get('contained'))}; `data/probes` has md5 `{md5}` in dvc.lock."),
              Table(["probe set", "images", "factors that vary"], rows))
        out.append(s)
    if not records:
        out.append(Section("A4. Latent space analysis", [Note("Not available yet: no net has been analysed "
                                                               "(`metrics/latent/<net>-<loss>.json`).")], 3))
        return out

    s = Section("A4. Compactness of the latent codes", level=3)
    s.add(Text("Per net, bottleneck layer and probe set: the one-vs-rest linear probe's F1 per class (classes "
               "1 / 2 / 3) on the set it was fitted on and on the held-out share, silhouette score and the ratio "
               "of mean within-class to between-class distance, for the raw codes and for the smallest dimension "
               "of each reducer's sweep (`metrics/latent/<net>-<loss>.json`)."))
    for name, rec in records.items():
        rows = []
        for layer, entry in rec["layers"].items():
            for variant, res in entry["probe_sets"].items():
                shown = [("raw", str(entry.get("code_dim")), res.get("raw"))]
                for reducer in rec.get("reducers") or [r for r in res if r != "raw"]:
                    small = _smallest(res.get(reducer))
                    if small:
                        shown.append((reducer.upper(), small[0], small[1]))
                for label, dim, r in shown:
                    r = r or {}
                    rows.append([f"`{layer}`", f"`{variant}`", f"{label} {dim}", _per_class(r.get("f1_fit")),
                                 _per_class(r.get("f1_heldout")), fmt(r.get("silhouette"), 3),
                                 fmt(r.get("within_between_ratio"), 3)])
        s.add(Table(["layer", "probe set", "features", "F1 fit (1 / 2 / 3)", "F1 held-out (1 / 2 / 3)",
                     "silhouette", "within / between"], rows, f"{rec.get('net')} / {rec.get('loss')}"))
    out.append(s)

    s = Section("A4. Continuity", level=3)
    s.add(Text("Spearman rank correlation between the geodesic distance on the kNN graph of the codes and the "
               "distance in generator parameters, on a sample of the `all` set; within each class as well, since "
               "compact classes leave the graph in pieces."))
    rows = []
    for name, rec in records.items():
        for layer, entry in rec["layers"].items():
            c = entry.get("continuity")
            if not c:
                continue
            rows.append([f"{rec.get('net')} / {rec.get('loss')}", f"`{layer}`", fmt(c.get("spearman"), 3),
                         fmt(c.get("spearman_within_class_mean"), 3), _per_class(c.get("spearman_within_class")),
                         fmt(c.get("connected_fraction"), 3), fmt(c.get("components")), fmt(c.get("n")),
                         fmt(c.get("k"))])
    if rows:
        s.add(Table(["net / loss", "layer", "Spearman", "within class, mean", "within class 1 / 2 / 3",
                     "connected pairs", "graph components", "images", "k"], rows))
    else:
        s.add(Note("No continuity result: the `all` probe set was not analysed."))
    out.append(s)

    for name, rec in records.items():
        s = Section(f"A4. Figures: {rec.get('net')} / {rec.get('loss')}", level=4)
        folder = f"reports/latent/{name}"
        figures = [inputs.figure(f"{folder}/f1-fit.png", "Linear-probe F1 on the fitted set vs dimension."),
                   inputs.figure(f"{folder}/f1-heldout.png", "Linear-probe F1 on the held-out share vs dimension.")]
        figures += [inputs.figure(f"{folder}/scatter-{layer}.png", f"2-D PCA and UMAP embeddings of `{layer}`.")
                    for layer in rec["layers"]]
        if any(e.get("continuity") for e in rec["layers"].values()):
            figures.append(inputs.figure(f"{folder}/continuity.png", "Geodesic code distance vs parameter distance."))
        s.add(Gallery(figures))
        out.append(s)
    return out


def study_a(inputs: Inputs, params: dict) -> list[Section]:
    out = []
    for build, what, title in ((rectangles_data, "Study A data", "A1. Data: the generated samples"),
                               (eda_section, "Study A EDA", "A2. Exploratory analysis of the two 50k samples"),
                               (segmentation_section, "Study A segmentation", "A3. Segmentation networks"),
                               (latent_section, "Study A latent analysis", "A4. Latent space analysis")):
        out += guarded(build, what, title)(inputs, params)
    return out


# --- Study B ----------------------------------------------------------------------------------------

def study_b(inputs: Inputs, params: dict) -> list[Section]:
    p = params.get("study_b")
    if p is None:
        raise MissingInput("there is no `study_b` section in params.yaml")
    sizes = sorted(p["hidden_sizes"])
    ae, probe, absent = {}, {}, []
    for h in sizes:
        for kind, store in (("ae", ae), ("probe", probe)):
            rel = f"metrics/study_b/sizes/{kind}-{h}.json"
            if inputs.exists(rel):
                store[h] = inputs.json(rel)
            else:
                absent.append(f"`{rel}`")
    if not ae and not probe:
        raise MissingInput("no per-size metrics under `metrics/study_b/sizes/`")
    out = []
    s = Section("Reconstruction and linear probe per latent size", level=3)
    if absent:
        s.add(Note("Missing for some sizes (not run yet): " + ", ".join(absent) + "."))
    rows = []
    for h in sizes:
        a, q = ae.get(h, {}), probe.get(h, {})
        rows.append([str(h), fmt(a.get("test_mse")), fmt(a.get("val_mse")), fmt(q.get("train_accuracy")),
                     fmt(q.get("test_accuracy")), fmt(q.get("test_macro_f1"))])
    s.add(Text("Test MSE of each autoencoder (pixels in [0, 1]) and the accuracy of a linear probe trained on its "
               "frozen codes (`metrics/study_b/sizes/`)."),
          Table(["hidden", "test MSE", "val MSE", "probe train acc.", "probe test acc.", "probe test macro F1"],
                rows),
          inputs.figure("reports/study_b/summary.png", "Reconstruction MSE and probe accuracy vs latent size."))
    out.append(s)

    if probe:
        classes = list(next(iter(probe.values())).get("per_class", {}))
        s = Section("Per-class precision of the probe (test set)", level=3)
        s.add(Table(["hidden", *classes],
                    [[str(h), *(fmt(q.get("per_class", {}).get(c, {}).get("precision"), 3) for c in classes)]
                     for h, q in probe.items()]))
        out.append(s)

        s = Section("Test confusion matrices of the probe", level=3)
        s.add(Text("Rows are the true class, columns the predicted one."))
        s.add(Gallery([inputs.figure(f"reports/study_b/probe-{h}-confusion.png", f"Linear probe, hidden = {h}.")
                       for h in probe]))
        out.append(s)

    if ae:
        s = Section("Reconstructions", level=3)
        s.add(Text("Test images (top) and their reconstructions (bottom), per latent size."))
        s.add(Gallery([inputs.figure(f"reports/study_b/ae-{h}-reconstructions.png", f"Autoencoder, hidden = {h}.")
                       for h in ae]))
        out.append(s)
    return out


# --- Study C ----------------------------------------------------------------------------------------

STUDY_C_ARCHS = ("fc", "conv")
STUDY_C_AUGMENTS = ("none", "erasing")
STUDY_C_REGIMES = ("frozen", "fine_tuned", "scratch")


def _spread(stat: dict | None) -> str:
    """A metrics spread {"mean", "std", "values", ...} as mean ± std."""
    if not stat:
        return "–"
    return mean_std(stat.get("values") or [stat.get("mean")])


def _paired_difference(records: list[dict], a: str, b: str, metric: str) -> str:
    """Mean ± std over seeds of (regime a - regime b), each seed's two classifiers sharing its autoencoder."""
    diffs = [r[a][metric] - r[b][metric] for r in records if a in r and b in r]
    return mean_std(diffs, 3)


def study_c(inputs: Inputs, params: dict) -> list[Section]:
    cells = {}
    for arch in STUDY_C_ARCHS:
        for augment in STUDY_C_AUGMENTS:
            rel = f"metrics/study_c/{arch}-{augment}.json"
            if inputs.exists(rel):
                cells[(arch, augment)] = inputs.json(rel)
    if not cells:
        raise MissingInput("no cell metrics `metrics/study_c/<arch>-<augment>.json`")
    absent = [f"`metrics/study_c/{a}-{g}.json`" for a in STUDY_C_ARCHS for g in STUDY_C_AUGMENTS
              if (a, g) not in cells]
    out = []
    s = Section("Test accuracy and macro F1 of the 12 cells", level=3)
    if absent:
        s.add(Note("Missing cells (not run yet): " + ", ".join(absent) + "."))
    s.add(Text("Mean ± sample standard deviation over the seeds (the official MNIST test set; weights of the "
               "epoch with the lowest validation loss). From `metrics/study_c/<arch>-<augment>.json`."))
    rows = []
    for (arch, augment), rec in cells.items():
        for regime in STUDY_C_REGIMES:
            r = rec.get(regime) or {}
            acc, f1 = r.get("test_accuracy") or {}, r.get("test_macro_f1") or {}
            rows.append([arch, augment, regime.replace("_", "-"), fmt(len(acc.get("values") or rec.get("seeds") or [])),
                         _spread(acc), f"{fmt(acc.get('min'))}–{fmt(acc.get('max'))}", _spread(f1)])
    s.add(Table(["architecture", "augmentation", "regime", "seeds", "test accuracy", "accuracy range",
                 "test macro F1"], rows))
    per_seed = {k: rec.get("per_seed") or [] for k, rec in cells.items()}
    if any(per_seed.values()):
        s.add(Text("Paired differences of test accuracy between regimes, per seed (the regimes of one seed share "
                   "its pretrained autoencoder), mean ± std over seeds: a difference well inside its spread is "
                   "not one the seeds can tell apart."),
              Table(["architecture", "augmentation", "fine-tuned − scratch", "fine-tuned − frozen",
                     "frozen − scratch"],
                    [[a, g, _paired_difference(rs, "fine_tuned", "scratch", "test_accuracy"),
                      _paired_difference(rs, "fine_tuned", "frozen", "test_accuracy"),
                      _paired_difference(rs, "frozen", "scratch", "test_accuracy")]
                     for (a, g), rs in per_seed.items() if rs]))
    out.append(s)

    s = Section("Autoencoders and training runs", level=3)
    rows = []
    for (arch, augment), rec in cells.items():
        ep = rec.get("epochs") or {}
        rows.append([arch, augment, _spread((rec.get("autoencoder") or {}).get("test_mse")),
                     " / ".join(fmt(ep.get(k)) for k in ("autoencoder", "frozen", "fine_tuned", "scratch")),
                     f"{fmt(rec.get('train_images'))} / {fmt(rec.get('val_images'))} / {fmt(rec.get('test_images'))}",
                     ", ".join(fmt(x) for x in rec.get("seeds") or []), fmt(rec.get("device")),
                     fmt(rec.get("precision")), fmt(rec.get("seconds"))])
    s.add(Table(["architecture", "augmentation", "autoencoder test MSE", "epochs (AE / frozen / fine-tuned / scratch)",
                 "train / val / test images", "seeds", "device", "precision", "seconds"], rows))
    s.add(Gallery([inputs.figure(f"reports/study_c/{a}-{g}-reconstructions.png",
                                 f"{a} autoencoder, augmentation {g}: test images over their reconstructions.")
                   for (a, g) in cells]))
    out.append(s)
    return out


# --- the whole report -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Study:
    title: str
    build: Callable[[Inputs, dict], list]
    params: list[str]           # params.yaml keys (top-level values and sections) the study's stages read
    datasets: list[str]         # downloaded datasets it reads (metrics/datasets/<name>.json)
    metrics: list[str]          # its metrics folders/files: their stages' times are the study's


STUDIES = [
    Study("Study A: latent space of segmentation networks (synthetic rectangles)", study_a,
          ["seed", "delta", "device", "precision", "rectangles", "eda", "segmentation", "latent"], [],
          ["metrics/eda", "metrics/segmentation", "metrics/latent"]),
    Study("Study B: linear probing of CIFAR-10 autoencoders", study_b,
          ["seed", "device", "precision", "datasets.split_seed", "datasets.cifar10", "study_b"], ["cifar10"],
          ["metrics/datasets/cifar10.json", "metrics/study_b"]),
    Study("Study C: does autoencoder pretraining help a classifier? (MNIST)", study_c,
          ["seed", "device", "precision", "datasets.split_seed", "datasets.mnist", "study_c"], ["mnist"],
          ["metrics/datasets/mnist.json", "metrics/study_c"]),
]


def study_times_section(times: dict[str, dict], prefixes: list[str]) -> Section:
    own = {k: t for k, t in times.items()
           if any(t["file"] == p or t["file"].startswith(p.rstrip("/") + "/") for p in prefixes)}
    s = Section("Stage times", level=3)
    if not own:
        return s.add(Note("None of this study's stages has written its metrics yet."))
    rows = [[f"`{name}`", f"{t['seconds']:.1f}"] for name, t in own.items()]
    rows.append(["total", f"{sum(t['seconds'] for t in own.values()):.1f}"])
    return s.add(Table(["stage", "seconds"], rows))


def build_report(root: Path, env: dict | None = None) -> tuple[list[Section], dict[str, dict]]:
    root = Path(root)
    inputs = Inputs(root)
    params = load_params(root / PARAMS_FILE, sections=section_names())
    times = stage_times(root)
    intro = Section("About this run")
    intro.add(Text("Every number below is read from the JSON metrics files that DVC tracks under `metrics/`, "
                   "every figure from `reports/`; the parameters are those of `params.yaml`."),
              *run_identity(root, params, env),
              params_table(params, [k for k, v in SCHEMA.items() if not isinstance(v, dict)],
                           "Parameters shared by all studies"))
    sections = [intro, *guarded(datasets_section, "data", "Data", level=2)(inputs, params)]
    for study in STUDIES:
        sections.append(Section(study.title))
        sections += guarded(study.build, study.title)(inputs, params)
        if study.datasets:
            sections += guarded(data_section(study.datasets), f"{study.title} data", "Data")(inputs, params)
        sections.append(Section("Parameters", [params_table(params, study.params,
                                                            f"`params.yaml`: {', '.join(study.params)}")], level=3))
        sections.append(study_times_section(times, study.metrics))
    sections += stage_times_section(times)
    return sections, times


def write_report(root: Path, md_path: Path, html_path: Path, env: dict | None = None) -> dict[str, dict]:
    """Render the report as Markdown and HTML; returns the stage times it shows."""
    root = Path(root)
    sections, times = build_report(root, env)
    md_path, html_path = Path(md_path), Path(html_path)
    with atomic_path(md_path) as tmp:
        tmp.write_text(to_markdown(TITLE, sections, md_path.parent))
    with atomic_path(html_path) as tmp:
        tmp.write_text(to_html(TITLE, sections))
    return times


def write_stage_times(path: Path, times: dict[str, dict], seconds: float) -> None:
    """The stage-times metrics file: every stage's wall time, their sum, and the report stage's own."""
    write_json(path, {"stages": {k: v["seconds"] for k, v in times.items()},
                      "total_seconds": round(sum(v["seconds"] for v in times.values()), 2),
                      "seconds": seconds})

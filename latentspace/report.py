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
from pathlib import Path
from typing import Any, Callable

import yaml

from latentspace.document import Figure, Gallery, Note, Section, Table, Text, to_html, to_markdown
from latentspace.io import atomic_path, write_json
from latentspace.params import PARAMS_FILE, SCHEMA, load_params

TITLE = "What pretrained convolutional networks keep in their latent space"
STAGE_TIMES = "metrics/stage_times.json"


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
    return run


# --- parameters -------------------------------------------------------------------------------------

def section_names() -> list[str]:
    return [k for k, v in SCHEMA.items() if isinstance(v, dict)]


def params_table(params: dict, keys: list[str], caption: str) -> Table:
    """Rows for the given top-level keys and sections of params.yaml (those present)."""
    rows = []
    for key in keys:
        if key in params:
            rows += [[f"`{k}`", fmt(v)] for k, v in flatten({key: params[key]}).items()]
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


# --- the whole report -------------------------------------------------------------------------------

# (title, builder, params.yaml keys whose values the study's section lists)
STUDIES = [
    ("Study B: linear probing of CIFAR-10 autoencoders", study_b, ["study_b"]),
]


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
    for title, build, keys in STUDIES:
        sections.append(Section(title))
        sections += guarded(build, title)(inputs, params)
        sections.append(Section("Parameters", [params_table(params, keys, f"`params.yaml`: {', '.join(keys)}")],
                                level=3))
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

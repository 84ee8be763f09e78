"""The report's appendix: which run this is and its parameters, where the data came from, how each verdict was
reached, and how long each stage took (from the stage runner's `metrics/timing/<stage>.json`)."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

from latentspace.core.params import PARAMS_FILE, SCHEMA
from latentspace.report.common import Inputs, MissingInput, flatten, fmt, guarded, lock_hashes, pp
from latentspace.report.document import Note, Section, Table, Text

TIMING_DIR = "metrics/timing"
VERDICTS = "metrics/verdicts.json"


# --- run identity and parameters ----------------------------------------------------------------------

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


def identity_section(root: Path, params: dict, studies: list, env: dict | None) -> list[Section]:
    s = Section("Appendix A. This run and its parameters", level=2)
    s.add(*run_identity(root, params, env),
          params_table(params, [k for k, v in SCHEMA.items() if not isinstance(v, dict)],
                       "Parameters shared by all studies"))
    for study in studies:
        s.add(params_table(params, study.params, f"{study.title}: `params.yaml` {', '.join(study.params)}"))
    s.add(params_table(params, ["verdicts"], "Thresholds of the verdicts: `params.yaml` verdicts"))
    return [s]


# --- data provenance ------------------------------------------------------------------------------------

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


def rectangles_data(inputs: Inputs, params: dict) -> list[Section]:
    records = inputs.jsons("metrics/eda/generate")
    if not records:
        raise MissingInput("no sample record under `metrics/eda/generate/`")
    hashes = lock_hashes(inputs.root)
    rows = [[f"`{name}`", fmt(r.get("n")), fmt(r.get("image_size")), fmt(r.get("contained")), fmt(r.get("delta")),
             fmt(r.get("clipped_colours")), fmt(r.get("seed")), f"`{hashes.get(f'data/rectangles/{name}', '–')}`"]
            for name, r in records.items()]
    s = Section("Study A: the generated rectangle samples", level=3)
    s.add(Text("Every sample is drawn by `stages/generate_rectangles.py` from its own seed (derived from `seed` "
               "and the sample's name); the md5 is the one DVC recorded for the sample's folder in `dvc.lock`."),
          Table(["sample", "images", "image size", "full containment", "delta", "colours clipped", "seed",
                 "md5 (dvc.lock)"], rows, "`metrics/eda/generate/<sample>.json`"))
    return [s]


def study_b_data(inputs: Inputs, params: dict) -> list[Section]:
    data = (inputs.json("metrics/study_b/summary.json").get("data") or {})
    if not data:
        raise MissingInput("`metrics/study_b/summary.json` has no `data` record")
    return [Section("Study B: the CIFAR-10 images as the autoencoders saw them", [
        Table(["field", "value"], [[f"`{k}`", fmt(v)] for k, v in flatten(data).items()])], level=3)]


def provenance(inputs: Inputs, params: dict) -> list[Section]:
    out = [Section("Appendix B. Data provenance", [Text(
        "Where every dataset came from: the checksums of the downloaded source files (`metrics/datasets/`), the "
        "md5 DVC recorded for each prepared or generated dataset (`dvc.lock`), and the seeds of the generated "
        "rectangle samples.")])]
    out += guarded(lambda i, p: [Section("MNIST and CIFAR-10", dataset_table(i, ["mnist", "cifar10"]), level=3)],
                   "datasets", "MNIST and CIFAR-10")(inputs, params)
    out += guarded(rectangles_data, "Study A data", "Study A: the generated rectangle samples")(inputs, params)
    out += guarded(study_b_data, "Study B data", "Study B: the CIFAR-10 images as the autoencoders saw them")(
        inputs, params)
    return out


# --- how each verdict was reached ----------------------------------------------------------------------------

def _p(test: dict | None, key: str) -> str:
    p = ((test or {}).get(key) or {}).get("p_value")
    return "–" if p is None else f"{p:.3g}"


def _test_summary(claim: dict) -> str:
    test = claim.get("test")
    if not test:
        return "–"
    parts = [f"paired t p = {_p(test, 'paired_t')}", f"Wilcoxon p = {_p(test, 'wilcoxon')}",
             f"sign test p = {_p(test, 'sign_test')}"]
    mcnemar = test.get("mcnemar_per_seed")
    if mcnemar:
        parts.append("McNemar p per seed = " + ", ".join("–" if m["p_value"] is None else f"{m['p_value']:.3g}"
                                                           for m in mcnemar))
    return "; ".join(parts)


def verdict_rules(inputs: Inputs, params: dict) -> list[Section]:
    rec = inputs.json(VERDICTS)
    s = Section("Appendix C. How each verdict was reached", level=2)
    s.add(Text("Every claim with the rule it was checked by, the difference measured − published, and the tests "
               f"(two-sided) where one applies (`{VERDICTS}`; thresholds in the `verdicts` section of params.yaml). "
               "A claim about trained models that fails below paper scale is \"undecided at this scale\"; "
               "only a study run at paper scale (all its overrides in paper_scale.yaml) can fail as \"not "
               "reproduced\". Studies at paper scale in this run: "
               + (", ".join(k for k, v in (rec.get("at_paper_scale") or {}).items() if v) or "none") + "."))
    rows = []
    for c in rec.get("claims") or []:
        diff = c.get("difference")
        shown = pp(diff) if c["id"].startswith(("c-", "b-probe")) and isinstance(diff, float) else fmt(diff)
        rows.append([f"`{c['id']}`", c.get("rule") or "–", shown, _test_summary(c), c["verdict"],
                     c.get("decide") or "–"])
    s.add(Table(["claim", "rule", "difference", "tests", "verdict", "would be decided by"], rows, compact=True))
    for c in rec.get("claims") or []:
        if c.get("note"):
            s.add(Text(f"`{c['id']}`: {c['note']}."))
    for note in rec.get("notes") or []:
        s.add(Note(note))
    return [s]


# --- stage times ----------------------------------------------------------------------------------------

def stage_times(root: Path) -> dict[str, dict]:
    """{stage instance: timing record} from every `metrics/timing/<stage>.json` the stage runner wrote."""
    times = {}
    for p in sorted((Path(root) / TIMING_DIR).glob("*.json")):
        try:
            rec = json.loads(p.read_text())
        except (ValueError, UnicodeDecodeError):
            continue
        seconds = rec.get("seconds") if isinstance(rec, dict) else None
        if isinstance(seconds, (int, float)) and not isinstance(seconds, bool):
            times[str(rec.get("stage") or p.stem)] = {**rec, "seconds": float(seconds)}
    return times


def stage_times_section(times: dict[str, dict]) -> list[Section]:
    s = Section("Appendix D. How long each stage took", level=2)
    if not times:
        return [s.add(Note(f"No stage has written its timing file (`{TIMING_DIR}/<stage>.json`) yet."))]
    total = sum(t["seconds"] for t in times.values())
    rows = [[f"`{name}`", f"{t['seconds']:.1f}", fmt(t.get("device")), fmt(t.get("precision"))]
            for name, t in times.items()]
    rows.append(["total", f"{total:.1f}", "", ""])
    s.add(Text(f"Wall time of each stage's last run (`{TIMING_DIR}/`). A stage DVC did not rerun keeps the time "
               "of the run that made its outputs."),
          Table(["stage", "seconds", "device", "precision"], rows))
    return [s]

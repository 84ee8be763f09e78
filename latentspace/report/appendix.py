"""The report's appendix: which run this is and its parameters, where the data came from, how each verdict was
reached, and how long each stage took (from the stage runner's `metrics/timing/<stage>.json`)."""
from __future__ import annotations

import hashlib
import os
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from latentspace import paths, results
from latentspace.core.params import PARAMS_FILE, SCHEMA
from latentspace.report.common import Inputs, MissingInput, flatten, fmt, guarded, lock_hashes, pp
from latentspace.report.document import Note, Section, Table, Text

TIMING_DIR = paths.TIMING_DIR
VERDICTS = paths.VERDICTS


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


# The packages whose versions decide the numbers (requirements.lock pins every dependency; these are shown).
KEY_PACKAGES = ("torch", "torchvision", "numpy", "scipy", "scikit-learn", "umap-learn", "numba", "dvc", "dvclive",
                "pandas", "matplotlib")
LOCK_FILE = "requirements.lock"
REPORT_STAGE = "report"


def recorded_params(root: Path) -> dict[str, dict[str, Any]] | None:
    """{stage: {dotted parameter: value}} as DVC recorded them in dvc.lock when each stage last ran (the report
    stage's own entry left out: it is rewritten after this report); None without a readable dvc.lock."""
    lock = results.dvc_lock(root)
    if not lock:
        return None
    out = {}
    for name, entry in (lock.get("stages") or {}).items():
        if name != REPORT_STAGE and isinstance(entry, dict):
            out[name] = flatten((entry.get("params") or {}).get(PARAMS_FILE) or {})
    return out


def stale_params(recorded: dict[str, dict[str, Any]], params: dict) -> list[list[str]]:
    """[stage, parameter, value it ran with, value in params.yaml] wherever they differ."""
    now = flatten(params)
    return [[f"`{stage}`", f"`{k}`", fmt(v), fmt(now.get(k, "(absent)"))]
            for stage, values in sorted(recorded.items()) for k, v in sorted(values.items())
            if now.get(k, object()) != v]


def _experiment_identity(root: Path, params: dict, exp: str, baseline: str | None) -> list:
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


def params_digest(root: Path) -> str:
    """The first 12 hex digits of params.yaml's sha256: names the parameters by content, so a reader can tell
    which commit holds them (`git log -p params.yaml`), and the report reads the same on every machine."""
    try:
        return hashlib.sha256((Path(root) / PARAMS_FILE).read_bytes()).hexdigest()[:12]
    except FileNotFoundError:
        return "–"


def run_identity(root: Path, params: dict, env: dict | None = None) -> list:
    """Which run this is. A DVC experiment: what it changed against its baseline commit. Otherwise the run DVC
    recorded: the parameters every stage ran with (dvc.lock) against params.yaml. No word depends on the
    state of git when the report is made (the committed report stays true, and a rerun elsewhere rewrites it
    identically)."""
    env = os.environ if env is None else env
    if env.get("DVC_EXP_NAME"):
        return _experiment_identity(root, params, env["DVC_EXP_NAME"], env.get("DVC_EXP_BASELINE_REV"))
    these = f"`{PARAMS_FILE}` below (sha256 `{params_digest(root)}`…)"
    recorded = recorded_params(root)
    if not recorded:
        return [Text("No other stage has recorded its parameters in `dvc.lock`: this report shows the metrics "
                     f"present, with the parameters of {these}.")]
    stale = stale_params(recorded, params)
    if not stale:
        return [Text(f"This report shows the run DVC recorded in `dvc.lock`: every stage ran with the parameters "
                     f"of {these}, as recorded for each stage. They are the parameters of the commit that holds "
                     "this report with that `dvc.lock`.")]
    return [Text(f"Some stages last ran with other values than those of {these} (`dvc.lock`; `dvc repro` "
                 "reruns them): their results in this report come from the values they ran with."),
            Table(["stage", "parameter", "ran with (dvc.lock)", "params.yaml"], stale, compact=True)]


def _lock_pins(root: Path) -> dict[str, str]:
    """{normalised package name: version} pinned in requirements.lock ({} without one)."""
    try:
        lines = (Path(root) / LOCK_FILE).read_text().splitlines()
    except FileNotFoundError:
        return {}
    pins = {}
    for line in lines:
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep:
            pins[_normalised(name)] = version.strip()
    return pins


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def software_table(root: Path) -> Table:
    """The installed version of each key package, beside the version requirements.lock pins."""
    pins = _lock_pins(root)
    rows = []
    for name in KEY_PACKAGES:
        try:
            # The release, without a build label (2.14.1+cpu): the CPU and CUDA builds of one release are the
            # same locked version, and the report must read the same whichever build ran it.
            installed = metadata.version(name).split("+")[0]
        except metadata.PackageNotFoundError:
            installed = "not installed"
        locked = pins.get(_normalised(name), "–")
        same = installed == locked
        rows.append([f"`{name}`", installed, locked if same or locked == "–" else f"**{locked}** (differs)"])
    return Table(["package", "installed", f"`{LOCK_FILE}`"], rows,
                 f"Python {platform.python_version()}; `make setup` installs every dependency at the version "
                 f"`{LOCK_FILE}` pins")


def identity_section(root: Path, params: dict, studies: list, env: dict | None) -> list[Section]:
    s = Section("Appendix A. This run and its parameters", level=2)
    s.add(*run_identity(root, params, env), software_table(root),
          params_table(params, [k for k, v in SCHEMA.items() if not isinstance(v, dict)],
                       "Parameters shared by all studies"))
    for study in studies:
        s.add(params_table(params, study.params, f"{study.title}: `params.yaml` {', '.join(study.params)}"))
    s.add(params_table(params, ["verdicts"], "Thresholds of the verdicts: `params.yaml` verdicts"))
    return [s]


# --- data provenance ------------------------------------------------------------------------------------

def dataset_table(inputs: Inputs, names: list[str]) -> list:
    """How each dataset was obtained (offline copy or download; never the machine's path), the sha256 of its
    source files, and the md5 DVC recorded for the prepared arrays the study read."""
    hashes = lock_hashes(inputs.root)
    rows, absent = [], []
    for name in names:
        rec = inputs.read(results.dataset_record, name)
        if rec is None:
            absent.append(f"`{paths.dataset_record(name)}`")
            continue
        sha = rec.get("sha256") or {}
        rows.append([name, fmt(rec.get("obtained_by") or rec.get("source")),
                     ", ".join(f"`{f}`: `{h}`" for f, h in sha.items()) if isinstance(sha, dict) else fmt(sha),
                     f"`{hashes.get(paths.dataset(name), '–')}`",
                     f"{fmt(rec.get('train'))} / {fmt(rec.get('val'))} / {fmt(rec.get('test'))}"])
    if not rows:
        raise MissingInput(" and ".join(absent) + (" is" if len(absent) == 1 else " are") + " missing")
    blocks: list = [Table(["dataset", "obtained by", "sha256 of the source files", "md5 of `data/<name>` "
                           "(dvc.lock)", "train / val / test images"], rows)]
    if absent:
        blocks.append(Note("Missing: " + ", ".join(absent) + "."))
    return blocks


def rectangles_data(inputs: Inputs, params: dict) -> list[Section]:
    records = inputs.read(results.rectangle_samples, missing=f"no sample record `{paths.rectangles_record('<sample>')}`")
    hashes = lock_hashes(inputs.root)
    rows = [[f"`{name}`", fmt(r.get("n")), fmt(r.get("image_size")), fmt(r.get("contained")), fmt(r.get("delta")),
             fmt(r.get("clipped_colours")), fmt(r.get("seed")), f"`{hashes.get(paths.rectangles(name), '–')}`"]
            for name, r in records.items()]
    s = Section("Study A: the generated rectangle samples", level=3)
    s.add(Text("Every sample is drawn by `stages/study_a/generate_rectangles.py` from its own seed (derived from `seed` "
               "and the sample's name); the md5 is the one DVC recorded for the sample's folder in `dvc.lock`."),
          Table(["sample", "images", "image size", "full containment", "delta", "colours clipped", "seed",
                 "md5 (dvc.lock)"], rows, f"`{paths.rectangles_record('<sample>')}`"))
    return [s]


def study_b_data(inputs: Inputs, params: dict) -> list[Section]:
    summary = inputs.read(results.study_b_summary, missing=f"`{paths.STUDY_B_SUMMARY}` is missing")
    data = summary.get("data") or {}
    if not data:
        raise MissingInput(f"`{paths.STUDY_B_SUMMARY}` has no `data` record")
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
    """The tests of one check in a few words: TOST p-values, the interval of a directional rule, McNemar."""
    test = claim.get("test")
    if not isinstance(test, dict):
        return "–"
    parts = []
    if "p_lower" in test:
        parts.append(f"TOST p = {fmt(test['p_lower'], 3)} / {fmt(test['p_upper'], 3)} (margin {fmt(test['margin'], 3)})")
    if isinstance(test.get("difference"), dict) and test["difference"].get("low") is not None:
        d = test["difference"]
        parts.append(f"interval [{fmt(d['low'], 3)}, {fmt(d['high'], 3)}]")
    for key, name in (("paired_t", "paired t"), ("wilcoxon", "Wilcoxon"), ("sign_test", "sign test")):
        if isinstance(test.get(key), dict):
            parts.append(f"{name} p = {_p(test, key)}")
    if "statistic" in test and "within" in test:
        parts.append(f"Mann-Whitney p = {fmt(test.get('p_value'), 3)}")
    mcnemar = test.get("mcnemar_per_seed")
    if mcnemar:
        parts.append("McNemar p per seed = " + ", ".join("–" if m["p_value"] is None else f"{m['p_value']:.3g}"
                                                           for m in mcnemar))
    return "; ".join(parts) or "see metrics/verdicts.json"


def _preconditions(claim: dict) -> str:
    marks = {True: "held", False: "FAILED", None: "unknown"}
    return "; ".join(f"{p['name']}: {marks[p.get('held')]}" for p in claim.get("preconditions") or []) or "–"


def _confusion_tables(inputs: Inputs) -> list:
    """Published and measured confusion matrices of Study B side by side (measured: summed over seeds)."""
    from latentspace.constants import CIFAR10_CLASSES
    from latentspace.core.errors import UserError
    from latentspace.core.io import read_yaml
    try:
        refs = read_yaml(inputs.path("references.yaml"))
    except UserError:  # the verdicts stage validates references.yaml; here only its matrices are shown
        return []
    published = (((refs or {}).get("facts") or {}).get("study_b_confusion") or {}).get("values") or {}
    runs = results.study_b_runs(inputs.root)
    short = [c[:5] for c in CIFAR10_CLASSES]
    out = []
    for h, matrix in published.items():
        mats = [m for r in runs.get(int(h), {}).values() if (m := results.confusion(r.get("probe"))) is not None]
        measured = sum(mats) if mats else None
        rows = [[CIFAR10_CLASSES[i], " ".join(f"{v:d}" for v in row),
                 "–" if measured is None else " ".join(f"{int(v):d}" for v in measured[i])]
                for i, row in enumerate(matrix)]
        out.append(Table(["true class", "published (" + " ".join(short) + ")",
                          f"measured, summed over {len(mats)} seed{'s' if len(mats) != 1 else ''}"], rows,
                         f"Study B, latent size {h}: test confusion matrices, rows true, columns predicted",
                         compact=True))
    return out


def verdict_rules(inputs: Inputs, params: dict) -> list[Section]:
    rec = inputs.read(results.verdicts, missing=f"`{VERDICTS}` is missing")
    s = Section("Appendix C. How each verdict was reached", level=2)
    scale = rec.get("scale") or {}
    s.add(Text("Every check with its rule, what the rule said, its preconditions and tests (`" + VERDICTS + "`; "
               "margins and thresholds in the `verdicts` section of params.yaml, each with the reason for its "
               "size). The preconditions are the same whether the rule passes or fails: a check whose runs did "
               "not converge, whose net did not learn its task, whose compared arms trained under different caps, "
               "or that has too few seeds is undecided, naming what would satisfy it. Otherwise the rule decides "
               "at any scale. Scale of this run: "
               + (", ".join(f"Study {k} {v.get('scale')}" for k, v in scale.items()) or "unknown") + "."))
    rows = []
    for c in rec.get("claims") or []:
        diff = c.get("difference")
        shown = pp(diff) if c["id"].startswith(("c-", "b-probe")) and isinstance(diff, float) else fmt(diff)
        rows.append([f"`{c['id']}`", c.get("kind", "stated"), c.get("rule") or "–", c.get("rule_result") or "–",
                     _preconditions(c), shown, _test_summary(c), c["verdict"], c.get("decide") or "–"])
    s.add(Table(["check", "kind", "rule", "rule says", "preconditions", "difference", "tests", "verdict",
                 "would be decided by"], rows, compact=True))
    s.add(*_confusion_tables(inputs))
    for c in rec.get("claims") or []:
        if c.get("note"):
            s.add(Text(f"`{c['id']}`: {c['note']}."))
    for note in rec.get("notes") or []:
        s.add(Note(note))
    return [s]


# --- stage times ----------------------------------------------------------------------------------------

def stage_times_section(times: dict[str, dict], *, tracked: bool = False) -> list[Section]:
    """The table of stage times; `tracked` (the git-tracked report.md): a pointer to them instead, so that a
    rerun of the same run, which takes other seconds, rewrites report.md identically."""
    s = Section("Appendix D. How long each stage took", level=2)
    if tracked:
        return [s.add(Text(f"Each stage's wall time of this run is in `reports/report.html` (Appendix D), in "
                           f"`{paths.timing('<stage>')}` and, summed, in `{paths.STAGE_TIMES}`; this "
                           "git-tracked page leaves them out, so a rerun that reproduces every result leaves it "
                           "unchanged."))]
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

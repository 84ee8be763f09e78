"""What the docs read beyond latentspace/results.py (which reads every metrics and timing file): the measured costs
(docs/costs.yaml), the stage instances of the committed run (dvc.lock, to leave out the timing files of stages that
no longer exist), the statements of the claims (references.yaml); and the `datasets` block."""
from __future__ import annotations

from pathlib import Path

from latentspace import paths, results
from latentspace.core.errors import UserError
from latentspace.core.io import read_yaml
from latentspace.core.params import PARAMS_FILE
from latentspace.docs.format import table

COSTS_FILE = "docs/costs.yaml"
REFERENCES_FILE = "references.yaml"

# Which study a stage belongs to, by its name before '@' (the cost box and the stage times group by it).
STUDY_OF_FAMILY = {"generate_rectangles": "Study A", "eda": "Study A", "train_segmentation": "Study A",
                   "generate_image_sets": "Study A", "latent_analysis": "Study A", "prepare_dataset": "datasets",
                   "study_b_autoencoders": "Study B", "study_b_probes": "Study B", "study_b_summary": "Study B",
                   "study_c": "Study C", "verdicts": "verdicts, report", "report": "verdicts, report"}
STUDY_ORDER = ("Study A", "datasets", "Study B", "Study C", "verdicts, report")


def _yaml(root: Path, rel: str) -> dict:
    """A YAML mapping through the project's one reader; {} when it is missing or not a mapping."""
    try:
        data = read_yaml(Path(root) / rel)
    except UserError:
        return {}
    return data if isinstance(data, dict) else {}


def costs(root: Path) -> dict:
    return _yaml(root, COSTS_FILE)


def params(root: Path) -> dict:
    """params.yaml as it is (the docs show defaults; validating it is the pipeline's job)."""
    return _yaml(root, PARAMS_FILE)


def lock_stages(root: Path) -> set[str]:
    """The stage instances dvc.lock records (`study_c@fc-none`, ...): those of the committed run."""
    return set((results.dvc_lock(root).get("stages") or {}))


def study_of(stage: str) -> str:
    return STUDY_OF_FAMILY.get(stage.split("@")[0], "other")


def stage_records(root: Path) -> dict[str, dict]:
    """{stage instance: timing record} of the stages the committed run has (a timing file of a stage that no
    longer exists is left out)."""
    times = results.stage_times(root)
    known = lock_stages(root)
    return {k: v for k, v in times.items() if not known or k in known}


def stage_seconds(root: Path) -> dict[str, float]:
    return {k: v["seconds"] for k, v in stage_records(root).items()}


def per_study(seconds: dict[str, float]) -> dict[str, float]:
    """Seconds per study, in STUDY_ORDER (then `other`), studies without a stage left out."""
    out: dict[str, float] = {}
    for study in (*STUDY_ORDER, "other"):
        total = sum(t for s, t in seconds.items() if study_of(s) == study)
        if any(study_of(s) == study for s in seconds):
            out[study] = total
    return out


def statements(root: Path) -> dict[str, dict]:
    """{claim id: its entry in references.yaml} (statement, kind, study)."""
    return {str(c["id"]): c for c in _yaml(root, REFERENCES_FILE).get("claims") or []
            if isinstance(c, dict) and "id" in c}


def dataset_records(root: Path) -> dict[str, dict]:
    """{name: record} of metrics/datasets/<name>.json."""
    found = {}
    for p in sorted(Path(root).glob(paths.dataset_record("*"))):
        rec = results.dataset_record(root, p.stem)
        if rec is not None:
            found[p.stem] = rec
    return found


def block_datasets(root: Path, args: list[str]) -> str:
    rows = []
    for name, d in dataset_records(root).items():
        for file, digest in sorted((d.get("sha256") or {}).items()):
            # The file name only: where the copy lived on the machine that ran is not part of the repository.
            rows.append([d.get("dataset", name), d.get("source", ""), f"`{Path(file).name}`", f"`{digest}`",
                         f"{d.get('train', '–')} / {d.get('val', '–')} / {d.get('test', '–')}"])
    if not rows:
        return "No dataset prepared yet: `make repro` records the checksums here.\n"
    return table(["dataset", "source", "file", "sha256", "train / validation / test"], rows)

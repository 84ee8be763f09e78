"""The whole report: "Reproduction at a glance" first, then each study's detail, then the appendix (this run and
its parameters and software, data provenance, how each verdict was reached, stage times). No number is typed in here: every one
comes from the metrics files, params.yaml or references.yaml."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from latentspace import results
from latentspace.core.errors import UserError
from latentspace.core.io import atomic_path, read_yaml, write_json
from latentspace.core.params import PARAMS_FILE, load_params
from latentspace.report import appendix, glance_figures
from latentspace.report.common import Inputs, guarded
from latentspace.report.document import Section, Text, to_html, to_markdown
from latentspace.report.glance import glance_section
from latentspace.report.study_a import study_a
from latentspace.report.study_b import study_b
from latentspace.report.study_c import study_c

TITLE = "What pretrained convolutional networks keep in their latent space"
REFERENCES = "references.yaml"


@dataclass(frozen=True)
class Study:
    title: str
    build: Callable[[Inputs, dict], list]
    params: list[str]           # params.yaml keys (top-level values and sections) the study's stages read


STUDIES = [
    Study("Study A: latent space of segmentation networks (synthetic rectangles)", study_a,
          ["seed", "delta", "device", "precision", "rectangles", "eda", "segmentation", "latent"]),
    Study("Study B: linear probing of CIFAR-10 autoencoders", study_b,
          ["seed", "device", "precision", "datasets.split_seed", "datasets.cifar10", "study_b"]),
    Study("Study C: does autoencoder pretraining help a classifier? (MNIST)", study_c,
          ["seed", "device", "precision", "datasets.split_seed", "datasets.mnist", "study_c"]),
]


def _references(root: Path) -> dict:
    try:
        refs = read_yaml(root / REFERENCES)
    except UserError:  # the verdicts stage validates references.yaml; the figures only mark its values
        return {}
    return refs if isinstance(refs, dict) else {}


def build_report(root: Path, env: dict | None = None, figures: bool = True, tracked: bool = False) -> list[Section]:
    """The report's sections; with `figures`, the key figures at its top are drawn first (the stage always draws
    them; tests of the text alone skip the drawing). `tracked`: for the git-tracked report.md, which holds
    nothing that differs between two runs of the same pipeline (no stage times, no machine paths)."""
    root = Path(root)
    inputs = Inputs(root)
    params = load_params(root / PARAMS_FILE)
    if figures:
        glance_figures.draw(root, _references(root), params.get("verdicts") or {})
    sections = [glance_section(inputs, params)]
    for study in STUDIES:
        sections.append(Section(study.title))
        sections += guarded(study.build, study.title)(inputs, params)
    sections += appendix.identity_section(root, params, STUDIES, env)
    sections += appendix.provenance(inputs, params)
    sections += guarded(appendix.verdict_rules, "verdicts", "Appendix C. How each verdict was reached", 2)(
        inputs, params)
    sections += appendix.stage_times_section(results.stage_times(root), tracked=tracked)
    sections.append(Section("About this report", [Text(
        "Every number above is read from the JSON metrics files under `metrics/` (tracked by DVC and git), every "
        "figure from `reports/`, the parameters from `params.yaml` and the published values from "
        "`references.yaml`.")]))
    return sections


def write_report(root: Path, md_path: Path, html_path: Path, env: dict | None = None, figures: bool = True) -> None:
    """Draw the key figures and render the report as Markdown and HTML."""
    sections = build_report(root, env, figures)
    # The figures are drawn once; the tracked Markdown leaves out what differs between runs.
    md_sections = build_report(root, env, figures=False, tracked=True)
    md_path, html_path = Path(md_path), Path(html_path)
    with atomic_path(md_path) as tmp:
        tmp.write_text(to_markdown(TITLE, md_sections, md_path.parent))
    with atomic_path(html_path) as tmp:
        tmp.write_text(to_html(TITLE, sections, toc_after=1))


def write_stage_times(root: Path, path: Path, own_stage: str, own_seconds: float) -> dict:
    """Every other stage's wall time (from metrics/timing/), this stage's own time of this run (`seconds`) and the
    total of all of them: the numbers behind the documentation's cost box."""
    times = {name: t["seconds"] for name, t in results.stage_times(root).items() if name != own_stage}
    record = {"stages": dict(sorted(times.items())), "seconds": own_seconds,
              "total_seconds": round(sum(times.values()) + own_seconds, 2)}
    write_json(path, record)
    return record

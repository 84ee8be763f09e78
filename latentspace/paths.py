"""Where every output of the pipeline lives: one function or constant per output, used by the stages that write
them and by every reader (results, verdicts, report, sweep, docs). tests/test_paths.py checks that each `outs`
entry of dvc.yaml, with its matrix items filled in, is named here, so dvc.yaml and the code cannot drift apart.

Only plain strings here (relative to the project root, as dvc.yaml writes them): no imports beyond the standard
library, so that any module may import this one.
"""
from __future__ import annotations

# --- shared ----------------------------------------------------------------------------------------------

TIMING_DIR = "metrics/timing"


def timing(stage: str) -> str:
    """The wall time, throughput and device of one stage instance (never a metric: they change on every run)."""
    return f"{TIMING_DIR}/{stage}.json"


def dataset(name: str) -> str:
    return f"data/{name}"


def dataset_record(name: str) -> str:
    return f"metrics/datasets/{name}.json"


# --- Study A ---------------------------------------------------------------------------------------------

def rectangles(sample: str) -> str:
    return f"data/rectangles/{sample}"


def rectangles_record(sample: str) -> str:
    return f"metrics/eda/generate/{sample}.json"


EDA_FIGURES = "reports/eda"
EDA_HISTOGRAMS = "metrics/eda/histograms.json"
EDA_SUMMARY = "metrics/eda/summary.json"
IMAGE_SETS = "data/image_sets"
IMAGE_SETS_RECORD = "metrics/image_sets.json"
SEGMENTATION_MODELS = "models/segmentation"
SEGMENTATION_METRICS = "metrics/segmentation"
SEGMENTATION_FIGURES = "reports/segmentation"
LATENT_METRICS = "metrics/latent"
LATENT_FIGURES = "reports/latent"


def segmentation_model(pair: str, launch: int) -> str:
    """pair: '<net>-<loss>'."""
    return f"{SEGMENTATION_MODELS}/{pair}/launch-{launch}.pt"


def segmentation_record(pair: str) -> str:
    return f"{SEGMENTATION_METRICS}/{pair}.json"


def segmentation_curves(pair: str, launch: int) -> str:
    return f"{SEGMENTATION_METRICS}/live/{pair}/launch-{launch}"


def segmentation_confusion(pair: str) -> str:
    return f"{SEGMENTATION_METRICS}/confusion/{pair}.json"


def segmentation_figure(pair: str) -> str:
    """pair: '<net>-<loss>', or 'baseline' for the nearest-colour baseline."""
    return f"{SEGMENTATION_FIGURES}/{pair}-predictions.png"


BASELINE_RECORD = f"{SEGMENTATION_METRICS}/baseline.json"


def latent_record(pair: str) -> str:
    return f"{LATENT_METRICS}/{pair}.json"


def latent_figures(pair: str) -> str:
    return f"{LATENT_FIGURES}/{pair}"


# --- Study B ---------------------------------------------------------------------------------------------

STUDY_B_MODELS = "models/study_b"
STUDY_B_METRICS = "metrics/study_b"
STUDY_B_FIGURES = "reports/study_b"
STUDY_B_SUMMARY = f"{STUDY_B_METRICS}/summary.json"
STUDY_B_AE_RECORDS = f"{STUDY_B_METRICS}/autoencoders"
STUDY_B_AE_CURVES = f"{STUDY_B_METRICS}/live/autoencoders"
STUDY_B_PROBE_RECORDS = f"{STUDY_B_METRICS}/sizes"
STUDY_B_PROBE_CURVES = f"{STUDY_B_METRICS}/live/probes"
STUDY_B_CONFUSION = f"{STUDY_B_METRICS}/confusion"
STUDY_B_PLOTS = f"{STUDY_B_METRICS}/plots"


def study_b_model(tag: str) -> str:
    """tag: the latent size, with -s<k> for an extra seed (256-s1)."""
    return f"{STUDY_B_MODELS}/ae-{tag}.pt"


STUDY_B_PROBE_MODELS = "models/study_b_probes"


def study_b_probe_model(tag: str) -> str:
    """The trained probe on the codes of `study_b_model(tag)`."""
    return f"{STUDY_B_PROBE_MODELS}/probe-{tag}.pt"


def study_b_ae_record(tag: str) -> str:
    return f"{STUDY_B_AE_RECORDS}/ae-{tag}.json"


def study_b_probe_record(tag: str) -> str:
    return f"{STUDY_B_PROBE_RECORDS}/probe-{tag}.json"


def study_b_figure(name: str) -> str:
    """name: probe-<tag>-confusion, ae-<tag>-reconstructions or summary."""
    return f"{STUDY_B_FIGURES}/{name}.png"

# --- Study C ---------------------------------------------------------------------------------------------

STUDY_C_METRICS = "metrics/study_c"


def study_c_record(cell: str) -> str:
    """cell: '<arch>-<augment>'."""
    return f"{STUDY_C_METRICS}/{cell}.json"


def study_c_curves(cell: str) -> str:
    return f"{STUDY_C_METRICS}/live/{cell}"


def study_c_predictions(cell: str) -> str:
    return f"data/study_c/predictions/{cell}.npz"


def study_c_models(cell: str) -> str:
    """Every seed's trained autoencoder and classifiers of one cell."""
    return f"models/study_c/{cell}.pt"


def study_c_figure(cell: str) -> str:
    return f"reports/study_c/{cell}-reconstructions.png"


# --- verdicts and report ---------------------------------------------------------------------------------

VERDICTS = "metrics/verdicts.json"
HEADLINE_DIR = "metrics/headline"


def headline(study: str) -> str:
    """study: study_a, study_b, study_c or verdicts."""
    return f"{HEADLINE_DIR}/{study}.json"


REPORT_MD = "reports/report.md"
REPORT_HTML = "reports/report.html"
GLANCE_DIR = "reports/glance"


def glance_figure(study: str) -> str:
    """The key figure of one study at the top of the report (study: study_a, study_b, study_c)."""
    return f"{GLANCE_DIR}/{study}.png"

STAGE_TIMES = "metrics/stage_times.json"

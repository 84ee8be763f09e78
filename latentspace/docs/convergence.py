"""The `convergence STUDY` block of each study page: per run family, how many runs stopped by their patience (not
by their epoch cap), the epochs they ran and the epoch whose weights they kept, from the committed metrics:
Study A `per_launch[*].stopping` of metrics/segmentation/<net>-<loss>.json; Study B `stopping` of every
autoencoder and probe record; Study C `per_seed[*][run].stopping` of metrics/study_c/<cell>.json."""
from __future__ import annotations

from pathlib import Path

from latentspace import paths, results
from latentspace.constants import STUDY_C_REGIMES
from latentspace.docs.format import num, span, table

COLUMNS = ["runs", "stopped by patience", "epochs run", "epoch kept"]


def _stats(runs: list[dict]) -> list[str]:
    """runs: results.stopping(...) of each run."""
    known = [s for s in runs if s["converged"] is not None]
    patience = f"{sum(bool(s['converged']) for s in known)} of {len(runs)}" if known else "not recorded"
    return [str(len(runs)), patience, span([s["epochs_run"] for s in runs]), span([s["epoch_kept"] for s in runs])]


def _total(groups: list[list[dict]]) -> str:
    runs = [s for g in groups for s in g]
    done = sum(s["converged"] is True for s in runs)
    return f"{done} of {len(runs)} runs stopped by their patience."


def study_a(root: Path) -> tuple[list[str], list[list[str]], list[list[dict]]]:
    rows, groups = [], []
    for pair, rec in results.segmentation_records(root).items():
        launches = results.launches(rec)
        runs = [results.stopping(l) for l in launches]
        steps = [l.get("step") for l in launches]
        how = "chained, steps " + span(steps) if any(s is not None for s in steps) else "fresh weights"
        iou = span([]) if not launches else " / ".join(num(l.get("mean_iou")) for l in launches)
        rows.append([f"`{pair}`", how, *_stats(runs), iou])
        groups.append(runs)
    return ["net-loss", "weights"] + COLUMNS + ["test mean IoU per launch"], rows, groups


def study_b(root: Path) -> tuple[list[str], list[list[str]], list[list[dict]]]:
    rows, groups = [], []
    for kind, what in (("ae", "autoencoder"), ("probe", "linear probe")):
        for hidden, seeds in results.study_b_runs(root).items():
            runs = [results.stopping(r[kind]) for r in seeds.values() if r.get(kind)]
            if runs:
                rows.append([what, str(hidden), *_stats(runs)])
                groups.append(runs)
    return ["run", "latent size"] + COLUMNS, rows, groups


def study_c(root: Path) -> tuple[list[str], list[list[str]], list[list[dict]]]:
    rows, groups = [], []
    for cell, rec in results.study_c_cells(root).items():
        for run in ("autoencoder", *STUDY_C_REGIMES):
            runs = [results.stopping(r) for r in results.runs_by_seed(rec, run).values()]
            if runs:
                rows.append([f"`{cell}`", run.replace("_", "-"), *_stats(runs)])
                groups.append(runs)
    return ["cell", "run"] + COLUMNS, rows, groups


STUDIES = {"study_a": (study_a, paths.SEGMENTATION_METRICS), "study_b": (study_b, paths.STUDY_B_METRICS),
           "study_c": (study_c, paths.STUDY_C_METRICS)}


def block_convergence(root: Path, args: list[str]) -> str:
    if len(args) != 1 or args[0] not in STUDIES:
        raise ValueError(f"convergence needs one of {', '.join(STUDIES)}, got {' '.join(args) or 'nothing'}")
    build, source = STUDIES[args[0]]
    columns, rows, groups = build(Path(root))
    if not rows:
        return f"No runs recorded yet in `{source}/`: `make repro` trains them.\n"
    return (f"{_total(groups)} A run stops by its patience once its monitored validation score has not improved "
            "by the relative `min_delta` for `patience` epochs; a run that ran to its cap had not converged. "
            f"From `{source}/` of the committed run.\n\n" + table(columns, rows))

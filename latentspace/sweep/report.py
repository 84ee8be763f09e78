"""The delta sweep's report: reports/sweep.md and reports/sweep.html from the sweep's DVC experiments.

`dvc exp show --json` lists the experiments and their parameters; the detailed metrics files are git-tracked
outputs (`cache: false`), so each experiment's commit holds them and `git show <rev>:<path>` reads them (paths from
latentspace/paths.py; what a record means, from latentspace/results.py, as for the pipeline's report). Figures:
the colour baseline's and every net's test mean IoU against delta, and the latent separability against delta.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import pandas as pd

from latentspace import paths, results
from latentspace.constants import BOX_OVERLAP_DELTA, CHANNEL_OVERLAP_DELTA
from latentspace.core.io import atomic_path, save_figure, write_json
from latentspace.report.document import Figure, Note, Section, Table, Text, to_html, to_markdown
from latentspace.sweep.run import SweepConfig, experiments, finished, lookup, matches

TITLE = "Study A: the colour half-range delta swept"


def git_json(rev: str, path: str) -> Any:
    """The JSON file `path` as committed in `rev`, or None when the commit has no such file."""
    res = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    return json.loads(res.stdout) if res.returncode == 0 else None


def stage_seconds(rev: str, baseline: str) -> float | None:
    """Seconds of the stages the experiment ran: its timing files that differ from its baseline commit's."""
    res = subprocess.run(["git", "diff", "--name-only", baseline, rev, "--", paths.TIMING_DIR],
                         capture_output=True, text=True)
    files = [f for f in res.stdout.split() if f.endswith(".json")] if res.returncode == 0 else []
    seconds = [(git_json(rev, f) or {}).get("seconds") for f in files]
    seconds = [s for s in seconds if isinstance(s, (int, float))]
    return round(sum(seconds), 1) if seconds else None


def _separability(record: dict | None, reducer: str, image_set: str) -> float | None:
    """Mean over class pairs and analysed launches of the held-out kNN accuracy in the 2-D embedding of the
    net's primary layer."""
    found = results.pair_separability(record or {}, image_set, reducer)
    if not found:
        return None
    values = [v for pair_values in found["pairs"].values() for v in pair_values]
    return sum(values) / len(values) if values else None


def collect(config: SweepConfig, exps: list[dict] | None = None) -> pd.DataFrame:
    """One row per delta that has a finished experiment of this sweep: test mean IoU of the colour baseline and
    every net, separability per net and image set, and the seconds its stages took."""
    exps = experiments() if exps is None else exps
    rows = []
    for delta in config.deltas:
        found = [e for e in exps if matches(config, delta, e) and finished(e)]
        if not found:
            continue
        exp = found[0]
        row: dict[str, Any] = {"delta": delta, "experiment": exp["name"], "rev": exp["rev"][:7],
                               "from commit": (exp.get("baseline") or "")[:7]}
        row["baseline"] = results.mean_iou_range(git_json(exp["rev"], paths.BASELINE_RECORD))[0]
        for net in lookup(exp["params"], "segmentation.nets") or []:
            for loss in lookup(exp["params"], "segmentation.losses") or []:
                model = f"{net}-{loss}"
                row[model], row[f"{model} min"], row[f"{model} max"] = results.mean_iou_range(
                    git_json(exp["rev"], paths.segmentation_record(model)))
                latent = git_json(exp["rev"], paths.latent_record(model))
                for image_set in config.image_sets:
                    row[f"{model} separability {image_set}"] = _separability(latent, config.reducer, image_set)
        row["stage seconds"] = stage_seconds(exp["rev"], exp["baseline"]) if exp.get("baseline") else None
        rows.append(row)
    return pd.DataFrame(rows)


def models_of(frame: pd.DataFrame) -> list[str]:
    """The nets (`<net>-<loss>`) that have a test mean IoU in at least one experiment."""
    return [c for c in frame.columns if c.count("-") == 1 and " " not in c and c not in ("delta", "experiment")
            and frame[c].notna().any()]


# --- figures --------------------------------------------------------------------------------------------------

def _delta_ticks(ax, deltas) -> None:
    """A tick per delta; neighbours closer than 6 apart (42 and 43) share one label, "42|43"."""
    deltas = sorted(deltas)
    labels = [str(d) for d in deltas]
    for i in range(len(deltas) - 1):
        if labels[i] and deltas[i + 1] - deltas[i] < 6:
            labels[i], labels[i + 1] = f"{deltas[i]}|{deltas[i + 1]}", ""
    ax.set_xticks(deltas, labels)


def _shade_overlap(ax) -> None:
    channel, box = CHANNEL_OVERLAP_DELTA, BOX_OVERLAP_DELTA
    ax.axvspan(channel, box, color="#f6eedf", zorder=0, label="channel ranges overlap")
    ax.axvspan(box, 130, color="#ead3b0", zorder=0, label="colour boxes overlap")


def iou_figure(frame: pd.DataFrame):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    _shade_overlap(ax)
    ax.plot(frame["delta"], frame["baseline"], "k--o", ms=4, label="colour baseline")
    for model in models_of(frame):
        lo, hi = frame[f"{model} min"], frame[f"{model} max"]
        ax.plot(frame["delta"], frame[model], "-o", ms=4, label=model)
        if (hi - lo).fillna(0).gt(0).any():
            ax.fill_between(frame["delta"], lo, hi, alpha=0.15)
    ax.set(xlabel="delta (colour half-range)", ylabel="test mean IoU (4 classes)", xlim=(-3, 130))
    _delta_ticks(ax, frame["delta"])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return fig


def separability_figure(frame: pd.DataFrame, config: SweepConfig):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sets = config.image_sets
    fig, axes = plt.subplots(1, len(sets), figsize=(4.2 * len(sets), 3.8), sharey=True, squeeze=False)
    for ax, image_set in zip(axes[0], sets):
        _shade_overlap(ax)
        for model in models_of(frame):
            ax.plot(frame["delta"], frame[f"{model} separability {image_set}"], "-o", ms=4, label=model)
        ax.axhline(0.5, color="grey", lw=0.8, ls=":", label="chance")
        ax.set(title=f"image set '{image_set}'", xlabel="delta", xlim=(-3, 130))
        _delta_ticks(ax, frame["delta"])
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"pairwise kNN accuracy ({config.reducer} 2-D)")
    axes[0][-1].legend(fontsize=8, loc="lower left")
    return fig


# --- the run record and the document --------------------------------------------------------------------------

def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def config_digest(config: SweepConfig) -> str:
    settings = {"deltas": config.deltas, "targets": config.targets, "overrides": config.overrides}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def update_run_record(path: Path, config: SweepConfig, invocation: dict | None) -> dict:
    """reports/sweep/run.json: the invocations that ran this sweep's settings (a resumed sweep has several)."""
    record = json.loads(path.read_text()) if path.exists() else {}
    if record.get("config") != config_digest(config):
        record = {"config": config_digest(config), "invocations": []}
    if invocation is not None and invocation["ran"]:
        baseline = invocation.get("baseline")
        if record.get("baseline") not in (None, baseline):
            record["invocations"] = []          # a sweep of another commit: its own time
        record["baseline"] = baseline
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(invocation["started"]))
        record["invocations"].append({**{k: v for k, v in invocation.items() if k != "baseline"},
                                      "started": started, "cpu": _cpu()})
        write_json(path, record)
    return record


def _fmt(v: Any, digits: int = 3) -> str:
    return "–" if v is None or (isinstance(v, float) and v != v) else f"{v:.{digits}f}"


def _intro(config: SweepConfig, record: dict) -> Section:
    channel, box = int(CHANNEL_OVERLAP_DELTA), int(BOX_OVERLAP_DELTA)
    intro = Section("The sweep").add(Text(
        f"Study A once per colour half-range delta in {list(config.deltas)}, each a DVC experiment "
        f"(`{config.experiment(config.deltas[0])}`, ...) on the experiment queue, running "
        f"`{' '.join(config.targets)}` at the sizes below (sweep.yaml). Each rectangle takes one colour, drawn "
        f"uniformly from a box of half-width delta around its class centre on each channel (clipped to 0..255). "
        f"Up to delta {channel} every channel alone tells the classes apart. From {channel + 1} on, neighbouring "
        f"classes' ranges overlap on every channel (light shading), but their colour boxes are still disjoint: "
        f"the three channels together still decide the class. From {box} on, the boxes overlap (dark shading): "
        f"some colours belong to two classes, and only the image's context can decide (every image holds each "
        f"class once; geometry is drawn alike for all classes). The colour baseline labels a pixel with the "
        f"nearest class centre, which errs somewhat before the boxes meet (at the corners of a box). "
        f"Rerun: `make sweep` (finished deltas are kept)."))
    overrides = [[f"`{k}`", json.dumps(v)] for k, v in config.overrides.items()]
    intro.add(Table(["parameter", "value in every experiment"], overrides, "Sizes of the sweep (sweep.yaml)"))
    runs = record.get("invocations", [])
    if runs:
        total = sum(r["wall_seconds"] for r in runs)
        intro.add(Text(f"Time: {total / 60:.1f} minutes of wall time for {sum(len(r['ran']) for r in runs)} "
                       f"experiments with {runs[-1]['jobs']} queue workers on {runs[-1]['cpu']} "
                       f"({len(runs)} run{'s' if len(runs) > 1 else ''} of `make sweep`, the last started "
                       f"{runs[-1]['started']}).")
                  )
    return intro


def _iou_section(frame: pd.DataFrame, models: list[str], figure: Path) -> Section:
    box = int(BOX_OVERLAP_DELTA)
    iou = Section("Test mean IoU against delta").add(Figure(figure, (
        "Test mean IoU (background and the three rectangle classes) of the colour baseline (nearest class-centre "
        "colour) and of every net; a band spans the net's launches when it has several.")))
    iou.add(Table(["delta", "colour baseline", *models, "stage seconds"],
                  [[str(r["delta"]), _fmt(r["baseline"]), *[_fmt(r[m]) for m in models],
                    _fmt(r["stage seconds"], 0)] for _, r in frame.iterrows()],
                  "Test mean IoU per delta (mean over launches), and the seconds the experiment's stages took"))
    ends = frame[(frame["delta"] < box) & frame["baseline"].notna()], frame[frame["delta"] >= box]
    if not ends[0].empty and not ends[1].empty:
        b0, b1 = ends[0].iloc[-1], ends[1].iloc[-1]
        iou.add(Text(f"Test mean IoU at delta {b0['delta']} (the widest run with disjoint colour boxes) and at "
                     f"delta {b1['delta']}: colour baseline {_fmt(b0['baseline'])} and {_fmt(b1['baseline'])}; "
                     + "; ".join(f"{m} {_fmt(b0[m])} and {_fmt(b1[m])}" for m in models) + "."))
    return iou


def _separability_section(frame: pd.DataFrame, models: list[str], config: SweepConfig, figure: Path) -> Section:
    sep = Section("Latent separability against delta")
    has_separability = any(frame[f"{m} separability {p}"].notna().any() for m in models for p in config.image_sets)
    if has_separability:
        sep.add(Figure(figure, (
            f"Held-out accuracy of a kNN classifier on each pair of rectangle classes in the {config.reducer} 2-D "
            f"embedding of each net's primary layer (NN1 pool3, the U-Nets' bottleneck), mean over the three "
            f"pairs; image sets {', '.join(config.image_sets)}.")))
        columns = [f"{m} {p}" for m in models for p in config.image_sets]
        sep.add(Table(["delta", *columns],
                      [[str(r["delta"]), *[_fmt(r[f"{m} separability {p}"]) for m in models
                                           for p in config.image_sets]] for _, r in frame.iterrows()],
                      "Pairwise kNN accuracy per net and image set"))
    else:
        sep.add(Note("The experiments' latent metrics carry no separability figures (metrics/latent/*.json): "
                     "latent_analysis was not among the sweep's targets, or wrote none."))
    return sep


def document(frame: pd.DataFrame, config: SweepConfig, record: dict, figures: dict[str, Path]) -> list[Section]:
    intro = _intro(config, record)
    if frame.empty:
        return [intro.add(Note("No finished experiment of this sweep on the current commit: run `make sweep`."))]
    missing = [d for d in config.deltas if d not in set(frame["delta"])]
    if missing:
        intro.add(Note(f"No finished experiment for delta {missing}: `dvc queue status` and `dvc queue logs "
                       f"{config.experiment(missing[0])}` say why; `make sweep` runs them again."))
    models = models_of(frame)
    exps = Section("Experiments").add(Text(
        "Compare any two: `dvc exp show --only-changed`, `dvc exp diff " + config.experiment(config.deltas[0])
        + " " + config.experiment(config.deltas[-1]) + "`; bring one into the workspace: `dvc exp apply <name>`."),
        Table(["delta", "experiment", "its commit", "run from commit"],
              [[str(r["delta"]), f"`{r['experiment']}`", r["rev"], r["from commit"]] for _, r in frame.iterrows()]))
    return [intro, _iou_section(frame, models, figures["iou"]),
            _separability_section(frame, models, config, figures["separability"]), exps]


def write_sweep_report(config: SweepConfig, out: Path, invocation: dict | None = None,
                       exps: list[dict] | None = None) -> dict:
    """Collect the experiments, draw the figures, write <out>/sweep.md, <out>/sweep.html and <out>/sweep/.

    The experiments are those of the current commit; when it has none of this sweep (the report was committed
    since the sweep ran, say), those of the commit the last recorded run started from."""
    folder = out / "sweep"
    folder.mkdir(parents=True, exist_ok=True)
    record = update_run_record(folder / "run.json", config, invocation)
    frame = collect(config, exps)
    recorded = record.get("baseline")
    if frame.empty and exps is None and recorded:
        frame = collect(config, experiments(rev=recorded))
    figures = {"iou": folder / "mean-iou-vs-delta.png", "separability": folder / "separability-vs-delta.png"}
    if not frame.empty:
        save_figure(figures["iou"], iou_figure(frame))
        if any(c.endswith(f" separability {p}") and frame[c].notna().any() for c in frame.columns
               for p in config.image_sets):
            save_figure(figures["separability"], separability_figure(frame, config))
        with atomic_path(folder / "results.csv") as tmp:
            frame.to_csv(tmp, index=False, float_format="%.4f")
    sections = document(frame, config, record, figures)
    md, html = out / "sweep.md", out / "sweep.html"
    with atomic_path(md) as tmp:
        tmp.write_text(to_markdown(TITLE, sections, out))
    with atomic_path(html) as tmp:
        tmp.write_text(to_html(TITLE, sections))
    return {"md": md, "html": html, "rows": len(frame), "frame": frame}

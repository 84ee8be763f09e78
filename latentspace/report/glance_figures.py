"""The key figure of each study at the top of the report (reports/glance/study_<a|b|c>.png), drawn from the
metrics and, for the published values they mark, references.yaml. A study that has not run gets a figure that
says so, so the three files always exist (they are outputs of the report stage, committed to git)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from latentspace import paths, results  # noqa: E402
from latentspace.constants import (CLASS_PAIRS, MEASURED_COLOURS, PAIR_COLOURS, PUBLISHED_COLOUR,  # noqa: E402
                                   REGIME_COLOURS, STUDY_C_CELLS, STUDY_C_REGIMES)
from latentspace.core.io import save_figure  # noqa: E402

STUDIES = ("study_a", "study_b", "study_c")
FIGURES = tuple(Path(paths.glance_figure(study)).name for study in STUDIES)


def _placeholder(title: str, message: str):
    fig, ax = plt.subplots(figsize=(7, 1.6))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=11, color="#555555")
    ax.set_title(title, fontsize=11)
    return fig


def _claim(refs: dict, cid: str) -> dict:
    return next((c for c in refs.get("claims") or [] if c.get("id") == cid), {})


def study_a(root: Path, refs: dict, rules: dict):
    nets = results.segmentation_records(root)
    if not nets:
        return _placeholder("Study A", f"Study A has not run yet: no {paths.segmentation_record('<net>-<loss>')}")
    claim = _claim(refs, "a-latent-figures")
    image_set, reducer = claim.get("image_set", "all"), claim.get("reducer", "umap")
    fig, (ax_iou, ax_sep) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 1.6]})
    names = list(nets)
    iou = [[l.get("mean_iou") for l in results.launches(r)] for r in nets.values()]
    ax_iou.bar(range(len(names)), [np.mean(v) for v in iou], yerr=[np.std(v, ddof=1) if len(v) > 1 else 0 for v in iou],
               color=MEASURED_COLOURS[0], capsize=3)
    base = (results.baseline(root) or {}).get("mean_iou")
    if base is not None:
        ax_iou.axhline(base, color=MEASURED_COLOURS[1], ls="--", label=f"colour baseline {base:.3f}")
        ax_iou.legend(fontsize=8, loc="lower right")
    ax_iou.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax_iou.set_ylabel("test mean IoU (mean ± std over launches)")
    ax_iou.set_ylim(0, 1.02)
    ax_iou.set_title("Segmentation", fontsize=10)
    sep = {}
    for k in names:
        net, loss = k.split("-", 1)
        found = results.pair_separability(results.latent(root, net, loss) or {}, image_set, reducer)
        if found:
            sep[k] = found["pairs"]
    if sep:
        width = 0.8 / len(CLASS_PAIRS)
        for j, pair in enumerate(CLASS_PAIRS):
            vals = [sep[k].get(pair) or [np.nan] for k in sep]
            ax_sep.bar(np.arange(len(sep)) + (j - 1) * width, [np.mean(v) for v in vals], width,
                       label=f"classes {pair}", color=PAIR_COLOURS.get(pair, MEASURED_COLOURS[0]))
        for level, what in ((rules.get("clean_pair"), "clean"), (rules.get("apart_pair"), "apart"),
                            (rules.get("mixed_pair"), "mixed below")):
            if level is not None:
                ax_sep.axhline(level, color="#777777", lw=0.8, ls=":")
                ax_sep.text(len(sep) - 0.5, level, f" {what} {level}", fontsize=7, va="center")
        ax_sep.set_xticks(range(len(sep)), list(sep), rotation=45, ha="right", fontsize=8)
        ax_sep.set_ylim(0.4, 1.02)
        ax_sep.set_ylabel("held-out kNN accuracy per pair")
        ax_sep.legend(fontsize=7, loc="lower left", ncol=3)
    else:
        ax_sep.axis("off")
        ax_sep.text(0.5, 0.5, f"no pairwise separability in {paths.LATENT_METRICS}/ yet", ha="center", fontsize=9)
    ax_sep.set_title(f"Separability of the classes, 2-D {reducer.upper()} of image set `{image_set}`", fontsize=10)
    fig.suptitle("Study A: segmentation quality and the latent clusters", fontsize=11)
    return fig


def study_b(root: Path, refs: dict, rules: dict):
    by_hidden = (results.study_b_summary(root) or {}).get("by_hidden") or {}
    if not by_hidden:
        return _placeholder("Study B", f"Study B has not run yet: no {paths.STUDY_B_SUMMARY}")
    sizes = sorted(by_hidden, key=int)
    h = np.array([int(s) for s in sizes])
    acc = [by_hidden[s].get("probe_test_accuracy_values") or [by_hidden[s]["probe_test_accuracy"]] for s in sizes]
    mse = [by_hidden[s].get("test_mse_values") or [by_hidden[s]["test_mse"]] for s in sizes]
    fig, (ax_acc, ax_mse) = plt.subplots(1, 2, figsize=(11, 3.6))
    lo = [np.mean(v) - min(v) for v in acc]
    hi = [max(v) - np.mean(v) for v in acc]
    ax_acc.errorbar(h, [np.mean(v) for v in acc], yerr=[lo, hi], marker="o", color=MEASURED_COLOURS[0], capsize=3,
                    label="this run (mean, min–max over seeds)")
    published = ((refs.get("facts") or {}).get("study_b_probe_accuracy") or {}).get("values") or {}
    if published:
        ax_acc.scatter([int(k) for k in published], list(published.values()), marker="*", s=160,
                       color=PUBLISHED_COLOUR, zorder=3, label="published")
    ceiling = rules.get("probe_ceiling")
    if ceiling is not None:
        ax_acc.axhline(ceiling, color="#777777", ls=":", lw=1, label=f"claim: below {ceiling:.0%}")
    ax_acc.set_xscale("log", base=2)
    ax_acc.set_xticks(h, [str(x) for x in h])
    ax_acc.set_xlabel("hidden size")
    ax_acc.set_ylabel("linear probe test accuracy")
    ax_acc.legend(fontsize=8)
    ax_mse.errorbar(h, [np.mean(v) for v in mse], yerr=[[np.mean(v) - min(v) for v in mse],
                                                         [max(v) - np.mean(v) for v in mse]],
                    marker="o", color=MEASURED_COLOURS[1], capsize=3)
    ax_mse.set_xscale("log", base=2)
    ax_mse.set_xticks(h, [str(x) for x in h])
    ax_mse.set_xlabel("hidden size")
    ax_mse.set_ylabel("autoencoder test MSE")
    fig.suptitle("Study B: probe accuracy (published points marked) and reconstruction error per latent size",
                 fontsize=11)
    return fig


def study_c(root: Path, refs: dict, rules: dict):
    cells = results.study_c_cells(root)
    if not cells:
        return _placeholder("Study C", f"Study C has not run yet: no {paths.study_c_record('<arch>-<augment>')}")
    published = ((refs.get("facts") or {}).get("study_c_test_scores") or {}).get("values") or {}
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    x = np.arange(len(STUDY_C_CELLS))
    for ax, regime in zip(axes, STUDY_C_REGIMES):
        for i, cell in enumerate(STUDY_C_CELLS):
            vals = results.study_c_values(cells[cell], regime) if cell in cells else []
            if vals:
                ax.errorbar(i, np.mean(vals), yerr=[[np.mean(vals) - min(vals)], [max(vals) - np.mean(vals)]],
                            marker="o", color=REGIME_COLOURS[regime], capsize=3,
                            label="this run (mean, min–max over seeds)" if i == 0 else None)
            pub = ((published.get(cell) or {}).get(regime) or {}).get("test_accuracy")
            if pub is not None:
                ax.scatter(i, pub, marker="*", s=120, color=PUBLISHED_COLOUR, zorder=3,
                           label="published" if i == 0 else None)
        ax.set_xticks(x, list(STUDY_C_CELLS), rotation=30, ha="right", fontsize=8)
        ax.set_title(regime.replace("_", "-"), fontsize=10)
        ax.margins(y=0.3)
    axes[0].set_ylabel("MNIST test accuracy")
    axes[0].legend(fontsize=7, loc="lower left")
    fig.suptitle("Study C: test accuracy per cell and regime, against the published single runs", fontsize=11)
    fig.tight_layout()
    return fig


def draw(root: Path, refs: dict, rules: dict) -> dict[str, Path]:
    """Draw the three key figures into reports/glance/; returns name -> path."""
    root = Path(root)
    out = {}
    for study, name, draw_one in zip(STUDIES, FIGURES, (study_a, study_b, study_c)):
        path = root / paths.glance_figure(study)
        try:
            fig = draw_one(root, refs, rules)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
            # A metrics file from an older or newer stage: the report still renders, the figure says why not.
            plt.close("all")
            fig = _placeholder(name.removesuffix(".png").replace("_", " ").title(),
                               f"could not be drawn: a metrics file has an unexpected format ({type(e).__name__})")
        save_figure(path, fig)
        out[name] = path
    return out

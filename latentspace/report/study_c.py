"""Study C in the report: the 12 cells over seeds, the paired regime differences, and how each run was trained
(kept epochs, how often the kept epoch was the last one allowed, and per run family how many runs converged and
how many hit their epoch cap)."""
from __future__ import annotations

from latentspace import paths, results
from latentspace.constants import STUDY_C_CELLS, STUDY_C_REGIMES
from latentspace.report.common import Inputs, convergence_table, fmt, mean_std, spread
from latentspace.report.document import Gallery, Note, Section, Table, Text


def cells(inputs: Inputs) -> dict[str, dict]:
    return inputs.read(results.study_c_cells,
                       missing=f"no cell metrics `{paths.study_c_record('<arch>-<augment>')}`")


def _paired_difference(records: list[dict], a: str, b: str, metric: str) -> str:
    """Mean ± std over seeds of (regime a - regime b), each seed's two classifiers sharing its autoencoder."""
    diffs = [r[a][metric] - r[b][metric] for r in records if a in r and b in r]
    return mean_std(diffs, 3)


def _kept(per_seed: list[dict], part: str) -> tuple[str, str, str]:
    """(epochs allowed, kept epoch per seed, cap hits as `k/n`) of one regime or of the autoencoder."""
    runs = [r.get(part) or {} for r in per_seed]
    allowed = sorted({r["max_epochs"] for r in runs if isinstance(r.get("max_epochs"), int)})
    kept = [k for k in (r.get("epoch_kept", r.get("best_epoch")) for r in runs) if k is not None]
    caps = [r["hit_cap"] for r in runs if isinstance(r.get("hit_cap"), bool)]
    return (", ".join(map(str, allowed)) or "–", ", ".join(fmt(k) for k in kept) or "–",
            f"{sum(caps)}/{len(caps)}" if caps else "–")


def study_c(inputs: Inputs, params: dict) -> list[Section]:
    found = cells(inputs)
    absent = [f"`{paths.study_c_record(c)}`" for c in STUDY_C_CELLS if c not in found]
    out = []
    s = Section("Test accuracy and macro F1 of the 12 cells", level=3)
    if absent:
        s.add(Note("Missing cells (not run yet): " + ", ".join(absent) + "."))
    s.add(Text("Mean ± sample standard deviation over the seeds (the official MNIST test set; weights of the "
               f"epoch with the lowest validation loss). From `{paths.study_c_record('<arch>-<augment>')}`."))
    rows = []
    for cell, rec in found.items():
        arch, augment = cell.split("-")
        for regime in STUDY_C_REGIMES:
            r = rec.get(regime) or {}
            acc, f1 = r.get("test_accuracy") or {}, r.get("test_macro_f1") or {}
            rows.append([arch, augment, regime.replace("_", "-"), fmt(len(acc.get("values") or rec.get("seeds") or [])),
                         spread(acc), f"{fmt(acc.get('min'))}–{fmt(acc.get('max'))}", spread(f1)])
    s.add(Table(["architecture", "augmentation", "regime", "seeds", "test accuracy", "accuracy range",
                 "test macro F1"], rows))
    per_seed = {k: rec.get("per_seed") or [] for k, rec in found.items()}
    if any(per_seed.values()):
        s.add(Text("Paired differences of test accuracy between regimes, per seed (the regimes of one seed share "
                   "its pretrained autoencoder), mean ± std over seeds: a difference well inside its spread is "
                   "not one the seeds can tell apart. The tests are in the appendix (verdicts)."),
              Table(["architecture", "augmentation", "fine-tuned − scratch", "fine-tuned − frozen",
                     "frozen − scratch"],
                    [[*cell.split("-"), _paired_difference(rs, "fine_tuned", "scratch", "test_accuracy"),
                      _paired_difference(rs, "fine_tuned", "frozen", "test_accuracy"),
                      _paired_difference(rs, "frozen", "scratch", "test_accuracy")]
                     for cell, rs in per_seed.items() if rs]))
    out.append(s)

    s = Section("Autoencoders and training runs", level=3)
    s.add(Text("Per cell, for the autoencoder and each regime: the epochs allowed, the epoch whose weights were kept "
               "(lowest validation loss) for each seed, and how many seeds kept the last allowed epoch (cap hits: "
               "runs that might have improved with more epochs)."))
    rows = []
    for cell, rec in found.items():
        epochs = rec.get("epochs") or {}
        for part in ("autoencoder", *STUDY_C_REGIMES):
            allowed, kept, caps = _kept(per_seed[cell], part)
            rows.append([*cell.split("-"), part.replace("_", "-"),
                         fmt(epochs.get(part)) if allowed == "–" else allowed, kept, caps])
    s.add(Table(["architecture", "augmentation", "run", "epochs allowed", "kept epoch per seed", "cap hits"], rows),
          convergence_table([(part.replace("_", "-"), [results.stopping(r) for rec in found.values()
                                                        for r in results.runs_by_seed(rec, part).values()])
                             for part in ("autoencoder", *STUDY_C_REGIMES)],
                            "Training runs over every cell and seed that converged (stopped by patience) and "
                            "that hit their epoch cap"))
    s.add(Table(["architecture", "augmentation", "autoencoder test MSE", "train / val / test images", "seeds"],
                [[*cell.split("-"), spread((rec.get("autoencoder") or {}).get("test_mse")),
                  f"{fmt(rec.get('train_images'))} / {fmt(rec.get('val_images'))} / {fmt(rec.get('test_images'))}",
                  ", ".join(fmt(x) for x in rec.get("seeds") or [])] for cell, rec in found.items()]))
    s.add(Gallery([inputs.figure(paths.study_c_figure(cell),
                                 f"{cell.replace('-', ' autoencoder, augmentation ')}: test images over their "
                                 f"reconstructions.") for cell in found]))
    out.append(s)
    return out

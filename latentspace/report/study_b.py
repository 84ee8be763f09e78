"""Study B in the report: reconstruction error and linear-probe accuracy per latent size, with their spread over
seeds (`metrics/study_b/summary.json`), how many autoencoders and probes converged or hit their epoch cap, the
probe's per-class precision and confusion matrices, reconstructions."""
from __future__ import annotations

from latentspace import paths, results
from latentspace.constants import CIFAR10_CLASSES
from latentspace.report.common import Inputs, MissingInput, convergence_table, fmt, guarded, spread
from latentspace.report.document import Gallery, Note, Section, Table, Text

SUMMARY = paths.STUDY_B_SUMMARY


def _values(r: dict, key: str) -> dict:
    """The spread of one per-size quantity: its per-seed values where the summary has them, else its mean."""
    return {"values": r.get(f"{key}_values") or [r.get(key)]}


def _kept(r: dict, what: str) -> str:
    kept, caps = r.get(f"{what}_epochs_kept") or [], [c for c in r.get(f"{what}_hit_cap") or [] if isinstance(c, bool)]
    if not kept:
        return "–"
    return ", ".join(fmt(k) for k in kept) + (f" ({sum(caps)}/{len(caps)})" if caps else "")


def by_hidden(inputs: Inputs) -> dict[int, dict]:
    rec = inputs.read(results.study_b_summary, missing=f"`{SUMMARY}` is missing")
    sizes = rec.get("by_hidden") or {}
    if not sizes:
        raise MissingInput(f"`{SUMMARY}` lists no latent size")
    return {int(h): r for h, r in sorted(sizes.items(), key=lambda kv: int(kv[0]))}


def sizes_section(inputs: Inputs, params: dict) -> list[Section]:
    sizes = by_hidden(inputs)
    wanted = sorted((params.get("study_b") or {}).get("hidden_sizes") or [])
    s = Section("Reconstruction and linear probe per latent size", level=3)
    missing = [str(h) for h in wanted if h not in sizes]
    if missing:
        s.add(Note("Sizes in params.yaml without results (not run yet): " + ", ".join(missing) + "."))
    rows = [[str(h), fmt(len(r.get("seeds") or r.get("test_mse_values") or [1])), spread(_values(r, "test_mse")),
             spread(_values(r, "probe_train_accuracy")), spread(_values(r, "probe_test_accuracy")),
             spread(_values(r, "probe_test_macro_f1")), _kept(r, "ae"), _kept(r, "probe")]
            for h, r in sizes.items()]
    s.add(Text(f"Test MSE of each autoencoder (pixels in [0, 1]) and the accuracy of a linear probe trained on its "
               f"frozen codes, mean ± sample standard deviation over the seeds (`{SUMMARY}`); the epoch kept (lowest "
               "validation loss) per seed, and how many seeds kept the last epoch allowed (cap hits)."),
          Table(["hidden", "seeds", "test MSE", "probe train acc.", "probe test acc.", "probe test macro F1",
                 "AE epoch kept (cap hits)", "probe epoch kept (cap hits)"], rows),
          inputs.figure(paths.study_b_figure("summary"), "Reconstruction MSE and probe accuracy vs latent size."))
    runs = inputs.read(results.study_b_runs)
    if runs:
        s.add(convergence_table([("autoencoders", results.study_b_stopping(runs, "ae")),
                                 ("linear probes", results.study_b_stopping(runs, "probe"))],
                                f"Training runs over every size and seed (`{paths.study_b_ae_record('<tag>')}`, "
                                f"`{paths.study_b_probe_record('<tag>')}`) that converged and that hit their cap"))
    return [s]


def per_class_section(inputs: Inputs, params: dict) -> list[Section]:
    sizes = by_hidden(inputs)
    probes = {h: inputs.read(results.study_b_probe, str(h)) for h in sizes}
    probes = {h: q for h, q in probes.items() if q and q.get("per_class")}
    out = []
    if probes:
        classes = [c for c in CIFAR10_CLASSES if c in next(iter(probes.values()))["per_class"]]
        s = Section("Per-class precision of the probe (test set)", level=3)
        s.add(Table(["hidden", *classes],
                    [[str(h), *(fmt((q["per_class"].get(c) or {}).get("precision"), 3) for c in classes)]
                     for h, q in probes.items()]))
        out.append(s)
    s = Section("Test confusion matrices of the probe", level=3)
    s.add(Text("Rows are the true class, columns the predicted one."))
    s.add(Gallery([inputs.figure(paths.study_b_figure(f"probe-{h}-confusion"), f"Linear probe, hidden = {h}.")
                   for h in sizes]))
    out.append(s)
    s = Section("Reconstructions", level=3)
    s.add(Text("Test images (top) and their reconstructions (bottom), per latent size."))
    s.add(Gallery([inputs.figure(paths.study_b_figure(f"ae-{h}-reconstructions"), f"Autoencoder, hidden = {h}.")
                   for h in sizes]))
    out.append(s)
    return out


def study_b(inputs: Inputs, params: dict) -> list[Section]:
    return (guarded(sizes_section, "Study B sizes", "Reconstruction and linear probe per latent size")(inputs, params)
            + guarded(per_class_section, "Study B probes", "Probes and reconstructions")(inputs, params))

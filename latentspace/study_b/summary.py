"""Study B's summary over every latent size and seed: reconstruction MSE and probe accuracy per size (means
over seeds, with every seed's value), the probe's per-class precision and recall per size and seed, which
data the study ran on, and which claims a run at this scale can decide."""
from __future__ import annotations

import numpy as np

from latentspace.constants import CIFAR10_CLASSES
from latentspace.study_b.autoencoder import run_tag


def _mean(values: list[float]) -> float:
    return float(np.mean(values))


def per_class_by_size(probes: list[dict]) -> dict:
    """{class: {precision, recall (means over seeds), precision_values, recall_values}} of one size's probes."""
    out = {}
    for c in CIFAR10_CLASSES:
        rows = [q["per_class"][c] for q in probes if c in (q.get("per_class") or {})]
        if rows:
            out[c] = {"precision": _mean([r["precision"] for r in rows]), "recall": _mean([r["recall"] for r in rows]),
                      "precision_values": [r["precision"] for r in rows],
                      "recall_values": [r["recall"] for r in rows]}
    return out


def size_entry(ae: list[dict], probe: list[dict]) -> dict:
    """One size's entry of `by_hidden` from its autoencoder and probe records (one per seed, in seed order)."""
    return {
        "test_mse": _mean([a["test_mse"] for a in ae]),
        "probe_test_accuracy": _mean([q["test_accuracy"] for q in probe]),
        "probe_train_accuracy": _mean([q["train_accuracy"] for q in probe]),
        "probe_test_macro_f1": _mean([q["test_macro_f1"] for q in probe]),
        "test_mse_values": [a["test_mse"] for a in ae],
        "probe_test_accuracy_values": [q["test_accuracy"] for q in probe],
        "probe_train_accuracy_values": [q["train_accuracy"] for q in probe],
        "probe_test_macro_f1_values": [q["test_macro_f1"] for q in probe],
        "seeds": [a["seed"] for a in ae],
        "ae_epochs_kept": [a["epoch_kept"] for a in ae],
        "ae_epochs_run": [a["epochs_run"] for a in ae],
        "ae_hit_cap": [a["hit_cap"] for a in ae],
        "ae_converged": [a["stopping"]["converged"] for a in ae],
        "probe_epochs_kept": [q["epoch_kept"] for q in probe],
        "probe_hit_cap": [q["hit_cap"] for q in probe],
        "probe_converged": [q["stopping"]["converged"] for q in probe],
        "ae_train_images": ae[0]["train_images"],
        "probe_train_images": probe[0]["train_images"],
        "per_class": per_class_by_size(probe),
    }


def scale_block(ae: dict[str, dict], probe: dict[str, dict], p: dict, full_train: int, paper_epochs: int) -> dict:
    """Which Study B claims this run's scale can decide, and why (records keyed by run tag).

    The qualitative claims (below 50% at every size, MSE falling with the size) need every autoencoder and
    probe trained to its plateau. The published accuracies at 256 and 512 were measured after 200 epochs on
    all 45,000 training images: they need all the data, and either the original's epochs or every autoencoder
    stopped by its patience on all the data (then more epochs would not have changed its kept weights much)."""
    ae_images = sorted({a["train_images"] for a in ae.values()})
    probe_images = sorted({q["train_images"] for q in probe.values()})
    ae_unconverged = [t for t, a in ae.items() if not a["stopping"]["converged"]]
    probe_unconverged = [t for t, q in probe.items() if not q["stopping"]["converged"]]
    all_converged = not ae_unconverged and not probe_unconverged
    all_data = ae_images == [full_train] and probe_images == [full_train]
    paper_epochs_run = all(a["epochs_run"] >= paper_epochs for a in ae.values())
    ae_capped = ae_unconverged and (f"autoencoders stopped by their epoch cap ({p['ae_max_epochs']}) before the "
                                    f"validation MSE reached its plateau: {', '.join(ae_unconverged)}")
    probe_capped = probe_unconverged and (f"probes stopped by their epoch cap ({p['probe_max_epochs']}): "
                                          f"{', '.join(probe_unconverged)}")
    not_converged = "; ".join(filter(None, [ae_capped, probe_capped])) or None
    subset = (None if all_data else
              f"the autoencoders trained on {', '.join(map(str, ae_images))} of the {full_train} training images"
              + ("" if probe_images == [full_train] else
                 f", the probes on {', '.join(map(str, probe_images))} training codes"))
    ae_as_published = not ae_unconverged or paper_epochs_run
    published = all_data and ae_as_published and not probe_unconverged
    published_why_not = "; ".join(filter(None, [
        subset and (f"the published accuracies were measured on all {full_train} training images after "
                    f"{paper_epochs} autoencoder epochs, but {subset}"),
        not ae_as_published and ae_capped, probe_capped])) or None
    return {
        "full_train_images": full_train,
        "ae_train_images": ae_images[0] if len(ae_images) == 1 else ae_images,
        "ae_train_share": round(ae_images[0] / full_train, 4) if len(ae_images) == 1 else None,
        "probe_train_images": probe_images[0] if len(probe_images) == 1 else probe_images,
        "all_training_data": all_data,
        "ae_max_epochs": p["ae_max_epochs"], "ae_patience": p["ae_patience"], "ae_min_delta": p["ae_min_delta"],
        "paper_epochs": paper_epochs,
        "ae_runs": len(ae), "ae_runs_converged": len(ae) - len(ae_unconverged),
        "ae_epochs_kept": {t: a["epoch_kept"] for t, a in ae.items()},
        "ae_epochs_run": {t: a["epochs_run"] for t, a in ae.items()},
        "probe_runs": len(probe), "probe_runs_converged": len(probe) - len(probe_unconverged),
        "every_run_converged": all_converged,
        "claims": {
            "b-below-half": {"decidable": all_converged, "why_not": not_converged,
                             "caveat": subset and f"{subset}: a probe below 50% here is weaker evidence than one on "
                                                  "autoencoders trained on all of them"},
            "b-mse-decreasing": {"decidable": all_converged, "why_not": not_converged, "caveat": subset},
            "b-probe-accuracy": {"decidable": published, "why_not": None if published else published_why_not,
                                 "caveat": None},
        },
    }


def summary(p: dict, ae: dict[str, dict], probe: dict[str, dict], dataset: dict, paper_epochs: int,
            runs: list[tuple[int, int]]) -> dict:
    """metrics/study_b/summary.json from every run's records (keyed by run tag) and the dataset record."""
    by_hidden = {}
    for hidden in sorted({h for h, _ in runs}):
        tags = [run_tag(h, k) for h, k in runs if h == hidden]
        by_hidden[str(hidden)] = size_entry([ae[t] for t in tags], [probe[t] for t in tags])
    best = max(by_hidden, key=lambda h: by_hidden[h]["probe_test_accuracy"])
    jpeg = probe[run_tag(p["jpeg_check_hidden"])]["jpeg_roundtrip"]
    return {
        "by_hidden": by_hidden,
        "best_probe_hidden": int(best),
        "best_probe_test_accuracy": by_hidden[best]["probe_test_accuracy"],
        "data": {
            # Where the images came from, by kind and checksum: never a machine's path.
            "source": dataset.get("source"),
            "sha256": dataset.get("sha256"),
            # The offline copy this project ships with is a JPEG (quality about 75) export of CIFAR-10;
            # torchvision's download holds the original pixels.
            "jpeg_decoded": dataset.get("source") == "offline copy",
            "jpeg_roundtrip_drop": jpeg["drop"],
            "jpeg_roundtrip": {"hidden": p["jpeg_check_hidden"], **jpeg},
        },
        "scale": scale_block(ae, probe, p, int(dataset["train"]), paper_epochs),
        "ae_epochs_kept": {h: e["ae_epochs_kept"] for h, e in by_hidden.items()},
        "ae_runs_hit_cap": sum(sum(e["ae_hit_cap"]) for e in by_hidden.values()),
        "probe_standardized": p["probe_standardize"],
    }

"""Study B stage: reconstruction MSE and probe accuracy against the latent size over all sizes and seeds (means
over seeds, with every seed's value), which data the study ran on and what its JPEG decoding costs the probe."""
from pathlib import Path

import numpy as np

from latentspace import cifar_autoencoders as cae
from latentspace.core.errors import UserError
from latentspace.core.io import read_json, save_figure, write_json
from latentspace.core.stage import StageRun, stage


def _read(path: Path, producer: str) -> dict:
    try:
        return read_json(path)
    except FileNotFoundError:
        raise UserError(f"{path}: missing; run `dvc repro {producer}` first") from None
    except ValueError:
        raise UserError(f"{path}: not valid JSON; rerun `dvc repro -f {producer}`") from None


def runs_of(p: dict) -> dict[int, list[int]]:
    """Seed offsets trained per hidden size: 0 for every size, plus `repeat_seeds` for `repeat_sizes`."""
    return {h: [0] + (sorted(p["repeat_seeds"]) if h in p["repeat_sizes"] else []) for h in sorted(p["hidden_sizes"])}


@stage(__doc__, name="study_b_summary", sections=["study_b"])
def main(run: StageRun) -> str:
    p = run.params["study_b"]
    rows, by_hidden = [], {}
    for hidden, repeats in runs_of(p).items():
        ae, probe = [], []
        for k in repeats:
            tag = cae.run_tag(hidden, k)
            suffix = f"_seed@{hidden}-{k}" if k else f"@{hidden}"
            ae.append(_read(Path(f"metrics/study_b/sizes/ae-{tag}.json"), f"study_b_autoencoder{suffix}"))
            probe.append(_read(Path(f"metrics/study_b/sizes/probe-{tag}.json"), f"study_b_probe{suffix}"))
        entry = {
            "test_mse": float(np.mean([a["test_mse"] for a in ae])),
            "probe_test_accuracy": float(np.mean([q["test_accuracy"] for q in probe])),
            "probe_train_accuracy": float(np.mean([q["train_accuracy"] for q in probe])),
            "probe_test_macro_f1": float(np.mean([q["test_macro_f1"] for q in probe])),
            "test_mse_values": [a["test_mse"] for a in ae],
            "probe_test_accuracy_values": [q["test_accuracy"] for q in probe],
            "seeds": [a["seed"] for a in ae],
            "ae_epochs_kept": [a["epoch_kept"] for a in ae],
            "ae_hit_cap": [a["hit_cap"] for a in ae],
            "probe_epochs_kept": [q["epoch_kept"] for q in probe],
            "probe_hit_cap": [q["hit_cap"] for q in probe],
            "ae_train_images": ae[0]["train_images"],
            "probe_train_images": probe[0]["train_images"],
        }
        by_hidden[str(hidden)] = entry
        rows.append({"hidden": hidden, **entry})
    write_json("metrics/study_b/plots/mse_by_size.json",
               [{"hidden": r["hidden"], "test_mse": r["test_mse"]} for r in rows])
    write_json("metrics/study_b/plots/accuracy_by_size.json",
               [{"hidden": r["hidden"], "probe_test_accuracy": r["probe_test_accuracy"]} for r in rows])
    save_figure("reports/study_b/summary.png", cae.summary_figure(rows))

    dataset = _read(Path("metrics/datasets/cifar10.json"), "prepare_dataset@cifar10")
    h = p["jpeg_check_hidden"]
    if h not in p["hidden_sizes"]:
        raise UserError(f"parameter 'study_b.jpeg_check_hidden' = {h} is not allowed; expected one of "
                        f"study_b.hidden_sizes {p['hidden_sizes']}")
    jpeg = _read(Path(f"metrics/study_b/sizes/probe-{h}.json"), f"study_b_probe@{h}").get("jpeg_roundtrip")
    if jpeg is None:
        raise UserError(f"metrics/study_b/sizes/probe-{h}.json has no JPEG round trip; rerun "
                        f"`dvc repro -f study_b_probe@{h}`")
    best = max(rows, key=lambda r: r["probe_test_accuracy"])
    write_json("metrics/study_b/summary.json", {
        "by_hidden": by_hidden,
        "best_probe_hidden": best["hidden"],
        "best_probe_test_accuracy": best["probe_test_accuracy"],
        "data": {
            "source": dataset.get("source"),
            "location": dataset.get("location"),
            # The offline copy this project ships with is a JPEG (quality about 75) export of CIFAR-10;
            # torchvision's download holds the original pixels.
            "jpeg_decoded": dataset.get("source") == "offline copy",
            "jpeg_roundtrip_drop": jpeg["drop"],
            "jpeg_roundtrip": {"hidden": h, **jpeg},
        },
        "ae_epochs_kept": {h: e["ae_epochs_kept"] for h, e in by_hidden.items()},
        "ae_runs_hit_cap": sum(sum(e["ae_hit_cap"]) for e in by_hidden.values()),
        "probe_standardized": p["probe_standardize"],
    })
    return (f"best probe test accuracy {best['probe_test_accuracy']:.4f} at hidden {best['hidden']}; "
            f"one more JPEG round trip costs the probe {jpeg['drop']:+.4f}")


if __name__ == "__main__":
    main()

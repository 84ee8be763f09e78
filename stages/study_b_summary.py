"""Study B stage: reconstruction MSE and probe accuracy against the latent size, over all sizes."""
import argparse
from pathlib import Path

from latentspace import cifar_autoencoders as cae
from latentspace.core.errors import UserError
from latentspace.core.io import read_json, save_figure, write_json
from latentspace.core.params import load_params
from latentspace.core.stage import Timer, stage_main


def _read(path: Path) -> dict:
    try:
        return read_json(path)
    except FileNotFoundError:
        raise UserError(f"{path}: missing; run the Study B autoencoder and probe stages first") from None
    except ValueError:
        raise UserError(f"{path}: not valid JSON; rerun the stage that writes it") from None


@stage_main
def main() -> None:
    argparse.ArgumentParser(description=__doc__).parse_args()
    with Timer() as timer:
        sizes = sorted(load_params(sections=["study_b"])["study_b"]["hidden_sizes"])
        rows = []
        for hidden in sizes:
            ae = _read(Path(f"metrics/study_b/sizes/ae-{hidden}.json"))
            probe = _read(Path(f"metrics/study_b/sizes/probe-{hidden}.json"))
            rows.append({"hidden": hidden, "test_mse": ae["test_mse"], "val_mse": ae["val_mse"],
                         "probe_train_accuracy": probe["train_accuracy"],
                         "probe_test_accuracy": probe["test_accuracy"], "probe_test_macro_f1": probe["test_macro_f1"],
                         "autoencoder_seconds": ae["seconds"], "probe_seconds": probe["seconds"]})
        write_json("metrics/study_b/plots/mse_by_size.json",
                   [{"hidden": r["hidden"], "test_mse": r["test_mse"]} for r in rows])
        write_json("metrics/study_b/plots/accuracy_by_size.json",
                   [{"hidden": r["hidden"], "probe_test_accuracy": r["probe_test_accuracy"]} for r in rows])
        save_figure("reports/study_b/summary.png", cae.summary_figure(rows))
    best = max(rows, key=lambda r: r["probe_test_accuracy"])
    write_json("metrics/study_b/summary.json", {
        "by_hidden": {str(r["hidden"]): {k: v for k, v in r.items() if k != "hidden"} for r in rows},
        "best_probe_hidden": best["hidden"],
        "best_probe_test_accuracy": best["probe_test_accuracy"],
        "seconds": timer.seconds,
    })


if __name__ == "__main__":
    main()

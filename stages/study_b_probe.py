"""Study B stage: a linear probe on the frozen codes of one autoencoder (`--hidden`): accuracy per epoch,
per-class precision and recall, and the test confusion matrix (as rows for `dvc plots` and as a PNG)."""
import argparse

from dvclive import Live

from latentspace import cifar_autoencoders as cae
from latentspace.core.errors import UserError
from latentspace.core.io import atomic_dir, save_figure, write_json
from latentspace.core.params import load_params
from latentspace.core.stage import Timer, stage_main
from latentspace.datasets import load_prepared
from latentspace.training.device import setup_run


@stage_main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hidden", type=int, required=True, help="latent size of the autoencoder to probe")
    hidden = parser.parse_args().hidden
    with Timer() as timer:
        params = load_params(sections=["study_b"])
        p = params["study_b"]
        device, precision = setup_run(params)
        autoencoder = cae.load_autoencoder(f"models/study_b/ae-{hidden}.pt", device)
        if autoencoder.hidden != hidden:
            raise UserError(f"models/study_b/ae-{hidden}.pt holds an autoencoder with hidden = {autoencoder.hidden}")
        data = cae.cifar_on_device(load_prepared("cifar10"), device, train_size=p["probe_train_size"],
                                   seed=params["seed"])

        with atomic_dir(f"metrics/study_b/live/probe-{hidden}") as live_dir:
            with Live(dir=str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None) as live:
                result = cae.train_probe(autoencoder, data, epochs=p["probe_epochs"], batch_size=p["probe_batch_size"],
                                         lr=p["probe_lr"], standardize=p["probe_standardize"], precision=precision,
                                         seed=params["seed"], live=live)

        y_test = data["y_test"].cpu().numpy()
        write_json(f"metrics/study_b/confusion/probe-{hidden}.json",
                   cae.confusion_rows(y_test, result.test_predictions))
        save_figure(f"reports/study_b/probe-{hidden}-confusion.png",
                    cae.confusion_figure(result.confusion, cae.CIFAR10_CLASSES,
                                         f"Linear probe on hidden = {hidden}: CIFAR-10 test confusion "
                                         f"(accuracy {result.test_accuracy:.3f})"))

    write_json(f"metrics/study_b/sizes/probe-{hidden}.json", {
        "hidden": hidden,
        "train_accuracy": result.train_accuracy,
        "val_accuracy": result.val_accuracy,
        "test_accuracy": result.test_accuracy,
        "test_macro_f1": result.report["macro_f1"],
        "best_epoch": result.fit.best_epoch + 1,
        "epochs": p["probe_epochs"],
        "train_images": len(data["x_train"]),
        "per_class": {name: {"precision": v["precision"], "recall": v["recall"]}
                      for name, v in result.report["per_class"].items()},
        "confusion": result.confusion,
        "device": device.type,
        "seconds": timer.seconds,
    })


if __name__ == "__main__":
    main()

"""Study B stage: a linear probe on the frozen codes of one autoencoder (`--hidden`, `--repeat k` for the seed
`seed + k`), trained on all training codes until its validation loss stops improving: accuracy per epoch,
per-class precision and recall, and the test confusion matrix (as rows for `dvc plots` and as a PNG).

The probe of the first seed of `study_b.jpeg_check_hidden` also measures what the JPEG-decoded CIFAR-10 copy
costs: its test accuracy when the test images go through one more JPEG round trip at `study_b.jpeg_quality`
(the copy's own quality), against its accuracy on the copy. The autoencoder and probe stay as trained, so the
drop also holds the shift from training on once- to testing on twice-compressed images: if anything it
overstates the cost of the first round trip, which it indicates."""
import sys

from latentspace import cifar_autoencoders as cae
from latentspace.core.errors import UserError
from latentspace.core.io import save_figure, write_json
from latentspace.core.stage import StageRun, arg, stage
from latentspace.datasets import load_prepared
from latentspace.training.device import setup_run

ARGS = [arg("--hidden", type=int, required=True, help="latent size of the autoencoder to probe"),
        arg("--repeat", type=int, default=0, help="seed offset of the autoencoder: seed + repeat")]


def probe(run: StageRun) -> str:
    hidden, repeat = run.args.hidden, run.args.repeat
    tag = cae.run_tag(hidden, repeat)
    p = run.params["study_b"]
    seed = run.seed + repeat
    model_path = f"models/study_b/ae-{tag}.pt"
    autoencoder = cae.load_autoencoder(model_path, run.device)
    if autoencoder.hidden != hidden:
        raise UserError(f"{model_path} holds an autoencoder with hidden = {autoencoder.hidden}")
    data = cae.cifar_on_device(load_prepared("cifar10"), run.device, train_size=p["probe_train_size"], seed=seed)
    codes = cae.encode_splits(autoencoder, data, precision=run.precision)
    labels = {s: data[f"y_{s}"] for s in ("train", "val", "test")}

    with run.live(f"metrics/study_b/live/probe-{tag}") as live:
        result = cae.train_probe(codes, labels, max_epochs=p["probe_max_epochs"], patience=p["probe_patience"],
                                 batch_size=p["probe_batch_size"], lr=p["probe_lr"],
                                 standardize=p["probe_standardize"], seed=seed, live=live, desc=f"probe {tag}")

    jpeg = None
    if hidden == p["jpeg_check_hidden"] and repeat == 0:
        quality = p["jpeg_quality"]
        roundtrip = cae.jpeg_roundtrip_accuracy(autoencoder, result, data["x_test"].cpu().numpy(), data["y_test"],
                                                quality, precision=run.precision)
        jpeg = {"quality": quality, "test_accuracy_copy": result.test_accuracy,
                "test_accuracy_roundtrip": roundtrip, "drop": result.test_accuracy - roundtrip,
                "method": "the trained autoencoder and probe, tested on the test images after one more JPEG round "
                          "trip (PIL, 4:2:0 chroma subsampling) at this quality, on an 8x8 grid shifted by 4 "
                          "pixels (on the same grid a second round trip is nearly a no-op)"}
    y_test = data["y_test"].cpu().numpy()
    write_json(f"metrics/study_b/confusion/probe-{tag}.json", cae.confusion_rows(y_test, result.test_predictions))
    save_figure(f"reports/study_b/probe-{tag}-confusion.png",
                cae.confusion_figure(result.confusion, cae.CIFAR10_CLASSES,
                                     f"Linear probe on hidden = {hidden} (seed {seed}): CIFAR-10 test confusion "
                                     f"(accuracy {result.test_accuracy:.3f})"))
    fit = result.fit
    write_json(f"metrics/study_b/sizes/probe-{tag}.json", {
        "hidden": hidden,
        "seed": seed,
        "train_accuracy": result.train_accuracy,
        "val_accuracy": result.val_accuracy,
        "test_accuracy": result.test_accuracy,
        "test_macro_f1": result.report["macro_f1"],
        "standardized": p["probe_standardize"],
        "epoch_kept": fit.epoch_kept,
        "epochs_run": fit.epochs_run,
        "max_epochs": fit.max_epochs,
        "hit_cap": fit.hit_cap,
        "train_images": len(data["x_train"]),
        "per_class": {name: {"precision": v["precision"], "recall": v["recall"]}
                      for name, v in result.report["per_class"].items()},
        "confusion": result.confusion,
        "jpeg_roundtrip": jpeg,
    })
    return f"probe test accuracy {result.test_accuracy:.4f} (epoch {fit.epoch_kept} of {fit.epochs_run} kept)"


main = stage(__doc__, name="study_b_probe@{hidden}", sections=["study_b"], args=ARGS, setup=setup_run)(probe)
main_repeat = stage(__doc__, name="study_b_probe_seed@{hidden}-{repeat}", sections=["study_b"], args=ARGS,
                    setup=setup_run)(probe)

if __name__ == "__main__":
    (main_repeat if "--repeat" in sys.argv else main)()

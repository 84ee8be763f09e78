"""Study C stage, one (architecture, augmentation) cell: for each seed pretrain the autoencoder, then train
and test the frozen, fine-tuned and scratch classifiers on MNIST. Writes metrics/study_c/<arch>-<augment>.json
(test accuracy and macro F1 per regime and seed, mean and spread, validation curves, seconds), the per-epoch
curves (dvclive) and a figure of test images over their reconstructions."""
import argparse

from dvclive import Live

from latentspace import pretraining as pt
from latentspace.core.errors import UserError
from latentspace.core.io import atomic_dir, save_figure, write_json
from latentspace.core.params import load_params
from latentspace.core.stage import Timer, stage_main
from latentspace.datasets import load_prepared
from latentspace.training.device import setup_run


@stage_main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arch", required=True, choices=pt.ARCHITECTURES)
    parser.add_argument("--augment", required=True, choices=pt.AUGMENTATIONS)
    args = parser.parse_args()
    cell = f"{args.arch}-{args.augment}"
    with Timer() as timer:
        params = load_params(sections=["study_c"])
        p = params["study_c"]
        if args.augment == "erasing":
            for key, hi in (("scale", "1"), ("ratio", None)):
                bounds = p["augmentations"]["erasing"][key]
                if len(bounds) != 2 or bounds[0] > bounds[1]:
                    raise UserError(f"parameter 'study_c.augmentations.erasing.{key}' = {bounds} is not allowed; "
                                    f"expected [low, high] with 0 < low <= high{' <= ' + hi if hi else ''}")
        device, precision = setup_run(params)
        settings = pt.Settings.from_params(p, args.arch, args.augment, precision)
        data = pt.mnist_on_device(load_prepared("mnist"), device)
        seeds = [params["seed"] + k for k in range(p["seeds"])]

        per_seed = []
        with atomic_dir(f"metrics/study_c/live/{cell}") as live_dir:
            with Live(dir=str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None) as live:
                for seed in seeds:
                    record, autoencoder = pt.run_seed(args.arch, data, settings, seed, live)
                    per_seed.append(record)
                    if seed == seeds[0]:
                        figure = pt.reconstruction_figure(
                            autoencoder, data["x_test"], data["y_test"], settings, seed=seed,
                            title=f"Study C, {args.arch} autoencoder, augmentation {args.augment} (seed {seed})")
                        save_figure(f"reports/study_c/{cell}-reconstructions.png", figure)

    write_json(f"metrics/study_c/{cell}.json", {
        "arch": args.arch,
        "augment": args.augment,
        "seeds": seeds,
        **pt.summarize(per_seed),
        "per_seed": per_seed,
        "epochs": {"autoencoder": settings.ae_epochs, "frozen": settings.head_epochs,
                   "fine_tuned": settings.classifier_epochs, "scratch": settings.classifier_epochs},
        "settings": pt.describe(settings),
        "train_images": len(data["x_train"]),
        "val_images": len(data["x_val"]),
        "test_images": len(data["x_test"]),
        "device": device.type,
        "precision": precision,
        "seconds": timer.seconds,
    })


if __name__ == "__main__":
    main()

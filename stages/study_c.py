"""Study C stage, one (architecture, augmentation) cell: for each seed pretrain the autoencoder, then train
and test the frozen, fine-tuned and scratch classifiers on MNIST, each until its validation loss stops improving.
Writes metrics/study_c/<arch>-<augment>.json (test accuracy and macro F1 per regime and seed, mean and spread,
epochs kept, caps hit, validation curves), data/study_c/predictions/<arch>-<augment>.npz (every seed's test
predictions per regime), the per-epoch curves (dvclive) and a figure of test images over their reconstructions."""
from latentspace import pretraining as pt
from latentspace.core.errors import UserError
from latentspace.core.io import save_figure, write_json
from latentspace.core.stage import StageRun, arg, stage
from latentspace.datasets import load_prepared
from latentspace.training.device import setup_run


def check_erasing(p: dict) -> None:
    for key, hi in (("scale", "1"), ("ratio", None)):
        bounds = p["augmentations"]["erasing"][key]
        if len(bounds) != 2 or bounds[0] > bounds[1]:
            raise UserError(f"parameter 'study_c.augmentations.erasing.{key}' = {bounds} is not allowed; "
                            f"expected [low, high] with 0 < low <= high{' <= ' + hi if hi else ''}")


@stage(__doc__, name="study_c@{arch}-{augment}", sections=["study_c"],
       args=[arg("--arch", required=True, choices=pt.ARCHITECTURES),
             arg("--augment", required=True, choices=pt.AUGMENTATIONS)],
       setup=setup_run)
def main(run: StageRun) -> str:
    arch, augment = run.args.arch, run.args.augment
    cell = f"{arch}-{augment}"
    p = run.params["study_c"]
    if augment == "erasing":
        check_erasing(p)
    settings = pt.Settings.from_params(p, arch, augment, run.precision)
    data = pt.mnist_on_device(load_prepared("mnist"), run.device)
    seeds = [run.seed + k for k in range(p["seeds"])]

    per_seed, predictions, timing = [], [], []
    with run.live(f"metrics/study_c/live/{cell}") as live:
        for seed in seeds:
            record, preds, autoencoder = pt.run_seed(arch, data, settings, seed, live)
            timing.append({"seed": seed, **record.pop("timing")})
            per_seed.append(record)
            predictions.append(preds)
            if seed == seeds[0]:
                figure = pt.reconstruction_figure(
                    autoencoder, data["x_test"], data["y_test"], settings, seed=seed,
                    title=f"Study C, {arch} autoencoder, augmentation {augment} (seed {seed})")
                save_figure(f"reports/study_c/{cell}-reconstructions.png", figure)

    pt.save_predictions(f"data/study_c/predictions/{cell}.npz", data["y_test"].cpu().numpy(), seeds, predictions)
    summary = pt.summarize(per_seed)
    write_json(f"metrics/study_c/{cell}.json", {
        "arch": arch,
        "augment": augment,
        "seeds": seeds,
        **summary,
        "per_seed": per_seed,
        "max_epochs": {"autoencoder": settings.ae_max_epochs, "frozen": settings.head_max_epochs,
                       "fine_tuned": settings.classifier_max_epochs, "scratch": settings.classifier_max_epochs},
        "patience": settings.patience,
        "settings": pt.describe(settings),
        "train_images": len(data["x_train"]),
        "val_images": len(data["x_val"]),
        "test_images": len(data["x_test"]),
    })
    run.timing["per_seed"] = timing
    means = ", ".join(f"{r} {summary[r]['test_accuracy']['mean']:.4f}" for r in pt.REGIMES)
    return f"test accuracy over {len(seeds)} seeds: {means}"


if __name__ == "__main__":
    main()

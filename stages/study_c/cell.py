"""Study C stage, one (architecture, augmentation) cell: for each seed pretrain the autoencoder, then train
and test the frozen, fine-tuned and scratch classifiers on MNIST, each until its validation loss stops improving,
the seeds' independent runs side by side in a pool of `workers` processes.
Writes metrics/study_c/<arch>-<augment>.json (test accuracy and macro F1 per regime and seed, mean and spread,
where each run stopped, how many converged, validation curves), data/study_c/predictions/<arch>-<augment>.npz
(every seed's test predictions per regime), models/study_c/<arch>-<augment>.pt (every seed's autoencoder and
classifiers), the per-epoch curves (dvclive) and a figure of test images over their reconstructions."""
from latentspace import paths
from latentspace.constants import STUDY_C_ARCHS, STUDY_C_AUGMENTS, STUDY_C_REGIMES
from latentspace.core.errors import UserError
from latentspace.core.io import save_figure, write_json
from latentspace.core.stage import StageRun, arg, stage
from latentspace.datasets import load_prepared
from latentspace.study_c import regimes
from latentspace.training.device import setup_run
from latentspace.training.pool import WorkerPool


def check_erasing(p: dict) -> None:
    for key, hi in (("scale", "1"), ("ratio", None)):
        bounds = p["augmentations"]["erasing"][key]
        if len(bounds) != 2 or bounds[0] > bounds[1]:
            raise UserError(f"parameter 'study_c.augmentations.erasing.{key}' = {bounds} is not allowed; "
                            f"expected [low, high] with 0 < low <= high{' <= ' + hi if hi else ''}")


@stage(__doc__, name="study_c@{arch}-{augment}",
       args=[arg("--arch", required=True, choices=STUDY_C_ARCHS),
             arg("--augment", required=True, choices=STUDY_C_AUGMENTS)],
       setup=setup_run)
def main(run: StageRun) -> str:
    arch, augment = run.args.arch, run.args.augment
    cell = f"{arch}-{augment}"
    p = run.params["study_c"]
    if augment == "erasing":
        check_erasing(p)
    settings = regimes.Settings.from_params(p, arch, augment, run.precision)
    seeds = [run.seed + k for k in range(p["seeds"])]
    with WorkerPool(run.params["workers"], run.device, tasks=len(regimes.RUNS) * len(seeds),
                    initializer=regimes.load_mnist, initargs=(str(run.device),)) as pool:
        runs = regimes.run_cell(pool, arch, settings, seeds)
    run.timing.update(workers=pool.workers, per_seed=[
        {"seed": seed, **{name: r[name]["timing"] for name in regimes.RUNS}} for seed, r in zip(seeds, runs)])

    with run.live(paths.study_c_curves(cell)) as live:
        regimes.replay_curves(live, seeds, runs)
    mnist = load_prepared("mnist")
    test = regimes.mnist_on_device({k: mnist[k] for k in ("x_test", "y_test")}, run.device)
    figure = regimes.reconstruction_figure(
        regimes.trained_autoencoder(arch, runs[0]["autoencoder"], run.device), test["x_test"], test["y_test"],
        settings, seed=seeds[0], title=f"Study C, {arch} autoencoder, augmentation {augment} (seed {seeds[0]})")
    save_figure(paths.study_c_figure(cell), figure)
    regimes.save_predictions(paths.study_c_predictions(cell), mnist["y_test"], seeds,
                             [{regime: r[regime]["predictions"] for regime in STUDY_C_REGIMES} for r in runs])
    regimes.save_models(paths.study_c_models(cell), arch, augment, seeds, runs)

    per_seed = [{"seed": seed, **{name: r[name]["record"] for name in regimes.RUNS}} for seed, r in zip(seeds, runs)]
    summary = regimes.summarize(per_seed)
    converged = regimes.convergence(summary)
    write_json(paths.study_c_record(cell), {
        "arch": arch,
        "augment": augment,
        "seeds": seeds,
        **summary,
        "converged": converged,
        "per_seed": per_seed,
        "max_epochs": settings.max_epochs(),
        "patience": settings.patience,
        "min_delta": settings.min_delta,
        "settings": settings.describe(),
        "train_images": len(mnist["x_train"]),
        "val_images": len(mnist["x_val"]),
        "test_images": len(mnist["x_test"]),
    })
    means = ", ".join(f"{r} {summary[r]['test_accuracy']['mean']:.4f}" for r in STUDY_C_REGIMES)
    return (f"test accuracy over {len(seeds)} seeds: {means}; converged: "
            + ", ".join(f"{name} {n}" for name, n in converged.items()))


if __name__ == "__main__":
    main()

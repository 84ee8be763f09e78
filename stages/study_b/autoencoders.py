"""Study B stage: train every CIFAR-10 autoencoder, one per latent size plus the extra seeds of
`study_b.repeat_sizes`, each until its validation MSE stops improving, as runs of one worker pool (`workers`);
save each model, its metrics record (with how its training stopped) and its per-epoch losses."""
from latentspace.core.io import atomic_dir, write_json
from latentspace.core.stage import StageRun, stage
from latentspace.paths import STUDY_B_AE_CURVES, STUDY_B_AE_RECORDS, STUDY_B_MODELS
from latentspace.study_b import autoencoder as ae
from latentspace.training.device import setup_run
from latentspace.training.pool import WorkerPool

MODELS, RECORDS, LIVE = STUDY_B_MODELS, STUDY_B_AE_RECORDS, STUDY_B_AE_CURVES


@stage(__doc__, name="study_b_autoencoders", setup=setup_run)
def main(run: StageRun) -> str:
    p = run.params["study_b"]
    runs = ae.runs_of(p)
    # The largest sizes first, so the pool does not end on one long run while the other workers idle.
    order = sorted(runs, key=lambda r: (-r[0], r[1]))
    with WorkerPool(run.params["workers"], run.device, tasks=len(runs), initializer=ae.load_cifar10) as pool:
        futures = {r: pool.submit(ae.train_autoencoder_run, *r, p, run.seed, str(run.device), run.precision)
                   for r in order}
        results = [futures[r].result() for r in runs]

    # Every output folder is replaced whole: a size or seed dropped from the parameters leaves no stale file.
    with atomic_dir(MODELS) as models, atomic_dir(RECORDS) as records, atomic_dir(LIVE) as live_root:
        for res in results:
            ae.save_autoencoder(models / f"ae-{res['tag']}.pt", res["checkpoint"])
            write_json(records / f"ae-{res['tag']}.json", res["record"])
            with run.live(live_root / f"ae-{res['tag']}") as live:
                ae.log_history(live, res["history"])
    run.timing["workers"] = pool.workers
    run.timing["train_images_per_second"] = {res["tag"]: res["train_images_per_second"] for res in results}
    converged = sum(res["record"]["stopping"]["converged"] for res in results)
    worst = max(results, key=lambda res: res["record"]["test_mse"])["record"]
    return (f"{len(results)} autoencoders, {converged} stopped by patience; test MSE up to {worst['test_mse']:.5f} "
            f"(hidden {worst['hidden']})")


if __name__ == "__main__":
    main()

"""Study B stage: a linear probe on the frozen codes of every trained autoencoder, trained on all training
codes until its validation loss stops improving, as runs of one worker pool (`workers`): accuracy per epoch,
per-class precision and recall, the test confusion matrix (as rows for `dvc plots`) and the trained probes.

The probe of the first seed of `study_b.jpeg_check_hidden` also measures what the JPEG-decoded CIFAR-10 copy
costs: its test accuracy when the test images go through one more JPEG round trip at `study_b.jpeg_quality`
(the copy's own quality), against its accuracy on the copy. The autoencoder and probe stay as trained, so the
drop also holds the shift from training on once- to testing on twice-compressed images: if anything it
overstates the cost of the first round trip, which it indicates."""
from latentspace.core.io import atomic_dir, write_json
from latentspace.core.stage import StageRun, stage
from latentspace.paths import STUDY_B_CONFUSION, STUDY_B_PROBE_CURVES, STUDY_B_PROBE_MODELS, STUDY_B_PROBE_RECORDS
from latentspace.study_b import autoencoder as ae
from latentspace.study_b import probe as pr
from latentspace.training.device import setup_run
from latentspace.training.pool import WorkerPool

RECORDS, CONFUSION, LIVE = STUDY_B_PROBE_RECORDS, STUDY_B_CONFUSION, STUDY_B_PROBE_CURVES


@stage(__doc__, name="study_b_probes", setup=setup_run)
def main(run: StageRun) -> str:
    p = run.params["study_b"]
    runs = ae.runs_of(p)
    order = sorted(runs, key=lambda r: (-r[0], r[1]))   # the largest codes first: they cost the most
    with WorkerPool(run.params["workers"], run.device, tasks=len(runs), initializer=ae.load_cifar10) as pool:
        futures = {r: pool.submit(pr.probe_run, *r, ae.model_path(*r), p, run.seed, str(run.device), run.precision)
                   for r in order}
        results = [futures[r].result() for r in runs]

    with atomic_dir(RECORDS) as records, atomic_dir(CONFUSION) as confusion, atomic_dir(LIVE) as live_root, \
            atomic_dir(STUDY_B_PROBE_MODELS) as models:
        for res in results:
            pr.save_probe(models / f"probe-{res['tag']}.pt", res["checkpoint"])
            write_json(records / f"probe-{res['tag']}.json", res["record"])
            write_json(confusion / f"probe-{res['tag']}.json",
                       pr.confusion_rows(res["y_test"], res["test_predictions"]))
            with run.live(live_root / f"probe-{res['tag']}") as live:
                ae.log_history(live, res["history"])
    run.timing["workers"] = pool.workers
    best = max(results, key=lambda res: res["record"]["test_accuracy"])["record"]
    converged = sum(res["record"]["stopping"]["converged"] for res in results)
    return (f"{len(results)} probes, {converged} stopped by patience; best test accuracy "
            f"{best['test_accuracy']:.4f} (hidden {best['hidden']})")


if __name__ == "__main__":
    main()

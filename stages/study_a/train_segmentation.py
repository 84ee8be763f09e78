"""Study A3 stage: train every segmentation net of `segmentation.nets` with the losses of `segmentation.losses`,
`segmentation.launches` launches each, under `segmentation.protocol` (chained: one model per net continues
through the losses of `segmentation.chain`; independent: fresh weights per run), in a pool of `workers` processes.
Each run keeps, per phase, the weights of its lowest validation loss and is measured on the test set: pixel
accuracy, IoU and Dice per class, the confusion matrix. Per (net, loss): the models, a metrics file with every
launch (its chain step, what it started from, how it stopped) and their spread, the dvclive curves per launch,
and from launch 1 the figure of test predictions and the pixel sample of the confusion plot. The stage also
scores the nearest-class-colour baseline on the same test set (metrics/segmentation/baseline.json)."""
from collections import defaultdict

import numpy as np
import torch

from latentspace import paths
from latentspace.constants import NET_RELATIVE_COST
from latentspace.core.errors import UserError
from latentspace.core.io import save_figure, write_json
from latentspace.core.stage import StageRun, stage
from latentspace.study_a import scores
from latentspace.study_a import segmentation as seg
from latentspace.study_a.nets import save_net
from latentspace.study_a.rectangles import load_rectangles
from latentspace.training.device import setup_run
from latentspace.training.pool import WorkerPool, as_completed


def write_run_files(run: StageRun, res: dict, meta: dict, test_set) -> None:
    """The model and the dvclive curves of one run; from launch 1 also the figure and the confusion sample."""
    step, record, p = res["step"], res["record"], run.params["segmentation"]
    name = step.name
    save_net(paths.segmentation_model(name, step.launch), res["state_dict"], name=step.net,
             loss=step.loss, image_size=meta["image_size"], parameters=res["parameters"], delta=int(meta["delta"]),
             launch=step.launch, seed=record["seed"], step=step.step, started_from=record["started_from"])
    with run.live(paths.segmentation_curves(name, step.launch)) as live:
        for epoch in res["history"]:
            for key, value in epoch.items():
                if key != "epoch":
                    live.log_metric(key, value)
            live.next_step()
    if res["predicted"] is not None:
        labels, predicted = np.asarray(test_set.labels), res["predicted"]
        write_json(paths.segmentation_confusion(name),
                   scores.confusion_rows(labels, predicted, p["confusion_pixels"], run.seed))
        shown = min(p["examples"], len(labels))
        save_figure(paths.segmentation_figure(name), seg.predictions_figure(
            np.asarray(test_set.images[:shown]), labels[:shown], predicted[:shown],
            f"{name} launch 1: test images, true and predicted masks (mean IoU {record['mean_iou']:.3f})"))


def chain_of(results: list[dict], net: str) -> list[dict]:
    """Every step of a net's chain in order: what the report shows of the chained protocol."""
    steps = sorted((r for r in results if r["step"].net == net and r["step"].step is not None),
                   key=lambda r: r["step"].step)
    return [{"step": r["step"].step, "loss": r["step"].loss, "launch": r["step"].launch,
             "mean_iou": r["record"]["mean_iou"], "converged": r["record"]["stopping"]["converged"]} for r in steps]


def write_pair_metrics(run: StageRun, name: str, results: list[dict], chain: list[dict], meta: dict,
                       split: tuple[int, int]) -> None:
    results = sorted(results, key=lambda r: r["step"].launch)
    per_launch = [r["record"] for r in results]
    first = results[0]["step"]
    write_json(paths.segmentation_record(name), {
        "net": first.net, "loss": first.loss, "parameters": results[0]["parameters"],
        "protocol": run.params["segmentation"]["protocol"],
        "launches": len(per_launch), "seeds": [r["seed"] for r in per_launch],
        "per_launch": per_launch, "summary": scores.launch_summary(per_launch),
        # The whole chain of this net (every loss's steps), or None for a loss that trains from fresh weights.
        "chain": chain if first.step is not None else None,
        "train_images": split[0], "val_images": split[1], "test_images": meta["n_test"], "delta": int(meta["delta"]),
    })


def colour_baseline(run: StageRun, test_set) -> float:
    """The nearest-class-colour baseline on the test set, with the same metric keys as the nets."""
    images, labels = np.asarray(test_set.images), np.asarray(test_set.labels)
    predicted = seg.nearest_colour_chunked(images)
    metrics = scores.segmentation_metrics(scores.pixel_confusion(torch.as_tensor(labels), torch.as_tensor(predicted)))
    shown = min(run.params["segmentation"]["examples"], len(labels))
    save_figure(paths.segmentation_figure("baseline"), seg.predictions_figure(
        images[:shown], labels[:shown], predicted[:shown],
        f"nearest class colour baseline (delta {test_set.meta['delta']}): test images, true and predicted "
        f"masks (mean IoU {metrics['mean_iou']:.3f})"))
    write_json(paths.BASELINE_RECORD, {
        "net": "baseline", "loss": None, "parameters": 0, **metrics, "test_images": len(labels),
        "delta": int(test_set.meta["delta"])})
    return metrics["mean_iou"]


@stage(__doc__, name="train_segmentation", setup=setup_run)
def main(run: StageRun) -> str:
    p = run.params["segmentation"]
    if not seg.phases(p):
        raise UserError("parameters 'segmentation.nadam_epochs' and 'segmentation.sgd_epochs' are both 0: "
                        "nothing to train")
    meta = seg.check_data(p["nets"])
    # One split for every run: runs differ in initial weights, batch order and input noise only.
    train_idx, val_idx = seg.split_indices(meta["n_train_sample"], p["train_images"], p["val_images"], run.seed)
    # The longest tasks first (a chain of steps, a slow net), so the pool does not end on one long task while
    # the other workers idle; the results do not depend on the order.
    tasks = sorted(seg.plan_tasks(p), key=lambda task: -len(task) * NET_RELATIVE_COST[task[0].net])
    settings = {"seed": run.seed, "device": str(run.device), "precision": run.precision}
    results: list[dict] = []
    with WorkerPool(run.params["workers"], run.device, tasks=len(tasks), initializer=seg.load_data,
                    initargs=(seg.TRAIN_DIR, seg.TEST_DIR, train_idx, val_idx, str(run.device))) as pool:
        futures = [pool.submit(seg.train_task, task, p, settings) for task in tasks]
        for future in as_completed(futures):
            for res in future.result():
                results.append(res)
                print(f"{res['step'].describe()} (step {res['step'].step or 'fresh'}): test mean IoU "
                      f"{res['record']['mean_iou']:.3f}, epochs {res['record']['stopping']['epochs_run']} "
                      f"(kept {res['record']['best_epoch']}, converged {res['record']['stopping']['converged']})",
                      flush=True)

    test_set = load_rectangles(seg.TEST_DIR, with_masks=False)
    by_pair: dict[str, list[dict]] = defaultdict(list)
    for res in results:
        write_run_files(run, res, meta, test_set)
        by_pair[res["step"].name].append(res)
    for name, pair_results in sorted(by_pair.items()):
        write_pair_metrics(run, name, pair_results, chain_of(results, pair_results[0]["step"].net), meta,
                           (len(train_idx), len(val_idx)))
    baseline = colour_baseline(run, test_set)
    run.timing.update(runs=len(results), tasks=len(tasks), workers=pool.workers,
                      train_images_per_second={f"{r['step'].describe()}": r["images_per_second"] for r in results})
    iou = [r["record"]["mean_iou"] for r in results]
    converged = sum(r["record"]["stopping"]["converged"] for r in results)
    return (f"{len(results)} runs ({p['protocol']}): test mean IoU {np.mean(iou):.3f} (min {min(iou):.3f}), "
            f"{converged} converged; colour baseline {baseline:.3f}")


if __name__ == "__main__":
    main()

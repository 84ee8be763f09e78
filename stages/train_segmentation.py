"""Study A3 stage: train one segmentation net (`--net`) with one loss (`--loss`) on the rectangles, in
`segmentation.launches` independent launches (seeds seed, seed+1, ...). Each launch keeps the weights of its
epoch with the lowest validation loss and is measured on the test set: pixel accuracy, IoU and Dice per class,
the confusion matrix; the metrics file holds every launch and their mean and spread. Launch 1 also gives the
figure of test images with their true and predicted masks and the pixel sample for the confusion plot."""
import numpy as np
import torch

from latentspace import segmentation as seg
from latentspace.core.errors import UserError
from latentspace.core.io import save_figure, write_json
from latentspace.core.stage import StageRun, arg, stage
from latentspace.rectangles import load_rectangles
from latentspace.training.device import setup_run
from latentspace.training.engine import Phase, fit, predict, to_device


def split_indices(n: int, train_images: int, val_images: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded permutation of the training sample: the first `val_images` validate, the next
    `train_images` (0: all the rest) train. Sorted, so reading the memory-mapped files stays sequential."""
    if val_images >= n:
        raise UserError(f"parameter 'segmentation.val_images' = {val_images} leaves no training image of the "
                        f"{n} in data/rectangles/train (rectangles.samples.train.images)")
    order = np.random.default_rng(seed).permutation(n)
    val = order[:val_images]
    train = order[val_images:] if train_images == 0 else order[val_images:val_images + train_images]
    if train_images > len(train):
        raise UserError(f"parameter 'segmentation.train_images' = {train_images} is more than the {n - val_images} "
                        f"training images left after validation; raise rectangles.samples.train.images or use 0 (all)")
    return np.sort(train), np.sort(val)


def phases(p: dict) -> list[Phase]:
    """The original two-phase schedule (Nadam, then SGD with Keras time decay); a phase with 0 epochs is skipped."""
    out = [Phase(optimizer="nadam", lr=p["nadam_lr"], epochs=p["nadam_epochs"]),
           Phase(optimizer="sgd", lr=p["sgd_lr"], epochs=p["sgd_epochs"], momentum=p["sgd_momentum"],
                 lr_decay=p["sgd_lr_decay"])]
    return [ph for ph in out if ph.epochs > 0]


def preprocess(x: torch.Tensor) -> torch.Tensor:
    return seg.preprocess_images(x, 0.0, None)


@stage(__doc__, name="train_segmentation@{net}-{loss}", sections=["segmentation"],
       args=[arg("--net", required=True, choices=seg.NETS), arg("--loss", required=True, choices=seg.LOSSES)],
       setup=setup_run)
def main(run: StageRun) -> str:
    p, net_name, loss_name = run.params["segmentation"], run.args.net, run.args.loss
    name = f"{net_name}-{loss_name}"
    if not phases(p):
        raise UserError("parameters 'segmentation.nadam_epochs' and 'segmentation.sgd_epochs' are both 0: "
                        "nothing to train")
    device, precision = run.device, run.precision
    train_set, test_set = load_rectangles("data/rectangles/train", with_masks=False), \
        load_rectangles("data/rectangles/test", with_masks=False)
    image_size, delta = train_set.meta["image_size"], train_set.meta["delta"]
    if (test_set.meta["image_size"], test_set.meta["delta"]) != (image_size, delta):
        raise UserError("data/rectangles/train and data/rectangles/test differ in image_size or delta; "
                        "rerun `dvc repro generate_rectangles`")
    least = seg.min_image_size(net_name)
    if image_size % least:
        raise UserError(f"parameter 'rectangles.image_size' = {image_size}: {net_name} needs a multiple of "
                        f"{least} (its poolings halve the image {least.bit_length() - 1} times)")
    # One split for every launch: launches differ in initial weights, batch order and input noise only.
    train_idx, val_idx = split_indices(len(train_set), p["train_images"], p["val_images"], run.seed)

    # The whole data set lives on the device as uint8 (the engine's contract); float only per batch. Copies
    # (fancy indexing, np.array) of the read-only memory maps, which torch would warn about.
    x_train, y_train = to_device(train_set.images[train_idx], device), to_device(train_set.labels[train_idx], device)
    x_val, y_val = to_device(train_set.images[val_idx], device), to_device(train_set.labels[val_idx], device)
    x_test, y_test = to_device(np.array(test_set.images), device), to_device(np.array(test_set.labels), device)
    loss_fn = seg.LossWithValidationTally(seg.make_loss(loss_name, p["loss_settings"][loss_name]))
    seeds = [run.seed + k for k in range(p["launches"])]

    per_launch, rates = [], []
    for launch, seed in enumerate(seeds, start=1):
        torch.manual_seed(seed)
        net = seg.build_net(net_name).to(device)
        parameters = seg.count_parameters(net)
        with run.live(f"metrics/segmentation/live/{name}/launch-{launch}") as live:
            # One pass over the validation images per epoch: the loss that picks the kept epoch, and the tally.
            result = fit(net, x_train, y_train, loss_fn=loss_fn, phases=phases(p), batch_size=p["batch_size"],
                         x_val=x_val, y_val=y_val, preprocess=preprocess, augment=seg.input_noise(p["noise"]),
                         precision=precision, seed=seed, epoch_metrics=loss_fn.epoch_metrics, live=live,
                         desc=f"{name} launch {launch}", eval_batch_size=p["eval_batch_size"])
        seg.save_net(f"models/segmentation/{name}/launch-{launch}.pt", net, name=net_name, loss=loss_name,
                     image_size=image_size, parameters=parameters, delta=delta, launch=launch, seed=seed)
        predicted = predict(net, x_test, batch_size=p["eval_batch_size"], preprocess=preprocess,
                            precision=precision, reduce=lambda out: out.argmax(dim=1).to(torch.uint8))
        metrics = seg.segmentation_metrics(seg.pixel_confusion(y_test, predicted))
        per_launch.append({"launch": launch, "seed": seed, **metrics, "best_epoch": result.best_epoch + 1,
                           "epochs": len(result.history)})
        rates.append(result.train_images_per_second)
        if launch == 1:
            predicted, labels = predicted.cpu().numpy(), np.asarray(test_set.labels)
            write_json(f"metrics/segmentation/confusion/{name}.json",
                       seg.confusion_rows(labels, predicted, p["confusion_pixels"], run.seed))
            shown = min(p["examples"], len(labels))
            save_figure(f"reports/segmentation/{name}-predictions.png", seg.predictions_figure(
                np.asarray(test_set.images[:shown]), labels[:shown], predicted[:shown],
                f"{name} launch 1: test images, true and predicted masks (mean IoU {metrics['mean_iou']:.3f})"))
        print(f"{name} launch {launch}/{len(seeds)}: test mean IoU {metrics['mean_iou']:.3f}, pixel accuracy "
              f"{metrics['pixel_accuracy']:.4f} (best epoch {result.best_epoch + 1})", flush=True)

    run.timing.update(train_images_per_second=[round(r, 1) for r in rates], launches=len(seeds))
    write_json(f"metrics/segmentation/{name}.json", {
        "net": net_name,
        "loss": loss_name,
        "parameters": parameters,
        "launches": len(seeds),
        "seeds": seeds,
        "per_launch": per_launch,
        "summary": seg.launch_summary(per_launch),
        "train_images": len(train_idx),
        "val_images": len(val_idx),
        "test_images": len(test_set),
        "delta": int(delta),
    })
    mean_iou = [r["mean_iou"] for r in per_launch]
    return f"test mean IoU {np.mean(mean_iou):.3f} (min {min(mean_iou):.3f}) over {len(seeds)} launches"


if __name__ == "__main__":
    main()

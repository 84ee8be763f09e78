"""Study A3 stage: train one segmentation net (`--net`) with one loss (`--loss`) on the rectangles, keep the
weights of the epoch with the lowest validation loss, and measure it on the test set: pixel accuracy, IoU and
Dice per class, the confusion matrix, and a figure of test images with their true and predicted masks."""
import argparse

import numpy as np
import torch
from dvclive import Live

from latentspace import segmentation as seg
from latentspace.core.errors import UserError
from latentspace.core.io import atomic_dir, save_figure, write_json
from latentspace.core.params import load_params
from latentspace.core.stage import Timer, stage_main
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


@stage_main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--net", required=True, choices=seg.NETS)
    parser.add_argument("--loss", required=True, choices=seg.LOSSES)
    args = parser.parse_args()
    name = f"{args.net}-{args.loss}"
    with Timer() as timer:
        params = load_params(sections=["segmentation"])
        p, seed = params["segmentation"], params["seed"]
        if not phases(p):
            raise UserError("parameters 'segmentation.nadam_epochs' and 'segmentation.sgd_epochs' are both 0: "
                            "nothing to train")
        device, precision = setup_run(params)

        train_set, test_set = load_rectangles("data/rectangles/train", with_masks=False), \
            load_rectangles("data/rectangles/test", with_masks=False)
        image_size, delta = train_set.meta["image_size"], train_set.meta["delta"]
        if (test_set.meta["image_size"], test_set.meta["delta"]) != (image_size, delta):
            raise UserError("data/rectangles/train and data/rectangles/test differ in image_size or delta; "
                            "rerun `dvc repro generate_rectangles`")
        least = seg.min_image_size(args.net)
        if image_size % least:
            raise UserError(f"parameter 'rectangles.image_size' = {image_size}: {args.net} needs a multiple of "
                            f"{least} (its poolings halve the image {least.bit_length() - 1} times)")
        train_idx, val_idx = split_indices(len(train_set), p["train_images"], p["val_images"], seed)

        # The whole data set lives on the device as uint8 (the engine's contract); float only per batch. Copies
        # (fancy indexing, np.array) of the read-only memory maps, which torch would warn about.
        x_train, y_train = to_device(train_set.images[train_idx], device), to_device(train_set.labels[train_idx], device)
        x_val, y_val = to_device(train_set.images[val_idx], device), to_device(train_set.labels[val_idx], device)
        x_test, y_test = to_device(np.array(test_set.images), device), to_device(np.array(test_set.labels), device)

        net = seg.build_net(args.net).to(device)
        parameters = seg.count_parameters(net)
        print(f"{name}: {parameters} parameters", flush=True)
        loss_fn = seg.make_loss(args.loss, p["loss_settings"][args.loss])

        def preprocess(x: torch.Tensor) -> torch.Tensor:
            return seg.preprocess_images(x, 0.0, None)

        def predicted_labels(x: torch.Tensor) -> torch.Tensor:
            return predict(net, x, batch_size=p["eval_batch_size"], preprocess=preprocess, precision=precision,
                           reduce=lambda out: out.argmax(dim=1).to(torch.uint8))

        def val_metrics(_model) -> dict:
            m = seg.segmentation_metrics(seg.pixel_confusion(y_val, predicted_labels(x_val)))
            return {"val_pixel_accuracy": m["pixel_accuracy"], "val_mean_iou": m["mean_iou"]}

        with atomic_dir(f"metrics/segmentation/live/{name}") as live_dir:
            with Live(dir=str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None) as live:
                result = fit(net, x_train, y_train, loss_fn=loss_fn, phases=phases(p), batch_size=p["batch_size"],
                             x_val=x_val, y_val=y_val, preprocess=preprocess, augment=seg.input_noise(p["noise"]),
                             precision=precision, seed=seed, epoch_metrics=val_metrics, live=live, desc=name,
                             eval_batch_size=p["eval_batch_size"])
        seg.save_net(f"models/segmentation/{name}.pt", net, name=args.net, loss=args.loss, image_size=image_size,
                     parameters=parameters, delta=delta)

        predicted = predicted_labels(x_test)
        metrics = seg.segmentation_metrics(seg.pixel_confusion(y_test, predicted))
        predicted = predicted.cpu().numpy()
        labels = np.asarray(test_set.labels)
        write_json(f"metrics/segmentation/confusion/{name}.json",
                   seg.confusion_rows(labels, predicted, p["confusion_pixels"], seed))
        shown = min(p["examples"], len(labels))
        save_figure(f"reports/segmentation/{name}-predictions.png", seg.predictions_figure(
            np.asarray(test_set.images[:shown]), labels[:shown], predicted[:shown],
            f"{name}: test images, true and predicted masks (mean IoU {metrics['mean_iou']:.3f})"))

    write_json(f"metrics/segmentation/{name}.json", {
        "net": args.net,
        "loss": args.loss,
        "parameters": parameters,
        **metrics,
        "train_images": len(train_idx),
        "val_images": len(val_idx),
        "test_images": len(labels),
        "epochs": len(result.history),
        "best_epoch": result.best_epoch + 1,
        "train_images_per_second": result.train_images_per_second,
        "device": device.type,
        "precision": precision,
        "delta": int(delta),
        "seconds": timer.seconds,
    })


if __name__ == "__main__":
    main()

"""Study A3 baseline: label every test pixel with the nearest of black and the three class-centre colours.
Blind to shape and position, it shows how much of the segmentation colour alone solves at the current delta;
its metrics have the same keys as the nets' (metrics/segmentation/baseline.json)."""
import argparse

import numpy as np
import torch

from latentspace import segmentation as seg
from latentspace.core.io import save_figure, write_json
from latentspace.core.params import load_params
from latentspace.core.stage import Timer, stage_main
from latentspace.rectangles import load_rectangles

CHUNK = 256   # test images per step: bounds the (chunk, H, W, 4, 3) distance tensor to tens of MB


@stage_main
def main() -> None:
    argparse.ArgumentParser(description=__doc__).parse_args()
    with Timer() as timer:
        params = load_params(sections=["segmentation"])
        p = params["segmentation"]
        test_set = load_rectangles("data/rectangles/test", with_masks=False)
        images, labels = np.asarray(test_set.images), np.asarray(test_set.labels)
        predicted = np.concatenate([seg.nearest_colour(np.array(images[i:i + CHUNK])).numpy()
                                    for i in range(0, len(images), CHUNK)])
        metrics = seg.segmentation_metrics(seg.pixel_confusion(torch.as_tensor(np.array(labels)),
                                                               torch.as_tensor(predicted)))
        shown = min(p["examples"], len(labels))
        save_figure("reports/segmentation/baseline-predictions.png", seg.predictions_figure(
            images[:shown], labels[:shown], predicted[:shown],
            f"nearest class colour baseline (delta {test_set.meta['delta']}): test images, true and predicted "
            f"masks (mean IoU {metrics['mean_iou']:.3f})"))

    write_json("metrics/segmentation/baseline.json", {
        "net": "baseline",
        "loss": None,
        "parameters": 0,
        **metrics,
        "train_images": 0,
        "val_images": 0,
        "test_images": len(labels),
        "epochs": 0,
        "best_epoch": 0,
        "train_images_per_second": 0.0,
        "device": "cpu",
        "precision": "fp32",
        "delta": int(test_set.meta["delta"]),
        "seconds": timer.seconds,
    })


if __name__ == "__main__":
    main()

"""Study A3 baseline: label every test pixel with the nearest of black and the three class-centre colours.
Blind to shape and position, it shows how much of the segmentation colour alone solves at the current delta;
its metrics have the same keys as the nets' (metrics/segmentation/baseline.json)."""
import numpy as np
import torch

from latentspace import segmentation as seg
from latentspace.core.io import save_figure, write_json
from latentspace.core.stage import StageRun, stage
from latentspace.rectangles import load_rectangles

CHUNK = 256   # test images per step: bounds the (chunk, H, W, 4, 3) distance tensor to tens of MB


@stage(__doc__, name="colour_baseline", sections=["segmentation"])
def main(run: StageRun) -> str:
    p = run.params["segmentation"]
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
        "test_images": len(labels),
        "delta": int(test_set.meta["delta"]),
    })
    return f"test mean IoU {metrics['mean_iou']:.3f} from colour alone"


if __name__ == "__main__":
    main()

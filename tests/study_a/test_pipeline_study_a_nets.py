"""Study A3 + A4 through DVC: rectangles -> one segmentation net (a chain of two launches) and the colour
baseline -> image sets -> latent analysis, and which stages a changed setting touches."""

import pytest

TINY = {
    "rectangles.image_size": 16,
    "rectangles.samples.train.images": 96,
    "rectangles.samples.test.images": 16,
    "segmentation.nets": ["nn2"],
    "segmentation.losses": ["wce"],
    "segmentation.chain": ["wce"],
    "segmentation.launches": 2,
    "segmentation.train_images": 0,
    "segmentation.val_images": 16,
    "segmentation.batch_size": 16,
    "segmentation.nadam_epochs": 1,
    "segmentation.sgd_epochs": 1,
    "segmentation.examples": 2,
    "segmentation.confusion_pixels": 50,
    "latent.probe_sets": ["color", "all"],
    "latent.per_class": 15,
    "latent.dims": [8, 2],
    "latent.reducers": ["pca"],
    "latent.metric_sample": 45,
    "latent.continuity_sample": 30,
    "latent.knn": 5,
    "latent.launches": 2,
    "latent.separability_knn": 3,
}
METRIC_KEYS = {"net", "loss", "parameters", "protocol", "launches", "seeds", "per_launch", "summary", "chain",
               "train_images", "val_images", "test_images", "delta"}
LAUNCH_KEYS = {"launch", "seed", "pixel_accuracy", "iou", "dice", "mean_iou", "mean_dice", "mean_iou_rectangles",
               "mean_dice_rectangles", "confusion_matrix", "best_epoch", "epochs", "stopping", "step",
               "started_from", "weights_sha256"}
NO_TIMES = ("seconds", "device", "precision", "train_images_per_second")


@pytest.mark.e2e
def test_rectangles_to_net_to_latent_analysis(tiny_pipeline_repo):
    dvc_repo = tiny_pipeline_repo       # the shared tiny pipeline (Study A as TINY above), run and committed
    assert {"generate_rectangles@train", "generate_rectangles@test", "train_segmentation", "generate_image_sets",
            "latent_analysis"} <= dvc_repo.ran
    # Each stage ends with one headline line.
    assert "train_segmentation: 2 runs (chained): test mean IoU" in dvc_repo.output
    # The samples are stored as their parameter tables (the pixels are painted from them where needed).
    assert {p.name for p in (dvc_repo.path / "data/rectangles/train").iterdir()} == {"params.npy", "meta.json"}

    net = dvc_repo.json("metrics/segmentation/nn2-wce.json")
    assert set(net) == METRIC_KEYS
    assert (net["net"], net["loss"], net["parameters"], net["delta"]) == ("nn2", "wce", 62_264, 15)
    assert (net["train_images"], net["val_images"], net["test_images"]) == (80, 16, 16)
    assert net["launches"] == 2 and net["seeds"] == [0, 1] and [r["launch"] for r in net["per_launch"]] == [1, 2]
    # The chained protocol: launch 2 continues from the weights launch 1 kept.
    first, second = net["per_launch"]
    assert net["protocol"] == "chained" and (first["step"], second["step"]) == (1, 2)
    assert (first["started_from"], second["started_from"]) == (None, "nn2-wce launch 1")
    assert second["weights_sha256"]["start"] == first["weights_sha256"]["end"]
    assert [(c["step"], c["loss"], c["launch"]) for c in net["chain"]] == [(1, "wce", 1), (2, "wce", 2)]
    assert [c["mean_iou"] for c in net["chain"]] == [first["mean_iou"], second["mean_iou"]]
    for run in net["per_launch"]:
        assert set(run) == LAUNCH_KEYS and run["epochs"] == 2 and 1 <= run["best_epoch"] <= 2
        assert [ph["max_epochs"] for ph in run["stopping"]["phases"]] == [1, 1]
        assert sum(map(sum, run["confusion_matrix"])) == 16 * 16 * 16
        assert 0 <= run["mean_iou"] <= 1 and list(run["iou"]) == ["background", "class1", "class2", "class3"]
    iou = net["summary"]["mean_iou"]
    assert iou["values"] == [r["mean_iou"] for r in net["per_launch"]]
    assert iou["min"] <= iou["mean"] <= iou["max"]
    timing = dvc_repo.json("metrics/timing/train_segmentation.json")
    assert timing["stage"] == "train_segmentation" and timing["seconds"] > 0 and timing["runs"] == 2
    assert not any(k in net for k in NO_TIMES)
    for launch in (1, 2):
        live = dvc_repo.path / f"metrics/segmentation/live/nn2-wce/launch-{launch}/plots/metrics"
        assert {"train_loss.tsv", "val_loss.tsv", "val_mean_iou.tsv"} <= {p.name for p in live.iterdir()}
        assert (dvc_repo.path / f"models/segmentation/nn2-wce/launch-{launch}.pt").is_file()
    assert len(dvc_repo.json("metrics/segmentation/confusion/nn2-wce.json")) == 50
    assert (dvc_repo.path / "reports/segmentation/nn2-wce-predictions.png").stat().st_size > 1000

    # Colour alone segments these images perfectly while the class colour boxes are apart (delta 15).
    baseline = dvc_repo.json("metrics/segmentation/baseline.json")
    assert baseline["net"] == "baseline" and baseline["loss"] is None and "seconds" not in baseline
    assert baseline["mean_iou"] == 1.0 and baseline["pixel_accuracy"] == 1.0

    image_sets = dvc_repo.json("metrics/image_sets.json")
    assert list(image_sets["image_sets"]) == ["color", "all"] and image_sets["image_sets"]["all"]["images"] == 45
    assert {p.name for p in (dvc_repo.path / "data/image_sets").iterdir()} == {"color", "all"}
    latent = dvc_repo.json("metrics/latent/nn2-wce.json")
    assert (latent["net"], latent["loss"], latent["primary_layer"]) == ("nn2", "wce", "bottleneck")
    assert not any(k in latent for k in NO_TIMES)
    layer = latent["layers"]["bottleneck"]
    assert layer["code_dim"] == 64 * 1 * 1          # a 16-pixel image pools to 1 x 1
    assert set(layer["image_sets"]) == {"color", "all"}
    colour_set = layer["image_sets"]["color"]
    assert sorted(colour_set["pca"]) == ["2", "8"]
    assert 0 <= colour_set["raw"]["f1_fit_mean"] <= 1
    assert -1 <= layer["continuity"]["spearman"] <= 1
    # The claim metrics: every pair of classes, for each analysed launch.
    assert "nearest-neighbour" in latent["separability_method"]
    record = latent["separability"]["bottleneck"]["all"]["pca"]
    assert record["launches"] == [1, 2] and set(record["pairs"]) == {"1-2", "1-3", "2-3"}
    assert all(len(v) == 2 and all(0 <= a <= 1 for a in v) for v in record["pairs"].values())
    assert len(record["apart_class"]) == 2
    assert {p.name for p in (dvc_repo.path / "reports/latent/nn2-wce").iterdir()} == {
        "f1-fit.png", "f1-heldout.png", "scatter-bottleneck.png", "continuity.png"}

    # An analysis setting reruns only the analysis; a training setting the training (and what reads its models).
    dvc_repo.set_params(**{"latent.apart_margin": 0.2})
    status = dvc_repo.dvc("status", "--with-deps", "latent_analysis").stdout
    assert "latent_analysis" in status and "train_segmentation" not in status
    dvc_repo.set_params(**{"segmentation.loss_settings.wce.class_weight": 2.0})
    status = dvc_repo.dvc("status", "--with-deps", "latent_analysis").stdout
    assert "train_segmentation" in status and "generate_image_sets" not in status

"""Study A4 stage: latent space of one trained segmentation net (`--net`, `--loss`) on every probe set:
compactness per dimension (linear-probe F1 per class, silhouette, within/between distance ratio) after
PCA and UMAP, and the continuity check on the `all` set; metrics JSON and figures."""
import argparse
import time
from pathlib import Path

import numpy as np
import torch

from latentspace import latent
from latentspace.core.errors import UserError
from latentspace.core.io import atomic_dir, save_figure, write_json
from latentspace.core.params import load_params
from latentspace.core.stage import Timer, stage_main
from latentspace.probes import probe_labels_and_factors
from latentspace.rectangles import load_rectangles
from latentspace.segmentation import load_net
from latentspace.training.device import setup_run


def check_sizes(p: dict) -> None:
    images = 3 * p["per_class"]
    if p["umap_neighbors"] >= images and "umap" in p["reducers"]:
        raise UserError(f"parameter 'latent.umap_neighbors' = {p['umap_neighbors']} must be below the "
                        f"{images} images of a probe set (3 x latent.per_class)")
    if p["knn"] >= min(p["continuity_sample"], images):
        raise UserError(f"parameter 'latent.knn' = {p['knn']} must be below latent.continuity_sample "
                        f"({p['continuity_sample']}) and the {images} images of a probe set")
    if round(images * p["holdout_fraction"]) < 3 or round(images * (1 - p["holdout_fraction"])) < 3:
        raise UserError(f"parameter 'latent.holdout_fraction' = {p['holdout_fraction']} leaves fewer than one "
                        f"image per class on one side of the split of {images} images")


def load_probe_set(variant: str, image_size: int):
    path = Path("data/probes") / variant
    if not path.is_dir():
        raise UserError(f"{path}: probe set not found; run `dvc repro generate_probe_sets`")
    probe_set = load_rectangles(path)
    if probe_set.images.shape[1] != image_size:
        raise UserError(f"{path}: images are {probe_set.images.shape[1]} pixels wide but the net was trained on "
                        f"{image_size}; regenerate the probe sets or retrain with the same rectangles.image_size")
    return probe_set


@stage_main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--net", required=True)
    parser.add_argument("--loss", required=True)
    args = parser.parse_args()
    name = f"{args.net}-{args.loss}"
    with Timer() as timer:
        params = load_params(sections=["latent"])
        p, seed = params["latent"], params["seed"]
        check_sizes(p)
        device, precision = setup_run(params)
        model_path = Path("models/segmentation") / f"{name}.pt"
        if not model_path.is_file():
            raise UserError(f"{model_path}: trained net not found; run `dvc repro train_segmentation`")
        image_size = int(torch.load(model_path, map_location="cpu", weights_only=True)["image_size"])
        net = load_net(model_path)

        sweep_kw = dict(dims=p["dims"], reducers=p["reducers"], holdout_fraction=p["holdout_fraction"],
                        C=p["probe_C"], metric_sample=p["metric_sample"], umap_neighbors=p["umap_neighbors"],
                        umap_epochs=p["umap_epochs"], seed=seed)
        layers: dict = {}
        embeddings: dict = {}         # layer -> probe set -> reducer -> (N, 2)
        labels_of: dict = {}          # probe set -> (N,)
        pairs: dict = {}              # layer -> continuity distance pairs
        seconds = {"codes": 0.0, "sweep": 0.0, "continuity": 0.0}
        for variant in p["probe_sets"]:
            probe_set = load_probe_set(variant, image_size)
            labels, factors = probe_labels_and_factors(probe_set)
            labels_of[variant] = labels
            start = time.perf_counter()
            codes = latent.extract_codes(net, np.array(probe_set.images), device=device, precision=precision,
                                         batch_size=p["batch_size"])
            seconds["codes"] += time.perf_counter() - start
            for layer, layer_codes in codes.items():
                entry = layers.setdefault(layer, {"code_dim": int(layer_codes.shape[1]), "probe_sets": {}})
                start = time.perf_counter()
                entry["probe_sets"][variant], embeddings.setdefault(layer, {})[variant] = \
                    latent.dimension_sweep(layer_codes, labels, **sweep_kw)
                seconds["sweep"] += time.perf_counter() - start
                if variant == "all":
                    start = time.perf_counter()
                    sample = latent.continuity_sample(len(labels), p["continuity_sample"], seed)
                    entry["continuity"], pairs[layer] = latent.continuity(
                        layer_codes[sample], factors[sample], labels[sample], image_size=image_size, k=p["knn"])
                    seconds["continuity"] += time.perf_counter() - start

        with atomic_dir(f"reports/latent/{name}") as out:
            for score in ("f1_fit", "f1_heldout"):
                title = f"{name}: linear-probe {score.replace('_', ' ')} per class vs dimension"
                save_figure(out / f"{score.replace('_', '-')}.png", latent.f1_figure(layers, score, title))
            for layer in layers:
                save_figure(out / f"scatter-{layer}.png",
                            latent.scatter_figure(embeddings[layer], labels_of, f"{name} / {layer}: 2-D embeddings"))
            if pairs:
                metrics = {layer: layers[layer]["continuity"] for layer in pairs}
                save_figure(out / "continuity.png",
                            latent.continuity_figure(pairs, metrics, f"{name}: continuity on the `all` set", seed=seed))

    write_json(f"metrics/latent/{name}.json", {
        "net": args.net,
        "loss": args.loss,
        "probe_sets": p["probe_sets"],
        "images_per_set": {v: len(lab) for v, lab in labels_of.items()},
        "dims": p["dims"],
        "reducers": p["reducers"],
        "classifier": "one-vs-rest linear SVM (liblinear), balanced class weights, standardised features",
        "layers": layers,
        "device": device.type,
        "seconds_by_step": {k: round(v, 2) for k, v in seconds.items()},
        "seconds": timer.seconds,
    })


if __name__ == "__main__":
    main()

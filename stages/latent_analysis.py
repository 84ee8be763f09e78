"""Study A4 stage: latent space of one trained (net, loss) pair on every probe set. For launch 1: compactness per
dimension (linear-probe F1 per class, silhouette, within/between distance ratio) after PCA and UMAP, the
continuity check on the `all` set, and the figures. For each of the first `latent.launches` launches: the claim
metrics, the pairwise class separability in the 2-D PCA and UMAP embeddings (latentspace/separability.py)."""
import sys
import time
from pathlib import Path

import numpy as np
import torch

from latentspace import latent, separability
from latentspace.core.errors import UserError
from latentspace.core.io import atomic_dir, save_figure, write_json
from latentspace.core.stage import StageRun, arg, stage
from latentspace.probes import probe_labels_and_factors
from latentspace.rectangles import load_rectangles
from latentspace.segmentation import LOSSES, NETS, load_net
from latentspace.training.device import setup_run

# The code each net's claims are about: NN1's pooled encoder output, the U-Nets' 64-channel bottleneck.
PRIMARY_LAYER = {"nn1": "pool3", "nn2": "bottleneck", "nn3": "bottleneck"}


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
    if p["separability_knn"] >= round(2 * p["per_class"] * (1 - p["holdout_fraction"])):
        raise UserError(f"parameter 'latent.separability_knn' = {p['separability_knn']} must be below the "
                        f"fitting points of a pair of classes (2 x latent.per_class x (1 - holdout_fraction))")


def load_probe_set(variant: str, image_size: int):
    path = Path("data/probes") / variant
    if not path.is_dir():
        raise UserError(f"{path}: probe set not found; run `dvc repro generate_probe_sets`")
    probe_set = load_rectangles(path)
    if probe_set.images.shape[1] != image_size:
        raise UserError(f"{path}: images are {probe_set.images.shape[1]} pixels wide but the net was trained on "
                        f"{image_size}; regenerate the probe sets or retrain with the same rectangles.image_size")
    return probe_set


def model_paths(name: str, launches: int) -> list[Path]:
    folder = Path("models/segmentation") / name
    paths = [folder / f"launch-{k}.pt" for k in range(1, launches + 1)]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise UserError(f"{missing[0]}: trained net not found; parameter 'latent.launches' = {launches} asks for "
                        f"more launches than train_segmentation made (segmentation.launches), or run "
                        f"`dvc repro train_segmentation`")
    return paths


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@stage(__doc__, name="latent_analysis@{net}-{loss}", sections=["latent"],
       args=[arg("--net", required=True, choices=NETS), arg("--loss", required=True, choices=LOSSES)],
       setup=setup_run)
def main(run: StageRun) -> str:
    p, seed = run.params["latent"], run.seed
    name = f"{run.args.net}-{run.args.loss}"
    check_sizes(p)
    paths = model_paths(name, p["launches"])
    image_size = int(torch.load(paths[0], map_location="cpu", weights_only=True)["image_size"])
    probe_sets = {v: load_probe_set(v, image_size) for v in p["probe_sets"]}
    labels_of, factors_of = {}, {}
    for variant, probe_set in probe_sets.items():
        labels_of[variant], factors_of[variant] = probe_labels_and_factors(probe_set)
    umap_kw = dict(umap_neighbors=p["umap_neighbors"], umap_epochs=p["umap_epochs"], seed=seed)
    sep_kw = dict(k=p["separability_knn"], holdout_fraction=p["holdout_fraction"], seed=seed)

    primary = PRIMARY_LAYER[run.args.net]
    layers: dict = {}
    embeddings: dict = {}         # layer -> probe set -> reducer -> (N, 2), launch 1
    pairs: dict = {}              # layer -> continuity distance pairs, launch 1
    sep_results: dict = {}        # (layer, probe set, reducer) -> [pair accuracies per launch]
    seconds = {"codes": 0.0, "sweep": 0.0, "separability": 0.0, "continuity": 0.0}
    start_all = time.perf_counter()
    for launch, path in enumerate(paths, start=1):
        net = load_net(path)
        for variant, probe_set in probe_sets.items():
            labels = labels_of[variant]
            start = time.perf_counter()
            codes = latent.extract_codes(net, np.array(probe_set.images), device=run.device,
                                         precision=run.precision, batch_size=p["batch_size"])
            seconds["codes"] += time.perf_counter() - start
            for layer, layer_codes in codes.items():
                if launch > 1 and layer != primary:
                    continue      # later launches: the claim metrics of the code the claims are about
                start = time.perf_counter()
                if launch == 1:
                    entry = layers.setdefault(layer, {"code_dim": int(layer_codes.shape[1]), "probe_sets": {}})
                    entry["probe_sets"][variant], embeddings.setdefault(layer, {})[variant] = latent.dimension_sweep(
                        layer_codes, labels, dims=p["dims"], reducers=p["reducers"],
                        holdout_fraction=p["holdout_fraction"], alpha=p["probe_alpha"],
                        metric_sample=p["metric_sample"], umap_dims=p["umap_dims"], **umap_kw)
                    flat = embeddings[layer][variant]
                else:
                    flat = latent.embeddings_2d(layer_codes, p["reducers"], **umap_kw)
                seconds["sweep"] += time.perf_counter() - start
                start = time.perf_counter()
                for reducer, xy in flat.items():
                    sep_results.setdefault((layer, variant, reducer), []).append(
                        separability.pairwise_separability(xy, labels, **sep_kw))
                seconds["separability"] += time.perf_counter() - start
                if launch == 1 and variant == "all":
                    start = time.perf_counter()
                    sample = latent.continuity_sample(len(labels), p["continuity_sample"], seed)
                    layers[layer]["continuity"], pairs[layer] = latent.continuity(
                        layer_codes[sample], factors_of[variant][sample], labels[sample], image_size=image_size,
                        k=p["knn"])
                    seconds["continuity"] += time.perf_counter() - start
            progress(f"{name} launch {launch}/{len(paths)}: probe set {variant} analysed "
                     f"({time.perf_counter() - start_all:.0f} s)")

    launches = list(range(1, len(paths) + 1))
    result: dict = {}
    for (layer, variant, reducer), results in sep_results.items():
        result.setdefault(layer, {}).setdefault(variant, {})[reducer] = separability.collect(
            results, launches, p["apart_margin"])

    with atomic_dir(f"reports/latent/{name}") as out:
        for score in ("f1_fit", "f1_heldout"):
            title = f"{name} launch 1: linear-probe {score.replace('_', ' ')} per class vs dimension"
            save_figure(out / f"{score.replace('_', '-')}.png", latent.f1_figure(layers, score, title))
        for layer in layers:
            save_figure(out / f"scatter-{layer}.png", latent.scatter_figure(
                embeddings[layer], labels_of, f"{name} launch 1 / {layer}: 2-D embeddings"))
        if pairs:
            metrics = {layer: layers[layer]["continuity"] for layer in pairs}
            save_figure(out / "continuity.png",
                        latent.continuity_figure(pairs, metrics, f"{name} launch 1: continuity on the `all` set",
                                                 seed=seed))

    run.timing["seconds_by_step"] = {k: round(v, 2) for k, v in seconds.items()}
    write_json(f"metrics/latent/{name}.json", {
        "net": run.args.net,
        "loss": run.args.loss,
        "primary_layer": primary,
        "probe_sets": p["probe_sets"],
        "images_per_set": {v: len(lab) for v, lab in labels_of.items()},
        "dims": p["dims"],
        "reducers": p["reducers"],
        "classifier": "one-vs-rest ridge classifier per class, balanced class weights, standardised features",
        "sweep_launch": 1,
        "layers": layers,
        "separability_method": separability.describe(p["separability_knn"], p["holdout_fraction"],
                                                     p["apart_margin"]),
        "separability": result,
    })
    variant = "all" if "all" in p["probe_sets"] else p["probe_sets"][0]
    reducer = "umap" if "umap" in p["reducers"] else p["reducers"][0]
    worst = min(min(v) for v in result[primary][variant][reducer]["pairs"].values())
    return f"{primary}: lowest pairwise separability {worst:.2f} in 2-D {reducer} of the {variant} set"


if __name__ == "__main__":
    main()

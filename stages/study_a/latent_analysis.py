"""Study A4 stage: the latent space of every trained (net, loss) pair on every image set, one pool task per
pair (latentspace/study_a/analysis.py): compactness per dimension after PCA and UMAP, continuity, the claim
metrics (pairwise class separability in 2-D) and the figures, into metrics/latent/<net>-<loss>.json and
reports/latent/<net>-<loss>/."""
from latentspace import paths
from latentspace.core.io import atomic_dir, save_figure, write_json
from latentspace.core.stage import StageRun, stage
from latentspace.study_a import analysis, latent
from latentspace.training.device import setup_run
from latentspace.training.pool import WorkerPool


def write_figures(result: dict, seed: int) -> None:
    name, layers = result["name"], result["record"]["layers"]
    with atomic_dir(paths.latent_figures(name)) as out:
        for score in ("f1_fit", "f1_heldout"):
            title = f"{name} launch 1: linear-probe {score.replace('_', ' ')} per class vs dimension"
            save_figure(out / f"{score.replace('_', '-')}.png", latent.f1_figure(layers, score, title))
        for layer in layers:
            save_figure(out / f"scatter-{layer}.png", latent.scatter_figure(
                result["embeddings"][layer], result["labels"], f"{name} launch 1 / {layer}: 2-D embeddings"))
        if result["pairs"]:
            metrics = {layer: layers[layer]["continuity"] for layer in result["pairs"]}
            save_figure(out / "continuity.png", latent.continuity_figure(
                result["pairs"], metrics, f"{name} launch 1: continuity on the `all` set", seed=seed))


@stage(__doc__, name="latent_analysis", setup=setup_run)
def main(run: StageRun) -> str:
    p, seg = run.params["latent"], run.params["segmentation"]
    analysis.check_sizes(p)
    pairs = [(net, loss) for net in seg["nets"] for loss in seg["losses"]]
    for net, loss in pairs:
        analysis.model_paths(f"{net}-{loss}", p["launches"])
    image_size = analysis.trained_image_size(analysis.model_paths(f"{pairs[0][0]}-{pairs[0][1]}", 1)[0])
    settings = {"seed": run.seed, "device": str(run.device), "precision": run.precision, "image_size": image_size}
    with WorkerPool(run.params["workers"], run.device, tasks=len(pairs), initializer=analysis.load_image_sets,
                    initargs=(p["probe_sets"], image_size)) as pool:
        futures = [pool.submit(analysis.analyse_pair, net, loss, p, settings) for net, loss in pairs]
        results = [f.result() for f in futures]
    headlines = []
    for result in results:
        write_figures(result, run.seed)
        write_json(paths.latent_record(result["name"]), result["record"])
        record, name = result["record"], result["name"]
        variant = "all" if "all" in p["probe_sets"] else p["probe_sets"][0]
        reducer = "umap" if "umap" in p["reducers"] else p["reducers"][0]
        worst = min(min(v) for v in record["separability"][record["primary_layer"]][variant][reducer]["pairs"].values())
        headlines.append(f"{name} {worst:.2f}")
    run.timing["seconds_by_pair"] = {r["name"]: r["seconds"] for r in results}
    return f"lowest pairwise separability in 2-D {reducer} of the {variant} set: " + ", ".join(headlines)


if __name__ == "__main__":
    main()

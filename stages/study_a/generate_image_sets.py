"""Study A4 stage: every image set of latent.probe_sets, each with latent.per_class single-rectangle images
per class where only the variant's factors vary, drawn by the same generator as the training data.
One stage for all of them: they share every parameter, so they always change together."""
from latentspace import paths
from latentspace.core.io import atomic_dir, write_json
from latentspace.core.stage import StageRun, stage
from latentspace.study_a import image_sets
from latentspace.study_a.rectangles import save_rectangles


@stage(__doc__, name="generate_image_sets")
def main(run: StageRun) -> str:
    params = run.params
    p = params["latent"]
    image_size = params["rectangles"]["image_size"]
    records = {}
    # One atomic folder: a failed run leaves the previous image sets whole, never a mix of old and new.
    with atomic_dir(paths.IMAGE_SETS) as out:
        for variant in p["probe_sets"]:
            rs = image_sets.make_image_set(variant, per_class=p["per_class"], image_size=image_size,
                                           delta=params["delta"], seed=run.seed, contained=p["contained"])
            save_rectangles(out / variant, rs)
            records[variant] = image_sets.describe_image_set(rs, variant)
    write_json(paths.IMAGE_SETS_RECORD, {
        "image_sets": records,
        "image_size": image_size,
        "delta": params["delta"],
        "contained": p["contained"],
    })
    return f"{len(records)} image sets of {3 * p['per_class']} images"


if __name__ == "__main__":
    main()

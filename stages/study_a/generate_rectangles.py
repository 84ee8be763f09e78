"""Study A1 stage: generate one named rectangle sample (eda_free, eda_contained, train or test), stored as its
parameter table: the stages that need pixels paint them (deterministically) from it."""
from latentspace import paths
from latentspace.core.errors import UserError
from latentspace.core.io import write_json
from latentspace.core.stage import StageRun, arg, stage
from latentspace.study_a.rectangles import sample_seed, write_parameters


@stage(__doc__, name="generate_rectangles@{sample}",
       args=[arg("--sample", required=True, help="a key of rectangles.samples in params.yaml")])
def main(run: StageRun) -> str:
    sample, params = run.args.sample, run.params
    samples = params["rectangles"]["samples"]
    if sample not in samples:
        raise UserError(f"--sample {sample!r} is not a rectangle sample; expected one of {', '.join(samples)}")
    settings = samples[sample]
    meta = write_parameters(paths.rectangles(sample), settings["images"],
                            image_size=params["rectangles"]["image_size"], delta=params["delta"],
                            seed=sample_seed(run.seed, sample), contained=settings["contained"])
    write_json(paths.rectangles_record(sample),
               {"n": meta["n"], "image_size": meta["image_size"], "delta": meta["delta"], "seed": meta["seed"],
                "contained": meta["contained"], "clipped_colours": meta["clipped_colours"]})
    return f"{meta['n']} images of {meta['image_size']} px, delta {meta['delta']}"


if __name__ == "__main__":
    main()

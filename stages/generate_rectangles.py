"""Study A1 stage: generate one named rectangle sample (eda_free, eda_contained, train or test)."""
import argparse

from latentspace.core.errors import UserError
from latentspace.core.io import write_json
from latentspace.core.params import load_params
from latentspace.core.stage import Timer, stage_main
from latentspace.rectangles import sample_seed, write_rectangles


@stage_main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sample", required=True, help="a key of rectangles.samples in params.yaml")
    sample = parser.parse_args().sample
    with Timer() as timer:
        params = load_params(sections=["rectangles"])
        samples = params["rectangles"]["samples"]
        if sample not in samples:
            raise UserError(f"--sample {sample!r} is not a rectangle sample; expected one of {', '.join(samples)}")
        settings = samples[sample]
        meta = write_rectangles(f"data/rectangles/{sample}", settings["images"],
                                image_size=params["rectangles"]["image_size"], delta=params["delta"],
                                seed=sample_seed(params["seed"], sample), contained=settings["contained"])
    write_json(f"metrics/eda/generate/{sample}.json",
               {"n": meta["n"], "image_size": meta["image_size"], "delta": meta["delta"], "seed": meta["seed"],
                "contained": meta["contained"], "clipped_colours": meta["clipped_colours"],
                "seconds": timer.seconds})


if __name__ == "__main__":
    main()

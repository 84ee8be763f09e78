"""Study A4 stage: one probe set (`--variant`): latent.per_class single-rectangle images of each class, where
only the variant's factors vary, drawn by the same generator as the training data."""
import argparse

import numpy as np

from latentspace import latent
from latentspace.io import write_json
from latentspace.params import load_params
from latentspace.rectangles import save_rectangles
from latentspace.stage import Timer, stage_main

FACTORS = ("R", "G", "B", "w", "h", "xc", "yc")


@stage_main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", required=True, choices=latent.PROBE_SETS)
    variant = parser.parse_args().variant
    with Timer() as timer:
        params = load_params(sections=["rectangles", "latent"])
        p = params["latent"]
        image_size = params["rectangles"]["image_size"]
        probes = latent.make_probe_set(variant, per_class=p["per_class"], image_size=image_size,
                                       delta=params["delta"], seed=params["seed"], contained=p["contained"])
        save_rectangles(f"data/probes/{variant}", probes)
    labels, factors = latent.probe_labels_and_factors(probes)
    write_json(f"metrics/latent/probes/{variant}.json", {
        "variant": variant,
        "images": len(labels),
        "per_class": {str(c): int((labels == c).sum()) for c in latent.CLASSES},
        # Which factors vary: a fixed factor has one value per class (min == max), a varied one a range.
        "factor_ranges": {name: {str(c): [int(factors[labels == c, i].min()), int(factors[labels == c, i].max())]
                                 for c in latent.CLASSES}
                          for i, name in enumerate(FACTORS)},
        "distinct_values": {name: int(len(np.unique(factors[:, i]))) for i, name in enumerate(FACTORS)},
        "image_size": image_size,
        "delta": params["delta"],
        "contained": p["contained"],
        "seconds": timer.seconds,
    })


if __name__ == "__main__":
    main()

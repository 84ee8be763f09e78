"""Datasets stage: find MNIST or CIFAR-10 (`--name`: the offline copy in LATENTSPACE_DATA_DIR, else torchvision's
download), split the official training set into train/validation with a seeded permutation, and write
data/<name>/ (x uint8 NCHW, y int64, and the indices of each split) plus metrics/datasets/<name>.json (which
source, the sha256 of its files, sizes, seconds).

Where the data come from is outside DVC's view, so this stage does not rerun when LATENTSPACE_DATA_DIR changes:
after switching sources, `dvc repro -f prepare_dataset@<name>`. Identical bytes give identical arrays, so the
studies downstream rerun only when the data really differ."""
import argparse

from latentspace.core.io import write_json
from latentspace.core.params import load_params
from latentspace.core.stage import Timer, stage_main
from latentspace.datasets import DATASETS, locate_source, prepare


@stage_main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True, choices=sorted(DATASETS))
    name = parser.parse_args().name
    with Timer() as timer:
        p = load_params(sections=["datasets"])["datasets"]
        record = prepare(locate_source(name), f"data/{name}", val_size=p[name]["val_size"], seed=p["split_seed"],
                         val_param=f"datasets.{name}.val_size")
    write_json(f"metrics/datasets/{name}.json", {**record, "seconds": timer.seconds})


if __name__ == "__main__":
    main()

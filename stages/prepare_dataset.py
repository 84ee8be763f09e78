"""Datasets stage: read the source that locate_dataset recorded for MNIST or CIFAR-10 (`--name`), split the
official training set into train/validation with a seeded permutation, and write data/<name>/ (x uint8 NCHW,
y int64, and the indices of each split) plus metrics/datasets/<name>.json (source, sha256, sizes, seconds)."""
import argparse

from latentspace.datasets import DATASETS, Source, prepare
from latentspace.errors import UserError
from latentspace.io import read_json, write_json
from latentspace.params import load_params
from latentspace.stage import Timer, stage_main


@stage_main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True, choices=sorted(DATASETS))
    name = parser.parse_args().name
    with Timer() as timer:
        p = load_params(sections=["datasets"])["datasets"]
        record_path = f"data/sources/{name}.json"
        try:
            source = Source.from_json(read_json(record_path), record_path)
        except (FileNotFoundError, ValueError):
            raise UserError(f"{record_path}: missing or not JSON; run `dvc repro locate_dataset@{name}`") from None
        record = prepare(source, f"data/{name}", val_size=p[name]["val_size"], seed=p["split_seed"],
                         val_param=f"datasets.{name}.val_size")
    write_json(f"metrics/datasets/{name}.json", {**record, "seconds": timer.seconds})


if __name__ == "__main__":
    main()

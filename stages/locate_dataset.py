"""Datasets stage: find MNIST or CIFAR-10 (`--name`) and write which source will be used and the
sha256 of its files to data/sources/<name>.json. DVC reruns `prepare_dataset` only when that record changes:
another source, or other bytes. Offline copy via LATENTSPACE_DATA_DIR, else torchvision's download."""
import argparse

from latentspace.datasets import DATASETS, locate_source
from latentspace.io import write_json
from latentspace.stage import stage_main


@stage_main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True, choices=sorted(DATASETS))
    name = parser.parse_args().name
    write_json(f"data/sources/{name}.json", locate_source(name).to_json())


if __name__ == "__main__":
    main()

"""Datasets stage: find MNIST or CIFAR-10 (`--name`: the offline copy in LATENTSPACE_DATA_DIR, else torchvision's
download), split the official training set into train/validation with a seeded permutation, and write
data/<name>/ (x uint8 NCHW, y int64, and the indices of each split) plus metrics/datasets/<name>.json (which
source, the sha256 of its files, sizes).

Where the data come from is outside DVC's view, so this stage does not rerun when LATENTSPACE_DATA_DIR changes:
after switching sources, `dvc repro -f prepare_dataset@<name>`. Identical bytes give identical arrays, so the
studies downstream rerun only when the data really differ."""
from latentspace import paths
from latentspace.core.io import write_json
from latentspace.core.stage import StageRun, arg, stage
from latentspace.datasets import DATASETS, locate_source, prepare


@stage(__doc__, name="prepare_dataset@{name}",
       args=[arg("--name", required=True, choices=sorted(DATASETS))])
def main(run: StageRun) -> str:
    name = run.args.name
    p = run.params["datasets"]
    record = prepare(locate_source(name), paths.dataset(name), val_size=p[name]["val_size"], seed=p["split_seed"],
                     val_param=f"datasets.{name}.val_size")
    write_json(paths.dataset_record(name), record)
    return f"{record['train']} train / {record['val']} validation / {record['test']} test images ({record['source']})"


if __name__ == "__main__":
    main()

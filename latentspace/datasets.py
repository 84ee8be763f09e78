"""MNIST and CIFAR-10: where they come from, and the fixed splits every study reads.

Two ways to get a dataset, tried in this order:
1. an offline copy: when the environment variable LATENTSPACE_DATA_DIR names a folder holding `<name>.npz`
   (arrays x_train, y_train, x_test, y_test, uint8, images NHW or NHWC: the layout of Keras' mnist.npz);
2. torchvision's download (torchvision.datasets.MNIST / CIFAR10) into a cache folder
   (LATENTSPACE_DOWNLOAD_DIR, else $XDG_CACHE_HOME/latentspace, else ~/.cache/latentspace).

`locate_source` picks one and fingerprints it: the sha256 of every file the arrays are read from, which the
`prepare_dataset` stage records in metrics/datasets/<name>.json beside the split it made. The record names the
way the data came (`obtained_by`) and the files by their names only: where the copy lies is a fact of the
machine, not of the run, and a rerun elsewhere must leave the tracked metrics unchanged.

`prepare` writes the arrays the studies read (`load_prepared`): x uint8 (N, C, H, W), y int64 (N,), for a
train / validation split of the official training set drawn with a seeded permutation, and the official
test set in a seeded order (the offline CIFAR-10 copy is sorted by class: a prefix of it would hold one class).
"""
from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from latentspace.core.errors import UserError
from latentspace.core.io import atomic_dir, save_npy

DATA_DIR_ENV = "LATENTSPACE_DATA_DIR"
DOWNLOAD_DIR_ENV = "LATENTSPACE_DOWNLOAD_DIR"
SPLITS = ("train", "val", "test")
ARRAYS = tuple(f"{a}_{s}" for s in SPLITS for a in ("x", "y"))


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    shape: tuple[int, int, int]     # C, H, W
    classes: tuple[str, ...]


DATASETS = {
    "mnist": DatasetInfo("mnist", "MNIST", (1, 28, 28), tuple(str(d) for d in range(10))),
    "cifar10": DatasetInfo("cifar10", "CIFAR-10", (3, 32, 32),
                           ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                            "truck")),
}


def dataset_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    return DATASETS[name]


@dataclass
class Source:
    """Where a dataset's arrays are read from, and the sha256 of each file read."""
    dataset: str
    kind: str                                   # "offline copy" | "torchvision"
    location: str                               # the .npz file, or torchvision's root folder (never recorded)
    sha256: dict[str, str] = field(default_factory=dict)   # file name (relative to the root) -> sha256

    @property
    def obtained_by(self) -> str:
        """How the data came, in words and without machine paths (the record's `obtained_by`)."""
        return f"offline copy via {DATA_DIR_ENV}" if self.kind == "offline copy" else "torchvision download"


def sha256_of(data: bytes | Path) -> str:
    if isinstance(data, Path):
        h = hashlib.sha256()
        with open(data, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        return h.hexdigest()
    return hashlib.sha256(data).hexdigest()


def default_download_dir() -> Path:
    if os.environ.get(DOWNLOAD_DIR_ENV):
        return Path(os.environ[DOWNLOAD_DIR_ENV])
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "latentspace"


# --- torchvision ------------------------------------------------------------------------------------

def _torchvision_class(name: str):
    import torchvision.datasets as tvd
    return {"mnist": tvd.MNIST, "cifar10": tvd.CIFAR10}[name]


def _torchvision_files(name: str, root: Path) -> list[Path]:
    """The files torchvision reads the arrays from (after download and extraction)."""
    cls = _torchvision_class(name)
    if name == "mnist":
        raw = root / cls.__name__ / "raw"
        return [raw / Path(filename).stem for filename, _ in cls.resources]   # the .gz files, extracted
    return [root / cls.base_folder / filename for filename, _ in cls.train_list + cls.test_list]


def _download(name: str, root: Path) -> None:
    cls = _torchvision_class(name)
    for train in (True, False):
        cls(str(root), train=train, download=True)


def _torchvision_arrays(name: str, root: Path) -> dict[str, np.ndarray]:
    cls = _torchvision_class(name)
    out = {}
    for split, train in (("train", True), ("test", False)):
        ds = cls(str(root), train=train, download=False)
        data = ds.data.numpy() if hasattr(ds.data, "numpy") else np.asarray(ds.data)
        out[f"x_{split}"], out[f"y_{split}"] = data, np.asarray(ds.targets)
    return out


# --- locating ---------------------------------------------------------------------------------------

def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    reason = next((line for line in text if "got:" not in line and line.strip()), "")
    return f"{type(e).__name__}: {reason}" if reason else type(e).__name__


def locate_source(name: str, *, data_dir: str | Path | None = None, download_dir: str | Path | None = None) -> Source:
    """The offline copy in `data_dir` (default: $LATENTSPACE_DATA_DIR) if it holds `<name>.npz`, else a
    torchvision download into `download_dir`; a UserError naming both ways when neither works."""
    info = dataset_info(name)
    data_dir = os.environ.get(DATA_DIR_ENV) if data_dir is None else data_dir
    if data_dir:
        path = Path(data_dir) / f"{name}.npz"
        if path.is_file():
            return Source(name, "offline copy", str(path.resolve()), {path.name: sha256_of(path)})
        offline = f"{DATA_DIR_ENV}={data_dir} holds no {name}.npz"
    else:
        offline = f"{DATA_DIR_ENV} is not set"
    root = Path(download_dir) if download_dir else default_download_dir()
    try:
        # An unusable folder fails here, before torchvision (slow to import) is even loaded.
        root.mkdir(parents=True, exist_ok=True)
        _download(name, root)
        files = _torchvision_files(name, root)
        return Source(name, "torchvision", str(root.resolve()), {str(f.relative_to(root)): sha256_of(f) for f in files})
    except Exception as e:  # no network, a full disk, a broken mirror: all end the same way for the user
        raise UserError(
            f"cannot get {info.title}: torchvision could not download it into {root} ({_one_line(e)}) and "
            f"{offline}; either allow the download or set {DATA_DIR_ENV} to a folder holding {name}.npz "
            f"(arrays x_train, y_train, x_test, y_test)") from None


# --- reading and checking ---------------------------------------------------------------------------

def _to_nchw(x: np.ndarray, info: DatasetInfo, where: str) -> np.ndarray:
    c, h, w = info.shape
    if x.ndim == 3 and c == 1 and x.shape[1:] == (h, w):
        return x[:, None]
    if x.ndim == 4 and x.shape[1:] == (h, w, c):
        return x.transpose(0, 3, 1, 2)
    if x.ndim == 4 and x.shape[1:] == (c, h, w):
        return x
    layouts = f"(N, {h}, {w}), " if c == 1 else ""
    raise UserError(f"{where}: images have shape {x.shape}; expected {layouts}(N, {h}, {w}, {c}) or (N, {c}, {h}, {w})")


def _checked(arrays: dict[str, np.ndarray], info: DatasetInfo, where: str) -> dict[str, np.ndarray]:
    out = {}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], np.asarray(arrays[f"y_{split}"])
        if x.dtype != np.uint8:
            raise UserError(f"{where}: x_{split} has dtype {x.dtype}; expected uint8 pixels in [0, 255]")
        x = _to_nchw(x, info, f"{where}: x_{split}")
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
            raise UserError(f"{where}: y_{split} has shape {y.shape} and dtype {y.dtype}; expected {len(x)} "
                            "integer labels, one per image of x_" + split)
        if len(y) and (y.min() < 0 or y.max() >= len(info.classes)):
            raise UserError(f"{where}: y_{split} holds labels outside 0..{len(info.classes) - 1}")
        out[f"x_{split}"], out[f"y_{split}"] = np.ascontiguousarray(x), y.astype(np.int64)
    return out


def read_source(source: Source) -> dict[str, np.ndarray]:
    """x_train, y_train, x_test, y_test of `source` (x NCHW uint8, y int64), after checking that the files
    still have the sha256 that `locate_source` recorded (so the record names exactly the bytes used)."""
    info = dataset_info(source.dataset)
    if source.kind == "offline copy":
        path = Path(source.location)
        try:
            blob = path.read_bytes()
        except OSError as e:
            raise UserError(f"{path}: cannot read the offline copy ({e.strerror}); rerun dvc repro") from None
        _same_fingerprint(source, {path.name: sha256_of(blob)})
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as z:
                missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in z.files]
                if missing:
                    raise UserError(f"{path}: missing array(s) {', '.join(missing)}; expected x_train, y_train, "
                                    "x_test, y_test")
                arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
        except UserError:
            raise
        except Exception as e:
            raise UserError(f"{path}: not a readable .npz file ({_one_line(e)})") from None
        return _checked(arrays, info, str(path))
    root = Path(source.location)
    try:
        _same_fingerprint(source, {str(f.relative_to(root)): sha256_of(f) for f in _torchvision_files(source.dataset, root)})
        arrays = _torchvision_arrays(source.dataset, root)
    except (OSError, RuntimeError) as e:
        raise UserError(f"{root}: cannot read torchvision's {info.title} files ({_one_line(e)}); "
                        "rerun dvc repro to download them again") from None
    return _checked(arrays, info, f"torchvision {info.title} in {root}")


def _same_fingerprint(source: Source, now: dict[str, str]) -> None:
    if now != source.sha256:
        raise UserError(f"{source.location}: the {source.dataset} files changed since they were located; "
                        "rerun dvc repro (it locates them again)")


# --- splitting and saving ---------------------------------------------------------------------------

def split_indices(n_train: int, n_test: int, val_size: int, seed: int) -> dict[str, np.ndarray]:
    """Seeded permutations: train/val indices into the official training set (both in shuffled order,
    disjoint, covering it) and an order of the official test set."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_train)
    return {"train": order[val_size:], "val": order[:val_size], "test": rng.permutation(n_test)}


def prepare(source: Source, out_dir: str | Path, *, val_size: int, seed: int,
            val_param: str = "val_size") -> dict:
    """Read `source`, split it and write data/<name>/ (atomically, whole); returns the metrics record."""
    info = dataset_info(source.dataset)
    arrays = read_source(source)
    n_train = len(arrays["x_train"])
    if not 0 < val_size < n_train:
        raise UserError(f"parameter '{val_param}' = {val_size} is not allowed for {source.location}: it has "
                        f"{n_train} training images; expected 1 to {n_train - 1}")
    idx = split_indices(n_train, len(arrays["x_test"]), val_size, seed)
    parts = {"train": ("train", idx["train"]), "val": ("train", idx["val"]), "test": ("test", idx["test"])}
    with atomic_dir(out_dir) as tmp:
        for split, (origin, rows) in parts.items():
            save_npy(tmp / f"x_{split}.npy", arrays[f"x_{origin}"][rows])
            save_npy(tmp / f"y_{split}.npy", arrays[f"y_{origin}"][rows])
            # Indices into the official set each split was taken from: the split itself, reproducible.
            save_npy(tmp / f"{split}_indices.npy", rows.astype(np.int64))
    counts = {split: np.bincount(arrays[f"y_{origin}"][rows], minlength=len(info.classes)).tolist()
              for split, (origin, rows) in parts.items()}
    return {
        "dataset": info.title,
        "source": source.kind,
        "obtained_by": source.obtained_by,
        "sha256": source.sha256,
        "image_shape": list(info.shape),
        "train": len(idx["train"]), "val": len(idx["val"]), "test": len(idx["test"]),
        "split": f"seeded permutation of the official training set (seed {seed}): the first {val_size} "
                 "validation, the rest training; test set in seeded order",
        "split_seed": seed,
        "class_counts": counts,
    }


def load_prepared(name: str, root: str | Path = "data") -> dict[str, np.ndarray]:
    """x_train, y_train, x_val, y_val, x_test, y_test of a prepared dataset (memory-mapped)."""
    info = dataset_info(name)
    folder = Path(root) / name
    out = {}
    for key in ARRAYS:
        path = folder / f"{key}.npy"
        try:
            out[key] = np.load(path, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise UserError(f"{path}: not found; run `dvc repro prepare_dataset@{name}` first") from None
        except (ValueError, OSError) as e:
            raise UserError(f"{path}: not a readable .npy file ({_one_line(e)}); rerun "
                            f"`dvc repro -f prepare_dataset@{name}`") from None
    for split in SPLITS:
        x, y = out[f"x_{split}"], out[f"y_{split}"]
        if x.dtype != np.uint8 or x.shape[1:] != info.shape or y.shape != (len(x),):
            raise UserError(f"{folder}: x_{split}/y_{split} have shapes {x.shape}/{y.shape}; expected "
                            f"(N, {', '.join(map(str, info.shape))}) uint8 and (N,); rerun "
                            f"`dvc repro -f prepare_dataset@{name}`")
    return out

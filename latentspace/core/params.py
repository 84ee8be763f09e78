"""The one place that loads and validates `params.yaml`.

The schema below is plain data: every key a stage may read, with its type and allowed values.
A wrong value, a missing key, or an unknown key (a typo) stops the stage with one line that names
the parameter, its value and what is allowed.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from latentspace.core.errors import UserError

PARAMS_FILE = "params.yaml"


class ParamError(UserError):
    pass


# --- value specifications -------------------------------------------------------------------------

@dataclass(frozen=True)
class Int:
    lo: int | None = None
    hi: int | None = None

    def describe(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"an integer from {self.lo} to {self.hi}"
        if self.lo is not None:
            return f"an integer >= {self.lo}"
        return "an integer"

    def check(self, v: Any) -> bool:
        return (isinstance(v, int) and not isinstance(v, bool)
                and (self.lo is None or v >= self.lo) and (self.hi is None or v <= self.hi))


@dataclass(frozen=True)
class Float:
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False

    def describe(self) -> str:
        lo = "" if self.lo is None else (f"> {self.lo}" if self.lo_open else f">= {self.lo}")
        hi = "" if self.hi is None else f"<= {self.hi}"
        return "a number" + (" " + " and ".join(s for s in (lo, hi) if s) if lo or hi else "")

    def check(self, v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return False
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        return self.hi is None or v <= self.hi


@dataclass(frozen=True)
class Bool:
    def describe(self) -> str:
        return "true or false"

    def check(self, v: Any) -> bool:
        return isinstance(v, bool)


@dataclass(frozen=True)
class Choice:
    options: tuple

    def __init__(self, *options):
        object.__setattr__(self, "options", tuple(options))

    def describe(self) -> str:
        return "one of " + ", ".join(map(str, self.options))

    def check(self, v: Any) -> bool:
        return not isinstance(v, bool) and v in self.options


@dataclass(frozen=True)
class AutoOr:
    """The word `auto`, or a value of `spec`."""
    spec: Any

    def describe(self) -> str:
        return f"auto or {self.spec.describe()}"

    def check(self, v: Any) -> bool:
        return v == "auto" or self.spec.check(v)


@dataclass(frozen=True)
class ListOf:
    item: Any
    min_len: int = 1
    unique: bool = True

    def describe(self) -> str:
        distinct = " distinct" if self.unique else ""
        return f"a list of at least {self.min_len}{distinct} items, each {self.item.describe()}"

    def check(self, v: Any) -> bool:
        return (isinstance(v, list) and len(v) >= self.min_len and all(self.item.check(x) for x in v)
                and (not self.unique or len(set(map(repr, v))) == len(v)))


# --- the schema -------------------------------------------------------------------------------------
# Top level: values several studies share. Each study keeps its settings in its own section.

SCHEMA: dict[str, Any] = {
    "seed": Int(0, 2**31 - 1),
    "device": Choice("auto", "cpu", "cuda"),
    "precision": Choice("auto", "fp32", "bf16", "fp16"),
    # Processes that train a stage's independent runs side by side (auto = one per CPU core; 1 on CUDA).
    "workers": AutoOr(Int(1, 1024)),
    # Colour half-range of the rectangle classes; > 42 clips to [0, 255].
    "delta": Int(0, 127),
    # @@ section: rectangles, eda (Study A data) @@
    "rectangles": {
        "image_size": Int(4, 1024),
        # Study A's four samples (names fixed: stages and other studies read them by name). The count
        # is `images`, not `size`: DVC's run cache drops keys named `size` from a tracked dict's hash.
        "samples": {name: {"images": Int(1, 10_000_000), "contained": Bool()}
                    for name in ("eda_free", "eda_contained", "train", "test")},
    },
    "eda": {
        "examples": Int(1, 64),
    },
    # @@ section: segmentation (Study A nets) @@
    "segmentation": {
        "nets": ListOf(Choice("nn1", "nn2", "nn3")),
        "losses": ListOf(Choice("wce", "dice", "focal")),
        "protocol": Choice("chained", "independent"),
        "chain": ListOf(Choice("wce", "dice", "focal")),  # chained: the losses one model continues through
        "launches": Int(1, 100),             # launches per (net, loss), seeds seed, seed+1, ...
        "monitor": Choice("val_mean_iou", "val_loss"),  # what early stopping and the kept epoch follow
        "patience": Int(1, 1000),            # per phase: epochs without a real improvement
        "min_delta": Float(0, 0.5),          # relative improvement that counts as real
        "train_images": Int(0),              # 0 = every training image not used for validation
        "val_images": Int(1),
        "batch_size": Int(1),
        "eval_batch_size": Int(1),
        "noise": Float(0, 255),
        "nadam_epochs": Int(0),
        "nadam_lr": Float(0, lo_open=True),
        "sgd_epochs": Int(0),
        "sgd_lr": Float(0, lo_open=True),
        "sgd_lr_decay": Float(0),
        "sgd_momentum": Float(0, 1),
        "loss_settings": {
            "wce": {"class_weight": Float(0, lo_open=True)},
            "dice": {"smooth": Float(0)},
            "focal": {"gamma": Float(0), "alpha": Float(0, 1)},
        },
        "examples": Int(1, 64),
        "confusion_pixels": Int(1, 1_000_000),
    },
    # @@ section: latent (Study A analysis) @@
    "latent": {
        "probe_sets": ListOf(Choice("color", "height", "x", "all")),
        "per_class": Int(10, 1_000_000),
        "contained": Bool(),
        "dims": ListOf(Int(1, 100_000)),
        "reducers": ListOf(Choice("pca", "umap")),
        "umap_neighbors": Int(2, 200),
        "umap_epochs": Int(1, 10_000),
        "umap_dims": ListOf(Int(1, 100_000)),
        "probe_alpha": Float(0, lo_open=True),
        "holdout_fraction": Float(0.05, 0.9),
        # Both keep an n x n distance matrix: 10,000 is 0.8 GB, 20,000 is 3.2 GB.
        "metric_sample": Int(10, 10_000),
        "continuity_sample": Int(10, 20_000),
        "knn": Int(1, 1000),
        "batch_size": Int(1, 65_536),
        "launches": Int(1, 100),             # launches with claim metrics (<= segmentation.launches)
        "separability_knn": Int(1, 1000),
        "apart_margin": Float(0, 1),
    },
    # @@ section: datasets, study_c (MNIST, CIFAR-10, Study C) @@
    "datasets": {
        # Seed of the train/validation permutation (its own, so a new `seed` does not reshuffle the data).
        "split_seed": Int(0, 2**31 - 1),
        "mnist": {"val_size": Int(1)},      # validation images taken from the 60,000 training images
        "cifar10": {"val_size": Int(1)},    # ... from the 50,000
    },
    "study_c": {
        "seeds": Int(1, 100),               # repetitions: seeds seed, seed+1, ...
        "ae_lr": Float(0, lo_open=True),
        "lr": Float(0, lo_open=True),       # fine-tuned and scratch alike
        "head_lr": Float(0, lo_open=True),  # the frozen regime's linear head
        "head_batch_size": Int(1),
        "patience": Int(1, 1000),           # early stopping: epochs without a real improvement
        "min_delta": Float(0, 0.5),         # relative improvement of the validation loss that counts as real
        "ae_min_delta": Float(0, 0.5),      # ... for the autoencoders
        "head_patience": Int(1, 1000),      # the frozen regime's head
        "ae_target": Choice("erased", "clean"),  # under erasing, what the autoencoder reconstructs
        "architectures": {arch: {
            "batch_size": Int(1),           # autoencoder, fine-tuned and scratch
            "ae_max_epochs": Int(1),
            "head_max_epochs": Int(1),      # the frozen regime's linear head
            "head_max_epochs_erasing": Int(1),  # ... under erasing (every epoch runs the encoder)
            "classifier_max_epochs": Int(1),  # fine-tuned and scratch alike
        } for arch in ("fc", "conv")},
        "augmentations": {
            "none": {},
            "erasing": {"scale": ListOf(Float(0, 1, lo_open=True), min_len=2, unique=False),
                        "ratio": ListOf(Float(0, lo_open=True), min_len=2, unique=False)},
        },
    },
    # @@ section: study_b (CIFAR-10 autoencoders) @@
    "study_b": {
        "hidden_sizes": ListOf(Int(1, 65536)),
        "repeat_sizes": ListOf(Int(1, 65536), min_len=0),   # sizes trained with the extra seeds too
        "repeat_seeds": ListOf(Int(1, 1000), min_len=0),    # seed offsets beyond 0: seed + k
        "conv1_channels": Int(1, 1024),
        "conv2_channels": Int(1, 1024),
        "ae_train_size": Int(0),          # 0 = the whole training split
        "ae_val_size": Int(0),            # 0 = the whole validation split
        "ae_max_epochs": Int(1),
        "ae_patience": Int(1, 1000),
        "ae_min_delta": Float(0, 0.5),
        "ae_batch_size": Int(1),
        "ae_lr": Float(0, lo_open=True),
        "probe_train_size": Int(0),       # 0 = the whole training split
        "probe_max_epochs": Int(1),
        "probe_patience": Int(1, 1000),
        "probe_min_delta": Float(0, 0.5),
        "probe_batch_size": Int(1),
        "probe_lr": Float(0, lo_open=True),
        "probe_standardize": Bool(),
        "jpeg_check_hidden": Int(1, 65536),  # one of hidden_sizes
        "jpeg_quality": Int(1, 100),
        "grid_per_class": Int(1, 10),
    },
    # @@ section: verdicts (reproduction claims; latentspace/verdicts/evaluate.py) @@
    "verdicts": {
        "confidence": Float(0.5, 0.999),            # of the intervals of directional claims
        "alpha": Float(0, 0.25, lo_open=True),      # level of each one-sided test (TOST, McNemar, Mann-Whitney)
        "min_seeds": Int(2, 1000),                  # fewest seeds a Study B or C claim is judged on
        "min_launches": Int(2, 1000),               # fewest launches a Study A latent claim is judged on
        "min_test_miou": Float(0, 1),               # Study A: latent claims only on nets at least this good
        "clean_pair": Float(0, 1),                  # Study A: every pair at least this separable = clean clusters
        "apart_pair": Float(0, 1),                  # one class apart: both its pairs at least this ...
        "mixed_pair": Float(0, 1),                  # ... while the remaining pair is below this
        "area_balance_ratio": Float(1),             # Study A: largest / smallest weighted area that is balanced
        "accuracy_margin_pp": Float(0, lo_open=True),    # Study C: equivalence margin of accuracies and macro F1
        "difference_margin_pp": Float(0, lo_open=True),  # Study C: margin of the fine-tuned - scratch differences
        "negligible_pp": Float(0),                  # Study C: a paired difference inside this is no effect
        "probe_ceiling": Float(0, 1),               # Study B: "below 50%"
        "probe_margin_pp": Float(0, lo_open=True),  # Study B: equivalence margin of the probe accuracies
        "probe_negligible_pp": Float(0),            # Study B: an accuracy gain inside this is no gain
        "mse_margin_rel": Float(0, 1, lo_open=True),     # Study B: MSE(512) vs MSE(256), fraction of MSE(256)
        "mse_negligible_rel": Float(0, 1),          # Study B: an MSE drop inside this fraction is no drop
        "confusion_top_k": Int(1, 9),               # Study B: "X confused with Y" = Y in X's top-k off-diagonal
    },
    # @@ section: report @@
}


# --- loading ----------------------------------------------------------------------------------------

def _fmt(v: Any) -> str:
    return repr(v) if isinstance(v, str) else yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()


def _validate(data: Any, schema: dict, prefix: str, errors_only_first: bool = True) -> None:
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(data, dict):
        raise ParamError(f"{PARAMS_FILE}: {where} must be a mapping of keys to values, got {_fmt(data)}")
    for key in data:
        if key not in schema:
            close = difflib.get_close_matches(str(key), list(schema), n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            raise ParamError(f"{PARAMS_FILE}: unknown parameter '{prefix}{key}'{hint}; "
                             f"allowed here: {', '.join(schema)}")
    for key, spec in schema.items():
        name = prefix + key
        if key not in data:
            raise ParamError(f"{PARAMS_FILE}: missing parameter '{name}'")
        value = data[key]
        if isinstance(spec, dict):
            _validate(value, spec, name + ".")
        elif not spec.check(value):
            raise ParamError(f"{PARAMS_FILE}: parameter '{name}' = {_fmt(value)} is not allowed; "
                             f"expected {spec.describe()}")


# Rules that tie two parameters together. DVC expands the matrix/foreach lists before any stage runs, and every
# stage validates the whole file, so a bad value anywhere stops the first stage of a run, whichever it is.
def _cross_checks(data: dict) -> None:
    seg, lat, b = data["segmentation"], data["latent"], data["study_b"]
    rules = [
        (set(seg["chain"]) <= set(seg["losses"]), "segmentation.chain", seg["chain"],
         f"losses of segmentation.losses ({', '.join(seg['losses'])})"),
        (lat["launches"] <= seg["launches"], "latent.launches", lat["launches"],
         f"at most segmentation.launches ({seg['launches']})"),
        (set(lat["umap_dims"]) <= set(lat["dims"]), "latent.umap_dims", lat["umap_dims"],
         f"dimensions of latent.dims ({', '.join(map(str, lat['dims']))})"),
        (set(b["repeat_sizes"]) <= set(b["hidden_sizes"]), "study_b.repeat_sizes", b["repeat_sizes"],
         f"sizes of study_b.hidden_sizes ({', '.join(map(str, b['hidden_sizes']))})"),
        (b["jpeg_check_hidden"] in b["hidden_sizes"], "study_b.jpeg_check_hidden", b["jpeg_check_hidden"],
         f"one of study_b.hidden_sizes ({', '.join(map(str, b['hidden_sizes']))})"),
    ]
    for ok, name, value, allowed in rules:
        if not ok:
            raise ParamError(f"{PARAMS_FILE}: parameter '{name}' = {_fmt(value)} is not allowed; expected {allowed}")


def lookup(params: dict, dotted: str, default: Any = None) -> Any:
    """The value of a dotted parameter name ("study_c.architectures.conv.batch_size") in a params mapping, or
    `default` where some part of the name is missing."""
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def load_params(path: str | Path = PARAMS_FILE) -> dict:
    """Load `params.yaml` and validate all of it, with the rules between parameters: one line naming the
    first bad parameter, its value and what is allowed."""
    from latentspace.core.io import read_yaml
    path = Path(path)
    try:
        data = read_yaml(path)
    except UserError as e:
        raise ParamError(str(e)) from None
    if not isinstance(data, dict):
        raise ParamError(f"{path}: expected a mapping of parameters, got {_fmt(data)}")
    _validate(data, SCHEMA, "")
    _cross_checks(data)
    return data

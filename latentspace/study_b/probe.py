"""Study B's linear probe ("detector"): one linear layer with log-softmax, trained with NLL on the codes of a
frozen autoencoder until its validation loss stops improving; its per-class precision and recall, its test
confusion, the pooled run that encodes and probes one trained autoencoder in a worker, and the saved probe.

The codes are computed once per probe and kept on the device. By default they are the raw codes, as the
original fed them; `standardize` optionally scales them by the training codes' mean and standard deviation.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from latentspace.constants import CIFAR10_CLASSES
from latentspace.core.errors import UserError
from latentspace.core.io import atomic_path
from latentspace.study_b.autoencoder import (ConvAutoencoder, cifar_on_device, encode_images, encode_splits,
                                             images_nchw, jpeg_roundtrip, load_autoencoder, run_tag)
from latentspace.training.device import seed_everything
from latentspace.training.engine import FitResult, Phase, fit, predict, to_device
from latentspace.training.metrics import classification_report, confusion_matrix
from latentspace.training.pool import worker_state

JPEG_METHOD = ("the trained autoencoder and probe, tested on the test images after one more JPEG round trip (PIL, "
               "4:2:0 chroma subsampling) at this quality, on an 8x8 grid shifted by 4 pixels (on the same grid a "
               "second round trip is nearly a no-op)")


def build_probe(hidden: int, num_classes: int = 10) -> nn.Module:
    return nn.Sequential(nn.Linear(hidden, num_classes), nn.LogSoftmax(dim=1))


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _argmax(out: torch.Tensor) -> torch.Tensor:
    return out.argmax(1)


def _accuracy(model: nn.Module, codes: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    pred = predict(model, codes, batch_size=batch_size, preprocess=_identity, reduce=_argmax)
    return float((pred == y).float().mean())


@dataclass
class ProbeResult:
    fit: FitResult
    train_accuracy: float
    val_accuracy: float
    test_accuracy: float
    confusion: np.ndarray                        # test set, rows true class, columns predicted
    test_predictions: np.ndarray                 # (N_test,) predicted class per test image
    report: dict = field(default_factory=dict)   # latentspace.training.metrics.classification_report of `confusion`
    probe: nn.Module | None = None               # the trained probe (kept epoch), applied to `scale`d codes
    scale: tuple[torch.Tensor, torch.Tensor] | None = None   # (mean, std) of the training codes if standardised

    def predict(self, codes: torch.Tensor, batch_size: int = 8192) -> torch.Tensor:
        return classify_codes(self.probe, self.scale, codes, batch_size)


def classify_codes(probe: nn.Module, scale: tuple | list | None, codes: torch.Tensor,
                   batch_size: int = 8192) -> torch.Tensor:
    """Predicted classes of raw codes: standardised first by `scale` (mean, std), as in training, when the probe
    was."""
    if scale is not None:
        codes = (codes - scale[0]) / scale[1]
    return predict(probe, codes, batch_size=batch_size, preprocess=_identity, reduce=_argmax)


def train_probe(codes: dict[str, torch.Tensor], labels: dict[str, torch.Tensor], *, max_epochs: int,
                batch_size: int, lr: float, patience: int, min_delta: float, standardize: bool, seed: int = 0,
                class_names: tuple[str, ...] = CIFAR10_CLASSES, live=None, eval_batch_size: int = 8192,
                desc: str = "probe") -> ProbeResult:
    """Train a linear probe on frozen codes (`encode_splits`) with labels y per split ("train", "val", "test").

    The probe sees only the codes, so the encoder cannot change. The validation NLL picks the kept epoch and
    stops training (no improvement by more than the relative `min_delta` for `patience` epochs, at most
    `max_epochs`); train and test accuracy are logged every epoch (cheap on codes: one linear layer).
    """
    scale = None
    if standardize:
        scale = (codes["train"].mean(0), codes["train"].std(0).clamp_min(1e-6))   # a dead code unit has std 0
        codes = {s: (c - scale[0]) / scale[1] for s, c in codes.items()}
    y = {s: labels[s].long() for s in ("train", "val", "test")}
    probe = build_probe(codes["train"].shape[1], len(class_names)).to(codes["train"].device)

    def accuracies(m: nn.Module) -> dict:
        return {"train_accuracy": _accuracy(m, codes["train"], y["train"], eval_batch_size),
                "test_accuracy": _accuracy(m, codes["test"], y["test"], eval_batch_size)}

    # The probe is tiny: full precision, whatever the autoencoder used.
    result = fit(probe, codes["train"], y["train"], loss_fn=F.nll_loss,
                 phases=[Phase("adam", lr=lr, epochs=max_epochs)], patience=patience, min_delta=min_delta,
                 batch_size=batch_size, x_val=codes["val"], y_val=y["val"], preprocess=_identity, seed=seed,
                 epoch_metrics=accuracies, live=live, desc=desc, eval_batch_size=eval_batch_size, val_accuracy=True)
    pred = predict(probe, codes["test"], batch_size=eval_batch_size, preprocess=_identity, reduce=_argmax)
    cm = confusion_matrix(y["test"], pred, len(class_names))
    report = classification_report(cm, list(class_names))
    kept = result.history[result.best_epoch]
    return ProbeResult(fit=result, train_accuracy=kept["train_accuracy"], val_accuracy=kept["val_accuracy"],
                       test_accuracy=report["accuracy"], confusion=cm, test_predictions=pred.cpu().numpy(),
                       report=report, probe=probe, scale=scale)


def jpeg_roundtrip_accuracy(autoencoder: ConvAutoencoder, result: ProbeResult, x_test: np.ndarray,
                            y_test: torch.Tensor, quality: int, *, precision: str = "fp32") -> float:
    """Test accuracy of a trained probe when the test images go through one more JPEG round trip at `quality`
    (the autoencoder and the probe stay as trained on the data as they are)."""
    images = to_device(jpeg_roundtrip(images_nchw(np.asarray(x_test)), quality), y_test.device)
    pred = result.predict(encode_images(autoencoder, images, precision=precision))
    return float((pred == y_test).double().mean())


def probe_checkpoint(result: ProbeResult) -> dict:
    """What a saved probe holds: its kept weights and, if the codes were standardised, the training codes'
    (mean, std), as CPU tensors (picklable out of a worker)."""
    return {"state_dict": {k: v.detach().cpu() for k, v in result.probe.state_dict().items()},
            "scale": None if result.scale is None else [t.detach().cpu() for t in result.scale]}


def save_probe(path, checkpoint: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def load_probe(path, device: torch.device | str = "cpu"):
    """A saved probe as a function from raw codes (N, hidden) to predicted classes (N,), as in training."""
    saved = torch.load(path, map_location=device, weights_only=True)
    weight = saved["state_dict"]["0.weight"]
    probe = build_probe(weight.shape[1], weight.shape[0]).to(device)
    probe.load_state_dict(saved["state_dict"])
    return functools.partial(classify_codes, probe, saved["scale"])


def confusion_rows(y_true: np.ndarray, y_pred: np.ndarray,
                   class_names: tuple[str, ...] = CIFAR10_CLASSES) -> list[dict]:
    """One {actual, predicted} row per test image: the input `dvc plots` draws with its confusion template."""
    names = np.asarray(class_names)
    return [{"actual": a, "predicted": p} for a, p in zip(names[np.asarray(y_true)], names[np.asarray(y_pred)])]


def per_class(report: dict) -> dict:
    """{class: {precision, recall, f1}} on the test set, in class order."""
    return {name: {"precision": v["precision"], "recall": v["recall"], "f1": v["f1"]}
            for name, v in report["per_class"].items()}


def probe_run(hidden: int, repeat: int, path: str, p: dict, seed: int, device: str, precision: str) -> dict:
    """One pooled run: encode the worker's CIFAR-10 (`autoencoder.load_cifar10`) with the saved autoencoder at
    `path` and train a probe on the codes, with the `study_b` parameters `p`; the first seed of
    `jpeg_check_hidden` also measures one more JPEG round trip of the test images. Returns the metrics
    record, the test labels and predictions and the per-epoch history; writes nothing."""
    seed = seed + repeat
    seed_everything(seed)
    autoencoder = load_autoencoder(path, device)
    if autoencoder.hidden != hidden:
        raise UserError(f"{path} holds an autoencoder with hidden = {autoencoder.hidden}, not {hidden}")
    data = cifar_on_device(worker_state(), device, train_size=p["probe_train_size"], seed=seed)
    codes = encode_splits(autoencoder, data, precision=precision)
    labels = {s: data[f"y_{s}"] for s in ("train", "val", "test")}
    tag = run_tag(hidden, repeat)
    result = train_probe(codes, labels, max_epochs=p["probe_max_epochs"], patience=p["probe_patience"],
                         min_delta=p["probe_min_delta"], batch_size=p["probe_batch_size"], lr=p["probe_lr"],
                         standardize=p["probe_standardize"], seed=seed, desc=f"probe {tag}")
    jpeg = None
    if hidden == p["jpeg_check_hidden"] and repeat == 0:
        quality = p["jpeg_quality"]
        roundtrip = jpeg_roundtrip_accuracy(autoencoder, result, data["x_test"].cpu().numpy(), data["y_test"],
                                            quality, precision=precision)
        jpeg = {"quality": quality, "test_accuracy_copy": result.test_accuracy,
                "test_accuracy_roundtrip": roundtrip, "drop": result.test_accuracy - roundtrip,
                "method": JPEG_METHOD}
    f = result.fit
    record = {
        "hidden": hidden, "seed": seed,
        "train_accuracy": result.train_accuracy, "val_accuracy": result.val_accuracy,
        "test_accuracy": result.test_accuracy, "test_macro_f1": result.report["macro_f1"],
        "test_macro_precision": result.report["macro_precision"],
        "test_macro_recall": result.report["macro_recall"],
        "standardized": p["probe_standardize"],
        "epoch_kept": f.epoch_kept, "epochs_run": f.epochs_run, "max_epochs": f.max_epochs, "hit_cap": f.hit_cap,
        "stopping": f.stopping(),
        "train_images": len(data["x_train"]),
        "per_class": per_class(result.report),
        "confusion": result.confusion,
        "jpeg_roundtrip": jpeg,
    }
    return {"tag": tag, "record": record, "history": f.history, "checkpoint": probe_checkpoint(result),
            "y_test": data["y_test"].cpu().numpy(), "test_predictions": result.test_predictions}

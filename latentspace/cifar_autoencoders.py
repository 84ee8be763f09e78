"""Study B: convolutional autoencoders on CIFAR-10, one per latent size, and linear probes on their codes.

The autoencoder follows SPEC B: Conv2d(3, c1, 3, pad 1) - ReLU - MaxPool 2 - ReLU - Conv2d(c1, c2, 3, pad 1) -
Flatten - Linear to `hidden`. The decoder mirrors it layer by layer: Linear back to c2 x 16 x 16, reshape,
ConvTranspose(c2, c1, 3, pad 1) - ReLU - ConvTranspose(c1, c1, 2, stride 2) (the mirror of the max-pool) - ReLU -
ConvTranspose(c1, 3, 3, pad 1) - Sigmoid. The sigmoid keeps reconstructions in [0, 1], the range of the
targets (pixels / 255), so the MSE is measured on the same scale as the images.

The probe ("detector") is one linear layer with log-softmax, trained with NLL on codes of the frozen encoder.
The codes are computed once per probe and kept on the device. By default they are the raw codes, as the
original fed them; `standardize` optionally scales them by the training codes' mean and standard deviation.

Both the autoencoder and the probe train with Adam (lr 1e-3) until the validation loss has not improved for
`patience` epochs, at most a cap of epochs, and keep their best epoch.

The offline CIFAR-10 copy is JPEG-decoded (quality about 75), not the original pixels. `jpeg_roundtrip` gives
the same images through one more JPEG round trip: the probe's accuracy drop from the copy to its round trip
indicates what the first round trip cost.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from latentspace.core.errors import UserError
from latentspace.core.io import atomic_path
from latentspace.datasets import dataset_info
from latentspace.training.engine import (FitResult, Phase, evaluate_loss, fit, predict, to_device,
                                         to_unit_float_channels_last)
from latentspace.training.figures import image_grid
from latentspace.training.metrics import classification_report, confusion_matrix

CIFAR10_CLASSES = dataset_info("cifar10").classes


class ConvAutoencoder(nn.Module):
    """SPEC B autoencoder for 3 x S x S images (S even); `encode(x)` gives the `hidden`-dimensional code."""

    def __init__(self, hidden: int, channels: tuple[int, int] = (16, 32), image_size: int = 32):
        super().__init__()
        c1, c2 = channels
        side = image_size // 2
        self.hidden, self.channels, self.image_size = hidden, (c1, c2), image_size
        # The second ReLU (after the max-pool) is a no-op on non-negative input; kept because SPEC B lists it.
        self.encoder = nn.Sequential(
            nn.Conv2d(3, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(c1, c2, 3, padding=1), nn.Flatten(), nn.Linear(c2 * side * side, hidden))
        self.decoder = nn.Sequential(
            nn.Linear(hidden, c2 * side * side), nn.Unflatten(1, (c2, side, side)),
            nn.ConvTranspose2d(c2, c1, 3, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(c1, c1, 2, stride=2), nn.ReLU(),
            nn.ConvTranspose2d(c1, 3, 3, padding=1), nn.Sigmoid())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def build_autoencoder(hidden: int, channels: tuple[int, int] = (16, 32),
                      device: torch.device | str = "cpu") -> ConvAutoencoder:
    """A fresh autoencoder on `device`. Its conv weights are channels-last: on the CPU this runs the convs
    about 1.5x faster (measured), on CUDA it is the layout tensor cores want."""
    return ConvAutoencoder(hidden, channels).to(device, memory_format=torch.channels_last)


def save_autoencoder(path: str | Path, model: ConvAutoencoder) -> None:
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"hidden": model.hidden, "channels": list(model.channels), "image_size": model.image_size,
                    "state_dict": state}, tmp)


def load_autoencoder(path: str | Path, device: torch.device | str = "cpu") -> ConvAutoencoder:
    """The saved autoencoder, on `device`, in eval mode."""
    try:
        saved = torch.load(path, map_location=device, weights_only=True)
        model = ConvAutoencoder(saved["hidden"], tuple(saved["channels"]), saved["image_size"])
        model.load_state_dict(saved["state_dict"])
        model = model.to(device, memory_format=torch.channels_last)
    except FileNotFoundError:
        raise UserError(f"{path}: model file not found; run the autoencoder stage first") from None
    except Exception as e:  # a truncated or foreign file
        raise UserError(f"{path}: not a Study B autoencoder checkpoint ({type(e).__name__}: {e})") from None
    return model.eval()


def subsample_indices(n: int, size: int, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """`size` indices drawn without replacement from range(n), reproducibly; size 0 (or >= n) means all."""
    if size <= 0 or size >= n:
        return torch.arange(n, device=device)
    gen = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=gen)[:size].sort().values.to(device)


def images_nchw(x: np.ndarray) -> np.ndarray:
    """Accept (N, 3, H, W) or (N, H, W, 3) uint8 images; return (N, 3, H, W)."""
    if x.ndim == 4 and x.shape[1] != 3 and x.shape[-1] == 3:
        x = x.transpose(0, 3, 1, 2)
    if x.ndim != 4 or x.shape[1] != 3 or x.dtype != np.uint8:
        raise UserError(f"CIFAR-10 images must be uint8 (N, 3, H, W); got {x.dtype} {x.shape}")
    return x


def run_tag(hidden: int, repeat: int = 0) -> str:
    """File tag of one autoencoder run: "256" for the first seed of a size, "256-s1" for seed offset 1."""
    return str(hidden) if repeat == 0 else f"{hidden}-s{repeat}"


def cifar_on_device(arrays: dict[str, np.ndarray], device: torch.device, *, train_size: int = 0,
                    val_size: int = 0, seed: int = 0) -> dict[str, torch.Tensor]:
    """The prepared CIFAR-10 splits (x uint8 N x 3 x 32 x 32, y int64) as tensors on the device, with the
    training split cut to a reproducible random subset of `train_size` images and the validation split to
    `val_size` (0: all of it)."""
    keep = {"train": subsample_indices(len(arrays["y_train"]), train_size, seed).numpy(),
            "val": subsample_indices(len(arrays["y_val"]), val_size, seed + 1).numpy()}
    out = {}
    for split in ("train", "val", "test"):
        x, y = images_nchw(np.asarray(arrays[f"x_{split}"])), np.asarray(arrays[f"y_{split}"])
        # Indexing copies the (possibly read-only, memory-mapped) arrays: torch wants writable memory.
        if split in keep:
            x, y = x[keep[split]], y[keep[split]]
        else:
            x, y = np.array(x), np.array(y)
        out[f"x_{split}"] = to_device(x, device)
        out[f"y_{split}"] = to_device(y.astype(np.int64), device)
    return out


# --- autoencoder training -----------------------------------------------------------------------------

def reconstruction_mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(output, target)


@dataclass
class AutoencoderResult:
    fit: FitResult
    test_mse: float
    val_mse: float


def train_autoencoder(model: ConvAutoencoder, x_train: torch.Tensor, x_val: torch.Tensor, x_test: torch.Tensor, *,
                      max_epochs: int, batch_size: int, lr: float = 1e-3, patience: int = 2,
                      precision: str = "fp32", seed: int = 0, live=None,
                      eval_batch_size: int = 256) -> AutoencoderResult:
    """Train with MSE and Adam on uint8 image tensors already on the device until the validation MSE has not
    improved for `patience` epochs (at most `max_epochs`), keeping the best epoch; the test MSE is computed
    once, for the kept weights."""
    result = fit(model, x_train, None, loss_fn=reconstruction_mse, phases=[Phase("adam", lr=lr, epochs=max_epochs)],
                 patience=patience, batch_size=batch_size, x_val=x_val, precision=precision, seed=seed,
                 preprocess=to_unit_float_channels_last, live=live, desc=f"autoencoder h={model.hidden}",
                 eval_batch_size=eval_batch_size)
    test_mse = evaluate_loss(model, x_test, None, reconstruction_mse, batch_size=eval_batch_size,
                             preprocess=to_unit_float_channels_last, precision=precision)
    return AutoencoderResult(fit=result, test_mse=test_mse, val_mse=result.best_val_loss)


def jpeg_roundtrip(x: np.ndarray, quality: int = 75, grid_shift: int = 4) -> np.ndarray:
    """uint8 (N, 3, H, W) images after one JPEG encode/decode at `quality` (PIL, 4:2:0 chroma subsampling).

    A JPEG-decoded image re-encoded at the same quality on the same 8x8 grid barely changes (measured on the
    CIFAR-10 copy: 0.13 grey levels mean absolute change at quality 75), so that round trip says nothing about
    what the first one cost. Shifting the grid by `grid_shift` pixels (edge-padded, cropped back) makes the
    encoder compress the image afresh: 4.6 grey levels at quality 75, the size of a first compression."""
    import io

    from PIL import Image
    s = grid_shift % 8
    out = np.empty_like(x)
    for i, image in enumerate(np.asarray(x).transpose(0, 2, 3, 1)):
        if s:
            image = np.pad(image, ((s, 8 - s), (s, 8 - s), (0, 0)), mode="edge")
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
        decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
        h, w = x.shape[2], x.shape[3]
        out[i] = decoded[s:s + h, s:s + w].transpose(2, 0, 1)
    return out


# --- linear probe ---------------------------------------------------------------------------------------

def encode_images(model: ConvAutoencoder, x: torch.Tensor, *, batch_size: int = 256,
                  precision: str = "fp32") -> torch.Tensor:
    """Codes (N, hidden) float32 of uint8 images, computed without gradients in eval mode (channels-last
    batches of 256: about 3x faster on the CPU than NCHW batches of 1,000, measured)."""
    return predict(model.encoder, x, batch_size=batch_size, precision=precision,
                   preprocess=to_unit_float_channels_last)


def build_probe(hidden: int, num_classes: int = 10) -> nn.Module:
    return nn.Sequential(nn.Linear(hidden, num_classes), nn.LogSoftmax(dim=1))


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _accuracy(model: nn.Module, codes: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    pred = predict(model, codes, batch_size=batch_size, preprocess=_identity, reduce=lambda o: o.argmax(1))
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
        """Predicted classes of raw codes (standardised first, as in training, when the probe was)."""
        if self.scale is not None:
            codes = (codes - self.scale[0]) / self.scale[1]
        return predict(self.probe, codes, batch_size=batch_size, preprocess=_identity, reduce=lambda o: o.argmax(1))


def encode_splits(autoencoder: ConvAutoencoder, data: dict[str, torch.Tensor], *,
                  precision: str = "fp32") -> dict[str, torch.Tensor]:
    """The frozen encoder's codes of every split of `data` (uint8 images x_train, x_val, x_test), computed once."""
    for p in autoencoder.parameters():
        p.requires_grad_(False)
    return {s: encode_images(autoencoder, data[f"x_{s}"], precision=precision) for s in ("train", "val", "test")}


def train_probe(codes: dict[str, torch.Tensor], labels: dict[str, torch.Tensor], *, max_epochs: int,
                batch_size: int, lr: float = 1e-3, patience: int = 3, standardize: bool = False, seed: int = 0,
                class_names: tuple[str, ...] = CIFAR10_CLASSES, live=None, eval_batch_size: int = 8192,
                desc: str = "probe") -> ProbeResult:
    """Train a linear probe on frozen codes (`encode_splits`) with labels y per split ("train", "val", "test").

    The probe sees only the codes, so the encoder cannot change. The validation NLL picks the kept epoch and
    stops training (`patience`, at most `max_epochs`); train and test accuracy are logged every epoch (cheap
    on codes: one linear layer).
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
                 phases=[Phase("adam", lr=lr, epochs=max_epochs)], patience=patience, batch_size=batch_size,
                 x_val=codes["val"], y_val=y["val"], preprocess=_identity, seed=seed, epoch_metrics=accuracies,
                 live=live, desc=desc, eval_batch_size=eval_batch_size, val_accuracy=True)
    pred = predict(probe, codes["test"], batch_size=eval_batch_size, preprocess=_identity,
                   reduce=lambda o: o.argmax(1))
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
    device = y_test.device
    images = to_device(jpeg_roundtrip(images_nchw(np.asarray(x_test)), quality), device)
    pred = result.predict(encode_images(autoencoder, images, precision=precision))
    return float((pred == y_test).double().mean())


def confusion_rows(y_true: np.ndarray, y_pred: np.ndarray,
                   class_names: tuple[str, ...] = CIFAR10_CLASSES) -> list[dict]:
    """One {actual, predicted} row per test image: the input `dvc plots` draws with its confusion template."""
    names = np.asarray(class_names)
    return [{"actual": a, "predicted": p} for a, p in zip(names[np.asarray(y_true)], names[np.asarray(y_pred)])]


# --- figures --------------------------------------------------------------------------------------------

def example_indices(y: np.ndarray, per_class: int, num_classes: int = 10) -> np.ndarray:
    """The first `per_class` images of every class (in class order): a fixed, balanced set to show."""
    y = np.asarray(y)
    return np.concatenate([np.flatnonzero(y == c)[:per_class] for c in range(num_classes)])


def reconstruction_figure(originals: np.ndarray, reconstructions: np.ndarray, titles: list[str], hidden: int):
    """Originals (top row) over their reconstructions (bottom row); both (N, 3, H, W), uint8 or [0, 1] float."""
    def pictures(images: np.ndarray) -> np.ndarray:
        images = np.asarray(images).transpose(0, 2, 3, 1)
        return images if images.dtype == np.uint8 else np.clip(images, 0, 1)

    return image_grid([("original", pictures(originals)), ("reconstruction", pictures(reconstructions))],
                      f"CIFAR-10 test images, autoencoder with hidden = {hidden}", cell=(1.1, 1.3),
                      column_titles=titles)


def confusion_figure(cm: np.ndarray, class_names: tuple[str, ...], title: str):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5.2))
    im = ax.imshow(cm, cmap="Blues")
    k = len(class_names)
    ax.set_xticks(range(k), class_names, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(k), class_names, fontsize=7)
    ax.set_xlabel("predicted"), ax.set_ylabel("actual")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=6,
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(title, fontsize=9)
    return fig


def summary_figure(rows: list[dict]):
    """Test MSE and probe test accuracy against the latent size (log-2 axis)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hidden = [r["hidden"] for r in rows]
    fig, (ax_mse, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax_mse.plot(hidden, [r["test_mse"] for r in rows], "o-")
    ax_mse.set_ylabel("test reconstruction MSE")
    ax_acc.plot(hidden, [r["probe_test_accuracy"] for r in rows], "o-", label="test")
    ax_acc.plot(hidden, [r["probe_train_accuracy"] for r in rows], "s--", label="train")
    ax_acc.set_ylabel("linear probe accuracy")
    ax_acc.legend(fontsize=8)
    for ax in (ax_mse, ax_acc):
        ax.set_xscale("log", base=2)
        ax.set_xticks(hidden, [str(h) for h in hidden])
        ax.set_xlabel("hidden size")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig

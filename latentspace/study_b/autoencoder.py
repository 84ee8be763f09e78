"""Study B's convolutional autoencoders on CIFAR-10: the model, its training to a plateau of the validation MSE,
its codes, and the pooled run that trains one (hidden size, seed) autoencoder in a worker.

The autoencoder follows the original: Conv2d(3, c1, 3, pad 1) - ReLU - MaxPool 2 - ReLU - Conv2d(c1, c2, 3, pad 1) -
Flatten - Linear to `hidden`. The decoder mirrors it layer by layer: Linear back to c2 x 16 x 16, reshape,
ConvTranspose(c2, c1, 3, pad 1) - ReLU - ConvTranspose(c1, c1, 2, stride 2) (the mirror of the max-pool) - ReLU -
ConvTranspose(c1, 3, 3, pad 1) - Sigmoid. The sigmoid keeps reconstructions in [0, 1], the range of the
targets (pixels / 255), so the MSE is measured on the same scale as the images.

The offline CIFAR-10 copy is JPEG-decoded (quality about 75), not the original pixels. `jpeg_roundtrip` gives
the same images through one more JPEG round trip: the probe's accuracy drop from the copy to its round trip
indicates what the first round trip cost.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from latentspace.core.errors import UserError
from latentspace.core.io import atomic_path
from latentspace.datasets import load_prepared
from latentspace.paths import STUDY_B_MODELS
from latentspace.training.device import seed_everything
from latentspace.training.engine import (FitResult, Phase, evaluate_loss, fit, predict, to_device,
                                         to_unit_float_channels_last)
from latentspace.training.pool import worker_state


class ConvAutoencoder(nn.Module):
    """Study B's autoencoder for 3 x S x S images (S even); `encode(x)` gives the `hidden`-dimensional code."""

    def __init__(self, hidden: int, channels: tuple[int, int], image_size: int = 32, original_order: bool = False):
        super().__init__()
        c1, c2 = channels
        side = image_size // 2
        self.hidden, self.channels, self.image_size = hidden, (c1, c2), image_size
        # The original's Conv - ReLU - MaxPool - ReLU (original_order) computes what Conv - MaxPool - ReLU - ReLU
        # does: ReLU is monotone, so it commutes with the max-pool exactly (values and gradients, bit for bit:
        # tests/study_b). The order is Study C's, where it trains faster; here the linear layers dominate and
        # the two orders train equally fast (benchmarks/net_speed.py). The second ReLU is a no-op on
        # non-negative input, kept as the original lists it. The parameters' names are the same in both orders.
        pooled = ([nn.ReLU(), nn.MaxPool2d(2), nn.ReLU()] if original_order
                  else [nn.MaxPool2d(2), nn.ReLU(inplace=True), nn.ReLU()])
        self.encoder = nn.Sequential(
            nn.Conv2d(3, c1, 3, padding=1), *pooled,
            nn.Conv2d(c1, c2, 3, padding=1), nn.Flatten(), nn.Linear(c2 * side * side, hidden))
        self.decoder = nn.Sequential(
            nn.Linear(hidden, c2 * side * side), nn.Unflatten(1, (c2, side, side)),
            nn.ConvTranspose2d(c2, c1, 3, padding=1), nn.ReLU(inplace=not original_order),
            nn.ConvTranspose2d(c1, c1, 2, stride=2), nn.ReLU(inplace=not original_order),
            nn.ConvTranspose2d(c1, 3, 3, padding=1), nn.Sigmoid())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def build_autoencoder(hidden: int, channels: tuple[int, int], device: torch.device | str = "cpu") -> ConvAutoencoder:
    """A fresh autoencoder on `device`. Its conv weights are channels-last: on the CPU this runs the convs
    about 1.5x faster (measured), on CUDA it is the layout tensor cores want."""
    return ConvAutoencoder(hidden, channels).to(device, memory_format=torch.channels_last)


def checkpoint(model: ConvAutoencoder) -> dict:
    """What a saved autoencoder holds: its shape and its weights as CPU tensors (picklable out of a worker)."""
    return {"hidden": model.hidden, "channels": list(model.channels), "image_size": model.image_size,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}


def save_autoencoder(path: str | Path, saved: ConvAutoencoder | dict) -> None:
    """Write a model or its `checkpoint` atomically."""
    saved = checkpoint(saved) if isinstance(saved, nn.Module) else saved
    with atomic_path(path) as tmp:
        torch.save(saved, tmp)


def load_autoencoder(path: str | Path, device: torch.device | str = "cpu") -> ConvAutoencoder:
    """The saved autoencoder, on `device`, in eval mode."""
    try:
        saved = torch.load(path, map_location=device, weights_only=True)
        model = ConvAutoencoder(saved["hidden"], tuple(saved["channels"]), saved["image_size"])
        model.load_state_dict(saved["state_dict"])
        model = model.to(device, memory_format=torch.channels_last)
    except FileNotFoundError:
        raise UserError(f"{path}: model file not found; run `dvc repro study_b_autoencoders` first") from None
    except Exception as e:  # a truncated or foreign file
        raise UserError(f"{path}: not a Study B autoencoder checkpoint ({type(e).__name__}: {e})") from None
    return model.eval()


# --- which runs, on which data ---------------------------------------------------------------------------

def runs_of(p: dict) -> list[tuple[int, int]]:
    """(hidden size, seed offset) of every autoencoder the `study_b` parameters ask for: offset 0 for every
    size, plus each of `repeat_seeds` for the sizes in `repeat_sizes`; in size order."""
    return [(h, k) for h in sorted(p["hidden_sizes"])
            for k in [0] + (sorted(p["repeat_seeds"]) if h in p["repeat_sizes"] else [])]


def run_tag(hidden: int, repeat: int = 0) -> str:
    """File tag of one autoencoder run: "256" for the first seed of a size, "256-s1" for seed offset 1."""
    return str(hidden) if repeat == 0 else f"{hidden}-s{repeat}"


def model_path(hidden: int, repeat: int = 0) -> str:
    return f"{STUDY_B_MODELS}/ae-{run_tag(hidden, repeat)}.pt"


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


def cifar_on_device(arrays: dict[str, np.ndarray], device: torch.device | str, *, train_size: int = 0,
                    val_size: int = 0, seed: int = 0) -> dict[str, torch.Tensor]:
    """The prepared CIFAR-10 splits (x uint8 N x 3 x 32 x 32, y int64) as tensors on the device, with the
    training split cut to a reproducible random subset of `train_size` images and the validation split to
    `val_size` (0: all of it)."""
    device = torch.device(device)
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


def load_cifar10(root: str = "data") -> dict[str, np.ndarray]:
    """Pool initializer: the prepared CIFAR-10 arrays, memory-mapped once per worker (the page cache is shared
    between workers, and every run cuts its own subset from them)."""
    return load_prepared("cifar10", root)


# --- training -------------------------------------------------------------------------------------------

def reconstruction_mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(output, target)


@dataclass
class AutoencoderResult:
    fit: FitResult
    test_mse: float
    val_mse: float


def train_autoencoder(model: ConvAutoencoder, x_train: torch.Tensor, x_val: torch.Tensor, x_test: torch.Tensor, *,
                      max_epochs: int, batch_size: int, lr: float, patience: int, min_delta: float,
                      precision: str = "fp32", seed: int = 0, live=None,
                      eval_batch_size: int = 256) -> AutoencoderResult:
    """Train with MSE and Adam on uint8 image tensors already on the device until the validation MSE has not
    improved by more than the relative `min_delta` for `patience` epochs (at most `max_epochs`), keeping the
    best epoch; the test MSE is computed once, for the kept weights."""
    result = fit(model, x_train, None, loss_fn=reconstruction_mse, phases=[Phase("adam", lr=lr, epochs=max_epochs)],
                 patience=patience, min_delta=min_delta, batch_size=batch_size, x_val=x_val, precision=precision,
                 seed=seed, preprocess=to_unit_float_channels_last, live=live,
                 desc=f"autoencoder h={model.hidden}", eval_batch_size=eval_batch_size)
    test_mse = evaluate_loss(model, x_test, None, reconstruction_mse, batch_size=eval_batch_size,
                             preprocess=to_unit_float_channels_last, precision=precision)
    return AutoencoderResult(fit=result, test_mse=test_mse, val_mse=result.best_val_loss)


def train_autoencoder_run(hidden: int, repeat: int, p: dict, seed: int, device: str, precision: str) -> dict:
    """One pooled run: train the (hidden, seed + repeat) autoencoder on the worker's CIFAR-10 (`load_cifar10`)
    with the `study_b` parameters `p`. Returns its metrics record, its `checkpoint` and its per-epoch history;
    writes nothing."""
    seed = seed + repeat
    seed_everything(seed)
    data = cifar_on_device(worker_state(), device, train_size=p["ae_train_size"], val_size=p["ae_val_size"],
                           seed=seed)
    model = build_autoencoder(hidden, (p["conv1_channels"], p["conv2_channels"]), device)
    result = train_autoencoder(model, data["x_train"], data["x_val"], data["x_test"], max_epochs=p["ae_max_epochs"],
                               patience=p["ae_patience"], min_delta=p["ae_min_delta"], batch_size=p["ae_batch_size"],
                               lr=p["ae_lr"], precision=precision, seed=seed)
    f = result.fit
    record = {
        "hidden": hidden, "seed": seed, "test_mse": result.test_mse, "val_mse": result.val_mse,
        "final_train_mse": f.history[-1]["train_loss"],
        # epoch_kept ... hit_cap stay beside `stopping` at the top level: the report reads them there.
        "epoch_kept": f.epoch_kept, "epochs_run": f.epochs_run, "max_epochs": f.max_epochs, "hit_cap": f.hit_cap,
        "stopping": f.stopping(),
        "min_delta": p["ae_min_delta"], "patience": p["ae_patience"],
        "val_loss_curve": [h["val_loss"] for h in f.history],
        "train_images": len(data["x_train"]), "val_images": len(data["x_val"]),
        "parameters": sum(t.numel() for t in model.parameters()),
    }
    return {"tag": run_tag(hidden, repeat), "record": record, "checkpoint": checkpoint(model),
            "history": f.history, "train_images_per_second": f.train_images_per_second}


def log_history(live, history: list[dict], prefix: str = "") -> None:
    """Replay a run's per-epoch records into a dvclive logger, as `fit(live=...)` would have logged them."""
    for record in history:
        for k, v in record.items():
            if k != "epoch":
                live.log_metric(f"{prefix}{k}", v)
        live.next_step()


# --- codes and JPEG ---------------------------------------------------------------------------------------

def encode_images(model: ConvAutoencoder, x: torch.Tensor, *, batch_size: int = 256,
                  precision: str = "fp32") -> torch.Tensor:
    """Codes (N, hidden) float32 of uint8 images, computed without gradients in eval mode (channels-last
    batches of 256: about 3x faster on the CPU than NCHW batches of 1,000, measured)."""
    return predict(model.encoder, x, batch_size=batch_size, precision=precision,
                   preprocess=to_unit_float_channels_last)


def encode_splits(autoencoder: ConvAutoencoder, data: dict[str, torch.Tensor], *,
                  precision: str = "fp32") -> dict[str, torch.Tensor]:
    """The frozen encoder's codes of every split of `data` (uint8 images x_train, x_val, x_test), computed once."""
    for p in autoencoder.parameters():
        p.requires_grad_(False)
    return {s: encode_images(autoencoder, data[f"x_{s}"], precision=precision) for s in ("train", "val", "test")}


def reconstruct(model: ConvAutoencoder, x: np.ndarray, precision: str = "fp32") -> np.ndarray:
    """Reconstructions in [0, 1], (N, 3, H, W) float32, of uint8 images."""
    device = next(model.parameters()).device
    return predict(model, to_device(images_nchw(np.array(x)), device), precision=precision,
                   preprocess=to_unit_float_channels_last).cpu().numpy()


def jpeg_roundtrip(x: np.ndarray, quality: int = 75, grid_shift: int = 4) -> np.ndarray:
    """uint8 (N, 3, H, W) images after one JPEG encode/decode at `quality` (PIL, 4:2:0 chroma subsampling).

    A JPEG-decoded image re-encoded at the same quality on the same 8x8 grid barely changes (measured on the
    CIFAR-10 copy: 0.13 grey levels mean absolute change at quality 75), so that round trip says nothing about
    what the first one cost. Shifting the grid by `grid_shift` pixels (edge-padded, cropped back) makes the
    encoder compress the image afresh: 4.6 grey levels at quality 75, the size of a first compression."""
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

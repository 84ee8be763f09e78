"""Study C: does autoencoder pretraining help an MNIST classifier?

Two architectures, exactly as SPEC C lists them (no output activation on the decoders: the reconstruction
loss is the MSE against the image scaled to [0, 1]):
- fc:   encoder Linear(784, 256) - ReLU - Linear(256, 128) - ReLU; decoder Linear(128, 256) - ReLU - Linear(256, 784)
- conv: encoder Conv(1, 8) - ReLU - MaxPool - Conv(8, 16) - ReLU - MaxPool - Conv(16, 4) - ReLU (latent 4 x 7 x 7);
        decoder ConvT(4, 16, 3, s1, p1) - ReLU - ConvT(16, 8, 3, s2, p1) - ReLU - ConvT(8, 1, 4, s2, p0) (back to 28 x 28)
and a linear head Linear(latent, 10) on the flattened code.

Three regimes per seed, all trained through `latentspace.training.engine.fit`, each keeping the weights of its epoch
with the lowest validation loss:
- frozen: the pretrained encoder, frozen, and a fresh linear head (the only thing trained);
- fine_tuned: the pretrained encoder and a fresh head, all trained;
- scratch: the encoder at the initial weights the autoencoder started from, and the same fresh head, all trained.
The autoencoder is pretrained once per seed and serves both frozen and fine_tuned. Fine-tuned and scratch
share epochs, learning rate, batch order and head initialisation, so the pair differs only in where the
encoder starts. Without augmentation the frozen encoder's codes are computed once and the head trains on them.
Every run is plain Adam at a constant learning rate with early stopping on the validation loss (`Settings`):
it stops once the validation loss has not improved for `patience` epochs, or at its epoch cap, and keeps the
weights of its best epoch. Each run's record says which epoch was kept and whether the cap was hit.

Augmentation (`erasing`): torchvision's RandomErasing(p=1, value=0) on every training batch of the
autoencoder and of the classifiers, never on validation or test images. The autoencoder sees the erased image;
`ae_target` says what it reconstructs: "erased" (default) the erased image itself, which is what a torchvision
pipeline with RandomErasing in the dataset transform and `loss(model(x), x)` does, the likely original; "clean"
the image before erasing (a denoising, in-painting objective). Validation always reconstructs clean images.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from latentspace.augment import erasing
from latentspace.core.io import atomic_path
from latentspace.training.engine import Augment, FitResult, Phase, evaluate_loss, fit, predict, to_device, to_unit_float
from latentspace.training.figures import image_grid
from latentspace.training.metrics import classification_report, confusion_matrix

ARCHITECTURES = ("fc", "conv")
REGIMES = ("frozen", "fine_tuned", "scratch")
AUGMENTATIONS = ("none", "erasing")
LATENT_SIZE = {"fc": 128, "conv": 4 * 7 * 7}
NUM_CLASSES = 10


def build_encoder(arch: str) -> nn.Sequential:
    if arch == "fc":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU())
    if arch == "conv":
        return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(16, 4, 3, padding=1), nn.ReLU())
    raise ValueError(f"unknown architecture {arch!r}; expected one of {ARCHITECTURES}")


def build_decoder(arch: str) -> nn.Sequential:
    if arch == "fc":
        return nn.Sequential(nn.Linear(128, 256), nn.ReLU(), nn.Linear(256, 784), nn.Unflatten(1, (1, 28, 28)))
    if arch == "conv":
        return nn.Sequential(nn.ConvTranspose2d(4, 16, 3, stride=1, padding=1), nn.ReLU(),
                             nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1), nn.ReLU(),
                             nn.ConvTranspose2d(8, 1, 4, stride=2, padding=0))
    raise ValueError(f"unknown architecture {arch!r}; expected one of {ARCHITECTURES}")


def build_head(arch: str) -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(LATENT_SIZE[arch], NUM_CLASSES))


class Autoencoder(nn.Module):
    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class Classifier(nn.Module):
    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


_PART = {"encoder": (build_encoder, 0), "decoder": (build_decoder, 1), "head": (build_head, 2)}


def initial(part: str, arch: str, seed: int, device: torch.device | str = "cpu") -> nn.Module:
    """A freshly initialised encoder, decoder or head: the same weights for the same (arch, seed) on any
    device (built on the CPU under its own RNG state, then moved), whatever was built before it."""
    build, offset = _PART[part]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3 * seed + offset)
        module = build(arch)
    # Channels-last convolutions of so few channels run about twice as fast (oneDNN on the CPU, cuDNN on a GPU);
    # a 1-channel NCHW image is already channels-last, so the inputs need no conversion.
    return module.to(device, memory_format=torch.channels_last)


def initial_classifier(regime: str, arch: str, seed: int, pretrained_encoder: nn.Module | None,
                       device: torch.device | str = "cpu") -> Classifier:
    """The classifier a regime starts from. frozen / fine_tuned: a copy of the pretrained encoder (frozen for
    `frozen`); scratch: the encoder's initial weights. The head is the same fresh one in all three."""
    if regime == "scratch":
        encoder = initial("encoder", arch, seed, device)
    elif regime in ("frozen", "fine_tuned"):
        if pretrained_encoder is None:
            raise ValueError(f"the {regime} regime needs a pretrained encoder")
        encoder = copy.deepcopy(pretrained_encoder)
    else:
        raise ValueError(f"unknown regime {regime!r}; expected one of {REGIMES}")
    if regime == "frozen":
        encoder.requires_grad_(False)
        encoder.eval()
    return Classifier(encoder, initial("head", arch, seed, device))


# --- settings and data ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    """One cell's training settings. Every run is plain Adam at a constant learning rate (1e-3 by default, the
    Keras and PyTorch default the original most likely used) that trains until the validation loss has not
    improved for `patience` epochs, at most `*_max_epochs` epochs, and keeps its best epoch."""
    ae_max_epochs: int = 3
    head_max_epochs: int = 3
    classifier_max_epochs: int = 3
    patience: int = 2
    batch_size: int = 128
    head_batch_size: int = 1024
    ae_lr: float = 1e-3
    head_lr: float = 1e-3
    lr: float = 1e-3
    ae_target: str = "erased"          # under erasing: reconstruct the erased input ("erased") or the clean one
    augment: Augment | None = None
    precision: str = "fp32"
    eval_batch_size: int = 512        # conv forward passes on the CPU: 2.3x faster than at 2,048 (cache)

    @classmethod
    def from_params(cls, p: dict, arch: str, augmentation: str, precision: str) -> "Settings":
        """From params.yaml's `study_c` section, for one cell (architecture, augmentation "none" or "erasing")."""
        augment = None
        if augmentation == "erasing":
            e = p["augmentations"]["erasing"]
            augment = erasing(scale=tuple(e["scale"]), ratio=tuple(e["ratio"]))
        elif augmentation != "none":
            raise ValueError(f"unknown augmentation {augmentation!r}; expected one of {AUGMENTATIONS}")
        a = p["architectures"][arch]
        # Under erasing the frozen head cannot train on codes computed once: every epoch runs the encoder.
        head_cap = a["head_max_epochs_erasing"] if augment is not None else a["head_max_epochs"]
        return cls(ae_max_epochs=a["ae_max_epochs"], head_max_epochs=head_cap,
                   classifier_max_epochs=a["classifier_max_epochs"], patience=p["patience"],
                   batch_size=a["batch_size"], head_batch_size=p["head_batch_size"], ae_lr=p["ae_lr"],
                   head_lr=p["head_lr"], lr=p["lr"], ae_target=p["ae_target"], augment=augment, precision=precision)

    def phase(self, lr: float, epochs: int) -> Phase:
        """One Adam phase at a constant learning rate; `epochs` is the cap of early stopping."""
        return Phase("adam", lr, epochs)


def mnist_on_device(arrays: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    """The prepared splits as device tensors: x uint8 (N, 1, 28, 28), y int64."""
    # np.array copies the read-only memory maps that load_prepared returns (torch wants writable memory).
    return {k: to_device(np.array(v), device) for k, v in arrays.items()}


# --- training ---------------------------------------------------------------------------------------

def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _start_curve(live) -> None:
    # Every training run's curves start at step 0 (dvclive keeps one file per metric name).
    if live is not None:
        live.step = 0


def pretrain_autoencoder(arch: str, data: dict, settings: Settings, seed: int, live=None) -> tuple[Autoencoder, FitResult]:
    device = data["x_train"].device
    model = Autoencoder(initial("encoder", arch, seed, device), initial("decoder", arch, seed, device))
    _start_curve(live)
    result = fit(model, data["x_train"], None, loss_fn=F.mse_loss,
                 phases=[settings.phase(settings.ae_lr, settings.ae_max_epochs)], patience=settings.patience,
                 reconstruct="augmented" if settings.ae_target == "erased" else "clean",
                 batch_size=settings.batch_size, x_val=data["x_val"], augment=settings.augment,
                 precision=settings.precision, seed=seed, live=live, prefix=f"seed{seed}/autoencoder/",
                 desc=f"{arch} autoencoder seed {seed}", eval_batch_size=settings.eval_batch_size)
    return model, result


def train_regime(regime: str, arch: str, data: dict, settings: Settings, seed: int,
                 pretrained_encoder: nn.Module | None = None, live=None) -> tuple[Classifier, FitResult]:
    """Train one regime's classifier from `initial_classifier`; returns it with its best-validation weights."""
    device = data["x_train"].device
    model = initial_classifier(regime, arch, seed, pretrained_encoder, device)
    frozen = regime == "frozen"
    phase = (settings.phase(settings.head_lr, settings.head_max_epochs) if frozen
             else settings.phase(settings.lr, settings.classifier_max_epochs))
    batch_size = settings.head_batch_size if frozen else settings.batch_size
    common = dict(loss_fn=F.cross_entropy, batch_size=batch_size, precision=settings.precision,
                  phases=[phase], patience=settings.patience, seed=seed, live=live,
                  prefix=f"seed{seed}/{regime}/", desc=f"{arch} {regime} seed {seed}",
                  eval_batch_size=settings.eval_batch_size, val_accuracy=True)
    _start_curve(live)
    if regime == "frozen" and settings.augment is None:
        # The frozen encoder maps each image to the same code in every epoch: compute the codes once.
        codes = {split: predict(model.encoder, data[f"x_{split}"], batch_size=settings.eval_batch_size,
                                precision=settings.precision) for split in ("train", "val")}
        result = fit(model.head, codes["train"], data["y_train"], x_val=codes["val"], y_val=data["y_val"],
                     preprocess=_identity, **common)
    else:
        result = fit(model, data["x_train"], data["y_train"], x_val=data["x_val"], y_val=data["y_val"],
                     augment=settings.augment, **common)
    return model, result


def predict_labels(model: nn.Module, x: torch.Tensor, settings: Settings) -> torch.Tensor:
    return predict(model, x, batch_size=settings.eval_batch_size, precision=settings.precision,
                   reduce=lambda out: out.argmax(1))


def scores(y: torch.Tensor, pred: torch.Tensor) -> dict:
    report = classification_report(confusion_matrix(y, pred, NUM_CLASSES))
    return {"test_accuracy": report["accuracy"], "test_macro_f1": report["macro_f1"]}


def reconstruction_mse(model: Autoencoder, x: torch.Tensor, settings: Settings) -> float:
    """Mean squared error per pixel of the reconstructions of the clean images `x` (scaled to [0, 1])."""
    return evaluate_loss(model, x, None, F.mse_loss, batch_size=settings.eval_batch_size,
                         precision=settings.precision)


def stopping(result: FitResult) -> dict:
    """Where a run stopped: the epoch kept (1-based), the epochs trained, and whether it hit the epoch cap
    (still improving within the patience when the cap ended it)."""
    return {"epoch_kept": result.epoch_kept, "epochs_run": result.epochs_run, "max_epochs": result.max_epochs,
            "hit_cap": result.hit_cap}


def run_seed(arch: str, data: dict, settings: Settings, seed: int, live=None) -> tuple[dict, dict, Autoencoder]:
    """Pretrain the autoencoder once, then train and test all three regimes. Returns the seed's record (test
    accuracy and macro F1 per regime, epoch kept, cap hit, validation curves), its test predictions per regime
    (uint8 numpy arrays) and the autoencoder. Seconds and throughput go to the record's "timing" entry."""
    t0 = time.perf_counter()
    autoencoder, ae_fit = pretrain_autoencoder(arch, data, settings, seed, live)
    timing = {"autoencoder": {"seconds": round(time.perf_counter() - t0, 2),
                              "train_images_per_second": ae_fit.train_images_per_second}}
    record = {"seed": seed, "autoencoder": {
        "val_mse": ae_fit.best_val_loss, "test_mse": reconstruction_mse(autoencoder, data["x_test"], settings),
        **stopping(ae_fit), "val_loss_curve": [h["val_loss"] for h in ae_fit.history]}}
    predictions = {}
    for regime in REGIMES:
        t0 = time.perf_counter()
        model, result = train_regime(regime, arch, data, settings, seed, autoencoder.encoder, live)
        pred = predict_labels(model, data["x_test"], settings)
        predictions[regime] = pred.cpu().numpy().astype(np.uint8)
        record[regime] = {**scores(data["y_test"], pred), **stopping(result),
                          "best_val_loss": result.best_val_loss,
                          "best_val_accuracy": result.history[result.best_epoch]["val_accuracy"],
                          # per epoch, for judging whether the run converged
                          "val_loss_curve": [h["val_loss"] for h in result.history],
                          "val_accuracy_curve": [h["val_accuracy"] for h in result.history]}
        timing[regime] = {"seconds": round(time.perf_counter() - t0, 2),
                          "train_images_per_second": result.train_images_per_second}
    record["timing"] = timing
    return record, predictions, autoencoder


def spread(values: list[float]) -> dict:
    """Mean, sample standard deviation (null for one seed), min, max and the values themselves."""
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else None,
            "min": float(v.min()), "max": float(v.max()), "values": v.tolist()}


def summarize(per_seed: list[dict]) -> dict:
    """Per regime, the spread over seeds of test accuracy and macro F1, the epochs kept and how many runs hit
    their epoch cap; the autoencoder's test MSE and the same stopping summary. (Curves differ in length under
    early stopping: they stay per seed.)"""
    out = {}
    for regime in REGIMES:
        runs = [r[regime] for r in per_seed]
        out[regime] = {m: spread([r[m] for r in runs]) for m in ("test_accuracy", "test_macro_f1")}
        out[regime].update(epochs_kept=[r["epoch_kept"] for r in runs], runs_hit_cap=sum(r["hit_cap"] for r in runs))
    ae = [r["autoencoder"] for r in per_seed]
    out["autoencoder"] = {"test_mse": spread([r["test_mse"] for r in ae]), "epochs_kept": [r["epoch_kept"] for r in ae],
                          "runs_hit_cap": sum(r["hit_cap"] for r in ae)}
    return out


def save_predictions(path, y_test: np.ndarray, seeds: list[int], predictions: list[dict]) -> None:
    """data/study_c/predictions/<cell>.npz: y_test (N,) uint8, seeds (S,), and per regime (S, N) uint8 predicted
    labels, row k for seeds[k] (what the verdicts' McNemar and paired tests read)."""
    arrays = {"y_test": np.asarray(y_test, dtype=np.uint8), "seeds": np.asarray(seeds, dtype=np.int64)}
    for regime in REGIMES:
        arrays[regime] = np.stack([p[regime] for p in predictions]).astype(np.uint8)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)


def describe(settings: Settings) -> dict:
    """The settings a cell ran with, for its metrics file."""
    out = {k: v for k, v in asdict(settings).items() if k != "augment"}
    out["augment"] = getattr(settings.augment, "settings", None)
    return out


# --- figure -----------------------------------------------------------------------------------------

def reconstruction_figure(autoencoder: Autoencoder, x: torch.Tensor, y: torch.Tensor, settings: Settings,
                          title: str, seed: int = 0):
    """Test images (one per class) over their reconstructions; with augmentation also the same images
    erased as in training, over what the autoencoder makes of them."""
    y_np = y.cpu().numpy()
    shown = torch.as_tensor([int(np.flatnonzero(y_np == c)[0]) for c in range(NUM_CLASSES) if (y_np == c).any()],
                            device=x.device)
    clean = to_unit_float(x[shown])
    rows = [("test image", clean)]
    rows.append(("reconstruction", predict(autoencoder, clean, preprocess=_identity, precision=settings.precision)))
    if settings.augment is not None:
        erased = settings.augment(clean, torch.Generator(device=x.device).manual_seed(seed))
        rows.append(("erased", erased))
        rows.append(("reconstruction\nof erased", predict(autoencoder, erased, preprocess=_identity,
                                                          precision=settings.precision)))
    return image_grid([(label, images.clamp(0, 1)[:, 0].cpu().numpy()) for label, images in rows], title,
                      cmap="gray", vmin=0, vmax=1)

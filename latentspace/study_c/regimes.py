"""Study C's runs: does autoencoder pretraining help an MNIST classifier? One cell's settings from params, its
runs (one autoencoder and three classifiers per seed) as pool tasks, their scores, the cell's summary and the
figure of reconstructions, and the saved models.

Three regimes per seed, all trained through `latentspace.training.engine.fit` (nets in `study_c.nets`):
- frozen: the pretrained encoder, frozen, and a fresh linear head (the only thing trained);
- fine_tuned: the pretrained encoder and a fresh head, all trained;
- scratch: the encoder at the initial weights the autoencoder started from, and the same fresh head, all trained.
The autoencoder is pretrained once per seed and serves both frozen and fine_tuned. Fine-tuned and scratch
share epochs, learning rate, batch order and head initialisation, so the pair differs only in where the
encoder starts. Without augmentation the frozen encoder's codes are computed once and the head trains on them.
Every run is plain Adam at a constant learning rate with early stopping on the validation loss: it stops once
the loss has not improved by the relative `min_delta` for `patience` epochs, or at its epoch cap, and keeps the
weights of its best epoch; each run's record says where it stopped (`FitResult.stopping()`).

Per seed the autoencoder and the scratch classifier are independent runs; the frozen and fine-tuned runs are
submitted once that seed's autoencoder is done (`run_cell`, autoencoders first), so every worker stays busy.
A run is a top-level function that reads MNIST from `worker_state()` (loaded once per worker by `load_mnist`)
and returns its record, history and predictions; the stage writes every file.

Augmentation (`erasing`): torchvision's RandomErasing(p=1, value=0) on every training batch of the
autoencoder and of the classifiers, never on validation or test images. The autoencoder sees the erased image;
`ae_target` says what it reconstructs: "erased" the erased image itself, which is what a torchvision pipeline
with RandomErasing in the dataset transform and `loss(model(x), x)` does, the likely original; "clean" the
image before erasing (a denoising, in-painting objective). Validation always reconstructs clean images.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.nn import functional as F

from latentspace.constants import STUDY_C_AUGMENTS, STUDY_C_REGIMES
from latentspace.core.io import atomic_path
from latentspace.datasets import load_prepared
from latentspace.study_c import nets
from latentspace.study_c.erasing import erasing
from latentspace.training.engine import FitResult, Phase, evaluate_loss, fit, predict, to_device, to_unit_float
from latentspace.training.figures import image_grid
from latentspace.training.metrics import classification_report, confusion_matrix
from latentspace.training.pool import as_completed, worker_state

# Conv forward passes on the CPU: 2.3x faster at 512 than at 2,048 (cache). Affects speed only, never results.
EVAL_BATCH_SIZE = 512
RUNS = ("autoencoder", *STUDY_C_REGIMES)


@dataclass(frozen=True)
class Settings:
    """One cell's training settings, all from params.yaml's `study_c` section (`from_params`; no defaults here,
    so none can drift from params.yaml). Picklable: the erasing augmentation is kept as its settings."""
    ae_max_epochs: int
    head_max_epochs: int
    classifier_max_epochs: int
    patience: int                      # fine-tuned and scratch
    min_delta: float
    ae_min_delta: float                # the autoencoder's loss creeps down for many epochs: a larger plateau margin
    head_patience: int                 # the frozen head's loss is noisy (+-10 % per epoch): a longer patience
    batch_size: int
    head_batch_size: int
    ae_lr: float
    head_lr: float
    lr: float
    ae_target: str                     # under erasing: reconstruct the erased input ("erased") or the clean one
    erasing: tuple | None              # (scale, ratio) of random erasing, None without augmentation
    precision: str

    @classmethod
    def from_params(cls, p: dict, arch: str, augmentation: str, precision: str) -> "Settings":
        """From params.yaml's `study_c` section, for one cell (architecture, augmentation "none" or "erasing")."""
        if augmentation not in STUDY_C_AUGMENTS:
            raise ValueError(f"unknown augmentation {augmentation!r}; expected one of {STUDY_C_AUGMENTS}")
        e = p["augmentations"]["erasing"]
        erasing_settings = (tuple(e["scale"]), tuple(e["ratio"])) if augmentation == "erasing" else None
        a = p["architectures"][arch]
        # Under erasing the frozen head cannot train on codes computed once: every epoch runs the encoder.
        head_cap = a["head_max_epochs_erasing"] if erasing_settings else a["head_max_epochs"]
        return cls(ae_max_epochs=a["ae_max_epochs"], head_max_epochs=head_cap,
                   classifier_max_epochs=a["classifier_max_epochs"], patience=p["patience"],
                   min_delta=p["min_delta"], ae_min_delta=p["ae_min_delta"], head_patience=p["head_patience"],
                   batch_size=a["batch_size"], head_batch_size=p["head_batch_size"],
                   ae_lr=p["ae_lr"], head_lr=p["head_lr"], lr=p["lr"], ae_target=p["ae_target"],
                   erasing=erasing_settings, precision=precision)

    @property
    def augment(self):
        """The engine's `augment` callable (built on use: a closure does not pickle)."""
        return None if self.erasing is None else erasing(scale=self.erasing[0], ratio=self.erasing[1])

    def max_epochs(self) -> dict:
        """The epoch cap of each run."""
        return {"autoencoder": self.ae_max_epochs, "frozen": self.head_max_epochs,
                "fine_tuned": self.classifier_max_epochs, "scratch": self.classifier_max_epochs}

    def describe(self) -> dict:
        """The settings a cell ran with, for its metrics file."""
        out = {k: v for k, v in asdict(self).items() if k != "erasing"}
        out["augment"] = getattr(self.augment, "settings", None)
        return out


def mnist_on_device(arrays: dict[str, np.ndarray], device: torch.device | str) -> dict[str, torch.Tensor]:
    """The prepared splits as device tensors: x uint8 (N, 1, 28, 28), y int64."""
    # np.array copies the read-only memory maps that load_prepared returns (torch wants writable memory).
    return {k: to_device(np.array(v), torch.device(device)) for k, v in arrays.items()}


def load_mnist(device: str, root: str = "data") -> dict[str, torch.Tensor]:
    """The pool's initializer: the prepared MNIST splits on `device`, once per worker."""
    return mnist_on_device(load_prepared("mnist", root), device)


# --- training ---------------------------------------------------------------------------------------

def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def pretrain_autoencoder(arch: str, data: dict, settings: Settings, seed: int) -> tuple[nets.Autoencoder, FitResult]:
    model = nets.initial_autoencoder(arch, seed, data["x_train"].device)
    result = fit(model, data["x_train"], None, loss_fn=F.mse_loss,
                 phases=[Phase("adam", settings.ae_lr, settings.ae_max_epochs)],
                 patience=settings.patience, min_delta=settings.ae_min_delta,
                 reconstruct="augmented" if settings.ae_target == "erased" else "clean",
                 batch_size=settings.batch_size, x_val=data["x_val"], augment=settings.augment,
                 precision=settings.precision, seed=seed, desc=f"{arch} autoencoder seed {seed}",
                 eval_batch_size=EVAL_BATCH_SIZE)
    return model, result


def train_regime(regime: str, arch: str, data: dict, settings: Settings, seed: int,
                 pretrained_encoder: dict | None = None) -> tuple[nets.Classifier, FitResult]:
    """Train one regime's classifier from `nets.initial_classifier` (the pretrained encoder as a state dict);
    returns it with its best-validation weights."""
    model = nets.initial_classifier(regime, arch, seed, pretrained_encoder, data["x_train"].device)
    frozen = regime == "frozen"
    phase = (Phase("adam", settings.head_lr, settings.head_max_epochs) if frozen
             else Phase("adam", settings.lr, settings.classifier_max_epochs))
    common = dict(loss_fn=F.cross_entropy, batch_size=settings.head_batch_size if frozen else settings.batch_size,
                  precision=settings.precision, phases=[phase],
                  patience=settings.head_patience if frozen else settings.patience,
                  min_delta=settings.min_delta, seed=seed, desc=f"{arch} {regime} seed {seed}",
                  eval_batch_size=EVAL_BATCH_SIZE, val_accuracy=True)
    augment = settings.augment
    if frozen and augment is None:
        # The frozen encoder maps each image to the same code in every epoch: compute the codes once.
        codes = {split: predict(model.encoder, data[f"x_{split}"], batch_size=EVAL_BATCH_SIZE,
                                precision=settings.precision) for split in ("train", "val")}
        result = fit(model.head, codes["train"], data["y_train"], x_val=codes["val"], y_val=data["y_val"],
                     preprocess=_identity, **common)
    else:
        result = fit(model, data["x_train"], data["y_train"], x_val=data["x_val"], y_val=data["y_val"],
                     augment=augment, **common)
    return model, result


def predict_labels(model: torch.nn.Module, x: torch.Tensor, settings: Settings) -> torch.Tensor:
    return predict(model, x, batch_size=EVAL_BATCH_SIZE, precision=settings.precision,
                   reduce=lambda out: out.argmax(1))


def scores(y: torch.Tensor, pred: torch.Tensor) -> dict:
    report = classification_report(confusion_matrix(y, pred, nets.NUM_CLASSES))
    return {"test_accuracy": report["accuracy"], "test_macro_f1": report["macro_f1"]}


def reconstruction_mse(model: nets.Autoencoder, x: torch.Tensor, settings: Settings) -> float:
    """Mean squared error per pixel of the reconstructions of the clean images `x` (scaled to [0, 1])."""
    return evaluate_loss(model, x, None, F.mse_loss, batch_size=EVAL_BATCH_SIZE, precision=settings.precision)


def run_record(result: FitResult) -> dict:
    """What every run's record says of its training: where it stopped (the flat keys the report reads, and the
    full `stopping`), its best validation loss and the validation loss per epoch."""
    return {"epoch_kept": result.epoch_kept, "epochs_run": result.epochs_run, "max_epochs": result.max_epochs,
            "hit_cap": result.hit_cap, "stopping": result.stopping(), "best_val_loss": result.best_val_loss,
            "val_loss_curve": [h["val_loss"] for h in result.history]}


def _timing(result: FitResult, t0: float) -> dict:
    return {"seconds": round(time.perf_counter() - t0, 2), "train_images_per_second": result.train_images_per_second}


# --- pool runs (top level: they are pickled to the workers) -------------------------------------------

def autoencoder_run(arch: str, settings: Settings, seed: int) -> dict:
    """Pretrain one seed's autoencoder on the worker's MNIST: its record, history, timing and weights (CPU)."""
    data, t0 = worker_state(), time.perf_counter()
    model, result = pretrain_autoencoder(arch, data, settings, seed)
    record = {"val_mse": result.best_val_loss, "test_mse": reconstruction_mse(model, data["x_test"], settings),
              **run_record(result)}
    return {"record": record, "history": result.history, "timing": _timing(result, t0),
            "encoder": nets.cpu_state(model.encoder), "decoder": nets.cpu_state(model.decoder)}


def classifier_run(regime: str, arch: str, settings: Settings, seed: int, pretrained_encoder: dict | None = None) -> dict:
    """Train and test one regime's classifier on the worker's MNIST: its record (test scores, best validation
    loss and accuracy, stopping), history, timing, test predictions (uint8) and kept weights (CPU)."""
    data, t0 = worker_state(), time.perf_counter()
    model, result = train_regime(regime, arch, data, settings, seed, pretrained_encoder)
    pred = predict_labels(model, data["x_test"], settings)
    record = {**scores(data["y_test"], pred), **run_record(result),
              "best_val_accuracy": result.history[result.best_epoch]["val_accuracy"],
              "val_accuracy_curve": [h["val_accuracy"] for h in result.history]}
    return {"record": record, "history": result.history, "timing": _timing(result, t0),
            "predictions": pred.cpu().numpy().astype(np.uint8), "weights": nets.cpu_state(model)}


def run_cell(pool, arch: str, settings: Settings, seeds: list[int]) -> list[dict]:
    """Every run of a cell in `pool`: per seed {run name: what its run returned}, in the order of `seeds`.
    The autoencoders of all seeds go first (the longest runs: started late, one would leave the other workers
    idle at the end), then the scratch runs; each seed's frozen and fine-tuned runs follow as soon as its
    autoencoder is done. The results do not depend on the order the runs start or finish in."""
    out = {seed: {} for seed in seeds}
    autoencoders = {pool.submit(autoencoder_run, arch, settings, seed): seed for seed in seeds}
    others = [(seed, "scratch", pool.submit(classifier_run, "scratch", arch, settings, seed)) for seed in seeds]
    for future in as_completed(autoencoders):
        seed = autoencoders[future]
        out[seed]["autoencoder"] = future.result()
        for regime in ("frozen", "fine_tuned"):
            others.append((seed, regime, pool.submit(classifier_run, regime, arch, settings, seed,
                                                     out[seed]["autoencoder"]["encoder"])))
    for seed, regime, future in others:
        out[seed][regime] = future.result()
    return [out[seed] for seed in seeds]


def replay_curves(live, seeds: list[int], runs: list[dict]) -> None:
    """Every run's per-epoch metrics into a dvclive logger, as the engine would have logged them: one curve per
    metric under `seed<k>/<run>/`, each starting at step 0 (dvclive keeps one file per metric name)."""
    for seed, seed_runs in zip(seeds, runs):
        for name in RUNS:
            live.step = 0
            for epoch in seed_runs[name]["history"]:
                for key, value in epoch.items():
                    if key != "epoch":
                        live.log_metric(f"seed{seed}/{name}/{key}", value)
                live.next_step()


# --- summaries --------------------------------------------------------------------------------------

def _stopping_summary(runs: list[dict]) -> dict:
    return {"epochs_kept": [r["epoch_kept"] for r in runs], "runs": len(runs),
            "runs_converged": sum(r["stopping"]["converged"] for r in runs),
            "runs_hit_cap": sum(r["hit_cap"] for r in runs)}


def summarize(per_seed: list[dict]) -> dict:
    """Per regime, the spread over seeds (`stats.spread`) of test accuracy, macro F1 and best validation
    accuracy, the epochs kept and how many runs converged (patience ended them) or hit their cap; for the
    autoencoder its test MSE and the same stopping summary. (Curves differ in length: they stay per seed.)"""
    # Imported here: scipy takes seconds to import, and the pool's workers, which import this module, never
    # summarize.
    from latentspace import stats
    out = {}
    for regime in STUDY_C_REGIMES:
        runs = [r[regime] for r in per_seed]
        out[regime] = {m: stats.spread([r[m] for r in runs])
                       for m in ("test_accuracy", "test_macro_f1", "best_val_accuracy")}
        out[regime].update(_stopping_summary(runs))
    ae = [r["autoencoder"] for r in per_seed]
    out["autoencoder"] = {"test_mse": stats.spread([r["test_mse"] for r in ae]), **_stopping_summary(ae)}
    return out


def convergence(summary: dict) -> dict:
    """{run: "converged/runs"} of a cell's summary, for its metrics and headline."""
    return {name: f"{summary[name]['runs_converged']}/{summary[name]['runs']}" for name in RUNS}


def save_predictions(path, y_test: np.ndarray, seeds: list[int], predictions: list[dict]) -> None:
    """data/study_c/predictions/<cell>.npz: y_test (N,) uint8, seeds (S,), and per regime (S, N) uint8 predicted
    labels, row k for seeds[k] (what the verdicts' McNemar and paired tests read)."""
    arrays = {"y_test": np.asarray(y_test, dtype=np.uint8), "seeds": np.asarray(seeds, dtype=np.int64)}
    for regime in STUDY_C_REGIMES:
        arrays[regime] = np.stack([p[regime] for p in predictions]).astype(np.uint8)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)


def save_models(path, arch: str, augment: str, seeds: list[int], runs: list[dict]) -> None:
    """models/study_c/<cell>.pt: per seed the autoencoder's and each regime's kept weights (CPU state dicts), so
    that a cell can be re-evaluated without training it again (`load_models`)."""
    models = {seed: {"autoencoder": {part: r["autoencoder"][part] for part in ("encoder", "decoder")},
                     **{regime: r[regime]["weights"] for regime in STUDY_C_REGIMES}}
              for seed, r in zip(seeds, runs)}
    with atomic_path(path) as tmp:
        torch.save({"arch": arch, "augment": augment, "seeds": list(seeds), "models": models}, tmp)


def load_models(path, device: torch.device | str = "cpu") -> dict:
    """A `save_models` file as {"arch", "augment", "seeds", "models": {seed: {"autoencoder": Autoencoder,
    regime: Classifier}}}, every net in eval mode on `device`."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    arch, models = saved["arch"], {}
    for seed, weights in saved["models"].items():
        models[seed] = {"autoencoder": trained_autoencoder(arch, weights["autoencoder"], device).eval()}
        for regime in STUDY_C_REGIMES:
            classifier = nets.Classifier(nets.initial("encoder", arch, seed, device),
                                         nets.initial("head", arch, seed, device))
            classifier.load_state_dict(weights[regime])
            models[seed][regime] = classifier.eval()
    return {**saved, "models": models}


# --- figure -----------------------------------------------------------------------------------------

def reconstruction_figure(autoencoder: nets.Autoencoder, x: torch.Tensor, y: torch.Tensor, settings: Settings,
                          title: str, seed: int = 0):
    """Test images (one per class) over their reconstructions; with augmentation also the same images
    erased as in training, over what the autoencoder makes of them."""
    y_np = y.cpu().numpy()
    shown = torch.as_tensor([int(np.flatnonzero(y_np == c)[0]) for c in range(nets.NUM_CLASSES) if (y_np == c).any()],
                            device=x.device)
    clean = to_unit_float(x[shown])
    rows = [("test image", clean)]
    rows.append(("reconstruction", predict(autoencoder, clean, preprocess=_identity, precision=settings.precision)))
    augment = settings.augment
    if augment is not None:
        erased = augment(clean, torch.Generator(device=x.device).manual_seed(seed))
        rows.append(("erased", erased))
        rows.append(("reconstruction\nof erased", predict(autoencoder, erased, preprocess=_identity,
                                                          precision=settings.precision)))
    return image_grid([(label, images.clamp(0, 1)[:, 0].cpu().numpy()) for label, images in rows], title,
                      cmap="gray", vmin=0, vmax=1)


def trained_autoencoder(arch: str, run: dict, device: torch.device | str) -> nets.Autoencoder:
    """The autoencoder an `autoencoder_run` returned, rebuilt from its weights on `device`."""
    model = nets.initial_autoencoder(arch, 0, device)
    model.encoder.load_state_dict(run["encoder"])
    model.decoder.load_state_dict(run["decoder"])
    return model

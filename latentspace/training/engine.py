"""The one training engine every study uses.

In the manner of airbench: the whole dataset lives as uint8 tensors on the device, batches are
slices of a random index permutation, conversion to float and augmentation happen per batch on the
device, and nothing in the hot loop runs per sample in Python. The engine keeps the weights of the
epoch with the lowest validation loss and restores them at the end.

Early stopping (`patience`, `min_delta`, `monitor`) works per phase, as Keras' EarlyStopping does per `fit`
call: a phase ends once the monitored validation metric (the loss by default; Study A watches its mean IoU, since
on noiseless images the loss keeps falling geometrically as the logits sharpen, long after the masks stop
changing) has not improved on the best so far by more than the relative `min_delta` for `patience` epochs in a
row (so a slow creep counts as a plateau), and the next phase starts from the best weights so far. A phase's epochs are its cap; the result says per phase whether patience or the cap ended it,
and a run is converged only when patience ended every phase.
"""
from __future__ import annotations

import functools
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from latentspace.training.device import autocast

Preprocess = Callable[[torch.Tensor], torch.Tensor]
Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def to_unit_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images in [0, 255] to float32 in [0, 1]."""
    return x.float().div_(255.0)


def to_unit_float_channels_last(x: torch.Tensor) -> torch.Tensor:
    """`to_unit_float`, then channels-last for 4-D batches: a channels-last conv net fed NCHW input converts
    every batch inside its first layer and runs its convolutions about 2x slower on the CPU (measured)."""
    x = to_unit_float(x)
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def to_device(array: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """Put a whole array on the device once, keeping its dtype (uint8 stays uint8: 4x less memory)."""
    t = torch.as_tensor(np.ascontiguousarray(array)) if isinstance(array, np.ndarray) else array
    return t.to(device, non_blocking=True)


@dataclass
class Phase:
    """One segment of a training schedule (the original Study A schedule has two: Nadam, then SGD)."""
    optimizer: str = "adam"          # adam | adamw | nadam | sgd
    lr: float = 1e-3
    epochs: int = 1
    momentum: float = 0.0
    weight_decay: float = 0.0
    lr_decay: float = 0.0            # Keras-style time decay per step: lr / (1 + lr_decay * step)
    warmup_steps: int = 0            # linear warm-up from lr / warmup_steps over the phase's first steps
    anneal: bool = False             # after warm-up, decay linearly to 0 at the phase's last step


def make_optimizer(params, phase: Phase) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if phase.optimizer == "adam":
        return torch.optim.Adam(params, lr=phase.lr, weight_decay=phase.weight_decay)
    if phase.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=phase.lr, weight_decay=phase.weight_decay)
    if phase.optimizer == "nadam":
        return torch.optim.NAdam(params, lr=phase.lr, weight_decay=phase.weight_decay)
    if phase.optimizer == "sgd":
        return torch.optim.SGD(params, lr=phase.lr, momentum=phase.momentum, weight_decay=phase.weight_decay)
    raise ValueError(f"unknown optimizer {phase.optimizer!r}")


def lr_factor(phase: Phase, total_steps: int, step: int) -> float:
    """Multiplier of the phase's lr at `step` of `total_steps`: time decay, times a linear warm-up if the phase
    has one (a fresh head's first large gradients can otherwise push a pretrained encoder's ReLUs all dead),
    times a linear decay to 0 if it anneals (short schedules end better at a small lr)."""
    warmup = min(1.0, (step + 1) / phase.warmup_steps) if phase.warmup_steps else 1.0
    anneal = 1.0
    if phase.anneal:
        start = min(phase.warmup_steps, total_steps - 1)
        anneal = min(1.0, max(0.0, (total_steps - step) / (total_steps - start)))
    return warmup * anneal / (1.0 + phase.lr_decay * step)


def batch_indices(n: int, batch_size: int, *, shuffle: bool, generator: torch.Generator | None,
                  device: torch.device, drop_last: bool = False) -> Iterator[torch.Tensor]:
    order = (torch.randperm(n, generator=generator, device=device) if shuffle
             else torch.arange(n, device=device))
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size]


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)   # one dict of metrics per epoch
    best_epoch: int = -1                                # 0-based epoch whose weights were kept
    best_val_loss: float = math.inf                     # validation loss of the kept epoch
    monitor: str = "val_loss"                           # what early stopping and the kept epoch follow
    best_score: float = math.nan                        # its value at the kept epoch
    epochs_run: int = 0                                 # epochs trained (fewer than planned after early stopping)
    max_epochs: int = 0                                 # epochs planned (the sum of the phases' caps)
    phases: list[dict] = field(default_factory=list)    # per phase: epochs_run, max_epochs, stopped_by
    seconds: float = 0.0
    train_images_per_second: float = 0.0

    @property
    def epoch_kept(self) -> int:
        """1-based epoch whose weights were kept."""
        return self.best_epoch + 1

    @property
    def stopped_early(self) -> bool:
        """Patience ended the last phase that ran."""
        return bool(self.phases) and self.phases[-1]["stopped_by"] == "patience"

    @property
    def converged(self) -> bool:
        """Patience, not the epoch cap, ended every phase: the validation loss had reached its plateau."""
        return bool(self.phases) and all(ph["stopped_by"] == "patience" for ph in self.phases)

    @property
    def hit_cap(self) -> bool:
        """Some phase ran to its epoch cap while its validation loss was still improving: a longer run might
        have found better weights."""
        return not self.converged

    def stopping(self) -> dict:
        """What the metrics record of every run: kept epoch, epochs run, caps and what ended each phase."""
        return {"epoch_kept": self.epoch_kept, "epochs_run": self.epochs_run, "max_epochs": self.max_epochs,
                "converged": self.converged, "hit_cap": self.hit_cap, "monitor": self.monitor,
                "phases": self.phases}


def _state_copy(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, *, batch_size: int = 1024, preprocess: Preprocess = to_unit_float,
            precision: str = "fp32", reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Model outputs for all of `x` in order, in eval mode; `reduce` shrinks each batch's output first
    (e.g. argmax over classes), so large outputs never pile up in memory."""
    was_training = model.training
    model.eval()
    outs = []
    for idx in batch_indices(len(x), batch_size, shuffle=False, generator=None, device=x.device):
        with autocast(x.device, precision):
            out = model(preprocess(x[idx]))
        out = out.float()
        outs.append(reduce(out) if reduce is not None else out)
    model.train(was_training)
    return torch.cat(outs)


@torch.no_grad()
def evaluate_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, loss_fn, *, batch_size: int = 1024,
                  preprocess: Preprocess = to_unit_float, precision: str = "fp32",
                  accuracy: bool = False) -> float | tuple[float, float]:
    """Mean loss over a whole set (weighted by batch size); y=None means reconstruct the input.
    accuracy=True (class labels y) returns (loss, share of argmax predictions equal to y) from the same pass."""
    was_training = model.training
    model.eval()
    total = torch.zeros((), device=x.device, dtype=torch.float64)
    correct = torch.zeros((), device=x.device, dtype=torch.int64)
    for idx in batch_indices(len(x), batch_size, shuffle=False, generator=None, device=x.device):
        xb = preprocess(x[idx])
        target = xb if y is None else y[idx]
        with autocast(x.device, precision):
            out = model(xb)
        total += loss_fn(out.float(), target).double() * len(idx)
        if accuracy:
            correct += (out.argmax(1) == target).sum()
    model.train(was_training)
    return (float(total) / len(x), int(correct) / len(x)) if accuracy else float(total) / len(x)


class _Watch:
    """The monitored value across a run (lower is better: the caller passes sign * metric). `best` is the lowest
    so far, whose weights are kept; per phase, `reference` is what a real improvement must beat by the relative
    `min_delta` (it moves only on such an improvement, as in Keras' EarlyStopping) and `waited` counts the epochs
    since the last one."""

    def __init__(self, min_delta: float):
        self.min_delta, self.best = min_delta, math.inf
        self.reference, self.waited = math.inf, 0

    def start_phase(self) -> None:
        self.reference, self.waited = self.best, 0

    def update(self, value: float) -> bool:
        """Record one epoch's value; True when it is the lowest so far."""
        is_best = value < self.best
        if is_best:
            self.best = value
        ref = self.reference
        if not math.isfinite(ref) or value < ref - self.min_delta * abs(ref):
            self.reference, self.waited = value, 0
        else:
            self.waited += 1
        return is_best


def _check_fit_args(x_val, patience: int | None, min_delta: float, mode: str, reconstruct: str) -> None:
    if patience is not None and (x_val is None or patience < 1):
        raise ValueError("early stopping needs validation data and a patience >= 1")
    if not 0.0 <= min_delta < 1.0:
        raise ValueError(f"min_delta={min_delta}; expected a relative improvement in [0, 1)")
    if mode not in ("min", "max"):
        raise ValueError(f"mode={mode!r}; expected 'min' or 'max'")
    if reconstruct not in ("clean", "augmented"):
        raise ValueError(f"reconstruct={reconstruct!r}; expected 'clean' or 'augmented'")


def _phase_optimizer(model: nn.Module, phase: Phase, steps_per_epoch: int):
    """A phase's fresh optimizer, and its lr schedule over the phase's planned steps (None for a constant lr)."""
    optimizer = make_optimizer(model.parameters(), phase)
    scheduler = (torch.optim.lr_scheduler.LambdaLR(
        optimizer, functools.partial(lr_factor, phase, phase.epochs * steps_per_epoch))
        if phase.lr_decay or phase.warmup_steps or phase.anneal else None)
    return optimizer, scheduler


def _train_epoch(model: nn.Module, x_train: torch.Tensor, y_train: torch.Tensor | None, *, loss_fn,
                 optimizer, scheduler, scaler, batch_size: int, gen: torch.Generator, preprocess: Preprocess,
                 augment: Augment | None, reconstruct: str, precision: str, bar) -> float:
    """One pass over the training set in a fresh random order (the hot loop); returns the mean training loss."""
    model.train()
    device = x_train.device
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    for idx in batch_indices(len(x_train), batch_size, shuffle=True, generator=gen, device=device):
        xb = preprocess(x_train[idx])
        target = xb if y_train is None else y_train[idx]
        if augment is not None:
            clean_target = y_train is None and reconstruct == "clean"
            xb = augment(xb.clone() if clean_target else xb, gen)
            if y_train is None and reconstruct == "augmented":
                target = xb
        with autocast(device, precision):
            out = model(xb)
        loss = loss_fn(out.float(), target)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        loss_sum += loss.detach().double() * len(idx)
        bar.update(1)
    if device.type == "cuda":
        torch.cuda.synchronize()   # so the caller's clock measures the epoch, not its queueing
    return float(loss_sum) / len(x_train)


def _validation_record(model: nn.Module, x_val: torch.Tensor | None, y_val: torch.Tensor | None, loss_fn, *,
                       eval_batch_size: int, preprocess: Preprocess, precision: str, val_accuracy: bool,
                       epoch_metrics: Callable[[nn.Module], dict] | None) -> dict:
    """An epoch's validation metrics (loss, accuracy if asked) and those of `epoch_metrics`."""
    record: dict = {}
    if x_val is not None:
        val = evaluate_loss(model, x_val, y_val, loss_fn, batch_size=eval_batch_size,
                            preprocess=preprocess, precision=precision, accuracy=val_accuracy)
        if val_accuracy:
            record["val_loss"], record["val_accuracy"] = val
        else:
            record["val_loss"] = val
    if epoch_metrics is not None:
        record.update(epoch_metrics(model))
    return record


def _show_epoch(record: dict, *, live, prefix: str, bar, desc: str, total_epochs: int) -> None:
    """Hand an epoch's record to dvclive and to the progress bar (or, with no terminal, one line on stderr)."""
    if live is not None:
        for k, v in record.items():
            if k != "epoch":
                live.log_metric(f"{prefix}{k}", v)
        live.next_step()
    bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k in ("train_loss", "val_loss")})
    if bar.disable:
        shown = " ".join(f"{k}={v:.4g}" for k, v in record.items() if k != "epoch")
        print(f"{desc} epoch {record['epoch'] + 1}/{total_epochs}: {shown}", file=sys.stderr, flush=True)


def fit(model: nn.Module, x_train: torch.Tensor, y_train: torch.Tensor | None, *,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        phases: list[Phase], batch_size: int,
        x_val: torch.Tensor | None = None, y_val: torch.Tensor | None = None,
        preprocess: Preprocess = to_unit_float, augment: Augment | None = None,
        precision: str = "fp32", seed: int = 0,
        epoch_metrics: Callable[[nn.Module], dict] | None = None,
        live=None, prefix: str = "", desc: str = "train", eval_batch_size: int = 2048,
        val_accuracy: bool = False, patience: int | None = None, min_delta: float = 0.0,
        monitor: str = "val_loss", mode: str = "min", reconstruct: str = "clean") -> FitResult:
    """Train `model` on tensors already on the device.

    y_train=None trains an autoencoder: the target is the preprocessed clean input (`reconstruct="clean"`:
    `augment` changes only what the model sees) or the augmented input itself (`reconstruct="augmented"`).
    `loss_fn(output, target)` returns a scalar mean.
    With validation data, the weights of the epoch with the lowest validation loss are restored at
    the end; without, the last weights are kept. `val_accuracy=True` (class labels) also records the
    validation accuracy, from the same pass as the loss. `epoch_metrics(model)` adds metrics to each epoch's
    record; `live` (a dvclive.Live) receives every epoch's metrics under `prefix`.

    Early stopping (opt-in, needs validation data): with `patience`, each phase ends once its validation loss
    has not dropped below (1 - min_delta) x the best so far for `patience` epochs in a row; each phase's epochs
    are then its cap, and the next phase starts from the best weights so far. `monitor` names the record entry
    early stopping and the kept epoch follow (a validation metric, e.g. "val_mean_iou" from `epoch_metrics`),
    `mode` whether lower ("min") or higher ("max") is better; a real improvement beats the reference by the
    relative `min_delta` in that direction.
    """
    _check_fit_args(x_val, patience, min_delta, mode, reconstruct)
    sign = 1.0 if mode == "min" else -1.0   # compare sign * value: lower is better either way
    device = x_train.device
    gen = torch.Generator(device=device).manual_seed(seed)
    torch.manual_seed(seed)
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    total_epochs = sum(p.epochs for p in phases)
    result = FitResult(max_epochs=total_epochs, monitor=monitor)
    watch = _Watch(min_delta)
    best_state = None
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    bar = tqdm(total=total_epochs * steps_per_epoch, desc=desc, unit="step", file=sys.stderr,
               disable=None, dynamic_ncols=True, leave=False)
    train_seconds = 0.0
    t_start = time.perf_counter()
    epoch = 0
    for phase_index, phase in enumerate(phases):
        if phase_index and best_state is not None and patience is not None:
            model.load_state_dict(best_state)
        watch.start_phase()
        optimizer, scheduler = _phase_optimizer(model, phase, steps_per_epoch)
        phase_epochs, stopped_by = 0, "cap"
        for _ in range(phase.epochs):
            t0 = time.perf_counter()
            train_loss = _train_epoch(model, x_train, y_train, loss_fn=loss_fn, optimizer=optimizer,
                                      scheduler=scheduler, scaler=scaler, batch_size=batch_size, gen=gen,
                                      preprocess=preprocess, augment=augment, reconstruct=reconstruct,
                                      precision=precision, bar=bar)
            train_seconds += time.perf_counter() - t0
            record = {"epoch": epoch, "train_loss": train_loss, "lr": optimizer.param_groups[0]["lr"],
                      **_validation_record(model, x_val, y_val, loss_fn, eval_batch_size=eval_batch_size,
                                           preprocess=preprocess, precision=precision, val_accuracy=val_accuracy,
                                           epoch_metrics=epoch_metrics)}
            if x_val is not None and monitor not in record:
                raise ValueError(f"monitor={monitor!r} is not among this epoch's metrics {sorted(record)}")
            value = sign * record[monitor] if x_val is not None else record["train_loss"]
            # Without validation data every epoch is the "best": the last weights are kept.
            if watch.update(value) or x_val is None:
                result.best_epoch = epoch
                result.best_val_loss = record.get("val_loss", record["train_loss"])
                result.best_score = record.get(monitor, math.nan)
                best_state = _state_copy(model) if x_val is not None else None
            result.history.append(record)
            _show_epoch(record, live=live, prefix=prefix, bar=bar, desc=desc, total_epochs=total_epochs)
            epoch += 1
            phase_epochs += 1
            if patience is not None and watch.waited >= patience:
                stopped_by = "patience"
                break
        result.phases.append({"epochs_run": phase_epochs, "max_epochs": phase.epochs, "stopped_by": stopped_by})
    bar.close()
    result.epochs_run = epoch
    if best_state is not None:
        model.load_state_dict(best_state)
    result.seconds = round(time.perf_counter() - t_start, 2)
    result.train_images_per_second = round(len(x_train) * epoch / max(train_seconds, 1e-9), 1)
    if x_val is None:
        result.best_val_loss = math.nan
    return result

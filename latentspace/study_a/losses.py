"""Study A3: the segmentation losses (weighted cross-entropy, the original's per-pixel Dice, focal) and the
validation tally that scores each epoch's validation pass.

The original losses (Keras) take the softmax output p and a one-hot target t per pixel and are averaged
over pixels. With a one-hot t every sum over the four outputs keeps only the target's term, so each loss
here gathers that term; log p comes from log_softmax (finite for any logits), clamped to the log of the
original's clipping range [eps, 1 - eps] (same values and the same zero gradient outside it).
"""
from __future__ import annotations

import math

import torch

from latentspace.constants import LOSSES, SEGMENTATION_CLASSES
from latentspace.core.errors import UserError
from latentspace.study_a.scores import pixel_confusion, segmentation_metrics

KERAS_EPSILON = 1e-7


def _clipped_log_prob_of_target(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    log_p = logits.log_softmax(dim=1).gather(1, target.long().unsqueeze(1)).squeeze(1)
    return log_p.clamp(math.log(KERAS_EPSILON), math.log1p(-KERAS_EPSILON))


def _per_output(background: float, rectangle: float, device: torch.device) -> torch.Tensor:
    return torch.tensor([background] + [rectangle] * (len(SEGMENTATION_CLASSES) - 1), device=device)


def weighted_cross_entropy(class_weight: float):
    """Per pixel -sum_k w_k t_k log clip(p_k), w = `class_weight` for each rectangle class and 1 for the
    background, averaged over pixels (not over the weights' sum, as Keras does)."""
    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weight = _per_output(1.0, class_weight, logits.device)[target.long()]
        return -(weight * _clipped_log_prob_of_target(logits, target)).mean()
    return loss


def dice(smooth: float):
    """The original's per-pixel Dice loss: 1 - (2 sum_k t_k p_k + smooth) / (sum_k t_k^2 + sum_k p_k^2 + smooth),
    sums over the four outputs of one pixel, then the mean over pixels."""
    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p = logits.softmax(dim=1)
        p_target = p.gather(1, target.long().unsqueeze(1)).squeeze(1)
        # sum_k t_k^2 = 1 for a one-hot target.
        return (1.0 - (2.0 * p_target + smooth) / (1.0 + p.square().sum(dim=1) + smooth)).mean()
    return loss


def focal(gamma: float, alpha: float):
    """Per pixel sum_k alpha_k (1 - p_k)^gamma (-t_k log p_k) with p clipped to [eps, 1 - eps], alpha_k = `alpha`
    for the rectangle classes and 1 - alpha for the background, averaged over pixels."""
    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = _clipped_log_prob_of_target(logits, target)
        alpha_t = _per_output(1.0 - alpha, alpha, logits.device)[target.long()]
        return (-alpha_t * (1.0 - log_p.exp()).pow(gamma) * log_p).mean()
    return loss


def make_loss(name: str, settings: dict):
    """A loss by name, with its settings (params.yaml segmentation.loss_settings.<name>)."""
    if name == "wce":
        return weighted_cross_entropy(settings["class_weight"])
    if name == "dice":
        return dice(settings["smooth"])
    if name == "focal":
        return focal(settings["gamma"], settings["alpha"])
    raise UserError(f"unknown loss {name!r}; expected one of {', '.join(LOSSES)}")


class LossWithValidationTally:
    """The training loss, which also counts the pixel confusion of every batch it scores without gradients
    (the engine's validation pass), so the validation mean IoU per epoch comes from the same pass as the
    validation loss instead of a second prediction pass over the validation images."""

    def __init__(self, loss_fn):
        self.loss_fn, self.confusion = loss_fn, None

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled():
            counts = pixel_confusion(target, logits.argmax(dim=1))
            self.confusion = counts if self.confusion is None else self.confusion + counts
        return self.loss_fn(logits, target)

    def epoch_metrics(self, _model) -> dict:
        """Validation pixel accuracy and mean IoU of the pass just made; starts a new tally."""
        m, self.confusion = segmentation_metrics(self.confusion), None
        return {"val_pixel_accuracy": m["pixel_accuracy"], "val_mean_iou": m["mean_iou"]}


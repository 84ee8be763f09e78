"""Study A3: the three segmentation nets (PyTorch ports of the original Keras models), their losses,
the test metrics, a per-pixel nearest-colour baseline, and the figure of predicted masks.

Every net takes float NCHW images in [0, 1] (`preprocess_images`) and returns logits (N, 4, H, W) over
background and classes 1..3; `encode(x)` returns the bottleneck activations the latent analysis (A4) reads.
All 3x3 convolutions are 'same'-padded and followed by ReLU, as in the originals.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from latentspace.core.errors import UserError
from latentspace.training.figures import image_grid

NETS = ("nn1", "nn2", "nn3")
LOSSES = ("wce", "dice", "focal")
N_OUTPUTS = 4                      # background + classes 1..3
CLASS_NAMES = ("background", "class1", "class2", "class3")
# Label-map colours for figures: black background, then the class-centre colours (SPEC A1).
MASK_COLOURS = np.array([[0, 0, 0], [42, 127, 212], [127, 212, 42], [212, 42, 127]], dtype=np.uint8)


# --- input --------------------------------------------------------------------------------------------

def preprocess_images(x: torch.Tensor, noise: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 NHWC images to float NCHW (x + U[0, noise)) / 255, as the original fed its nets.
    noise = 0 adds nothing (and needs no generator)."""
    out = x.permute(0, 3, 1, 2).float()
    if noise > 0:
        out = out + torch.rand(out.shape, generator=generator, device=out.device) * noise
    # NHWC permuted is channels_last in memory: kept so, as convolutions on the CPU run ~1.5x faster that way.
    return out.div_(255.0)


def input_noise(noise: float):
    """The engine's `augment` hook for already preprocessed images: + U[0, noise) / 255 per value, the same
    as adding the noise before scaling. Training only: validation, test and latent codes see clean images."""
    def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return x + torch.rand(x.shape, generator=generator, device=x.device) * (noise / 255.0)
    return augment if noise > 0 else None


# --- building blocks ----------------------------------------------------------------------------------

def _conv(cin: int, cout: int, k: int = 3) -> nn.Module:
    """A 'same' convolution. Keras pads an even kernel one more at the bottom/right than at the top/left."""
    if k % 2:
        return nn.Conv2d(cin, cout, k, padding=k // 2)
    return nn.Sequential(nn.ZeroPad2d((k // 2 - 1, k // 2, k // 2 - 1, k // 2)), nn.Conv2d(cin, cout, k))


class SeparableConv2d(nn.Module):
    """Keras SeparableConv2D: a depthwise k x k conv (no bias) then a pointwise 1 x 1 conv with bias."""

    def __init__(self, cin: int, cout: int, k: int = 3):
        super().__init__()
        if k % 2:
            self.pad = nn.Identity()
            self.depthwise = nn.Conv2d(cin, cin, k, padding=k // 2, groups=cin, bias=False)
        else:
            self.pad = nn.ZeroPad2d((k // 2 - 1, k // 2, k // 2 - 1, k // 2))
            self.depthwise = nn.Conv2d(cin, cin, k, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(self.pad(x)))


def _he_normal_(module: nn.Module) -> None:
    """Keras he_normal: truncated normal (at 2 std) with std sqrt(2 / fan_in); zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.weight[0].numel()
            std = math.sqrt(2.0 / fan_in)
            nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _glorot_uniform_(module: nn.Module) -> None:
    """Keras' default initialiser (glorot_uniform kernels, zero biases): what the original NN1 used."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


# --- the nets -----------------------------------------------------------------------------------------

class NN1(nn.Module):
    """Convolutional autoencoder: three conv + max-pool levels down to 32 x 8 x 8, three conv + upsample back."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2, self.conv3 = _conv(3, 8), _conv(8, 16), _conv(16, 32)
        self.conv4, self.conv5, self.conv6 = _conv(32, 32), _conv(32, 16), _conv(16, 8)
        self.head = _conv(8, N_OUTPUTS)
        _glorot_uniform_(self)

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        pool3 = F.max_pool2d(F.relu(self.conv3(x)), 2)
        return pool3, F.relu(self.conv4(pool3))

    def encode(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        pool3, conv4 = self._encode(x)
        return {"pool3": pool3, "conv4": conv4}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._encode(x)[1]
        x = F.relu(self.conv5(F.interpolate(x, scale_factor=2, mode="nearest")))
        x = F.relu(self.conv6(F.interpolate(x, scale_factor=2, mode="nearest")))
        # The original's last layer is a softmax over the 4 outputs; the losses here take its logits.
        return self.head(F.interpolate(x, scale_factor=2, mode="nearest"))


class UNet(nn.Module):
    """NN2 (plain convs) and NN3 (depthwise-separable convs, dropout after the bottleneck, one more 4-channel
    layer before the 1 x 1 head): a small U-Net with one conv per level, encoder 4-8-16-32-64."""

    WIDTHS = (4, 8, 16, 32, 64)

    def __init__(self, separable: bool):
        super().__init__()
        conv = SeparableConv2d if separable else _conv
        w = self.WIDTHS
        self.down = nn.ModuleList([conv(cin, cout) for cin, cout in zip((3,) + w[:-1], w)])
        # After the 32 level (the input of the last pooling and its skip), as the Keras U-Net had it.
        self.drop = nn.Dropout(0.5)
        self.drop_bottleneck = nn.Dropout(0.5) if separable else nn.Identity()
        self.up = nn.ModuleList([conv(cin, cout, 2) for cin, cout in zip(w[:0:-1], w[-2::-1])])
        # A 3x3 merge conv after each concatenation except the top one: there the skip and the last
        # up-convolution (4 + 4 channels) go straight into the head's 16-channel conv, as in the originals.
        self.merge = nn.ModuleList([conv(2 * cout, cout) for cout in w[-2:0:-1]])
        head = (2 * w[0], 16, 8) + ((4,) if separable else ())
        self.head = nn.ModuleList([conv(cin, cout) for cin, cout in zip(head[:-1], head[1:])])
        self.classifier = conv(head[-1], N_OUTPUTS, 1)
        _he_normal_(self)

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = []
        for i, layer in enumerate(self.down[:-1]):
            x = F.relu(layer(x))
            if i == len(self.down) - 2:
                x = self.drop(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        return F.relu(self.down[-1](x)), skips

    def encode(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"bottleneck": self._encode(x)[0]}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, skips = self._encode(x)
        x = self.drop_bottleneck(x)
        for level, (up, skip) in enumerate(zip(self.up, reversed(skips))):
            x = torch.cat([skip, F.relu(up(F.interpolate(x, scale_factor=2, mode="nearest")))], dim=1)
            if level < len(self.merge):
                x = F.relu(self.merge[level](x))
        for layer in self.head:
            x = F.relu(layer(x))
        return self.classifier(x)


def build_net(name: str) -> nn.Module:
    if name == "nn1":
        return NN1()
    if name in ("nn2", "nn3"):
        return UNet(separable=name == "nn3")
    raise UserError(f"unknown net {name!r}; expected one of {', '.join(NETS)}")


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def min_image_size(name: str) -> int:
    """Inputs must halve cleanly at every pooling: 3 poolings for NN1, 4 for the U-Nets."""
    return 8 if name == "nn1" else 16


def save_net(path: str | Path, net: nn.Module, *, name: str, loss: str, image_size: int, **extra) -> None:
    from latentspace.core.io import atomic_path
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"net": name, "loss": loss, "image_size": int(image_size), "state_dict": state, **extra}, tmp)


def load_net(path: str | Path) -> nn.Module:
    """A net saved by the train_segmentation stage, in eval mode, on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: trained net not found; run `dvc repro train_segmentation`")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        net = build_net(saved["net"])
        net.load_state_dict(saved["state_dict"])
    except (KeyError, RuntimeError, OSError, ValueError) as e:
        raise UserError(f"{path}: not a segmentation net saved by train_segmentation "
                        f"({str(e).splitlines()[0] if str(e) else type(e).__name__}); rerun that stage") from None
    return net.eval()


# --- losses -------------------------------------------------------------------------------------------
# The original losses (Keras) take the softmax output p and a one-hot target t per pixel and are averaged
# over pixels. With a one-hot t every sum over the four outputs keeps only the target's term, so each loss
# here gathers that term; log p comes from log_softmax (finite for any logits), clamped to the log of the
# original's clipping range [eps, 1 - eps] (same values and the same zero gradient outside it).

KERAS_EPSILON = 1e-7


def _clipped_log_prob_of_target(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    log_p = logits.log_softmax(dim=1).gather(1, target.long().unsqueeze(1)).squeeze(1)
    return log_p.clamp(math.log(KERAS_EPSILON), math.log1p(-KERAS_EPSILON))


def _per_output(background: float, rectangle: float, device: torch.device) -> torch.Tensor:
    return torch.tensor([background] + [rectangle] * (N_OUTPUTS - 1), device=device)


def weighted_cross_entropy(class_weight: float = 4.0):
    """Per pixel -sum_k w_k t_k log clip(p_k), w = `class_weight` for each rectangle class and 1 for the
    background, averaged over pixels (not over the weights' sum, as Keras does)."""
    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weight = _per_output(1.0, class_weight, logits.device)[target.long()]
        return -(weight * _clipped_log_prob_of_target(logits, target)).mean()
    return loss


def dice(smooth: float = 1.0):
    """The original's per-pixel Dice loss: 1 - (2 sum_k t_k p_k + smooth) / (sum_k t_k^2 + sum_k p_k^2 + smooth),
    sums over the four outputs of one pixel, then the mean over pixels."""
    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p = logits.softmax(dim=1)
        p_target = p.gather(1, target.long().unsqueeze(1)).squeeze(1)
        # sum_k t_k^2 = 1 for a one-hot target.
        return (1.0 - (2.0 * p_target + smooth) / (1.0 + p.square().sum(dim=1) + smooth)).mean()
    return loss


def focal(gamma: float = 2.0, alpha: float = 0.75):
    """Per pixel sum_k alpha_k (1 - p_k)^gamma (-t_k log p_k) with p clipped to [eps, 1 - eps], alpha_k = `alpha`
    for the rectangle classes and 1 - alpha for the background, averaged over pixels."""
    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = _clipped_log_prob_of_target(logits, target)
        alpha_t = _per_output(1.0 - alpha, alpha, logits.device)[target.long()]
        return (-alpha_t * (1.0 - log_p.exp()).pow(gamma) * log_p).mean()
    return loss


def make_loss(name: str, settings: dict | None = None):
    """A loss by name, with its settings (params.yaml segmentation.loss_settings.<name>; SPEC values if None)."""
    settings = settings or {}
    if name == "wce":
        return weighted_cross_entropy(settings.get("class_weight", 4.0))
    if name == "dice":
        return dice(settings.get("smooth", 1.0))
    if name == "focal":
        return focal(settings.get("gamma", 2.0), settings.get("alpha", 0.75))
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


# --- metrics ------------------------------------------------------------------------------------------

def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    # 0/0 (an output absent from the labels and never predicted) counts as 0, as latentspace.training.metrics does.
    return np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den > 0)


def segmentation_metrics(cm: np.ndarray) -> dict:
    """Pixel accuracy, IoU and Dice per output and their means (over all 4, and over the 3 rectangle
    classes), from a 4 x 4 pixel confusion matrix (rows true, columns predicted)."""
    cm = np.asarray(cm, dtype=np.int64)
    tp = np.diag(cm).astype(float)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    iou = _ratio(tp, tp + fp + fn)
    dice = _ratio(2 * tp, 2 * tp + fp + fn)
    return {
        "pixel_accuracy": float(tp.sum() / max(cm.sum(), 1)),
        "iou": {n: float(v) for n, v in zip(CLASS_NAMES, iou)},
        "dice": {n: float(v) for n, v in zip(CLASS_NAMES, dice)},
        "mean_iou": float(iou.mean()),
        "mean_dice": float(dice.mean()),
        "mean_iou_rectangles": float(iou[1:].mean()),
        "mean_dice_rectangles": float(dice[1:].mean()),
        "confusion_matrix": cm.tolist(),
    }


SUMMARISED = ("pixel_accuracy", "mean_iou", "mean_dice", "mean_iou_rectangles", "mean_dice_rectangles")


def spread(values: list[float]) -> dict:
    """Mean, sample standard deviation (0 for one value), min, max and the values themselves."""
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "min": float(v.min()), "max": float(v.max()), "values": [float(x) for x in v]}


def launch_summary(per_launch: list[dict]) -> dict:
    """Mean and spread over launches of each summary test metric (`SUMMARISED`)."""
    return {key: spread([r[key] for r in per_launch]) for key in SUMMARISED}


def pixel_confusion(labels: torch.Tensor, predicted: torch.Tensor) -> np.ndarray:
    from latentspace.training.metrics import confusion_matrix
    return confusion_matrix(labels, predicted, N_OUTPUTS)


def confusion_rows(labels: np.ndarray, predicted: np.ndarray, pixels: int, seed: int) -> list[dict]:
    """{actual, predicted} rows for `dvc plots`' confusion template, for a random sample of test pixels
    (all of them would be millions of rows)."""
    flat_true, flat_pred = np.asarray(labels).reshape(-1), np.asarray(predicted).reshape(-1)
    idx = np.sort(np.random.default_rng(seed).choice(len(flat_true), size=min(pixels, len(flat_true)),
                                                      replace=False))
    names = np.asarray(CLASS_NAMES)
    return [{"actual": a, "predicted": p} for a, p in zip(names[flat_true[idx]], names[flat_pred[idx]])]


# --- the colour baseline ------------------------------------------------------------------------------

def nearest_colour(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Per pixel, the nearest (Euclidean, in RGB) of black and the three class-centre colours: 0 for
    black (background), k for class k. What colour alone predicts, blind to shape and position."""
    x = torch.as_tensor(images).float()                                    # (..., 3)
    centres = torch.as_tensor(MASK_COLOURS, dtype=torch.float32, device=x.device)
    dist = ((x.unsqueeze(-2) - centres) ** 2).sum(-1)                      # (..., 4)
    return dist.argmin(-1).to(torch.uint8)


# --- figure -------------------------------------------------------------------------------------------

def colour_masks(labels: np.ndarray) -> np.ndarray:
    return MASK_COLOURS[np.asarray(labels)]


def predictions_figure(images: np.ndarray, labels: np.ndarray, predicted: np.ndarray, title: str):
    """A column per example: the image, its true label map, the predicted one (class-centre colours)."""
    rows = (("image", images), ("true mask", colour_masks(labels)), ("predicted", colour_masks(predicted)))
    return image_grid(rows, title, cell=(1.6, 5.0 / 3), interpolation="nearest")

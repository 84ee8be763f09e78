"""Study A3: the three segmentation nets, PyTorch ports of the original Keras models, and their files.

Every net takes float NCHW images in [0, 1] and returns logits (N, 4, H, W) over background and classes 1..3;
`encode(x)` returns the bottleneck activations the latent analysis (A4) reads. All 3x3 convolutions are
'same'-padded and followed by ReLU, as in the originals.

The ReLUs work in place, and NN1's come after its max-pools: ReLU is monotone, so it commutes with a max-pool
exactly (values and gradients, bit for bit), and after the pool it runs on a quarter of the values. Neither
changes what a net computes (tests/study_a/test_segmentation.py trains both forms); both save passes over
memory on a CPU.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from latentspace.constants import NETS, SEGMENTATION_CLASSES
from latentspace.core.errors import UserError
from latentspace.core.io import atomic_path

N_OUTPUTS = len(SEGMENTATION_CLASSES)   # background + classes 1..3


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
        x = F.relu(F.max_pool2d(self.conv1(x), 2), inplace=True)
        x = F.relu(F.max_pool2d(self.conv2(x), 2), inplace=True)
        pool3 = F.relu(F.max_pool2d(self.conv3(x), 2), inplace=True)
        return pool3, F.relu(self.conv4(pool3), inplace=True)

    def encode(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        pool3, conv4 = self._encode(x)
        return {"pool3": pool3, "conv4": conv4}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._encode(x)[1]
        x = F.relu(self.conv5(F.interpolate(x, scale_factor=2, mode="nearest")), inplace=True)
        x = F.relu(self.conv6(F.interpolate(x, scale_factor=2, mode="nearest")), inplace=True)
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
            x = F.relu(layer(x), inplace=True)
            if i == len(self.down) - 2:
                x = self.drop(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        return F.relu(self.down[-1](x), inplace=True), skips

    def encode(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"bottleneck": self._encode(x)[0]}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, skips = self._encode(x)
        x = self.drop_bottleneck(x)
        for level, (up, skip) in enumerate(zip(self.up, reversed(skips))):
            x = torch.cat([skip, F.relu(up(F.interpolate(x, scale_factor=2, mode="nearest")), inplace=True)], dim=1)
            if level < len(self.merge):
                x = F.relu(self.merge[level](x), inplace=True)
        for layer in self.head:
            x = F.relu(layer(x), inplace=True)
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


def save_net(path: str | Path, state_dict: dict, *, name: str, loss: str, image_size: int, **extra) -> None:
    """Write a trained net's weights (CPU tensors) and what it is, atomically; `load_net` reads it back."""
    state = {k: v.detach().cpu() for k, v in state_dict.items()}
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


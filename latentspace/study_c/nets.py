"""Study C's nets: the encoders, decoders and linear heads of Study C, the autoencoder and classifier built from
them, and the initial weights every regime starts from (fixed by architecture and seed alone).

Two architectures, exactly as the original lists them (no output activation on the decoders: the reconstruction
loss is the MSE against the image scaled to [0, 1]):
- fc:   encoder Linear(784, 256) - ReLU - Linear(256, 128) - ReLU; decoder Linear(128, 256) - ReLU - Linear(256, 784)
- conv: encoder Conv(1, 8) - ReLU - MaxPool - Conv(8, 16) - ReLU - MaxPool - Conv(16, 4) - ReLU (latent 4 x 7 x 7);
        decoder ConvT(4, 16, 3, s1, p1) - ReLU - ConvT(16, 8, 3, s2, p1) - ReLU - ConvT(8, 1, 4, s2, p0) (back to 28 x 28)
and a linear head Linear(latent, 10) on the flattened code.

Two changes of form, not of function, make the conv nets faster on one CPU thread (`benchmarks/net_speed.py`:
the autoencoder about 1.1x, the classifier about 1.4x):
every ReLU works in place (it saves an allocation and a pass over memory), and in the conv encoder each ReLU
comes after its max-pool, on a quarter of the values. ReLU is monotone, so max-pool and ReLU commute exactly:
the outputs and the gradients are those of the order above, bit for bit (`original_order=True` builds that
order; tests/study_c/test_study_c.py compares the two). The parameters keep their names and initial values.
"""
from __future__ import annotations

import torch
from torch import nn

from latentspace.constants import STUDY_C_ARCHS, STUDY_C_REGIMES

LATENT_SIZE = {"fc": 128, "conv": 4 * 7 * 7}
NUM_CLASSES = 10


def _pooled(conv: nn.Module, original_order: bool) -> list[nn.Module]:
    """conv - ReLU - MaxPool as the original lists it, or conv - MaxPool - ReLU (the same function and gradient)."""
    if original_order:
        return [conv, nn.ReLU(), nn.MaxPool2d(2)]
    return [conv, nn.MaxPool2d(2), nn.ReLU(inplace=True)]


def build_encoder(arch: str, original_order: bool = False) -> nn.Sequential:
    def relu():
        return nn.ReLU(inplace=not original_order)
    if arch == "fc":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), relu(), nn.Linear(256, 128), relu())
    if arch == "conv":
        return nn.Sequential(*_pooled(nn.Conv2d(1, 8, 3, padding=1), original_order),
                             *_pooled(nn.Conv2d(8, 16, 3, padding=1), original_order),
                             nn.Conv2d(16, 4, 3, padding=1), relu())
    raise ValueError(f"unknown architecture {arch!r}; expected one of {STUDY_C_ARCHS}")


def build_decoder(arch: str, original_order: bool = False) -> nn.Sequential:
    def relu():
        return nn.ReLU(inplace=not original_order)
    if arch == "fc":
        return nn.Sequential(nn.Linear(128, 256), relu(), nn.Linear(256, 784), nn.Unflatten(1, (1, 28, 28)))
    if arch == "conv":
        return nn.Sequential(nn.ConvTranspose2d(4, 16, 3, stride=1, padding=1), relu(),
                             nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1), relu(),
                             nn.ConvTranspose2d(8, 1, 4, stride=2, padding=0))
    raise ValueError(f"unknown architecture {arch!r}; expected one of {STUDY_C_ARCHS}")


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


def initial_autoencoder(arch: str, seed: int, device: torch.device | str = "cpu") -> Autoencoder:
    return Autoencoder(initial("encoder", arch, seed, device), initial("decoder", arch, seed, device))


def initial_classifier(regime: str, arch: str, seed: int, pretrained_encoder: dict | None,
                       device: torch.device | str = "cpu") -> Classifier:
    """The classifier a regime starts from. frozen / fine_tuned: the encoder with the pretrained weights
    `pretrained_encoder` (a state dict; frozen for `frozen`); scratch: the encoder's initial weights, the ones
    the autoencoder started from. The head is the same fresh one in all three."""
    if regime not in STUDY_C_REGIMES:
        raise ValueError(f"unknown regime {regime!r}; expected one of {STUDY_C_REGIMES}")
    encoder = initial("encoder", arch, seed, device)
    if regime != "scratch":
        if pretrained_encoder is None:
            raise ValueError(f"the {regime} regime needs a pretrained encoder")
        encoder.load_state_dict(pretrained_encoder)
    if regime == "frozen":
        encoder.requires_grad_(False)
        encoder.eval()
    return Classifier(encoder, initial("head", arch, seed, device))


def cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """A module's weights as CPU tensors (what a pool run returns: picklable, device-free)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}

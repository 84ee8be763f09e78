"""Study A4 image sets: images with ONE rectangle, N per class, where only some generator factors vary
(the rest sit at the frame centre, mid size and the class-centre colour), drawn by the Study A generator."""
from __future__ import annotations

import zlib

import numpy as np

from latentspace.study_a.rectangles import RectangleSet, generate_rectangles

IMAGE_SETS = ("color", "height", "x", "all")
CLASSES = (1, 2, 3)
# The generator factors each image is described by (columns 0..6 of RectangleSet.params).
FACTORS = ("R", "G", "B", "w", "h", "xc", "yc")


def image_set_fixed(variant: str, image_size: int) -> dict:
    """The generator factors an image-set variant holds fixed: frame centre, mid size, class-centre colour."""
    centre = mid = image_size // 2
    fixed = {
        "color": {"w": mid, "h": mid, "xc": centre, "yc": centre},
        "height": {"color": True, "w": mid, "xc": centre, "yc": centre},
        "x": {"color": True, "w": mid, "h": mid, "yc": centre},
        "all": {},
    }
    if variant not in fixed:
        raise ValueError(f"unknown image set {variant!r}; expected one of {', '.join(IMAGE_SETS)}")
    return fixed[variant]


def image_set_seed(seed: int, variant: str) -> int:
    """A seed per variant, apart from the training/test seeds, stable across runs and platforms (the key still
    says "probe", the sets' former name, so that the same parameters keep drawing the same images)."""
    return (seed + zlib.crc32(f"probe-{variant}".encode())) % 2**31


def make_image_set(variant: str, *, per_class: int, image_size: int, delta: int, seed: int,
                   contained: bool) -> RectangleSet:
    """`per_class` single-rectangle images of each class, through the same generator as the training data."""
    classes = np.repeat(np.array(CLASSES, dtype=np.int64), per_class)
    return generate_rectangles(len(classes), image_size=image_size, delta=delta, seed=image_set_seed(seed, variant),
                               contained=contained, classes=classes, fixed=image_set_fixed(variant, image_size))


def image_labels_and_factors(rs: RectangleSet) -> tuple[np.ndarray, np.ndarray]:
    """Class (1..3) of each image's one rectangle, and its R, G, B, w, h, xc, yc."""
    present = rs.params[:, :, 7] >= 0                     # (N, 3): which class row holds the rectangle
    if not np.all(present.sum(axis=1) == 1):
        raise ValueError("a image must hold exactly one rectangle")
    row = present.argmax(axis=1)
    labels = row + 1
    factors = rs.params[np.arange(len(row)), row, :7].astype(np.float64)
    return labels, factors


def describe_image_set(rs: RectangleSet, variant: str) -> dict:
    """The metrics record of one image set: its size per class and which factors vary (a fixed factor has one
    value per class, min == max; a varied one a range)."""
    labels, factors = image_labels_and_factors(rs)
    return {
        "variant": variant,
        "images": len(labels),
        "per_class": {str(c): int((labels == c).sum()) for c in CLASSES},
        "factor_ranges": {name: {str(c): [int(factors[labels == c, i].min()), int(factors[labels == c, i].max())]
                                 for c in CLASSES}
                          for i, name in enumerate(FACTORS)},
        "distinct_values": {name: int(len(np.unique(factors[:, i]))) for i, name in enumerate(FACTORS)},
    }

"""Names and colours every part of the project shares: one place, imported by the studies, figures and report.

Only plain Python values here (no numpy, no torch), so that any module can import this one cheaply.
"""
from __future__ import annotations

# --- Study A: synthetic rectangles ----------------------------------------------------------------------

# Class-centre colours of the original generator: class k -> (R, G, B).
RECTANGLE_CLASS_CENTRES: dict[int, tuple[int, int, int]] = {1: (42, 127, 212), 2: (127, 212, 42), 3: (212, 42, 127)}
RECTANGLE_CLASSES: tuple[int, ...] = tuple(RECTANGLE_CLASS_CENTRES)
# Segmentation outputs: background, then the rectangle classes, as the metrics files name them.
SEGMENTATION_CLASSES: tuple[str, ...] = ("background", *(f"class{k}" for k in RECTANGLE_CLASSES))
# Label-map colours for figures: black background, then the class-centre colours.
LABEL_COLOURS: tuple[tuple[int, int, int], ...] = ((0, 0, 0), *RECTANGLE_CLASS_CENTRES.values())
# The class-centre colours as matplotlib/HTML hex strings, for scatter plots coloured by class.
CLASS_HEX: dict[int, str] = {k: "#%02x%02x%02x" % rgb for k, rgb in RECTANGLE_CLASS_CENTRES.items()}

def _centre_gaps() -> list[list[int]]:
    """Per pair of classes, how far apart their colour centres are on each channel."""
    centres = list(RECTANGLE_CLASS_CENTRES.values())
    return [[abs(a[c] - b[c]) for c in range(3)] for i, a in enumerate(centres) for b in centres[i + 1:]]


# A class's colour is a box: each channel in [centre - delta, centre + delta]. Two boxes share values on a
# channel once 2 * delta reaches the centres' gap on it, and share colours (overlap in all three channels at
# once) once 2 * delta reaches their largest gap. The centres 42, 127, 212 are 85 apart on the channels where a
# pair is closest and 170 where it is farthest, so:
# - from delta 42.5 (43 for integers) some channel of some pair overlaps: no single channel tells them apart;
CHANNEL_OVERLAP_DELTA: float = min(min(g) for g in _centre_gaps()) / 2
# - from delta 85 the boxes of a pair overlap: some colours belong to either class and colour alone cannot
#   decide the label (the regime the latent analysis is about).
BOX_OVERLAP_DELTA: float = min(max(g) for g in _centre_gaps()) / 2
# The widest delta whose colour ranges all stay inside [0, 255] (the centre 42 is 42 from 0); above it
# the generator clips the ranges.
MAX_UNCLIPPED_DELTA: int = min(min(min(c), 255 - max(c)) for c in RECTANGLE_CLASS_CENTRES.values())
# Pairs of rectangle classes, as the latent separability metrics key them ("1-2", ...).
CLASS_PAIRS: tuple[str, ...] = tuple(f"{a}-{b}" for i, a in enumerate(RECTANGLE_CLASSES)
                                     for b in RECTANGLE_CLASSES[i + 1:])
NETS: tuple[str, ...] = ("nn1", "nn2", "nn3")
# Seconds per training image of each net relative to NN1 (the U-Nets train at about half NN1's images/s on
# one CPU core: metrics/timing/train_segmentation.json). Only the order the pool starts its runs in uses it
# (longest first), never a result.
NET_RELATIVE_COST: dict[str, float] = {"nn1": 1.0, "nn2": 2.0, "nn3": 2.0}
LOSSES: tuple[str, ...] = ("wce", "dice", "focal")

# --- Study B: CIFAR-10 ------------------------------------------------------------------------------------

CIFAR10_CLASSES: tuple[str, ...] = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                                    "truck")

# --- Study C: MNIST pretraining ---------------------------------------------------------------------------

STUDY_C_ARCHS: tuple[str, ...] = ("fc", "conv")
STUDY_C_AUGMENTS: tuple[str, ...] = ("none", "erasing")
STUDY_C_REGIMES: tuple[str, ...] = ("frozen", "fine_tuned", "scratch")
STUDY_C_CELLS: tuple[str, ...] = tuple(f"{a}-{g}" for a in STUDY_C_ARCHS for g in STUDY_C_AUGMENTS)

# --- figure colours --------------------------------------------------------------------------------------

# The three regimes, the pairs of rectangle classes, published values, and this run's two series (the first
# one also the report's accent colour).
REGIME_COLOURS: dict[str, str] = {"frozen": "#8c6bb1", "fine_tuned": "#2f5d8a", "scratch": "#e08214"}
PAIR_COLOURS: dict[str, str] = {"1-2": "#4c72b0", "1-3": "#55a868", "2-3": "#c44e52"}
PUBLISHED_COLOUR = "#c0392b"
MEASURED_COLOURS: tuple[str, str] = ("#2f5d8a", "#e08214")

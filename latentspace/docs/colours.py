"""The `colours` block: the class-centre colours of Study A's rectangles and the deltas at which their colour
ranges clip at 0 or 255, overlap on one channel, and overlap as boxes, all computed in latentspace/constants.py."""
from __future__ import annotations

import math
from pathlib import Path

from latentspace.constants import (BOX_OVERLAP_DELTA, CHANNEL_OVERLAP_DELTA, MAX_UNCLIPPED_DELTA,
                                   RECTANGLE_CLASS_CENTRES)
from latentspace.docs.format import fmt, table


def block_colours(root: Path, args: list[str]) -> str:
    classes = list(RECTANGLE_CLASS_CENTRES)
    rows = [[ch, *(str(RECTANGLE_CLASS_CENTRES[k][i]) for k in classes)] for i, ch in enumerate("RGB")]
    channel = math.ceil(CHANNEL_OVERLAP_DELTA)           # the first integer delta at or past the half gap
    box = math.ceil(BOX_OVERLAP_DELTA)
    return (table(["channel", *(f"class {k}" for k in classes)], rows)
            + f"\nUp to `delta` {MAX_UNCLIPPED_DELTA} every colour range lies inside [0, 255]; above it the ranges "
              f"are clipped. From `delta` {channel} the ranges of two classes share values on some channel, so no "
              f"single channel tells every pair apart. From `delta` {fmt(box)} the colour boxes of a pair overlap "
              "in all three channels at once: some colours belong to either class, and colour alone cannot decide "
              "a pixel's label. (latentspace/constants.py computes these from the centres.)\n")

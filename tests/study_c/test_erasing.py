"""The batched RandomErasing against torchvision's own RandomErasing."""
import math

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp
from torchvision import transforms
from torchvision.transforms import functional as TF

from latentspace.study_c.erasing import erasing, erasing_boxes, random_erasing

SCALE, RATIO = (0.1, 0.15), (0.3, 3.3)


def _torchvision_boxes(n: int, height: int, width: int, seed: int) -> np.ndarray:
    torch.manual_seed(seed)
    img = torch.zeros(1, height, width)
    return np.array([transforms.RandomErasing.get_params(img, SCALE, RATIO, value=[0.0])[:4] for _ in range(n)])


def _our_boxes(n: int, height: int, width: int, seed: int) -> np.ndarray:
    gen = torch.Generator().manual_seed(seed)
    return torch.stack(erasing_boxes(n, height, width, gen, scale=SCALE, ratio=RATIO), 1).numpy()


@pytest.mark.parametrize("height, width", [(28, 28), (32, 20)])
def test_box_distribution_matches_torchvision_get_params(height, width):
    n = 4000
    ours, theirs = _our_boxes(n, height, width, 1), _torchvision_boxes(n, height, width, 2)
    area = height * width
    for name, f in (("area fraction", lambda b: b[:, 2] * b[:, 3] / area),
                    ("aspect h/w", lambda b: b[:, 2] / b[:, 3]),
                    ("height", lambda b: b[:, 2]), ("width", lambda b: b[:, 3]),
                    # position relative to the room the box leaves: uniform over the places where it fits
                    ("top", lambda b: (b[:, 0] + 0.5) / (height - b[:, 2] + 1)),
                    ("left", lambda b: (b[:, 1] + 0.5) / (width - b[:, 3] + 1))):
        stat, p = ks_2samp(f(ours), f(theirs))
        assert p > 1e-3, f"{name}: KS statistic {stat:.3f}, p = {p:.2g}"
    # Same support: every (h, w) torchvision draws often, we draw too, at a similar rate.
    pairs_ours = {tuple(r) for r in ours[:, 2:]}
    values, counts = np.unique(theirs[:, 2:], axis=0, return_counts=True)
    assert all(tuple(v) in pairs_ours for v, c in zip(values, counts) if c >= 20)


def test_every_box_fits_and_its_area_is_a_rounded_draw_from_scale():
    height = width = 28
    top, left, h, w = (t.numpy() for t in erasing_boxes(20000, height, width, torch.Generator().manual_seed(0)))
    assert (h >= 1).all() and (w >= 1).all() and (h < height).all() and (w < width).all()
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= height).all() and (left + w <= width).all()
    # h and w are rounded from sqrt(a * r) and sqrt(a / r): the drawn area a lies in [(h-.5)(w-.5), (h+.5)(w+.5)],
    # which must meet [0.1, 0.15] of the image.
    lo, hi = SCALE[0] * height * width, SCALE[1] * height * width
    assert ((h - 0.5) * (w - 0.5) <= hi).all() and ((h + 0.5) * (w + 0.5) >= lo).all()
    assert 0.1 <= np.median(h * w) / (height * width) <= 0.15
    ratio = h / w
    assert ratio.min() < 0.45 and ratio.max() > 2.5          # the whole log-uniform range is used


def test_large_images_erase_between_10_and_15_percent():
    x = torch.ones(300, 1, 224, 224)
    out = random_erasing(x, torch.Generator().manual_seed(3), scale=SCALE, ratio=RATIO)
    fractions = (out == 0).float().mean(dim=(1, 2, 3))
    assert fractions.min() >= 0.1 - 0.003 and fractions.max() <= 0.15 + 0.003


def test_each_image_gets_one_rectangle_of_zeros_in_all_channels():
    x = torch.rand(300, 3, 28, 28) + 0.5          # no zero pixels before erasing
    gen = torch.Generator().manual_seed(5)
    out = random_erasing(x, gen)
    erased = out == 0
    assert (erased.all(1) == erased.any(1)).all()  # all channels alike
    for i in range(len(x)):
        rows, cols = torch.nonzero(erased[i, 0], as_tuple=True)
        assert len(rows) > 0
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert box == len(rows), "the erased pixels of one image are not one filled rectangle"
        frac = len(rows) / (28 * 28)
        assert 0.08 < frac < 0.17
    kept = ~erased
    assert torch.equal(out[kept], x[kept])        # nothing else changes
    assert not torch.equal(out, x) and torch.equal(x.min() > 0, torch.tensor(True))   # the input is untouched


def test_pixels_equal_torchvision_erase_for_the_same_boxes():
    x = torch.rand(64, 3, 32, 32)
    gen = torch.Generator().manual_seed(11)
    top, left, h, w = erasing_boxes(len(x), 32, 32, gen)
    out = random_erasing(x, torch.Generator().manual_seed(11))
    for i in range(len(x)):
        expected = TF.erase(x[i], int(top[i]), int(left[i]), int(h[i]), int(w[i]), torch.tensor(0.0))
        assert torch.equal(out[i], expected)


def test_when_no_candidate_fits_the_image_is_unchanged_like_torchvision():
    # A box of 95-100 % of the area with aspect 3 never fits inside a square: torchvision returns the image.
    x = torch.rand(50, 1, 28, 28)
    out = random_erasing(x, torch.Generator().manual_seed(0), scale=(0.95, 1.0), ratio=(3.0, 3.3))
    assert torch.equal(out, x)
    i, j, h, w, _ = transforms.RandomErasing.get_params(x[0], (0.95, 1.0), (3.0, 3.3), value=[0.0])
    assert (h, w) == (28, 28)   # torchvision's "no box": erase the whole image with itself


def test_seeded_and_vectorised_augment_is_reproducible():
    aug = erasing(scale=SCALE, ratio=RATIO)
    x = torch.rand(16, 1, 28, 28)
    a = aug(x, torch.Generator().manual_seed(7))
    b = aug(x, torch.Generator().manual_seed(7))
    c = aug(x, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("scale, ratio", [((0.2, 0.1), RATIO), ((0.0, 0.1), RATIO), ((0.1, 1.5), RATIO),
                                          (SCALE, (0.0, 1.0)), (SCALE, (3.0, 1.0))])
def test_bad_settings_are_refused(scale, ratio):
    with pytest.raises(ValueError, match="scale|ratio"):
        erasing(scale=scale, ratio=ratio)


def test_log_uniform_aspect():
    # torchvision draws log(aspect) uniformly: its mean is the mean of the log bounds.
    _, _, h, w = erasing_boxes(20000, 224, 224, torch.Generator().manual_seed(1))
    log_aspect = torch.log(h.double() / w.double())
    assert abs(float(log_aspect.mean()) - (math.log(0.3) + math.log(3.3)) / 2) < 0.03

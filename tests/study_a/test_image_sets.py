"""Study A4 image sets: one rectangle per image, the right factors fixed per variant, reproducible."""
import numpy as np
import pytest

from latentspace.study_a import image_sets
from latentspace.study_a.rectangles import CLASS_COLOURS

SIZE = 32


def make(variant, seed=0, per_class=40):
    return image_sets.make_image_set(variant, per_class=per_class, image_size=SIZE, delta=15, seed=seed, contained=True)


@pytest.mark.parametrize("variant, varied", [
    ("color", {"R", "G", "B"}), ("height", {"h"}), ("x", {"xc"}), ("all", set(image_sets.FACTORS))])
def test_each_variant_varies_only_its_factors(variant, varied):
    rs = make(variant)
    record = image_sets.describe_image_set(rs, variant)
    assert record["images"] == 120 and record["per_class"] == {"1": 40, "2": 40, "3": 40}
    moving = {f for f, per_class in record["factor_ranges"].items() if any(lo != hi for lo, hi in per_class.values())}
    assert moving == varied
    labels, factors = image_sets.image_labels_and_factors(rs)
    assert np.array_equal(np.bincount(labels, minlength=4)[1:], [40, 40, 40])
    if "R" not in varied:   # a fixed colour is the class-centre colour
        for c in image_sets.CLASSES:
            assert np.all(factors[labels == c, :3] == CLASS_COLOURS[c - 1])


def test_one_rectangle_per_image_inside_the_frame():
    rs = make("all")
    labels, factors = image_sets.image_labels_and_factors(rs)
    for i, c in enumerate(labels):
        # Inside the frame: the full mask keeps all w x h pixels; one class on the background.
        assert rs.masks[i, c - 1].sum() == factors[i, 3] * factors[i, 4]
        assert set(np.unique(rs.labels[i])) == {0, c}


def test_variants_are_reproducible_and_drawn_apart():
    assert np.array_equal(make("all").images, make("all").images)
    assert not np.array_equal(make("all", seed=0).images, make("all", seed=1).images)
    assert image_sets.image_set_seed(0, "x") != image_sets.image_set_seed(0, "height")
    with pytest.raises(ValueError, match="unknown image set"):
        image_sets.image_set_fixed("colour", SIZE)

"""Study A2 EDA statistics on hand-made images whose answers are known, and the figures."""
import numpy as np
import pytest

from latentspace.study_a import eda
from latentspace.study_a import rectangles as rect
from latentspace.study_a.rectangles import RectangleSet, generate_rectangles, render

SIZE = 8


def _hand_made() -> RectangleSet:
    # Columns R, G, B, w, h, xc, yc, order.
    params = np.array([
        # Image 0: class 2 covers a 2x2 corner of class 1; class 3 sits alone in the bottom-right corner.
        [[10, 20, 30, 4, 4, 2, 2, 0], [40, 50, 60, 4, 4, 4, 4, 1], [70, 80, 90, 2, 2, 7, 7, 2]],
        # Image 1: class 2 fills the frame; class 1 (clipped to its top-left 4x1) is drawn last and
        # covers class 3's single pixel, so class 3 is fully hidden.
        [[12, 22, 32, 8, 2, 0, 0, 2], [44, 54, 64, 8, 8, 4, 4, 0], [76, 86, 96, 1, 1, 0, 0, 1]],
    ], dtype=np.int16)
    images, labels, masks = render(params, SIZE)
    meta = {"n": 2, "image_size": SIZE, "delta": 3, "seed": 0, "contained": False, "clipped_colours": False}
    return RectangleSet(images=images, labels=labels, masks=masks, params=params, meta=meta)


def test_statistics_of_hand_made_images():
    metrics, hist = eda.sample_statistics(_hand_made())
    area = SIZE * SIZE
    c1, c2, c3 = (metrics["classes"][f"class_{k}"] for k in (1, 2, 3))
    # Full areas 16, 4 | 16, 64 | 4, 1; visible 12, 4 | 16, 60 | 4, 0.
    assert c1["full_area_fraction"] == pytest.approx((16 + 4) / 2 / area, abs=1e-5)
    assert c1["visible_area_fraction"] == pytest.approx((12 + 4) / 2 / area, abs=1e-5)
    assert c1["hidden_fraction"] == pytest.approx(1 - 16 / 20, abs=1e-5)
    assert c2["visible_area_fraction"] == pytest.approx((16 + 60) / 2 / area, abs=1e-5)
    assert c2["hidden_fraction"] == pytest.approx(1 - 76 / 80, abs=1e-5)
    assert c3["hidden_fraction"] == pytest.approx(1 - 4 / 5, abs=1e-5)
    assert c3["fully_hidden_rate"] == 0.5 and c1["fully_hidden_rate"] == 0.0
    assert metrics["background_fraction"] == pytest.approx((64 - 32 + 0) / 2 / area, abs=1e-5)
    assert metrics["overlap_rate"] == {"1-2": 1.0, "1-3": 0.5, "2-3": 0.5, "all_three": 0.5}
    assert c1["colour"]["R"] == {"min": 10, "max": 12, "mean": 11.0, "std": 1.0}
    assert metrics["geometry"]["clipped_fraction"] == pytest.approx(1 / 6, abs=1e-5)
    assert metrics["geometry"]["w"]["max"] == 8 and metrics["geometry"]["xc"]["min"] == 0
    assert hist["colour"]["class_3"]["B"][90] == 1 and sum(hist["colour"]["class_3"]["B"]) == 2
    assert hist["geometry"]["w"][4] == 2 and sum(hist["geometry"]["w"]) == 6


def test_counts_do_not_depend_on_the_chunk_size(monkeypatch):
    rs = generate_rectangles(200, image_size=SIZE, delta=10, seed=0, contained=False)
    whole = eda.pixel_counts(rs)
    monkeypatch.setattr(rect, "CHUNK_PIXELS", 3 * 3 * SIZE * SIZE)
    chunked = eda.pixel_counts(rs)
    assert all(np.array_equal(whole[k], chunked[k]) for k in whole)
    # Visible pixels of an image add up to the frame.
    assert (whole["visible"].sum(axis=1) == SIZE * SIZE).all()


def test_one_rectangle_sets_report_absent_classes_as_absent():
    rs = generate_rectangles(30, image_size=SIZE, delta=0, seed=0, contained=True, classes=np.full(30, 2))
    metrics, _ = eda.sample_statistics(rs)
    assert metrics["classes"]["class_1"]["images"] == 0 and metrics["classes"]["class_1"]["colour"] is None
    assert metrics["classes"]["class_2"]["hidden_fraction"] == 0.0
    assert metrics["overlap_rate"]["1-2"] == 0.0


def test_figures_render(tmp_path):
    from latentspace.core.io import save_figure
    rs = {name: generate_rectangles(50, image_size=SIZE, delta=50, seed=s, contained=c)
          for s, (name, c) in enumerate((("eda_free", False), ("eda_contained", True)))}
    stats = {name: eda.sample_statistics(r) for name, r in rs.items()}
    metrics = {name: m for name, (m, _) in stats.items()}
    histograms = {name: h for name, (_, h) in stats.items()}
    figures = {"geometry": eda.geometry_figure(histograms), "areas": eda.areas_figure(metrics),
               "colours": eda.colours_figure(histograms, 50),
               "examples": eda.examples_figure(rs["eda_free"], 3, "examples")}
    for name, fig in figures.items():
        save_figure(tmp_path / f"{name}.png", fig)
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


def test_statistics_of_a_sample_stored_as_its_table_equal_those_of_its_pixels(tmp_path):
    kw = dict(image_size=16, delta=15, seed=2, contained=False)
    rect.write_rectangles(tmp_path / "pixels", 120, **kw)
    rect.write_parameters(tmp_path / "table", 120, **kw)
    assert eda.sample_statistics(rect.load_rectangles(tmp_path / "pixels")) == \
        eda.sample_statistics(rect.load_parameters(tmp_path / "table"))
    figure = eda.examples_figure(rect.load_parameters(tmp_path / "table"), 3, "examples")
    assert len(figure.axes) == 5 * 3

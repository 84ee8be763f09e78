"""The Study A1 rectangle generator: colours, geometry, containment, label maps, parameter table, files."""
import numpy as np
import pytest

from latentspace.study_a import rectangles as rect
from latentspace.core.errors import UserError
from latentspace.study_a.rectangles import (
    CLASS_COLOURS,
    RectangleSet,
    generate_rectangles,
    load_rectangles,
    save_rectangles,
    write_rectangles,
)

SIZE = 16


def _extent(masks: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First and one-past-last covered index of each full mask along rows (axis=2) or columns (axis=3),
    and whether the mask covers anything."""
    covered = masks.any(axis=axis)                               # (N, 3, size)
    size = covered.shape[-1]
    first = covered.argmax(axis=-1)
    stop = size - covered[..., ::-1].argmax(axis=-1)
    return first, stop, covered.any(axis=-1)


@pytest.mark.parametrize("delta", [0, 15, 25, 42])
def test_colours_fill_the_inclusive_range_and_never_leave_it(delta):
    rs = generate_rectangles(3000, image_size=4, delta=delta, seed=delta, contained=False)
    colours = rs.params[:, :, :3].astype(int)                   # (N, class, channel)
    assert np.array_equal(colours.min(axis=0), CLASS_COLOURS - delta)
    assert np.array_equal(colours.max(axis=0), CLASS_COLOURS + delta)
    assert not rs.meta["clipped_colours"]
    # The pixels agree: every visible pixel of class k has a colour inside class k's range.
    for k in (1, 2, 3):
        pixels = rs.images[rs.labels == k].astype(int)
        assert len(pixels) and (np.abs(pixels - CLASS_COLOURS[k - 1]) <= delta).all()


def test_delta_above_42_clips_the_range_to_0_255_and_says_so(capsys):
    rs = generate_rectangles(3000, image_size=4, delta=60, seed=1, contained=False)
    colours = rs.params[:, :, :3].astype(int)
    lo, hi = np.clip(CLASS_COLOURS - 60, 0, 255), np.clip(CLASS_COLOURS + 60, 0, 255)
    assert np.array_equal(colours.min(axis=0), lo) and np.array_equal(colours.max(axis=0), hi)
    assert colours.min() == 0 and colours.max() == 255
    assert rs.meta["clipped_colours"] is True
    notice = capsys.readouterr().err.strip().splitlines()
    assert len(notice) == 1 and "delta=60" in notice[0] and "clipped" in notice[0]
    generate_rectangles(10, image_size=4, delta=42, seed=1, contained=False)
    assert capsys.readouterr().err == ""


def test_contained_sample_lies_inside_the_frame_and_free_sample_has_clipped_rectangles():
    for contained in (True, False):
        rs = generate_rectangles(2000, image_size=SIZE, delta=15, seed=2, contained=contained)
        p = rs.params.astype(int)
        rows0, rows1, _ = _extent(rs.masks, axis=3)
        cols0, cols1, _ = _extent(rs.masks, axis=2)
        unclipped = (cols1 - cols0 == p[:, :, rect.W]) & (rows1 - rows0 == p[:, :, rect.H])
        if contained:
            assert unclipped.all()
        else:
            assert (~unclipped).mean() > 0.5   # about 3 in 4 rectangles touch the border when free


def test_rejection_sampling_gives_the_uniform_distribution_conditioned_on_containment():
    # Uniform over the (w, xc) pairs that fit: P(w) is proportional to the number of fitting centres,
    # size - w + 1. Clamping or shifting instead of redrawing would give another shape.
    size = 8
    rs = generate_rectangles(20000, image_size=size, delta=0, seed=3, contained=True)
    w = rs.params[:, :, rect.W].ravel()
    observed = np.bincount(w, minlength=size + 1)[1:] / len(w)
    expected = np.arange(size, 0, -1) / np.arange(size, 0, -1).sum()
    assert np.abs(observed - expected).max() < 0.01


def test_label_map_is_the_top_most_full_mask_and_masks_are_full_rectangles():
    rs = generate_rectangles(500, image_size=SIZE, delta=15, seed=4, contained=False)
    order = rs.params[:, :, rect.ORDER].astype(int)
    assert (np.sort(order, axis=1) == [0, 1, 2]).all()          # a permutation per image
    # Top-most: among the masks covering a pixel, the one drawn last.
    depth = rs.masks * (order + 1)[:, :, None, None]
    expected = np.where(depth.max(axis=1) > 0, depth.argmax(axis=1) + 1, 0)
    assert np.array_equal(rs.labels, expected)
    rows0, rows1, _ = _extent(rs.masks, axis=3)
    cols0, cols1, _ = _extent(rs.masks, axis=2)
    assert np.array_equal(rs.masks.sum(axis=(2, 3)), (rows1 - rows0) * (cols1 - cols0))
    # Draw orders vary, so every class is on top somewhere.
    assert {tuple(np.argsort(o)) for o in order} == {(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)}


def test_parameter_table_matches_the_pixels():
    rs = generate_rectangles(500, image_size=SIZE, delta=30, seed=5, contained=False)
    p = rs.params.astype(int)
    # Extent: the covered rows/columns are [c - e//2, c - e//2 + e) clipped to the frame.
    for (start, stop, _), extent, centre in ((_extent(rs.masks, axis=2), rect.W, rect.XC),
                                             (_extent(rs.masks, axis=3), rect.H, rect.YC)):
        lo = p[:, :, centre] - p[:, :, extent] // 2
        assert np.array_equal(start, np.clip(lo, 0, SIZE))
        assert np.array_equal(stop, np.clip(lo + p[:, :, extent], 0, SIZE))
    # Colour: every visible pixel of class k shows the table's colour of class k.
    images, labels = rs.images.astype(int), rs.labels
    for k in (1, 2, 3):
        idx = np.nonzero(labels == k)
        assert np.array_equal(images[idx], p[idx[0], k - 1, :3])
    assert (images[labels == 0] == 0).all()                     # black background


def test_one_rectangle_per_image_and_fixed_factors():
    classes = np.repeat([1, 2, 3], 40)
    rs = generate_rectangles(len(classes), image_size=SIZE, delta=20, seed=6, contained=True, classes=classes,
                             fixed={"color": True, "w": 6, "yc": 8})
    present = rs.params[:, :, rect.ORDER] >= 0
    assert np.array_equal(present.argmax(axis=1) + 1, classes) and (present.sum(axis=1) == 1).all()
    assert (rs.params[~present] == -1).all()
    row = rs.params[np.arange(len(classes)), classes - 1].astype(int)
    assert np.array_equal(row[:, :3], CLASS_COLOURS[classes - 1])
    assert (row[:, rect.W] == 6).all() and (row[:, rect.YC] == 8).all() and (row[:, rect.ORDER] == 0).all()
    assert len(np.unique(row[:, rect.XC])) > 3 and len(np.unique(row[:, rect.H])) > 3
    assert set(np.unique(rs.labels[classes == 2])) == {0, 2}
    assert not rs.masks[np.arange(len(classes))[:, None], np.nonzero(~present)[1].reshape(-1, 2)].any()
    assert rs.meta["one_per_image"] and rs.meta["fixed"] == {"color": True, "w": 6, "yc": 8}
    with pytest.raises(ValueError, match="cannot lie inside"):
        generate_rectangles(3, image_size=SIZE, delta=0, seed=0, contained=True, classes=[1, 2, 3],
                            fixed={"w": 10, "xc": 1})
    with pytest.raises(ValueError, match="unknown fixed factor"):
        generate_rectangles(3, image_size=SIZE, delta=0, seed=0, contained=True, fixed={"colour": True})


def _file_bytes(directory) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(directory.iterdir())}


def test_files_are_deterministic_and_load_back(tmp_path, monkeypatch):
    kw = dict(image_size=SIZE, delta=15, contained=True)
    write_rectangles(tmp_path / "a", 300, seed=7, **kw)
    write_rectangles(tmp_path / "b", 300, seed=7, **kw)
    write_rectangles(tmp_path / "c", 300, seed=8, **kw)
    a = _file_bytes(tmp_path / "a")
    assert a == _file_bytes(tmp_path / "b")
    assert set(a) == {"images.npy", "labels.npy", "masks.npy", "params.npy", "meta.json"}
    c = _file_bytes(tmp_path / "c")
    assert all(a[name] != c[name] for name in a)
    # In memory + save gives the very same bytes, whatever the chunk size.
    monkeypatch.setattr(rect, "CHUNK_PIXELS", 7 * 3 * SIZE * SIZE)
    rs = generate_rectangles(300, seed=7, **kw)
    save_rectangles(tmp_path / "d", rs)
    assert _file_bytes(tmp_path / "d") == a
    loaded = load_rectangles(tmp_path / "a")
    for name in ("images", "labels", "masks", "params"):
        assert np.array_equal(getattr(loaded, name), getattr(rs, name)), name
    assert loaded.masks.dtype == bool and isinstance(loaded.images, np.memmap)
    assert loaded.meta == rs.meta
    assert load_rectangles(tmp_path / "a", mmap=False, with_masks=False).masks is None


def test_a_damaged_sample_is_a_one_line_user_error(tmp_path):
    write_rectangles(tmp_path / "s", 5, image_size=8, delta=0, seed=0, contained=False)
    (tmp_path / "s" / "labels.npy").unlink()
    with pytest.raises(UserError, match=r"labels.npy: missing; rerun the generate_rectangles stage") as e:
        load_rectangles(tmp_path / "s")
    assert "\n" not in str(e.value)
    write_rectangles(tmp_path / "t", 5, image_size=8, delta=0, seed=0, contained=False)
    (tmp_path / "t" / "masks.npy").write_bytes(b"not an array")
    with pytest.raises(UserError, match=r"masks.npy: unreadable"):
        load_rectangles(tmp_path / "t")
    write_rectangles(tmp_path / "u", 5, image_size=8, delta=0, seed=0, contained=False)
    np.save(tmp_path / "u" / "params.npy", np.zeros((4, 3, 8), dtype=np.int16))
    with pytest.raises(UserError, match=r"params.npy: shape \(4, 3, 8\) does not match meta.json"):
        load_rectangles(tmp_path / "u")


def test_rectangle_set_holds_the_contracted_types():
    rs = generate_rectangles(4, image_size=8, delta=5, seed=0, contained=False)
    assert isinstance(rs, RectangleSet) and len(rs) == 4
    assert rs.images.shape == (4, 8, 8, 3) and rs.images.dtype == np.uint8
    assert rs.labels.shape == (4, 8, 8) and rs.labels.dtype == np.uint8
    assert rs.masks.shape == (4, 3, 8, 8) and rs.masks.dtype == bool
    assert rs.params.shape == (4, 3, 8) and rs.params.dtype == np.int16
    assert {"delta", "image_size", "seed", "contained", "clipped_colours", "n"} <= set(rs.meta)


def test_a_sample_stored_as_its_table_loads_as_the_same_pixels(tmp_path):
    from latentspace.study_a.rectangles import load_parameters, write_parameters
    kw = dict(image_size=16, delta=20, seed=5, contained=False)
    write_rectangles(tmp_path / "pixels", 50, **kw)
    meta = write_parameters(tmp_path / "table", 50, **kw)
    assert {p.name for p in (tmp_path / "table").iterdir()} == {"params.npy", "meta.json"}
    assert meta["pixels_stored"] is False and meta["n"] == 50
    full, painted = load_rectangles(tmp_path / "pixels"), load_rectangles(tmp_path / "table")
    for name in ("images", "labels", "masks", "params"):
        assert np.array_equal(getattr(full, name), getattr(painted, name))
    table = load_parameters(tmp_path / "table")
    assert table.images is None and np.array_equal(table.params, full.params)

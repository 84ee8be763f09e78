import numpy as np
import pytest
import torch

from latentspace import cifar_autoencoders as cae
from latentspace.core.errors import UserError
from latentspace.training.engine import evaluate_loss


def colour_images(n: int, num_classes: int, seed: int, size: int = 32):
    """Tiny labelled images: a class-specific colour plus a random bright square and noise, so the classes are
    separable and the images have structure an autoencoder can learn."""
    palette = np.random.default_rng(99).integers(30, 226, (num_classes, 3))   # the same in every split
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, n)
    x = np.broadcast_to(palette[y][:, :, None, None], (n, 3, size, size)).astype(np.int16).copy()
    for i in range(n):
        r, c = rng.integers(0, size - 8, 2)
        x[i, :, r:r + 8, c:c + 8] = 255
    x += rng.integers(-10, 11, x.shape)
    return np.clip(x, 0, 255).astype(np.uint8), y.astype(np.int64)


def tiny_splits(num_classes: int = 4, n_train: int = 96, n_val: int = 32, n_test: int = 40):
    arrays = {}
    for split, n, seed in (("train", n_train, 0), ("val", n_val, 1), ("test", n_test, 2)):
        arrays[f"x_{split}"], arrays[f"y_{split}"] = colour_images(n, num_classes, seed)
    return arrays


@pytest.mark.parametrize("hidden", [16, 64])
def test_shapes_and_output_range(hidden):
    model = cae.build_autoencoder(hidden, (4, 8))
    x = torch.rand(5, 3, 32, 32)
    assert model.encode(x).shape == (5, hidden)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (5, 3, 32, 32)
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    convs = [m for m in model.encoder if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 8]
    assert model.encoder[-1].in_features == 8 * 16 * 16


def test_training_really_reduces_reconstruction_loss():
    data = cae.cifar_on_device(tiny_splits(), torch.device("cpu"))
    torch.manual_seed(0)
    model = cae.build_autoencoder(16, (8, 16))
    before = evaluate_loss(model, data["x_test"], None, cae.reconstruction_mse)
    result = cae.train_autoencoder(model, data["x_train"], data["x_val"], data["x_test"], max_epochs=8,
                                   patience=8, batch_size=16)
    assert len(result.fit.history) == 8 and result.fit.max_epochs == 8
    assert all("val_loss" in r for r in result.fit.history)
    assert result.test_mse < 0.5 * before
    assert result.fit.history[-1]["train_loss"] < result.fit.history[0]["train_loss"]
    assert result.val_mse == min(r["val_loss"] for r in result.fit.history)


def test_probe_leaves_encoder_bit_identical_and_confusion_counts_the_test_set():
    arrays = tiny_splits()
    data = cae.cifar_on_device(arrays, torch.device("cpu"))
    torch.manual_seed(0)
    model = cae.build_autoencoder(32, (4, 8))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    names = ("a", "b", "c", "d")
    codes = cae.encode_splits(model, data)
    labels = {s: data[f"y_{s}"] for s in ("train", "val", "test")}
    result = cae.train_probe(codes, labels, max_epochs=15, patience=15, batch_size=16, lr=1e-2, class_names=names,
                             standardize=True)
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert result.confusion.shape == (4, 4)
    assert result.confusion.sum() == len(arrays["y_test"])
    assert np.array_equal(result.confusion.sum(axis=1), np.bincount(arrays["y_test"], minlength=4))
    assert len(result.fit.history) == 15 and "train_accuracy" in result.fit.history[0]
    assert result.val_accuracy == result.fit.history[result.fit.best_epoch]["val_accuracy"]
    # The colour classes stay separable through a random encoder: the probe must beat chance (0.25) by far.
    assert result.test_accuracy > 0.6
    assert set(result.report["per_class"]) == set(names)
    rows = cae.confusion_rows(arrays["y_test"], result.test_predictions, names)
    assert len(rows) == len(arrays["y_test"]) and set(rows[0]) == {"actual", "predicted"}
    counted = sum(r["actual"] == "b" and r["predicted"] == "b" for r in rows)
    assert counted == result.confusion[1, 1]


def test_save_and_load_round_trip(tmp_path):
    model = cae.build_autoencoder(24, (4, 8)).eval()
    path = tmp_path / "ae.pt"
    cae.save_autoencoder(path, model)
    loaded = cae.load_autoencoder(path)
    x = torch.rand(3, 3, 32, 32)
    assert loaded.hidden == 24 and loaded.channels == (4, 8) and not loaded.training
    assert torch.equal(model(x), loaded(x))


def test_bad_model_file_is_a_one_line_user_error(tmp_path):
    bad = tmp_path / "ae.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not a Study B autoencoder checkpoint"):
        cae.load_autoencoder(bad)
    with pytest.raises(UserError, match="not found"):
        cae.load_autoencoder(tmp_path / "missing.pt")


def test_subsample_is_reproducible_and_zero_means_all():
    a = cae.subsample_indices(100, 10, seed=3)
    assert torch.equal(a, cae.subsample_indices(100, 10, seed=3))
    assert len(set(a.tolist())) == 10 and not torch.equal(a, cae.subsample_indices(100, 10, seed=4))
    assert torch.equal(cae.subsample_indices(100, 0, seed=3), torch.arange(100))
    data = cae.cifar_on_device(tiny_splits(), torch.device("cpu"), train_size=20)
    assert data["x_train"].shape == (20, 3, 32, 32) and data["y_train"].dtype == torch.int64


def test_channels_last_images_are_accepted_and_wrong_ones_rejected():
    x, _ = colour_images(4, 2, 0)
    assert np.array_equal(cae.images_nchw(x.transpose(0, 2, 3, 1)), x)
    with pytest.raises(UserError, match="uint8"):
        cae.images_nchw(x.astype(np.float32))


def test_figures_render(tmp_path):
    from latentspace.core.io import save_figure
    x, y = colour_images(4, 2, 0)
    save_figure(tmp_path / "grid.png", cae.reconstruction_figure(x, x / 255.0, [str(v) for v in y], 16))
    save_figure(tmp_path / "cm.png", cae.confusion_figure(np.eye(3, dtype=int) * 5, ("a", "b", "c"), "t"))
    rows = [{"hidden": h, "test_mse": 1 / h, "probe_train_accuracy": 0.5, "probe_test_accuracy": 0.4}
            for h in (16, 32)]
    save_figure(tmp_path / "summary.png", cae.summary_figure(rows))
    assert all((tmp_path / f).stat().st_size > 1000 for f in ("grid.png", "cm.png", "summary.png"))


def test_jpeg_roundtrip_keeps_shape_and_changes_pixels_a_little():
    x, _ = colour_images(4, 2, seed=0)
    once = cae.jpeg_roundtrip(x, 75)
    assert once.shape == x.shape and once.dtype == np.uint8
    diff = np.abs(once.astype(int) - x.astype(int)).mean()
    assert 0 < diff < 20
    assert np.abs(cae.jpeg_roundtrip(x, 95).astype(int) - x.astype(int)).mean() < diff


def test_validation_subset_and_run_tags():
    data = cae.cifar_on_device(tiny_splits(), torch.device("cpu"), val_size=10, seed=3)
    assert len(data["x_val"]) == len(data["y_val"]) == 10 and len(data["x_test"]) == 40
    assert cae.run_tag(256) == "256" and cae.run_tag(256, 1) == "256-s1"


def test_a_second_jpeg_round_trip_on_a_shifted_grid_compresses_afresh():
    x, _ = colour_images(8, 2, seed=1)
    once = cae.jpeg_roundtrip(x, 75, grid_shift=0)
    same_grid = np.abs(cae.jpeg_roundtrip(once, 75, grid_shift=0).astype(int) - once.astype(int)).mean()
    shifted = np.abs(cae.jpeg_roundtrip(once, 75, grid_shift=4).astype(int) - once.astype(int)).mean()
    assert shifted > 3 * same_grid

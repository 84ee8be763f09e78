import numpy as np
import pytest
import torch

from latentspace.study_b import autoencoder as cae
from latentspace.study_b import figures
from latentspace.study_b import probe as pr
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
                                   patience=8, min_delta=0.0, batch_size=16, lr=1e-3)
    assert len(result.fit.history) == 8 and result.fit.max_epochs == 8
    assert all("val_loss" in r for r in result.fit.history)
    assert result.test_mse < 0.5 * before
    assert result.fit.history[-1]["train_loss"] < result.fit.history[0]["train_loss"]
    assert result.val_mse == min(r["val_loss"] for r in result.fit.history)


def test_pool_before_relu_trains_bit_identically_to_the_original_order():
    """The encoder runs MaxPool - ReLU - ReLU with in-place ReLUs; the original's ReLU - MaxPool - ReLU with plain
    ReLUs gives the same losses and weights after training, bit for bit."""
    data = cae.cifar_on_device(tiny_splits(), torch.device("cpu"))
    models = []
    for original_order in (False, True):
        torch.manual_seed(0)
        models.append(cae.ConvAutoencoder(16, (8, 16), original_order=original_order).to(memory_format=torch.channels_last))
    fast, spec = models
    results = [cae.train_autoencoder(m, data["x_train"], data["x_val"], data["x_test"], max_epochs=3,
                                     patience=3, min_delta=0.0, batch_size=16, lr=1e-3) for m in (fast, spec)]
    assert [r["val_loss"] for r in results[0].fit.history] == [r["val_loss"] for r in results[1].fit.history]
    assert results[0].test_mse == results[1].test_mse
    assert all(torch.equal(a, b) for a, b in zip(fast.state_dict().values(), spec.state_dict().values()))


def test_probe_leaves_encoder_bit_identical_and_confusion_counts_the_test_set():
    arrays = tiny_splits()
    data = cae.cifar_on_device(arrays, torch.device("cpu"))
    torch.manual_seed(0)
    model = cae.build_autoencoder(32, (4, 8))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    names = ("a", "b", "c", "d")
    codes = cae.encode_splits(model, data)
    labels = {s: data[f"y_{s}"] for s in ("train", "val", "test")}
    result = pr.train_probe(codes, labels, max_epochs=15, patience=15, min_delta=0.0, batch_size=16, lr=1e-2,
                            class_names=names, standardize=True)
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
    rows = pr.confusion_rows(arrays["y_test"], result.test_predictions, names)
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
    save_figure(tmp_path / "grid.png", figures.reconstruction_figure(x, x / 255.0, [str(v) for v in y], 16))
    save_figure(tmp_path / "cm.png", figures.confusion_figure(np.eye(3, dtype=int) * 5, ("a", "b", "c"), "t"))
    rows = [{"hidden": h, "test_mse": 1 / h, "probe_train_accuracy": 0.5, "probe_test_accuracy": 0.4}
            for h in (16, 32)]
    save_figure(tmp_path / "summary.png", figures.summary_figure(rows))
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


# --- pooled runs ------------------------------------------------------------------------------------------

TINY_P = {"hidden_sizes": [4, 8], "repeat_sizes": [8], "repeat_seeds": [1], "conv1_channels": 2,
          "conv2_channels": 4, "ae_train_size": 48, "ae_val_size": 16, "ae_max_epochs": 3, "ae_patience": 1,
          "ae_min_delta": 0.01, "ae_batch_size": 16, "ae_lr": 1e-3, "probe_train_size": 0, "probe_max_epochs": 4,
          "probe_patience": 2, "probe_min_delta": 0.0, "probe_batch_size": 32, "probe_lr": 1e-2,
          "probe_standardize": False, "jpeg_check_hidden": 8, "jpeg_quality": 75}


def write_prepared(root, arrays) -> str:
    folder = root / "cifar10"
    folder.mkdir(parents=True)
    for key, value in arrays.items():
        np.save(folder / f"{key}.npy", value)
    return str(root)


def test_runs_of_lists_every_size_and_the_extra_seeds_of_the_repeat_sizes():
    assert cae.runs_of(TINY_P) == [(4, 0), (8, 0), (8, 1)]
    assert [cae.run_tag(*r) for r in cae.runs_of(TINY_P)] == ["4", "8", "8-s1"]
    assert cae.model_path(8, 1) == "models/study_b/ae-8-s1.pt"


def _pooled(workers: int, root: str, models) -> tuple[list, list]:
    """Every tiny autoencoder, then a probe on each, in one pool of `workers` processes (as the two stages)."""
    from latentspace.training.pool import WorkerPool
    runs = cae.runs_of(TINY_P)
    with WorkerPool(workers, "cpu", tasks=len(runs), initializer=cae.load_cifar10, initargs=(root,)) as pool:
        futures = [pool.submit(cae.train_autoencoder_run, h, k, TINY_P, 0, "cpu", "fp32") for h, k in runs]
        trained = [f.result() for f in futures]
        paths = [str(models / f"ae-{workers}-{res['tag']}.pt") for res in trained]
        for path, res in zip(paths, trained):
            cae.save_autoencoder(path, res["checkpoint"])
        futures = [pool.submit(pr.probe_run, h, k, path, TINY_P, 0, "cpu", "fp32")
                   for (h, k), path in zip(runs, paths)]
        probed = [f.result() for f in futures]
    return trained, probed


def test_pooled_runs_are_bit_identical_for_one_and_two_workers(tmp_path):
    root = write_prepared(tmp_path / "data", tiny_splits(num_classes=10, n_train=64, n_val=24, n_test=30))
    one = _pooled(1, root, tmp_path)
    two = _pooled(2, root, tmp_path)
    for a, b in zip(one[0], two[0]):
        assert a["tag"] == b["tag"] and a["record"] == b["record"] and a["history"] == b["history"]
        assert all(torch.equal(a["checkpoint"]["state_dict"][k], b["checkpoint"]["state_dict"][k])
                   for k in a["checkpoint"]["state_dict"])
    assert one[1][2]["record"]["confusion"].sum() == 30
    for a, b in zip(one[1], two[1]):
        assert np.array_equal(a["record"].pop("confusion"), b["record"].pop("confusion"))
        assert a["record"] == b["record"] and a["history"] == b["history"]
        assert np.array_equal(a["test_predictions"], b["test_predictions"])
    ae_rec, probe_rec = one[0][2]["record"], two[1][2]["record"]
    assert ae_rec["seed"] == 1 and ae_rec["train_images"] == 48 and ae_rec["val_images"] == 16
    assert set(ae_rec["stopping"]) >= {"epoch_kept", "epochs_run", "max_epochs", "converged", "hit_cap", "phases"}
    assert ae_rec["stopping"]["epoch_kept"] == ae_rec["epoch_kept"] and ae_rec["max_epochs"] == 3
    assert probe_rec["train_images"] == 64 and "stopping" in probe_rec     # all training codes
    assert set(probe_rec["per_class"]["cat"]) == {"precision", "recall", "f1"}
    # Only the first seed of jpeg_check_hidden measures the JPEG round trip.
    assert [r["record"]["jpeg_roundtrip"] is not None for r in one[1]] == [False, True, False]


def test_log_history_replays_every_metric_but_the_epoch():
    class Live:
        def __init__(self):
            self.logged, self.steps = [], 0

        def log_metric(self, k, v):
            self.logged.append((self.steps, k, v))

        def next_step(self):
            self.steps += 1

    live = Live()
    cae.log_history(live, [{"epoch": 0, "train_loss": 1.0, "val_loss": 2.0}, {"epoch": 1, "train_loss": 0.5}])
    assert live.logged == [(0, "train_loss", 1.0), (0, "val_loss", 2.0), (1, "train_loss", 0.5)] and live.steps == 2


# --- summary ------------------------------------------------------------------------------------------------

def _records(train_images: int, converged: bool, epochs_run: int = 12):
    stopping = {"converged": converged, "epoch_kept": 9, "epochs_run": epochs_run, "max_epochs": 50,
                "hit_cap": not converged, "phases": []}
    ae, probe = {}, {}
    for h, k in cae.runs_of(TINY_P):
        tag = cae.run_tag(h, k)
        ae[tag] = {"hidden": h, "seed": k, "test_mse": 1.0 / h + 0.001 * k, "epoch_kept": 9, "epochs_run": epochs_run,
                   "hit_cap": not converged, "stopping": stopping, "train_images": train_images}
        per_class = {c: {"precision": 0.1 * (i + 1) / 2, "recall": 0.05 * i + 0.01 * k, "f1": 0.1}
                     for i, c in enumerate(cae_classes())}
        probe[tag] = {"hidden": h, "seed": k, "test_accuracy": 0.3 + h / 100, "train_accuracy": 0.35,
                      "test_macro_f1": 0.3, "epoch_kept": 20, "hit_cap": False, "train_images": 45000,
                      "stopping": {**stopping, "converged": True}, "per_class": per_class,
                      "jpeg_roundtrip": {"drop": 0.01} if (h, k) == (8, 0) else None}
    return ae, probe


def cae_classes():
    from latentspace.constants import CIFAR10_CLASSES
    return CIFAR10_CLASSES


DATASET = {"source": "offline copy", "location": "/somewhere/on/this/machine/cifar10.npz",
           "sha256": {"cifar10.npz": "abc"}, "train": 45000}


def test_summary_records_no_machine_path_and_per_class_precision_and_recall_per_seed():
    from latentspace.study_b.summary import summary
    ae, probe = _records(45000, True)
    out = summary(TINY_P, ae, probe, DATASET, 200, cae.runs_of(TINY_P))
    assert "location" not in out["data"] and "/somewhere" not in str(out)
    assert out["data"]["sha256"] == {"cifar10.npz": "abc"} and out["data"]["jpeg_decoded"] is True
    h8 = out["by_hidden"]["8"]
    assert h8["seeds"] == [0, 1] and h8["ae_converged"] == [True, True]
    assert h8["per_class"]["bird"]["recall_values"] == [pytest.approx(0.1), pytest.approx(0.11)]
    assert h8["per_class"]["bird"]["recall"] == pytest.approx(0.105)
    assert out["best_probe_hidden"] == 8


def test_scale_says_which_claims_this_run_can_decide():
    from latentspace.study_b.summary import summary
    runs = cae.runs_of(TINY_P)
    full = summary(TINY_P, *_records(45000, True), DATASET, 200, runs)["scale"]
    assert full["every_run_converged"] and full["all_training_data"] and full["ae_train_share"] == 1.0
    assert all(c["decidable"] for c in full["claims"].values())

    subset = summary(TINY_P, *_records(3000, True), DATASET, 200, runs)["scale"]
    assert subset["claims"]["b-mse-decreasing"]["decidable"] and subset["claims"]["b-below-half"]["decidable"]
    assert not subset["claims"]["b-probe-accuracy"]["decidable"]
    assert "3000 of the 45000" in subset["claims"]["b-probe-accuracy"]["why_not"]

    capped = summary(TINY_P, *_records(45000, False), DATASET, 200, runs)["scale"]
    assert capped["ae_runs_converged"] == 0 and not any(c["decidable"] for c in capped["claims"].values())
    assert "epoch cap" in capped["claims"]["b-probe-accuracy"]["why_not"]

    # The original's schedule (200 epochs on all data, patience = cap) decides the published accuracies.
    paper = summary(TINY_P, *_records(45000, False, epochs_run=200), DATASET, 200, runs)["scale"]
    assert paper["claims"]["b-probe-accuracy"]["decidable"] and not paper["claims"]["b-below-half"]["decidable"]

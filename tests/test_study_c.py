"""Study C's regimes on tiny fake MNIST: what each regime starts from, what it may change, which weights count."""
import numpy as np
import pytest
import torch
from torch.nn import functional as F

from latentspace import pretraining as pt
from latentspace.augment import erasing
from latentspace.training.engine import Phase, evaluate_loss, fit, predict


@pytest.fixture(scope="module")
def data(tiny_datasets_dir):
    with np.load(tiny_datasets_dir / "mnist.npz") as z:
        x, y, x_test, y_test = z["x_train"][:, None], z["y_train"], z["x_test"][:, None], z["y_test"]
    arrays = {"x_train": x[:400], "y_train": y[:400].astype(np.int64), "x_val": x[400:500],
              "y_val": y[400:500].astype(np.int64), "x_test": x_test, "y_test": y_test.astype(np.int64)}
    return pt.mnist_on_device(arrays, torch.device("cpu"))


def settings(augment=None, **kw):
    base = dict(ae_max_epochs=2, head_max_epochs=2, classifier_max_epochs=2, patience=10, batch_size=50,
                head_batch_size=50, ae_lr=3e-3, lr=3e-3)
    return pt.Settings(**{**base, **kw}, augment=augment)


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("arch, latent", [("fc", 128), ("conv", 196)])
def test_architectures_match_the_spec(arch, latent):
    x = torch.rand(3, 1, 28, 28)
    enc, dec = pt.initial("encoder", arch, 0), pt.initial("decoder", arch, 0)
    code = enc(x)
    assert code.flatten(1).shape == (3, latent)
    assert dec(code).shape == (3, 1, 28, 28)
    assert pt.initial("head", arch, 0)(code).shape == (3, 10)
    # The same (arch, seed) gives the same initial weights, whatever was drawn before.
    torch.rand(100)
    assert _equal(_state(pt.initial("encoder", arch, 0)), _state(enc))
    assert not _equal(_state(pt.initial("encoder", arch, 1)), _state(enc))


@pytest.mark.parametrize("augment", [None, erasing()], ids=["none", "erasing"])
def test_frozen_regime_leaves_the_encoder_bit_identical(data, augment):
    s = settings(augment)
    autoencoder, _ = pt.pretrain_autoencoder("conv", data, s, seed=0)
    before = _state(autoencoder.encoder)
    head_before = _state(pt.initial("head", "conv", 0))
    model, result = pt.train_regime("frozen", "conv", data, s, seed=0, pretrained_encoder=autoencoder.encoder)
    assert _equal(_state(model.encoder), before)
    assert _equal(_state(autoencoder.encoder), before)
    assert not _equal(_state(model.head), head_before)           # the head did train
    assert len(result.history) == s.head_max_epochs


def test_fine_tuning_starts_from_the_pretrained_encoder_and_scratch_from_its_initial_weights(data):
    s = settings()
    autoencoder, ae_fit = pt.pretrain_autoencoder("fc", data, s, seed=3)
    pretrained = _state(autoencoder.encoder)
    initial = _state(pt.initial("encoder", "fc", 3))
    assert not _equal(pretrained, initial)                        # pretraining changed the encoder
    assert ae_fit.best_val_loss < evaluate_loss(
        pt.Autoencoder(pt.initial("encoder", "fc", 3), pt.initial("decoder", "fc", 3)), data["x_val"], None, F.mse_loss)

    start = pt.initial_classifier("fine_tuned", "fc", 3, autoencoder.encoder)
    assert _equal(_state(start.encoder), pretrained)
    assert all(p.requires_grad for p in start.parameters())
    scratch = pt.initial_classifier("scratch", "fc", 3, autoencoder.encoder)
    assert _equal(_state(scratch.encoder), initial)
    assert _equal(_state(scratch.head), _state(start.head))      # the same fresh head in both

    tuned, _ = pt.train_regime("fine_tuned", "fc", data, s, seed=3, pretrained_encoder=autoencoder.encoder)
    assert not _equal(_state(tuned.encoder), pretrained)         # fine-tuning trains the encoder...
    assert _equal(_state(autoencoder.encoder), pretrained)       # ... on a copy
    with pytest.raises(ValueError, match="pretrained encoder"):
        pt.initial_classifier("fine_tuned", "fc", 3, None)


def test_the_best_validation_weights_are_the_ones_kept_and_evaluated(data):
    # Validation labels that have nothing to do with the images: the more the model learns the training
    # labels, the worse its validation loss, so the best epoch is an early one and not the last.
    shuffled = {**data, "y_val": data["y_val"][torch.randperm(len(data["y_val"]), generator=torch.Generator().manual_seed(0))]}
    s = settings(classifier_max_epochs=5, lr=1e-2)
    snapshots = []

    def snapshot(model):
        snapshots.append(_state(model))
        return {}
    model = pt.initial_classifier("scratch", "fc", 0, None)
    result = fit(model, shuffled["x_train"], shuffled["y_train"], loss_fn=F.cross_entropy,
                 phases=[Phase("adam", s.lr, s.classifier_max_epochs)], batch_size=s.batch_size,
                 x_val=shuffled["x_val"], y_val=shuffled["y_val"], epoch_metrics=snapshot, seed=0)
    val_losses = [h["val_loss"] for h in result.history]
    assert result.best_epoch == int(np.argmin(val_losses)) < len(val_losses) - 1
    assert _equal(_state(model), snapshots[result.best_epoch])
    assert evaluate_loss(model, shuffled["x_val"], shuffled["y_val"], F.cross_entropy) == pytest.approx(min(val_losses))

    # train_regime hands back the same best weights, and those are what the test metrics are computed on.
    model, result = pt.train_regime("scratch", "fc", shuffled, s, seed=0)
    assert evaluate_loss(model, shuffled["x_val"], shuffled["y_val"], F.cross_entropy) == pytest.approx(
        result.best_val_loss, rel=1e-5)
    assert result.best_epoch < s.classifier_max_epochs - 1


def test_run_seed_reports_every_regime_and_the_summary_spreads_over_seeds(data):
    s = settings(erasing(), ae_max_epochs=1, head_max_epochs=1, classifier_max_epochs=4, lr=1e-2, patience=1)
    runs = [pt.run_seed("fc", data, s, seed) for seed in (0, 1)]
    records = [r[0] for r in runs]
    for r, predictions, _ in runs:
        for regime in pt.REGIMES:
            assert 0 <= r[regime]["test_accuracy"] <= 1 and 0 <= r[regime]["test_macro_f1"] <= 1
            assert len(r[regime]["val_accuracy_curve"]) == r[regime]["epochs_run"] <= r[regime]["max_epochs"]
            assert r["timing"][regime]["seconds"] > 0 and "seconds" not in r[regime]
            # The saved predictions are the ones scored.
            pred = predictions[regime]
            assert pred.dtype == np.uint8 and pred.shape == (len(data["y_test"]),)
            assert (pred == data["y_test"].numpy()).mean() == pytest.approx(r[regime]["test_accuracy"])
        assert r["autoencoder"]["test_mse"] > 0 and r["autoencoder"]["max_epochs"] == 1
    # The tiny digits are easy: training from scratch must beat chance by far.
    assert max(r["scratch"]["test_accuracy"] for r in records) > 0.5
    summary = pt.summarize(records)
    acc = summary["fine_tuned"]["test_accuracy"]
    values = [r["fine_tuned"]["test_accuracy"] for r in records]
    assert acc["values"] == values and acc["mean"] == pytest.approx(np.mean(values))
    assert acc["std"] == pytest.approx(np.std(values, ddof=1))
    assert pt.spread([0.5])["std"] is None


def test_reconstruction_figure_shows_erased_rows_only_with_erasing(data):
    s = settings(ae_max_epochs=1)
    autoencoder, _ = pt.pretrain_autoencoder("conv", data, s, seed=0)
    plain = pt.reconstruction_figure(autoencoder, data["x_test"], data["y_test"], s, title="t")
    erased = pt.reconstruction_figure(autoencoder, data["x_test"], data["y_test"], settings(erasing()), title="t")
    assert len(plain.axes) == 2 * 10 and len(erased.axes) == 4 * 10


def test_a_seed_fixes_the_result_and_another_seed_changes_it(data):
    s = settings(erasing(), classifier_max_epochs=1)
    a, _ = pt.train_regime("scratch", "conv", data, s, seed=5)
    b, _ = pt.train_regime("scratch", "conv", data, s, seed=5)
    c, _ = pt.train_regime("scratch", "conv", data, s, seed=6)
    assert _equal(_state(a), _state(b)) and not _equal(_state(a), _state(c))


def test_validation_accuracy_comes_from_the_same_pass_as_the_loss(data):
    model = pt.initial_classifier("scratch", "fc", 0, None)
    loss, acc = evaluate_loss(model, data["x_val"], data["y_val"], F.cross_entropy, batch_size=32, accuracy=True)
    pred = predict(model, data["x_val"], reduce=lambda out: out.argmax(1))
    assert acc == float((pred == data["y_val"]).double().mean())
    assert loss == evaluate_loss(model, data["x_val"], data["y_val"], F.cross_entropy, batch_size=32)
    _, result = pt.train_regime("scratch", "fc", data, settings(classifier_max_epochs=2), seed=0)
    assert all(0 <= h["val_accuracy"] <= 1 for h in result.history)


def test_save_predictions_writes_the_contract_format(tmp_path):
    y = np.array([1, 2, 3], dtype=np.int64)
    preds = [{r: np.array([1, 2, k], dtype=np.uint8) for r in pt.REGIMES} for k in (3, 0)]
    path = tmp_path / "p" / "fc-none.npz"
    pt.save_predictions(path, y, [7, 8], preds)
    with np.load(path) as z:
        assert set(z.files) == {"y_test", "seeds", *pt.REGIMES}
        assert z["y_test"].dtype == np.uint8 and z["seeds"].tolist() == [7, 8]
        assert z["scratch"].shape == (2, 3) and z["scratch"].dtype == np.uint8
        assert z["frozen"][1].tolist() == [1, 2, 0]


def test_autoencoder_under_erasing_reconstructs_what_ae_target_says(data):
    # ae_target "erased": the training target is the erased image; "clean": the image before erasing.
    # After the same training, the "clean" autoencoder reconstructs clean validation images better.
    results = {}
    for target in ("erased", "clean"):
        s = settings(erasing(scale=(0.3, 0.3)), ae_max_epochs=3, ae_target=target)
        _, fit_result = pt.pretrain_autoencoder("fc", data, s, seed=0)
        results[target] = fit_result.history[-1]["train_loss"]
    # Erased pixels are 0 in the target: easy to reproduce, so the "erased" training loss is lower.
    assert results["erased"] < results["clean"]

"""Study C's regimes on tiny fake MNIST: what each regime starts from, what it may change, which weights count,
and that the pool gives the same cell whatever its number of workers."""
import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from latentspace import stats
from latentspace.constants import STUDY_C_REGIMES
from latentspace.core.io import read_yaml
from latentspace.study_c import nets, regimes
from latentspace.training.engine import Phase, evaluate_loss, fit, predict
from latentspace.training.pool import WorkerPool

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def arrays(tiny_datasets_dir):
    with np.load(tiny_datasets_dir / "mnist.npz") as z:
        x, y, x_test, y_test = z["x_train"][:, None], z["y_train"], z["x_test"][:, None], z["y_test"]
    return {"x_train": x[:500], "y_train": y[:500].astype(np.int64), "x_val": x[500:600],
            "y_val": y[500:600].astype(np.int64), "x_test": x_test, "y_test": y_test.astype(np.int64)}


@pytest.fixture(scope="module")
def data(arrays):
    return regimes.mnist_on_device(arrays, torch.device("cpu"))


def settings(augment="none", arch="conv", **kw):
    """Settings from params.yaml's study_c section with small caps; `kw` overrides top-level keys and caps."""
    p = copy.deepcopy(read_yaml(ROOT / "params.yaml")["study_c"])
    caps = {"ae_max_epochs": 2, "head_max_epochs": 2, "head_max_epochs_erasing": 2, "classifier_max_epochs": 2,
            "batch_size": 50}
    p.update(patience=10, min_delta=0.0, head_batch_size=50, ae_lr=3e-3, lr=3e-3)
    for key, value in kw.items():
        if key in caps:
            caps[key] = value
        elif key == "scale":
            p["augmentations"]["erasing"]["scale"] = list(value)
        else:
            p[key] = value
    p["architectures"][arch].update(caps)
    return regimes.Settings.from_params(p, arch, augment, "fp32")


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_settings_come_from_params_alone():
    p = read_yaml(ROOT / "params.yaml")["study_c"]
    s = regimes.Settings.from_params(p, "fc", "erasing", "fp32")
    assert (s.head_lr, s.head_batch_size, s.min_delta, s.patience) == (
        p["head_lr"], p["head_batch_size"], p["min_delta"], p["patience"])
    assert s.head_max_epochs == p["architectures"]["fc"]["head_max_epochs_erasing"]
    assert s.describe()["augment"]["scale"] == p["augmentations"]["erasing"]["scale"]
    with pytest.raises(TypeError):
        regimes.Settings()                       # no defaults of its own
    assert regimes.Settings.from_params(p, "conv", "none", "fp32").augment is None


@pytest.mark.parametrize("arch, latent", [("fc", 128), ("conv", 196)])
def test_architectures_match_the_spec(arch, latent):
    x = torch.rand(3, 1, 28, 28)
    enc, dec = nets.initial("encoder", arch, 0), nets.initial("decoder", arch, 0)
    code = enc(x)
    assert code.flatten(1).shape == (3, latent)
    assert dec(code).shape == (3, 1, 28, 28)
    assert nets.initial("head", arch, 0)(code).shape == (3, 10)
    # The same (arch, seed) gives the same initial weights, whatever was drawn before.
    torch.rand(100)
    assert _equal(_state(nets.initial("encoder", arch, 0)), _state(enc))
    assert not _equal(_state(nets.initial("encoder", arch, 1)), _state(enc))


@pytest.mark.parametrize("arch", ["fc", "conv"])
def test_fast_layer_order_trains_bit_identically_to_the_original_order(data, arch):
    """In-place ReLUs after the max-pools compute what the original order computes: the same losses and weights
    after training an autoencoder and then a classifier on its encoder, bit for bit."""
    def train(original_order):
        torch.manual_seed(0)
        ae = nets.Autoencoder(nets.build_encoder(arch, original_order), nets.build_decoder(arch, original_order))
        ae = ae.to(memory_format=torch.channels_last)
        ae_fit = fit(ae, data["x_train"], None, loss_fn=F.mse_loss, phases=[Phase("adam", 3e-3, 2)],
                     batch_size=50, x_val=data["x_val"], seed=0)
        clf = nets.Classifier(ae.encoder, nets.build_head(arch))
        clf_fit = fit(clf, data["x_train"], data["y_train"], loss_fn=F.cross_entropy,
                      phases=[Phase("adam", 3e-3, 2)], batch_size=50, x_val=data["x_val"], y_val=data["y_val"],
                      seed=0)
        return [h["val_loss"] for h in ae_fit.history + clf_fit.history], _state(clf)

    fast_losses, fast_weights = train(original_order=False)
    spec_losses, spec_weights = train(original_order=True)
    assert fast_losses == spec_losses
    assert _equal(fast_weights, spec_weights)


@pytest.mark.parametrize("augment", ["none", "erasing"])
def test_frozen_regime_leaves_the_encoder_bit_identical(data, augment):
    s = settings(augment)
    autoencoder, _ = regimes.pretrain_autoencoder("conv", data, s, seed=0)
    before = nets.cpu_state(autoencoder.encoder)
    head_before = _state(nets.initial("head", "conv", 0))
    model, result = regimes.train_regime("frozen", "conv", data, s, seed=0, pretrained_encoder=before)
    assert _equal(_state(model.encoder), before)
    assert not _equal(_state(model.head), head_before)           # the head did train
    assert len(result.history) == s.head_max_epochs


def test_fine_tuning_starts_from_the_pretrained_encoder_and_scratch_from_its_initial_weights(data):
    s = settings(arch="fc")
    autoencoder, ae_fit = regimes.pretrain_autoencoder("fc", data, s, seed=3)
    pretrained = nets.cpu_state(autoencoder.encoder)
    initial = _state(nets.initial("encoder", "fc", 3))
    assert not _equal(pretrained, initial)                        # pretraining changed the encoder
    assert ae_fit.best_val_loss < evaluate_loss(nets.initial_autoencoder("fc", 3), data["x_val"], None, F.mse_loss)

    start = nets.initial_classifier("fine_tuned", "fc", 3, pretrained)
    assert _equal(_state(start.encoder), pretrained)
    assert all(p.requires_grad for p in start.parameters())
    scratch = nets.initial_classifier("scratch", "fc", 3, pretrained)
    assert _equal(_state(scratch.encoder), initial)
    assert _equal(_state(scratch.head), _state(start.head))      # the same fresh head in both

    tuned, _ = regimes.train_regime("fine_tuned", "fc", data, s, seed=3, pretrained_encoder=pretrained)
    assert not _equal(_state(tuned.encoder), pretrained)         # fine-tuning trains the encoder...
    assert _equal(nets.cpu_state(autoencoder.encoder), pretrained)   # ... on a copy
    with pytest.raises(ValueError, match="pretrained encoder"):
        nets.initial_classifier("fine_tuned", "fc", 3, None)


def test_the_best_validation_weights_are_the_ones_kept_and_evaluated(data):
    # Validation labels that have nothing to do with the images: the more the model learns the training
    # labels, the worse its validation loss, so the best epoch is an early one and not the last.
    shuffled = {**data, "y_val": data["y_val"][torch.randperm(len(data["y_val"]), generator=torch.Generator().manual_seed(0))]}
    s = settings(arch="fc", classifier_max_epochs=5, lr=1e-2)
    snapshots = []

    def snapshot(model):
        snapshots.append(_state(model))
        return {}
    model = nets.initial_classifier("scratch", "fc", 0, None)
    result = fit(model, shuffled["x_train"], shuffled["y_train"], loss_fn=F.cross_entropy,
                 phases=[Phase("adam", s.lr, s.classifier_max_epochs)], batch_size=s.batch_size,
                 x_val=shuffled["x_val"], y_val=shuffled["y_val"], epoch_metrics=snapshot, seed=0)
    val_losses = [h["val_loss"] for h in result.history]
    assert result.best_epoch == int(np.argmin(val_losses)) < len(val_losses) - 1
    assert _equal(_state(model), snapshots[result.best_epoch])
    assert evaluate_loss(model, shuffled["x_val"], shuffled["y_val"], F.cross_entropy) == pytest.approx(min(val_losses))

    # train_regime hands back the same best weights, and those are what the test metrics are computed on.
    model, result = regimes.train_regime("scratch", "fc", shuffled, s, seed=0)
    assert evaluate_loss(model, shuffled["x_val"], shuffled["y_val"], F.cross_entropy) == pytest.approx(
        result.best_val_loss, rel=1e-5)
    assert result.best_epoch < s.classifier_max_epochs - 1


def _cell(arrays, tmp_path, workers, s, seeds):
    """run_cell on the tiny MNIST written in the prepared layout, in a pool of `workers` processes."""
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True, exist_ok=True)
    for key, value in arrays.items():
        np.save(folder / f"{key}.npy", value.astype(np.uint8))
    with WorkerPool(workers, "cpu", tasks=4 * len(seeds), initializer=regimes.load_mnist,
                    initargs=("cpu", str(tmp_path / "data"))) as pool:
        return regimes.run_cell(pool, "fc", s, seeds)


def _results(runs):
    """Everything a run returns but its timing."""
    return [{name: {k: v for k, v in out.items() if k != "timing"} for name, out in r.items()} for r in runs]


def _same(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


def test_a_cell_is_bit_identical_with_one_and_two_workers(arrays, tmp_path):
    s = settings("erasing", arch="fc", ae_max_epochs=1, head_max_epochs_erasing=1, classifier_max_epochs=1)
    one = _results(_cell(arrays, tmp_path, 1, s, [0, 1]))
    two = _results(_cell(arrays, tmp_path, 2, s, [0, 1]))
    assert _same(one, two)
    # Each seed's frozen and fine-tuned runs used that seed's autoencoder: different seeds, different results.
    assert not _same(one[0]["fine_tuned"]["record"], one[1]["fine_tuned"]["record"])


def test_a_cell_reports_every_run_and_the_summary_spreads_over_seeds(arrays, data, tmp_path):
    s = settings("erasing", arch="fc", ae_max_epochs=1, head_max_epochs_erasing=1, classifier_max_epochs=4,
                 lr=1e-2, patience=1)
    seeds = [0, 1]
    runs = _cell(arrays, tmp_path, 1, s, seeds)
    per_seed = [{"seed": seed, **{name: r[name]["record"] for name in regimes.RUNS}} for seed, r in zip(seeds, runs)]
    for r, out in zip(per_seed, runs):
        for regime in STUDY_C_REGIMES:
            rec = r[regime]
            assert 0 <= rec["test_accuracy"] <= 1 and 0 <= rec["test_macro_f1"] <= 1
            assert len(rec["val_accuracy_curve"]) == rec["epochs_run"] <= rec["max_epochs"]
            assert rec["best_val_accuracy"] == rec["val_accuracy_curve"][rec["epoch_kept"] - 1]
            assert rec["best_val_loss"] == min(rec["val_loss_curve"])
            assert rec["stopping"]["converged"] == (not rec["hit_cap"]) and "seconds" not in rec
            assert out[regime]["timing"]["seconds"] > 0
            # The saved predictions are the ones scored.
            pred = out[regime]["predictions"]
            assert pred.dtype == np.uint8 and pred.shape == (len(data["y_test"]),)
            assert (pred == data["y_test"].numpy()).mean() == pytest.approx(rec["test_accuracy"])
        assert r["autoencoder"]["test_mse"] > 0 and r["autoencoder"]["max_epochs"] == 1
        assert r["autoencoder"]["stopping"]["phases"] == [{"epochs_run": 1, "max_epochs": 1, "stopped_by": "cap"}]
    # The tiny digits are easy: training from scratch must beat chance by far.
    assert max(r["scratch"]["test_accuracy"] for r in per_seed) > 0.5
    summary = regimes.summarize(per_seed)
    acc = summary["fine_tuned"]["test_accuracy"]
    values = [r["fine_tuned"]["test_accuracy"] for r in per_seed]
    assert acc["values"] == values and acc["mean"] == pytest.approx(np.mean(values))
    assert acc["std"] == pytest.approx(np.std(values, ddof=1))
    assert summary["autoencoder"]["runs_converged"] == 0 and summary["autoencoder"]["runs_hit_cap"] == 2
    converged = regimes.convergence(summary)
    assert converged["autoencoder"] == "0/2" and set(converged) == set(regimes.RUNS)
    # The one spread helper of the project: no std or interval from a single value.
    assert stats.spread([0.5]) == {"n": 1, "mean": 0.5, "std": None, "low": None, "high": None, "min": 0.5,
                                   "max": 0.5, "values": [0.5]}


def test_curves_are_replayed_as_the_engine_logs_them(arrays, tmp_path):
    s = settings(arch="fc", ae_max_epochs=1, head_max_epochs=2, classifier_max_epochs=1)
    runs = _cell(arrays, tmp_path, 1, s, [4])

    class Live:
        step, logged = 0, []

        def log_metric(self, name, value):
            self.logged.append((self.step, name, value))

        def next_step(self):
            self.step += 1
    live = Live()
    regimes.replay_curves(live, [4], runs)
    frozen = [(step, v) for step, name, v in live.logged if name == "seed4/frozen/val_accuracy"]
    assert frozen == [(k, h["val_accuracy"]) for k, h in enumerate(runs[0]["frozen"]["history"])]
    assert {name.split("/")[1] for _, name, _ in live.logged} == set(regimes.RUNS)


def test_reconstruction_figure_shows_erased_rows_only_with_erasing(data):
    s = settings(ae_max_epochs=1)
    autoencoder, _ = regimes.pretrain_autoencoder("conv", data, s, seed=0)
    plain = regimes.reconstruction_figure(autoencoder, data["x_test"], data["y_test"], s, title="t")
    erased = regimes.reconstruction_figure(autoencoder, data["x_test"], data["y_test"], settings("erasing"), title="t")
    assert len(plain.axes) == 2 * 10 and len(erased.axes) == 4 * 10
    rebuilt = regimes.trained_autoencoder("conv", {"encoder": nets.cpu_state(autoencoder.encoder),
                                                   "decoder": nets.cpu_state(autoencoder.decoder)}, "cpu")
    assert _equal(_state(rebuilt), _state(autoencoder))


def test_a_seed_fixes_the_result_and_another_seed_changes_it(data):
    s = settings("erasing", classifier_max_epochs=1)
    a, _ = regimes.train_regime("scratch", "conv", data, s, seed=5)
    b, _ = regimes.train_regime("scratch", "conv", data, s, seed=5)
    c, _ = regimes.train_regime("scratch", "conv", data, s, seed=6)
    assert _equal(_state(a), _state(b)) and not _equal(_state(a), _state(c))


def test_validation_accuracy_comes_from_the_same_pass_as_the_loss(data):
    model = nets.initial_classifier("scratch", "fc", 0, None)
    loss, acc = evaluate_loss(model, data["x_val"], data["y_val"], F.cross_entropy, batch_size=32, accuracy=True)
    pred = predict(model, data["x_val"], reduce=lambda out: out.argmax(1))
    assert acc == float((pred == data["y_val"]).double().mean())
    assert loss == evaluate_loss(model, data["x_val"], data["y_val"], F.cross_entropy, batch_size=32)
    _, result = regimes.train_regime("scratch", "fc", data, settings(arch="fc"), seed=0)
    assert all(0 <= h["val_accuracy"] <= 1 for h in result.history)


def test_save_predictions_writes_the_contract_format(tmp_path):
    y = np.array([1, 2, 3], dtype=np.int64)
    preds = [{r: np.array([1, 2, k], dtype=np.uint8) for r in STUDY_C_REGIMES} for k in (3, 0)]
    path = tmp_path / "p" / "fc-none.npz"
    regimes.save_predictions(path, y, [7, 8], preds)
    with np.load(path) as z:
        assert set(z.files) == {"y_test", "seeds", *STUDY_C_REGIMES}
        assert z["y_test"].dtype == np.uint8 and z["seeds"].tolist() == [7, 8]
        assert z["scratch"].shape == (2, 3) and z["scratch"].dtype == np.uint8
        assert z["frozen"][1].tolist() == [1, 2, 0]


def test_autoencoder_under_erasing_reconstructs_what_ae_target_says(data):
    # ae_target "erased": the training target is the erased image; "clean": the image before erasing.
    results = {}
    for target in ("erased", "clean"):
        s = settings("erasing", arch="fc", ae_max_epochs=3, ae_target=target, scale=(0.3, 0.3))
        _, fit_result = regimes.pretrain_autoencoder("fc", data, s, seed=0)
        results[target] = fit_result.history[-1]["train_loss"]
    # Erased pixels are 0 in the target: easy to reproduce, so the "erased" training loss is lower.
    assert results["erased"] < results["clean"]

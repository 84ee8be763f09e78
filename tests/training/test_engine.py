"""The training engine's early stopping: the kept epoch is the best one, the cap is respected and reported,
min_delta turns a slow creep into a plateau, each phase stops on its own patience and the next one starts from
the best weights, and a schedule without patience runs every epoch."""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from latentspace.training.engine import Phase, fit, to_unit_float_channels_last


def _data(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return x, y


def _identity(x):
    return x


def _run(epochs, patience=None, lr=0.05, noisy_val=False, min_delta=0.0):
    x, y = _data()
    x_val, y_val = _data(128, seed=1)
    if noisy_val:   # labels unrelated to the input: validation loss soon rises, so early stopping must fire
        y_val = torch.randint(0, 2, (128,), generator=torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))
    result = fit(model, x, y, loss_fn=F.cross_entropy, phases=[Phase("adam", lr, epochs)], batch_size=32,
                 x_val=x_val, y_val=y_val, preprocess=_identity, patience=patience, min_delta=min_delta)
    return model, result, (x_val, y_val)


def test_early_stopping_keeps_the_best_epoch_and_stops_after_patience():
    model, result, (x_val, y_val) = _run(epochs=50, patience=2, noisy_val=True)
    losses = [h["val_loss"] for h in result.history]
    assert result.stopped_early and not result.hit_cap
    assert result.epochs_run == len(losses) < 50
    assert result.best_epoch == losses.index(min(losses))
    assert result.epochs_run == result.best_epoch + 1 + 2          # stopped exactly `patience` epochs later
    # The model holds the kept epoch's weights: its validation loss is the best one.
    with torch.no_grad():
        assert F.cross_entropy(model(x_val), y_val).item() == pytest.approx(min(losses), rel=1e-5)


def test_the_epoch_cap_is_respected_and_reported():
    _, result, _ = _run(epochs=3, patience=10)
    assert result.epochs_run == len(result.history) == result.max_epochs == 3
    assert result.hit_cap and not result.stopped_early
    assert result.epoch_kept == result.best_epoch + 1


def test_without_patience_a_schedule_runs_all_its_phases():
    x, y = _data()
    model = nn.Linear(8, 2)
    result = fit(model, x, y, loss_fn=F.cross_entropy, phases=[Phase("adam", 0.01, 2), Phase("sgd", 0.01, 3)],
                 batch_size=64, x_val=x[:64], y_val=y[:64], preprocess=_identity)
    assert result.epochs_run == len(result.history) == 5 and not result.stopped_early and not result.converged


def test_early_stopping_needs_validation_data():
    x, y = _data()
    with pytest.raises(ValueError, match="validation"):
        fit(nn.Linear(8, 2), x, y, loss_fn=F.cross_entropy, phases=[Phase()], batch_size=32,
            preprocess=_identity, patience=2)


def test_autoencoder_target_is_clean_or_augmented():
    x = torch.full((8, 1, 4, 4), 200, dtype=torch.uint8)
    seen = {}

    def erase_all(batch, generator):
        return torch.zeros_like(batch)

    class Recorder(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(()))

        def forward(self, inp):
            seen["input"] = inp.detach().clone()
            return inp * 0 + self.w

    for mode, target in (("clean", 200 / 255), ("augmented", 0.0)):
        model = Recorder()
        fit(model, x, None, loss_fn=F.mse_loss, phases=[Phase("sgd", 0.5, 1)], batch_size=8, augment=erase_all,
            reconstruct=mode)
        assert seen["input"].abs().max() == 0                      # the model saw the erased images
        # One SGD step from 0 moves w towards the target: 0 for an erased target, positive for the clean one.
        assert (model.w.item() > 0) == (target > 0)


def test_channels_last_preprocess():
    x = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    out = to_unit_float_channels_last(x)
    assert out.is_contiguous(memory_format=torch.channels_last) and torch.equal(out, x.float() / 255)


def test_min_delta_counts_a_slow_creep_as_a_plateau():
    """With min_delta, an epoch whose loss is lower but not by the relative margin does not reset the patience:
    the run stops earlier than with min_delta 0, and still keeps the lowest-loss epoch it saw."""
    _, plain, _ = _run(epochs=60, patience=2, lr=0.01)
    _, strict, _ = _run(epochs=60, patience=2, lr=0.01, min_delta=0.05)
    assert strict.converged and strict.epochs_run < plain.epochs_run
    losses = [h["val_loss"] for h in strict.history]
    assert strict.best_epoch == losses.index(min(losses))
    # The stop came `patience` epochs after the last epoch that beat the reference by more than 5 %.
    reference, last_real = float("inf"), 0
    for i, loss in enumerate(losses):
        if loss < reference * 0.95:
            reference, last_real = loss, i
    assert strict.epochs_run == last_real + 1 + 2


def test_each_phase_stops_on_its_own_patience_and_the_next_starts_from_the_best_weights():
    x, y = _data()
    x_val = x[:64]
    y_val = torch.randint(0, 2, (64,), generator=torch.Generator().manual_seed(3))  # loss soon rises
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))
    # Phase 2 at a vanishing learning rate: its epochs see the weights it started from.
    result = fit(model, x, y, loss_fn=F.cross_entropy, phases=[Phase("adam", 0.05, 30), Phase("sgd", 1e-12, 30)],
                 batch_size=32, x_val=x_val, y_val=y_val, preprocess=_identity, patience=2)
    first, second = result.phases
    assert first["stopped_by"] == "patience" and second["stopped_by"] == "patience"
    assert first["epochs_run"] < 30 and result.epochs_run == first["epochs_run"] + second["epochs_run"]
    phase_one = [h["val_loss"] for h in result.history[:first["epochs_run"]]]
    assert phase_one[-1] > min(phase_one)                      # phase 1 ended worse than its best ...
    assert result.history[first["epochs_run"]]["val_loss"] == pytest.approx(min(phase_one), rel=1e-6)  # ... phase 2 began there
    assert result.converged and not result.hit_cap
    assert result.stopping()["phases"] == result.phases


def test_a_fixed_schedule_is_not_converged():
    _, result, _ = _run(epochs=3)
    assert result.phases == [{"epochs_run": 3, "max_epochs": 3, "stopped_by": "cap"}]
    assert result.hit_cap and not result.converged


def test_a_higher_is_better_monitor_keeps_its_best_epoch():
    """monitor/mode: early stopping and the kept epoch follow a validation score where higher is better."""
    x, y = _data()
    x_val, y_val = _data(128, seed=1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))

    def score(m):
        with torch.no_grad():
            return {"val_score": (m(x_val).argmax(1) == y_val).float().mean().item()}

    result = fit(model, x, y, loss_fn=F.cross_entropy, phases=[Phase("adam", 0.05, 40)], batch_size=32,
                 x_val=x_val, y_val=y_val, preprocess=_identity, patience=3, min_delta=0.001,
                 epoch_metrics=score, monitor="val_score", mode="max")
    scores = [h["val_score"] for h in result.history]
    assert result.converged and result.best_epoch == scores.index(max(scores))
    assert result.best_score == max(scores) and result.stopping()["monitor"] == "val_score"
    assert score(model)["val_score"] == max(scores)

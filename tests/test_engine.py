"""The training engine's opt-in early stopping: the kept epoch is the best one, the cap is respected, and a
fixed schedule (Study A) is unchanged."""
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


def _run(epochs, patience=None, lr=0.05, noisy_val=False):
    x, y = _data()
    x_val, y_val = _data(128, seed=1)
    if noisy_val:   # labels unrelated to the input: validation loss soon rises, so early stopping must fire
        y_val = torch.randint(0, 2, (128,), generator=torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))
    result = fit(model, x, y, loss_fn=F.cross_entropy, phases=[Phase("adam", lr, epochs)], batch_size=32,
                 x_val=x_val, y_val=y_val, preprocess=_identity, patience=patience)
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
    assert result.epochs_run == len(result.history) == 5 and not result.stopped_early


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

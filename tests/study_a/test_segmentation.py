"""Study A3: the three nets (sizes, shapes, codes), the losses, the metrics against hand-computed values,
the colour baseline, and saving/loading a trained net."""
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from latentspace.constants import LOSSES, NETS
from latentspace.study_a import losses, nets, scores
from latentspace.study_a import segmentation as seg
from latentspace.core.params import ParamError, load_params
from latentspace.study_a.rectangles import generate_rectangles
from latentspace.training.engine import Phase, fit

ROOT = Path(__file__).resolve().parents[2]

# Keras' count of the original models (ezConvAutoEncoderForMnist, UnetCircumcised,
# UnetWithSeparableConvCircumcised): the ports must match it exactly.
PARAMETERS = {"nn1": 21_356, "nn2": 62_264, "nn3": 11_063}

# The originals' layers in forward order, (input channels, output channels, kernel), read off their Keras
# definitions: encoder, then per decoder level the 2x2 up-convolution and (except at the top level, where the
# concatenation of 4 + 4 channels goes straight into the head) a 3x3 merge conv, then the head.
ENCODER = [(3, 4, 3), (4, 8, 3), (8, 16, 3), (16, 32, 3), (32, 64, 3)]
DECODER = [(64, 32, 2), (64, 32, 3), (32, 16, 2), (32, 16, 3), (16, 8, 2), (16, 8, 3), (8, 4, 2)]
LAYERS = {
    "nn1": [(3, 8, 3), (8, 16, 3), (16, 32, 3), (32, 32, 3), (32, 16, 3), (16, 8, 3), (8, 4, 3)],
    "nn2": ENCODER + DECODER + [(8, 16, 3), (16, 8, 3), (8, 4, 1)],
    "nn3": ENCODER + DECODER + [(8, 16, 3), (16, 8, 3), (8, 4, 3), (4, 4, 1)],
}
# The original's loss settings (params.yaml segmentation.loss_settings).
LOSS_SETTINGS = {"wce": {"class_weight": 4.0}, "dice": {"smooth": 1.0}, "focal": {"gamma": 2.0, "alpha": 0.75}}


def make_loss(name: str):
    return losses.make_loss(name, LOSS_SETTINGS[name])


def _layers_in_forward_order(net: torch.nn.Module) -> list[tuple[int, int, int]]:
    """(in, out, kernel) of every conv layer (a separable conv counts once) in the order the forward pass runs
    them, recorded by hooks."""
    seen = []

    def record(module, inputs, output):
        conv = module.depthwise if isinstance(module, nets.SeparableConv2d) else module
        seen.append((inputs[0].shape[1], output.shape[1], conv.kernel_size[0]))

    hooks = [m.register_forward_hook(record) for m in net.modules()
             if isinstance(m, nets.SeparableConv2d) or (isinstance(m, torch.nn.Conv2d) and not any(
                 isinstance(parent, nets.SeparableConv2d) and m in parent.modules() for parent in net.modules()))]
    with torch.no_grad():
        net.eval()(torch.rand(1, 3, 32, 32))
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("name", NETS)
def test_parameter_count_matches_the_original_nets(name):
    assert nets.count_parameters(nets.build_net(name)) == PARAMETERS[name]


@pytest.mark.parametrize("name", NETS)
def test_layers_are_the_originals_in_forward_order(name):
    net = nets.build_net(name)
    assert _layers_in_forward_order(net) == LAYERS[name]
    separable = [isinstance(m, nets.SeparableConv2d) for m in net.modules()]
    assert any(separable) == (name == "nn3")


@pytest.mark.parametrize("name", NETS)
@pytest.mark.parametrize("image_size", [64, 32])
def test_logits_and_bottleneck_shapes(name, image_size):
    net = nets.build_net(name).eval()
    x = torch.rand(2, 3, image_size, image_size)
    with torch.no_grad():
        logits, codes = net(x), net.encode(x)
    assert logits.shape == (2, 4, image_size, image_size)
    if name == "nn1":
        assert {k: tuple(v.shape) for k, v in codes.items()} == {
            "pool3": (2, 32, image_size // 8, image_size // 8), "conv4": (2, 32, image_size // 8, image_size // 8)}
    else:
        assert {k: tuple(v.shape) for k, v in codes.items()} == {"bottleneck": (2, 64, image_size // 16, image_size // 16)}
    for v in codes.values():
        assert (v >= 0).all()          # post-ReLU activations


class _SpecOrderNN1(nets.NN1):
    """NN1 as the original orders it: ReLU, then max-pool, plain (not in-place) ReLUs."""

    def _encode(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        pool3 = torch.nn.functional.max_pool2d(torch.relu(self.conv3(x)), 2)
        return pool3, torch.relu(self.conv4(pool3))


class _PlainReLU:
    """Stands in for torch.nn.functional in the nets module: every ReLU out of place."""

    def __getattr__(self, name):
        return getattr(torch.nn.functional, name)

    @staticmethod
    def relu(x, inplace=False):
        return torch.relu(x)


@pytest.mark.parametrize("name", NETS)
def test_in_place_relus_and_pool_first_train_bit_identically_to_the_original_order(name, monkeypatch):
    x, y = torch.rand(4, 3, 32, 32), torch.randint(0, 4, (4, 32, 32))

    def train(make):
        torch.manual_seed(0)
        net = make()
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        losses_seen = []
        for _ in range(3):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
            losses_seen.append(loss.item())
        return losses_seen, net.state_dict()

    fast = train(lambda: nets.build_net(name))
    monkeypatch.setattr(nets, "F", _PlainReLU())
    spec = train(_SpecOrderNN1 if name == "nn1" else (lambda: nets.build_net(name)))
    assert fast[0] == spec[0]
    assert all(torch.equal(fast[1][k], spec[1][k]) for k in fast[1])


@pytest.mark.parametrize("name", ["nn2", "nn3"])
def test_dropout_acts_in_training_only(name):
    net = nets.build_net(name)
    x = torch.rand(2, 3, 32, 32)
    torch.manual_seed(0)
    with torch.no_grad():
        net.eval()
        assert torch.equal(net(x), net(x))
        net.train()
        assert not torch.equal(net(x), net(x))


def test_unknown_net_and_loss_are_user_errors():
    with pytest.raises(Exception, match="unknown net 'nn4'"):
        nets.build_net("nn4")
    with pytest.raises(Exception, match="unknown loss 'mse'"):
        losses.make_loss("mse", {})


def test_preprocess_scales_and_adds_bounded_noise():
    x = torch.randint(0, 256, (3, 8, 8, 3), dtype=torch.uint8)
    clean = seg.preprocess_images(x, 0.0, None)
    assert clean.shape == (3, 3, 8, 8) and clean.dtype == torch.float32
    assert torch.equal(clean, x.permute(0, 3, 1, 2).float() / 255)
    noisy = seg.preprocess_images(x, 5.0, torch.Generator().manual_seed(0))
    extra = (noisy - clean) * 255
    assert extra.min() >= -1e-4 and extra.max() < 5 + 1e-4 and extra.mean() > 1.5


# --- losses -------------------------------------------------------------------------------------------

def _perfect_logits(target: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.one_hot(target.long(), 4).permute(0, 3, 1, 2).float() * 30


@pytest.mark.parametrize("loss", LOSSES)
def test_loss_is_near_zero_for_confident_right_answers_and_large_for_wrong_ones(loss):
    target = torch.randint(0, 4, (2, 8, 8))
    fn = make_loss(loss)
    assert fn(_perfect_logits(target), target) < 1e-3
    assert fn(_perfect_logits((target + 1) % 4), target) > 0.5


def test_weighted_cross_entropy_weighs_class_pixels_four_times():
    logits = torch.zeros(1, 4, 1, 2)                       # uniform: every pixel's CE is log 4
    target = torch.tensor([[[0, 2]]])
    # Keras-style mean over pixels: (1 * log 4 + 4 * log 4) / 2.
    assert make_loss("wce")(logits, target).item() == pytest.approx(2.5 * np.log(4))


def test_focal_loss_hand_computed():
    logits = torch.log(torch.tensor([0.5, 0.5 / 3, 0.5 / 3, 0.5 / 3])).reshape(1, 4, 1, 1).repeat(1, 1, 1, 2)
    target = torch.tensor([[[0, 1]]])
    # pixel 0: background, p = 0.5 -> 0.25 * 0.25 * log 2; pixel 1: class 1, p = 1/6 -> 0.75 * (5/6)^2 * log 6.
    expected = (0.25 * 0.25 * np.log(2) + 0.75 * (5 / 6) ** 2 * np.log(6)) / 2
    assert make_loss("focal")(logits, target).item() == pytest.approx(expected, rel=1e-5)


def test_dice_hand_computed_per_pixel():
    # Pixel 0: p = (1, 0, 0, 0), target 0 -> 1 - (2 + 1) / (1 + 1 + 1) = 0.
    # Pixel 1: p = (0, 1, 0, 0), target 0 -> 1 - (0 + 1) / (1 + 1 + 1) = 2/3.
    probs = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]]).reshape(1, 4, 1, 2)
    logits = torch.log(probs.clamp_min(1e-30))
    target = torch.tensor([[[0, 0]]])
    assert losses.make_loss("dice", {"smooth": 1.0})(logits, target).item() == pytest.approx(1 / 3, abs=1e-5)


# Independent, literal numpy versions of the original Keras losses: softmax, one-hot targets, sums over the
# four outputs per pixel, Keras' clipping to [1e-7, 1 - 1e-7], mean over pixels.
def _np_softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _np_onehot(target):
    return np.eye(4)[target].transpose(0, 3, 1, 2)


def _np_wce(logits, target, class_weight=4.0):
    p = np.clip(_np_softmax(logits), 1e-7, 1 - 1e-7)
    w = np.array([1.0, class_weight, class_weight, class_weight])[None, :, None, None]
    return np.mean(-np.sum(_np_onehot(target) * np.log(p) * w, axis=1))


def _np_dice(logits, target, smooth=1.0):
    p, t = _np_softmax(logits), _np_onehot(target)
    coef = (2 * np.sum(np.abs(t * p), axis=1) + smooth) / (np.sum(t ** 2, axis=1) + np.sum(p ** 2, axis=1) + smooth)
    return np.mean(1 - coef)


def _np_focal(logits, target, gamma=2.0, alpha=0.75):
    p = np.clip(_np_softmax(logits), 1e-7, 1 - 1e-7)
    a = np.array([1 - alpha, alpha, alpha, alpha])[None, :, None, None]
    return np.mean(np.sum(a * (1 - p) ** gamma * (-_np_onehot(target) * np.log(p)), axis=1))


REFERENCE = {"wce": _np_wce, "dice": _np_dice, "focal": _np_focal}


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("scale", [1.0, 40.0])
def test_loss_matches_a_literal_numpy_version_of_the_original(loss, scale):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 4, 5, 6)) * scale         # scale 40: probabilities far beyond the clipping
    target = rng.integers(0, 4, size=(3, 5, 6))
    got = make_loss(loss)(torch.tensor(logits, dtype=torch.float32), torch.tensor(target, dtype=torch.uint8))
    assert got.item() == pytest.approx(REFERENCE[loss](logits, target), rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("loss", LOSSES)
def test_loss_and_gradient_stay_finite_for_extreme_logits(loss):
    logits = torch.tensor([[1e4, -1e4, 0.0, -1e4]] * 4).T.reshape(1, 4, 2, 2).clone().requires_grad_()
    target = torch.tensor([[[0, 1], [2, 3]]])
    value = make_loss(loss)(logits, target)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()


def test_launch_summary_gives_mean_and_spread():
    runs = [{k: v for k in scores.SUMMARISED} for v in (0.5, 0.7)]
    summary = scores.launch_summary(runs)
    assert set(summary) == set(scores.SUMMARISED)
    values = summary["mean_iou"].pop("values")
    assert values == pytest.approx([0.5, 0.7])
    got = {k: summary["mean_iou"][k] for k in ("n", "mean", "std", "min", "max")}
    assert got == pytest.approx({"n": 2, "mean": 0.6, "std": np.std([0.5, 0.7], ddof=1), "min": 0.5, "max": 0.7})
    # The project's one spread (latentspace.stats): one launch has no standard deviation and no interval.
    single = scores.launch_summary(runs[:1])["mean_iou"]
    assert single["std"] is None and single["low"] is None and single["mean"] == 0.5


@pytest.mark.parametrize("loss", LOSSES)
def test_each_loss_decreases_when_training_on_a_tiny_set(loss):
    data = generate_rectangles(32, image_size=16, delta=15, seed=1, contained=True)
    x, y = torch.as_tensor(data.images), torch.as_tensor(data.labels)
    torch.manual_seed(0)
    net = nets.build_net("nn2")
    # lr 0.003: at 0.01 the Dice run can collapse onto one class, or not, with the float rounding of the thread count.
    result = fit(net, x, y, loss_fn=make_loss(loss), phases=[Phase("nadam", lr=0.003, epochs=8)],
                 batch_size=8, preprocess=lambda b: seg.preprocess_images(b, 0.0, None), seed=0)
    losses = [r["train_loss"] for r in result.history]
    assert losses[-1] < 0.7 * losses[0]


# --- metrics and the baseline -------------------------------------------------------------------------

def test_metrics_match_hand_computed_iou_and_dice():
    true = torch.tensor([[0, 0, 1, 1],
                         [0, 2, 2, 1],
                         [3, 3, 2, 0]])
    pred = torch.tensor([[0, 1, 1, 1],
                         [0, 2, 0, 1],
                         [3, 0, 2, 0]])
    m = scores.segmentation_metrics(scores.pixel_confusion(true, pred))
    # background: tp 3 (of 4 true, 5 predicted) -> IoU 3 / 6, Dice 6 / 9; class 1: tp 3, fp 1, fn 0 -> 3/4, 6/7;
    # class 2: tp 2, fn 1 -> 2/3, 4/5; class 3: tp 1, fn 1 -> 1/2, 2/3.
    iou = [3 / 6, 3 / 4, 2 / 3, 1 / 2]
    dice = [6 / 9, 6 / 7, 4 / 5, 2 / 3]
    assert list(m["iou"].values()) == pytest.approx(iou)
    assert list(m["dice"].values()) == pytest.approx(dice)
    assert list(m["iou"]) == ["background", "class1", "class2", "class3"]
    assert m["mean_iou"] == pytest.approx(np.mean(iou))
    assert m["mean_dice_rectangles"] == pytest.approx(np.mean(dice[1:]))
    assert m["pixel_accuracy"] == pytest.approx(9 / 12)
    assert m["confusion_matrix"] == [[3, 1, 0, 0], [0, 3, 0, 0], [1, 0, 2, 0], [1, 0, 0, 1]]


def test_nearest_colour_baseline_is_exact_while_colour_boxes_are_apart():
    data = generate_rectangles(20, image_size=16, delta=40, seed=3, contained=True)
    assert np.array_equal(seg.nearest_colour(data.images).numpy(), data.labels)
    # A purple between class 1 and class 3 goes to the nearer one; near-black stays background.
    assert seg.nearest_colour(np.array([[60, 110, 200], [200, 50, 140], [20, 30, 10]])).tolist() == [1, 3, 0]


def test_confusion_rows_sample_pixels_by_name():
    labels = np.zeros((2, 4, 4), np.uint8)
    labels[0, 0, 0] = 3
    rows = scores.confusion_rows(labels, labels, pixels=32, seed=0)
    assert len(rows) == 32 and {"actual": "class3", "predicted": "class3"} in rows


# --- saving, loading, parameters ----------------------------------------------------------------------

@pytest.mark.parametrize("name", NETS)
def test_saved_net_loads_with_weights_only_and_gives_the_same_outputs(tmp_path, name):
    net = nets.build_net(name).eval()
    nets.save_net(tmp_path / "net.pt", net.state_dict(), name=name, loss="dice", image_size=32)
    saved = torch.load(tmp_path / "net.pt", weights_only=True)
    assert (saved["net"], saved["loss"], saved["image_size"]) == (name, "dice", 32)
    loaded = nets.load_net(tmp_path / "net.pt")
    assert not loaded.training
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))


def test_missing_net_file_is_a_user_error(tmp_path):
    with pytest.raises(Exception, match="trained net not found"):
        nets.load_net(tmp_path / "none.pt")


@pytest.mark.parametrize("key, value, fragment", [
    ("nets", ["nn1", "nn4"], "'segmentation.nets'"),
    ("losses", [], "'segmentation.losses'"),
    ("val_images", 0, "'segmentation.val_images' = 0"),
])
def test_bad_segmentation_parameter_names_it(tmp_path, project_root, key, value, fragment):
    data = yaml.safe_load((project_root / "params.yaml").read_text())
    data["segmentation"][key] = value
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ParamError, match=fragment):
        load_params(tmp_path / "params.yaml")


def test_validation_tally_counts_only_batches_scored_without_gradients():
    tally = losses.LossWithValidationTally(make_loss("wce"))
    target = torch.tensor([[[0, 1], [2, 3]]])
    right, wrong = _perfect_logits(target), _perfect_logits((target + 1) % 4)
    tally(wrong.requires_grad_(), target)                  # a training batch: not counted
    with torch.no_grad():
        expected = make_loss("wce")(right, target)
        assert tally(right, target) == expected            # the loss itself is unchanged
        tally(wrong, target)
    m = tally.epoch_metrics(None)
    assert m["val_pixel_accuracy"] == 0.5                  # 4 right + 4 wrong pixels
    assert tally.confusion is None                         # the next epoch starts a new tally


# --- the protocol: chained and independent runs, in the pool ----------------------------------------------

def _tiny_setup(tmp_path, **overrides):
    """A 16-pixel training and test sample on disk, the project's segmentation settings shrunk to seconds."""
    from latentspace.study_a.rectangles import write_rectangles
    for name, n in (("train", 40), ("test", 8)):
        write_rectangles(tmp_path / name, n, image_size=16, delta=15, seed=len(name), contained=True)
    with open(ROOT / "params.yaml") as f:
        p = yaml.safe_load(f)["segmentation"]
    p.update(nets=["nn1"], launches=1, val_images=8, train_images=0, batch_size=16, nadam_epochs=2, sgd_epochs=1,
             patience=1, min_delta=0.0, eval_batch_size=64)
    p.update(overrides)
    train_idx, val_idx = seg.split_indices(40, p["train_images"], p["val_images"], 0)
    initargs = (str(tmp_path / "train"), str(tmp_path / "test"), train_idx, val_idx, "cpu")
    return p, initargs


def _run_plan(p, initargs, workers: int) -> list[dict]:
    from latentspace.training.pool import WorkerPool
    tasks = seg.plan_tasks(p)
    settings = {"seed": 0, "device": "cpu", "precision": "fp32"}
    with WorkerPool(workers, "cpu", tasks=len(tasks), initializer=seg.load_data, initargs=initargs) as pool:
        futures = [pool.submit(seg.train_task, task, p, settings) for task in tasks]
        return [r for future in futures for r in future.result()]


def test_plan_chained_is_one_chain_per_net_and_fresh_runs_for_the_other_losses():
    p = {"nets": ["nn1", "nn2"], "losses": ["wce", "dice", "focal"], "chain": ["wce", "dice"], "launches": 2,
         "protocol": "chained"}
    tasks = seg.plan_tasks(p)
    chain = [(s.loss, s.launch, s.step) for s in tasks[0]]
    assert chain == [("wce", 1, 1), ("dice", 1, 2), ("wce", 2, 3), ("dice", 2, 4)]
    assert [[(s.net, s.loss, s.launch, s.step) for s in t] for t in tasks[1:3]] == [
        [("nn1", "focal", 1, None)], [("nn1", "focal", 2, None)]]
    assert len(tasks) == 6 and {s.net for s in tasks[3]} == {"nn2"}
    independent = seg.plan_tasks({**p, "protocol": "independent"})
    assert len(independent) == 2 * 3 * 2 and all(len(t) == 1 and t[0].step is None for t in independent)


def test_chained_steps_continue_from_the_weights_the_step_before_kept(tmp_path):
    p, initargs = _tiny_setup(tmp_path, losses=["wce", "dice", "focal"], chain=["wce", "dice"], launches=1)
    results = _run_plan(p, initargs, workers=1)
    by = {(r["step"].loss, r["step"].launch): r["record"] for r in results}
    wce, dice, focal = by[("wce", 1)], by[("dice", 1)], by[("focal", 1)]
    assert (wce["step"], dice["step"], focal["step"]) == (1, 2, None)
    assert (wce["started_from"], dice["started_from"], focal["started_from"]) == (None, "nn1-wce launch 1", None)
    # The chain really continues: dice starts from the weights wce kept; fresh runs start from the same seed.
    assert dice["weights_sha256"]["start"] == wce["weights_sha256"]["end"]
    assert focal["weights_sha256"]["start"] == wce["weights_sha256"]["start"] != dice["weights_sha256"]["start"]
    for record in (wce, dice, focal):
        stopping = record["stopping"]
        assert [ph["max_epochs"] for ph in stopping["phases"]] == [2, 1]
        assert all(ph["stopped_by"] in ("patience", "cap") for ph in stopping["phases"])
        assert stopping["epochs_run"] == sum(ph["epochs_run"] for ph in stopping["phases"]) == record["epochs"]
        assert 0 <= record["mean_iou"] <= 1


def test_independent_protocol_trains_every_run_from_fresh_weights(tmp_path):
    p, initargs = _tiny_setup(tmp_path, losses=["wce", "dice"], chain=["wce", "dice"], protocol="independent",
                              nadam_epochs=1, sgd_epochs=0)
    records = [r["record"] for r in _run_plan(p, initargs, workers=1)]
    assert [r["step"] for r in records] == [None, None] and [r["started_from"] for r in records] == [None, None]
    assert records[0]["weights_sha256"]["start"] == records[1]["weights_sha256"]["start"]


def test_pool_results_are_bit_identical_with_one_and_two_workers(tmp_path):
    p, initargs = _tiny_setup(tmp_path, losses=["wce", "focal"], chain=["wce"], launches=1, nadam_epochs=1,
                              sgd_epochs=1)
    one, two = _run_plan(p, initargs, workers=1), _run_plan(p, initargs, workers=2)
    assert [r["step"] for r in one] == [r["step"] for r in two]
    for a, b in zip(one, two):
        assert a["record"] == b["record"] and a["history"] == b["history"]
        assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
        assert np.array_equal(a["predicted"], b["predicted"])

"""Study A3: training the segmentation nets on the rectangles, under the chained or the independent protocol,
plus the per-pixel nearest-colour baseline and the figure of predicted masks.

The protocol (`segmentation.protocol`) says how the models of a net follow each other:
- chained (the original script): ONE model per net goes through launch 1 of every loss of `segmentation.chain`,
  then launch 2 of each, ...; every step starts from the weights the step before kept and runs the whole
  two-phase schedule (Nadam, then SGD), each phase with early stopping. The losses of `segmentation.losses`
  outside the chain train from fresh weights, one run per launch.
- independent: fresh weights for every (loss, launch).
Fresh weights of launch k come from seed + k - 1; a step of launch k draws its batches, input noise and
dropout from seed + k - 1 as well. `plan_tasks` lists the pool's tasks (a chain is one task: its steps depend
on each other; a fresh run is one task); `train_task` runs one in a worker and returns everything the stage
writes (records, histories, weights, test predictions), writing nothing itself.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from latentspace import paths
from latentspace.constants import LABEL_COLOURS
from latentspace.core.errors import UserError
from latentspace.study_a.losses import LossWithValidationTally, make_loss
from latentspace.study_a.nets import build_net, count_parameters, min_image_size
from latentspace.study_a.rectangles import load_parameters, load_rectangles
from latentspace.study_a.scores import pixel_confusion, segmentation_metrics
from latentspace.training.engine import Phase, fit, predict, to_device
from latentspace.training.figures import image_grid
from latentspace.training.pool import worker_state

# Label-map colours for figures: black background, then the class-centre colours.
MASK_COLOURS = np.array(LABEL_COLOURS, dtype=np.uint8)
TRAIN_DIR, TEST_DIR = paths.rectangles("train"), paths.rectangles("test")


# --- input --------------------------------------------------------------------------------------------

def preprocess_images(x: torch.Tensor, noise: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 NHWC images to float NCHW (x + U[0, noise)) / 255, as the original fed its nets.
    noise = 0 adds nothing (and needs no generator)."""
    out = x.permute(0, 3, 1, 2).float()
    if noise > 0:
        out = out + torch.rand(out.shape, generator=generator, device=out.device) * noise
    # NHWC permuted is channels_last in memory: kept so, as convolutions on the CPU run ~1.5x faster that way.
    return out.div_(255.0)


def input_noise(noise: float):
    """The engine's `augment` hook for already preprocessed images: + U[0, noise) / 255 per value, the same
    as adding the noise before scaling. Training only: validation, test and latent codes see clean images."""
    def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return x + torch.rand(x.shape, generator=generator, device=x.device) * (noise / 255.0)
    return augment if noise > 0 else None


def preprocess(x: torch.Tensor) -> torch.Tensor:
    """The clean input of every pass (training batches get their noise from `input_noise`)."""
    return preprocess_images(x, 0.0, None)


def split_indices(n: int, train_images: int, val_images: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded permutation of the training sample: the first `val_images` validate, the next
    `train_images` (0: all the rest) train. Sorted, so reading the memory-mapped files stays sequential."""
    if val_images >= n:
        raise UserError(f"parameter 'segmentation.val_images' = {val_images} leaves no training image of the "
                        f"{n} in {TRAIN_DIR} (rectangles.samples.train.images)")
    order = np.random.default_rng(seed).permutation(n)
    val = order[:val_images]
    train = order[val_images:] if train_images == 0 else order[val_images:val_images + train_images]
    if train_images > len(train):
        raise UserError(f"parameter 'segmentation.train_images' = {train_images} is more than the {n - val_images} "
                        f"training images left after validation; raise rectangles.samples.train.images or use 0 (all)")
    return np.sort(train), np.sort(val)


def check_data(nets: list[str], train_dir: str = TRAIN_DIR, test_dir: str = TEST_DIR) -> dict:
    """The training and test samples' shared meta, after checking they agree and suit every net."""
    train_meta = load_parameters(train_dir).meta
    test_meta = load_parameters(test_dir).meta
    image_size, delta = train_meta["image_size"], train_meta["delta"]
    if (test_meta["image_size"], test_meta["delta"]) != (image_size, delta):
        raise UserError(f"{train_dir} and {test_dir} differ in image_size or delta; "
                        "rerun `dvc repro generate_rectangles`")
    for net in nets:
        least = min_image_size(net)
        if image_size % least:
            raise UserError(f"parameter 'rectangles.image_size' = {image_size}: {net} needs a multiple of "
                            f"{least} (its poolings halve the image {least.bit_length() - 1} times)")
    return {"image_size": image_size, "delta": delta, "n_train_sample": train_meta["n"], "n_test": test_meta["n"]}


def load_data(train_dir: str, test_dir: str, train_idx: np.ndarray, val_idx: np.ndarray, device: str) -> dict:
    """A worker's data (the pool's initializer): the training, validation and test tensors, uint8 on the device
    (the engine's contract; float only per batch). Fancy indexing and np.array copy the read-only memory maps."""
    dev = torch.device(device)
    train_set = load_rectangles(train_dir, with_masks=False)
    test_set = load_rectangles(test_dir, with_masks=False)
    return {"x_train": to_device(train_set.images[train_idx], dev),
            "y_train": to_device(train_set.labels[train_idx], dev),
            "x_val": to_device(train_set.images[val_idx], dev), "y_val": to_device(train_set.labels[val_idx], dev),
            "x_test": to_device(np.array(test_set.images), dev), "y_test": to_device(np.array(test_set.labels), dev)}


# --- the protocol -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """One training run: a (net, loss, launch), and its 1-based position in its net's chain (None: fresh)."""
    net: str
    loss: str
    launch: int
    step: int | None = None

    @property
    def name(self) -> str:
        return f"{self.net}-{self.loss}"

    def describe(self) -> str:
        return f"{self.name} launch {self.launch}"


def plan_tasks(p: dict) -> list[list[Step]]:
    """The pool's tasks, each a list of steps run one after another on one model: under `chained` one chain
    per net (launch 1 of every chain loss, then launch 2, ...) and one task per fresh run of a loss outside the
    chain; under `independent` one task per (net, loss, launch)."""
    launches = range(1, p["launches"] + 1)
    chained = p["protocol"] == "chained"
    chain = [loss for loss in p["chain"] if loss in p["losses"]] if chained else []
    tasks: list[list[Step]] = []
    for net in p["nets"]:
        if chain:
            order = [(loss, k) for k in launches for loss in chain]
            tasks.append([Step(net, loss, k, i) for i, (loss, k) in enumerate(order, start=1)])
        tasks += [[Step(net, loss, k)] for loss in p["losses"] if loss not in chain for k in launches]
    return tasks


# Whether lower or higher is better for each metric `segmentation.monitor` may name.
MONITOR_MODE = {"val_loss": "min", "val_mean_iou": "max"}


def phases(p: dict) -> list[Phase]:
    """The original two-phase schedule (Nadam, then SGD with Keras time decay); a phase with 0 epochs is skipped."""
    out = [Phase(optimizer="nadam", lr=p["nadam_lr"], epochs=p["nadam_epochs"]),
           Phase(optimizer="sgd", lr=p["sgd_lr"], epochs=p["sgd_epochs"], momentum=p["sgd_momentum"],
                 lr_decay=p["sgd_lr_decay"])]
    return [ph for ph in out if ph.epochs > 0]


def weights_digest(net: torch.nn.Module) -> str:
    """sha256 of a net's weights (names, shapes and bytes in order): shows which weights a step started from."""
    h = hashlib.sha256()
    for name, value in net.state_dict().items():
        t = value.detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _fit_step(net: torch.nn.Module, step: Step, seed: int, p: dict, run: dict, data: dict) -> dict:
    """Train `net` in place through the whole schedule of one step and score its kept weights on the test set."""
    loss_fn = LossWithValidationTally(make_loss(step.loss, p["loss_settings"][step.loss]))
    start = weights_digest(net)
    result = fit(net, data["x_train"], data["y_train"], loss_fn=loss_fn, phases=phases(p),
                 batch_size=p["batch_size"], x_val=data["x_val"], y_val=data["y_val"], preprocess=preprocess,
                 augment=input_noise(p["noise"]), precision=run["precision"], seed=seed,
                 epoch_metrics=loss_fn.epoch_metrics, desc=step.describe(), eval_batch_size=p["eval_batch_size"],
                 patience=p["patience"], min_delta=p["min_delta"], monitor=p["monitor"],
                 mode=MONITOR_MODE[p["monitor"]])
    predicted = predict(net, data["x_test"], batch_size=p["eval_batch_size"], preprocess=preprocess,
                        precision=run["precision"], reduce=lambda out: out.argmax(dim=1).to(torch.uint8))
    metrics = segmentation_metrics(pixel_confusion(data["y_test"], predicted))
    record = {"launch": step.launch, "seed": seed, **metrics, "best_epoch": result.epoch_kept,
              "epochs": result.epochs_run, "stopping": result.stopping(), "step": step.step,
              "weights_sha256": {"start": start, "end": weights_digest(net)}}
    return {"record": record, "history": result.history, "images_per_second": result.train_images_per_second,
            "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
            "predicted": predicted.cpu().numpy() if step.launch == 1 else None}


def train_task(steps: list[Step], p: dict, run: dict) -> list[dict]:
    """Run one task of `plan_tasks` in this worker: fresh weights (seed + launch - 1) for its first step, then
    each further step continues from the weights the step before kept. One result per step, in order."""
    data, device = worker_state(), torch.device(run["device"])
    torch.manual_seed(run["seed"] + steps[0].launch - 1)
    net = build_net(steps[0].net).to(device)
    out, before = [], None
    for step in steps:
        res = _fit_step(net, step, run["seed"] + step.launch - 1, p, run, data)
        res["record"]["started_from"] = before.describe() if before is not None else None
        res.update(step=step, parameters=count_parameters(net))
        out.append(res)
        before = step
    return out


# --- the colour baseline and the figure -----------------------------------------------------------------

def nearest_colour(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Per pixel, the nearest (Euclidean, in RGB) of black and the three class-centre colours: 0 for
    black (background), k for class k. What colour alone predicts, blind to shape and position."""
    x = torch.as_tensor(images).float()                                    # (..., 3)
    centres = torch.as_tensor(MASK_COLOURS, dtype=torch.float32, device=x.device)
    dist = ((x.unsqueeze(-2) - centres) ** 2).sum(-1)                      # (..., 4)
    return dist.argmin(-1).to(torch.uint8)


def nearest_colour_chunked(images: np.ndarray, chunk: int = 256) -> np.ndarray:
    """`nearest_colour` of many uint8 images, `chunk` at a time: bounds the (chunk, H, W, 4, 3) distances to
    tens of MB."""
    return np.concatenate([nearest_colour(np.array(images[i:i + chunk])).numpy()
                           for i in range(0, len(images), chunk)])


# --- figure -------------------------------------------------------------------------------------------

def colour_masks(labels: np.ndarray) -> np.ndarray:
    return MASK_COLOURS[np.asarray(labels)]


def predictions_figure(images: np.ndarray, labels: np.ndarray, predicted: np.ndarray, title: str):
    """A column per example: the image, its true label map, the predicted one (class-centre colours)."""
    rows = (("image", images), ("true mask", colour_masks(labels)), ("predicted", colour_masks(predicted)))
    return image_grid(rows, title, cell=(1.6, 5.0 / 3), interpolation="nearest")


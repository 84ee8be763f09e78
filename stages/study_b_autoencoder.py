"""Study B stage: train the CIFAR-10 autoencoder of one latent size (`--hidden`) and seed (`--repeat k`: the
run's seed is `seed + k`; 0 is the first seed of every size) until its validation MSE stops improving; save it,
its per-epoch losses, its test MSE and a grid of test images over their reconstructions."""
import sys

import torch

from latentspace import cifar_autoencoders as cae
from latentspace.core.io import save_figure, write_json
from latentspace.core.stage import StageRun, arg, stage
from latentspace.datasets import load_prepared
from latentspace.training.device import seed_everything, setup_run
from latentspace.training.engine import predict, to_unit_float_channels_last

ARGS = [arg("--hidden", type=int, required=True, help="latent size"),
        arg("--repeat", type=int, default=0, help="seed offset: the run's seed is seed + repeat")]


def train(run: StageRun) -> str:
    hidden, repeat = run.args.hidden, run.args.repeat
    tag = cae.run_tag(hidden, repeat)
    p = run.params["study_b"]
    seed = run.seed + repeat
    seed_everything(seed)
    arrays = load_prepared("cifar10")
    data = cae.cifar_on_device(arrays, run.device, train_size=p["ae_train_size"], val_size=p["ae_val_size"],
                               seed=seed)
    model = cae.build_autoencoder(hidden, (p["conv1_channels"], p["conv2_channels"]), run.device)

    with run.live(f"metrics/study_b/live/ae-{tag}") as live:
        result = cae.train_autoencoder(
            model, data["x_train"], data["x_val"], data["x_test"], max_epochs=p["ae_max_epochs"],
            patience=p["ae_patience"], batch_size=p["ae_batch_size"], lr=p["ae_lr"], precision=run.precision,
            seed=seed, live=live)
    cae.save_autoencoder(f"models/study_b/ae-{tag}.pt", model)

    shown = cae.example_indices(arrays["y_test"], p["grid_per_class"])
    shown_t = torch.as_tensor(shown, device=run.device)
    reconstructions = predict(model, data["x_test"][shown_t], precision=run.precision,
                              preprocess=to_unit_float_channels_last).cpu().numpy()
    titles = [cae.CIFAR10_CLASSES[c] for c in arrays["y_test"][shown]]
    save_figure(f"reports/study_b/ae-{tag}-reconstructions.png",
                cae.reconstruction_figure(data["x_test"][shown_t].cpu().numpy(), reconstructions, titles, hidden))

    fit = result.fit
    write_json(f"metrics/study_b/sizes/ae-{tag}.json", {
        "hidden": hidden,
        "seed": seed,
        "test_mse": result.test_mse,
        "val_mse": result.val_mse,
        "final_train_mse": fit.history[-1]["train_loss"],
        "epoch_kept": fit.epoch_kept,
        "epochs_run": fit.epochs_run,
        "max_epochs": fit.max_epochs,
        "hit_cap": fit.hit_cap,
        "val_loss_curve": [h["val_loss"] for h in fit.history],
        "train_images": len(data["x_train"]),
        "val_images": len(data["x_val"]),
        "parameters": sum(t.numel() for t in model.parameters()),
    })
    run.timing["train_images_per_second"] = fit.train_images_per_second
    cap = ", hit the epoch cap" if fit.hit_cap else ""
    return f"test MSE {result.test_mse:.5f} (epoch {fit.epoch_kept} of {fit.epochs_run} kept{cap})"


main = stage(__doc__, name="study_b_autoencoder@{hidden}", sections=["study_b"], args=ARGS, setup=setup_run)(train)
main_repeat = stage(__doc__, name="study_b_autoencoder_seed@{hidden}-{repeat}", sections=["study_b"], args=ARGS,
                    setup=setup_run)(train)

if __name__ == "__main__":
    (main_repeat if "--repeat" in sys.argv else main)()

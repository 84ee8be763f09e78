"""Study B stage: train the CIFAR-10 autoencoder of one latent size (`--hidden`), save it, its per-epoch
losses, its final MSE and a grid of test images over their reconstructions."""
import argparse

import torch
from dvclive import Live

from latentspace import cifar_autoencoders as cae
from latentspace.core.errors import UserError
from latentspace.core.io import atomic_dir, save_figure, write_json
from latentspace.core.params import load_params
from latentspace.core.stage import Timer, stage_main
from latentspace.datasets import load_prepared
from latentspace.training.device import setup_run
from latentspace.training.engine import predict


@stage_main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hidden", type=int, required=True, help="latent size (one of study_b.hidden_sizes)")
    hidden = parser.parse_args().hidden
    if hidden < 1:
        raise UserError(f"--hidden = {hidden} is not allowed; expected a latent size >= 1")
    with Timer() as timer:
        params = load_params(sections=["study_b"])
        p = params["study_b"]
        device, precision = setup_run(params)
        arrays = load_prepared("cifar10")
        data = cae.cifar_on_device(arrays, device, train_size=p["ae_train_size"], seed=params["seed"])
        model = cae.build_autoencoder(hidden, (p["conv1_channels"], p["conv2_channels"]), device)

        with atomic_dir(f"metrics/study_b/live/ae-{hidden}") as live_dir:
            with Live(dir=str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None) as live:
                result = cae.train_autoencoder(
                    model, data["x_train"], data["x_val"], data["x_test"], epochs=p["ae_epochs"],
                    batch_size=p["ae_batch_size"], lr=p["ae_lr"], precision=precision, seed=params["seed"],
                    live=live)
        cae.save_autoencoder(f"models/study_b/ae-{hidden}.pt", model)

        shown = cae.example_indices(arrays["y_test"], p["grid_per_class"])
        shown_t = torch.as_tensor(shown, device=device)
        reconstructions = predict(model, data["x_test"][shown_t], precision=precision).cpu().numpy()
        titles = [cae.CIFAR10_CLASSES[c] for c in arrays["y_test"][shown]]
        save_figure(f"reports/study_b/ae-{hidden}-reconstructions.png",
                    cae.reconstruction_figure(data["x_test"][shown_t].cpu().numpy(), reconstructions, titles, hidden))

    write_json(f"metrics/study_b/sizes/ae-{hidden}.json", {
        "hidden": hidden,
        "test_mse": result.test_mse,
        "val_mse": result.val_mse,
        "final_train_mse": result.fit.history[-1]["train_loss"],
        "best_epoch": result.fit.best_epoch + 1,
        "epochs": p["ae_epochs"],
        "train_images": len(data["x_train"]),
        "parameters": sum(t.numel() for t in model.parameters()),
        "train_images_per_second": result.fit.train_images_per_second,
        "device": device.type,
        "precision": precision,
        "seconds": timer.seconds,
    })


if __name__ == "__main__":
    main()

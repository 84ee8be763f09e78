"""Study B stage: reconstruction MSE and probe accuracy against the latent size over all sizes and seeds (means
over seeds, with every seed's value), per-class precision and recall, which data the study ran on, what its JPEG
decoding costs the probe and which claims this scale can decide; and every Study B figure (reconstructions,
confusion matrices, the summary)."""
from pathlib import Path

import numpy as np

from latentspace.constants import CIFAR10_CLASSES
from latentspace.core.errors import UserError
from latentspace.core.io import atomic_dir, read_json, read_yaml, save_figure, write_json
from latentspace.core.stage import StageRun, stage
from latentspace.datasets import load_prepared
from latentspace.paths import (STUDY_B_AE_RECORDS, STUDY_B_FIGURES, STUDY_B_PLOTS, STUDY_B_PROBE_RECORDS, STUDY_B_SUMMARY,
                              dataset_record)
from latentspace.study_b import autoencoder as ae
from latentspace.study_b import figures
from latentspace.study_b.summary import summary

AE_RECORDS, PROBE_RECORDS, PLOTS = STUDY_B_AE_RECORDS, STUDY_B_PROBE_RECORDS, STUDY_B_PLOTS


def _read(path: str, producer: str) -> dict:
    try:
        return read_json(path)
    except FileNotFoundError:
        raise UserError(f"{path}: missing; run `dvc repro {producer}` first") from None
    except ValueError:
        raise UserError(f"{path}: not valid JSON; rerun `dvc repro -f {producer}`") from None


def draw_figures(folder: Path, runs: list[tuple[int, int]], probes: dict[str, dict], rows: list[dict],
                 per_class: int) -> None:
    """The reconstructions of a fixed set of test images by every saved autoencoder, every probe's test
    confusion matrix and the summary figure, into `folder`."""
    arrays = load_prepared("cifar10")
    y_test = np.asarray(arrays["y_test"])
    shown = figures.example_indices(y_test, per_class)
    x_shown = np.array(arrays["x_test"][shown])
    titles = [CIFAR10_CLASSES[c] for c in y_test[shown]]
    for hidden, repeat in runs:
        tag = ae.run_tag(hidden, repeat)
        model = ae.load_autoencoder(ae.model_path(hidden, repeat))
        save_figure(folder / f"ae-{tag}-reconstructions.png",
                    figures.reconstruction_figure(x_shown, ae.reconstruct(model, x_shown), titles, hidden))
        q = probes[tag]
        save_figure(folder / f"probe-{tag}-confusion.png", figures.confusion_figure(
            np.asarray(q["confusion"]), CIFAR10_CLASSES, f"Linear probe on hidden = {hidden} (seed {q['seed']}): "
            f"CIFAR-10 test confusion (accuracy {q['test_accuracy']:.3f})"))
    save_figure(folder / "summary.png", figures.summary_figure(rows))


@stage(__doc__, name="study_b_summary")
def main(run: StageRun) -> str:
    p = run.params["study_b"]
    runs = ae.runs_of(p)
    tags = [ae.run_tag(*r) for r in runs]
    ae_records = {t: _read(f"{AE_RECORDS}/ae-{t}.json", "study_b_autoencoders") for t in tags}
    probes = {t: _read(f"{PROBE_RECORDS}/probe-{t}.json", "study_b_probes") for t in tags}
    jpeg_tag = ae.run_tag(p["jpeg_check_hidden"])
    if probes[jpeg_tag].get("jpeg_roundtrip") is None:
        raise UserError(f"{PROBE_RECORDS}/probe-{jpeg_tag}.json has no JPEG round trip; rerun "
                        "`dvc repro -f study_b_probes`")
    dataset = _read(dataset_record("cifar10"), "prepare_dataset@cifar10")
    facts = read_yaml("references.yaml", what="the published facts")["facts"]["study_b_probe_accuracy"]
    result = summary(p, ae_records, probes, dataset, int(facts["autoencoder_epochs"]), runs)

    rows = [{"hidden": int(h), **e} for h, e in result["by_hidden"].items()]
    with atomic_dir(STUDY_B_FIGURES) as folder:
        draw_figures(folder, runs, probes, rows, p["grid_per_class"])
    write_json(f"{PLOTS}/mse_by_size.json", [{"hidden": r["hidden"], "test_mse": r["test_mse"]} for r in rows])
    write_json(f"{PLOTS}/accuracy_by_size.json",
               [{"hidden": r["hidden"], "probe_test_accuracy": r["probe_test_accuracy"]} for r in rows])
    write_json(STUDY_B_SUMMARY, result)
    scale = result["scale"]
    return (f"best probe test accuracy {result['best_probe_test_accuracy']:.4f} at hidden "
            f"{result['best_probe_hidden']}; {scale['ae_runs_converged']}/{scale['ae_runs']} autoencoders "
            f"converged; one more JPEG round trip costs the probe {result['data']['jpeg_roundtrip_drop']:+.4f}")


if __name__ == "__main__":
    main()

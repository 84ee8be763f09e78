"""Study A2 stage: EDA of the two 50k samples (without and with full containment), side by side, painted from
their parameter tables chunk by chunk."""
from latentspace import paths
from latentspace.study_a import eda
from latentspace.core.io import save_figure, write_json
from latentspace.core.stage import StageRun, stage
from latentspace.study_a.rectangles import load_parameters

SAMPLES = ("eda_free", "eda_contained")


@stage(__doc__, name="eda")
def main(run: StageRun) -> str:
    examples = run.params["eda"]["examples"]
    metrics, histograms = {}, {}
    for sample in SAMPLES:
        rs = load_parameters(paths.rectangles(sample))
        metrics[sample], histograms[sample] = eda.sample_statistics(rs)
        save_figure(f"{paths.EDA_FIGURES}/examples-{sample}.png",
                    eda.examples_figure(rs, examples, f"{sample}: images, label maps and full masks"))
        del rs
    save_figure(f"{paths.EDA_FIGURES}/geometry.png", eda.geometry_figure(histograms))
    save_figure(f"{paths.EDA_FIGURES}/areas.png", eda.areas_figure(metrics))
    save_figure(f"{paths.EDA_FIGURES}/colours.png", eda.colours_figure(histograms, metrics[SAMPLES[0]]["delta"]))
    write_json(paths.EDA_HISTOGRAMS, histograms)
    write_json(paths.EDA_SUMMARY, metrics)
    return " and ".join(f"{sample} {metrics[sample]['n']} images" for sample in SAMPLES) + " summarised"


if __name__ == "__main__":
    main()

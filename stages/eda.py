"""Study A2 stage: EDA of the two 50k samples (without and with full containment), side by side."""
from latentspace import eda
from latentspace.core.io import save_figure, write_json
from latentspace.core.stage import StageRun, stage
from latentspace.rectangles import load_rectangles

SAMPLES = ("eda_free", "eda_contained")


@stage(__doc__, name="eda", sections=["eda"])
def main(run: StageRun) -> str:
    examples = run.params["eda"]["examples"]
    metrics, histograms = {}, {}
    for sample in SAMPLES:
        rs = load_rectangles(f"data/rectangles/{sample}")
        metrics[sample], histograms[sample] = eda.sample_statistics(rs)
        save_figure(f"reports/eda/examples-{sample}.png",
                    eda.examples_figure(rs, examples, f"{sample}: images, label maps and full masks"))
        del rs
    save_figure("reports/eda/geometry.png", eda.geometry_figure(histograms))
    save_figure("reports/eda/areas.png", eda.areas_figure(metrics))
    save_figure("reports/eda/colours.png", eda.colours_figure(histograms, metrics[SAMPLES[0]]["delta"]))
    write_json("metrics/eda/histograms.json", histograms)
    write_json("metrics/eda/summary.json", metrics)
    return " and ".join(f"{sample} {metrics[sample]['n']} images" for sample in SAMPLES) + " summarised"


if __name__ == "__main__":
    main()

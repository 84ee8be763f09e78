"""Study A in the report: the EDA of the two 50k samples (A2), the segmentation nets per (net, loss) with their
spread over launches and the training protocol with every step of each net's chain (A3), and the latent-space
analysis (A4). Data provenance is in the appendix."""
from __future__ import annotations

from typing import Any, Callable

from latentspace import paths, results
from latentspace.constants import CLASS_PAIRS, RECTANGLE_CLASSES, SEGMENTATION_CLASSES
from latentspace.report.common import Inputs, MissingInput, convergence_table, fmt, guarded, lock_hashes, mean_std
from latentspace.report.document import Gallery, Note, Section, Table, Text

# The EDA summary keys its classes class_1..class_3.
EDA_CLASS_KEYS = tuple(f"class_{k}" for k in RECTANGLE_CLASSES)
EDA_SAMPLES = ("eda_free", "eda_contained")
SEG_SCORES = (("pixel_accuracy", "pixel accuracy"), ("mean_iou", "mean IoU"), ("mean_dice", "mean Dice"),
              ("mean_iou_rectangles", "mean IoU (rectangles)"), ("mean_dice_rectangles", "mean Dice (rectangles)"))


def _range(stat: dict | None) -> str:
    if not stat:
        return "–"
    return f"{fmt(stat.get('min'))}–{fmt(stat.get('max'))} (mean {fmt(stat.get('mean'))})"


def eda_section(inputs: Inputs, params: dict) -> list[Section]:
    summary = inputs.read(results.eda_summary, missing=f"`{paths.EDA_SUMMARY}` is missing")
    samples = [k for k in EDA_SAMPLES if k in summary]
    if not samples:
        raise MissingInput(f"`{paths.EDA_SUMMARY}` holds neither EDA sample")
    m = {k: summary[k] for k in samples}
    cols = ["quantity", *(f"`{k}`" for k in samples)]

    def row(label: str, get: Callable[[dict], Any], show: Callable[[Any], str] = fmt) -> list[str]:
        return [label, *(show(get(m[k])) for k in samples)]

    s = Section("A2. Exploratory analysis of the two 50k samples", level=3)
    s.add(Text("Both EDA samples side by side: without (`eda_free`, rectangles clipped at the frame) and with full "
               f"containment (`eda_contained`). From `{paths.EDA_SUMMARY}`."))
    s.add(Table(cols, [row("images", lambda d: d.get("n")), row("full containment", lambda d: d.get("contained")),
                       row("delta", lambda d: d.get("delta")),
                       row("rectangles clipped by the frame", lambda d: d["geometry"].get("clipped_fraction")),
                       row("background fraction of the pixels", lambda d: d.get("background_fraction"))],
                "Samples"))
    area_rows = []
    for c in EDA_CLASS_KEYS:
        label = c.replace("_", " ")
        for key, what in (("full_area_fraction", "full area / image"), ("visible_area_fraction", "visible area / image"),
                          ("hidden_fraction", "share of own pixels hidden"),
                          ("fully_hidden_rate", "share of images where fully hidden")):
            area_rows.append(row(f"{label}: {what}", lambda d, c=c, key=key: d["classes"][c].get(key)))
    s.add(Table(cols, area_rows, "Per class: full (un-occluded) and visible area, and what the later rectangles hide"))
    pairs = list(m[samples[0]].get("overlap_rate", {}))
    s.add(Table(cols, [row(f"classes {p}" if p != "all_three" else "all three classes",
                           lambda d, p=p: d["overlap_rate"].get(p)) for p in pairs],
                "Share of images in which the full rectangles of a pair of classes overlap"))
    geometry = [g for g in ("xc", "yc", "w", "h") if g in m[samples[0]].get("geometry", {})]
    s.add(Table(cols, [row(g, lambda d, g=g: d["geometry"][g],
                           lambda st: f"{fmt(st['mean'])} ± {fmt(st['std'], 3)} ({fmt(st['min'])}–{fmt(st['max'])})")
                       for g in geometry],
                "Geometry, all classes pooled: mean ± std (min–max), pixels"))
    colour_rows = [row(f"{c.replace('_', ' ')} {ch}", lambda d, c=c, ch=ch: (d["classes"][c].get("colour") or {}).get(ch),
                       _range)
                   for c in EDA_CLASS_KEYS for ch in ("R", "G", "B")]
    s.add(Table(cols, colour_rows, "Colour per class and channel: min–max (mean)"))
    s.add(inputs.figure(f"{paths.EDA_FIGURES}/geometry.png", "Centres and side lengths, both samples."),
          inputs.figure(f"{paths.EDA_FIGURES}/areas.png", "Full, visible and hidden area per class; how often pairs overlap."),
          inputs.figure(f"{paths.EDA_FIGURES}/colours.png", "Colour histograms per class and channel."))
    s.add(Gallery([inputs.figure(f"{paths.EDA_FIGURES}/examples-{k}.png", f"`{k}`: images, label maps and full masks.")
                   for k in samples]))
    return [s]


def _seg_name(rec: dict, stem: str) -> str:
    net, loss = rec.get("net", stem), rec.get("loss")
    return f"{net} / {loss}" if loss else str(net)


def over_launches(rec: dict, get: Callable[[dict], Any], digits: int = 4) -> str:
    """mean ± std over the launches of one value of each launch."""
    vals = [get(r) for r in results.launches(rec)]
    return mean_std([v for v in vals if isinstance(v, (int, float))], digits)


def segmentation_section(inputs: Inputs, params: dict) -> list[Section]:
    base = inputs.read(results.baseline)
    records = {**({"baseline": base} if base is not None else {}), **inputs.read(results.segmentation_records)}
    if not records:
        raise MissingInput(f"no metrics under `{paths.SEGMENTATION_METRICS}/`")
    # The baseline first, then the nets in name order.
    order = sorted(records, key=lambda k: (k != "baseline", k))
    out = []
    s = Section("A3. Segmentation networks on the test set", level=3)
    s.add(Text("Pixel accuracy, IoU and Dice of each trained (net, loss) and of the colour baseline "
               f"(`{paths.SEGMENTATION_METRICS}/`): mean ± sample standard deviation over the launches (independent "
               "trainings from different seeds). \"Rectangles\" averages the three rectangle classes only."))
    s.add(Table(["model", "parameters", "launches", *(label for _, label in SEG_SCORES)],
                [[_seg_name(records[k], k), fmt(records[k].get("parameters")), fmt(len(results.launches(records[k]))),
                  *(over_launches(records[k], lambda r, key=key: r.get(key)) for key, _ in SEG_SCORES)]
                 for k in order], "Overall"))
    for score in ("iou", "dice"):
        s.add(Table(["model", *SEGMENTATION_CLASSES],
                    [[_seg_name(records[k], k),
                      *(over_launches(records[k], lambda r, c=c: (r.get(score) or {}).get(c), 3)
                        for c in SEGMENTATION_CLASSES)] for k in order],
                    f"{'IoU' if score == 'iou' else 'Dice'} per class, mean ± std over launches"))
    s.add(Table(["model", "train / val / test images", "epochs", "kept epoch per launch", "seeds", "delta"],
                [[_seg_name(r, k), f"{fmt(r.get('train_images'))} / {fmt(r.get('val_images'))} / "
                  f"{fmt(r.get('test_images'))}",
                  ", ".join(sorted({fmt(x.get('epochs')) for x in results.launches(r)})),
                  ", ".join(fmt(x.get("epoch_kept", x.get("best_epoch"))) for x in results.launches(r)),
                  ", ".join(fmt(x) for x in r.get("seeds") or []) or "–", fmt(r.get("delta"))]
                 for k, r in ((k, records[k]) for k in order)],
                "How each model was trained (the epoch with the lowest validation loss is kept)"))
    out.append(s)
    nets = {k: r for k, r in records.items() if k != "baseline"}
    if nets:
        out.append(training_section(nets))

    s = Section("A3. Confusion matrices (test pixels)", level=3)
    s.add(Text("Rows are the true class, columns the predicted one; counts of test pixels summed over the launches, "
               "and in brackets the share of the row (recall on the diagonal)."))
    for k in order:
        cms = [r.get("confusion_matrix") for r in results.launches(records[k]) if r.get("confusion_matrix")]
        if not cms:
            s.add(Note(f"`{paths.segmentation_record(k)}` has no confusion matrix."))
            continue
        cm = [[sum(m[i][j] for m in cms) for j in range(len(cms[0][i]))] for i in range(len(cms[0]))]
        rows = []
        for i, counts in enumerate(cm):
            total = sum(counts)
            rows.append([f"true {SEGMENTATION_CLASSES[i] if i < len(SEGMENTATION_CLASSES) else i}",
                         *(f"{fmt(int(v))} ({v / total:.3f})" if total else fmt(int(v)) for v in counts)])
        s.add(Table(["", *(f"pred. {c}" for c in SEGMENTATION_CLASSES[:len(cm)])], rows, _seg_name(records[k], k)))
    out.append(s)

    s = Section("A3. Predictions", level=3)
    s.add(Text("Test images, their label maps and each model's prediction."))
    s.add(Gallery([inputs.figure(paths.segmentation_figure(k), f"{_seg_name(records[k], k)}.")
                   for k in order]))
    out.append(s)
    return out


PROTOCOLS = {
    "chained": "`chained`, as the original script: one model per net goes through launch 1 of every loss of the "
               "chain ({chain}), then launch 2, and so on, each step starting from the weights the step before "
               "kept; a loss outside the chain trains from fresh weights",
    "independent": "`independent`: every (net, loss, launch) trains from fresh weights"}


def _stopped_by(stop: dict) -> str:
    return {True: "patience (converged)", False: "epoch cap"}.get(stop.get("converged"), "–")


def training_section(records: dict[str, dict]) -> Section:
    """The protocol the nets were trained under, and every training run of each net in order (its chain's
    steps, then its runs from fresh weights): what it started from, its test mean IoU and how it stopped."""
    runs = results.training_runs(records)
    chain = list(dict.fromkeys(r["loss"] for net_runs in runs.values() for r in net_runs if r["step"] is not None))
    said = [PROTOCOLS.get(p, f"`{p}`").format(chain=" → ".join(chain) or "–") for p in results.protocols(records)]
    s = Section("A3. Training protocol and the chain of each net", level=3)
    s.add(Text(f"Protocol (`segmentation.protocol`): {'; '.join(said) or 'not recorded (an older run)'}. Every "
               f"training run of each net in the order it trained, from `{paths.segmentation_record('<net>-<loss>')}` "
               "(`chain`, and per launch `step`, `started_from`, `stopping`): the test mean IoU of the weights it "
               "kept, and whether early stopping (`segmentation.patience` on `segmentation.monitor`) ended every "
               "phase of its schedule before the phase's epoch cap (converged) or a phase ran to its cap."))
    rows = [[net, fmt(r["step"]) if r["step"] is not None else "fresh", str(r["loss"]), fmt(r["launch"]),
             r["started_from"] or ("the step before" if r["step"] not in (None, 1) else "fresh weights"),
             fmt(r["mean_iou"]), f"{fmt(r['stopping']['epochs_run'])} / {fmt(r['stopping']['max_epochs'])}",
             fmt(r["stopping"]["epoch_kept"]), _stopped_by(r["stopping"])]
            for net, net_runs in runs.items() for r in net_runs]
    s.add(Table(["net", "step", "loss", "launch", "started from", "test mean IoU", "epochs run / cap",
                 "kept epoch", "stopped by"], rows),
          convergence_table([(f"{net}: {'chain' if step else 'fresh weights'}",
                              [r["stopping"] for r in net_runs if (r["step"] is not None) == step])
                             for net, net_runs in runs.items() for step in (True, False)
                             if any((r["step"] is not None) == step for r in net_runs)],
                            "Training runs per net that converged and that hit their epoch cap"))
    return s


def separability_table(records: dict[str, dict]) -> Table | None:
    """Per (net, loss), layer, image set and reducer: held-out kNN accuracy of each pair of classes in the 2-D
    embedding, mean ± std over the analysed launches."""
    rows = []
    for rec in records.values():
        for layer, by_set in (rec.get("separability") or {}).items():
            for image_set, by_reducer in by_set.items():
                for reducer, r in by_reducer.items():
                    pairs = r.get("pairs") or {}
                    rows.append([f"{rec.get('net')} / {rec.get('loss')}", f"`{layer}`"
                                 + (" (claims)" if layer == rec.get("primary_layer") else ""), f"`{image_set}`",
                                 reducer.upper(), *(mean_std(pairs.get(p) or [], 3) for p in CLASS_PAIRS),
                                 fmt(len(r.get("launches") or [])),
                                 ", ".join(fmt(c) for c in r.get("apart_class") or []) or "–"])
    if not rows:
        return None
    return Table(["net / loss", "layer", "image set", "2-D embedding", *(f"pair {p}" for p in CLASS_PAIRS),
                  "launches", "class apart, per launch"], rows)


def _smallest(block: dict | None) -> tuple[str, dict] | None:
    """The reduction to the smallest dimension of a sweep {"<d>": result}."""
    if not block:
        return None
    d = min(block, key=int)
    return d, block[d]


def _per_class(scores: dict | None) -> str:
    if not scores:
        return "–"
    return " / ".join(fmt(scores[c], 3) for c in sorted(scores, key=str))


def image_sets_section(sets_record: dict, params: dict, root) -> Section:
    """The single-rectangle image sets the latent analysis encodes (params.yaml keeps their former key,
    `latent.probe_sets`)."""
    image_sets = sets_record.get("image_sets") or {}
    # In the order params.yaml lists the image sets, then any others (from an earlier run).
    wanted = list((params.get("latent") or {}).get("probe_sets") or [])
    order = sorted(image_sets, key=lambda v: (wanted.index(v) if v in wanted else len(wanted), v))
    rows = []
    for name in order:
        record = image_sets[name]
        varied = [f for f, per_class in (record.get("factor_ranges") or {}).items()
                  if any(lo != hi for lo, hi in per_class.values())]
        rows.append([f"`{name}`", fmt(record.get("images")), ", ".join(varied) or "none"])
    md5 = lock_hashes(root).get(paths.IMAGE_SETS, "–")
    return Section("A4. Image sets", [
        Text(f"Single-rectangle images per image set; the factors that vary within a class, the rest fixed "
             f"(`{paths.IMAGE_SETS_RECORD}`). Drawn with delta {fmt(sets_record.get('delta'))}, full containment "
             f"{fmt(sets_record.get('contained'))}; `{paths.IMAGE_SETS}` has md5 `{md5}` in dvc.lock."),
        Table(["image set", "images", "factors that vary"], rows)], 3)


def separability_section(records: dict[str, dict]) -> Section:
    s = Section("A4. Separability of the classes in 2-D", level=3)
    table = separability_table(records)
    if table is None:
        s.add(Note("No pairwise separability in `metrics/latent/` (an analysis from before it was measured)."))
        return s
    method = next((r.get("separability_method") for r in records.values() if r.get("separability_method")), None)
    s.add(Text("Held-out accuracy of a kNN classifier for each pair of classes in the 2-D embedding of the codes, "
               "mean ± std over the analysed launches: the measure the Study A claims are checked with (their own "
               "thresholds are in Appendix C); the last column is the analysis's summary of each launch. "
               + (f"Method: {method}" if isinstance(method, str) else "")), table)
    return s


def compactness_section(records: dict[str, dict]) -> Section:
    s = Section("A4. Compactness of the latent codes", level=3)
    s.add(Text("Per net, bottleneck layer and image set: the one-vs-rest linear probe's F1 per class (classes "
               "1 / 2 / 3) on the set it was fitted on and on the held-out share, silhouette score and the ratio "
               "of mean within-class to between-class distance, for the raw codes and for the smallest dimension "
               "of each reducer's sweep (`metrics/latent/<net>-<loss>.json`)."))
    for rec in records.values():
        rows = []
        for layer, entry in rec["layers"].items():
            for variant, res in entry["image_sets"].items():
                shown = [("raw", str(entry.get("code_dim")), res.get("raw"))]
                for reducer in rec.get("reducers") or [r for r in res if r != "raw"]:
                    small = _smallest(res.get(reducer))
                    if small:
                        shown.append((reducer.upper(), small[0], small[1]))
                for label, dim, r in shown:
                    r = r or {}
                    rows.append([f"`{layer}`", f"`{variant}`", f"{label} {dim}", _per_class(r.get("f1_fit")),
                                 _per_class(r.get("f1_heldout")), fmt(r.get("silhouette"), 3),
                                 fmt(r.get("within_between_ratio"), 3)])
        s.add(Table(["layer", "image set", "features", "F1 fit (1 / 2 / 3)", "F1 held-out (1 / 2 / 3)",
                     "silhouette", "within / between"], rows, f"{rec.get('net')} / {rec.get('loss')}"))
    return s


def continuity_section(records: dict[str, dict]) -> Section:
    s = Section("A4. Continuity", level=3)
    s.add(Text("Spearman rank correlation between the geodesic distance on the kNN graph of the codes and the "
               "distance in generator parameters, on a sample of the `all` set; within each class as well, since "
               "compact classes leave the graph in pieces."))
    rows = []
    for rec in records.values():
        for layer, entry in rec["layers"].items():
            c = entry.get("continuity")
            if c:
                rows.append([f"{rec.get('net')} / {rec.get('loss')}", f"`{layer}`", fmt(c.get("spearman"), 3),
                             fmt(c.get("spearman_within_class_mean"), 3), _per_class(c.get("spearman_within_class")),
                             fmt(c.get("connected_fraction"), 3), fmt(c.get("components")), fmt(c.get("n")),
                             fmt(c.get("k"))])
    if rows:
        s.add(Table(["net / loss", "layer", "Spearman", "within class, mean", "within class 1 / 2 / 3",
                     "connected pairs", "graph components", "images", "k"], rows))
    else:
        s.add(Note("No continuity result: the `all` image set was not analysed."))
    return s


def latent_figures_sections(inputs: Inputs, records: dict[str, dict]) -> list[Section]:
    out = []
    for name, rec in records.items():
        folder = paths.latent_figures(name)
        figures = [inputs.figure(f"{folder}/f1-fit.png", "Linear-probe F1 on the fitted set vs dimension."),
                   inputs.figure(f"{folder}/f1-heldout.png", "Linear-probe F1 on the held-out share vs dimension.")]
        figures += [inputs.figure(f"{folder}/scatter-{layer}.png", f"2-D PCA and UMAP embeddings of `{layer}`.")
                    for layer in rec["layers"]]
        if any(e.get("continuity") for e in rec["layers"].values()):
            figures.append(inputs.figure(f"{folder}/continuity.png", "Geodesic code distance vs parameter distance."))
        out.append(Section(f"A4. Figures: {rec.get('net')} / {rec.get('loss')}", [Gallery(figures)], 4))
    return out


def latent_section(inputs: Inputs, params: dict) -> list[Section]:
    sets_record = inputs.read(results.image_sets) or {}
    records = inputs.read(results.latent_records)
    if not records and not sets_record.get("image_sets"):
        raise MissingInput(f"no metrics under `{paths.LATENT_METRICS}/`")
    out = [image_sets_section(sets_record, params, inputs.root)] if sets_record.get("image_sets") else []
    if not records:
        return out + [Section("A4. Latent space analysis", [Note("Not available yet: no net has been analysed "
                                                                 "(`metrics/latent/<net>-<loss>.json`).")], 3)]
    return (out + [separability_section(records), compactness_section(records), continuity_section(records)]
            + latent_figures_sections(inputs, records))


def study_a(inputs: Inputs, params: dict) -> list[Section]:
    out = []
    for build, what, title in ((eda_section, "Study A EDA", "A2. Exploratory analysis of the two 50k samples"),
                               (segmentation_section, "Study A segmentation", "A3. Segmentation networks"),
                               (latent_section, "Study A latent analysis", "A4. Latent space analysis")):
        out += guarded(build, what, title)(inputs, params)
    return out

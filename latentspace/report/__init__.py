"""The report of all three studies (reports/report.md and reports/report.html), built only from what the pipeline
tracks: the JSON metrics under `metrics/`, the figures under `reports/`, `params.yaml` and `references.yaml`.

Modules: `document` (the document model and its Markdown/HTML rendering), `common` (inputs read through
latentspace/results.py, formatting numbers), `glance` and `glance_figures` ("Reproduction at a glance": verdict
table, one sentence and one key figure per study), `study_a`, `study_b`, `study_c` (one per study), `appendix`
(run identity, parameters, data provenance, verdict rules, stage times) and `build` (the whole report).
"""

"""Write the generated parts of README.md and docs/*.md from tracked files (`make docs`, `python -m latentspace.docs`).

A generated block sits between two HTML comments, `<!-- generated: KIND ARGS -->` and `<!-- end generated -->`;
everything outside them is prose and left alone. The kinds (`BLOCKS` in latentspace/docs/cli.py):

- `glance`: per claim its verdict and, when undecided, the reason in words; the counts kept apart for claims the
  sources state, claims derived from their tables and extensions; the headline numbers (latentspace/docs/glance.py);
- `costs`, `stage-times`, `workers`, `pool`, `engine`, `layer-order`, `size-trial`: the cost box, the stage times
  of the committed run, one worker against several, the benchmarks' figures and the smaller training sets
  measured against the budget (docs/costs.yaml, metrics/timing/; latentspace/docs/costs.py);
- `convergence STUDY`: per run family how many runs stopped by their patience, the epochs run and kept
  (latentspace/docs/convergence.py);
- `colours`: the class colours and the deltas where their ranges clip and overlap (latentspace/constants.py);
- `datasets`: the checksums of the datasets the committed run read (metrics/datasets/*.json);
- `params PREFIX...`: a table of every parameter under those keys: default from params.yaml, allowed values from
  the schema (latentspace/core/params.py), notes from the comments above the key in params.yaml.

Tables and numbers are rendered by the report's own document model and `fmt` (latentspace/report/), metrics are
read through latentspace/results.py and paths come from latentspace/paths.py. `python -m latentspace.docs --check`
rewrites nothing and fails when a block is stale (tests/docs/test_docs.py).
"""
from latentspace.docs.cli import BLOCKS, doc_paths, main, render
from latentspace.docs.colours import block_colours
from latentspace.docs.convergence import block_convergence
from latentspace.docs.costs import (block_costs, block_engine, block_layer_order, block_pool, block_size_trial,
                                   block_stage_times, block_workers)
from latentspace.docs.glance import block_glance
from latentspace.docs.params_table import block_params, params_comments, schema_leaves
from latentspace.docs.readers import block_datasets

__all__ = ["BLOCKS", "doc_paths", "main", "render", "block_colours", "block_convergence", "block_costs",
           "block_engine", "block_layer_order", "block_pool", "block_size_trial", "block_stage_times", "block_workers",
           "block_glance", "block_params", "params_comments", "schema_leaves", "block_datasets"]

"""The settings of the tiny pipeline the end-to-end tests share (the `tiny_pipeline` fixture of conftest.py):
every stage at the tiny sizes of the per-study tests, one instance of each matrix family where one covers its
code paths (the per-study tests cover the rest), on the tiny datasets."""
from test_pipeline_study_a_nets import TINY as TINY_STUDY_A_NETS
from test_pipeline_study_b import TINY_STUDY_B
from test_pipeline_study_c import TINY_STUDY_C
from test_sweeps import TINY_STUDY_A

# Later dicts win: the nets need a larger image than the data-only tiny sizes. One worker: spawning two costs
# more than these tiny runs (the pool's bit-identity across worker counts: tests/test_pool.py and the per-study
# unit tests).
SETTINGS = {**TINY_STUDY_A, **TINY_STUDY_A_NETS, **TINY_STUDY_B, **TINY_STUDY_C, "workers": 1}

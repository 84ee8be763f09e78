import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Tests never touch the real datasets or a GPU.
os.environ.pop("LATENTSPACE_DATA_DIR", None)


@pytest.fixture
def project_root() -> Path:
    return ROOT


@pytest.fixture
def python_bin() -> str:
    return sys.executable

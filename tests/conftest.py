import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "tests" / "fixtures" / "redsm5_sample"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture
def base_config():
    from workflow_lib import config

    return config.load(REPO / "config" / "config.yaml")


@pytest.fixture
def smoke_config():
    from workflow_lib import config

    return config.load(REPO / "config" / "config.yaml", REPO / "config" / "smoke.yaml")

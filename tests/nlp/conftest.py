import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def pipeline():
    import torch

    torch.set_num_threads(1)
    from medsight.nlp import load_pipeline

    return load_pipeline()


@pytest.fixture(scope="session")
def analyze(pipeline):
    from medsight.nlp import analyze_note

    return analyze_note

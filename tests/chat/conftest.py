import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def shipped_kb(tmp_path_factory):
    """The knowledge base built from the summaries shipped in assets/kb (a few seconds)."""
    from medsight.kb.store import build_knowledge_base

    return build_knowledge_base(path=tmp_path_factory.mktemp("kb"))


@pytest.fixture()
def case():
    return {
        "vision": {"anomaly_score": 0.71, "risk_band": "high", "threshold": 0.35,
                   "components": {"reconstruction": 0.6, "kl": 0.2, "vit": 0.8}},
        "note": {"entities": [{"text": "cough"}, {"text": "fever"}, {"text": "effusion", "negated": True}],
                 "conditions": {"pneumonia": 0.82, "pulmonary edema": 0.1}},
        "fusion": {"similarity": 0.41},
    }

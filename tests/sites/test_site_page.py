"""The app's Site profile page in AppTest: opens directly, lists saved profiles from $MEDSIGHT_HOME, and the selector
makes a saved profile the session's active one (every page then scores against it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MEDSIGHT_PRELOAD", "none")

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "5_Site_profile.py")
pytestmark = pytest.mark.slow


def test_page_lists_and_activates_a_saved_profile(tmp_path, monkeypatch):
    import numpy as np
    import torch
    from streamlit.testing.v1 import AppTest

    from medsight.vision.scoring import Calibration
    from medsight.vision.sites import SiteProfile

    monkeypatch.setenv("MEDSIGHT_HOME", str(tmp_path))
    cal = Calibration.from_normal_scores(np.linspace(0, 1, 50)).to_dict()
    SiteProfile("ward7", {"n_films": 50, "created": "2026-12-01 10:00 UTC", "source": "folder ward7 (50 films)",
                          "files_sha256": "0" * 64, "method": {}, "detectors": {"paper": {"calibration": cal}}},
                {"pooled.relu4_3.full": torch.zeros(50, 512, dtype=torch.float16)}).save()
    at = AppTest.from_file(PAGE, default_timeout=240)
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Site profile"
    text = "\n".join(str(m.value) for m in list(at.markdown) + list(at.caption))
    assert "ward7" in text  # the saved-profiles table
    select = at.selectbox(key="site_select")
    assert "none: the shipped reference" in select.options[0]
    select.set_value(1).run()
    assert not at.exception, at.exception
    active = at.session_state["active_site"]
    assert active == "ward7"
    assert any("Scoring against site profile" in s.value and "ward7" in s.value for s in at.success)

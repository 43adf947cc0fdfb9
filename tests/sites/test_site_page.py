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


def test_a_profile_fitted_in_the_session_stays_active_across_reruns(tmp_path, monkeypatch):
    """The page's selector was drawn with "none" before the fit; the fitted profile must stay the active one (it used
    to be switched off again by the selector's stale value on the rerun after the fit)."""
    import numpy as np
    import torch
    from streamlit.testing.v1 import AppTest

    from medsight.vision.scoring import Calibration
    from medsight.vision.sites import SiteProfile

    monkeypatch.setenv("MEDSIGHT_HOME", str(tmp_path))
    cal = Calibration.from_normal_scores(np.linspace(0, 1, 50)).to_dict()
    fitted = SiteProfile("ward9", {"n_films": 50, "created": "2026-12-03 10:00 UTC", "source": "50 uploaded films",
                                   "files_sha256": "0" * 64, "fit_seconds": 1.0, "method": {},
                                   "detectors": {"paper": {"calibration": cal}}},
                         {"pooled.relu4_3.full": torch.zeros(50, 512, dtype=torch.float16)})
    at = AppTest.from_file(PAGE, default_timeout=240)
    at.run()
    assert at.selectbox(key="site_select").value == 0
    at.session_state["site_session_profile"] = fitted  # what the "Fit profile" button leaves before its rerun
    at.session_state["active_site"] = fitted
    at.run()
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["active_site"] is fitted
    assert any("Scoring against site profile" in s.value and "ward9" in s.value for s in at.success)
    assert "ward9 (fitted in this session, not saved)" in at.selectbox(key="site_select").options
    at.selectbox(key="site_select").set_value(0).run()  # the user picks "none": the shipped reference again
    assert at.session_state["active_site"] is None

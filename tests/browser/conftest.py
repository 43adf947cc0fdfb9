"""The browser test reuses the app tests' fixtures (weights present, a real radiograph)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))

from apphelpers import high_film, radiograph, reference_pipeline, weights_ready  # noqa: E402,F401

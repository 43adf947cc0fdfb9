"""Fixtures for the app tests: inputs of each kind a user brings (a real radiograph from ../shared, a DICOM made
here with pydicom, a corrupt file, a colour photo) and the environment the pages run in."""

from __future__ import annotations

import os

# Only the vision models load in the background during tests (the NLP and chat pages load theirs on first use),
# chat answers from the extractive tier (no network, no local model download).
os.environ.setdefault("MEDSIGHT_PRELOAD", "vgg16,paper")
os.environ.setdefault("MEDSIGHT_CHAT_TIERS", "extractive")

from apphelpers import (colour_photo, dicom_bytes, high_film, negative_film, radiograph,  # noqa: E402,F401
                        reference_pipeline, weights_ready)

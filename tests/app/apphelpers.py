"""Helpers shared by the app tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 240  # seconds per AppTest run: the first one loads the backbone on a busy 2-core machine
CORRUPT_PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + os.urandom(200)


def page(name: str) -> str:
    return str(REPO / name)


def rendered_text(at) -> str:
    """Everything a user can read on the page (markdown, captions, alerts, metrics, image captions)."""
    parts = [e.value for e in list(at.markdown) + list(at.caption) + list(at.error) + list(at.warning) + list(at.info)
             + list(at.success)]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    parts += [str(c) for img in at.image for c in (img.captions or [])]
    return "\n".join(str(p) for p in parts)

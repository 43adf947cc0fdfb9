"""The errors a user causes, shared by the library's command modules and the CLI shell: `UserError` (printed as one
sentence, exit 2) and the argparse check for input files. Base floor: imports nothing of MedSight."""

from __future__ import annotations

import argparse


class UserError(Exception):
    """An error the user caused (bad path, missing weights, bad input): printed as one sentence."""


def existing_file(value: str) -> str:
    """argparse `type=` for an input file that must exist and not be a folder."""
    from pathlib import Path

    path = Path(value)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{value} is a folder, not an image file; give the files inside it (e.g. {path / '*.png'})")
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{value}: no such file")
    return value

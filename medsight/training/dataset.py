"""Manifests: a CSV with `file` (relative to the CSV's folder), `label`, `is_normal`, `split`, `source`,
`age_group`, and optional `view`, `license`. The library never assumes where the data lives."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

REQUIRED = ("file", "label", "is_normal", "split")


def read_manifest(path: str | Path, split: str | None = None) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest {path} does not exist")
    df = pd.read_csv(path, dtype={"patient_id": str})
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"manifest {path} lacks columns {missing}")
    for col, default in (("source", "unknown"), ("age_group", "unknown"), ("view", "unknown"), ("license", "")):
        if col not in df.columns:
            df[col] = default
        df[col] = df[col].fillna(default)
    df["path"] = [str((path.parent / f).resolve()) for f in df["file"]]
    df["is_normal"] = df["is_normal"].astype(int)
    if split is not None:
        if split not in set(df["split"]):
            raise ValueError(f"split {split!r} not in manifest (has {sorted(set(df['split']))})")
        df = df[df["split"] == split].reset_index(drop=True)
    return df

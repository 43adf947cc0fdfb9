"""Load every model the app loads at start-up once, through the app's own registry, so that everything a start
would build or convert is made now and kept: the knowledge base from the shipped summaries (`.cache/kb`), the
local chat model in plain safetensors (`.cache/models`), and the library caches (numba, matplotlib).

The Space image runs this at build time, as the app's user (Dockerfile); a start then converts nothing. Exits 1
(and the build fails) when any model is unavailable, with the registry's one-sentence reason.

    python scripts/space_warm.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    from medsight.registry import build_app_registry

    start = time.perf_counter()
    registry = build_app_registry()
    registry.start_background().join()
    status = registry.status()
    failed = []
    for row in status["models"]:
        load = f"{row['load_s']:.1f} s" if row.get("load_s") is not None else "-"
        print(f"  {row['model']:16s} {row['state']:12s} {load:>8s}  {row.get('note') or ''}")
        if row["state"] != "loaded":
            failed.append(row["model"])
    print(f"space_warm: {len(status['models']) - len(failed)}/{len(status['models'])} models loaded on "
          f"{status['device']} in {time.perf_counter() - start:.0f} s")
    if failed:
        print(f"space_warm: not loaded: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

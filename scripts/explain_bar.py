"""Issue 16's heatmap bar measured on dev films, through `medsight explain`'s own code: N normal and N abnormal dev
films (a seeded random draw), one map each per method; prints and writes (OUT/summary.json) the AUROC of the map
maximum (abnormal vs normal) and the median share of map mass within 16 px of the square's edge (border_mass),
plus the other regions' medians. The maps and maps.jsonl of each method are kept under OUT/<method>/.

    .venv/bin/python scripts/explain_bar.py --manifest ../shared/data/cxr/manifest.csv --out runs/explain_bar \
        [--method gradcam] [--n 50] [--seed 16] [--detector fused_lungs]

Without --method: the default method (the map the app shows first). Thresholds are not fitted here: the scale comes
from held-out training normals (`medsight map-fit`); dev films are only measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def dev_films(manifest: str, n: int, seed: int):
    import pandas as pd

    from medsight.training.dataset import read_manifest

    dev = read_manifest(manifest, "dev")
    return pd.concat([dev[dev.is_normal == 1].sample(n, random_state=seed),
                      dev[dev.is_normal == 0].sample(n, random_state=seed)]).reset_index(drop=True)


def summarise(records: list[dict], labels: np.ndarray) -> dict:
    from sklearn.metrics import roc_auc_score

    ok = [i for i, r in enumerate(records) if "error" not in r]
    y, mx = labels[ok], np.array([records[i]["max"] for i in ok])
    out = {"n_maps": len(ok), "n_abnormal": int(y.sum()), "auroc_map_max": float(roc_auc_score(y, mx)) if 0 < y.sum() < len(y) else None,
           "n_empty_maps": sum(records[i]["border_mass"] is None for i in ok)}
    for key in ("border_mass", "lung_mass", "mediastinum_mass", "below_diaphragm_mass", "other_mass"):
        vals = [records[i][key] for i in ok if records[i][key] is not None]
        out[f"median_{key}"] = float(np.median(vals)) if vals else None
    out["median_max_normal"] = float(np.median(mx[y == 0]))
    out["median_max_abnormal"] = float(np.median(mx[y == 1]))
    return out


def main(argv=None) -> int:
    import torch

    from medsight.vision.commands import _pipeline
    from medsight.vision.explain_commands import explain_files, resolve_method

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--method", action="append", default=None, help="repeatable; default: the app's default method")
    ap.add_argument("--detector", default=None)
    ap.add_argument("--n", type=int, default=50, help="normal and abnormal films each")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    films = dev_films(args.manifest, args.n, args.seed)
    pipe = _pipeline(args.detector)
    summary = {"manifest": args.manifest, "n": args.n, "seed": args.seed, "detector": pipe.detector.name,
               "labels": films["label"].value_counts().to_dict(), "methods": {}}
    for method in [resolve_method(pipe, m) for m in (args.method or [None])]:
        out = Path(args.out) / method.replace(":", "_")
        out.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        records = explain_files(pipe, list(films["path"]), method, out, log=lambda *a, **k: None)
        s = summarise(records, 1 - films["is_normal"].to_numpy())
        s["seconds_per_map"] = (time.time() - t0) / len(films)
        summary["methods"][method] = s
        print(f"{pipe.detector.name} {method}: AUROC of the map maximum {s['auroc_map_max']:.3f}; median border mass "
              f"{s['median_border_mass']:.3f}, lung mass {s['median_lung_mass']:.3f} ({s['n_maps']} maps, "
              f"{s['n_empty_maps']} empty; median max normal {s['median_max_normal']:.2f}, abnormal {s['median_max_abnormal']:.2f})")
    (Path(args.out) / "summary.json").write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

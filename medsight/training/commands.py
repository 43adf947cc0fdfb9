"""CLI subcommands that train and evaluate the detectors: train, evaluate."""

from __future__ import annotations

import json
from pathlib import Path


def register(sub) -> None:
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
    p.add_argument("--site", default=None, metavar="NAME", help="site profile (medsight site fit): measure with the site's reference and thresholds")
    p.add_argument("--update-docs", action="store_true", help="write the results table into README.md and the model card")
    p.set_defaults(func=cmd_evaluate)



def cmd_train(args) -> int:
    from medsight.training.workflow import train_from_manifest

    summary = train_from_manifest(args.manifest, args.out, args.split, args.limit, args.vae_epochs, args.vit_epochs,
                                  detectors=tuple(d.strip() for d in args.detectors.split(",") if d.strip()))
    print(json.dumps({k: v for k, v in summary.items() if k != "detectors"} | {"detectors": list(summary["detectors"])}))
    return 0


def cmd_evaluate(args) -> int:
    from medsight.training.evaluate import evaluate_manifest

    m = evaluate_manifest(args.manifest, args.out, args.split, args.detector, args.weights, plots=not args.no_plots, limit=args.limit,
                          stability_n=args.stability_n, site=_site(args.site))
    site = f" with site profile {args.site!r}" if args.site else ""
    print(f"{m['primary_detector']}{site}: AUROC {m['auroc']:.4f} on {m['n']} images; wrote {Path(args.out) / 'metrics.json'}")
    if args.update_docs and args.site:
        print("--update-docs: not with --site (the README's table is the shipped detectors'); docs not changed")
    elif args.update_docs:
        from medsight import config
        from medsight.training.docs import results_section, update_file

        weights = f" --weights {args.weights}" if args.weights else ""
        cmd = f"medsight evaluate --manifest {args.manifest} --split {args.split} --out {args.out}{weights} --update-docs"
        section = results_section(m, cmd)
        for doc in (config.REPO_ROOT / "README.md", config.WEIGHTS_DIR / "MODEL_CARD.md"):
            print(f"{doc}: {'updated' if update_file(doc, section) else 'no results markers, not changed'}")
    return 0


def _site(name: str | None):
    """The site profile named on the command line, loaded (None without --site); a bad name is one sentence."""
    if not name:
        return None
    from medsight.errors import UserError
    from medsight.vision.sites import SiteError, resolve

    try:
        return resolve(name)
    except SiteError as exc:
        raise UserError(str(exc)) from None

"""CLI subcommands for the out-of-distribution gate (gate-fit, gate-eval), the heatmaps' normal scale (map-fit) and
the heatmap / stability measurements (explain-eval, stability-eval)."""

from __future__ import annotations

import json
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("gate-fit", help="fit the feature-space OOD check on training normals (weights/ood.*)")
    p.add_argument("--manifest", required=True)
    p.add_argument("--n", type=int, default=2000, help="training normals to use (bank + held-out)")
    p.add_argument("--out", default=None, help="weights folder (default: weights/)")
    p.set_defaults(func=cmd_gate_fit)

    p = sub.add_parser("orientation-fit", help="fit the gate's orientation check on training normals (weights/orientation.json)")
    p.add_argument("--manifest", required=True)
    p.add_argument("--n", type=int, default=100_000, help="training normals, at most (default: all; 20%% held out to measure it)")
    p.add_argument("--out", default=None, help="weights folder (default: weights/)")
    p.set_defaults(func=cmd_orientation_fit)

    p = sub.add_parser("gate-eval", help="OOD gate: detection rate per non-CXR kind, false flags on dev radiographs")
    p.add_argument("--manifest", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--n-dev", type=int, default=400, help="dev radiographs (stratified by label)")
    p.add_argument("--n-transform", type=int, default=60, help="radiographs per blank/inverted/rotated/... transform")
    p.add_argument("--weights", default=None)
    p.set_defaults(func=cmd_gate_eval)

    p = sub.add_parser("map-fit", help="heatmap scales from held-out training normals (weights/<detector>.mapscale.json)")
    p.add_argument("--manifest", required=True)
    p.add_argument("--detector", action="append", default=None, help="repeatable; default: the shipped default")
    p.add_argument("--atlas", action="store_true", help="first (re)build the lung-field atlas (weights/lung_atlas.png)")
    p.add_argument("--weights", default=None, help="weights folder (default: weights/)")
    p.set_defaults(func=cmd_map_fit)

    p = sub.add_parser("explain-eval", help="heatmap faithfulness (deletion / insertion) and lung-field share")
    p.add_argument("--manifest", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=40, help="abnormal dev images (stratified by label)")
    p.add_argument("--detector", action="append", default=None, help="repeatable; default: the shipped default")
    p.add_argument("--road", action="store_true", help="also the ROAD metric (noisy linear imputation, MoRF / LeRF)")
    p.add_argument("--road-only", action="store_true", help="ROAD without the blur deletion / insertion curves (half the time)")
    p.set_defaults(func=cmd_explain_eval)

    p = sub.add_parser("stability-eval", help="score change under resampling, JPEG, gamma and window changes")
    p.add_argument("--manifest", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=200, help="dev images (stratified by label)")
    p.add_argument("--detector", action="append", default=None, help="repeatable; default: every trained detector")
    p.add_argument("--weights", default=None)
    p.set_defaults(func=cmd_stability_eval)


def cmd_gate_fit(args) -> int:
    from medsight.training.gate_eval import fit_gate

    fit_gate(args.manifest, args.out, args.n)
    return 0


def cmd_orientation_fit(args) -> int:
    from medsight import config
    from medsight.training.gate_eval import train_normal_pixels
    from medsight.imaging.orientation import fit_orientation

    model = fit_orientation(train_normal_pixels(args.manifest, n=args.n))
    print(f"wrote {model.save(args.out or config.WEIGHTS_DIR)}")
    return 0


def cmd_gate_eval(args) -> int:
    from medsight.training.gate_eval import evaluate_gate

    m = evaluate_gate(args.manifest, args.out, args.n_dev, args.n_transform, args.weights)
    for kind, v in m["detection_rate"].items():
        print(f"{kind}: flagged {v['combined']:.3f} (statistics {v['stats_only']:.3f}, orientation {v['orientation_only']:.3f}, features {v['ood_only']:.3f}) of {v['n']}")
    f = m["false_flag_rate_dev"]
    print(f"dev radiographs: false flags {f['combined']:.3f} (statistics {f['stats_only']:.3f}, orientation {f['orientation_only']:.3f}, features {f['ood_only']:.3f}) of {f['n']}; "
          f"wrote {Path(args.out) / 'metrics.json'}")
    if "combined_cached_dev" in f:
        c = f["combined_cached_dev"]
        print(f"all cached dev radiographs: false flags {c['rate']:.4f} of {c['n']}")
    return 0


def cmd_map_fit(args) -> int:
    from medsight.training.map_fit import fit_atlas, fit_map_scales
    from medsight.vision.detectors.catalog import DEFAULT_DETECTOR

    if args.atlas:
        print(f"wrote {fit_atlas(args.manifest, args.weights)}")
    fit_map_scales(args.manifest, args.detector or [DEFAULT_DETECTOR], args.weights)
    return 0


def _manifest_rows(manifest: str, n: int, abnormal_only: bool):
    from medsight.training.dataset import read_manifest
    from medsight.training.stability import sample_for_stability

    df = read_manifest(manifest, "dev")
    if abnormal_only:
        df = df[df["is_normal"] == 0]
    return sample_for_stability(df, n)


def cmd_explain_eval(args) -> int:
    from medsight.imaging.load import load_image
    from medsight.vision.commands import _pipeline
    from medsight.training.faithfulness import FRACTIONS, ROAD_FRACTIONS, faithfulness

    rows = _manifest_rows(args.manifest, args.n, abnormal_only=True)
    images = [load_image(p).pixels for p in rows["path"]]
    out = {}
    for name in args.detector or [None]:
        pipe = _pipeline(name)
        road = ROAD_FRACTIONS if args.road or args.road_only else None
        out[pipe.detector.name] = faithfulness(pipe, images, fractions=(0.0, 1.0) if args.road_only else FRACTIONS,
                                               road=road, log=print)
        for method, v in out[pipe.detector.name].items():
            if method != "_summary":
                line = (f"ROAD MoRF {v['road_morf']:.3f} LeRF {v['road_lerf']:.3f} combined {v['road_combined']:.3f} "
                        f"(beats random {v['share_road_beats_random']:.0%}) " if "road_combined" in v else "")
                if v["deletion_auc"] is not None:
                    line += f"deletion {v['deletion_auc']:.3f} insertion {v['insertion_auc']:.3f} "
                loc = (f"lung mass {v['lung_mass']:.2f} border mass {v['border_mass']:.2f} (medians {v['median_lung_mass']:.2f}, "
                       f"{v['median_border_mass']:.2f})" if v["lung_mass"] is not None else "no map had any mass")
                print(f"{pipe.detector.name} {method}: {line}{loc}")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "metrics.json").write_text(json.dumps({"manifest": args.manifest, "files": list(rows["file"]), "detectors": out}, indent=1))
    return 0


def cmd_stability_eval(args) -> int:
    from medsight import config
    from medsight.training.stability import stability_of_files
    from medsight.training.workflow import _backbone_factory
    from medsight.vision.detectors import available_detectors, load_detector

    weights = Path(args.weights or config.WEIGHTS_DIR)
    names = args.detector or available_detectors(weights)
    rows = _manifest_rows(args.manifest, args.n, abnormal_only=False)
    res = stability_of_files(rows["path"], [load_detector(weights, n) for n in names], _backbone_factory(), progress=True)
    for name, per in res.items():
        for p, v in per.items():
            print(f"{name} {p}: median |delta| {v['median_abs_delta']:.3f} IQR, flips {v['flip_rate']:.3f}")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "metrics.json").write_text(json.dumps({"manifest": args.manifest, "n": int(len(rows)), "detectors": res}, indent=1))
    return 0

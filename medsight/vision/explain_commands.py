"""`medsight explain IMAGE... [--method M] [--detector D] --out DIR`: heatmaps as files. For each image,
`DIR/<file stem>.npy` (224x224 float32, aligned with the square the backbone saw, on the normal films' absolute
scale where the detector has one) and one line of `DIR/maps.jsonl`: file, method, scale (what 1.0 means), max,
lung_mass, border_mass (share of the map's mass within 16 px of the square's edge) and the other regions' shares."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def register(sub) -> None:
    from medsight.errors import existing_file

    p = sub.add_parser("explain", help="write heatmaps of chest X-rays (DIR/<stem>.npy, DIR/maps.jsonl)")
    p.add_argument("images", nargs="+", type=existing_file, metavar="IMAGE")
    p.add_argument("--method", default=None,
                   help="anomaly_map, gradcam, gradcam++ or latent_attention (default: the map the app shows first)")
    p.add_argument("--detector", default=None, help="trained detector name (default: the shipped default)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the maps (created if missing)")
    p.add_argument("--stretched", action="store_true", help="stretch each map to [0, 1] instead of the normal films' scale")
    p.set_defaults(func=cmd_explain)


def resolve_method(pipeline, method: str | None) -> str:
    """The method to compute: the app's default when none is given; `anomaly_map` also names a companion's map."""
    from medsight.errors import UserError
    from medsight.vision.explain import available_methods, default_method

    offered = available_methods(pipeline)
    if method is None:
        return default_method(pipeline)
    if method in offered:
        return method
    companion = [m for m in offered if m.startswith("anomaly_map:")]
    if method == "anomaly_map" and companion:
        return companion[0]
    raise UserError(f"detector {pipeline.detector.name!r} has no {method!r} map; it has {', '.join(offered)}")


def _stem(path: str, taken: set[str]) -> str:
    stem, k = Path(path).stem or "image", 2
    name = stem
    while name in taken:  # two inputs with the same stem (a/x.png, b/x.png) keep both maps
        name, k = f"{stem}-{k}", k + 1
    taken.add(name)
    return name


def explain_files(pipeline, paths: list[str], method: str, out: Path, stretched: bool = False, log=print) -> list[dict]:
    """Write the maps and maps.jsonl; returns the jsonl records (an unreadable file gets a record with `error`)."""
    import numpy as np

    from medsight.imaging.load import ImageLoadError, load_image
    from medsight.vision.explain import explain, map_meaning
    from medsight.vision.regions import map_location

    meaning = map_meaning(pipeline, method)
    scale = "stretched per image: 1.0 = this film's own maximum" if stretched else meaning.unit
    taken: set[str] = set()
    records = []
    with (out / "maps.jsonl").open("w") as jsonl:
        for path in paths:
            try:
                image = load_image(path)
            except ImageLoadError as exc:
                records.append({"file": path, "method": method, "error": str(exc)})
                print(f"{path}: error: {exc}", file=sys.stderr)
            else:
                result = pipeline.score(image, path)
                heat = explain(pipeline, image, method, stretched=stretched).astype(np.float32)
                name = _stem(path, taken) + ".npy"
                np.save(out / name, heat)
                empty = not float(np.clip(heat, 0, None).sum()) > 0  # no mass: its shares are undefined (null)
                loc = {k: None if empty else round(v, 4) for k, v in map_location(heat).items() if k.endswith("_mass")}
                records.append({"file": path, "map": name, "method": method, "detector": pipeline.detector.name,
                                "scale": scale, "absolute": meaning.absolute and not stretched,
                                "max": round(float(heat.max()), 4), "lung_mass": loc["lung_mass"],
                                "border_mass": loc["border_mass"],
                                **{k: loc[k] for k in ("mediastinum_mass", "below_diaphragm_mass", "other_mass")},
                                "note": "the map is 0 everywhere" if empty else meaning.note,
                                "anomaly_score": result.anomaly_score, "risk": result.risk,
                                "frontal_cxr": result.scored, "reasons": result.reasons})
                where = "empty map" if empty else f"lung {loc['lung_mass']:.0%}, border {loc['border_mass']:.0%}"
                log(f"{path}: {method} max {float(heat.max()):.2f}, {where} -> {out / name}"
                    + ("" if result.scored else f" (not a frontal chest film: {'; '.join(result.reasons)})"))
            jsonl.write(json.dumps(records[-1]) + "\n")
            jsonl.flush()
    return records


def cmd_explain(args) -> int:
    from medsight.errors import UserError
    from medsight.vision.commands import _pipeline
    from medsight.vision.explain import map_meaning

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder")
    pipe = _pipeline(args.detector)
    method = resolve_method(pipe, args.method)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the folder {out}: {exc.strerror}") from None
    meaning = map_meaning(pipe, method)
    print(f"{method} maps of {pipe.detector.name}; scale: "
          + ("stretched per image" if args.stretched else meaning.unit) + (f"; {meaning.note}" if meaning.note else ""))
    records = explain_files(pipe, args.images, method, out, args.stretched, log=print)
    print(f"wrote {sum('error' not in r for r in records)} maps and {out / 'maps.jsonl'}")
    return 1 if any("error" in r for r in records) else 0

"""CLI: `medsight site fit NAME (--manifest CSV [--split S] [--source SRC] | --images DIR)`, `site list`,
`site remove NAME`, `site study` (how many films a site needs)."""

from __future__ import annotations

import json
from pathlib import Path


def register(sub) -> None:
    site = sub.add_parser("site", help="site profiles: a hospital's own normal films as the detectors' reference")
    ssub = site.add_subparsers(dest="site_command", required=True)

    p = ssub.add_parser("fit", help="fit a profile from a site's normal films (saved under $MEDSIGHT_HOME/sites/NAME)")
    p.add_argument("name", metavar="NAME")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--manifest", help="CSV manifest: its normal rows (is_normal = 1) are used")
    src.add_argument("--images", help="folder of normal films (PNG, JPEG, DICOM, TIFF), searched recursively")
    p.add_argument("--split", default=None, help="with --manifest: only this split")
    p.add_argument("--source", default=None, help="with --manifest: only this source (e.g. nih_talo; required when the manifest holds several, or \"all\" to pool them)")
    p.add_argument("--weights", default=None, help="weights folder of the detectors to adapt (default: weights/)")
    p.set_defaults(func=cmd_fit)

    p = ssub.add_parser("list", help="the saved site profiles")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = ssub.add_parser("remove", help="delete a saved site profile")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_remove)

    p = ssub.add_parser("study", help="how many films a site needs: AUROC, sensitivity and specificity vs profile size")
    p.add_argument("--manifest", required=True)
    p.add_argument("--split", default="dev")
    p.add_argument("--source", default="nih_talo")
    p.add_argument("--detector", default=None, help="default: the shipped default detector")
    p.add_argument("--sizes", default="25,50,100,all")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", required=True)
    p.add_argument("--weights", default=None)
    p.add_argument("--method", default="", help="override the profile method, e.g. knn_bank=site,patch_bank=union")
    p.set_defaults(func=cmd_study)


def _user_errors(fn):
    def run(args):
        from medsight.errors import UserError
        from medsight.vision.sites import SiteError

        try:
            return fn(args)
        except (SiteError, ValueError) as exc:
            raise UserError(str(exc)) from None
    return run


@_user_errors
def cmd_fit(args) -> int:
    from medsight.sites.fitting import fit_from_images, fit_from_manifest
    from medsight.vision.sites import sites_dir

    if args.images and (args.split or args.source):
        raise ValueError("--split and --source go with --manifest, not with --images.")
    if args.manifest:
        profile = fit_from_manifest(args.name, args.manifest, args.split, args.source, args.weights, progress=None)
    else:
        profile = fit_from_images(args.name, args.images, args.weights, progress=None)
    s = profile.summary()
    lines = [f"site profile {s['name']!r}: {s['n_films']} normal films"
             + (f" of {s['n_patients']} patients" if s.get("n_patients") else "")
             + f" ({s['source']}), fitted in {s['fit_seconds']} s, files sha256 {s['files_sha256'][:12]}"]
    for det, entry in profile.detectors.items():
        before = profile.meta.get("before", {}).get(det, {})
        rate = before.get("shipped_flag_rate")
        lines.append(f"  {det}: threshold {entry['calibration']['threshold']:.4f}"
                     + (f" (shipped threshold {before['shipped_threshold']:.4f} flags {rate:.0%} of these normals)" if rate is not None else "")
                     + ("; recalibrated only" if entry.get("reference") == "shipped" else ""))
    lines.append(f"saved to {sites_dir() / profile.name}")
    print("\n".join(lines))
    return 0


@_user_errors
def cmd_list(args) -> int:
    from medsight.vision.sites import list_profiles, sites_dir

    profiles = list_profiles()
    if args.json:
        print(json.dumps(profiles))
        return 0
    if not profiles:
        print(f"no site profiles in {sites_dir()} (make one with `medsight site fit NAME --manifest CSV` or `--images DIR`)")
    for p in profiles:
        print(f"{p['name']}: {p['n_films']} films, {p['created']}, {p['source']}, files sha256 {str(p['files_sha256'])[:12]}")
    return 0


@_user_errors
def cmd_remove(args) -> int:
    from medsight.vision.sites import remove_profile

    print(f"removed {remove_profile(args.name)}")
    return 0


@_user_errors
def cmd_study(args) -> int:
    from medsight.sites.study import run_study

    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    method = dict(kv.split("=", 1) for kv in args.method.split(",") if "=" in kv)
    method = {k: int(v) if v.isdigit() else v for k, v in method.items()}
    result = run_study(args.manifest, args.out, args.split, args.source, args.detector, sizes, args.repeats, args.weights,
                       method or None)
    print(result["table"])
    print(f"wrote {Path(args.out) / 'site_study.json'} and {Path(args.out) / 'site_study.png'}")
    return 0

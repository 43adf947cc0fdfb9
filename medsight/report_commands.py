"""`medsight report IMAGE --out FILE.pdf [--detector D]`: the PDF report the app's button builds, from the command
line (`medsight.report.case_report` over a `medsight.case.Case`)."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("report", help="score a radiograph and write its one-page PDF report (with a heatmap)")
    p.add_argument("image", help="PNG, JPEG or DICOM")
    p.add_argument("--out", required=True, help="the PDF file to write")
    p.add_argument("--detector", default=None, help="trained detector name (default: the shipped default)")
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from medsight.case import Case
    from medsight.errors import UserError
    from medsight.report import case_report
    from medsight.vision import DEFAULT_DETECTOR, AnomalyPipeline
    from medsight.vision.backbone import WeightsError

    if not Path(args.image).is_file():
        raise UserError(f"no image at {args.image}")
    out = Path(args.out)
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give the PDF file to write")
    case = Case.from_file(args.image, detector=args.detector or DEFAULT_DETECTOR)
    try:
        pipeline = AnomalyPipeline.load(case.detector)
    except (WeightsError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from None
    pdf, failures = case_report(case, pipeline)
    for method, why in failures:
        print(f"medsight: warning: heatmap {method} failed ({why})")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(pdf)
    res = case.vision
    band = f"risk {res.risk}" if res.scored else "not scored: " + "; ".join(res.reasons)
    print(f"{args.image}: anomaly score {res.anomaly_score:.4f} {band}; wrote {out} ({len(pdf) / 1024:.0f} KB)")
    return 0

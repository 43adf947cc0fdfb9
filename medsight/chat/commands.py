"""`medsight ask "QUESTION" [--image PATH] [--note FILE] [--json]` and `medsight chat-eval --out DIR`."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def register(subparsers) -> None:
    ask = subparsers.add_parser("ask", help="ask a question about a case through the grounded chat cascade")
    ask.add_argument("question")
    ask.add_argument("--image", help="chest X-ray to score first (PNG/JPEG/DICOM)")
    ask.add_argument("--note", help="text file with a clinical note to analyse first")
    ask.add_argument("--json", action="store_true", help="print answer, tier, refused and sources as JSON")
    ask.add_argument("--store", help="knowledge base folder (default .cache/kb or $MEDSIGHT_KB_DIR)")
    ask.set_defaults(func=_ask)

    ev = subparsers.add_parser("chat-eval", help="measure the chat: dosing refusals, supported sentences, first-token time")
    ev.add_argument("--out", required=True, help="folder for chat_metrics.json")
    ev.add_argument("--store", help="knowledge base folder (default .cache/kb or $MEDSIGHT_KB_DIR)")
    ev.add_argument("--tiers", default="local,extractive",
                    help="comma-separated tiers to measure one by one (gemini needs a key; default local,extractive)")
    ev.add_argument("--questions", type=int, default=12, help="grounded questions per tier (default 12)")
    ev.set_defaults(func=_chat_eval)


def _case_from_inputs(image: str | None, note: str | None) -> dict:
    from medsight.cli import UserError

    case: dict = {}
    if image:
        if not Path(image).is_file():
            raise UserError(f"no image at {image}")
        try:
            import medsight.vision as vision

            score_file = vision.score_file
        except (ImportError, AttributeError) as exc:
            raise UserError("image scoring is not available in this installation (medsight.vision.score_file)") from exc
        case["vision"] = score_file(image)
    if note:
        path = Path(note)
        if not path.is_file():
            raise UserError(f"no note file at {note}")
        text = path.read_text(encoding="utf-8", errors="replace")
        analysed: dict = {"text": text}
        try:
            from medsight.nlp import analyze_note
        except ImportError:
            analyze_note = None
        if analyze_note is not None:
            vision = case.get("vision") or {}
            kwargs = {}
            if vision.get("anomaly_score") is not None:
                kwargs = {"anomaly_score": vision["anomaly_score"], "risk_band": vision.get("risk") or vision.get("risk_band")}
            try:
                result = analyze_note(text, **kwargs)
            except ValueError as exc:  # NoteError: an unusable note is the user's to fix
                raise UserError(f"the note could not be analysed: {exc}") from exc
            analysed.update(result if isinstance(result, dict) else _as_dict(result))
        case["note"] = analysed
        if "fusion" in analysed:
            case["fusion"] = analysed["fusion"]
    return case


def _as_dict(obj) -> dict:
    import dataclasses

    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    return dict(vars(obj)) if hasattr(obj, "__dict__") else {}


def _ask(args) -> int:
    from medsight.chat import chat
    from medsight.cli import UserError

    if not args.question.strip():
        raise UserError("the question is empty")
    case = _case_from_inputs(args.image, args.note)
    kb = None
    if args.store:
        from medsight.kb.store import knowledge_base

        kb = knowledge_base(args.store)
    answer = chat(case, [], args.question, knowledge_base=kb)
    if args.json:
        print(json.dumps(answer.as_dict(), indent=2, ensure_ascii=False))
        return 0
    for chunk in answer:
        print(chunk, end="", flush=True)
    print(f"\n\n[answered by the {answer.tier} tier]", file=sys.stderr)
    return 0


def _chat_eval(args) -> int:
    from medsight.chat.evaluate import evaluate_chat
    from medsight.kb.store import knowledge_base

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tiers = [t.strip() for t in args.tiers.split(",") if t.strip()]
    metrics = evaluate_chat(knowledge_base(args.store), tiers=tiers, n_questions=args.questions, log=print)
    (out / "chat_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"wrote {out / 'chat_metrics.json'}")
    return 0

"""`medsight ask "QUESTION" [--image PATH] [--note FILE] [--json]` and `medsight chat-eval --out DIR [--qa FILE]`."""

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

    ev = subparsers.add_parser(
        "chat-eval", help="measure the chat: answers against gold answers (--qa), or dosing refusals, supported "
        "sentences and first-token time")
    ev.add_argument("--out", required=True, help="folder for answers.jsonl + qa_metrics.json (--qa) or chat_metrics.json")
    ev.add_argument("--store", help="knowledge base folder (default .cache/kb or $MEDSIGHT_KB_DIR)")
    ev.add_argument("--qa", metavar="FILE", help="JSONL of questions (`query`, optional gold `answer`) answered through "
                    "the cascade as a user gets it")
    ev.add_argument("--limit", type=int, help="--qa: only the first N questions")
    ev.add_argument("--retrieval", default="hybrid", help="--qa: retrieval mode (dense, bm25, hybrid; default hybrid)")
    ev.add_argument("--documents", nargs="+", metavar="PATH", help="--qa: instead of a built store, these documents "
                    "(and the shipped summaries) chunked in memory and searched by BM25 alone")
    ev.add_argument("--tiers", help="--qa: the cascade's tiers (default: as a user gets it, $MEDSIGHT_CHAT_TIERS or "
                    "gemini,extractive); otherwise the tiers measured one by one (default local,extractive)")
    ev.add_argument("--questions", type=int, default=12, help="without --qa: grounded questions per tier (default 12)")
    ev.set_defaults(func=_chat_eval)


def _case_from_inputs(image: str | None, note: str | None) -> dict:
    """The case the chat reads (`medsight.case.Case.to_chat`): the image scored through the same pipeline as
    `medsight score` (gate included), the note compared with it on the calibrated scale."""
    from medsight.case import Case
    from medsight.errors import UserError

    case = Case(name="")
    if image:
        if not Path(image).is_file():
            raise UserError(f"no image at {image}")
        from medsight.vision import AnomalyPipeline

        case = Case.from_file(image)  # an unreadable file raises ImageLoadError: one sentence from the CLI
        case.score(AnomalyPipeline.load(case.detector))
    if note:
        path = Path(note)
        if not path.is_file():
            raise UserError(f"no note file at {note}")
        from medsight.nlp import NoteError, analyze_note

        try:
            case.note = analyze_note(path.read_bytes(), **case.note_image_args())
        except NoteError as exc:  # an unusable note is the user's to fix
            raise UserError(f"the note {path.name} could not be analysed: {exc}") from None
    return case.to_chat()


def _ask(args) -> int:
    from medsight.chat import chat
    from medsight.errors import UserError

    from medsight.chat.safety import check_question

    try:
        check_question(args.question)
    except ValueError as exc:  # empty or too long
        raise UserError(str(exc)) from None
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
    from medsight.kb.store import knowledge_base

    if args.qa:
        return _qa_eval(args)
    from medsight.chat.evaluate import evaluate_chat

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tiers = [t.strip() for t in (args.tiers or "local,extractive").split(",") if t.strip()]
    metrics = evaluate_chat(knowledge_base(args.store), tiers=tiers, n_questions=args.questions, log=print)
    (out / "chat_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"wrote {out / 'chat_metrics.json'}")
    return 0


def _qa_eval(args) -> int:
    from medsight.chat.cascade import default_tiers
    from medsight.chat.qa_eval import answer_questions, read_questions, write_results
    from medsight.errors import UserError
    from medsight.kb.store import knowledge_base

    if not Path(args.qa).is_file():
        raise UserError(f"no question file at {args.qa}")
    try:
        questions = read_questions(args.qa, args.limit)
        tiers = default_tiers(args.tiers)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if args.documents:
        from medsight.chat.qa_eval import LexicalKnowledgeBase

        kb, mode = LexicalKnowledgeBase(args.documents), "bm25"
    else:
        kb, mode = knowledge_base(args.store), args.retrieval
    records = answer_questions(questions, kb, tiers=tiers, log=print, retrieval_mode=mode)
    metrics = write_results(records, args.out, {"questions_file": str(args.qa), "tiers": [t.name for t in tiers],
                                                "knowledge_base_passages": len(kb), "retrieval": mode,
                                                "knowledge_base": str(kb.path)})
    print(json.dumps({k: v for k, v in metrics.items() if k != "per_tier"}, indent=2))
    print(f"wrote {Path(args.out) / 'answers.jsonl'} and {Path(args.out) / 'qa_metrics.json'}")
    return 0

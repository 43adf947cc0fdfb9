"""Choose the extractive tier's answer length and retrieval depth on questions the report does not use.

The validation half of the COVID-QA development questions (scripts/fit_answer_selector.py's split) is cut in two by
article: its first 120 questions (the report's, docs/chat.md) and the rest (the tuning questions here, other
articles). For each retrieval depth (k passages, at most `per_document` from one article) every tuning question's
sentences are ranked once by the tier's ranker (the reranker when its weights exist, else the logistic selector);
then the answer rule of the tier (`extractive.choose`, `extractive.excerpts`) is replayed for each `second_ratio`,
`max_sentences` and with or without the following sentence, and the
share of answers that contain the gold answer, the token F1 and the median answer length are printed.

    .venv/bin/python scripts/tune_extractive.py --out runs/tune_extractive [--logistic]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from fit_answer_selector import DEV, split_by_article  # noqa: E402


def replay(question: str, ranked, max_sentences: int, ratio: float, following: bool, preceding: bool = False) -> str:
    from medsight.chat.extractive import choose, excerpts

    return " ".join(excerpts(choose(question, ranked, max_sentences, ratio), following, preceding))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", default=str(DEV))
    parser.add_argument("--documents", default="../shared/data/corpus")
    parser.add_argument("--report-size", type=int, default=120, help="validation questions kept for the report")
    parser.add_argument("--depths", default="10:3,20:5")
    parser.add_argument("--ratios", default="0,0.05,0.1,0.2,0.3,0.5")
    parser.add_argument("--max-sentences", default="1,2,3,4")
    parser.add_argument("--logistic", action="store_true", help="rank with the logistic selector (no reranker)")
    parser.add_argument("--out", default="runs/tune_extractive")
    args = parser.parse_args(argv)
    if args.logistic:
        os.environ["MEDSIGHT_RERANKER"] = "0"

    from medsight.chat.qa_eval import LexicalKnowledgeBase, gold_contained, read_questions, token_f1
    from medsight.chat.selection import rank_sentences
    from medsight.kb.retrieve import Retriever

    _, val = split_by_article(read_questions(args.questions))
    reported = {q["gold_doc_id"] for q in val[:args.report_size]}
    tune = [q for q in val if q["gold_doc_id"] not in reported]
    print(f"{len(tune)} tuning questions from {len({q['gold_doc_id'] for q in tune})} articles", flush=True)
    kb = LexicalKnowledgeBase([args.documents])
    retriever = Retriever(kb, mode="bm25")
    rows = []
    for depth in args.depths.split(","):
        k, per_doc = map(int, depth.split(":"))
        ranked = [rank_sentences(q["query"], retriever.retrieve(q["query"], k, per_document=per_doc)) for q in tune]
        for m in map(int, args.max_sentences.split(",")):
            for r, following, preceding in ((r, f, p) for r in map(float, args.ratios.split(","))
                                            for f in (False, True) for p in (False, True)):
                answers = [replay(q["query"], rk, m, r, following, preceding) for q, rk in zip(tune, ranked)]
                rows.append({"k": k, "per_document": per_doc, "max_sentences": m, "second_ratio": r,
                             "following": following, "preceding_when_referred": preceding,
                             "gold_contained": round(float(np.mean([gold_contained(a, q["answer"]) for a, q in zip(answers, tune)])), 4),
                             "token_f1": round(float(np.mean([token_f1(a, q["answer"]) for a, q in zip(answers, tune)])), 4),
                             "words_median": float(np.median([len(a.split()) for a in answers]))})
                print(json.dumps(rows[-1]), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ranker = "logistic" if args.logistic else "reranker"
    (out / f"tune_{ranker}.json").write_text(json.dumps({"questions": len(tune), "ranker": ranker, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

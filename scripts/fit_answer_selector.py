"""Fit the extractive tier's answer selector (medsight/chat/answer_selector.json) on COVID-QA development questions.

The dev questions (`queries_covidqa_dev.jsonl`, 49 articles) are split by article: articles in sorted order, even
positions -> the fitting half, odd -> the validation half, whose first 120 questions (15 articles) are the report's
(docs/chat.md). Both halves are written next to the output (`covidqa_fit.jsonl`, `covidqa_val.jsonl`) for
`medsight chat-eval --qa`. `--fit-on` picks the questions the selector is fitted on: `all` (the shipped selector),
`all-but-report` (every article but the report's: a selector to measure the report questions end to end with,
through $MEDSIGHT_ANSWER_SELECTOR) or `fit` (the fitting half).

For each question the passages are retrieved as the chat retrieves them, every sentence of them becomes a
candidate (`medsight.chat.selection`), and a candidate is positive when it contains the normalised gold answer.
A logistic regression is fitted; C is chosen by grouped (by article) 5-fold cross-validation of the composed answer
(the extractive tier's own rule) containing the gold answer, and that out-of-fold containment is reported with the
top-1/2/3 sentence hits and the ceiling (gold in some candidate).

    python scripts/fit_answer_selector.py --bm25-corpus ../shared/data/corpus --out runs/selector [--write]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from medsight.chat.qa_eval import normalise, read_questions  # noqa: E402
from medsight.chat.selection import FEATURES, WEIGHTS_PATH, candidate_sentences, selector_matrix  # noqa: E402

DEV = Path("../shared/data/corpus/queries_covidqa_dev.jsonl")


def split_by_article(questions: list[dict]) -> tuple[list[dict], list[dict]]:
    docs = sorted({q["gold_doc_id"] for q in questions})
    fit_docs = set(docs[0::2])
    return [q for q in questions if q["gold_doc_id"] in fit_docs], [q for q in questions if q["gold_doc_id"] not in fit_docs]


def build_rows(questions, retrieve, cache: dict, label: str = "sentence"):
    """Per question: (question, candidates kept, feature rows, labels), exactly as the chat computes them
    (`selection.selector_matrix`); `cache` maps text -> MiniLM vector so refits embed nothing twice."""
    from medsight.kb.store import embed

    def embed_cached(texts):
        missing = [t for t in texts if t not in cache]
        for start in range(0, len(missing), 256):
            batch = missing[start:start + 256]
            cache.update(zip(batch, embed(batch)))
        return np.stack([cache[t] for t in texts])

    out = []
    for n, q in enumerate(questions, 1):
        passages = retrieve(q["query"])
        cands = candidate_sentences(passages)
        if not cands:  # kept: a question with nothing to quote counts as missed
            out.append((q, [], np.zeros((0, len(FEATURES))), np.zeros(0, dtype=int)))
            continue
        keep, X = selector_matrix(q["query"], cands, len(passages), embed_cached)
        gold = normalise(q["answer"])
        shown = [cands[i].text + (" " + cands[i].following if label == "excerpt" else "") for i in keep]
        y = np.array([gold in normalise(t) for t in shown], dtype=int)
        out.append((q, [cands[i] for i in keep], X, y))
        if n % 50 == 0:
            print(f"  {n}/{len(questions)} questions", file=sys.stderr)
    return out


def topk_report(labelled) -> dict:
    """Share of questions whose top-1 (top-2, top-3) sentences contain the gold answer, and the ceiling;
    `labelled`: per question (labels, scores) of its candidates."""
    hits = {1: 0, 2: 0, 3: 0}
    ceiling, n = 0, 0
    for y, scores in labelled:
        n += 1
        if not len(y):
            continue
        ceiling += int(np.max(y))
        order = np.argsort(-np.asarray(scores), kind="stable")
        for k in hits:
            hits[k] += int(np.max(np.asarray(y)[order[:k]]))
    return {"questions": n, **{f"top{k}_contains_gold": round(v / n, 4) for k, v in hits.items()},
            "ceiling_gold_in_candidates": round(ceiling / n, 4)}


def composed_answer(question: str, ranked) -> str:
    """The extractive tier's answer from ranked candidates, with the tier's default rule."""
    from medsight.chat.extractive import ExtractiveTier, choose, excerpts

    tier = ExtractiveTier(word_delay=0)
    chosen = choose(question, ranked, tier.max_sentences, tier.second_ratio)
    return " ".join(excerpts(chosen, tier.following, tier.preceding))


def answer_hits(rows, coef, intercept) -> list[int]:
    """Per question: does the composed extractive answer contain the gold answer?"""
    from medsight.chat.qa_eval import gold_contained, shown_answer

    hits = []
    for q, cands, X, _ in rows:
        for c, p in zip(cands, 1.0 / (1.0 + np.exp(-(X @ coef + intercept)))):
            c.score = float(p)
        ranked = sorted(cands, key=lambda c: -c.score)
        hits.append(int(gold_contained(shown_answer(composed_answer(q["query"], ranked)), q["answer"])))
    return hits


def answer_report(rows, coef, intercept) -> float:
    """Share of questions whose composed extractive answer contains the gold answer."""
    return round(float(np.mean(answer_hits(rows, coef, intercept))) if rows else 0.0, 4)


def top1_report(rows, coef, intercept) -> dict:
    return topk_report((y, X @ coef + intercept) for _, _, X, y in rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", default=str(DEV))
    parser.add_argument("--store", help="knowledge base folder (default .cache/kb)")
    parser.add_argument("--k", type=int, default=30, help="passages per question, as the chat retrieves them")
    parser.add_argument("--per-document", type=int, default=10, help="at most this many passages of one document")
    parser.add_argument("--fit-on", choices=("all", "all-but-report", "fit"), default="all")
    parser.add_argument("--weights", help=f"write the fitted weights here (--write: {WEIGHTS_PATH})")
    parser.add_argument("--bm25-corpus", help="instead of the store: BM25 alone over these documents, chunked in "
                        "memory (a quick proxy while the store is being built)")
    parser.add_argument("--out", default="runs/selector")
    parser.add_argument("--every", type=int, default=1, help="use every n-th question of each half (less embedding)")
    parser.add_argument("--label", choices=("sentence", "excerpt"), default="sentence",
                        help="a candidate is positive when its sentence (or the excerpt shown: it and the next) holds the gold")
    parser.add_argument("--criterion", choices=("top1", "answer"), default="answer",
                        help="choose C by grouped-CV top-1 or by the composed answer's gold containment")
    parser.add_argument("--write", action="store_true", help=f"write the fitted weights to {WEIGHTS_PATH}")
    args = parser.parse_args(argv)

    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    from medsight.kb.retrieve import Retriever
    from medsight.kb.store import knowledge_base

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    questions = read_questions(args.questions)
    fit_q, val_q = split_by_article(questions)
    for name, qs in (("covidqa_fit.jsonl", fit_q), ("covidqa_val.jsonl", val_q)):
        (out / name).write_text("".join(json.dumps(q) + "\n" for q in qs), encoding="utf-8")
    if args.bm25_corpus:
        from types import SimpleNamespace

        from medsight.kb.documents import chunk_documents, load_path
        from medsight.kb.retrieve import LexicalIndex
        from medsight.kb.store import SHIPPED_KB_DIR

        docs = {d.doc_id: d for src in (SHIPPED_KB_DIR, args.bm25_corpus) for d in load_path(src)}
        index = LexicalIndex(chunk_documents(docs.values()))
        store = SimpleNamespace(lexical_index=lambda: index, path=Path(f"bm25-{Path(args.bm25_corpus).name}"),
                                __len__=None)
        retriever = Retriever(store, mode="bm25")
        n_passages = len(index.chunks)
    else:
        retriever = Retriever(knowledge_base(args.store), mode="hybrid")
        n_passages = len(retriever.kb)

    def retrieve(query):
        return retriever.retrieve(query, args.k, per_document=args.per_document)

    cache_path = out / "sentence_vectors.npz"
    cache = {}
    if cache_path.exists():
        with np.load(cache_path) as saved:  # plain arrays, nothing unpickled
            cache = dict(zip(saved["texts"].tolist(), saved["vectors"]))
    fit_q, val_q = fit_q[::args.every], val_q[::args.every]
    report_docs = {q["gold_doc_id"] for q in val_q[:120]}
    rows = build_rows(fit_q + val_q, retrieve, cache, args.label)
    np.savez(cache_path, texts=np.array(list(cache)), vectors=np.stack(list(cache.values())))
    fit_docs = {"all": {q["gold_doc_id"] for q in fit_q + val_q},
                "all-but-report": {q["gold_doc_id"] for q in fit_q + val_q} - report_docs,
                "fit": {q["gold_doc_id"] for q in fit_q}}[args.fit_on]
    train = [r for r in rows if r[0]["gold_doc_id"] in fit_docs]
    held_out = [r for r in rows if r[0]["gold_doc_id"] not in fit_docs]

    def fit(C, rows_):
        """Logistic regression on standardised features, returned as weights on the raw features."""
        X = np.vstack([r[2] for r in rows_ if len(r[3])])
        y = np.concatenate([r[3] for r in rows_ if len(r[3])])
        mean, scale = X.mean(axis=0), X.std(axis=0)
        scale[scale == 0] = 1.0
        model = LogisticRegression(C=C, max_iter=3000).fit((X - mean) / scale, y)
        coef = model.coef_[0] / scale
        return coef, float(model.intercept_[0] - coef @ mean)

    # grouped 5-fold cross-validation over the training articles: out-of-fold answers for every training question
    groups = np.array([r[0]["gold_doc_id"] for r in train])
    folds = list(GroupKFold(n_splits=5).split(np.zeros(len(train)), groups=groups))
    cv = {}
    for C in (0.01, 0.1, 1.0):
        hits, scored = np.zeros(len(train)), [None] * len(train)
        for tr, te in folds:
            coef, intercept = fit(C, [train[i] for i in tr])
            hits[te] = answer_hits([train[i] for i in te], coef, intercept)
            for i in te:
                scored[i] = (train[i][3], train[i][2] @ coef + intercept)
        cv[C] = {**topk_report(scored), "answer_contains_gold": round(float(hits.mean()), 4)}
        print(f"C={C}: grouped-CV {json.dumps(cv[C])}", flush=True)
    key = "top1_contains_gold" if args.criterion == "top1" else "answer_contains_gold"
    best_C = max(cv, key=lambda C: cv[C][key])
    coef, intercept = fit(best_C, train)
    report = {
        "features": list(FEATURES),
        "coef": [round(float(c), 6) for c in coef],
        "intercept": round(intercept, 6),
        "C": best_C,
        "fitted_on": f"COVID-QA dev ({args.fit_on}: {len(train)} questions, {len(fit_docs)} articles), {args.k} passages "
                     f"(at most {args.per_document} per article) retrieved ({retriever.mode}) from "
                     f"{retriever.kb.path.name} ({n_passages} passages)",
        "label": args.label,
        "criterion": args.criterion,
        "grouped_cv": {str(C): v for C, v in cv.items()},
        "fit": {**top1_report(train, coef, intercept), "answer_contains_gold": answer_report(train, coef, intercept)},
        "held_out": {**top1_report(held_out, coef, intercept), "answer_contains_gold": answer_report(held_out, coef, intercept)}
        if held_out else None,
    }
    print(json.dumps(report, indent=2))
    (out / "selector_report.json").write_text(json.dumps(report, indent=2) + "\n")
    target = Path(args.weights) if args.weights else WEIGHTS_PATH if args.write else None
    if target:
        keys = ("features", "coef", "intercept", "C", "fitted_on", "grouped_cv", "fit")
        target.write_text(json.dumps({k: report[k] for k in keys}, indent=2) + "\n")
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Fit the extractive tier's answer selector (medsight/chat/answer_selector.json) on COVID-QA development questions.

The dev questions (`queries_covidqa_dev.jsonl`, 49 articles) are split by article: articles in sorted order, even
positions -> the fitting half, odd -> the validation half, so no article whose questions tuned the selector is in
the validation numbers. Both halves are written next to the output (`covidqa_fit.jsonl`, `covidqa_val.jsonl`) for
`medsight chat-eval --qa`.

For each question the passages are retrieved as the chat retrieves them, every sentence of them becomes a
candidate (`medsight.chat.selection`), and a candidate is positive when it contains the normalised gold answer.
A logistic regression (C chosen by grouped cross-validation on the fitting half) is fitted on the fitting half and
reported on both halves: top-1 sentence contains the gold answer, and the ceiling (gold in some candidate).

    python scripts/fit_answer_selector.py --store .cache/kb --out runs/selector [--write]
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
        if not cands:
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


def answer_report(rows, coef, intercept, max_sentences: int = 3, ratio: float = 0.2) -> float:
    """Share of questions whose composed extractive answer (the tier's rule: `extractive.choose` + `excerpts`)
    contains the gold answer."""
    from medsight.chat.extractive import choose, excerpts
    from medsight.chat.qa_eval import gold_contained, shown_answer

    hits = 0
    for q, cands, X, _ in rows:
        for c, p in zip(cands, 1.0 / (1.0 + np.exp(-(X @ coef + intercept)))):
            c.score = float(p)
        ranked = sorted(cands, key=lambda c: -c.score)
        hits += gold_contained(shown_answer(" ".join(excerpts(choose(q["query"], ranked, max_sentences, ratio)))),
                               q["answer"])
    return round(hits / max(len(rows), 1), 4)


def top1_report(rows, coef, intercept) -> dict:
    return topk_report((y, X @ coef + intercept) for _, _, X, y in rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", default=str(DEV))
    parser.add_argument("--store", help="knowledge base folder (default .cache/kb)")
    parser.add_argument("--k", type=int, default=10, help="passages per question, as the chat retrieves them")
    parser.add_argument("--per-document", type=int, default=3, help="at most this many passages of one document")
    parser.add_argument("--bm25-corpus", help="instead of the store: BM25 alone over these documents, chunked in "
                        "memory (a quick proxy while the store is being built)")
    parser.add_argument("--out", default="runs/selector")
    parser.add_argument("--every", type=int, default=1, help="use every n-th question of each half (less embedding)")
    parser.add_argument("--label", choices=("sentence", "excerpt"), default="sentence",
                        help="a candidate is positive when its sentence (or the excerpt shown: it and the next) holds the gold")
    parser.add_argument("--criterion", choices=("top1", "answer"), default="top1",
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
    fit_rows = build_rows(fit_q, retrieve, cache, args.label)
    val_rows = build_rows(val_q, retrieve, cache, args.label)
    np.savez(cache_path, texts=np.array(list(cache)), vectors=np.stack(list(cache.values())))

    X = np.vstack([r[2] for r in fit_rows if len(r[3])])
    y = np.concatenate([r[3] for r in fit_rows if len(r[3])])
    groups = np.concatenate([[r[0]["gold_doc_id"]] * len(r[3]) for r in fit_rows if len(r[3])])
    def fit(C, X, y):
        """Logistic regression on standardised features, returned as weights on the raw features."""
        mean, scale = X.mean(axis=0), X.std(axis=0)
        scale[scale == 0] = 1.0
        model = LogisticRegression(C=C, max_iter=3000).fit((X - mean) / scale, y)
        coef = model.coef_[0] / scale
        return coef, float(model.intercept_[0] - coef @ mean)

    best = None
    for C in (0.01, 0.1, 1.0, 10.0):
        hits = []
        for tr, te in GroupKFold(n_splits=5).split(X, y, groups):
            coef, intercept = fit(C, X[tr], y[tr])
            test_docs = set(groups[te])
            rows = [r for r in fit_rows if r[0]["gold_doc_id"] in test_docs]
            hits.append(top1_report(rows, coef, intercept)["top1_contains_gold"] if args.criterion == "top1"
                        else answer_report(rows, coef, intercept))
        score = float(np.mean(hits))
        print(f"C={C}: grouped-CV {args.criterion} {score:.3f}")
        if best is None or score > best[1]:
            best = (C, score)
    coef, intercept = fit(best[0], X, y)
    reported = {q["gold_doc_id"] for q in val_q[:120]}
    tuning = [r for r in val_rows if r[0]["gold_doc_id"] not in reported]
    report = {
        "features": list(FEATURES),
        "coef": [round(float(c), 6) for c in coef],
        "intercept": round(intercept, 6),
        "C": best[0],
        "fitted_on": f"COVID-QA dev, fitting half ({len(fit_q)} questions, {len({q['gold_doc_id'] for q in fit_q})} "
                     f"articles), passages retrieved ({retriever.mode}) from {retriever.kb.path.name} ({n_passages} passages)",
        "label": args.label,
        "criterion": args.criterion,
        "fit": {**top1_report(fit_rows, coef, intercept), "answer_contains_gold": answer_report(fit_rows, coef, intercept)},
        "validation": {**top1_report(val_rows, coef, intercept),
                       "answer_contains_gold": answer_report(val_rows, coef, intercept)},
        # the validation questions whose articles the report (docs/chat.md: its first 120 questions) does not use:
        # where answer rules are chosen
        "tuning": {**top1_report(tuning, coef, intercept), "answer_contains_gold": answer_report(tuning, coef, intercept)},
    }
    print(json.dumps(report, indent=2))
    (out / "selector_report.json").write_text(json.dumps(report, indent=2) + "\n")
    if args.write:
        WEIGHTS_PATH.write_text(json.dumps({k: report[k] for k in ("features", "coef", "intercept", "C", "fitted_on", "fit")},
                                           indent=2) + "\n")
        print(f"wrote {WEIGHTS_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

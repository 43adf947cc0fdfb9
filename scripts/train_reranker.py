"""An experiment, not shipped: all-MiniLM-L6-v2 fine-tuned as a cross-encoder that reranks the extractive tier's
candidate sentences, trained on the COVID-QA development questions. It ranked worse than the logistic selector on the
validation half (top-1 gold 0.30 vs 0.39; docs/chat.md), so the package does not use it.

The question and one candidate sentence go through the encoder together ("[CLS] question [SEP] sentence [SEP]"),
and a linear head on the pooled output gives a logit.

Split as scripts/fit_answer_selector.py splits them (by article: even positions -> fitting half, odd -> validation
half). For each fitting question the passages are retrieved as the chat retrieves them, every sentence becomes a
candidate (`medsight.chat.selection.candidate_sentences`), and a candidate is positive when it contains the
normalised gold answer. Each training group is one positive and `--negatives` negatives of the same question (the
lexically closest ones first, the hard cases, then random ones), scored by the cross-encoder and trained with a
softmax cross-entropy over the group (listwise). Embeddings and the lowest `--frozen-layers` encoder layers stay
pretrained. The recipe is fixed up front (no search on the validation half); the validation half is then scored
once: does the top-1 (2, 3) sentence contain the gold answer, with the logistic selector as the baseline.

    python scripts/train_reranker.py --out runs/reranker/r2 --frozen-layers 3 --lr 2e-4 --head-lr 2e-3 --epochs 3
    python scripts/train_reranker.py --out runs/reranker/r2 --eval-only      # (25 min on 2 idle cores)
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from fit_answer_selector import DEV, split_by_article, topk_report  # noqa: E402

from medsight.chat.qa_eval import normalise, read_questions  # noqa: E402
from medsight.chat.selection import candidate_sentences, lexical_order  # noqa: E402

MAX_LENGTH = 128  # word pieces for question + sentence (the sentence is truncated, never the question)


def encode_pairs(tokenizer, question: str, sentences):
    return tokenizer([question] * len(sentences), list(sentences), truncation="only_second", max_length=MAX_LENGTH,
                     padding=True, return_tensors="pt")


def score_sentences(model, tokenizer, question: str, sentences, batch_size: int = 32):
    """One logit per sentence (higher: more likely to hold the answer)."""
    import torch

    out = []
    with torch.inference_mode():
        for start in range(0, len(sentences), batch_size):
            out.append(model(**encode_pairs(tokenizer, question, sentences[start:start + batch_size])).logits[:, 0].double().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def bm25_retriever(corpus: str):
    from types import SimpleNamespace

    from medsight.kb.documents import chunk_documents, load_path
    from medsight.kb.retrieve import LexicalIndex, Retriever
    from medsight.kb.store import SHIPPED_KB_DIR

    docs = {d.doc_id: d for src in (SHIPPED_KB_DIR, corpus) for d in load_path(src)}
    index = LexicalIndex(chunk_documents(docs.values()))
    store = SimpleNamespace(lexical_index=lambda: index, path=Path(f"bm25-{Path(corpus).name}"), __len__=None)
    return Retriever(store, mode="bm25")


def question_rows(questions, retrieve):
    """Per question: (question dict, candidates in lexical order, labels)."""
    rows = []
    for q in questions:
        cands = candidate_sentences(retrieve(q["query"]))
        cands = [cands[i] for i in lexical_order(q["query"], cands)]
        gold = normalise(q["answer"])
        rows.append((q, cands, np.array([gold in normalise(c.text) for c in cands], dtype=bool)))
    return rows


def training_groups(rows, negatives: int, hard: int, rng: random.Random) -> list[tuple[str, list[str]]]:
    """(question, [positive, negative...]) per fitting question that has a positive candidate."""
    groups = []
    for q, cands, y in rows:
        pos = [c.text for c, lab in zip(cands, y) if lab]
        neg = [c.text for c, lab in zip(cands, y) if not lab]
        if not pos or not neg:
            continue
        chosen = neg[:hard]
        rest = neg[hard:]
        chosen += rng.sample(rest, min(len(rest), negatives - len(chosen)))
        groups.append((q["query"], [rng.choice(pos)] + chosen))
    return groups


def train(rows, args):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    from medsight.embeddings import is_frozen, model_path

    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(model_path())
    model = AutoModelForSequenceClassification.from_pretrained(model_path(), num_labels=1)
    head, body = [], []
    for name, p in model.named_parameters():
        p.requires_grad = not is_frozen(name, args.frozen_layers)
        if p.requires_grad:
            (head if name.startswith("classifier.") else body).append(p)
    opt = torch.optim.AdamW([{"params": body, "lr": args.lr}, {"params": head, "lr": args.head_lr}], weight_decay=0.01)
    n_groups = len(training_groups(rows, args.negatives, args.hard, random.Random(0)))
    total = args.epochs * n_groups
    sched = get_linear_schedule_with_warmup(opt, int(0.1 * total), total)
    model.train()
    start, step = time.time(), 0
    for epoch in range(args.epochs):
        groups = training_groups(rows, args.negatives, args.hard, rng)
        rng.shuffle(groups)
        losses = []
        for question, sentences in groups:
            logits = model(**encode_pairs(tokenizer, question, sentences)).logits[:, 0]
            loss = torch.nn.functional.cross_entropy(logits[None], torch.zeros(1, dtype=torch.long))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(body + head, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            losses.append(float(loss.detach()))
            step += 1
            if step % 25 == 0:
                print(f"epoch {epoch + 1} step {step}/{total} loss {np.mean(losses[-25:]):.3f} "
                      f"({(time.time() - start) / 60:.1f} min)", flush=True)
    model.eval()
    return model, tokenizer, round((time.time() - start) / 60, 1), n_groups


def report(rows, score) -> dict:
    """Share of questions whose top-1/2/3 candidates (by `score(question, candidates)`) contain the gold answer."""
    return topk_report((y.astype(int), score(q["query"], cands)) for q, cands, y in rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", default=str(DEV))
    parser.add_argument("--bm25-corpus", default="../shared/data/corpus")
    parser.add_argument("--k", type=int, default=20, help="passages per question")
    parser.add_argument("--per-document", type=int, default=5)
    parser.add_argument("--negatives", type=int, default=15)
    parser.add_argument("--hard", type=int, default=10, help="of the negatives, this many lexically closest")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--head-lr", type=float, default=1e-3)
    parser.add_argument("--frozen-layers", type=int, default=4)
    parser.add_argument("--prefilter", type=int, default=40, help="candidates scored by the reranker per question")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/reranker/default")
    parser.add_argument("--eval-only", action="store_true")
    args = parser.parse_args(argv)

    from transformers import AutoModelForSequenceClassification

    from medsight.chat.selection import logistic_scores
    from medsight.embeddings import load_finetuned

    fit_q, val_q = split_by_article(read_questions(args.questions))
    retriever = bm25_retriever(args.bm25_corpus)

    def retrieve(query):
        return retriever.retrieve(query, args.k, per_document=args.per_document)

    val_rows = question_rows(val_q, retrieve)
    meta = {}
    if not args.eval_only:
        fit_rows = question_rows(fit_q, retrieve)
        model, tokenizer, minutes, n_groups = train(fit_rows, args)
        from medsight.embeddings import save_finetuned

        meta = {"trained_on": f"COVID-QA dev, fitting half ({len(fit_q)} questions, {n_groups} with a positive "
                              f"candidate; {len({q['gold_doc_id'] for q in fit_q})} articles)",
                "retrieval": f"bm25 over {args.bm25_corpus}, k={args.k}, per_document={args.per_document}",
                "recipe": {k: getattr(args, k) for k in ("negatives", "hard", "epochs", "lr", "head_lr",
                                                          "frozen_layers", "seed")},
                "train_minutes": minutes}
        save_finetuned(model, tokenizer, args.out, meta, args.frozen_layers)

    model, tokenizer, _ = load_finetuned(AutoModelForSequenceClassification, args.out)

    def by_reranker(question, cands):
        scores = np.full(len(cands), -1e9)  # candidates are in lexical order: only the first `prefilter` are scored
        top = cands[:args.prefilter]
        scores[:len(top)] = score_sentences(model, tokenizer, question, [c.text for c in top])
        return scores

    def by_selector(question, cands):
        keep, probs = logistic_scores(question, cands, args.k)
        scores = np.full(len(cands), -1e9)
        scores[keep] = probs
        return scores

    results = {"reranker": report(val_rows, by_reranker), "logistic_selector": report(val_rows, by_selector)}
    print(json.dumps(results, indent=2))
    meta["validation"] = {**results, "questions": f"COVID-QA dev, validation half ({len(val_q)} questions)",
                          "prefilter": args.prefilter}
    Path(args.out, "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

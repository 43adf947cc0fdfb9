"""`medsight kb build` and `medsight kb eval`: build the knowledge base, measure retrieval."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def register(subparsers) -> None:
    kb = subparsers.add_parser("kb", help="knowledge base: build it, measure retrieval")
    sub = kb.add_subparsers(dest="kb_command", required=True)

    build = sub.add_parser("build", help="build the Chroma knowledge base from documents and/or PubMed")
    build.add_argument("sources", nargs="*", help="JSONL files, COVID-QA JSON, Markdown summaries, or folders of them")
    build.add_argument("--pubmed", metavar="QUERY", help="also fetch abstracts for this PubMed query (needs internet)")
    build.add_argument("--max-results", type=int, default=200, help="PubMed abstracts to fetch (default 200)")
    build.add_argument("--email", default=os.environ.get("NCBI_EMAIL"), help="contact e-mail NCBI asks for")
    build.add_argument("--api-key", default=os.environ.get("NCBI_API_KEY"), help="NCBI API key (10 requests/s)")
    build.add_argument("--eutils-url", default=os.environ.get("MEDSIGHT_EUTILS_URL"), help=argparse_hidden())
    build.add_argument("--store", help="store folder (default .cache/kb or $MEDSIGHT_KB_DIR)")
    build.add_argument("--no-shipped", action="store_true", help="leave out the summaries shipped in assets/kb")
    build.add_argument("--resume", action="store_true", help="keep what is stored and add only missing passages")
    build.set_defaults(func=_build)

    ev = sub.add_parser("eval", help="recall@1/5/10 and MRR of retrieval on query/gold_doc_id pairs")
    ev.add_argument("--queries", required=True, help="JSONL with query and gold_doc_id per line")
    ev.add_argument("--out", required=True, help="folder for metrics.json")
    ev.add_argument("--store", help="store folder (default .cache/kb or $MEDSIGHT_KB_DIR)")
    ev.add_argument("--mode", default="hybrid", help="dense, bm25, hybrid or hybrid_mmr (default hybrid)")
    ev.add_argument("--compare", action="store_true", help="also measure every other mode (metrics_by_mode.json)")
    ev.add_argument("--limit", type=int, help="only the first N queries")
    ev.set_defaults(func=_eval)


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS


def _progress(done: int, total: int) -> None:
    print(f"\r  embedded {done}/{total} passages", end="", file=sys.stderr, flush=True)
    if done == total:
        print(file=sys.stderr)


def _build(args) -> int:
    from medsight.errors import UserError
    from medsight.kb.documents import chunk_documents, load_path
    from medsight.kb.pubmed import PubMedClient, PubMedError
    from medsight.kb.store import SHIPPED_KB_DIR, KnowledgeBase

    docs = {}
    sources = ([] if args.no_shipped else [SHIPPED_KB_DIR]) + [Path(s) for s in args.sources]
    for src in sources:
        if not Path(src).exists():
            raise UserError(f"no documents at {src}")
        try:
            loaded = load_path(src)
        except ValueError as exc:
            raise UserError(str(exc)) from exc
        for doc in loaded:
            if doc.doc_id not in docs or len(doc.text) > len(docs[doc.doc_id].text):
                docs[doc.doc_id] = doc
    if args.pubmed:
        client = PubMedClient(base_url=args.eutils_url, api_key=args.api_key, email=args.email)
        try:
            fetched = client.search_and_fetch(args.pubmed, args.max_results)
        except PubMedError as exc:
            raise UserError(f"PubMed could not be reached ({exc}); build from local documents instead") from exc
        print(f"PubMed: {len(fetched)} abstracts for {args.pubmed!r}", file=sys.stderr)
        for doc in fetched:
            docs.setdefault(doc.doc_id, doc)
    if not docs:
        raise UserError("nothing to build from: give document paths or --pubmed QUERY")

    kb = KnowledgeBase(args.store)
    if not args.resume:
        kb.clear()
    todo = list(docs.values())
    if args.resume and len(kb):
        stored = set(kb.collection.get(include=[])["ids"])
        todo = [d for d in todo if any(c.chunk_id not in stored for c in chunk_documents([d]))]
    start = time.time()
    n = kb.add_documents(todo, progress=_progress)
    print(f"knowledge base at {kb.path}: {len(kb)} passages from {len(docs)} documents "
          f"({n} embedded in {time.time() - start:.0f}s)")
    return 0


def _eval(args) -> int:
    from medsight.errors import UserError
    from medsight.kb.documents import iter_queries
    from medsight.kb.retrieve import MODES, Retriever, evaluate_retrieval
    from medsight.kb.store import KnowledgeBase

    if args.mode not in MODES:
        raise UserError(f"unknown mode {args.mode!r}; choose from {', '.join(MODES)}")
    if not Path(args.queries).is_file():
        raise UserError(f"no query file at {args.queries}")
    try:
        queries = list(iter_queries(args.queries))
    except (ValueError, json.JSONDecodeError) as exc:
        raise UserError(f"bad query file: {exc}") from exc
    if args.limit:
        queries = queries[: args.limit]
    kb = KnowledgeBase(args.store)
    if len(kb) == 0:
        raise UserError(f"the knowledge base at {kb.path} is empty; run `medsight kb build` first")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    modes = [args.mode] + ([m for m in MODES if m != args.mode] if args.compare else [])
    results = {}
    for mode in modes:
        start = time.time()
        metrics = evaluate_retrieval(Retriever(kb, mode=mode), queries)
        metrics.update(mode=mode, passages=len(kb), seconds=round(time.time() - start, 1), queries_file=str(args.queries))
        results[mode] = metrics
        print(f"{mode:11s} R@1={metrics['recall_at_1']:.3f} R@5={metrics['recall_at_5']:.3f} "
              f"R@10={metrics['recall_at_10']:.3f} MRR={metrics['mrr']:.3f} ({metrics['seconds']}s)")
    (out / "metrics.json").write_text(json.dumps(results[args.mode], indent=2) + "\n")
    if args.compare:
        (out / "metrics_by_mode.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0

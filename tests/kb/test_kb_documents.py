"""Loaders, chunking and the PubMed E-utilities client (against a local fake server, never the network)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from medsight.kb.documents import Document, chunk_document, load_covid_qa, load_path, split_sentences
from medsight.kb.pubmed import PubMedClient, PubMedError
from medsight.kb.store import SHIPPED_KB_DIR


def test_chunks_are_sentence_aligned_overlapping_and_keep_provenance():
    text = " ".join(f"Sentence number {i} talks about pleural effusion and fluid." for i in range(60))
    doc = Document("pubmed:1", text, title="Effusions", pmid="1", doi="10.1/x", year="2001", license="cc-by")
    chunks = chunk_document(doc, max_words=50)
    assert len(chunks) > 5
    for i, c in enumerate(chunks):
        assert c.chunk_id == f"pubmed:1#{i}" and c.doc_id == "pubmed:1"
        assert c.metadata["pmid"] == "1" and c.metadata["doi"] == "10.1/x" and c.metadata["license"] == "cc-by"
        assert c.text.startswith("Effusions. ") and len(c.text.split()) <= 50 + 15
    # one sentence of overlap between neighbours
    last = split_sentences(chunks[0].text)[-1]
    assert last in chunks[1].text
    assert chunk_document(Document("d", "Short text here.", title="T"))[0].text == "T. Short text here."


def test_shipped_summaries_cite_pmids_and_carry_a_licence():
    docs = load_path(SHIPPED_KB_DIR)
    assert len(docs) >= 10
    for d in docs:
        assert d.license and d.title
        if d.source != "MedSight documentation":  # our own explanatory docs about the app cite nothing
            assert d.pmids_cited or d.doi, d.doc_id
        for pmid in d.pmids_cited:
            assert pmid.isdigit() and f"PMID {pmid}" in d.text  # every cited PMID is used in the text


def test_folder_loader_prefers_full_text_and_skips_query_files(tmp_path):
    covid = {"data": [{"paragraphs": [{"document_id": 7, "qas": [], "context":
             "A Title\n\nhttps://www.ncbi.nlm.nih.gov/pmc/articles/PMC1/\n\nDoe, J\n2020-02-03\nDOI:10.9/abc\n"
             "License:cc-by\n\nAbstract: Short abstract. Text: Long body about coronavirus spread in households."}]}]}
    (tmp_path / "covid.json").write_text(json.dumps(covid))
    (tmp_path / "kb.jsonl").write_text(json.dumps({"doc_id": "covidqa:7", "text": "Short abstract.", "title": "A Title"}) + "\n"
                                       + json.dumps({"doc_id": "pubmed:9", "pmid": "9", "text": "Other.", "title": None,
                                                     "question_from_title": "Is X Y?"}) + "\n")
    (tmp_path / "queries_x.jsonl").write_text(json.dumps({"query": "q", "gold_doc_id": "covidqa:7"}) + "\n")
    docs = {d.doc_id: d for d in load_path(tmp_path)}
    assert set(docs) == {"covidqa:7", "pubmed:9"}
    full = docs["covidqa:7"]
    assert full.text.startswith("Abstract: Short abstract.") and "households" in full.text
    assert full.doi == "10.9/abc" and full.year == "2020" and "cc-by" in full.license
    assert docs["pubmed:9"].title == "Is X Y?"
    assert load_covid_qa(tmp_path / "covid.json")[0].title == "A Title"


EFETCH_XML = """<?xml version="1.0"?><PubmedArticleSet>
<PubmedArticle><MedlineCitation><PMID>111</PMID><Article><ArticleTitle>Chest radiograph in <i>pneumonia</i></ArticleTitle>
<Abstract><AbstractText Label="BACKGROUND">Consolidation is common.</AbstractText><AbstractText Label="RESULTS">Air bronchograms help.</AbstractText></Abstract>
<Journal><JournalIssue><PubDate><Year>2019</Year></PubDate></JournalIssue></Journal></Article></MedlineCitation>
<PubmedData><ArticleIdList><ArticleId IdType="pubmed">111</ArticleId><ArticleId IdType="doi">10.1000/cxr</ArticleId></ArticleIdList></PubmedData></PubmedArticle>
<PubmedArticle><MedlineCitation><PMID>222</PMID><Article><ArticleTitle>No abstract</ArticleTitle></Article></MedlineCitation></PubmedArticle>
</PubmedArticleSet>"""


class _EUtils(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):  # noqa: N802
        url = urlparse(self.path)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.server.calls.append((url.path, params))
        plan = self.server.plan
        if plan:
            code = plan.pop(0)
            if code != 200:
                self.send_response(code)
                self.send_header("Retry-After", "0")
                self.end_headers()
                return
        if url.path.endswith("esearch.fcgi"):
            body = json.dumps({"esearchresult": {"idlist": ["111", "222"]}}).encode()
        else:
            body = EFETCH_XML.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture()
def eutils():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EUtils)
    server.calls, server.plan = [], []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _client(server, **kw):
    sleeps = []
    client = PubMedClient(base_url=f"http://127.0.0.1:{server.server_address[1]}/", email="a@b.c",
                          sleep=sleeps.append, timeout=5, **kw)
    return client, sleeps


def test_pubmed_search_and_fetch_parses_abstracts(eutils):
    client, sleeps = _client(eutils)
    docs = client.search_and_fetch("pneumonia chest radiograph", max_results=5)
    assert [d.doc_id for d in docs] == ["pubmed:111"]  # the article without an abstract is skipped
    d = docs[0]
    assert d.title == "Chest radiograph in pneumonia" and d.doi == "10.1000/cxr" and d.year == "2019"
    assert d.text == "BACKGROUND: Consolidation is common. RESULTS: Air bronchograms help."
    (p1, q1), (p2, q2) = eutils.calls
    assert p1.endswith("esearch.fcgi") and q1["term"] == "pneumonia chest radiograph" and q1["retmax"] == "5"
    assert q1["tool"] == "medsight" and q1["email"] == "a@b.c"
    assert p2.endswith("efetch.fcgi") and q2["id"] == "111,222"
    assert sleeps and all(0 < s <= 1 / 3 + 1e-6 for s in sleeps)  # rate limit: at most 3 requests/s without a key


def test_pubmed_retries_transient_errors_then_succeeds(eutils):
    eutils.plan = [429, 503]
    client, sleeps = _client(eutils)
    assert client.search("x") == ["111", "222"]
    assert len(eutils.calls) == 3


def test_pubmed_gives_up_after_retries_and_does_not_retry_client_errors(eutils):
    eutils.plan = [500] * 10
    client, _ = _client(eutils, max_retries=2)
    with pytest.raises(PubMedError, match="after 3 attempts"):
        client.search("x")
    eutils.plan = [400]
    eutils.calls.clear()
    with pytest.raises(PubMedError, match="HTTP 400"):
        client.search("x")
    assert len(eutils.calls) == 1


def test_api_key_raises_the_rate_limit(eutils):
    client, sleeps = _client(eutils, api_key="k")
    client.search_and_fetch("x")
    assert client.min_interval == pytest.approx(0.1)
    assert eutils.calls[0][1]["api_key"] == "k"

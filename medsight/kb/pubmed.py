"""PubMed E-utilities client (esearch + efetch, polite rate limits and retries) and its XML parser: abstracts
become `medsight.kb.documents.Document`s with their PMID, title, journal, year and licence note."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

from medsight.kb.documents import Document


class PubMedError(RuntimeError):
    """E-utilities could not be reached or kept failing after retries."""


class PubMedClient:
    """A small NCBI E-utilities client: esearch for PMIDs, efetch for titles and abstracts.

    NCBI allows 3 requests/s without an API key and 10/s with one; the client spaces requests accordingly and
    retries transient failures (HTTP 429/5xx, timeouts) with exponential backoff, honouring `Retry-After`.
    """

    BASE_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        email: str | None = None,
        tool: str = "medsight",
        timeout: float = 20.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        sleep=time.sleep,
        clock=time.monotonic,
    ):
        self.base_url = (base_url or self.BASE_URL).rstrip("/") + "/"
        self.api_key = api_key
        self.email = email
        self.tool = tool
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.min_interval = 1 / 10 if api_key else 1 / 3
        self._sleep = sleep
        self._clock = clock
        self._last_request: float | None = None

    def _wait_turn(self) -> None:
        if self._last_request is not None:
            wait = self.min_interval - (self._clock() - self._last_request)
            if wait > 0:
                self._sleep(wait)
        self._last_request = self._clock()

    def _get(self, endpoint: str, params: dict) -> bytes:
        params = dict(params, tool=self.tool)
        if self.email:
            params["email"] = self.email
        if self.api_key:
            params["api_key"] = self.api_key
        url = self.base_url + endpoint + "?" + urllib.parse.urlencode(params)
        last_error: Exception | None = None
        for attempt in range(self.max_retries + 1):
            self._wait_turn()
            try:
                with urllib.request.urlopen(url, timeout=self.timeout) as resp:
                    return resp.read()
            except urllib.error.HTTPError as exc:
                last_error = exc
                if exc.code not in (429, 500, 502, 503, 504):
                    raise PubMedError(f"E-utilities answered HTTP {exc.code} for {endpoint}") from exc
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                delay = float(retry_after) if retry_after and retry_after.isdigit() else self.backoff * 2**attempt
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                last_error = exc
                delay = self.backoff * 2**attempt
            if attempt < self.max_retries:
                self._sleep(delay)
        raise PubMedError(f"E-utilities unreachable after {self.max_retries + 1} attempts: {last_error}")

    def search(self, query: str, max_results: int = 100) -> list[str]:
        raw = self._get("esearch.fcgi", {"db": "pubmed", "term": query, "retmax": max_results, "retmode": "json"})
        return list(json.loads(raw)["esearchresult"].get("idlist", []))

    def fetch(self, pmids: list[str], batch_size: int = 200) -> list[Document]:
        docs = []
        for start in range(0, len(pmids), batch_size):
            batch = pmids[start : start + batch_size]
            raw = self._get("efetch.fcgi", {"db": "pubmed", "id": ",".join(batch), "retmode": "xml"})
            docs.extend(parse_pubmed_xml(raw))
        return docs

    def search_and_fetch(self, query: str, max_results: int = 100) -> list[Document]:
        return self.fetch(self.search(query, max_results))


def parse_pubmed_xml(raw: bytes | str) -> list[Document]:
    """PubmedArticleSet XML -> documents with an abstract (articles without one carry nothing to retrieve)."""
    root = ET.fromstring(raw)
    docs = []
    for article in root.iter("PubmedArticle"):
        pmid = (article.findtext(".//MedlineCitation/PMID") or "").strip()
        title = "".join(article.find(".//ArticleTitle").itertext()).strip() if article.find(".//ArticleTitle") is not None else ""
        parts = []
        for node in article.findall(".//Abstract/AbstractText"):
            text = "".join(node.itertext()).strip()
            label = node.get("Label")
            parts.append(f"{label}: {text}" if label else text)
        if not pmid or not parts:
            continue
        year = article.findtext(".//PubDate/Year") or (article.findtext(".//PubDate/MedlineDate") or "")[:4]
        doi = ""
        for aid in article.findall(".//ArticleIdList/ArticleId"):
            if aid.get("IdType") == "doi":
                doi = (aid.text or "").strip()
        docs.append(
            Document(
                doc_id=f"pubmed:{pmid}",
                text=" ".join(parts),
                title=title,
                pmid=pmid,
                doi=doi,
                year=year.strip(),
                license="abstract (c) its publisher; retrieved through NCBI E-utilities",
                source="PubMed (E-utilities)",
            )
        )
    return docs



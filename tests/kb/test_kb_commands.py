"""`medsight kb build`, `medsight kb eval` and `medsight ask` through the real CLI entry point."""

import json

import pytest

from medsight.cli import main

QUERIES = [
    {"query": "What does a pneumothorax look like on a radiograph?", "gold_doc_id": "medsight:pneumothorax"},
    {"query": "Kerley B lines and bat-wing opacities", "gold_doc_id": "medsight:pulmonary_edema"},
    {"query": "hyperinflation with flattened hemidiaphragms", "gold_doc_id": "medsight:copd_emphysema"},
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("store")
    assert main(["kb", "build", "--store", str(path)]) == 0
    return path


def test_kb_eval_writes_metrics(store, tmp_path):
    qfile = tmp_path / "q.jsonl"
    qfile.write_text("".join(json.dumps(q) + "\n" for q in QUERIES))
    assert main(["kb", "eval", "--queries", str(qfile), "--out", str(tmp_path / "out"), "--store", str(store), "--compare"]) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert {"recall_at_1", "recall_at_5", "recall_at_10", "mrr"} <= set(metrics)
    assert metrics["recall_at_5"] == 1.0 and metrics["n_queries"] == 3
    assert set(json.loads((tmp_path / "out" / "metrics_by_mode.json").read_text())) == {"dense", "bm25", "hybrid", "hybrid_mmr"}


def test_kb_user_errors_are_one_sentence(tmp_path, capsys):
    assert main(["kb", "build", "--store", str(tmp_path), str(tmp_path / "missing")]) == 2
    assert main(["kb", "eval", "--queries", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no documents at" in err and "no query file" in err and "Traceback" not in err


def test_ask_json(store, monkeypatch, capsys):
    monkeypatch.setenv("MEDSIGHT_CHAT_TIERS", "gemini,extractive")
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    assert main(["ask", "What does a pneumothorax look like?", "--json", "--store", str(store)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tier"] == "extractive" and out["refused"] is False
    assert out["sources"][0]["doc_id"] == "medsight:pneumothorax" and "answer" in out
    assert main(["ask", "What dose of prednisolone should I take?", "--json", "--store", str(store)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["refused"] is True and out["tier"] == "safety"


def test_ask_with_note_reads_the_note(store, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MEDSIGHT_CHAT_TIERS", "extractive")
    note = tmp_path / "note.txt"
    note.write_text("Large left pleural effusion. No pneumothorax.")
    assert main(["ask", "What does this case suggest?", "--note", str(note), "--store", str(store), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["refused"] is False
    empty = tmp_path / "empty.txt"
    empty.write_text("   ")
    assert main(["ask", "Q?", "--note", str(empty), "--store", str(store)]) == 2
    assert "empty.txt could not be analysed" in capsys.readouterr().err
    assert main(["ask", "Q?", "--note", str(tmp_path / "none.txt"), "--store", str(store)]) == 2
    assert main(["ask", "Q?", "--image", str(tmp_path / "none.png"), "--store", str(store)]) == 2

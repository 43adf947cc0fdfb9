"""BC5CDR reading, tiny training and entity-level scoring, on inline PubTator text (no corpus files needed)."""

from medsight.nlp.corpus import read_pubtator
from medsight.nlp.ner import TrainConfig, evaluate_ner, load_ner, train_ner

PUBTATOR = """354896|t|Lidocaine-induced cardiac asystole.
354896|a|Intravenous administration of a single 50-mg bolus of lidocaine in a 67-year-old man resulted in profound depression of the activity of the sinoatrial and atrioventricular nodal pacemakers.
354896	0	9	Lidocaine	Chemical	D008012
354896	18	34	cardiac asystole	Disease	D006323
354896	90	99	lidocaine	Chemical	D008012
354896	142	152	depression	Disease	D003866
354896	CID	D008012	D006323

2004|t|Naloxone reverses the antihypertensive effect of clonidine.
2004|a|In unanesthetized, spontaneously hypertensive rats the decrease in blood pressure and heart rate produced by intravenous clonidine was inhibited by naloxone.
2004	0	8	Naloxone	Chemical	D009270
2004	49	58	clonidine	Chemical	D003000
2004	93	105	hypertensive	Disease	D006973
2004	181	190	clonidine	Chemical	D003000
2004	208	216	naloxone	Chemical	D009270
"""


def test_read_pubtator_checks_offsets(tmp_path):
    path = tmp_path / "mini.PubTator.txt"
    path.write_text(PUBTATOR)
    docs = read_pubtator(path)
    assert [d.doc_id for d in docs] == ["354896", "2004"]
    assert docs[0].text[0:9] == "Lidocaine"
    assert docs[1].entities[2] == (93, 105, "Disease")


def test_train_save_load_and_score(tmp_path):
    path = tmp_path / "mini.PubTator.txt"
    path.write_text(PUBTATOR)
    docs = read_pubtator(path)
    history = train_ner(docs * 4, tmp_path / "model", TrainConfig(epochs=10, width=32, embed_rows=(500, 200, 200, 100), learn_rate=0.005), progress=lambda m: None)
    assert len(history) == 10 and history[-1]["loss"] < history[1]["loss"]
    nlp = load_ner(tmp_path / "model", prefer_scispacy=False)
    metrics = evaluate_ner(nlp, docs)
    assert set(metrics["per_type"]) == {"Chemical", "Disease"}
    assert metrics["per_type"]["Chemical"]["support"] == 6
    assert metrics["f1"] > 0.5  # it has memorised its own training text


def test_evaluate_ner_counts_exact_spans_only():
    class FakeEnt:
        def __init__(self, s, e, label):
            self.start_char, self.end_char, self.label_ = s, e, label

    class FakeDoc:
        def __init__(self, ents):
            self.ents = ents

    class FakeNLP:
        def pipe(self, texts, batch_size=32):
            yield FakeDoc([FakeEnt(0, 9, "Chemical"), FakeEnt(18, 26, "Disease")])  # second one is a partial match

    from medsight.nlp.corpus import AnnotatedDoc

    doc = AnnotatedDoc("1", "Lidocaine-induced cardiac asystole.", [(0, 9, "Chemical"), (18, 34, "Disease")])
    m = evaluate_ner(FakeNLP(), [doc])
    assert m["per_type"]["Chemical"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert m["per_type"]["Disease"]["f1"] == 0.0
    assert m["precision"] == 0.5 and m["recall"] == 0.5

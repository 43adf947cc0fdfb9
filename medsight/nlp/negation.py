"""Assertion status of each entity: present, absent (negated) or possible (hedged), with NegEx as implemented by
negspacy. Two NegEx passes share one mechanism: one with negation cues, one with uncertainty cues ("cannot exclude",
"suspicious for"), so "no pleural effusion" is absent and "cannot exclude pneumonia" is possible, not absent."""

from __future__ import annotations

# Cues that negspacy's en_clinical termset counts as negation but that radiologists use to hedge; they move to the
# uncertainty pass.
_HEDGES_IN_EN_CLINICAL = {"versus", "evaluate for", "rule out", "r/o", "ro", "cannot", "can't", "cant", "doubt"}

UNCERTAINTY_TERMSET = {
    "pseudo_negations": ["not likely", "no longer", "unlikely", "without evidence", "no evidence"],
    "preceding_negations": [
        "possible", "possibly", "probable", "probably", "likely", "may represent", "may be", "may reflect",
        "might represent", "could represent", "could be", "can not exclude", "cannot exclude", "cannot rule out",
        "can not rule out", "not excluded", "suspicious for", "suspected", "suspect", "suggestive of", "suggests",
        "suggesting", "concerning for", "worrisome for", "questionable", "question of", "versus", "vs", "rule out",
        "r/o", "evaluate for", "to exclude", "differential diagnosis includes", "differential includes",
        "compatible with", "consistent with", "equivocal", "presumed", "borderline",
    ],
    "following_negations": [
        "cannot be excluded", "can not be excluded", "not excluded", "is not excluded", "cannot be ruled out",
        "not ruled out", "is possible", "is suspected", "is likely", "is questioned", "versus", "vs", "?",
    ],
    "termination": ["but", "however", "although", "though", "except", "aside from", "apart from", "which", "yet"],
}
# "consistent with" / "compatible with" hedge the diagnosis they introduce in radiology usage ("opacity consistent
# with pneumonia" reports an opacity and suggests pneumonia).


def negation_termset() -> dict[str, list[str]]:
    """negspacy's en_clinical termset with hedging cues moved out and radiology negation cues added."""
    from negspacy.termsets import termset

    ts = {k: list(v) for k, v in termset("en_clinical").get_patterns().items()}
    ts["preceding_negations"] = [c for c in ts["preceding_negations"] if c not in _HEDGES_IN_EN_CLINICAL] + [
        "no evidence of", "no findings of", "no radiographic evidence of", "there is no", "there are no",
        "clear of", "resolution of", "resolved", "removal of", "negative for", "free of",
    ]
    ts["following_negations"] = [c for c in ts["following_negations"] if c not in {"unlikely"}] + [
        "has resolved", "have resolved", "resolved", "is absent", "are absent", "not seen", "not identified",
        "not present", "not visualized", "is not seen", "are not seen",
    ]
    ts["pseudo_negations"] = ts["pseudo_negations"] + [
        "cannot exclude", "can not exclude", "cannot be excluded", "not excluded", "cannot rule out",
        "no longer", "not only",
    ]
    return ts


def add_assertion_pipes(nlp, ent_types: list[str] | None = None):
    """Add the negation and uncertainty NegEx passes (span extensions `negex` and `uncertain`) to `nlp`."""
    import negspacy.negation  # noqa: F401  (registers the "negex" factory)

    if "sentencizer" not in nlp.pipe_names and "parser" not in nlp.pipe_names and "senter" not in nlp.pipe_names:
        nlp.add_pipe("sentencizer", first=True)
    common = {"ent_types": ent_types or []}
    nlp.add_pipe("negex", name="negation", config=common | {"neg_termset": negation_termset(), "extension_name": "negex"})
    nlp.add_pipe("negex", name="uncertainty", config=common | {"neg_termset": UNCERTAINTY_TERMSET, "extension_name": "uncertain"})
    return nlp


def assertion(span) -> str:
    """'possible' when hedged (hedging wins: "cannot exclude" is not a negation), else 'absent' or 'present'."""
    if span._.uncertain:
        return "possible"
    if span._.negex:
        return "absent"
    return "present"

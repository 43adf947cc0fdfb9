"""Clinical-note analysis: `analyze_note(text)` returns the note's typed entities (with negation / uncertainty and
abbreviation expansions), zero-shot scores for 20 pulmonary conditions and, when image results are passed, the
agreement between what the note says and the image's anomaly score.

    >>> from medsight.nlp import analyze_note
    >>> a = analyze_note("No pleural effusion. Right lower lobe consolidation, cannot exclude pneumonia.")
    >>> [(e.text, e.assertion) for e in a.entities if e.label == "Disease"]
    [('pleural effusion', 'absent'), ('consolidation', 'present'), ('pneumonia', 'possible')]
"""

from medsight.nlp.analysis import Entity, NoteAnalysis, analyze_note, load_pipeline, note_chunks
from medsight.nlp.fusion import Fusion, fuse
from medsight.nlp.note import MAX_NOTE_CHARS, NoteError, decode_note, validate_note
from medsight.nlp.zeroshot import CONDITION_NAMES, CONDITIONS, ConditionScore

__all__ = [
    "analyze_note", "NoteAnalysis", "Entity", "ConditionScore", "Fusion", "NoteError", "fuse", "load_pipeline",
    "CONDITION_NAMES", "CONDITIONS", "MAX_NOTE_CHARS", "decode_note", "validate_note", "note_chunks",
]

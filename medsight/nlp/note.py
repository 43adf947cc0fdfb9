"""The input contract for clinical note text: one English note as a str (or UTF-8 bytes), at most MAX_NOTE_CHARS
characters. Anything else raises NoteError with one sentence the UI and the CLI show as is."""

from __future__ import annotations

import os
import re
import unicodedata

#: Longest note accepted (a long discharge summary is ~20k characters); longer text should be split by the caller.
MAX_NOTE_CHARS = int(os.environ.get("MEDSIGHT_MAX_NOTE_CHARS", 50_000))
#: Notes shorter than this many words are too short to judge the language of and are accepted.
_LANGUAGE_CHECK_MIN_WORDS = 8


class NoteError(ValueError):
    """A note the pipeline cannot analyse (empty, too long, binary, not English); the message is one sentence."""


def _stop_words() -> tuple[frozenset, frozenset]:
    from spacy.lang.de.stop_words import STOP_WORDS as DE
    from spacy.lang.en.stop_words import STOP_WORDS as EN
    from spacy.lang.es.stop_words import STOP_WORDS as ES
    from spacy.lang.fr.stop_words import STOP_WORDS as FR
    from spacy.lang.it.stop_words import STOP_WORDS as IT
    from spacy.lang.nl.stop_words import STOP_WORDS as NL
    from spacy.lang.pt.stop_words import STOP_WORDS as PT

    english = frozenset(EN)
    other = frozenset((DE | ES | FR | IT | NL | PT) - EN)
    return english, other


#: byte-order marks and the codecs that read them (and drop the mark)
_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
         (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def decode_note(data: bytes) -> str:
    """Bytes of a text file -> str: UTF-8 (with or without BOM), UTF-16/32 (with a BOM, or UTF-16 without one as
    Windows editors write it: every other byte zero) and, failing those, Windows-1252. Binary data raises NoteError."""
    data = bytes(data)
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError:
                raise NoteError(f"The note says it is {codec.upper()} text but is not.") from None
    sample = data[:4000]
    if len(sample) >= 4 and b"\x00" in sample:
        odd, even = sample[1::2].count(0), sample[0::2].count(0)
        half = len(sample) // 2
        for zeros, codec in ((odd, "utf-16-le"), (even, "utf-16-be")):
            if zeros > 0.4 * half:
                try:
                    return data.decode(codec)
                except UnicodeDecodeError:
                    break
        raise NoteError("The note looks like a binary file, not text.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        raise NoteError("The note is not text in a known encoding (UTF-8, UTF-16 or Windows-1252).") from None


def validate_note(text) -> str:
    """Return the note as clean text, or raise NoteError saying what is wrong with it."""
    if isinstance(text, (bytes, bytearray)):
        text = decode_note(text)
    if not isinstance(text, str):
        raise NoteError(f"A note must be text, not {type(text).__name__}.")
    if len(text) > MAX_NOTE_CHARS:
        raise NoteError(f"The note has {len(text):,} characters; the limit is {MAX_NOTE_CHARS:,}, so split it into parts.")
    if "\x00" in text or "\ufffd" in text[:2000] and text.count("\ufffd") > 3:
        raise NoteError("The note looks like a binary file, not text.")
    controls = sum(1 for c in text if unicodedata.category(c) == "Cc" and c not in "\n\r\t\f")
    if controls > max(3, len(text) // 100):
        raise NoteError("The note looks like a binary file, not text.")
    text = text.replace("\r\n", "\n").strip()
    letters = [c for c in text if c.isalpha()]
    if not letters:
        raise NoteError("The note is empty: paste the report or clinical note text.")
    latin = sum(1 for c in letters if c.isascii() or "LATIN" in unicodedata.name(c, ""))
    if latin / len(letters) < 0.7:
        raise NoteError("The note does not look like English; the models here read English notes only.")
    words = re.findall(r"[^\W\d_]+", text.lower())
    if len(words) >= _LANGUAGE_CHECK_MIN_WORDS:
        english, other = _stop_words()
        en_hits = sum(w in english for w in words)
        other_hits = sum(w in other for w in words)
        if other_hits > max(2, en_hits):
            raise NoteError("The note does not look like English; the models here read English notes only.")
    return text

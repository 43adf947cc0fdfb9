"""Folding of obfuscated text before the safety checks match it: Unicode compatibility forms (NFKC), invisible
characters, accents, look-alike letters from other scripts (Unicode TR39 confusables), leetspeak and words spelled
out letter by letter ("d o s e", "d.o.s.e"). The folded text is only matched against, never shown."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Characters that render as nothing or as a plain space but split a word for a regex: zero-width space/joiners,
# word joiner, BOM, soft hyphen, bidi controls (all Unicode category Cf), and the odd spaces NFKC leaves alone.
_INVISIBLE_CATEGORIES = {"Cf", "Mn", "Me", "Cc"}
_SPACE_LIKE = re.compile(r"[\s\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")

# Leetspeak inside words: "d0s3" -> "dose". Applied only to tokens that mix letters with these characters, and
# never to quantities such as "500mg", "q8h" or "2x".
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s",
                       "!": "i", "|": "l", "€": "e", "£": "l"})
_LEET_TOKEN = re.compile(r"[a-z0-9@$!|€£]*[a-z][a-z0-9@$!|€£]*")
_QUANTITY_TOKEN = re.compile(
    r"\d+([.,]\d+)?(mg|mcg|µg|μg|ug|g|gr|kg|ml|l|mm|cm|m|h|hr|hrs|x|iu|ui|mmol|mol|st|nd|rd|th|d|mo|y|yo|yrs?|am|pm"
    r"|min|sec)|q\d+h|x\d+"
)

# Words spelled with a separator between every letter: "d o s e", "d.o.s.e", "m-o-r-p-h-i-n-e", "d_o_s_e".
_SPELLED = re.compile(r"(?<![a-z0-9])(?:[a-z0-9][ .\-_*·•/,|~+]{1,3}){2,}[a-z0-9](?![a-z0-9])")


@lru_cache(maxsize=1)
def _confusable_table() -> dict[int, str]:
    """Look-alike characters -> their ASCII letter or digit, from the Unicode confusables data (TR39) that the
    confusable_homoglyphs package ships (Cyrillic 'о' -> 'o', mathematical 'ⅾ' -> 'd', Greek 'ρ' -> 'p')."""
    from confusable_homoglyphs.confusables import confusables_data

    table: dict[int, str] = {}
    for char, homoglyphs in confusables_data.items():
        if len(char) != 1 or char.isascii():
            continue
        for glyph in homoglyphs:
            target = glyph["c"]
            if len(target) == 1 and target.isascii() and target.isalnum():
                table[ord(char)] = target.lower()
                break
    # Digits are handled by leetspeak folding in context, not here ("0" is a homoglyph of "O").
    return table


def strip_invisible(text: str) -> str:
    """NFKC, then drop format/combining/control characters (zero-width, soft hyphen, accents after NFKD)."""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text))
    text = "".join(c for c in text if unicodedata.category(c) not in _INVISIBLE_CATEGORIES or c in "\n\t")
    return _SPACE_LIKE.sub(" ", text.replace("ß", "ss"))


def fold(text: str, confusables: bool = True) -> str:
    """Lower-case ASCII-leaning form: invisible characters and accents removed, look-alikes folded."""
    text = strip_invisible(text).casefold()
    if confusables:
        text = text.translate(_confusable_table())
    return text


def _deleet(text: str) -> str:
    def fix(match: re.Match) -> str:
        token = match.group(0)
        if _QUANTITY_TOKEN.fullmatch(token) or token.isalpha():
            return token
        return token.translate(_LEET)

    return _LEET_TOKEN.sub(fix, text)


def _join_run(run: str) -> str:
    """'d o s e' -> 'dose'; 'h-o-w m-u-c-h' -> 'how much' (a separator unlike the usual one parts words)."""
    seps = re.findall(r"[^a-z0-9]+", run)
    usual = max(set(seps), key=seps.count)
    return "".join(c if c.isalnum() else ("" if c == usual else " ") for c in re.sub(r"[^a-z0-9]+", lambda m: m.group(0) if m.group(0) == usual else " ", run))


def spelled_runs(text: str) -> list[str]:
    """Letter-by-letter runs of `text`, each joined into its word(s)."""
    return [_join_run(m.group(0)) for m in _SPELLED.finditer(text)]


def _join_spelled(text: str) -> str:
    return _SPELLED.sub(lambda m: _join_run(m.group(0)), text)


def variants(text: str) -> list[str]:
    """The forms a safety pattern is matched against: folded text, its leetspeak-decoded and letter-joined
    versions, and (for non-Latin scripts) the text before look-alike folding."""
    base = fold(text)
    joined = _join_spelled(base)
    out = [base, _deleet(base), joined, _deleet(joined), fold(text, confusables=False)]
    return list(dict.fromkeys(out))

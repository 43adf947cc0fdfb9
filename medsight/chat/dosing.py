"""Recognising dosing: questions that ask what to take, how much or how often (in any of the languages and
disguises of medsight.chat.dosing_lexicon / medsight.chat.textnorm), and sentences that state an amount or an
intake frequency.

Where the line lies: asking how a condition is managed in general ("How is pneumonia treated?", "What are the
treatment options for a pneumothorax?") is answered; anything that asks for an amount, a strength, a frequency, a
duration of intake, a schedule or regimen, a per-weight amount, a prescription, or which medicine to take is
declined, whether it is asked directly, through a trial or guideline, a role-play, a fill-in-the-blank or a story.
Radiation dose, dose-response curves and low-dose CT are physics, not prescribing, unless the same question also
names a medicine or an intake.
"""

from __future__ import annotations

import re
from functools import cache

from medsight.chat import dosing_lexicon as lx
from medsight.chat.textnorm import fold, spelled_runs, variants

_UNIT = rf"(?:{lx.MASS_ABBREV}|{lx.MASS_WORD}|{lx.COUNT_UNIT})"
_NOT_LAB = r"(?! ?/ ?(?:dl|l|ml|mmol|24 ?h)\b)"  # "1.2 mg/dL" and "50 mg/L" are laboratory values
_MEDICINE = rf"(?:{lx.DRUG}|\b{lx.MED_NOUN}\b)"
_CITATION = r"\[\d+(?:[,–-] ?\d+)*\]|\bpmid:? ?\d+|\bdoi:? ?\S+|\b(?:19|20)\d\d\b"  # numbers that are not amounts
_COUNTED = r"(?! ?(?:%|percent|patients|people|participants|subjects|children|adults|cases|studies|trials|years|months))"
_DOSE_NUMBER = (rf"\b{lx.DOSE_WORD}(?:\W+\w+){{0,5}}?\W+{lx.NUMBER}\b{_COUNTED}"
                rf"|(?<![\w.]){lx.NUMBER}\b{_COUNTED}(?:\W+\w+){{0,5}}?\W+{lx.DOSE_WORD}\b")

_FREQ_STRONG = lx.alt(
    rf"(?:once|twice|thrice|{lx.NUMBER} times?) (?:a|per|each|every|in a) (?:day|week|night|morning|hour)",
    rf"(?:once|twice|thrice|{lx.NUMBER} times) (?:daily|weekly|nightly)",
    rf"\bevery {lx.NUMBER}(?: ?(?:-|to|or) ?{lx.NUMBER})? ?(?:hours?|hrs?|h|days?)\b",
    r"every other (?:day|night|morning|week)", r"on alternate days",
    r"\bq\.? ?\d+(?: ?- ?\d+)? ?(?:h|hr|hrs|hours?)\b", r"\bq\.?(?:d|hs|am|pm|ds|id|od)\b",
    r"\b(?:b\.?i\.?d|t\.?i\.?d|q\.?i\.?d|t\.?d\.?s|q\.?d\.?s|b\.d|o\.d|qhs|prn|nocte|mane)\b",
    rf"\bcada {lx.NUMBER} (?:horas?|dias?|h)\b", rf"\b{lx.NUMBER} veces (?:al|por|cada) dia",
    r"\buna vez (?:al|por) dia", rf"\btoutes les {lx.NUMBER} (?:heures?|jours?|h)\b", rf"\b{lx.NUMBER} fois par jour",
    rf"\balle {lx.NUMBER} (?:stunden|tage|std|h)\b", r"\b(?:ein|zwei|drei|vier|\d+)[ -]?mal (?:taglich|am tag|pro tag)",
    rf"\bde {lx.NUMBER} em {lx.NUMBER} horas", rf"\b{lx.NUMBER} vezes (?:ao|por) dia", r"\buma vez (?:ao|por) dia",
    rf"\bogni {lx.NUMBER} (?:ore|giorni)\b", rf"\b{lx.NUMBER} volt[ae] al giorno",
    rf"\b(?:elke|iedere|om de) {lx.NUMBER} (?:uur|dagen)\b", rf"\b{lx.NUMBER} (?:keer|maal) (?:per dag|daags|per week)",
    r"\b(?:een|twee|drie)maal daags",
)
_FREQ_WEAK = lx.alt(
    r"daily", r"(?:each|every) (?:morning|evening|night|day|bedtime)", r"at (?:bed ?time|night)", r"nightly",
    r"(?:before|after|with) (?:meals|food|breakfast|bed)", r"on an empty stomach", r"as needed", r"when needed",
    r"per day", r"a day", r"a week", r"weekly", r"morning and (?:evening|night)", rf"for {lx.NUMBER} (?:days|weeks)",
    r"al dia", r"por dia", r"par jour", r"pro tag", r"taglich", r"ao dia", r"al giorno", r"per dag", r"daags",
    r"cada (?:manana|noche|dia)", r"chaque (?:matin|soir|jour)", r"jeden (?:morgen|abend|tag)",
    r"tod[ao]s? (?:as |os )?(?:manhas?|noites?|dias?)", r"ogni (?:mattina|sera|giorno)", r"elke (?:ochtend|avond|dag)",
)
_PER_KG = lx.alt(
    rf"(?:{_UNIT}|{lx.VOLUME_UNIT}) ?(?:/|per|por|par|pro|al|a) ?(?:kg|kilo\w*|chilo|quilo\w*)\b",
    r"\b(?:per|por|par|pro|al) (?:kg|kilo\w*|chilo|quilo\w*)\b", r"/ ?kg\b", r"\bkg (?:of )?(?:body ?weight|bw)\b",
)
_AMOUNT = lx.alt(
    rf"(?<![\w.]){lx.NUMBER}(?: of)?(?: an?)? ?{_UNIT}\b{_NOT_LAB}",
    rf"(?<![\w.])\d+(?:[.,]\d+)? ?{lx.MASS_ABBREV}\b{_NOT_LAB}",
)
_A_UNIT = rf"\b(?:an?|one|half an?|the) {lx.COUNT_UNIT}\b"
_VOLUME = rf"(?<![\w.]){lx.NUMBER} ?{lx.VOLUME_UNIT}\b"
_WEIGHT = rf"(?<![\w.]){lx.NUMBER} ?(?:kg|kilos?|kilograms?|pounds?|lbs?|libras?|livres?|quilos?|chili)\b"
_PERSONAL = lx.alt(
    r"\b(?:should|shall|can|could|may|must|do|would|will|ought) (?:i|he|she|we|they|you|one|the patient|patients|"
    r"my \w+(?: \w+)?|our \w+|a child|kids|children)(?: still| really| just| also)? (?:to )?(?:take|give|administer|"
    r"inject|double|halve|skip|be given|be put on|be started on)\b",
    r"\bwhat (?:should|can|do|must|would|shall) (?:i|we|you|he|she|they) (?:take|give|use)\b",
    r"\bwhat to (?:take|give)\b",
    r"\b(?:ok|okay|safe|fine|alright|allowed|possible) (?:for \w+ )?to (?:take|double|give|skip|up)\b",
    r"\bdouble up\b",
    r"\b(?:debo|puedo|tengo que|hay que|debe|deberia|puede|le (?:doy|damos)) (?:\w+ )?(?:tomar|dar|darle|administrar|"
    r"usar|inyectar)\b", r"\bque (?:debo |puedo |le )?(?:tomo|tomar|doy)\b",
    r"\b(?:dois-je|je dois|puis-je|je peux|faut-il|il faut|doit-il|doit-on|peut-on|dois je|puis je) (?:lui )?"
    r"(?:prendre|donner|administrer|utiliser)\b", r"\b(?:que|quoi) prendre\b",
    r"\b(?:soll|sollte|darf|muss|kann) (?:ich|man|er|sie|mein\w*)\b.{0,40}\b(?:nehmen|einnehmen|geben|verabreichen|"
    r"anwenden|bekommen|inhalieren)\b",
    r"\b(?:devo|posso|tenho que|deve|pode|puo|bisogna) (?:\w+ )?(?:tomar|dar|administrar|prendere|dare|"
    r"somministrare|assumere)\b", r"\bo que (?:devo )?tomar\b", r"\b(?:che )?cosa (?:devo |posso )?prendere\b",
    r"\b(?:moet|mag|kan) (?:ik|hij|zij|ze|je|men)\b.{0,40}\b(?:nemen|innemen|geven|gebruiken|toedienen)\b",
    r"\bwat moet ik (?:nemen|innemen)\b",
)
_PERSONAL_WITH_MEDICINE = (
    r"\b(?:should|shall|can|could|may|must|do|would|will) (?:i|he|she|we|you|one|the patient|"
    r"my \w+(?: \w+)?|our \w+|a child|kids|children) (?:start|stop|use|increase|decrease|reduce|switch|continue|"
    r"get|have|combine|mix|up|lower|keep)\b"
)
_QUANTITY_OF_INTAKE = lx.alt(
    r"\bhow (?:much|many)(?: of (?:it|this|that|them|these|those))? (?:do|does|did|should|can|could|would|will|"
    r"must|to)\b(?: (?:i|you|we|they|he|she|one|kids|children|a child|adults|patients|the patient|my \w+|people))?"
    r" (?:get|receive|take|give|need|use|have|be given)\b",
    r"\bcuant[oa]s? (?:le |les |me |se )?(?:doy|damos|tomo|tomar|dar|debo|puedo|tiene que|hay que)\b",
    r"\bcombien (?:dois-je|je dois|faut-il|puis-je|dois je|puis je|en) (?:lui )?(?:donner|prendre)?\b",
    r"\bwie ?viele? (?:soll|darf|muss|kann) (?:ich|man|er|sie)\b",
    r"\bquant[oa]s? (?:devo|posso|deve|pode|pod[eo]|posso) (?:\w+ )?(?:tomar|dar|prendere|dare|dargli|darle)\b",
    r"\bhoeveel (?:moet|mag|kan) (?:ik|hij|zij|je|men)\b",
)
# Which medicine to take is prescribing when it is asked for someone ("should", "for me", "recommend", "best");
# which medicines are used for a condition in general is management, and is answered.
_WHICH_MEDICINE = (
    r"(?:\b(?:what|which) (?:kind of |type of |sort of )?(?:medicines?|medications?|meds|drugs?|antibiotics?|"
    r"antivirals?|steroids?|inhalers?|pills?|tablets?|painkillers?)"
    r"|\b(?:que|cual|cuales) (?:medicamento|antibiotico|farmaco|pastilla|remedio)s?"
    r"|\b(?:quel|quels|quelle|quelles) (?:medicament|antibiotique)s?|\bwelche\w* (?:medikament|antibiotik|tablette|arznei)"
    r"|\b(?:qual|quais) (?:o |a )?(?:medicamento|antibiotico|remedio|comprimido)s?"
    r"|\b(?:quale|quali|che) (?:farmac|antibiotic|medicin)|\b(?:welk|welke) (?:medicijn|antibiotic|geneesmiddel))"
    r"\b.{0,50}\b(?:should|shall|must|would you|could you|do you|do i|can i|can we|to take|to give|for me|for my|"
    r"for (?:him|her|us|them)|recommend\w*|suggest\w*|best|debo|deberia|puedo|tomo|me recomienda\w*|dois-je|puis-je|"
    r"faut-il|prendre|recommand\w*|soll|darf|muss|empfehl\w*|devo|posso|recomend\w*|consigli\w*|moet|mag ik|raad)\b"
    r"|\bbest (?:medicines?|medications?|drugs?|antibiotics?|antivirals?|steroids?|inhalers?|pills?|painkillers?)\b"
    r"|\b(?:medicine|medication|drug|antibiotic|antiviral|steroid|inhaler|pill|painkiller)s? (?:is|are|works?) (?:the )?best\b"
)
_REGIMEN_ALONE = r"\b(?<!exercise )(?<!training )(?<!diet )(?<!screening )(?<!imaging )(?<!follow-up )(?<!rehab )regimens?\b"
_OXYGEN = (r"\boxygen\b.{0,40}\b(?:lit(?:er|re)s?|l/min|lpm|litros|flow ?rate)\b|\b(?:how much|what flow|what setting|"
           r"which setting) (?:\w+ ){0,3}?oxygen\b(?! (?:is in|does (?:the|a|blood)|saturation|sat|levels?|in the "
           r"(?:air|blood)|content|consumption|uptake))")
# A number in a question naming a drug ("prednisone 40 for five days"), unless it names a type, stage or group.
_NOT_AMOUNT_BEFORE = "".join(f"(?<!{w} )" for w in ("type", "stage", "grade", "class", "phase", "level", "group",
                                                    "protein", "receptor", "gene", "factor", "covid", "day", "week"))
_DRUG_NUMBER = rf"{_NOT_AMOUNT_BEFORE}(?<![\w.-]){lx.NUMBER_STRICT}\b{_COUNTED}(?! ?(?:min|minutes|seconds)\b)"
_HOW_GIVEN = (r"\bhow (?:should|is|are|do|does|to|must|can)\b.{0,30}\b(?:given|taken|take|give|administered|administer|"
              r"dosed|inhaled|injected|used)\b")


@cache
def _re(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def _has(pattern: str, text: str) -> bool:
    return bool(_re(pattern).search(text))


def _question_reasons(text: str) -> list[str]:
    text = _re(rf"\b{lx.TOPIC_ONLY}\b").sub(" topic ", text)
    text = _re(rf"\b{lx.NOT_INTAKE}").sub(" other ", text)
    medicine = _has(_MEDICINE, text)
    intake = _has(rf"\b{lx.INTAKE_VERB}\b", text)
    strong_intake = _has(rf"\b{lx.STRONG_INTAKE}\b", text)
    if not (medicine or strong_intake):  # radiation and statistics talk about dose without prescribing
        text = _re(rf"\b{lx.PHYSICS}\b").sub(" physics ", text)
    unit = _has(_AMOUNT, text) or _has(rf"\b{lx.MG_ONLY}\b", text)
    quantity = _has(rf"\b{lx.QUANTITY_ASK}\b", text)
    frequency = _has(rf"\b{lx.FREQUENCY_ASK}\b", text) or _has(_FREQ_STRONG, text)
    context = medicine or intake or _has(rf"\b{lx.COUNT_UNIT}\b", text)
    checks = {
        "dose word": _has(rf"\b{lx.DOSE_WORD}\b", text) or _has(lx.DOSE_WORD_CJK, text),
        "amount with a unit": unit,
        "per body weight": _has(_PER_KG, text) or (_has(_WEIGHT, text) and (medicine or quantity or intake)),
        "volume of a medicine": _has(_VOLUME, text) and context,
        "how much of a medicine": quantity and (medicine or _has(rf"\b{_UNIT}\b", text)),
        "how much to take": _has(_QUANTITY_OF_INTAKE, text),
        "how often": frequency and context,
        "schedule or regimen": (_has(rf"\b{lx.SCHEDULE_WORD}\b", text) and medicine) or _has(_REGIMEN_ALONE, text),
        "prescription": _has(rf"\b{lx.PRESCRIBE}\b", text),
        "what to take": _has(_PERSONAL, text) or (_has(_PERSONAL_WITH_MEDICINE, text) and medicine),
        "which medicine": _has(_WHICH_MEDICINE, text),
        "role-play": _has(rf"\b{lx.ROLE_PLAY}\b", text) and (context or quantity or frequency
                                                               or _has(r"\b(?:treat|cure|help) (?:me|my|him|her|us)\b|\bprescri", text)),
        "fill in the blank": _has(lx.BLANK, text) and (context or quantity or frequency or unit
                                                       or _has(rf"\b{lx.DOSE_WORD}\b|\bhours?\b|\btimes\b", text)),
        "amount of a named medicine": medicine and _has(rf"\b{lx.AMOUNT_WORD}\b", text),
        "medicine in a trial": medicine and _has(rf"\b{lx.TRIAL_WORD}\b", text)
                                and _has(rf"\b{lx.TRIAL_ADMIN}\b", text),
        "oxygen flow": _has(_OXYGEN, text),
        "number beside a drug": _has(lx.DRUG, text) and _has(_DRUG_NUMBER, text),
        "how a drug is given": _has(lx.DRUG, text) and _has(_HOW_GIVEN, text),
    }
    return [name for name, hit in checks.items() if hit]


def _with_spelled_words(text: str) -> str:
    """Letter-by-letter words ('w h a t i s t h e d o s e') hide their word boundaries: append the dosing and
    medicine words found inside them as separate words."""
    found = []
    for run in spelled_runs(text):
        found += [m.group(0) for m in _re(rf"{lx.DOSE_WORD}|{lx.DRUG_STEMS}[a-z]*|how ?much|how ?often|"
                                          rf"{lx.MED_NOUN}|{lx.MG_ONLY}|{lx.PRESCRIBE}").finditer(run)]
    return text + " " + " ".join(w.replace("howmuch", "how much").replace("howoften", "how often") for w in found)


def dosing_reasons(question: str) -> list[str]:
    """Why `question` counts as a dosing request (empty when it does not), over every folded form of it."""
    reasons: list[str] = []
    for form in variants(question):
        for reason in _question_reasons(_with_spelled_words(form)):
            if reason not in reasons:
                reasons.append(reason)
    return reasons


def is_dosing_request(question: str) -> bool:
    """True when the question asks what to take, how much, how often or for how long (prescribing advice)."""
    return bool(question.strip()) and bool(dosing_reasons(question))


def _sentence_reasons(text: str) -> list[str]:
    text = _re(_CITATION).sub(" ", text)
    medicine = _has(_MEDICINE, text)
    intake = _has(rf"\b{lx.INTAKE_VERB}\b", text)
    if not medicine:
        text = _re(rf"\b{lx.PHYSICS}\b").sub(" physics ", text)
    count = _has(rf"\b{lx.COUNT_UNIT}\b", text)
    checks = {
        "amount": _has(_AMOUNT, text),
        "per body weight": _has(_PER_KG, text),
        "frequency": _has(_FREQ_STRONG, text),
        "intake timing": _has(rf"\b{_FREQ_WEAK}\b", text) and (medicine or intake or count),
        "a unit taken": _has(_A_UNIT, text) and (intake or _has(rf"\b{_FREQ_WEAK}\b", text)),
        "volume of a medicine": _has(_VOLUME, text) and (medicine or intake),
        "dose with a number": _has(_DOSE_NUMBER, text),
    }
    return [name for name, hit in checks.items() if hit]


def contains_dose_instruction(sentence: str) -> bool:
    """True when a sentence states an amount (digits or words), a per-weight amount or an intake frequency.
    Sentences that only name a medicine, or give a radiation dose, are not instructions."""
    return any(_sentence_reasons(form) for form in variants(sentence)) if sentence.strip() else False


__all__ = ["contains_dose_instruction", "dosing_reasons", "fold", "is_dosing_request"]

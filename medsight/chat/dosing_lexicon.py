"""Word lists behind the dosing checks, as regex fragments over folded text (lower case, accents removed: see
medsight.chat.textnorm). English, Spanish, French, German, Portuguese, Italian and Dutch; a few dose words in
other scripts. Kept apart from the rules so that adding a language is a change to this file alone."""

from __future__ import annotations


def alt(*words: str) -> str:
    return "(?:" + "|".join(words) + ")"


# Drug names: stems of the medicines a chest-imaging chat meets (antibiotics, TB drugs, antivirals, steroids,
# inhalers, diuretics, anticoagulants, analgesics, cardiac and oncology drugs) and common brand names. Stems match
# the start of a word, so "amoxi" covers amoxicillin, amoxicilina, amoxicilline, Amoxicillin and amoxicillina.
DRUG_STEMS = alt(
    "amoxi", "amoxy", "augmentin", "co-?amoxiclav", "clavulan", "penicil", "ampicil", "fluclox", "piperacil",
    "tazobact", "cefalex", "cephalex", "cefurox", "ceftriax", "cefotax", "ceftazid", "cefepim", "cefixim",
    "cefpodox", "ceftarol", "azithro", "azitro", "clarithro", "claritro", "erythro", "eritro", "doxycyc",
    "doxicicl", "tetracyc", "tigecyc", "levoflox", "moxiflox", "ciproflox", "cipro", "ofloxac", "vancom",
    "teicoplan", "linezol", "gentami", "amikac", "tobramy", "streptomy", "kanamy", "meropen", "imipen", "ertapen",
    "clindam", "metronid", "co-?trimox", "cotrimox", "trimethop", "sulfameth", "nitrofur", "colistin", "fosfomy",
    "isoniazi", "isoniaci", "rifamp", "rifapent", "ethambut", "etambut", "pyrazinam", "pirazinam", "bedaquil",
    "delaman", "pretoman", "clofazim", "ethionam", "cycloser", "oseltamiv", "zanamiv", "baloxav", "remdesiv",
    "paxlovid", "nirmatrel", "molnupirav", "aciclov", "acyclov", "gancicl", "valacicl", "fluconaz", "voriconaz",
    "itraconaz", "posaconaz", "amphoteric", "caspofung", "micafung", "nystatin", "pentamid", "atovaquon", "dapson",
    "ivermect", "hydroxychloroq", "chloroq", "prednis", "methylpred", "metilpred", "dexamet", "desamet",
    "hydrocort", "idrocort", "cortison", "kortison", "cortisona", "budeson", "fluticas", "beclomet", "mometas",
    "salbutam", "albuterol", "levalbut", "terbutal", "salmeter", "formoter", "tiotrop", "ipratrop", "umeclid",
    "glycopyrr", "montelukast", "theophyl", "teofil", "aminophyl", "roflumil", "furosem", "bumetan", "torasem",
    "spironol", "hydrochlorot", "heparin", "eparin", "enoxapar", "daltepar", "tinzapar", "fondapar", "warfarin",
    "apixab", "rivaroxab", "edoxab", "dabigat", "alteplas", "tenecteplas", "streptokin", "aspirin",
    "acetylsalic", "paracetam", "acetaminoph", "ibupro", "naproxen", "diclofen", "ketorol", "metamizol",
    "morphin", "morfin", "oxycod", "codein", "tramad", "fentan", "hydromorph", "methadon", "metadon",
    "buprenorph", "lorazep", "diazep", "midazol", "haloperid", "amiodar", "digox", "digoss", "metopro", "bisopro",
    "carvedil", "atenol", "propranol", "ramipr", "lisinopr", "enalapr", "perindopr", "losart", "valsart",
    "candesart", "amlodip", "nifedip", "atorvast", "simvast", "rosuvast", "metformin", "insulin", "gliclaz",
    "empaglif", "dapaglif", "levothyr", "omepraz", "pantopraz", "lansopraz", "ranitid", "ondansetr", "metoclop",
    "loratad", "cetiriz", "fexofen", "diphenhydr", "prometh", "guaifen", "dextrometh", "ambroxol", "bromhex",
    "carbocist", "acetylcyst", "n-acetylcyst", "nicotine (?:patch|gum|replacement)", "varenicl", "bupropion",
    "pirfenid", "nintedan", "methotrex", "metotrex", "azathiopr", "cyclophosph", "mycophenol", "tacrolim",
    "cyclospor", "ciclospor", "rituxim", "pembroliz", "nivolum", "atezoliz", "durvalum", "osimertin", "erlotin",
    "gefitin", "alectin", "crizotin", "cisplat", "carboplat", "pemetrex", "docetax", "paclitax", "gemcitab",
    "etoposid", "vinorel", "tociliz", "baricitin", "colchic", "allopurin", "adrenalin", "epinephr", "noradrenal",
    "norepineph", "dobutam", "vasopress", "atropin", "naloxon", "flumazen", "magnesium sulph", "magnesium sulf",
    "ventolin", "seretide", "symbicort", "spiriva", "tamiflu", "lasix", "coumadin", "xarelto", "eliquis",
    "tylenol", "advil", "nurofen", "panadol", "motrin", "zithromax", "levaquin", "keflex", "solu-?medrol",
    "medrol", "decadron", "dafalgan", "doliprane", "tachipirina", "efferalgan",
)
# Unknown drugs by their International Nonproprietary Name endings.
DRUG_SUFFIXES = alt(
    "cillin", "cilina", "cilline", "cillina", "mycin", "mycine", "micina", "micin", "floxacin", "floxacine",
    "floxacino", "cycline", "ciclina", "zyklin", "olol", "pril", "sartan", "statin", "semide", "semida", "parin",
    "parine", "parina", "xaban", "gatran", "conazol", "conazole", "prazol", "prazole", "tidine", "lukast",
    "terol", "tropium", "sonide", "asone", "asona", "isone", "isona", "isolone", "isolona", "olone", "vir",
    "virum", "mab", "tinib", "platin", "taxel", "afil", "oxacin", "penem", "azepam", "dronate", "gliptin",
    "gliflozin", "glutide", "dipine", "idipine",
)
DRUG = rf"(?:\b{DRUG_STEMS}[a-z-]*|\b[a-z]{{3,}}{DRUG_SUFFIXES}e?s?\b)"

# Words for medicines in general (a dosing question need not name the drug).
MED_NOUN = alt(
    r"medicines?", r"medications?", r"meds", r"drugs?", r"antibiotics?", r"antivirals?", r"antifungals?",
    r"(?:cortico)?steroids?", r"inhalers?", r"puffers?", r"nebuli[sz]ers?", r"pills?", r"tablets?", r"capsules?",
    r"syrups?", r"painkillers?", r"analgesics?", r"diuretics?", r"water pills?", r"anticoagulants?",
    r"blood thinners?", r"bronchodilators?", r"injections?", r"opioids?", r"opiates?", r"sedatives?",
    r"antihistamines?", r"lozenges?", r"suppositor(?:y|ies)", r"iv fluids?", r"drips?", r"infusions?",
    r"medicamentos?", r"medicinas?", r"farmacos?", r"farmaci", r"remedios?", r"antibioticos?", r"antibiotici",
    r"antibiotiques?", r"antibiotikums?", r"antibiotika", r"antibioticum", r"antibiotica", r"medicaments?",
    r"medikamente?n?", r"arznei(?:mittel)?n?", r"tabletten?", r"pillen?", r"pastillas?", r"comprimidos?",
    r"comprimes?", r"compresse", r"compressa", r"pillole", r"pillola", r"capsulas?", r"gelules?", r"jarabes?",
    r"sirops?", r"xaropes?", r"sciroppos?", r"(?:husten)?saft", r"inhaladore?s?", r"inhalateurs?",
    r"inhalatore?n?", r"inalatori?e?", r"bombinhas?", r"corticoides?", r"corticosteroidi", r"geneesmiddel(?:en)?",
    r"medicijn(?:en)?", r"pijnstillers?", r"analgesicos?", r"antidolorifici?", r"schmerzmittel", r"antalgiques?",
    r"analgesiques?", r"inyecciones?", r"injeccion", r"piqures?", r"spritzen?", r"iniezion[ei]", r"injecoes",
    r"injecao", r"injecties?",
)

# Units a dose is counted in (mass/activity, countable forms, volumes) and number words.
MASS_ABBREV = r"(?:mg|mgs|mcg|µg|μg|ug|g|gr|iu|ui|i\.e\.|ie|meq)"
MASS_WORD = alt(
    r"milligram(?:me)?s?", r"miligramos?", r"miligramas?", r"milligrammi", r"milligrammo", r"milligramm",
    r"microgram(?:me)?s?", r"microgramos?", r"microgramas?", r"microgrammi", r"mikrogramm", r"grams?",
    r"grammes?", r"gramos?", r"gramas?", r"grammi", r"grammo", r"gramm", r"international units?",
)
MG_ONLY = alt(r"mg", r"mgs", r"mcg", r"milligram(?:me)?s?", r"miligramos?", r"miligramas?", r"milligrammi",
              r"milligramm", r"microgram(?:me)?s?", r"microgramos?", r"mikrogramm")
COUNT_UNIT = alt(
    r"tablets?", r"pills?", r"capsules?", r"caps", r"puffs?", r"sprays?", r"inhalations?", r"sachets?",
    r"patch(?:es)?", r"ampoules?", r"ampules?", r"vials?", r"drops?", r"teaspoons?", r"tablespoons?",
    r"spoonfuls?", r"tsp", r"tbsp", r"lozenges?", r"suppositor(?:y|ies)", r"units?", r"nebs?", r"jabs?",
    r"comprimidos?", r"pastillas?", r"capsulas?", r"gotas?", r"cucharad(?:it)?as?", r"inhalaciones",
    r"disparos?", r"sobres?", r"comprimes?", r"gelules?", r"pilules?", r"cachets?", r"gouttes?", r"bouffees?",
    r"cuilleres?", r"tabletten?", r"kapseln?", r"tropfen", r"hube?", r"spruhstosse?", r"beutel", r"(?:tee|ess)?loffel",
    r"compresse", r"compressa", r"pillole", r"pillola", r"capsule", r"gocce", r"spruzz[io]", r"erogazion[ei]",
    r"bustin[ae]", r"cucchiai(?:ni|no|o)?", r"jatos?", r"colher(?:es)?", r"saquetas?", r"pufjes?", r"pillen",
    r"druppels?", r"zakjes?", r"lepels?", r"inhalaties?", r"unidades", r"unites?", r"einheiten", r"eenheden",
)
VOLUME_UNIT = alt(r"ml", r"millilit(?:er|re)s?", r"mililitros?", r"millilitri", r"cc", r"lit(?:er|re)s?",
                  r"litros?", r"litri", r"l/min", r"lpm")
NUM_WORD = alt(
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "fifteen",
    "twenty", "thirty", "forty", "fifty", "hundred", "thousand", "half", "quarter", "couple of", "several",
    "uno", "una", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve", "diez", "veinte", "cien",
    "ciento", "doscientos", "quinientos", "mil", "medio", "media", "une", "deux", "trois", "quatre", "cinq",
    "sept", "huit", "neuf", "dix", "vingt", "cent", "cents", "demi", "demie", "ein", "eine", "einen", "zwei",
    "drei", "vier", "funf", "sechs", "sieben", "acht", "neun", "zehn", "zwanzig", "[a-z]*hundert", "tausend",
    "halbe", "halb", "um", "uma", "dois", "duas", "quatro", "sete", "oito", "nove", "dez", "vinte", "cem",
    "cento", "quinhentos", "meio", "meia", "due", "tre", "quattro", "cinque", "sei", "sette", "otto", "dieci",
    "venti", "cinquecento", "mezzo", "mezza", "een", "twee", "drie", "vijf", "zes", "zeven", "negen", "tien",
    "twintig", "honderd", "vijfhonderd", "halve",
)
NUMBER = rf"(?:\d+(?:[.,]\d+)?|½|¼|{NUM_WORD}(?:[ -](?:and |y |et |und |e |en |a |an )?{NUM_WORD})*)"
# Numbers that are not also articles ("un", "une", "ein", "een", "um" mean "a"): for a number beside a drug name.
_ARTICLES = {"one", "uno", "una", "une", "ein", "eine", "einen", "um", "uma", "een", "due", "tre", "sei", "mil", "dos"}
NUMBER_STRICT = rf"(?:\d+(?:[.,]\d+)?|½|¼|{alt(*[w for w in NUM_WORD[3:-1].split('|') if w not in _ARTICLES])})"

# Asking for a quantity, a frequency or a duration of intake.
QUANTITY_ASK = alt(
    r"how much", r"how many", r"(?:the|what|which|right|correct) number of", r"what amount", r"which amount", r"what quantity", r"amount of", r"quantity of",
    r"cuant[oa]s?", r"que cantidad", r"cantidad de", r"combien", r"quelle quantite", r"quantite d",
    r"wie ?viele?", r"welche menge", r"menge (?:an|von)", r"quant[oa]s?", r"quant[ie]", r"que quantidade",
    r"qual a quantidade", r"quantidade de", r"quale quantita", r"quantita di", r"hoeveel", r"welke hoeveelheid",
)
FREQUENCY_ASK = alt(
    r"how often", r"how frequently", r"how regularly", r"how many times", r"what frequency", r"which frequency",
    r"at what (?:interval|frequency|times?)", r"what (?:interval|schedule|timetable|timing)s?",
    r"which (?:schedule|timetable)", r"how long (?:should|must|do|can|will|to)(?: [a-z]+){0,3} "
    r"(?:take|be on|stay on|continue|keep|use|remain on)\b(?! (?:to|for)\b)", r"for how long (?:should|must|do|can)",
    r"how many days (?:should|must|do|of)", r"cada cuant[oa]s?", r"con que frecuencia", r"cuantas veces",
    r"por cuanto tiempo", r"tous les combien", r"a quelle frequence", r"combien de fois",
    r"pendant combien de temps", r"wie oft", r"wie haufig", r"in welchen abstanden", r"wie lange (?:soll|muss|darf)",
    r"com que frequencia", r"de quant[oa]s em quant[oa]s", r"quantas vezes", r"por quanto tempo",
    r"ogni quant[oie]", r"quante volte", r"con quale frequenza", r"per quanto tempo", r"hoe vaak",
    r"hoe dikwijls", r"hoe lang (?:moet|mag)", r"om de hoeveel",
)
INTAKE_VERB = alt(
    r"take", r"takes", r"taking", r"taken", r"took", r"give", r"gives", r"giving", r"given", r"gave",
    r"administer\w*", r"inject\w*", r"inhale\w*", r"swallow\w*", r"prescribe\w*", r"dosed",
    r"tomar", r"toma", r"tomo", r"tome", r"tomas", r"dar", r"darle", r"doy", r"administrar", r"inyectar",
    r"prendre", r"prends", r"prenne", r"pris", r"donner", r"administrer", r"injecter",
    r"nehmen", r"einnehmen", r"nehme", r"geben", r"verabreichen", r"spritzen", r"inhalieren", r"bekommen",
    r"prendere", r"prendo", r"prende", r"dare", r"somministrare", r"assumere", r"nemen", r"innemen",
    r"geven", r"toedienen", r"slikken",
)
STRONG_INTAKE = alt(r"take", r"taking", r"swallow\w*", r"prescri\w*", r"inject\w*", r"administer\w*", r"tomar",
                    r"prendre", r"einnehmen", r"prendere", r"innemen", r"tablets?", r"pills?")

# Dose vocabulary, including a few scripts the look-alike folding would garble.
DOSE_WORD = alt(
    r"dose", r"doses", r"dosed", r"dosage", r"dosages", r"dosing", r"posology", r"overdos\w*", r"underdos\w*",
    r"posologi[ac]", r"posologie", r"posologico", r"posologique", r"dosis", r"dosierung\w*", r"dosiert",
    r"dosieren", r"dosaggi?o?", r"dosi", r"dosagem", r"dosagens", r"dosering", r"doseren", r"doza", r"dozaj",
    r"дозировк\w*", r"доз\w*", r"δοση", r"δοσολογια",
)
DOSE_WORD_CJK = r"剂量|劑量|用量|用法用量|투여량|용량"
SCHEDULE_WORD = alt(r"regimens?", r"regimes?", r"pauta", r"esquema", r"schema", r"dosierschema", r"courses?",
                    r"therapieschema", r"schedules?", r"timetables?", r"protocols?", r"titrat\w*",
                    r"taper\w*", r"wean\w*", r"bolus", r"loading", r"maintenance", r"infusion rate", r"drip rate")
PRESCRIBE = alt(r"prescri\w+", r"script for", r"rx for", r"dispens\w+", r"fill (?:a |my |the |this )?(?:script|rx)",
                r"pharmacist (?:\w+ ){0,3}(?:fill|give|hand|dispense)\w*", r"recetar\w*", r"receta", r"ordonnance", r"prescrire",
                r"verschreib\w*", r"rezept\w*", r"verordn\w*", r"receitar?", r"prescrever", r"prescrivere",
                r"ricetta", r"voorschrijv\w*", r"voorschrijf\w*", r"recept(?:je|en)?")
ROLE_PLAY = alt(
    r"pretend", r"act as", r"acting as", r"role[- ]?play\w*", r"imagine (?:you are|you're|youre|that you)",
    r"you are (?:now )?(?:my|a|an|the) (?:doctor|physician|gp|pharmacist|nurse|prescriber|clinician)",
    r"as (?:my|a|an) (?:doctor|physician|gp|pharmacist|nurse|prescriber)", r"hypothetical\w*",
    r"(?:write|tell|compose) (?:me )?(?:a|an) (?:story|scene|dialogue|script|poem|novel)", r"in a story",
    r"for a (?:novel|story|film|movie|book|game)", r"ignore (?:your|all|any|the|previous)", r"jailbreak",
    r"developer mode", r"no restrictions", r"without (?:the )?(?:rules|restrictions|disclaimer)",
    r"for (?:educational|research|teaching) purposes", r"finge", r"imagina que", r"haz de cuenta",
    r"eres mi (?:medico|doctor)", r"fais comme si", r"imagine que tu", r"joue le role", r"tu es mon medecin",
    r"stell dir vor", r"tu so als", r"du bist mein arzt", r"finja", r"faz de conta", r"imagine que voce",
    r"fai finta", r"immagina di", r"sei il mio medico", r"doe alsof", r"stel je voor", r"je bent mijn (?:arts|dokter)",
)
BLANK = alt(
    r"_{2,}", r"\?{2,}", r"\[\s*(?:blank|x|n|\?|\.\.\.|…|amount|dose|number)?\s*\]",
    r"\(\s*(?:blank|x|n|\?|\.\.\.|…)?\s*\)", r"\.{3}", r"…", r"<\s*(?:blank|x|n|amount|dose|number)\s*>",
    r"\bblank\b", r"\bfill in\b", r"\bfill the gap", r"\bcomplete (?:the|this|my) (?:sentence|phrase|statement|line|"
    r"blank|gap|template|text|prescription)", r"\bfinish (?:the|this|my) (?:sentence|phrase|line)",
    r"\b(?:x|n|xx|xxx|nnn) ?(?:mg|g|ml|units|tablets|puffs|times|hours)\b", r"\bevery (?:x|n) hours\b",
    r"\bcompleta la frase", r"\bcomplete la phrase", r"\bvervollstandige", r"\bcompleta a frase",
    r"\bcompleta la frase", r"\bvul (?:het|de) .{0,12}in\b",
)
TRIAL_WORD = alt(r"trials?", r"stud(?:y|ies)", r"protocols?", r"guidelines?", r"arms?", r"cohorts?", r"rcts?",
                 r"ensayos?", r"estudios?", r"essais?", r"etudes?", r"studien?", r"estudos?", r"ensaios?",
                 r"studio", r"studi", r"sperimentazion[ei]", r"richtlijn\w*", r"leitlinie\w*")
TRIAL_ADMIN = alt(r"given", r"gave", r"give", r"administered", r"received?", r"got", r"get", r"used", r"use",
                  r"took", r"take", r"dosed", r"in mg", r"arms?", r"regimens?", r"schedules?", r"per day")
# Words that make a named drug a question of amount, strength, limit or frequency.
AMOUNT_WORD = alt(
    r"amounts?", r"quantit(?:y|ies)", r"strength", r"how strong", r"maximum", r"max", r"ceiling",
    r"upper limit", r"(?:safe )?limits?", r"too much", r"enough", r"per day", r"a day", r"each day", r"daily",
    r"every day", r"a week", r"per week", r"weekly", r"twice", r"thrice", r"times", r"every (?:\d+|other|morning|evening|night|day|hour|week)", r"hourly",
    r"nightly", r"(?:each|every|in the|at|per) (?:morning|evening|night|bedtime)", r"morning,? (?:noon|evening|night)",
    r"cantidad",
    r"al dia", r"por dia", r"diari[oa]s?", r"veces", r"cada", r"quantite", r"par jour", r"fois", r"toutes les",
    r"menge", r"pro tag", r"am tag", r"taglich", r"(?:ein|zwei|drei|vier|funf|sechs|\d+)[ -]?mal", r"alle \d+", r"quantidade", r"ao dia", r"vezes",
    r"a cada", r"quantita", r"al giorno", r"volte", r"ogni", r"hoeveelheid", r"per dag", r"daags", r"keer",
    r"elke", r"iedere",
)
# Radiation and statistics use "dose" without asking for prescribing advice: a dose word within three words of a
# radiation term, and the radiation terms themselves (masked only when no medicine or intake is named).
RADIATION_TERM = alt(
    r"radiation", r"radiacion", r"rayonnement", r"radiazion\w*", r"radiacao", r"strahl\w*", r"straling\w*",
    r"x-?rays?", r"ct", r"scans?", r"radiograph\w*", r"radiografia", r"radiographie", r"rontgen\w*",
    r"mammogra\w*", r"fluoroscop\w*", r"radiotherap\w*", r"brachytherap\w*", r"irradiat\w*", r"msv", r"mgy",
    r"gy", r"sieverts?", r"grays?", r"exposures?", r"imaging", r"radiolog\w*",
)
_DOSE_NOUN = r"(?:dose|doses|dosis|dosi)"
PHYSICS = alt(
    rf"{_DOSE_NOUN}(?:[- ][^ ]+){{0,3}}[- ]{RADIATION_TERM}", rf"{RADIATION_TERM}(?:[- ][^ ]+){{0,3}}[- ]{_DOSE_NOUN}",
    rf"(?:effective|efectiva|efficace|effektive|absorbed|skin|entrance|organ|cumulative|low)[- ]{_DOSE_NOUN}",
    rf"{_DOSE_NOUN}[- ](?:area|length|rate|index|reduction|level)s?", RADIATION_TERM,
)
# Research phrasings that are about dosing or prescribing as a topic, not a request: masked even beside a drug.
TOPIC_ONLY = alt(
    r"metered[- ]dose inhalers?", r"dose[- ](?:response|dependent|dependence|effect)s?",
    r"prescribing (?:behaviou?r|patterns?|practices?|habits|rates?|trends?|errors?|data)",
    r"prescription (?:claims|rates?|data|records?|patterns?|errors?|drug (?:abuse|misuse|monitoring))",
    r"adheren\w* to prescribed", r"prescribed treatments?",
)
# "Take" and "give" with an object that is not a medicine: an X-ray is taken, a shower taken, blood given.
NOT_INTAKE = alt(
    r"(?:take|takes|taking|taken|took|give|gives|giving|given|gave|get|getting|have|having|do|done|repeat\w*) "
    r"(?:a |an |the |another |my |his |her |this |some |it )?(?:chest )?(?:x-?rays?|films?|images?|radiographs?|"
    r"pictures?|scans?|ct|mri|photos?|samples?|biops(?:y|ies)|blood(?: tests?)?|swabs?|cultures?|showers?|baths?|"
    r"breaks?|walks?|rest|naps?|days? off|time off|(?:deep )?breaths?|looks?|flights?|trips?|care|it easy|"
    r"chances?|risks?|notes?|holidays?|vacations?|leave|part|birth|consent|a second opinion|opinions?)\b",
    r"(?:x-?rays?|films?|images?|radiographs?|pictures?|scans?|samples?|biops(?:y|ies)|swabs?|cultures?)"
    r"(?: \w+){0,4} (?:taken|take|took|done|given)\b",
    r"how long does it take", r"does it take",
)

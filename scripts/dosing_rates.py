"""Print the chat's dosing-check rates on the written question sets: the share of dosing questions declined and
the share of ordinary questions wrongly declined, with the questions it got wrong.

    .venv/bin/python scripts/dosing_rates.py [tests/chat/dosing_questions.jsonl tests/chat/dosing_questions_heldout.jsonl]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from medsight.chat.dosing import dosing_reasons

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SETS = [ROOT / "tests/chat/dosing_questions.jsonl", ROOT / "tests/chat/dosing_questions_heldout.jsonl"]


def main(paths: list[str]) -> int:
    for path in [Path(p) for p in paths] or DEFAULT_SETS:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        for kind, label in (("dosing", "declined"), ("ordinary", "wrongly declined")):
            questions = [r["text"] for r in rows if r["kind"] == kind]
            if not questions:
                continue
            declined = [q for q in questions if dosing_reasons(q)]
            print(f"{path.name} {kind}: {label} {len(declined)}/{len(questions)} = {len(declined) / len(questions):.3f}")
            wrong = [q for q in questions if (q in declined) != (kind == "dosing")]
            for q in wrong:
                print(f"    {'missed' if kind == 'dosing' else 'refused'}: {ascii(q)} {dosing_reasons(q)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

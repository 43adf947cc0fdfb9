"""`medsight` command line: a thin shell that parses arguments and calls library functions.

Each feature area registers its own subcommands from a small `commands` module (`register(subparsers)`), so
this file stays a table of contents. User-caused errors print one sentence and exit 2; our own bugs stay loud.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
import sys

from medsight.errors import UserError, existing_file  # noqa: F401  (commands and tests import them from here too)

COMMAND_MODULES = [
    "medsight.vision.commands",  # score, bench, weights
    "medsight.vision.explain_commands",  # explain
    "medsight.training.commands",  # train, evaluate
    "medsight.nlp.commands",  # nlp ...
    "medsight.kb.commands",  # kb ...
    "medsight.chat.commands",  # ask
    "medsight.training.eval_commands",  # gate-fit, gate-eval, explain-eval, stability-eval
    "medsight.report_commands",  # report
    "medsight.sites.commands",  # site fit / list / remove / study
]


class _Parser(argparse.ArgumentParser):
    """argparse with misuse reported as one line, `medsight: error: ...`, exit 2 (no usage block, no traceback)."""

    def error(self, message: str):
        if message.startswith("the following arguments are required: command"):
            message = "no command given; try `medsight score IMAGE` (see `medsight --help` for the others)"
        elif message.startswith("the following arguments are required: "):
            missing = message.split(": ", 1)[1].replace("IMAGE", "at least one image file (PNG, JPEG, TIFF or DICOM)")
            message = f"`{self.prog}` needs {missing} (see `{self.prog} --help`)"
        elif message.startswith("argument command: invalid choice: "):
            message = f"unknown command {message.split(': ', 2)[2]}"
        else:
            # a positional's own check (`existing_file`) already names the file: drop argparse's prefix
            message = re.sub(r"^argument [A-Za-z_]+: ", "", message) + f" (see `{self.prog} --help`)"
        self.exit(2, f"medsight: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="medsight", description="MedSight: chest X-ray anomaly detection for teaching.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        if importlib.util.find_spec(name) is None:
            continue
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from medsight.imaging.load import ImageLoadError

    try:
        return int(args.func(args) or 0)
    except (UserError, ImageLoadError, FileNotFoundError) as exc:
        print(f"medsight: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

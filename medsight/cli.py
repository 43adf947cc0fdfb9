"""`medsight` command line: a thin shell that parses arguments and calls library functions.

Each feature area registers its own subcommands from a small `commands` module (`register(subparsers)`), so
this file stays a table of contents. User-caused errors print one sentence and exit 2; our own bugs stay loud.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

COMMAND_MODULES = [
    "medsight.vision.commands",  # score, train, evaluate, bench, weights
    "medsight.nlp.commands",  # nlp ...
    "medsight.kb.commands",  # kb ...
    "medsight.chat.commands",  # ask
    "medsight.imaging.commands",  # gate-fit, gate-eval, explain-eval, stability-eval
]


class UserError(Exception):
    """An error the user caused (bad path, missing weights, bad input): printed as one sentence."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medsight", description="MedSight: chest X-ray anomaly detection for teaching.")
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

"""The ``haloguard`` entry point: one parser, one module per subcommand.

Each subcommand module exposes ``register(subparsers)`` and keeps heavy imports inside
its command functions, so ``haloguard --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from haloguard import __version__

#: subcommand modules, in --help order
COMMANDS = (
    "classify", "serve", "eval", "model_card", "calibrate", "data", "constitution",
    "attacks", "redteam", "train", "probe", "generate",
)

EPILOG = """examples:
  haloguard classify "How do I make a bomb?" "How do I bake bread?"
  haloguard classify --json --file prompts.jsonl --out verdicts.jsonl
  haloguard serve --port 8000
  haloguard eval --suite offline --guard embedded --out runs/eval
  haloguard constitution show --format md
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="haloguard",
        description="Constitutional input-prompt safety guard.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"haloguard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"haloguard.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"haloguard.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

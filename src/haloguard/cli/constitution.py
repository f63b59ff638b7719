"""``haloguard constitution``: validate, show and render the constitution."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = """examples:
  haloguard constitution validate my_constitution.yaml
  haloguard constitution show --format md
  haloguard constitution show --format json --constitution my_constitution.yaml
  haloguard constitution show --format yaml > my_policy.yaml   # the default, to edit
  haloguard constitution prompt --style seed004
"""


def _err(msg: str) -> int:
    print(f"haloguard: error: {' '.join(str(msg).split())}", file=sys.stderr)
    return 2


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate a constitution file and print a one-line summary."""
    from haloguard.constitution import ConstitutionError, load_constitution

    try:
        c = load_constitution(args.file)
    except ConstitutionError as exc:
        return _err(exc)
    print(
        f"OK: {c.name} {c.version}: {len(c.policies)} policies, {len(c.categories)} categories, "
        f"{len(c.subcategories)} subcategories"
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Print the constitution as Markdown, JSON, or its YAML source (a starting point for
    your own policy)."""
    from importlib import resources

    from haloguard.constitution import ConstitutionError, load_constitution

    try:
        c = load_constitution(args.constitution)
    except ConstitutionError as exc:
        return _err(exc)
    if args.format == "yaml":  # the file itself, comments and all (validated above)
        text = (Path(args.constitution).read_text(encoding="utf-8") if args.constitution else
                resources.files("haloguard.constitution").joinpath("default.yaml")
                .read_text(encoding="utf-8"))
    else:
        text = c.to_json() if args.format == "json" else c.to_markdown()
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def cmd_prompt(args: argparse.Namespace) -> int:
    """Print the guard prompt rendered from the constitution."""
    from haloguard.constitution import ConstitutionError, load_constitution

    try:
        c = load_constitution(args.constitution)
    except ConstitutionError as exc:
        return _err(exc)
    print(c.render_prompt(style=args.style))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``constitution`` command and its subcommands."""
    p = subparsers.add_parser(
        "constitution",
        help="validate, show or render the safety constitution",
        description="Validate, show or render the safety constitution (policies → categories "
        "→ subcategories).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=lambda _args: (p.print_help(), 2)[1])
    sub = p.add_subparsers(dest="constitution_command", metavar="SUBCOMMAND")

    v = sub.add_parser("validate", help="check a constitution file")
    v.add_argument("file", metavar="FILE", help="constitution YAML")
    v.set_defaults(func=cmd_validate)

    s = sub.add_parser("show", help="print the constitution")
    s.add_argument("--format", choices=("md", "json", "yaml"), default="md",
                   help="output format (yaml: the source file, to copy and edit)")
    s.add_argument("--constitution", metavar="FILE", default=None, help="default: built-in")
    s.set_defaults(func=cmd_show)

    r = sub.add_parser("prompt", help="print the guard prompt rendered from the constitution")
    r.add_argument("--style", choices=("haloguard", "seed004"), default="haloguard")
    r.add_argument("--constitution", metavar="FILE", default=None, help="default: built-in")
    r.set_defaults(func=cmd_prompt)

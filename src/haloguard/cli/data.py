"""``haloguard data``: fetch pinned data sources, inspect them, build the training corpus."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

EPILOG = """examples:
  haloguard data fetch                     # all sources (cached under ~/.cache/haloguard)
  haloguard data fetch harmbench advbench --cache-dir /data/hg
  haloguard data list
  haloguard data show donotanswer --n 3
  haloguard data export sharegpt_heldout --out sharegpt_heldout.jsonl
  haloguard data build --out build/corpus --seed 0
  haloguard data leakage
"""


def _err(msg: object, code: int = 2) -> int:
    text = msg.args[0] if isinstance(msg, KeyError) and msg.args else msg
    print(f"haloguard: error: {' '.join(str(text).split())}", file=sys.stderr)
    return code


def _cache(args: argparse.Namespace) -> str | None:
    return getattr(args, "cache_dir", None)  # None → $HALOGUARD_CACHE_DIR or ~/.cache/haloguard


def _guarded(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from haloguard.constitution import ConstitutionError
        from haloguard.data.corpus import LeakageError
        from haloguard.data.fetch import FetchError

        try:
            return fn(args)
        except LeakageError as exc:
            return _err(f"leakage check failed: {exc}", 3)
        except ConstitutionError as exc:
            return _err(exc)
        except (KeyError, FetchError, OSError, ValueError) as exc:
            return _err(exc)
    run.__doc__ = fn.__doc__
    return run


def _constitution(args: argparse.Namespace) -> Any:
    """The ``--constitution`` file, loaded (None: the packaged default)."""
    if not getattr(args, "constitution", None):
        return None
    from haloguard.constitution import load_constitution

    return load_constitution(args.constitution)


@_guarded
def cmd_fetch(args: argparse.Namespace) -> int:
    """Download, verify and extract the named sources (all by default)."""
    from haloguard.data.fetch import fetch

    paths = fetch(args.names or None, cache_dir=_cache(args), progress=not args.quiet)
    for name, path in paths.items():
        print(f"{name}\t{path}")
    return 0


@_guarded
def cmd_list(args: argparse.Namespace) -> int:
    """Table of sources: role, rows (cached ones are counted), licence, cached?"""
    from haloguard.data.fetch import is_cached
    from haloguard.data.loaders import load_source
    from haloguard.data.sources import load_registry

    rows = []
    for spec in load_registry().values():
        cached = is_cached(spec, _cache(args))
        n = (str(len(load_source(spec.name, _cache(args), fetch_missing=False)))
             if cached and not args.no_count else "-")
        rows.append((spec.name, spec.role, n, f"{spec.package}=={spec.version}", spec.licence,
                     "yes" if cached else "no"))
    header = ("source", "role", "rows", "package", "licence", "cached")
    if args.json:
        print(json.dumps([dict(zip(header, r)) for r in rows], indent=2))
        return 0
    widths = [max(len(h), *(len(r[i][:48]) for r in rows)) for i, h in enumerate(header)]
    for r in (header, *rows):
        print("  ".join(c[:48].ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


@_guarded
def cmd_show(args: argparse.Namespace) -> int:
    """Print the first N records of a source as JSON lines."""
    from haloguard.data.loaders import load_source
    from haloguard.data.records import dumps

    records = load_source(args.name, _cache(args))
    for r in records[: args.n]:
        print(dumps(r))
    print(f"# {len(records)} records in {args.name}", file=sys.stderr)
    return 0


@_guarded
def cmd_export(args: argparse.Namespace) -> int:
    """Write every record of a source to a JSONL file."""
    from haloguard.data.loaders import load_source
    from haloguard.data.records import write_jsonl

    n = write_jsonl(args.out, load_source(args.name, _cache(args)))
    print(f"wrote {n} records to {args.out}")
    return 0


@_guarded
def cmd_build(args: argparse.Namespace) -> int:
    """Build the training corpus (fails on train/eval leakage)."""
    from haloguard.data.corpus import build

    if args.jailbreak_benign_twins < 0:
        return _err("--jailbreak-benign-twins must be 0 or more, "
                    f"got {args.jailbreak_benign_twins}")
    res = build(args.out, cache_dir=_cache(args), seed=args.seed, corpus_dir=args.corpus_dir,
                jailbreak_benign_twins=args.jailbreak_benign_twins,
                constitution=_constitution(args), extra_corpus_dirs=tuple(args.add_corpus))
    cov = json.loads((res.out_dir / "coverage.json").read_text("utf-8"))
    print(f"train {res.n_train}  val {res.n_val}  dropped for leakage {res.dropped_for_leakage}")
    print(res.leakage.summary())
    print(f"thin subcategories: {cov['thin_subcategories']} of {len(cov['subcategories'])}")
    cons = res.manifest.get("constitution")
    if cons:
        print(f"constitution {cons['name']} {cons['version']} ({cons['subcategories']} "
              f"subcategories, digest {cons['digest'][:12]})")
    print(f"wrote {res.out_dir}/train.jsonl, val.jsonl, coverage.md, coverage.json, manifest.json")
    return 0


@_guarded
def cmd_leakage(args: argparse.Namespace) -> int:
    """Check training sources (+ authored corpus, augmentations) against evaluation sets."""
    from haloguard.data.corpus import assemble, gather_inputs
    from haloguard.data.dedup import check_leakage

    if args.jailbreak_benign_twins < 0:
        return _err("--jailbreak-benign-twins must be 0 or more, "
                    f"got {args.jailbreak_benign_twins}")
    inputs = gather_inputs(_cache(args), args.corpus_dir, _constitution(args),
                           tuple(args.add_corpus))
    rows, _ = assemble(inputs, args.seed, args.jailbreak_benign_twins)
    report = check_leakage(rows, [r for rs in inputs.eval.values() for r in rs])
    print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) if args.json
          else report.summary())
    print("(the build drops these rows; it fails only if overlap remains afterwards)",
          file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``data`` and its subcommands."""
    p = subparsers.add_parser("data", help="fetch data sources and build the training corpus",
                              description="Fetch pinned data sources, inspect them, build the training corpus.",
                              epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda _a: (p.print_help(), 2)[1])

    def add(name: str, fn: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=fn.__doc__)
        sp.add_argument("--cache-dir", default=None,
                        help="cache folder (default: $HALOGUARD_CACHE_DIR or ~/.cache/haloguard)")
        sp.set_defaults(func=fn)
        return sp

    sp = add("fetch", cmd_fetch, "download and verify pinned sources")
    sp.add_argument("names", nargs="*", metavar="NAME", help="sources (default: all)")
    sp.add_argument("--quiet", action="store_true", help="no progress bar")
    sp = add("list", cmd_list, "list sources with role, rows, licence, cached")
    sp.add_argument("--no-count", action="store_true", help="do not load sources to count rows")
    sp.add_argument("--json", action="store_true", help="JSON output")
    sp = add("show", cmd_show, "print a few records of a source")
    sp.add_argument("name")
    sp.add_argument("--n", type=int, default=5, help="how many records (default 5)")
    sp = add("export", cmd_export, "export a source to JSONL")
    sp.add_argument("name")
    sp.add_argument("--out", required=True, help="output .jsonl file")
    for name, fn, help_ in (("build", cmd_build, "build the training corpus"),
                            ("leakage", cmd_leakage, "check train/eval overlap")):
        sp = add(name, fn, help_)
        sp.add_argument("--seed", type=int, default=0, help="augmentation/split seed (default 0)")
        sp.add_argument("--corpus-dir", default=None,
                        help="hand-authored corpus folder (default: the packaged one)")
        sp.add_argument("--add-corpus", action="append", default=[], metavar="DIR",
                        help="another authored folder read after --corpus-dir (repeatable): "
                             "your own policy's rows on top of the packaged corpus")
        sp.add_argument("--constitution", default=None, metavar="FILE",
                        help="the policy the authored rows are checked against and the "
                             "coverage report is drawn over (default: the packaged one)")
        sp.add_argument("--jailbreak-benign-twins", type=int, default=0, metavar="N",
                        help="also fill each jailbreak template with N benign requests "
                             "(safe, overlay jailbreak) beside its harmful one (default 0)")
        if name == "build":
            sp.add_argument("--out", default="build/corpus", help="output folder")
        else:
            sp.add_argument("--json", action="store_true", help="JSON output")

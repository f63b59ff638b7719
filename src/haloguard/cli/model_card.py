"""``haloguard model-card``: write MODEL_CARD.md of the embedded guard from an eval run."""

from __future__ import annotations

import argparse
from pathlib import Path

from haloguard.cli.common import fail

EPILOG = """examples:
  haloguard eval --suite offline --guard embedded --guard peer:securevector --out runs/eval
  python benchmarks/bench_classify.py --json bench.json
  haloguard model-card --eval runs/eval --bench bench.json --out MODEL_CARD.md

Every figure comes from the artifact's embedded.json (files verified by sha256), the run's
results.json and the optional benchmark JSON; the same inputs give the same card.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("model-card", help="generate MODEL_CARD.md from an evaluation run",
                       description="Write the embedded guard's model card from its artifact "
                                   "metadata and the results.json of `haloguard eval`.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--eval", required=True, metavar="DIR", help="an `haloguard eval --out` folder")
    p.add_argument("--model", default=None, metavar="MODEL_DIR",
                   help="embedded artifact directory (default: the packaged one)")
    p.add_argument("--guard", default=None, metavar="NAME",
                   help="the run's guard that is this artifact "
                        "(default: the one whose model matches)")
    p.add_argument("--bench", default=None, metavar="FILE",
                   help="JSON from benchmarks/bench_classify.py --json (optional speed section)")
    p.add_argument("--reviews", action="append", default=[], metavar="FILE",
                   help="reviewed benchmark labels (haloguard eval adjudicate; repeatable): "
                        "adds raw vs de-noised figures")
    p.add_argument("--out", required=True, help="output Markdown file (e.g. MODEL_CARD.md)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from haloguard.eval.model_card import ModelCardError, build

    try:
        md = build(args.eval, args.model, args.guard, args.bench, args.reviews)
    except ModelCardError as exc:
        return fail(str(exc))
    out = Path(args.out)
    try:
        out.write_text(md, encoding="utf-8")
    except OSError as exc:
        return fail(f"cannot write {out}: {exc.strerror or exc}")
    print(f"wrote {out} ({len(md.splitlines())} lines)")
    return 0

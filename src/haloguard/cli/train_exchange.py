"""``haloguard train exchange``: the three-class exchange classifier (hooked into cli/train.py).

``haloguard/cli/train.py`` lists this module in ``HOOKS`` and calls
``add_subcommands(kinds)`` with its ``train`` sub-parsers.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_subcommands(train_subparsers: argparse._SubParsersAction) -> None:
    p = train_subparsers.add_parser(
        "exchange", help="exchange classifier: safe compliance / safe refusal / unsafe compliance",
        description="Train the hashed n-gram exchange classifier (numpy head) with prefix "
                    "augmentation; the block threshold is picked on a held-out split.  "
                    "Without --data the built-in proxy exchange set is used.")
    p.add_argument("--data", default=None,
                   help="exchanges JSONL {prompt, response, label 0|1|2 or name}")
    p.add_argument("--n-harmful", type=int, default=400, help="built-in proxy: harmful prompts")
    p.add_argument("--n-benign", type=int, default=400, help="built-in proxy: benign prompts")
    p.add_argument("--out", required=True, help="classifier directory to write")
    p.add_argument("--bits", type=int, default=16, help="hash buckets = 2**bits")
    p.add_argument("--c", type=float, default=4.0, help="inverse L2 strength")
    p.add_argument("--no-prefix-augment", action="store_true")
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--max-benign-block", type=float, default=0.05,
                   help="safe-compliance block rate allowed when picking the threshold")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from haloguard.monitor.exchange import train_exchange
    from haloguard.probe.exchanges import build_exchanges, read_exchanges

    try:
        rows = (read_exchanges(args.data) if args.data
                else build_exchanges(args.n_harmful, args.n_benign, args.seed))
        clf = train_exchange(rows, bits=args.bits, c=args.c,
                             prefix_augmentation=not args.no_prefix_augment,
                             val_fraction=args.val_fraction,
                             max_benign_block=args.max_benign_block, seed=args.seed)
    except (ValueError, OSError) as exc:
        print(f"haloguard train exchange: error: {exc}", file=sys.stderr)
        return 2
    if not args.data:
        clf.meta["data"] = (f"built-in proxy exchanges (n_harmful={args.n_harmful}, "
                            f"n_benign={args.n_benign}, seed={args.seed}): templated refusals "
                            "and placeholder compliant openings; a proxy, not real answers")
    clf.save(args.out)
    print(json.dumps({"out": args.out, "threshold": clf.threshold, **clf.meta}))
    return 0

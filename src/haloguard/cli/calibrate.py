"""``haloguard calibrate``: fit temperature/isotonic scaling and pick a threshold at a target FPR."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from haloguard.cli.common import fail

EPILOG = """examples:
  haloguard calibrate --data sample.jsonl --target-fpr 0.01 --out calib.json
  haloguard calibrate --data sample.jsonl --target-fpr 0.05 --method isotonic --guard embedded --out calib.json
  haloguard calibrate --data sample.jsonl --target-fpr 0.01 --target-escalation 0.10 --out calib.json
  haloguard classify --calibration calib.json "some prompt"          # use it
  haloguard classify --cascade embedded,haloguard-0.8b --calibration calib.json "some prompt"

The sample is a labelled JSONL/CSV like `haloguard eval --data` takes (text or messages,
label safe/unsafe or 0/1). Fit on your own traffic, never on what you report.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="fit calibration and a threshold at a target FPR",
                       description="Fit temperature (or isotonic) scaling of a guard's unsafe "
                                   "probability on a labelled sample, and choose the threshold "
                                   "whose false-positive rate on the sample meets the target.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="labelled sample (JSONL/CSV/parquet)")
    p.add_argument("--target-fpr", type=float, required=True, help="e.g. 0.01 for 1%% over-refusal")
    p.add_argument("--method", choices=("temperature", "isotonic"), default="temperature")
    p.add_argument("--guard", default="embedded", help="guard to calibrate (default: embedded)")
    p.add_argument("--target-escalation", type=float, default=None,
                   help="also choose a cascade band [lo, hi] on the guard's (first-stage) "
                        "probabilities escalating this fraction of the sample")
    p.add_argument("--out", required=True, help="calibration JSON to write")
    p.add_argument("--device", default=None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not 0.0 <= args.target_fpr <= 1.0:
        return fail(f"--target-fpr must be between 0 and 1, got {args.target_fpr}")
    if args.target_escalation is not None and not 0.0 <= args.target_escalation <= 1.0:
        return fail(f"--target-escalation must be between 0 and 1, got {args.target_escalation}")
    import numpy as np

    from haloguard.calibration import (IdentityCalibrator, escalation_band, fit_isotonic,
                                       fit_temperature, threshold_at_fpr)
    from haloguard.eval.public import load_user_file
    from haloguard.eval.runner import open_guard

    try:
        recs = load_user_file(args.data)
    except (OSError, ValueError) as exc:
        return fail(str(exc))
    y = np.array([r.label == "unsafe" for r in recs])
    if y.all() or not y.any():
        return fail(f"{args.data}: the sample needs both safe and unsafe rows to calibrate")
    try:
        gh = open_guard(args.guard, **({"device": args.device} if args.device else {}))
    except Exception as exc:  # noqa: BLE001
        return fail(f"cannot load guard {args.guard!r}: {exc}")
    gh.guard.calibrator = IdentityCalibrator()  # fit on the raw probabilities
    items = [{"messages": [dict(m) for m in r.messages]} if r.messages else {"text": r.text}
             for r in recs]
    verdicts = gh.guard.classify_batch(items, return_errors=True)
    ok = np.array([not isinstance(v, Exception) for v in verdicts])
    if not ok.any():
        return fail("the guard failed on every row")
    raw = np.array([v.p_unsafe if o else np.nan for v, o in zip(verdicts, ok)])
    p, yy = raw[ok], y[ok]
    cal = fit_temperature(p, yy) if args.method == "temperature" else fit_isotonic(p, yy)
    pc = np.array([cal(float(x)) for x in p])
    thr = threshold_at_fpr(pc, yy, args.target_fpr)
    pred = pc >= thr
    fpr = float(pred[~yy].mean())
    tpr = float(pred[yy].mean())
    out = {
        "calibrator": cal.to_dict(), "threshold": float(thr), "method": args.method,
        "target_fpr": args.target_fpr, "guard": args.guard, "model": gh.model_id,
        "n": int(ok.sum()), "n_unsafe": int(yy.sum()), "errors": int((~ok).sum()),
        "sample": {"fpr": fpr, "tpr": tpr},
        "note": "fpr/tpr are measured on the fitting sample; check them on held-out data",
    }
    if args.target_escalation is not None:
        lo, hi = escalation_band(p, args.target_escalation, center=float(gh.threshold))
        rate = float(((p >= lo) & (p <= hi)).mean())
        out["cascade_band"] = [lo, hi]
        out["cascade"] = {"target_escalation": args.target_escalation, "sample_escalation": rate,
                          "on": "raw first-stage p_unsafe", "center": float(gh.threshold)}
    try:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        return fail(f"cannot write {args.out}: {exc.strerror}")
    print(f"{args.method} calibration of {args.guard} on {out['n']} rows "
          f"({out['n_unsafe']} unsafe): threshold {thr:.4f} "
          f"(sample FPR {fpr:.4f} ≤ target {args.target_fpr}, TPR {tpr:.4f})")
    if "cascade_band" in out:
        print(f"cascade band [{out['cascade_band'][0]:.4f}, {out['cascade_band'][1]:.4f}] "
              f"escalates {out['cascade']['sample_escalation']:.1%} of the sample")
    print(f"saved {args.out}; use it with --calibration {args.out}", file=sys.stderr)
    return 0

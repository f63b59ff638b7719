"""Options and helpers shared by subcommands."""

from __future__ import annotations

import argparse
import sys


def add_model_options(p: argparse.ArgumentParser) -> None:
    """``--model``, ``--backend``, ``--threshold``, ``--device``, ``--constitution``, ..."""
    g = p.add_argument_group("model")
    g.add_argument("--model", default=None,
                   help="registry name, local path, hub id or http(s) URL (default: embedded)")
    g.add_argument("--backend", default=None, help="force a backend (e.g. hf-generative)")
    g.add_argument("--template", default=None,
                   help="prompt template of generative guards (haloguard|qwen3guard|seed004|llamaguard)")
    g.add_argument("--threshold", type=float, default=None, help="unsafe threshold in [0, 1]")
    g.add_argument("--calibration", default=None, help="calibration JSON from `haloguard calibrate`")
    g.add_argument("--constitution", default=None, help="constitution YAML (default: built-in)")
    g.add_argument("--device", default=None, help="cpu, cuda, cuda:0, ... (default: auto)")
    g.add_argument("--dtype", default=None, help="float32, bfloat16, float16 (default: auto)")
    g.add_argument("--cascade", default=None, help="two stages, e.g. embedded,haloguard-0.8b")
    g.add_argument("--no-canonicalize", action="store_true", help="score the original text only")
    g.add_argument("--view-policy", choices=("readable", "max"), default="readable",
                   help="which views decide the label: 'readable' judges an unreadable "
                        "(fully obfuscated) prompt by its decoding; 'max' by the riskiest "
                        "view, surface included (default: readable)")
    g.add_argument("--window-length", type=int, default=None, help="sliding-window length (tokens)")
    g.add_argument("--window-stride", type=int, default=None, help="sliding-window stride (tokens)")


def guard_from_args(args: argparse.Namespace):
    """Build the Guard the model options describe (errors are raised, not printed)."""
    if getattr(args, "cascade", None):
        from haloguard.cascade import load_cascade

        return load_cascade(args.cascade, threshold=args.threshold,
                            constitution=args.constitution, device=args.device,
                            calibration=args.calibration)
    from haloguard.loader import load_guard

    kwargs = {}
    for key in ("template", "device", "dtype"):
        if getattr(args, key, None) is not None:
            kwargs[key] = getattr(args, key)
    return load_guard(
        args.model, backend=args.backend, threshold=args.threshold,
        constitution=args.constitution, calibration=args.calibration,
        canonicalize=not args.no_canonicalize, view_policy=getattr(args, "view_policy", "readable"),
        window_length=args.window_length,
        window_stride=args.window_stride, **kwargs,
    )


def fail(msg: str, code: int = 2) -> int:
    """Print a one-line error to stderr and return the exit code."""
    print(f"haloguard: error: {' '.join(str(msg).split())}", file=sys.stderr)
    return code

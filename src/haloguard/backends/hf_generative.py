"""Generative classifiers on transformers (HaloGuard 1.0, Qwen3Guard-Gen, seed-004 LoRA
guards, Llama Guard): next-token probabilities over the label words give ``p_unsafe``; a
short greedy decode reads the category line.  Extra ``hf``.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from haloguard.backends.base import Backend, BackendInfo, Conversation, Score
from haloguard.backends.hf_loading import (
    adapter_base, load_causal_lm, load_tokenizer, locate, resolve_device_dtype, token_offsets,
)
from haloguard.backends.templates import Template, get_template, label_token_ids

DECODE_MODES = ("auto", "always", "never")
log = logging.getLogger("haloguard.hf")


class HFGenerativeBackend(Backend):
    """A decoder used as a generative classifier.

    ``model``: local dir, hub id (honours ``HF_HUB_OFFLINE``), ``.gguf`` file, dir with a
    GGUF, ``pkg:<package>`` shipping weights, or a PEFT adapter dir.  ``decode``: ``auto``
    decodes the category line only when ``p_unsafe >= decode_min_p``.
    """

    uses_context = True
    max_batch_size = 8

    def __init__(self, model: str, template: str | Template = "haloguard", constitution: Any = None,
                 device: str | None = None, dtype: str | None = None, gguf_file: str | None = None,
                 base_model: str | None = None, max_input_tokens: int | None = None,
                 decode: str = "auto", decode_min_p: float = 0.2, max_new_tokens: int = 32,
                 threshold: float | None = None, batch_size: int | None = None,
                 window_length: int | None = None, window_stride: int | None = None,
                 prefix_cache: bool = True, **_: Any) -> None:
        import torch

        if decode not in DECODE_MODES:
            raise ValueError(f"decode must be one of {', '.join(DECODE_MODES)}, got {decode!r}")
        self.torch = torch
        self.device, self.dtype = resolve_device_dtype(device, dtype)
        self.template = get_template(template, constitution)
        self.decode, self.decode_min_p, self.max_new_tokens = decode, decode_min_p, max_new_tokens
        self.model_name = model
        base = adapter_base(model) if Path(model).is_dir() else None
        if base and base.get("template") and template == "haloguard":
            template = base["template"]
            self.template = get_template(template, constitution)
        if base is not None:
            from peft import PeftModel

            bpath, bgguf = locate(base_model or base["base_model"], base.get("gguf_file"))
            tok_src = model if (Path(model) / "tokenizer_config.json").exists() else bpath
            self.tokenizer = load_tokenizer(tok_src, None if tok_src == model else bgguf)
            lm = load_causal_lm(bpath, bgguf, self.dtype, self.device)
            self.model = PeftModel.from_pretrained(lm, model).to(self.device).eval()
        else:
            path, gguf = locate(model, gguf_file)
            self.tokenizer = load_tokenizer(path, gguf)
            self.model = load_causal_lm(path, gguf, self.dtype, self.device)
        self.tokenizer.truncation_side = "left"  # keep the cue at the end
        cfg = self.model.config
        limit = getattr(cfg, "max_position_embeddings", None) or getattr(
            getattr(cfg, "text_config", None), "max_position_embeddings", 4096)
        self.max_input_tokens = int(max_input_tokens or min(int(limit), 8192))
        self.window_length = int(window_length or min(1200, max(32, self.max_input_tokens // 2)))
        self.window_stride = int(window_stride or max(1, min(256, self.window_length // 4)))
        if batch_size:
            self.max_batch_size = int(batch_size)
        if threshold is not None:
            self.default_threshold = float(threshold)
        self._safe = self._label_ids(self.template.safe_words)
        self._unsafe = self._label_ids(self.template.unsafe_words)
        self._contro = self._label_ids(self.template.controversial_words)
        shared = (self._safe & self._unsafe) | (self._safe & self._contro) | (self._unsafe & self._contro)
        self._safe, self._unsafe, self._contro = (self._safe - shared, self._unsafe - shared,
                                                  self._contro - shared)
        self._prefix_ids: list[int] = []
        self._prefix_kv: Any = None
        self._kv_lock = threading.RLock()  # guards the kept prefix cache
        self._packing: bool | None = None  # decided on first use (see _suffix_probs)
        if prefix_cache:
            self._prefix_ids = self._template_prefix()
        if not self._safe or not self._unsafe:
            raise ValueError(f"template {self.template.name!r}: the tokenizer gives no distinct "
                             "first tokens for its safe/unsafe label words")

    # -- identity -----------------------------------------------------------------------
    @property
    def info(self) -> BackendInfo:
        return BackendInfo(
            name="hf-generative", model_id=str(self.model_name),
            revision=str(getattr(self.model.config, "_commit_hash", "") or ""),
            device=self.device, dtype=str(self.dtype).replace("torch.", ""),
            max_input_tokens=self.max_input_tokens, extra={"template": self.template.name},
        )

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return token_offsets(self.tokenizer, text) or super().token_spans(text)

    # -- prompts ------------------------------------------------------------------------
    def _label_ids(self, words: tuple[str, ...]) -> set[int]:
        return label_token_ids(self.tokenizer, words)

    def render(self, unit: Conversation) -> str:
        """The exact text the model reads for ``unit`` (chat template + cue)."""
        msgs = self.template.messages(unit)
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(
                msgs, tokenize=False, add_generation_prompt=True, **self.template.chat_kwargs)
        else:
            text = "".join(f"{m['role']}: {m['content']}\n" for m in msgs) + "assistant: "
        return text + self.template.cue

    def _encode(self, prompts: list[str]):
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, truncation=True,
                             max_length=self.max_input_tokens, add_special_tokens=False)
        mask = enc["attention_mask"]
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        return enc["input_ids"].to(self.device), mask.to(self.device), pos.to(self.device)

    # -- shared-prefix KV cache ----------------------------------------------------------
    def _template_prefix(self) -> list[int]:
        """Token ids every prompt of this template starts with (system prompt, chat
        header): the common prefix of two renders that differ only in the user text."""
        import os

        a, b = (self.tokenizer.encode(self.render(({"role": "user", "content": t},)),
                                      add_special_tokens=False) for t in ("alpha", "omega"))
        common = list(os.path.commonprefix([a, b]))
        return common if len(common) >= 16 else []

    def _prefix_kv_cache(self) -> Any:
        """The prefix's KV cache, computed once and kept across calls."""
        with self._kv_lock:
            if self._prefix_kv is None:
                torch = self.torch
                ids = torch.tensor([self._prefix_ids], device=self.device)
                with torch.inference_mode():
                    self._prefix_kv = self.model(input_ids=ids, use_cache=True).past_key_values
            return self._prefix_kv

    def _prefix_cache(self, batch: int) -> Any:
        """A copy of the prefix's KV cache repeated ``batch`` times (the padded path)."""
        import copy

        with self._kv_lock:  # never copy it while a packed forward has suffixes appended
            cache = copy.deepcopy(self._prefix_kv_cache())
        if batch > 1:
            cache.batch_repeat_interleave(batch)
        return cache

    def _padded_probs(self, suffixes: list[list[int]]) -> list[Any]:
        """Suffixes as a left-padded batch over ``len(suffixes)`` copies of the prefix KV."""
        torch = self.torch
        n_pre = len(self._prefix_ids)
        width = max(map(len, suffixes))
        pad = self.tokenizer.pad_token_id
        # pads sit between the prefix and the text, masked out, so every row's next token
        # is at the last position and the LM head runs on that position only
        ids = torch.tensor([[pad] * (width - len(s)) + s for s in suffixes], device=self.device)
        smask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in suffixes],
                             device=self.device)
        mask = torch.cat([torch.ones(len(suffixes), n_pre, dtype=smask.dtype,
                                     device=self.device), smask], dim=1)
        pos = (smask.cumsum(dim=1) - 1).clamp(min=0) + n_pre
        with torch.inference_mode():
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos,
                             past_key_values=self._prefix_cache(len(suffixes)), use_cache=True,
                             logits_to_keep=1)
            return list(torch.softmax(out.logits[:, -1, :].float(), dim=-1))

    def _packed_probs(self, suffixes: list[list[int]]) -> list[Any]:
        """All suffixes packed into one sequence after the single cached prefix.

        Positions restart at the prefix length for each suffix, and a block-diagonal
        causal mask (every token also sees the whole prefix) keeps the suffixes apart, so
        each row reads exactly what it would alone.  The prefix KV is used in place (the
        forward appends the suffix tokens, which are cropped off again), so nothing is
        copied per batch and nothing is padded.  On SmolLM2-135M (CPU, 2 cores, a
        439-token prefix) 16 short prompts take 0.35 s this way, against 0.57-1.0 s padded
        over 16 copies of the prefix KV (benchmarks/bench_hf.py).
        """
        torch = self.torch
        n_pre = len(self._prefix_ids)
        lengths = torch.tensor([len(s) for s in suffixes])
        total = int(lengths.sum())
        dev, dtype = self.device, self.model.dtype
        ids = torch.tensor([[t for s in suffixes for t in s]], device=dev)
        pos = (torch.cat([torch.arange(len(s)) for s in suffixes]) + n_pre)[None].to(dev)
        seg = torch.repeat_interleave(torch.arange(len(suffixes)), lengths)
        allow = (seg[:, None] == seg[None, :]) & torch.ones(total, total, dtype=torch.bool).tril()
        allow = torch.cat([torch.ones(total, n_pre, dtype=torch.bool), allow], dim=1)
        mask = torch.zeros(1, 1, total, n_pre + total, dtype=dtype)
        mask.masked_fill_(~allow, torch.finfo(dtype).min)
        last = (lengths.cumsum(0) - 1).to(dev)
        with self._kv_lock, torch.inference_mode():
            cache = self._prefix_kv_cache()
            try:
                out = self.model(input_ids=ids, attention_mask=mask.to(dev), position_ids=pos,
                                 past_key_values=cache, use_cache=True, logits_to_keep=last)
                cache.crop(-total)
                if cache.get_seq_length() != n_pre:
                    raise RuntimeError("the prefix cache did not crop back to the prefix")
            except BaseException:
                self._prefix_kv = None  # partly appended: rebuild it on the next call
                raise
            return list(torch.softmax(out.logits[0].float(), dim=-1))

    #: most suffix tokens packed into one forward (the mask is tokens x (prefix + tokens))
    PACK_MAX_TOKENS = 2048

    def _suffix_probs(self, suffixes: list[list[int]]) -> list[Any]:
        """Next-token distributions after prefix + each suffix: packed where the model's
        attention takes a custom 4-D mask and a first-use check agrees with the padded
        path, padded otherwise."""
        if self._packing is None:
            impl = getattr(self.model.config, "_attn_implementation", None) or "eager"
            ok = impl in ("sdpa", "eager")
            if ok:
                probe = suffixes[:4]
                try:
                    a = self.torch.stack(self._packed_probs(probe))
                    b = self.torch.stack(self._padded_probs(probe))
                    tol = 1e-3 if self.model.dtype == self.torch.float32 else 3e-2
                    ok = bool((a - b).abs().max() <= tol)
                except Exception as exc:  # a model whose forward rejects the packed inputs
                    log.warning("packed prefix scoring unavailable (%s: %s); padding batches",
                                type(exc).__name__, exc)
                    ok = False
                else:
                    if not ok:
                        log.warning("packed prefix scoring disagrees with padded scoring on "
                                    "this model (max diff %.2g); padding batches",
                                    float((a - b).abs().max()))
            self._packing = ok  # decided once the check is done
        if not self._packing:
            return self._padded_probs(suffixes)
        out: list[Any] = []
        group: list[list[int]] = []
        for s in suffixes:
            if group and sum(map(len, group)) + len(s) > self.PACK_MAX_TOKENS:
                out += self._packed_probs(group)
                group = []
            group.append(s)
        return out + self._packed_probs(group)

    def _next_token_probs(self, prompts: list[str], ids_list: list[list[int]]):
        """Next-token distributions after each prompt; rows starting with the template
        prefix reuse its cached KV and only run their own suffix."""
        torch = self.torch
        n_pre = len(self._prefix_ids)
        use = [bool(n_pre) and len(r) > n_pre and r[:n_pre] == self._prefix_ids
               and len(r) <= self.max_input_tokens for r in ids_list]
        probs = [None] * len(prompts)
        with torch.inference_mode():
            cached = [i for i, u in enumerate(use) if u]
            if cached:
                rows = self._suffix_probs([ids_list[i][n_pre:] for i in cached])
                for i, row in zip(cached, rows):
                    probs[i] = row
            rest = [i for i, u in enumerate(use) if not u]
            if rest:
                ids, mask, pos = self._encode([prompts[i] for i in rest])
                logits = self.model(input_ids=ids, attention_mask=mask, position_ids=pos,
                                    logits_to_keep=1).logits[:, -1, :]
                for i, row in zip(rest, torch.softmax(logits.float(), dim=-1)):
                    probs[i] = row
        return probs

    # -- scoring ------------------------------------------------------------------------
    def _score_batch(self, units: list[Conversation]) -> list[Score]:
        prompts = [self.render(u) for u in units]
        ids_list = [self.tokenizer.encode(p, add_special_tokens=False) for p in prompts]
        lengths = [len(r) for r in ids_list]
        probs = self._next_token_probs(prompts, ids_list)
        p_unsafe = []
        for row in probs:
            s = float(row[list(self._safe)].sum())
            u = float(row[list(self._unsafe)].sum())
            c = float(row[list(self._contro)].sum()) if self._contro else 0.0
            if self.template.strict:
                u += c
            else:
                s += c
            p_unsafe.append(u / (u + s) if u + s > 0 else 0.5)
        todo = [i for i, p in enumerate(p_unsafe)
                if self.decode == "always" or (self.decode == "auto" and p >= self.decode_min_p)]
        texts = {i: t for i, t in zip(todo, self._generate([prompts[i] for i in todo]))} if todo else {}
        out = []
        for i, p in enumerate(p_unsafe):
            flags: tuple[str, ...] = ("truncated",) if lengths[i] > self.max_input_tokens else ()
            if i not in texts:
                label = "unsafe" if p >= 0.5 else "safe"
                out.append(Score(p, raw_response=f"{self.template.cue}{label}".strip(), flags=flags))
                continue
            text = self.template.cue + texts[i]
            parsed = self.template.parse(text)
            if "parse_error" in parsed.flags:  # fail closed
                out.append(Score(1.0, raw_response=text.strip(), tier="Unsafe",
                                 flags=flags + parsed.flags))
                continue
            cats = {k: p for k in parsed.category_probs}
            overlay = {"jailbreak": p} if "jailbreak" in parsed.flags else {}
            out.append(Score(p, category_probs=cats, overlay_probs=overlay,
                             raw_response=text.strip(), tier=parsed.tier if p >= 0.5 else None,
                             flags=flags + tuple(f for f in parsed.flags if f != "jailbreak")))
        return out

    def _generate(self, prompts: list[str]) -> list[str]:
        torch = self.torch
        ids, mask, _ = self._encode(prompts)
        with torch.inference_mode():
            gen = self.model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                                      max_new_tokens=self.max_new_tokens,
                                      pad_token_id=self.tokenizer.pad_token_id)
        return self.tokenizer.batch_decode(gen[:, ids.shape[1]:], skip_special_tokens=True)

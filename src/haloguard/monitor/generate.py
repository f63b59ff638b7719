"""Guarded generation (seed 003): a manual KV-cached decode loop that probes every step.

Each step the decoder's forward pass (one token, KV cache) is asked for its hidden states;
the probe reads the chosen layer at the last position — the state from which the next
token is sampled — and gives ``risk[i]`` for generated token ``i``.  The risk is smoothed
(mean of the last ``window`` risks) and compared with thresholds
``pause <= escalate <= refuse``:

* ``continue`` (smoothed < pause): the token, and anything buffered, is released.
* ``pause`` (pause <= smoothed < escalate): the token is **held** in a buffer.  When a pause
  starts, and then every ``recheck_every`` held tokens, the partial exchange (prompt +
  released + held text) goes to the exchange classifier: ``unsafe_compliance`` probability
  >= the block threshold -> refuse; otherwise the buffer is released.  Without a
  classifier the buffer is held until the risk falls below ``pause`` (released then), or
  until ``max_buffer`` tokens (then escalate).
* ``escalate`` (escalate <= smoothed < refuse): held, and the classifier is consulted on
  every step; without a classifier, escalation refuses.
* ``refuse`` (smoothed >= refuse): generation stops; the response becomes
  ``refusal_message``.

After the last token a **final check** sends the whole response to the classifier (when one
is given and ``final_check``); tokens still held at the end are released only if it passes
(without a classifier, held tokens at the end mean a refusal: fail closed).

Released text reaches ``on_text`` as it is released (streaming).  Text already released
before a refusal has been streamed; ``GuardedResult.text`` is the refusal message then and
``released_text`` what was streamed.

The first ``warmup`` steps never pause (the state right after the generation prompt mostly
reflects the request; raise ``warmup`` to let the answer's stance show first).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEFAULT_REFUSAL = "I can't help with that request. I can help with safe, lawful alternatives instead."
DECISIONS = ("continue", "pause", "escalate", "refuse")


@dataclass(frozen=True)
class GuardConfig:
    pause_threshold: float = 0.5
    escalate_threshold: float = 0.8
    refuse_threshold: float = 0.97
    window: int = 4
    warmup: int = 0
    recheck_every: int = 8
    max_buffer: int = 32
    classifier_block_threshold: float | None = None  # None: the classifier's own
    final_check: bool = True
    refusal_message: str = DEFAULT_REFUSAL

    def __post_init__(self) -> None:
        if not 0 <= self.pause_threshold <= self.escalate_threshold <= self.refuse_threshold:
            raise ValueError("thresholds must satisfy 0 <= pause <= escalate <= refuse")
        if self.window < 1 or self.recheck_every < 1 or self.max_buffer < 1:
            raise ValueError("window, recheck_every and max_buffer must be >= 1")

    def decide(self, smoothed: float) -> str:
        if smoothed >= self.refuse_threshold:
            return "refuse"
        if smoothed >= self.escalate_threshold:
            return "escalate"
        if smoothed >= self.pause_threshold:
            return "pause"
        return "continue"


@dataclass
class ClassifierCall:
    step: int
    reason: str          # pause | recheck | escalate | final
    label: str
    p_unsafe: float
    blocked: bool
    latency_ms: float


@dataclass
class GuardedResult:
    prompt: str
    text: str                        # the response (the refusal message when refused)
    released_text: str               # what was streamed to the caller
    tokens: list[int]                # generated token ids (all, released or not)
    risks: list[float]
    smoothed: list[float]
    decisions: list[str]             # per generated token
    refused: bool
    refusal_reason: str | None       # probe | classifier | final_check | unresolved_pause
    classifier_calls: list[ClassifierCall] = field(default_factory=list)
    ttft_s: float = 0.0              # start -> first token sampled
    first_release_s: float | None = None
    total_s: float = 0.0
    decode_s: float = 0.0            # after the first token
    tokens_per_s: float = 0.0        # decode tokens / decode time
    finish_reason: str = "length"    # stop | length | refused

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["classifier_calls"] = [c.__dict__ for c in self.classifier_calls]
        return d


class _Stream:
    """Incremental detokenisation of released tokens (emits only complete text)."""

    def __init__(self, tok: Any, on_text: Callable[[str], None] | None) -> None:
        self.tok, self.on_text = tok, on_text
        self.ids: list[int] = []
        self.text = ""
        self.first_at: float | None = None

    def release(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        self.ids.extend(ids)
        text = self.tok.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):  # an incomplete multi-byte character: wait
            return
        new, self.text = text[len(self.text):], text
        if new:
            if self.first_at is None:
                self.first_at = time.perf_counter()
            if self.on_text is not None:
                self.on_text(new)


def _probe_fn(probe: Any, device: str) -> Callable[[Any], float]:
    """A fast scorer for a torch hidden-state vector: folded (w, b) or ``probe.score``."""
    import torch

    if hasattr(probe, "folded"):
        w, b = probe.folded()
        wt = torch.from_numpy(np.asarray(w, np.float32)).to(device)

        def score(h: Any) -> float:
            z = float(h.float() @ wt) + b
            return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))

        return score
    return lambda h: float(probe.score(h))


def _sample(logits: Any, temperature: float, top_p: float, gen: Any) -> int:
    import torch

    if temperature <= 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits.float() / temperature, -1)
    if top_p < 1.0:
        sp, si = torch.sort(probs, descending=True)
        keep = sp.cumsum(-1) - sp < top_p
        sp = sp * keep
        return int(si[torch.multinomial(sp / sp.sum(), 1, generator=gen)])
    return int(torch.multinomial(probs, 1, generator=gen))


def _eos_ids(tok: Any, model: Any) -> set[int]:
    ids = set()
    for v in (getattr(tok, "eos_token_id", None),
              getattr(getattr(model, "generation_config", None), "eos_token_id", None)):
        if isinstance(v, int):
            ids.add(v)
        elif isinstance(v, (list, tuple)):
            ids.update(int(x) for x in v)
    for t in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>"):
        i = tok.convert_tokens_to_ids(t) if hasattr(tok, "convert_tokens_to_ids") else None
        if isinstance(i, int) and i != getattr(tok, "unk_token_id", None) and i >= 0:
            ids.add(i)
    return ids


def guarded_generate(model: Any, tokenizer: Any, prompt: str | Sequence[dict[str, str]],
                     probe: Any = None, classifier: Any = None,
                     config: GuardConfig | None = None, *, max_new_tokens: int = 64,
                     temperature: float = 0.0, top_p: float = 1.0, seed: int = 0,
                     chat_template: bool = True, on_text: Callable[[str], None] | None = None,
                     layer: int | None = None, ignore_eos: bool = False) -> GuardedResult:
    """Generate with the probe and classifier guarding every step (``probe=None``: plain
    generation through the same loop, the baseline of the overhead benchmark).
    ``ignore_eos`` generates exactly ``max_new_tokens`` (benchmarks)."""
    import torch

    from haloguard.probe.collect import prompt_ids, resolve_layer

    cfg = config or GuardConfig()
    device = str(next(model.parameters()).device)
    n_states = int(model.config.num_hidden_layers) + 1 if hasattr(model.config, "num_hidden_layers") \
        else None
    layer_idx = None
    if probe is not None:
        lay = getattr(probe, "layer", -1) if layer is None else layer
        layer_idx = resolve_layer(int(lay), n_states) if n_states else int(lay)
    score = _probe_fn(probe, device) if probe is not None else None
    prompt_text = prompt if isinstance(prompt, str) else \
        next((m["content"] for m in reversed(prompt) if m["role"] == "user"), "")
    ids = prompt_ids(tokenizer, prompt, chat_template)
    eos = _eos_ids(tokenizer, model)
    gen = torch.Generator().manual_seed(seed) if temperature > 0 else None
    block_thr = cfg.classifier_block_threshold

    stream = _Stream(tokenizer, on_text)
    tokens: list[int] = []
    risks: list[float] = []
    smoothed: list[float] = []
    decisions: list[str] = []
    calls: list[ClassifierCall] = []
    held: list[int] = []
    held_since_check = 0
    paused = False
    refused, reason, finish = False, None, "length"

    def check(step: int, why: str, response_ids: list[int]) -> bool:
        """Ask the classifier; True = blocked."""
        text = tokenizer.decode(response_ids, skip_special_tokens=True)
        r = classifier.classify(prompt_text, text, block_thr)
        calls.append(ClassifierCall(step, why, r.label, r.p_unsafe, r.unsafe, r.latency_ms))
        return bool(r.unsafe)

    t0 = time.perf_counter()
    with torch.no_grad():
        inp = torch.tensor([ids], device=device)
        out = model(input_ids=inp, use_cache=True, output_hidden_states=score is not None)
        t_first = None
        for step in range(max_new_tokens):
            logits = out.logits[0, -1]
            nxt = _sample(logits, temperature, top_p, gen)
            if t_first is None:
                t_first = time.perf_counter()
            if nxt in eos and not ignore_eos:
                finish = "stop"
                break
            tokens.append(nxt)
            if score is None:
                decision = "continue"
            else:
                risk = score(out.hidden_states[layer_idx][0, -1])
                risks.append(risk)
                s = float(np.mean(risks[-cfg.window:]))
                smoothed.append(s)
                decision = cfg.decide(s) if step >= cfg.warmup else "continue"
            # -- act on the decision for token `nxt` -------------------------------------
            if decision == "refuse":
                refused, reason = True, "probe"
            elif decision == "continue":
                stream.release(held + [nxt])
                held, held_since_check, paused = [], 0, False
            else:
                onset, paused = not paused, True
                held.append(nxt)
                held_since_check += 1
                if classifier is not None:
                    why = ("escalate" if decision == "escalate" else "pause" if onset else
                           "recheck" if held_since_check >= cfg.recheck_every else None)
                    if why is not None:
                        held_since_check = 0
                        if check(step, why, tokens):
                            refused, reason = True, "classifier"
                        else:
                            stream.release(held)
                            held = []
                elif decision == "escalate":
                    refused, reason = True, "probe"
                elif len(held) >= cfg.max_buffer:
                    decision = "escalate"
                    refused, reason = True, "unresolved_pause"
            decisions.append("refuse" if refused else decision)
            if refused:
                finish = "refused"
                break
            out = model(input_ids=torch.tensor([[nxt]], device=device),
                        past_key_values=out.past_key_values, use_cache=True,
                        output_hidden_states=score is not None)
    t_end = time.perf_counter()
    if not refused and (score is not None or classifier is not None) and tokens:
        if classifier is not None and (cfg.final_check or held):
            if check(len(tokens), "final", tokens):
                refused, reason, finish = True, "final_check", "refused"
        elif held:
            refused, reason, finish = True, "unresolved_pause", "refused"
    if not refused:
        stream.release(held)
        held = []
    total = time.perf_counter() - t0
    t_first = t_first or t_end
    n_decode = max(len(tokens) - 1, 0)
    decode_s = max(t_end - t_first, 1e-9)
    return GuardedResult(
        prompt=prompt_text,
        text=cfg.refusal_message if refused else tokenizer.decode(tokens, skip_special_tokens=True),
        released_text=stream.text, tokens=tokens, risks=risks, smoothed=smoothed,
        decisions=decisions, refused=refused, refusal_reason=reason, classifier_calls=calls,
        ttft_s=t_first - t0,
        first_release_s=(stream.first_at - t0) if stream.first_at else None,
        total_s=total, decode_s=decode_s if n_decode else 0.0,
        tokens_per_s=(n_decode / decode_s) if n_decode else 0.0, finish_reason=finish)


def plain_generate(model: Any, tokenizer: Any, prompt: str, **kw: Any) -> GuardedResult:
    """The same decode loop with no probe and no classifier (the overhead baseline)."""
    return guarded_generate(model, tokenizer, prompt, probe=None, classifier=None, **kw)

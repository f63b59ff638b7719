"""Remote guards over HTTP: another HaloGuard server, an OpenAI-compatible chat endpoint
serving a generative guard (vLLM, SGLang), or an OpenAI-style moderation endpoint.

Timeouts, retries with exponential backoff on connection errors / 429 / 5xx, and a clear
:class:`BackendError` when the endpoint stays down.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from haloguard.backends.base import (
    Backend, BackendError, BackendInfo, Conversation, Score, last_user_text,
)

MODES = ("haloguard", "openai-chat", "moderation")
_SUFFIX = {"/v1/classify": "haloguard", "/v1/chat/completions": "openai-chat",
           "/v1/moderations": "moderation"}


class RemoteBackend(Backend):
    """Scores units by calling a remote guard; one request per unit, run concurrently."""

    max_batch_size = 64
    uses_context = True
    window_length = 1_000_000  # the remote guard windows long inputs itself
    window_stride = 1_000_000

    def __init__(self, url: str, mode: str | None = None, api_key: str | None = None,
                 remote_model: str = "halo-guard", timeout: float = 30.0, retries: int = 3,
                 backoff: float = 0.5, concurrency: int = 8, template: str | None = None,
                 constitution: Any = None, transport: Any = None, **_: Any) -> None:
        import httpx

        url = url.rstrip("/")
        for suffix, m in _SUFFIX.items():
            if url.endswith(suffix):
                url, mode = url[: -len(suffix)], mode or m
        self.mode = mode or "haloguard"
        if self.mode not in MODES:
            raise ValueError(f"unknown remote mode {self.mode!r} (expected one of {', '.join(MODES)})")
        self.url, self.remote_model = url, remote_model
        self.retries, self.backoff, self.concurrency = retries, backoff, max(1, concurrency)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout, headers=headers, transport=transport)
        self._template = None
        if self.mode == "openai-chat":
            from haloguard.backends.templates import get_template

            self._template = get_template(template or "haloguard", constitution)
        if self.mode == "moderation":
            from haloguard.constitution import load_constitution

            self._constitution = constitution or load_constitution()

    @property
    def info(self) -> BackendInfo:
        return BackendInfo(name="remote", model_id=f"{self.mode}:{self.url}", device="remote",
                           max_input_tokens=self.window_length)

    def close(self) -> None:
        self._client.close()

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        import httpx

        last = ""
        for attempt in range(self.retries + 1):
            try:
                r = self._client.post(self.url + path, json=payload)
                if r.status_code == 429 or r.status_code >= 500:
                    last = f"HTTP {r.status_code}"
                elif r.status_code >= 400:
                    raise BackendError(f"remote guard {self.url}{path} refused the request: "
                                       f"HTTP {r.status_code} {r.text[:200]}")
                else:
                    return r.json()
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            except ValueError as exc:
                raise BackendError(f"remote guard {self.url}{path} sent invalid JSON: {exc}") from None
            if attempt < self.retries:
                time.sleep(self.backoff * (2**attempt))
        raise BackendError(f"remote guard at {self.url}{path} is unreachable after "
                           f"{self.retries + 1} attempts ({last})")

    def _score_one(self, unit: Conversation) -> Score:
        if self.mode == "haloguard":
            d = self._post("/v1/classify", {"messages": [dict(m) for m in unit]})
            probs = d.get("tier_probs") or {}
            ov = d.get("attack_overlay", "none")
            return Score(
                p_unsafe=float(probs.get("unsafe", 1.0 if d.get("safety_label") == "Unsafe" else 0.0)),
                category_probs={k: float(v) for k, v in (d.get("category_scores") or {}).items()},
                overlay_probs={ov: 1.0} if ov in ("jailbreak", "prompt_injection") else {},
                raw_response=d.get("raw_response", ""),
            )
        if self.mode == "moderation":
            d = self._post("/v1/moderations", {"input": last_user_text(unit)})
            res = (d.get("results") or [{}])[0]
            scores = {k: float(v) for k, v in (res.get("category_scores") or {}).items()}
            cats: dict[str, float] = {}
            for label, v in scores.items():
                cid = self._constitution.map_from("openai_moderation", label)
                if cid:
                    cats[cid] = max(cats.get(cid, 0.0), v)
            p = max(scores.values(), default=1.0 if res.get("flagged") else 0.0)
            return Score(p_unsafe=p, category_probs=cats)
        assert self._template is not None
        messages = self._template.messages(unit)
        d = self._post("/v1/chat/completions", {
            "model": self.remote_model, "messages": messages, "temperature": 0.0,
            "max_tokens": 32, "logprobs": False,
        })
        text = ((d.get("choices") or [{}])[0].get("message") or {}).get("content") or ""
        parsed = self._template.parse(text)
        return Score(p_unsafe=parsed.p_unsafe, category_probs=parsed.category_probs,
                     raw_response=text, tier=parsed.tier, flags=parsed.flags)

    def _score_batch(self, units: list[Conversation]) -> list[Score]:
        if len(units) == 1:
            return [self._score_one(units[0])]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(units))) as pool:
            return list(pool.map(self._score_one, units))

"""Remote backend (HaloGuard, OpenAI-chat, moderation modes; retries; down endpoint) and
the two-stage cascade."""

from __future__ import annotations

import json

import pytest

httpx = pytest.importorskip("httpx")

from haloguard import load_guard  # noqa: E402
from haloguard.backends.base import BackendError  # noqa: E402
from haloguard.cascade import CascadeGuard  # noqa: E402
from haloguard.guard import Guard  # noqa: E402


def _transport(handler, calls):
    def wrapped(request):
        calls.append(request)
        return handler(request)

    return httpx.MockTransport(wrapped)


def test_remote_haloguard_mode():
    calls: list = []

    def handler(req):
        body = json.loads(req.content)
        text = body["messages"][-1]["content"]
        unsafe = "bomb" in text
        return httpx.Response(200, json={
            "safety_label": "Unsafe" if unsafe else "Safe",
            "tier_probs": {"safe": 0.1 if unsafe else 0.9, "unsafe": 0.9 if unsafe else 0.1},
            "category_scores": {"weapons_and_firearms": 0.9 if unsafe else 0.0},
            "attack_overlay": "none", "raw_response": ""})

    g = load_guard("http://guard.test:8000", transport=_transport(handler, calls), canonicalize=False)
    v = g.classify("how to build a bomb")
    assert v.unsafe and v.category == "weapons_and_firearms"
    assert calls[0].url.path == "/v1/classify" and calls[0].headers.get("authorization") is None
    assert not g.classify("bake bread").unsafe


def test_remote_openai_chat_mode_and_auth():
    calls: list = []

    def handler(req):
        return httpx.Response(200, json={"choices": [{"message": {
            "content": "Safety: unsafe\nCategory: fraud_and_social_engineering"}}]})

    g = load_guard("http://vllm.test/v1/chat/completions", api_key="k",
                   transport=_transport(handler, calls), canonicalize=False)
    v = g.classify("write a phishing email")
    assert v.category == "fraud_and_social_engineering" and v.raw_response.startswith("Safety: unsafe")
    body = json.loads(calls[0].content)
    assert body["messages"][0]["role"] == "system" and calls[0].headers["authorization"] == "Bearer k"


def test_remote_moderation_mode():
    def handler(req):
        return httpx.Response(200, json={"results": [{"flagged": True, "category_scores": {
            "violence": 0.8, "hate": 0.1}}]})

    g = load_guard("http://mod.test/v1/moderations", transport=_transport(handler, []),
                   canonicalize=False)
    v = g.classify("something violent")
    assert v.unsafe and v.category == "violence"


def test_remote_retries_then_succeeds():
    calls: list = []
    state = {"n": 0}

    def handler(req):
        state["n"] += 1
        if state["n"] < 3:
            return httpx.Response(503, json={})
        return httpx.Response(200, json={"tier_probs": {"safe": 1, "unsafe": 0}})

    g = load_guard("http://flaky.test", transport=_transport(handler, calls), backoff=0.0,
                   canonicalize=False)
    assert not g.classify("hi").unsafe and len(calls) == 3


def test_remote_down_is_a_clear_error():
    g = load_guard("http://127.0.0.1:9", retries=1, backoff=0.0, timeout=1.0, canonicalize=False)
    with pytest.raises(BackendError, match="unreachable after 2 attempts"):
        g.classify("hi")


def test_remote_4xx_is_not_retried():
    calls: list = []
    g = load_guard("http://bad.test", transport=_transport(lambda r: httpx.Response(401, json={}), calls),
                   canonicalize=False)
    with pytest.raises(BackendError, match="HTTP 401"):
        g.classify("hi")
    assert len(calls) == 1


class _Counting:
    def __init__(self, guard: Guard):
        self.guard, self.seen = guard, []

    def classify_batch(self, items, threshold=None, return_errors=False):
        self.seen.extend(items)
        return self.guard.classify_batch(items, threshold=threshold, return_errors=return_errors)


def test_cascade_escalates_only_the_band(keyword_guard):
    second = _Counting(load_guard("keyword"))
    c = CascadeGuard(keyword_guard, second, band=(0.9, 1.0))  # type: ignore[arg-type]
    out = c.classify_batch(["build a bomb", "bake bread", "", "kill him"], return_errors=True)
    assert [getattr(v, "stage", "err") for v in out] == [
        "second:second", "first:first", "err", "second:second"]
    assert len(second.seen) == 2 and c.escalation_rate == pytest.approx(2 / 3)


def test_cascade_band_validation(keyword_guard):
    from haloguard.errors import InputError

    with pytest.raises(InputError):
        CascadeGuard(keyword_guard, keyword_guard, band=(0.8, 0.2))

"""A real uvicorn server on 127.0.0.1 (free port, background thread): the official
``openai`` client, raw HTTP, and graceful shutdown."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from haloguard import Guard  # noqa: E402
from haloguard.backends.keyword import KeywordBackend  # noqa: E402
from haloguard.server import Settings, create_app  # noqa: E402

KEY = "live-test-key-123456"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(app, **kw) -> Iterator[tuple[str, uvicorn.Server]]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            access_log=False, **kw)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture(scope="module")
def base_url(keyword_guard):
    with live_server(create_app(Settings(api_keys=KEY), guard=keyword_guard)) as (url, _):
        yield url


def test_openai_client_chat_completions(base_url):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=KEY, max_retries=0)
    resp = client.chat.completions.create(
        model="halo-guard", temperature=0, max_tokens=16,
        messages=[{"role": "user", "content": "Write a phishing email that impersonates a bank."}])
    assert resp.id.startswith("chatcmpl-") and resp.object == "chat.completion"
    assert resp.model == "halo-guard"
    assert resp.choices[0].message.content == \
        "Safety: unsafe\nCategory: fraud_and_social_engineering"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.total_tokens > 0
    cls = resp.model_extra["classification"]
    assert cls["safety_label"] == "Unsafe" and cls["category"] == "fraud_and_social_engineering"
    assert cls["tier_probs"]["unsafe"] > 0.5


def test_openai_client_conversation_and_safe(base_url):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=KEY, max_retries=0)
    resp = client.chat.completions.create(model="halo-guard", messages=[
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "How do I bake bread?"},
        {"role": "assistant", "content": "Mix flour and water."},
        {"role": "user", "content": "How long should it rise?"}])
    assert resp.choices[0].message.content == "Safety: safe\nCategory: none"
    assert resp.model_extra["classification"]["status"] == "HARMLESS"


def test_openai_client_errors(base_url):
    openai = pytest.importorskip("openai")
    bad = openai.OpenAI(base_url=f"{base_url}/v1", api_key="wrong-key-000000", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as ei:
        bad.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert "invalid API key" in str(ei.value)
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError) as ei:
        client.chat.completions.create(model="m", stream=True,
                                       messages=[{"role": "user", "content": "hi"}])
    assert ei.value.status_code == 400
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="m", messages=[{"role": "system", "content": "x"}])


def test_raw_http_classify_and_health(base_url):
    h = {"Authorization": f"Bearer {KEY}"}
    assert httpx.get(f"{base_url}/health").json()["ready"] is True
    r = httpx.post(f"{base_url}/v1/classify", json={"query": "how to make sarin"}, headers=h)
    assert r.status_code == 200 and r.json()["category"] == "chemical_weapons"
    r = httpx.post(f"{base_url}/v1/classify", content=b"{", headers={**h, "content-type": "application/json"})
    assert r.status_code == 400
    r = httpx.post(f"{base_url}/v1/classify", content=b"x" * 2_000_000, headers=h)
    assert r.status_code == 413


class SlowBackend(KeywordBackend):
    def _score_batch(self, units):
        time.sleep(0.5)
        return super()._score_batch(units)


def test_graceful_shutdown_finishes_in_flight_requests():
    app = create_app(Settings(), guard=Guard(SlowBackend()))
    results: list[int] = []
    with live_server(app, timeout_graceful_shutdown=10) as (url, server):
        t = threading.Thread(target=lambda: results.append(
            httpx.post(f"{url}/v1/classify", json={"query": "hi"}, timeout=10).status_code))
        t.start()
        time.sleep(0.15)
        server.should_exit = True  # what SIGTERM does
        t.join(10)
    assert results == [200]

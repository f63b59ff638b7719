"""Bad input and limits: a JSON error with a 4xx status naming the problem, never a 500;
backend failures and timeouts give 503 and the server stays up."""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from haloguard import Guard  # noqa: E402
from haloguard.backends.base import BackendError  # noqa: E402
from haloguard.backends.keyword import KeywordBackend  # noqa: E402
from haloguard.server import Settings, create_app  # noqa: E402

JSON = {"content-type": "application/json"}
USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def client():
    from haloguard import load_guard

    s = Settings(max_body_bytes=4096, max_batch_items=4)
    with TestClient(create_app(s, guard=load_guard("keyword"))) as c:
        yield c


# (method, path, raw body or JSON-able, status, code, words the message must contain)
CASES = [
    ("POST", "/v1/classify", "{not json", 400, "invalid_json", "malformed JSON"),
    ("POST", "/v1/classify", b"\xff\xfe", 400, "invalid_json", "malformed JSON"),
    ("POST", "/v1/classify", {"query": 5}, 422, "validation_error", "query"),
    ("POST", "/v1/classify", {"query": ["a"]}, 422, "validation_error", "query"),
    ("POST", "/v1/classify", {"query": ""}, 422, "validation_error", "empty"),
    ("POST", "/v1/classify", {"query": "   \n"}, 422, "validation_error", "empty"),
    ("POST", "/v1/classify", {}, 422, "validation_error", "exactly one"),
    ("POST", "/v1/classify", {"query": "a", "messages": USER}, 422, "validation_error", "exactly one"),
    ("POST", "/v1/classify", {"query": "a", "extra": 1}, 422, "validation_error", "extra"),
    ("POST", "/v1/classify", {"query": "a", "threshold": 1.5}, 422, "validation_error", "threshold"),
    ("POST", "/v1/classify", {"query": "a", "threshold": "x"}, 422, "validation_error", "threshold"),
    ("POST", "/v1/classify", {"messages": []}, 422, "invalid_input", "empty"),
    ("POST", "/v1/classify", {"messages": "hi"}, 422, "validation_error", "messages"),
    ("POST", "/v1/classify", {"messages": [{"role": "system", "content": "x"}]}, 422,
     "invalid_input", "no user turn"),
    ("POST", "/v1/classify", {"messages": [{"role": "robot", "content": "x"}]}, 422,
     "validation_error", "role"),
    ("POST", "/v1/classify", {"messages": [{"role": "user", "content": "  "}]}, 422,
     "invalid_input", "empty"),
    ("POST", "/v1/classify", {"messages": [{"role": "user", "content": 3}]}, 422,
     "validation_error", "content"),
    ("POST", "/v1/classify", "null", 422, "validation_error", ""),
    ("POST", "/v1/classify", '"text"', 422, "validation_error", ""),
    ("POST", "/v1/classify", [], 422, "validation_error", "empty"),
    ("POST", "/v1/classify", {"inputs": []}, 422, "validation_error", "empty"),
    ("POST", "/v1/classify", {"inputs": "x"}, 422, "validation_error", "inputs"),
    ("POST", "/v1/classify", {"inputs": [{"query": "a"}] * 5}, 413, "too_many_items", "limit is 4"),
    ("POST", "/v1/classify", [{"query": "a"}] * 5, 413, "too_many_items", "max_batch_items"),
    ("POST", "/v1/classify", {"query": "a" * 5000}, 413, "body_too_large", "4096 bytes"),
    ("POST", "/v1/chat/completions", {"messages": USER, "stream": True}, 400,
     "stream_unsupported", "stream"),
    ("POST", "/v1/chat/completions", {"messages": []}, 422, "validation_error", "messages"),
    ("POST", "/v1/chat/completions", {"model": "x"}, 422, "validation_error", "messages"),
    ("POST", "/v1/chat/completions", {"messages": USER, "bogus": 1}, 422, "validation_error",
     "bogus"),
    ("POST", "/v1/chat/completions", {"messages": [{"role": "assistant", "content": "x"}]}, 422,
     "invalid_input", "no user turn"),
    ("POST", "/v1/jobs", {"query": ""}, 422, "validation_error", "empty"),
    ("POST", "/v1/jobs", {"document": "x"}, 422, "validation_error", "document"),
    ("GET", "/v1/jobs/job-missing", None, 404, "job_not_found", "no such job"),
    ("GET", "/v1/nothing", None, 404, "not_found", "/v1/nothing"),
    ("GET", "/v1/classify", None, 405, "method_not_allowed", "GET"),
    ("DELETE", "/health", None, 405, "method_not_allowed", "DELETE"),
    ("PUT", "/v1/chat/completions", {"messages": USER}, 405, "method_not_allowed", "PUT"),
]


@pytest.mark.parametrize("method,path,body,status,code,words", CASES,
                         ids=[f"{c[0]} {c[1]} {str(c[2])[:30]}" for c in CASES])
def test_bad_input(client, method, path, body, status, code, words):
    if body is None:
        r = client.request(method, path)
    elif isinstance(body, (str, bytes)):
        r = client.request(method, path, content=body, headers=JSON)
    else:
        r = client.request(method, path, content=json.dumps(body), headers=JSON)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "code"}
    assert err["code"] == code
    assert words.lower() in err["message"].lower()


def test_unsupported_media_type(client):
    r = client.post("/v1/classify", content="query=hi",
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415 and "application/json" in r.json()["error"]["message"]


def test_missing_content_type_is_read_as_json(client):
    r = client.post("/v1/classify", content=b'{"query": "hi"}')
    assert r.status_code == 200


def test_oversized_streamed_body_without_content_length(client):
    def chunks():
        for _ in range(10):
            yield b"x" * 1000

    r = client.post("/v1/classify", content=chunks(), headers=JSON)
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert r.status_code == 413 and "4096" in r.json()["error"]["message"]


def test_bad_content_length_header(client):
    r = client.post("/v1/classify", content=b'{"query":"x"}',
                    headers={**JSON, "content-length": "abc"})
    assert r.status_code in (400, 413)


class FlakyBackend(KeywordBackend):
    """Fails while ``broken`` is set; sleeps ``delay`` seconds per batch."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = False
        self.delay = 0.0
        self.crash: Exception | None = None

    def _score_batch(self, units):
        if self.delay:
            time.sleep(self.delay)
        if self.crash is not None:
            raise self.crash
        if self.broken:
            raise BackendError("model server unreachable")
        return super()._score_batch(units)


def test_backend_error_is_503_and_server_stays_up():
    be = FlakyBackend()
    with TestClient(create_app(Settings(), guard=Guard(be))) as c:
        be.broken = True
        r = c.post("/v1/classify", json={"query": "hi"})
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "backend_unavailable"
        assert "unreachable" in r.json()["error"]["message"]
        r = c.post("/v1/chat/completions", json={"messages": USER})
        assert r.status_code == 503
        be.broken = False
        assert c.post("/v1/classify", json={"query": "hi"}).status_code == 200
        assert c.get("/health").json()["ready"] is True


def test_unexpected_backend_exception_is_503_not_500():
    be = FlakyBackend()
    be.crash = ZeroDivisionError("boom")
    with TestClient(create_app(Settings(), guard=Guard(be))) as c:
        r = c.post("/v1/classify", json={"query": "hi"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "scoring_failed"
        be.crash = None
        assert c.post("/v1/classify", json={"query": "hi"}).status_code == 200


def test_request_timeout_is_503():
    be = FlakyBackend()
    with TestClient(create_app(Settings(request_timeout_s=0.1), guard=Guard(be))) as c:
        be.delay = 0.5
        r = c.post("/v1/classify", json={"query": "hi"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "timeout"
        assert "request_timeout_s" in r.json()["error"]["message"]
        be.delay = 0.0
        time.sleep(0.5)
        assert c.post("/v1/classify", json={"query": "hi"}).status_code == 200


def test_job_failure_is_reported():
    be = FlakyBackend()
    be.broken = True
    with TestClient(create_app(Settings(), guard=Guard(be))) as c:
        job = c.post("/v1/jobs", json={"query": "long doc"}).json()
        for _ in range(100):
            job = c.get(f"/v1/jobs/{job['id']}").json()
            if job["status"] == "failed":
                break
            time.sleep(0.02)
        assert job["status"] == "failed"
        assert job["error"]["code"] == "backend_unavailable"


def test_too_many_pending_jobs_is_503():
    be = FlakyBackend()
    be.delay = 0.3
    with TestClient(create_app(Settings(jobs_max_pending=1), guard=Guard(be))) as c:
        assert c.post("/v1/jobs", json={"query": "a"}).status_code == 202
        r = c.post("/v1/jobs", json={"query": "b"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "busy"


def test_prompts_not_logged_by_default(caplog, keyword_guard):
    secret = "my-secret-prompt-about-sarin"
    with caplog.at_level("DEBUG"):
        with TestClient(create_app(Settings(), guard=keyword_guard)) as c:
            c.post("/v1/classify", json={"query": secret})
            c.post("/v1/classify", json={"messages": [{"role": "robot", "content": secret}]})
    assert secret not in caplog.text
    with caplog.at_level("INFO"):
        with TestClient(create_app(Settings(log_prompts=True), guard=keyword_guard)) as c:
            c.post("/v1/classify", json={"query": secret})
    assert secret in caplog.text

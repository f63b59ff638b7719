"""Bearer-key auth: on with HALOGUARD_API_KEYS or a key file, /health always open."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from haloguard.server import Settings, create_app  # noqa: E402
from haloguard.server.auth import key_matches  # noqa: E402

KEY = "test-key-0123456789"


@pytest.fixture()
def authed(keyword_guard):
    with TestClient(create_app(Settings(api_keys=f"{KEY}, other-key-987654"),
                               guard=keyword_guard)) as c:
        yield c


def _bearer(k: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {k}"}


@pytest.mark.parametrize("method,path,body", [
    ("POST", "/v1/classify", {"query": "hi"}),
    ("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}),
    ("POST", "/v1/jobs", {"query": "hi"}),
    ("GET", "/v1/jobs/job-x", None),
    ("GET", "/metrics", None),
    ("GET", "/openapi.json", None),
    ("GET", "/docs", None),
])
def test_protected_endpoints_need_a_key(authed, method, path, body):
    r = authed.request(method, path, json=body)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "missing_api_key"
    assert r.json()["error"]["type"] == "authentication_error"
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = authed.request(method, path, json=body, headers=_bearer("wrong-key-000000"))
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    r = authed.request(method, path, json=body, headers=_bearer(KEY))
    assert r.status_code != 401


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", KEY,
                                    f"Token {KEY}"])
def test_malformed_authorization(authed, header):
    r = authed.post("/v1/classify", json={"query": "hi"}, headers={"Authorization": header})
    assert r.status_code == 401


def test_second_key_and_scheme_case(authed):
    r = authed.post("/v1/classify", json={"query": "hi"},
                    headers={"Authorization": "bearer other-key-987654"})
    assert r.status_code == 200


def test_health_and_playground_stay_open(authed):
    assert authed.get("/health").status_code == 200
    assert authed.get("/").status_code == 200
    assert authed.get("/static/app.js").status_code == 200


def test_auth_off_without_keys(keyword_guard):
    with TestClient(create_app(Settings(), guard=keyword_guard)) as c:
        assert c.post("/v1/classify", json={"query": "hi"}).status_code == 200
        assert c.get("/metrics").status_code == 200


def test_key_file(tmp_path, keyword_guard):
    f = tmp_path / "keys"
    f.write_text("# comment\nfile-key-abcdefgh\n\n")
    with TestClient(create_app(Settings(api_key_file=f), guard=keyword_guard)) as c:
        assert c.post("/v1/classify", json={"query": "hi"}).status_code == 401
        r = c.post("/v1/classify", json={"query": "hi"}, headers=_bearer("file-key-abcdefgh"))
        assert r.status_code == 200


def test_keys_from_env(monkeypatch, keyword_guard):
    monkeypatch.setenv("HALOGUARD_API_KEYS", "env-key-aaaaaaaa,env-key-bbbbbbbb")
    with TestClient(create_app(guard=keyword_guard)) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers=_bearer("env-key-bbbbbbbb")).status_code == 200


def test_jobs_are_private_to_their_key(keyword_guard):
    s = Settings(api_keys="alice-key-11111111,bob-key-22222222")
    with TestClient(create_app(s, guard=keyword_guard)) as c:
        job = c.post("/v1/jobs", json={"query": "hi"}, headers=_bearer("alice-key-11111111")).json()
        assert c.get(f"/v1/jobs/{job['id']}", headers=_bearer("alice-key-11111111")).status_code == 200
        assert c.get(f"/v1/jobs/{job['id']}", headers=_bearer("bob-key-22222222")).status_code == 404


def test_key_matches_is_exact():
    keys = (b"abcdefgh-1", b"zzzzzzzz-2")
    assert key_matches("abcdefgh-1", keys)
    assert not key_matches("abcdefgh-", keys)
    assert not key_matches("abcdefgh-12", keys)
    assert not key_matches("ábcdefgh-1", keys)  # non-ASCII does not crash

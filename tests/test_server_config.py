"""Settings: env vars with the HALOGUARD_ prefix, comma-separated keys, bad values refused;
the serve command's binding rules and banner."""

from __future__ import annotations

import pytest

pytest.importorskip("pydantic_settings")

from pydantic import ValidationError  # noqa: E402

from haloguard.server.config import Settings, is_loopback  # noqa: E402


def test_defaults_bind_loopback_without_keys():
    s = Settings()
    assert s.bind_host == "127.0.0.1" and not s.auth_enabled
    assert s.log_prompts is False and s.port == 8000


def test_env_vars(monkeypatch):
    monkeypatch.setenv("HALOGUARD_PORT", "9001")
    monkeypatch.setenv("HALOGUARD_MAX_BATCH_SIZE", "8")
    monkeypatch.setenv("HALOGUARD_API_KEYS", " key-aaaaaaaa , key-bbbbbbbb ,")
    monkeypatch.setenv("HALOGUARD_LOG_PROMPTS", "true")
    s = Settings()
    assert (s.port, s.max_batch_size, s.log_prompts) == (9001, 8, True)
    assert s.keys() == ("key-aaaaaaaa", "key-bbbbbbbb")
    assert s.bind_host == "0.0.0.0"  # keys configured: listen on all interfaces
    assert "key-aaaaaaaa" not in repr(s)  # secrets are not printed


def test_explicit_host_wins():
    assert Settings(host="10.1.2.3").bind_host == "10.1.2.3"
    assert Settings(host="127.0.0.1", api_keys="key-aaaaaaaa").bind_host == "127.0.0.1"


@pytest.mark.parametrize("kwargs", [
    {"port": 70000}, {"port": -1}, {"workers": 0}, {"threshold": 1.5}, {"threshold": -0.1},
    {"max_batch_size": 0}, {"max_wait_ms": -1}, {"max_body_bytes": 10},
    {"request_timeout_s": 0}, {"max_batch_items": 0}, {"api_keys": "short"},
    {"api_keys": "has space-in-it"}, {"api_key_file": "/nonexistent/keys"}, {"host": " "},
    {"unknown_option": 1}, {"jobs_max_body_bytes": 2000, "max_body_bytes": 4000},
])
def test_bad_values_refused(kwargs):
    with pytest.raises(ValidationError):
        Settings(**kwargs)


def test_bad_env_value_refused(monkeypatch):
    monkeypatch.setenv("HALOGUARD_PORT", "eighty")
    with pytest.raises(ValidationError):
        Settings()


def test_empty_key_file_refused(tmp_path):
    f = tmp_path / "k"
    f.write_text("# nothing\n")
    with pytest.raises(ValidationError, match="no keys"):
        Settings(api_key_file=f)


@pytest.mark.parametrize("host,loop", [("127.0.0.1", True), ("127.8.0.1", True), ("::1", True),
                                       ("localhost", True), ("0.0.0.0", False),
                                       ("10.0.0.1", False), ("example.com", False)])
def test_is_loopback(host, loop):
    assert is_loopback(host) is loop


def _args(argv):
    from haloguard.cli.main import build_parser

    return build_parser().parse_args(["serve", *argv])


def test_serve_flags_override_env(monkeypatch):
    pytest.importorskip("fastapi")
    from haloguard.cli.serve import settings_from_args

    monkeypatch.setenv("HALOGUARD_PORT", "9001")
    monkeypatch.setenv("HALOGUARD_MAX_WAIT_MS", "7")
    s = settings_from_args(_args(["--port", "9100", "--model", "keyword", "--no-batching"]))
    assert (s.port, s.max_wait_ms, s.model, s.batching) == (9100, 7.0, "keyword", False)


@pytest.mark.parametrize("argv,words", [
    ([], ["127.0.0.1 only", "auth: OFF"]),
    (["--host", "0.0.0.0"], ["WARNING", "0.0.0.0"]),
    (["--api-keys", "key-aaaaaaaa"], ["0.0.0.0", "1 API key"]),
    (["--host", "127.0.0.1", "--api-keys", "key-aaaaaaaa,key-bbbbbbbb"], ["2 API key"]),
])
def test_banner_says_how_it_binds(argv, words):
    pytest.importorskip("fastapi")
    from haloguard.cli.serve import banner, settings_from_args

    text = banner(settings_from_args(_args(argv)))
    for w in words:
        assert w in text


def test_serve_runs_uvicorn_with_loaded_guard(monkeypatch, capsys):
    pytest.importorskip("fastapi")
    import uvicorn

    from haloguard.cli.main import main

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    assert main(["serve", "--model", "keyword", "--port", "8123"]) == 0
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8123
    assert seen["timeout_graceful_shutdown"] == 30.0
    assert "127.0.0.1 only" in capsys.readouterr().err


@pytest.mark.parametrize("argv,words", [
    (["--model", "no-such-model"], "unknown model"),
    (["--port", "99999"], "port"),
    (["--api-keys", "short"], "at least 8"),
])
def test_serve_bad_options_fail_cleanly(argv, words, capsys):
    pytest.importorskip("fastapi")
    from haloguard.cli.main import main

    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("haloguard: error:") and words in err

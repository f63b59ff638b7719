"""Server settings: pydantic-settings with the ``HALOGUARD_`` env prefix; bad values refused."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LOOPBACK = "127.0.0.1"


class Settings(BaseSettings):
    """Everything ``haloguard serve`` can be told, by env var (``HALOGUARD_PORT=9000``) or
    by keyword (``Settings(port=9000)``); CLI flags override env vars."""

    model_config = SettingsConfigDict(env_prefix="HALOGUARD_", extra="forbid",
                                      validate_default=True, frozen=True)

    # -- network ---------------------------------------------------------------------
    host: str | None = Field(None, description="bind address; default 127.0.0.1 without keys, "
                                                "0.0.0.0 with keys")
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes")
    # -- model -----------------------------------------------------------------------
    model: str | None = Field(None, description="registry name, path, hub id or URL")
    backend: str | None = None
    template: str | None = None
    device: str | None = None
    dtype: str | None = None
    threshold: float | None = Field(None, ge=0.0, le=1.0)
    constitution: str | None = None
    calibration: str | None = None
    cascade: str | None = None
    canonicalize: bool = True
    window_length: int | None = Field(None, ge=1)
    window_stride: int | None = Field(None, ge=1)
    # -- output side (exchange classifier: /v1/classify with an assistant turn, /v1/monitor)
    exchange_classifier: str | None = Field(
        None, description="exchange classifier directory (`haloguard train exchange`); "
                          "default: the bundled proxy-trained one")
    exchange_threshold: float | None = Field(
        None, ge=0.0, le=1.0, description="unsafe-compliance block threshold (default: the "
                                          "classifier's calibrated one)")
    # -- micro-batching and limits ---------------------------------------------------
    batching: bool = Field(True, description="gather concurrent requests into batches")
    # 16: measured with benchmarks/bench_server.py on 2 cores (embedded model, c=32, the
    # encoder splitting each batch across cores): 377 req/s, p99 107 ms at 8; 412 req/s,
    # p99 101 ms at 16; 404 req/s, p99 108 ms at 32 -- past 16 a request waits behind
    # more work for no gain in throughput
    max_batch_size: int = Field(16, ge=1, le=4096, description="items scored together")
    max_wait_ms: float = Field(2.0, ge=0.0, le=1000.0, description="longest wait to fill a batch")
    max_queue_items: int = Field(4096, ge=1, description="queued items before 503 busy")
    max_batch_items: int = Field(64, ge=1, le=10_000, description="items in one batch request")
    max_body_bytes: int = Field(1_000_000, ge=1024, description="request body limit")
    request_timeout_s: float = Field(30.0, gt=0.0, le=3600.0)
    # -- auth and privacy ------------------------------------------------------------
    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        (), description="comma-separated Bearer keys (HALOGUARD_API_KEYS)")
    api_key_file: Path | None = Field(None, description="file with one key per line")
    log_prompts: bool = False
    access_log: bool = True
    # -- jobs (asynchronous sliding-window monitor lane) -----------------------------
    jobs_enabled: bool = True
    jobs_max_body_bytes: int = Field(20_000_000, ge=1024)
    jobs_max_pending: int = Field(16, ge=1)
    jobs_ttl_s: float = Field(3600.0, gt=0.0)
    jobs_max_kept: int = Field(1000, ge=1)
    # -- shutdown --------------------------------------------------------------------
    graceful_timeout_s: float = Field(30.0, ge=0.0)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, v: Any) -> Any:
        if v is None:
            return ()
        if isinstance(v, str):
            v = v.split(",")
        if isinstance(v, (list, tuple)):
            keys = []
            for k in v:
                k = k.get_secret_value() if isinstance(k, SecretStr) else str(k)
                k = k.strip()
                if k:
                    _check_key(k)
                    keys.append(k)
            return tuple(keys)
        return v

    @field_validator("host")
    @classmethod
    def _check_host(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = v.strip()
        if not v or any(c.isspace() for c in v):
            raise ValueError("host must be an address or a host name")
        return v

    @field_validator("model", "backend", "constitution", "calibration", "cascade", "template",
                     "device", "dtype", "exchange_classifier")
    @classmethod
    def _blank_is_none(cls, v: str | None) -> str | None:
        return v.strip() or None if isinstance(v, str) else v

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.api_key_file is not None:
            _read_key_file(self.api_key_file)  # refuse an unreadable or empty file now
        if self.jobs_max_body_bytes < self.max_body_bytes:
            raise ValueError("jobs_max_body_bytes must be >= max_body_bytes")
        return self

    # -- derived -----------------------------------------------------------------------
    def keys(self) -> tuple[str, ...]:
        """All configured API keys (inline and from the key file)."""
        keys = [k.get_secret_value() for k in self.api_keys]
        if self.api_key_file is not None:
            keys.extend(_read_key_file(self.api_key_file))
        return tuple(dict.fromkeys(keys))

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys) or self.api_key_file is not None

    @property
    def bind_host(self) -> str:
        """The address to bind: loopback unless keys are set or a host was given."""
        if self.host is not None:
            return self.host
        return "0.0.0.0" if self.auth_enabled else LOOPBACK


def _check_key(k: str) -> None:
    if any(c.isspace() for c in k) or not k.isprintable():
        raise ValueError("API keys must be printable and contain no whitespace")
    if len(k) < 8:
        raise ValueError("API keys must be at least 8 characters long")


def _read_key_file(path: Path) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read api_key_file {str(path)!r}: {exc}") from None
    keys = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not keys:
        raise ValueError(f"api_key_file {str(path)!r} holds no keys")
    for k in keys:
        _check_key(k)
    return keys


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False

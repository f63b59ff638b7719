"""Bearer-key auth as ASGI middleware: constant-time comparison, 401 JSON errors.

``/health`` and the playground's static shell (``/``, ``/static/*``) stay open; every
other path needs ``Authorization: Bearer <key>`` when keys are configured.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from haloguard.server.errors import error_response

OPEN_PATHS = frozenset({"/health", "/", "/favicon.ico"})
OPEN_PREFIXES = ("/static/",)


def key_matches(given: str, keys: Iterable[bytes]) -> bool:
    """Compare ``given`` to every key in constant time (no early exit)."""
    g = given.encode("utf-8", "surrogatepass")
    ok = False
    for k in keys:
        ok |= hmac.compare_digest(g, k)
    return ok


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


def owner_of(token: str | None) -> str | None:
    """A stable, non-reversible id of a key (jobs are visible only to their owner)."""
    return hashlib.sha256(token.encode()).hexdigest()[:16] if token else None


class BearerAuthMiddleware:
    def __init__(self, app: ASGIApp, keys: Iterable[str]) -> None:
        self.app = app
        self.keys = tuple(k.encode("utf-8") for k in keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys:
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope.get("headers", []))
        if token is None:
            resp = error_response(401, "missing API key: send 'Authorization: Bearer <key>'",
                                  "missing_api_key", headers={"WWW-Authenticate": "Bearer"})
        elif not key_matches(token, self.keys):
            resp = error_response(401, "invalid API key", "invalid_api_key",
                                  headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        else:
            scope.setdefault("state", {})["owner"] = owner_of(token)
            await self.app(scope, receive, send)
            return
        await resp(scope, receive, send)

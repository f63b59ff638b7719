"""ASGI middleware: body-size limit (by Content-Length and by counted bytes), JSON content
type, and per-endpoint request metrics."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from haloguard.server.errors import error_response
from haloguard.server.metrics import Metrics

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", []):
        if k == name:
            return v.decode("latin-1")
    return None


class BodyLimitMiddleware:
    """Reads the body of POST/PUT/PATCH requests up to a limit and replays it to the app;
    a bigger body gets 413 naming the limit, a non-JSON content type 415."""

    def __init__(self, app: ASGIApp, max_bytes: int, jobs_max_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.jobs_max_bytes = jobs_max_bytes or max_bytes

    def limit_for(self, path: str) -> int:
        return self.jobs_max_bytes if path.startswith("/v1/jobs") else self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        ctype = _header(scope, b"content-type")
        if ctype is None:  # a body without a content type is read as JSON
            scope = {**scope, "headers": [*scope.get("headers", []),
                                          (b"content-type", b"application/json")]}
        else:
            media = ctype.split(";", 1)[0].strip().lower()
            if media != "application/json" and not media.endswith("+json"):
                await error_response(415, f"unsupported content type {media!r}: send "
                                     "'Content-Type: application/json'",
                                     "unsupported_media_type")(scope, receive, send)
                return
        too_big = error_response(413, f"request body is larger than the limit of {limit} bytes",
                                 "body_too_large")
        clen = _header(scope, b"content-length")
        if clen is not None:
            try:
                if int(clen) > limit:
                    await too_big(scope, receive, send)
                    return
            except ValueError:
                await error_response(400, "invalid Content-Length header",
                                     "invalid_content_length")(scope, receive, send)
                return
        chunks, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body = msg.get("body", b"")
            size += len(body)
            if size > limit:
                await too_big(scope, receive, send)
                return
            chunks.append(body)
            if not msg.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class ActiveRequests:
    """How many scoring requests (POST /v1/...) are in flight: the batcher's load hint."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> int:
        return self.n


class MetricsMiddleware:
    """Counts requests by endpoint (route template), method and status; times them."""

    def __init__(self, app: ASGIApp, metrics: Metrics, active: ActiveRequests | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.active = active if active is not None else ActiveRequests()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        t0 = time.perf_counter()

        async def send_wrapper(msg: Message) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
            await send(msg)

        scoring = scope.get("method") == "POST" and scope.get("path", "").startswith("/v1/")
        self.metrics.in_flight.inc()
        if scoring:
            self.active.n += 1
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if scoring:
                self.active.n -= 1
            self.metrics.in_flight.dec()
            route = scope.get("route")
            endpoint = getattr(route, "path", None)
            if endpoint is None:  # answered before routing (401, 413, 415) or no route
                path = scope.get("path", "")
                endpoint = path if path in _KNOWN else "unmatched"
            self.metrics.requests.labels(endpoint, scope.get("method", ""), str(status)).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - t0)


_KNOWN = frozenset({"/v1/classify", "/v1/chat/completions", "/v1/jobs", "/metrics", "/health",
                    "/openapi.json", "/docs"})

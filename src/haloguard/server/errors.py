"""JSON errors ``{"error": {"message", "type", "code"}}`` and the app's exception handlers."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from haloguard.backends.base import BackendError
from haloguard.errors import InputError

log = logging.getLogger("haloguard.server")

TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
         405: "invalid_request_error", 413: "invalid_request_error",
         415: "invalid_request_error", 422: "invalid_request_error", 503: "service_unavailable"}
#: parts of a validation error location that only name a union branch
_BRANCH_TAGS = {"body", "single", "batch", "list"}


class ApiError(Exception):
    """An error with an HTTP status, raised by routes and services."""

    def __init__(self, status: int, message: str, code: str, type_: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.type = type_ or TYPES.get(status, "server_error")
        self.headers = headers


def error_body(message: str, type_: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "code": code}}


def error_response(status: int, message: str, code: str, type_: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(message, type_ or TYPES.get(status, "server_error"), code),
                        status_code=status, headers=headers)


def validation_message(errors: list[dict[str, Any]], limit: int = 3) -> str:
    """A one-line message naming the fields that failed (no input values echoed)."""
    parts = []
    for e in errors[:limit]:
        loc = [str(x) for x in e.get("loc", ()) if str(x) not in _BRANCH_TAGS]
        msg = str(e.get("msg", "invalid value")).removeprefix("Value error, ")
        if e.get("type") == "missing" and not loc:
            msg = "request body is missing"
        parts.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
    more = len(errors) - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _metric_error(request: Request, type_: str, code: str) -> None:
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.errors.labels(type_, code).inc()


def install_error_handlers(app: FastAPI) -> None:
    """Map every failure to the JSON error shape; bad input never gives a 500."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        _metric_error(request, exc.type, exc.code)
        return error_response(exc.status, exc.message, exc.code, exc.type, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        bad_json = [e for e in errors if e.get("type") == "json_invalid"]
        if bad_json:
            ctx = bad_json[0].get("ctx") or {}
            detail = ctx.get("error", "invalid JSON")
            _metric_error(request, TYPES[400], "invalid_json")
            return error_response(400, f"malformed JSON body: {detail}", "invalid_json")
        _metric_error(request, TYPES[422], "validation_error")
        return error_response(422, validation_message(errors), "validation_error")

    @app.exception_handler(InputError)
    async def _input(request: Request, exc: InputError) -> JSONResponse:
        _metric_error(request, TYPES[422], "invalid_input")
        return error_response(422, str(exc), "invalid_input")

    @app.exception_handler(BackendError)
    async def _backend(request: Request, exc: BackendError) -> JSONResponse:
        _metric_error(request, TYPES[503], "backend_unavailable")
        return error_response(503, f"the guard backend failed: {exc}", "backend_unavailable",
                              headers={"Retry-After": "1"})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        if status == 404:
            msg, code = f"no such endpoint or resource: {request.url.path}", "not_found"
        elif status == 405:
            msg, code = f"method {request.method} is not allowed on {request.url.path}", \
                "method_not_allowed"
        else:
            msg, code = str(exc.detail), f"http_{status}"
        _metric_error(request, TYPES.get(status, "server_error"), code)
        return error_response(status, msg, code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        _metric_error(request, "server_error", "internal_error")
        return error_response(500, "internal server error", "internal_error", "server_error")

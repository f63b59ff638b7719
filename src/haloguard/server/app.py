"""``create_app``: the FastAPI app factory; its lifespan loads the guard once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from haloguard import __version__
from haloguard.server.auth import BearerAuthMiddleware
from haloguard.server.config import Settings
from haloguard.server.errors import install_error_handlers
from haloguard.server.metrics import Metrics
from haloguard.server.middleware import ActiveRequests, BodyLimitMiddleware, MetricsMiddleware
from haloguard.server.routes import STATIC_DIR, router
from haloguard.server.service import GuardService, build_guard

log = logging.getLogger("haloguard.server")

DESCRIPTION = """Constitutional input-prompt safety guard.

* `POST /v1/classify` — a verdict for a prompt (`query`) or conversation (`messages`);
  batches via `{"inputs": [...]}` or a JSON list.
* `POST /v1/chat/completions` — the same verdict in the OpenAI chat-completions envelope.
* `POST /v1/jobs`, `GET /v1/jobs/{id}` — very long documents, asynchronously.
* Output side: a conversation ending with an **assistant** turn also gets an `exchange`
  field (safe_compliance / safe_refusal / unsafe_compliance) from the exchange classifier;
  `POST /v1/monitor` checks a response as it streams (the response so far, or its chunks
  cumulatively; `stream: true` answers with server-sent events).
* `GET /health` (open), `GET /metrics` (Prometheus).

When API keys are configured every endpoint but `/health` needs
`Authorization: Bearer <key>`. Errors are `{"error": {"message", "type", "code"}}`.
"""


def _load_exchange(settings: Settings) -> Any:
    from haloguard.monitor.exchange import load_exchange_classifier

    return load_exchange_classifier(settings.exchange_classifier)


def create_app(settings: Settings | None = None, guard: Any = None,
               exchange: Any = None) -> FastAPI:
    """Build the app.  ``guard`` (e.g. a keyword guard in tests) skips model loading;
    ``exchange`` is the exchange classifier (default: ``settings.exchange_classifier`` or
    the bundled one)."""
    settings = settings or Settings()
    metrics = Metrics()
    keys = settings.keys()
    active = ActiveRequests()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        g = guard if guard is not None else await asyncio.to_thread(build_guard, settings)
        ex = exchange if exchange is not None else await asyncio.to_thread(_load_exchange, settings)
        service = GuardService(settings, g, metrics, load_hint=active, exchange=ex)
        await service.start()
        app.state.service = service
        log.info("guard ready: %s (%s)", g.model_id, service.info.name)
        try:
            yield
        finally:
            app.state.service = None
            await service.stop()

    app = FastAPI(title="HaloGuard", version=__version__, description=DESCRIPTION,
                  lifespan=lifespan, redoc_url=None,
                  openapi_tags=[{"name": "classify"}, {"name": "monitor"}, {"name": "openai"},
                                {"name": "jobs"}, {"name": "service"}])
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.service = None
    install_error_handlers(app)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # added last = outermost: metrics see every response, auth runs before body reading
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes,
                       jobs_max_bytes=settings.jobs_max_body_bytes)
    app.add_middleware(BearerAuthMiddleware, keys=keys)
    app.add_middleware(MetricsMiddleware, metrics=metrics, active=active)
    return app

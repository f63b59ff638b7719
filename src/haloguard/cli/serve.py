"""``haloguard serve``: the HTTP service (extra ``server``)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from haloguard.cli.common import add_model_options, fail

EPILOG = """examples:
  haloguard serve                                   # http://127.0.0.1:8000, no auth
  haloguard serve --model keyword --port 9000
  HALOGUARD_API_KEYS=key-one-xyz,key-two-xyz haloguard serve   # auth on, binds 0.0.0.0
  haloguard serve --host 0.0.0.0 --api-key-file /run/secrets/haloguard-keys
  curl -s localhost:8000/v1/classify -H 'Content-Type: application/json' -d '{"query": "hi"}'

Every option also reads an env var HALOGUARD_<OPTION> (e.g. HALOGUARD_MAX_BATCH_SIZE);
flags win over env vars.  Without API keys the server binds 127.0.0.1 unless --host is given.
"""

#: CLI dest -> Settings field (only flags the user gave override env/defaults)
_FIELDS = ("host", "port", "workers", "model", "backend", "template", "device", "dtype",
           "threshold", "constitution", "calibration", "cascade", "window_length",
           "window_stride", "max_batch_size", "max_wait_ms", "max_queue_items",
           "max_batch_items", "max_body_bytes", "request_timeout_s", "api_keys",
           "api_key_file", "graceful_timeout_s", "jobs_max_body_bytes")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the HTTP guard service",
                       description="Serve /v1/classify, /v1/chat/completions, /v1/jobs, "
                                   "/health, /metrics and the playground at /.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("server")
    g.add_argument("--host", default=None, help="bind address (default 127.0.0.1 without keys)")
    g.add_argument("--port", type=int, default=None, help="port (default 8000)")
    g.add_argument("--workers", type=int, default=None, help="worker processes (default 1)")
    g.add_argument("--api-keys", default=None, help="comma-separated Bearer keys")
    g.add_argument("--api-key-file", default=None, help="file with one key per line")
    g.add_argument("--max-batch-size", type=int, default=None, help="items per scored batch")
    g.add_argument("--max-wait-ms", type=float, default=None, help="longest wait to fill a batch")
    g.add_argument("--no-batching", action="store_true", help="score each request alone")
    g.add_argument("--max-queue-items", type=int, default=None, help="queued items before 503")
    g.add_argument("--max-batch-items", type=int, default=None, help="items per batch request")
    g.add_argument("--max-body-bytes", type=int, default=None, help="request body limit")
    g.add_argument("--jobs-max-body-bytes", type=int, default=None, help="job body limit")
    g.add_argument("--request-timeout-s", type=float, default=None, help="per-request timeout")
    g.add_argument("--graceful-timeout-s", type=float, default=None,
                   help="how long shutdown waits for in-flight requests")
    g.add_argument("--log-prompts", action="store_true", help="log prompts (off by default)")
    g.add_argument("--no-access-log", action="store_true", help="turn off the access log")
    g.add_argument("--log-level", default="info",
                   choices=("critical", "error", "warning", "info", "debug"))
    add_model_options(p)
    p.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace) -> Any:
    """Settings from env vars, overridden by the flags that were given."""
    from haloguard.server.config import Settings

    over: dict[str, Any] = {k: getattr(args, k) for k in _FIELDS
                            if getattr(args, k, None) is not None}
    if args.no_batching:
        over["batching"] = False
    if args.log_prompts:
        over["log_prompts"] = True
    if args.no_access_log:
        over["access_log"] = False
    if getattr(args, "no_canonicalize", False):
        over["canonicalize"] = False
    return Settings(**over)


def banner(settings: Any) -> str:
    """The start-up line saying where it listens and whether auth is on."""
    from haloguard.server.config import is_loopback

    host = settings.bind_host
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{settings.port}"
    if settings.auth_enabled:
        auth = f"auth: {len(settings.keys())} API key(s) required (except /health)"
    elif settings.host is None:
        auth = "auth: OFF (no API keys) -> bound to 127.0.0.1 only; pass --host to change"
    elif is_loopback(host):
        auth = "auth: OFF (no API keys)"
    else:
        auth = f"WARNING: auth is OFF (no API keys) and {host} is not loopback: anyone who " \
               "can reach this port can use the guard"
    lane = ("micro-batching on (max_batch_size=%d, max_wait_ms=%g)"
            % (settings.max_batch_size, settings.max_wait_ms)) if settings.batching \
        else "micro-batching off"
    return f"haloguard: serving on {url}  |  {auth}  |  {lane}"


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn  # noqa: F401

        from haloguard.server.app import create_app
    except ImportError as exc:
        return fail(f"the server needs the 'server' extra ({exc}); "
                    "try: pip install 'haloguard[server]'")
    from pydantic import ValidationError

    try:
        settings = settings_from_args(args)
    except ValidationError as exc:
        msgs = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: "
                         f"{e['msg'].removeprefix('Value error, ')}" for e in exc.errors())
        return fail(f"bad server settings: {msgs}")
    import uvicorn

    common = dict(host=settings.bind_host, port=settings.port, log_level=args.log_level,
                  access_log=settings.access_log, proxy_headers=False,
                  timeout_graceful_shutdown=settings.graceful_timeout_s or None)
    if settings.workers > 1:
        print(banner(settings), file=sys.stderr, flush=True)
        # each worker process builds its own app from the environment
        for name, value in settings.model_dump(exclude={"api_keys"}).items():
            if value is not None:
                os.environ[f"HALOGUARD_{name.upper()}"] = str(value)
        # split the cores between the workers (the embedded encoder runs a thread per
        # core otherwise, in every worker), unless the operator set it
        os.environ.setdefault("HALOGUARD_THREADS",
                              str(max(1, (os.cpu_count() or 1) // settings.workers)))
        if settings.api_keys:
            os.environ["HALOGUARD_API_KEYS"] = ",".join(
                k.get_secret_value() for k in settings.api_keys)
        uvicorn.run("haloguard.server.app:create_app", factory=True, workers=settings.workers,
                    **common)
        return 0
    from haloguard.errors import HaloGuardError
    from haloguard.server.service import build_guard

    try:  # load before binding, so a bad --model is a one-line error, not a traceback
        guard = build_guard(settings)
    except (HaloGuardError, ValueError, ImportError, OSError, RuntimeError) as exc:
        return fail(str(exc))
    app = create_app(settings, guard=guard)
    print(banner(settings), file=sys.stderr, flush=True)
    uvicorn.run(app, **common)
    return 0

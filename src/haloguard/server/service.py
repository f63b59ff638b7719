"""The guard service behind the routes: batching, timeouts, rendering, jobs, health."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from haloguard import __version__
from haloguard.backends.base import BackendError
from haloguard.errors import InputError
from haloguard.server.batching import (BatcherClosedError, MicroBatcher, QueueFullError,
                                       guard_score_fn)
from haloguard.server.config import Settings
from haloguard.server.errors import ApiError, error_body
from haloguard.server.jobs import Job, JobStore
from haloguard.server.metrics import Metrics

log = logging.getLogger("haloguard.server")
_TOKEN_RE = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def generated_text(v: Any) -> str:
    """The generative backend's text, or the two-line verdict."""
    if v.raw_response:
        return v.raw_response
    return completion_content(v)


def completion_content(v: Any) -> str:
    return f"Safety: {'unsafe' if v.unsafe else 'safe'}\nCategory: {v.category}"


def count_tokens(text: str) -> int:
    return len(_TOKEN_RE.findall(text))


def build_guard(settings: Settings) -> Any:
    """Load the guard the settings describe (once, in the lifespan)."""
    if settings.cascade:
        from haloguard.cascade import load_cascade  # type: ignore[import-not-found]

        return load_cascade(settings.cascade, threshold=settings.threshold,
                            constitution=settings.constitution, device=settings.device)
    from haloguard.loader import load_guard

    kwargs = {k: getattr(settings, k) for k in ("template", "device", "dtype")
              if getattr(settings, k) is not None}
    return load_guard(settings.model, backend=settings.backend, threshold=settings.threshold,
                      constitution=settings.constitution, calibration=settings.calibration,
                      canonicalize=settings.canonicalize, window_length=settings.window_length,
                      window_stride=settings.window_stride, **kwargs)


def _failure(exc: BaseException) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, InputError):
        return ApiError(422, str(exc), "invalid_input")
    if isinstance(exc, BackendError):
        return ApiError(503, f"the guard backend failed: {exc}", "backend_unavailable",
                        headers={"Retry-After": "1"})
    if isinstance(exc, QueueFullError):
        return ApiError(503, f"the server is busy: {exc}", "busy", headers={"Retry-After": "1"})
    if isinstance(exc, BatcherClosedError):
        return ApiError(503, str(exc), "shutting_down")
    return ApiError(503, f"scoring failed ({type(exc).__name__})", "scoring_failed",
                    headers={"Retry-After": "1"})


class GuardService:
    """Owns the guard, the micro-batcher and the job lane for one app."""

    def __init__(self, settings: Settings, guard: Any, metrics: Metrics,
                 load_hint: Callable[[], int] | None = None, exchange: Any = None) -> None:
        self.settings = settings
        self.guard = guard
        self.exchange = exchange
        self.metrics = metrics
        info = guard.backend.info
        self.info = info
        self._debug = {"model_id": info.model_id, "model_revision": info.revision,
                       "artifact_digest": info.digest, "backend": info.name,
                       "device": info.device, "dtype": info.dtype}
        on = settings.batching
        self.batcher = MicroBatcher(
            guard_score_fn(guard), max_batch_size=settings.max_batch_size if on else 1,
            max_wait_ms=settings.max_wait_ms if on else 0.0,
            max_queue_items=settings.max_queue_items, on_batch=metrics.observe_batch,
            load_hint=load_hint)
        self.jobs = JobStore(self._score_one, max_pending=settings.jobs_max_pending,
                             ttl_s=settings.jobs_ttl_s, max_kept=settings.jobs_max_kept,
                             classify_error=self._job_error, on_done=self._job_done)

    async def start(self) -> None:
        await self.batcher.start()
        await self.jobs.start()

    async def stop(self) -> None:
        await self.batcher.stop()
        await self.jobs.stop()

    # -- classification -----------------------------------------------------------------
    async def classify(self, items: list[tuple[Any, float | None]]) -> tuple[list[Any], int]:
        """Score ``(conversation, threshold)`` pairs; results are Verdicts or InputErrors."""
        timeout = self.settings.request_timeout_s
        try:
            results, batch = await asyncio.wait_for(self.batcher.submit(items), timeout)
        except asyncio.TimeoutError:
            raise ApiError(503, f"the request timed out after {timeout:g} s "
                           "(request_timeout_s)", "timeout", headers={"Retry-After": "1"}) from None
        except Exception as exc:
            raise _failure(exc) from exc
        finally:
            self.metrics.queue.set(self.batcher.queued_items)
        for (conv, _), r in zip(items, results):
            if not isinstance(r, Exception):
                self.metrics.observe_verdict(r)
                if self.settings.log_prompts:
                    log.info("classified %r -> %s %s", conv[-1]["content"][:500],
                             r.safety_label, r.category)
        return results, batch

    def render(self, verdict: Any, batch_size: int | None = None,
               conv: Any = None) -> dict[str, Any]:
        d = verdict.to_dict()
        d["generated_text"] = generated_text(verdict)
        if conv is not None and conv and conv[-1]["role"] == "assistant":
            ex = self.classify_exchange(conv)
            if ex is not None:
                d["exchange"] = ex
        d["_debug"] = {**self._debug, "batch_size": batch_size}
        return d

    # -- output side: the exchange classifier ----------------------------------------------
    @staticmethod
    def last_prompt(conv: Any) -> str:
        """The last user turn of a (validated) conversation."""
        return next((m["content"] for m in reversed(conv) if m["role"] == "user"), "")

    def classify_exchange(self, conv: Any, response: str | None = None,
                          threshold: float | None = None) -> dict[str, Any] | None:
        """The exchange classifier on (last user turn, ``response`` or the trailing
        assistant turn); None without a classifier or an answer."""
        if self.exchange is None:
            return None
        if response is None:
            if not conv or conv[-1]["role"] != "assistant":
                return None
            response = conv[-1]["content"]
        thr = threshold if threshold is not None else self.settings.exchange_threshold
        r = self.exchange.classify(self.last_prompt(conv), response, thr)
        return r.to_dict()

    def monitor_checks(self, conv: Any, chunks: list[str], every: int,
                       threshold: float | None, start: int = 0, stop: int | None = None,
                       done: int = 0) -> list[dict[str, Any]]:
        """Cumulative checks of the response ``chunks[start:stop]`` (``done`` characters
        already checked; the last chunk is always checked); stops at the first refusal."""
        if self.exchange is None:
            raise ApiError(503, "no exchange classifier is loaded", "not_ready")
        out: list[dict[str, Any]] = []
        text = "".join(chunks[:start])
        for i in range(start, len(chunks) if stop is None else min(stop, len(chunks))):
            text += chunks[i]
            if len(text) - done < every and i < len(chunks) - 1:
                continue
            done = len(text)
            ex = self.classify_exchange(conv, text, threshold)
            assert ex is not None
            out.append({"index": i, "chars": len(text),
                        "decision": "refuse" if ex["unsafe"] else "continue", "exchange": ex})
            if ex["unsafe"]:
                break
        return out

    @staticmethod
    def render_item_error(exc: BaseException, index: int) -> dict[str, Any]:
        return {**error_body(str(exc), "invalid_request_error", "invalid_input"), "index": index}

    def chat_completion(self, verdict: Any, conv: Any, model: str | None,
                        batch_size: int) -> dict[str, Any]:
        content = completion_content(verdict)
        prompt_tokens = sum(count_tokens(m["content"]) for m in conv)
        completion_tokens = count_tokens(content)
        return {
            "id": "chatcmpl-" + uuid.uuid4().hex[:24],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model or self.info.model_id,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop", "logprobs": None}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
            "system_fingerprint": (self.info.digest[:12] or None),
            "classification": self.render(verdict, batch_size, conv),
        }

    # -- jobs -----------------------------------------------------------------------------
    def _score_one(self, conv: Any, threshold: float | None) -> Any:
        r = self.guard.classify_batch([conv], threshold=threshold, return_errors=True)[0]
        if isinstance(r, Exception):
            raise r
        return r

    @staticmethod
    def _job_error(exc: BaseException) -> tuple[str, str, str]:
        e = _failure(exc)
        return e.message, e.type, e.code

    def _job_done(self, job: Job) -> None:
        self.metrics.jobs.labels(job.status).inc()
        if job.result is not None:
            self.metrics.observe_verdict(job.result)

    def submit_job(self, conv: Any, threshold: float | None, owner: str | None) -> Job:
        try:
            return self.jobs.submit(conv, threshold, owner=owner,
                                    input_chars=sum(len(m["content"]) for m in conv))
        except QueueFullError as exc:
            raise _failure(exc) from exc

    def render_job(self, job: Job) -> dict[str, Any]:
        return {
            "id": job.id, "status": job.status, "created_at": job.created_at,
            "started_at": job.started_at, "finished_at": job.finished_at,
            "input_chars": job.input_chars,
            "result": self.render(job.result, 1) if job.result is not None else None,
            "error": ({"message": job.error[0], "type": job.error[1], "code": job.error[2]}
                      if job.error else None),
        }

    # -- health ---------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        info, win = self.info, self.guard.window
        return {"status": "ok", "ready": True, "model_id": info.model_id,
                "model_revision": info.revision, "artifact_digest": info.digest,
                "backend": info.name, "device": info.device, "dtype": info.dtype,
                "max_input_tokens": info.max_input_tokens, "window_length": win.length,
                "window_stride": win.stride, "threshold": self.guard.threshold,
                "version": __version__,
                "exchange_model": getattr(self.exchange, "name", None)}

"""HTTP routes (thin): validate, hand to the GuardService, wrap the result."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import ValidationError

from haloguard.errors import InputError
from haloguard.inputs import to_conversation
from haloguard.server.errors import ApiError, validation_message
from haloguard.server.schemas import (BatchClassifyRequest, BatchClassifyResponse, ChatCompletionRequest,
                                      ChatCompletionResponse, ClassifyBody, ClassifyRequest,
                                      ErrorResponse, HealthResponse, JobRequest, JobResponse,
                                      MonitorRequest, MonitorResponse, VerdictResponse)
from haloguard.server.service import GuardService

STATIC_DIR = Path(__file__).parent / "static"

router = APIRouter()


def _err(desc: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": desc}


COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _err("malformed JSON or an unsupported option"),
    401: _err("missing or invalid API key (when keys are configured)"),
    413: _err("body larger than max_body_bytes, or too many batch items"),
    415: _err("content type is not application/json"),
    422: _err("a field is missing, of the wrong type, empty, or unknown"),
    503: _err("backend failure, timeout, busy, or model not ready"),
}


def get_service(request: Request) -> GuardService:
    svc = getattr(request.app.state, "service", None)
    if svc is None:
        raise ApiError(503, "the guard is not loaded yet", "not_ready")
    return svc


Service = Annotated[GuardService, Depends(get_service)]


def conversation(req: ClassifyRequest) -> Any:
    """The request's input as a validated conversation (InputError -> 422)."""
    if req.messages is not None:
        return to_conversation(messages=[m.plain() for m in req.messages])
    return to_conversation(text=req.query)


def _owner(request: Request) -> str | None:
    return getattr(request.state, "owner", None)


@router.post(
    "/v1/classify", tags=["classify"], response_model=VerdictResponse | BatchClassifyResponse,
    responses=COMMON_ERRORS, summary="Classify a prompt, a conversation, or a batch",
    description="Body: `{\"query\": str}` or `{\"messages\": [...]}` (optional `threshold`) "
                "returns one verdict; `{\"inputs\": [...]}` or a JSON list returns "
                "`{\"results\": [...]}` with an error object in place of each bad item.")
async def classify(body: Annotated[ClassifyBody, Body()], svc: Service) -> Response:
    if isinstance(body, ClassifyRequest):
        conv = conversation(body)
        (verdict,), n = await svc.classify([(conv, body.threshold)])
        if isinstance(verdict, Exception):
            raise verdict
        return JSONResponse(svc.render(verdict, n, conv))
    raw, default_thr = ((body.inputs, body.threshold) if isinstance(body, BatchClassifyRequest)
                        else (body, None))
    limit = svc.settings.max_batch_items
    if len(raw) > limit:
        raise ApiError(413, f"the batch has {len(raw)} items; the limit is {limit} "
                       "(max_batch_items)", "too_many_items")
    if not raw:
        raise ApiError(422, "inputs is empty: give at least one item", "validation_error")
    results: list[Any] = [None] * len(raw)
    good: list[tuple[int, Any, float | None]] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            results[i] = svc.render_item_error(InputError(
                f"item must be an object with 'query' or 'messages', got {type(item).__name__}"), i)
            continue
        try:
            req = ClassifyRequest.model_validate(item)
            thr = req.threshold if req.threshold is not None else default_thr
            good.append((i, conversation(req), thr))
        except ValidationError as exc:
            results[i] = svc.render_item_error(InputError(validation_message(exc.errors())), i)
        except InputError as exc:
            results[i] = svc.render_item_error(exc, i)
    if good:
        scored, n = await svc.classify([(c, t) for _, c, t in good])
        for (i, c, _), r in zip(good, scored):
            results[i] = (svc.render_item_error(r, i) if isinstance(r, Exception)
                          else svc.render(r, n, c))
    return JSONResponse({"results": results})


@router.post(
    "/v1/chat/completions", tags=["openai"], response_model=ChatCompletionResponse,
    responses=COMMON_ERRORS, summary="OpenAI-compatible classification",
    description="The last user message is classified in the context of the earlier turns; "
                "`choices[0].message.content` is `Safety: <safe|unsafe>\\nCategory: <id|none>` "
                "and the verdict is under `classification`. Sampling parameters are ignored; "
                "`stream: true` is refused with 400.")
async def chat_completions(req: ChatCompletionRequest, svc: Service) -> Response:
    if req.stream:
        raise ApiError(400, "stream=true is not supported: the guard returns one complete "
                       "verdict; send stream=false", "stream_unsupported")
    conv = to_conversation(messages=[m.plain() for m in req.messages])
    (verdict,), n = await svc.classify([(conv, req.threshold)])
    if isinstance(verdict, Exception):
        raise verdict
    return JSONResponse(svc.chat_completion(verdict, conv, req.model, n))


MONITOR_DESCRIPTION = """Output-side monitoring: is the assistant's answer (so far) unsafe
compliance with the request?  Stateless, so a proxy that relays a model's stream can call it
as the text grows:

* `{"messages": [...user turn], "response": "<text so far>"}` - one check;
* `{"messages": [...], "chunks": ["delta", ...], "check_every_chars": 64}` - cumulative
  checks after the chunks (at least `check_every_chars` new characters apart; the last chunk
  is always checked), stopping at the first refusal;
* a trailing assistant turn in `messages` is the same as `response`.

`decision` is `refuse` when the exchange classifier's unsafe-compliance probability reaches
the threshold: stop relaying and show `refusal`.  With `chunks` and `stream: true` the
answer is `text/event-stream`: an `event: check` per check and an `event: done` whose data
is the JSON below."""


def _monitor_response(svc: GuardService, req: MonitorRequest, checks: list[dict[str, Any]]
                      ) -> dict[str, Any]:
    from haloguard.monitor.generate import DEFAULT_REFUSAL

    last = checks[-1]
    refused = last["decision"] == "refuse"
    return {"decision": last["decision"], "refused": refused, "final": req.final,
            "checked_chars": last["chars"], "refusal": DEFAULT_REFUSAL if refused else None,
            "checks": checks, "exchange": last["exchange"]}


#: one server-sent event of /v1/monitor (stream=true); ``data`` is a JSON document
SSE_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["event", "data"],
    "properties": {"event": {"type": "string", "enum": ["check", "done"]},
                   "data": {"type": "string", "contentMediaType": "application/json",
                            "description": "check: a MonitorCheck; done: a MonitorResponse"}}}


def _sse(event: str, data: Any) -> str:
    import json

    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@router.post(
    "/v1/monitor", tags=["monitor"], response_model=MonitorResponse,
    responses={**COMMON_ERRORS, 200: {"description": "the checks (JSON), or server-sent "
                                                     "events with stream=true",
                                      "content": {"text/event-stream": {
                                          "schema": SSE_EVENT_SCHEMA}}}},
    summary="Check an assistant response (or its stream of chunks) against its prompt",
    description=MONITOR_DESCRIPTION)
async def monitor(req: MonitorRequest, svc: Service) -> Response:
    import asyncio

    conv = to_conversation(messages=[m.plain() for m in req.messages])
    if req.chunks is not None:
        chunks, every = list(req.chunks), req.check_every_chars
    else:
        text = req.response if req.response is not None else conv[-1]["content"]
        chunks, every = [text], 0
    if conv[-1]["role"] == "assistant":
        conv = conv[:-1]
    if not req.stream:
        checks = await asyncio.to_thread(svc.monitor_checks, conv, chunks, every, req.threshold)
        return JSONResponse(_monitor_response(svc, req, checks))
    if svc.exchange is None:
        raise ApiError(503, "no exchange classifier is loaded", "not_ready")

    async def events() -> Any:
        checks: list[dict[str, Any]] = []
        start, done = 0, 0
        while start < len(chunks):
            step = await asyncio.to_thread(svc.monitor_checks, conv, chunks, every,
                                           req.threshold, start, start + 1, done)
            start += 1
            for c in step:
                checks.append(c)
                done = c["chars"]
                yield _sse("check", c)
            if checks and checks[-1]["decision"] == "refuse":
                break
        yield _sse("done", _monitor_response(svc, req, checks))

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


@router.post(
    "/v1/jobs", tags=["jobs"], status_code=202, response_model=JobResponse,
    responses={**COMMON_ERRORS, 413: _err("body larger than jobs_max_body_bytes")},
    summary="Submit a very long document to the asynchronous sliding-window lane")
async def submit_job(req: JobRequest, request: Request, svc: Service) -> Response:
    if not svc.settings.jobs_enabled:
        raise ApiError(404, "the job lane is disabled (jobs_enabled=false)", "not_found")
    job = svc.submit_job(conversation(req), req.threshold, _owner(request))
    return JSONResponse(svc.render_job(job), status_code=202,
                        headers={"Location": f"/v1/jobs/{job.id}"})


@router.get("/v1/jobs/{job_id}", tags=["jobs"], response_model=JobResponse,
            responses={404: _err("no such job (or not yours)"), 401: COMMON_ERRORS[401]},
            summary="Poll a job")
async def get_job(job_id: str, request: Request, svc: Service) -> Response:
    job = svc.jobs.get(job_id, _owner(request))
    if job is None:
        raise ApiError(404, f"no such job: {job_id[:64]}", "job_not_found")
    return JSONResponse(svc.render_job(job))


@router.get("/health", tags=["service"], response_model=HealthResponse,
            responses={503: _err("the guard is not loaded yet")},
            summary="Readiness and runtime identity (no auth)")
async def health(svc: Service) -> Response:
    return JSONResponse(svc.health())


@router.get("/metrics", tags=["service"], summary="Prometheus metrics",
            response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "Prometheus text exposition format"},
                       401: COMMON_ERRORS[401]})
async def metrics(request: Request) -> Response:
    m = request.app.state.metrics
    return Response(m.render(), media_type=m.content_type)


@router.get("/", include_in_schema=False)
async def playground() -> Response:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

"""The asynchronous sliding-window monitor lane: very long documents are submitted as
jobs (``POST /v1/jobs``), scored on their own worker thread, and polled
(``GET /v1/jobs/{id}``)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from haloguard.server.batching import QueueFullError


@dataclass(slots=True)
class Job:
    id: str
    owner: str | None
    input_chars: int
    created_at: float
    status: str = "queued"  # queued | running | succeeded | failed
    started_at: float | None = None
    finished_at: float | None = None
    result: Any = None  # a Verdict
    error: tuple[str, str, str] | None = None  # (message, type, code)

    @property
    def done(self) -> bool:
        return self.status in ("succeeded", "failed")


class JobStore:
    """Runs jobs one at a time on a worker thread; keeps finished jobs for ``ttl_s``."""

    def __init__(self, score: Callable[[Any, float | None], Any], *, max_pending: int = 16,
                 ttl_s: float = 3600.0, max_kept: int = 1000,
                 classify_error: Callable[[BaseException], tuple[str, str, str]] | None = None,
                 on_done: Callable[[Job], None] | None = None) -> None:
        self.score = score
        self.max_pending = max_pending
        self.ttl_s = ttl_s
        self.max_kept = max_kept
        self.classify_error = classify_error or (lambda e: (str(e), "server_error", "job_failed"))
        self.on_done = on_done
        self._jobs: dict[str, Job] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="haloguard-jobs")

    async def stop(self) -> None:
        """Cancel queued jobs; a running one finishes on its thread."""
        for t in list(self._tasks):
            t.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    @property
    def pending(self) -> int:
        return sum(1 for j in self._jobs.values() if not j.done)

    def submit(self, conv: Any, threshold: float | None, *, owner: str | None,
               input_chars: int) -> Job:
        if self._executor is None:
            raise QueueFullError("the job lane is not running")
        self._prune()
        if self.pending >= self.max_pending:
            raise QueueFullError(f"too many pending jobs (limit {self.max_pending}); retry later")
        job = Job(id="job-" + secrets.token_hex(12), owner=owner, input_chars=input_chars,
                  created_at=time.time())
        self._jobs[job.id] = job
        task = asyncio.get_running_loop().create_task(self._run(job, conv, threshold))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    def get(self, job_id: str, owner: str | None) -> Job | None:
        self._prune()
        job = self._jobs.get(job_id)
        if job is None or job.owner != owner:  # another key's job looks like no job
            return None
        return job

    async def _run(self, job: Job, conv: Any, threshold: float | None) -> None:
        loop = asyncio.get_running_loop()

        def work() -> Any:
            job.status, job.started_at = "running", time.time()
            return self.score(conv, threshold)

        try:
            job.result = await loop.run_in_executor(self._executor, work)
            job.status = "succeeded"
        except asyncio.CancelledError:
            job.status, job.error = "failed", ("the server shut down", "service_unavailable",
                                               "shutdown")
            raise
        except Exception as exc:
            job.status, job.error = "failed", self.classify_error(exc)
        finally:
            job.finished_at = time.time()
            if self.on_done is not None:
                self.on_done(job)

    def _prune(self) -> None:
        now = time.time()
        for jid in [j.id for j in self._jobs.values()
                    if j.done and j.finished_at and now - j.finished_at > self.ttl_s]:
            del self._jobs[jid]
        done = [j for j in self._jobs.values() if j.done]
        if len(done) > self.max_kept:
            done.sort(key=lambda j: j.finished_at or 0.0)
            for j in done[: len(done) - self.max_kept]:
                del self._jobs[j.id]

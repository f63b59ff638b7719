"""An asyncio micro-batcher: concurrent requests are gathered into one batch (up to
``max_batch_size`` items or ``max_wait_ms``) and scored together on a worker thread, so
the event loop never blocks on the model."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from haloguard.errors import InputError

log = logging.getLogger("haloguard.server")

#: scores (conversation, threshold) pairs; returns one Verdict or InputError per pair
ScoreFn = Callable[[list[tuple[Any, float | None]]], list[Any]]


class QueueFullError(RuntimeError):
    """Too many items are waiting; the server is busy (503)."""


class BatcherClosedError(RuntimeError):
    """The batcher is shutting down (503)."""


@dataclass(slots=True)
class _Entry:
    items: list[tuple[Any, float | None]]
    future: asyncio.Future[tuple[list[Any], int]]
    enqueued: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    """Gathers :meth:`submit` calls into batches scored by ``score_fn`` on one thread.

    One request's items always stay in one batch (a request larger than
    ``max_batch_size`` is scored alone).  ``on_batch(n_items, seconds)`` is called after
    each batch (metrics).  ``load_hint()`` says how many requests are in flight in the
    server: the batcher waits for more only while some of them are not yet in the batch,
    so a lone request is never delayed by ``max_wait_ms``.
    """

    def __init__(self, score_fn: ScoreFn, *, max_batch_size: int = 32, max_wait_ms: float = 2.0,
                 max_queue_items: int = 4096,
                 on_batch: Callable[[int, float], None] | None = None,
                 load_hint: Callable[[], int] | None = None) -> None:
        self.score_fn = score_fn
        self.max_batch_size = max(1, int(max_batch_size))
        self.max_wait = max(0.0, float(max_wait_ms)) / 1000.0
        self.max_queue_items = max_queue_items
        self.on_batch = on_batch
        self.load_hint = load_hint
        self._queue: asyncio.Queue[_Entry] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._queued_items = 0
        self._closing = False
        self.batches = 0  # number of batches scored so far

    # -- lifecycle ------------------------------------------------------------------
    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="haloguard-score")
        self._closing = False
        self._task = asyncio.create_task(self._run(), name="haloguard-batcher")

    async def stop(self) -> None:
        """Score what is queued, then stop the worker."""
        self._closing = True
        if self._task is not None:
            if self._queue is not None:
                await self._queue.put(None)  # type: ignore[arg-type]  # wake-up sentinel
            try:
                await self._task
            except asyncio.CancelledError:  # pragma: no cover - cancelled on loop teardown
                pass
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._task = self._executor = None

    @property
    def queued_items(self) -> int:
        return self._queued_items

    # -- API ------------------------------------------------------------------------
    async def submit(self, items: Sequence[tuple[Any, float | None]]) -> tuple[list[Any], int]:
        """Score ``items`` in a batch with other requests; returns (results, batch size)."""
        if self._queue is None or self._closing:
            raise BatcherClosedError("the server is shutting down")
        if self._queued_items + len(items) > self.max_queue_items and self._queued_items:
            raise QueueFullError(f"too many queued items (limit {self.max_queue_items})")
        fut: asyncio.Future[tuple[list[Any], int]] = asyncio.get_running_loop().create_future()
        self._queued_items += len(items)
        await self._queue.put(_Entry(list(items), fut))
        return await fut

    # -- worker ---------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        pending: _Entry | None = None
        while True:
            if pending is None and self._closing and self._queue.empty():
                return
            first = pending or await self._queue.get()
            pending = None
            if first is None:  # wake-up sentinel from stop()
                continue
            batch, n = [first], len(first.items)
            deadline = loop.time() + self.max_wait
            while n < self.max_batch_size:
                try:
                    entry = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    timeout = deadline - loop.time()
                    if timeout <= 0 or self._closing:
                        break
                    if self.load_hint is not None and self.load_hint() <= len(batch):
                        break  # nobody else is coming: do not wait
                    try:
                        entry = await asyncio.wait_for(self._queue.get(), timeout)
                    except asyncio.TimeoutError:
                        break
                if entry is None:
                    break
                if n + len(entry.items) > self.max_batch_size:
                    pending = entry  # starts the next batch
                    break
                batch.append(entry)
                n += len(entry.items)
            await self._score(loop, batch)

    async def _score(self, loop: asyncio.AbstractEventLoop, batch: list[_Entry]) -> None:
        live = [e for e in batch if not e.future.done()]  # drop timed-out / cancelled ones
        for e in batch:
            self._queued_items -= len(e.items)
        if not live:
            return
        items = [it for e in live for it in e.items]
        t0 = time.perf_counter()
        try:
            results = await loop.run_in_executor(self._executor, self.score_fn, items)
        except Exception as exc:  # delivered to every waiting request
            if not isinstance(exc, InputError):
                log.error("scoring a batch of %d items failed: %s: %s", len(items),
                          type(exc).__name__, exc)
            for e in live:
                if not e.future.done():
                    e.future.set_exception(exc)
            return
        finally:
            self.batches += 1
            if self.on_batch is not None:
                self.on_batch(len(items), time.perf_counter() - t0)
        i = 0
        for e in live:
            k = len(e.items)
            if not e.future.done():
                e.future.set_result((results[i : i + k], len(items)))
            i += k


def guard_score_fn(guard: Any) -> ScoreFn:
    """A :data:`ScoreFn` for a Guard: one ``classify_batch`` call per distinct threshold."""

    def score(items: list[tuple[Any, float | None]]) -> list[Any]:
        groups: dict[float | None, list[int]] = {}
        for i, (_, thr) in enumerate(items):
            groups.setdefault(thr, []).append(i)
        out: list[Any] = [None] * len(items)
        for thr, idx in groups.items():
            res = guard.classify_batch([items[i][0] for i in idx], threshold=thr,
                                       return_errors=True)
            for i, r in zip(idx, res):
                out[i] = r
        return out

    return score
